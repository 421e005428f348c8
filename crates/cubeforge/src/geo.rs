//! The geometry layer: grids as odc-geo models them (a CRS, an affine transform of pixel edges,
//! a shape), snapped as odc-geo snaps them, and the CRSs and point transforms that take a
//! target grid's pixels to a source grid's.
//!
//! | file | what |
//! |---|---|
//! | `geo/affine.rs` | `Affine`: pixel edges to coordinates, centres, GDAL's order and inverse |
//! | `geo/snap.rs` | odc-geo's snapping of a bbox to a grid, with its 0.01 px tolerance |
//! | `geo/geobox.rs` | `GeoBox`: from a bbox and a resolution or a size, or from coordinates |
//! | `geo/spec.rs` | a recipe's `grid:` block to a `GeoBox`, errors naming field and line |
//! | `geo/area.rs` | whether a bbox lies where its CRS is defined |
//! | `geo/crs.rs` | `Crs`: EPSG codes, PROJ strings, WKT |

pub mod affine;
pub mod approx;
pub mod area;
pub mod crs;
pub mod geobox;
pub mod pixel_map;
pub mod project;
pub mod snap;
pub mod spec;

pub use affine::{py_float, Affine};
pub use crs::Crs;
pub use geobox::{Anchor, Axis, Bbox, GeoBox};
