//! Formats: each reads one kind of stored array and hands it to the executor as a
//! [`ChunkSource`](crate::source::ChunkSource), in a file (or folder) of its own. NetCDF and
//! GeoTIFF go beside Zarr; [`memory`] holds arrays a program already has; [`sniff`] tells what a
//! local input is before it is read (a NetCDF or TIFF file given as a store is named).

pub mod file;
pub mod geotiff;
pub mod glob;
pub mod memory;
pub mod multi;
pub mod netcdf;
pub mod open;
pub mod sniff;
pub mod zarr;
