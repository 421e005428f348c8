//! # cubeforge
//!
//! An engine that turns gridded Earth-observation data into analysis-ready, ML-ready Zarr cubes.
//!
//! The crate is laid out by layer, data flowing down the list once:
//!
//! | module | layer |
//! |---|---|
//! | [`store`] | paths and URLs to one synchronous byte store (local, memory, S3, GCS, Azure, HTTP) |
//! | [`zarr`], [`blosc`] | Zarr v2/v3 hierarchies and arrays, read through `zarrs` (Blosc chunks straight into the executor's buffers) |
//! | [`dtype`], [`cf`], [`dataset`] | the dataset model: dimensions, coordinates, variables, CF decoding |
//! | [`info`] | dataset summaries (`cubeforge info`) |
//! | [`recipe`], [`expr`] | recipes (YAML) and the expression language of `assign` |
//! | [`plan`] | the lazy graph of named-dimension operations, evaluated by window |
//! | [`build`] | recipe to plan, streaming execution, Zarr output |
//! | [`example`] | the embedded synthetic example store used by the main job, tests and benchmarks |
//!
//! See `docs/ARCHITECTURE.md` in the repository for the design and its reasons.
//!
//! ```no_run
//! use cubeforge::{dataset::Dataset, store::Store};
//! let store = Store::open_str("data/io.zarr")?;
//! let ds = Dataset::open(&store, "")?;
//! for v in &ds.variables {
//!     println!("{} {:?} {}", v.name, v.dims, v.decoded_dtype());
//! }
//! # Ok::<(), cubeforge::Error>(())
//! ```

pub mod aws_profile;
pub mod blosc;
pub mod build;
pub mod cf;
pub mod dataset;
pub mod dtype;
pub mod error;
pub mod example;
pub mod expr;
pub mod info;
pub mod plan;
pub mod recipe;
pub mod store;
pub mod transfer;
pub mod write_behind;
pub mod zarr;

pub use error::{Error, Result};

/// The version of cubeforge, recorded in the provenance of every cube it writes.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
