//! # cubeforge
//!
//! An engine that turns gridded Earth-observation data into analysis-ready, ML-ready Zarr cubes.
//!
//! The crate is laid out by layer, data flowing down the list once:
//!
//! | module | layer |
//! |---|---|
//! | [`store`], [`write_behind`] | paths and URLs to one synchronous byte store (local, memory, S3, GCS, Azure, HTTP) |
//! | [`transfer`] | `ls`, `du`, `cp`, `sync`, `rm` between local paths and object stores |
//! | [`safety`], [`lock`] | the rules for destinations (no overlap with inputs, no roots, `--overwrite` replaces only a Zarr store), one writer at a time, resume records |
//! | [`formats`] | stored arrays: Zarr v2/v3 through `zarrs` (Blosc chunks straight into the executor's buffers), the one Zarr metadata writer |
//! | [`source`], [`region`] | the seam between formats and the executor: [`source::ChunkSource`], regions of arrays |
//! | [`dtype`], [`cf`], [`coord`], [`dataset`] | the dataset model: dimensions, stored or computed coordinates, variables, CF decoding |
//! | [`info`] | dataset summaries (`cubeforge info`) |
//! | [`recipe`], [`expr`] | recipes (YAML) and the expression language of `assign` |
//! | [`plan`] | the lazy graph of named-dimension operations, plain data |
//! | [`ops`] | window operations, one file each (the extension point of the graph) |
//! | [`lower`] | a recipe's operations to a plan |
//! | [`exec`] | the executor: readers, the chunk cache, reductions, passes, evaluation by window |
//! | [`write`](mod@write) | output arrays and chunks, encode-once repeats, the destination's safety |
//! | [`build`] | `cubeforge build`: open, lower, summarise, prepare, run passes, commit |
//! | [`example`] | the embedded synthetic example store used by the main job, tests and benchmarks |
//!
//! ```text
//!   store ──► formats ──(ChunkSource)──► exec ◄── plan ◄── lower ◄── recipe
//!                 │                        │                          │
//!                 └── zarr writer ◄── write ◄──────── build ──────────┘
//! ```
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
pub mod build;
pub mod cf;
pub mod convert;
pub mod coord;
pub mod dataset;
pub mod dtype;
pub mod error;
pub mod example;
pub mod exec;
pub mod expr;
pub mod formats;
pub mod geo;
pub mod grid;
pub mod info;
pub mod lock;
pub mod lower;
pub mod ops;
pub mod plan;
pub mod recipe;
pub mod region;
pub mod safety;
pub mod source;
pub mod store;
pub mod text;
pub mod transfer;
pub mod write;
pub mod write_behind;

#[cfg(test)]
mod testkit;

pub use error::{Error, Result};
/// Zarr, under its old path.
pub use formats::zarr;

/// The version of cubeforge, recorded in the provenance of every cube it writes.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
