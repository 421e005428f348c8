//! Window operations ([`crate::plan::WindowOp`]), one file each: an operation says which window
//! of each input an output window needs and computes the output block from the input blocks.
//!
//! To add one: write `ops/NAME.rs` with a type implementing `WindowOp`, add `pub mod NAME;`
//! here, and build its node in [`crate::lower`] as `Op::Window(Arc::new(...))`. The executor,
//! the scheduling of the chunks it reads and the printed plan need nothing more.

pub mod clip;
pub mod regrid;
pub mod rename_dims;
pub mod resample;
