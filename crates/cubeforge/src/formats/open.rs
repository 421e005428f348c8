//! One input location to an [`Input`], whatever its format: a Zarr store (a directory or an
//! object prefix) or a single file (NetCDF classic, NetCDF-4/HDF5, GeoTIFF), told apart by what
//! is there and by the file's first bytes, not by its name.

use crate::dataset::Dataset;
use crate::error::{Error, Result};
use crate::formats::file::RangeFile;
use crate::formats::sniff::Sniffed;
use crate::lower::Input;
use crate::store::{Location, Store};

/// How to open one input (the per-input options of a recipe that concern reading).
#[derive(Debug, Clone, Default)]
pub struct InputOptions {
    /// The group within a Zarr store or a NetCDF-4/HDF5 file; empty for the root.
    pub group: String,
    /// Names for the bands of a raster: one two-dimensional variable per band instead of
    /// `band_data (band, y, x)`.
    pub bands: Option<Vec<String>>,
    /// Read a variable whose time encoding cannot be decoded (months, an unknown calendar) as
    /// stored, with its `units` and `calendar`, as xarray does with `decode_times=False`,
    /// instead of refusing it (the Python package, whose decoding is xarray's own).
    pub undecoded_times: bool,
}

/// What is at `location`, for opening it.
#[derive(Debug)]
pub enum Found {
    /// A Zarr store (a directory or an object prefix).
    Zarr,
    /// A single file of the given format.
    File(RangeFile, Sniffed),
}

/// Tell what `location` holds: a local directory or an object prefix is a Zarr store, a local
/// file or an object is sniffed by its first bytes.
///
/// # Errors
/// [`Error::NotFound`] for a local path that does not exist; read errors of the file's head.
pub fn find(location: &Location) -> Result<Found> {
    match location {
        Location::Local(path) => match std::fs::metadata(path) {
            Ok(m) if m.is_file() => sniff_file(RangeFile::open_location(location)?),
            _ => Ok(Found::Zarr),
        },
        Location::Memory(_) => Ok(Found::Zarr),
        Location::Object(_) => match RangeFile::open_location(location) {
            // An object at exactly this key is a file; otherwise the URL is a prefix.
            Ok(file) => sniff_file(file),
            Err(Error::NotFound { .. } | Error::InvalidUrl { .. }) => Ok(Found::Zarr),
            Err(e) => Err(e),
        },
    }
}

fn sniff_file(file: RangeFile) -> Result<Found> {
    let head = file.read(0, file.len().min(8) as usize)?;
    let kind = Sniffed::of(&head);
    Ok(Found::File(file, kind))
}

/// Open the input at `location` with `opts`.
///
/// # Errors
/// Whatever the format's reader reports; [`Error::Unsupported`] for a file of no known format.
pub fn open_input(location: &Location, opts: &InputOptions) -> Result<Input> {
    match find(location)? {
        Found::Zarr => {
            let ds =
                Dataset::open_with(&Store::open(location)?, &opts.group, opts.undecoded_times)?;
            Ok(Input::from_dataset(&ds, location.to_string()))
        }
        Found::File(file, kind) => open_file(&file, kind, opts),
    }
}

/// Open a single file of a sniffed format.
///
/// # Errors
/// Whatever the format's reader reports; [`Error::Unsupported`] for a format with no reader.
pub fn open_file(file: &RangeFile, kind: Sniffed, opts: &InputOptions) -> Result<Input> {
    match kind {
        Sniffed::Tiff => crate::formats::geotiff::open(file, opts),
        Sniffed::NetCdfClassic | Sniffed::Hdf5 => crate::formats::netcdf::open(file, opts),
        Sniffed::Unknown => Err(Error::Unsupported {
            location: file.id().to_string(),
            feature: "input format".into(),
            detail: "not a Zarr store, NetCDF, HDF5 or TIFF file (unknown first bytes)".into(),
        }),
    }
}

/// What `info` adds for a raster file (size, tiling, compression, CRS, transform, overviews);
/// `None` for other formats.
///
/// # Errors
/// Read errors of the file's metadata.
pub fn raster_details(file: &RangeFile, kind: Sniffed) -> Result<Option<serde_json::Value>> {
    match kind {
        Sniffed::Tiff => {
            let info = crate::formats::geotiff::describe(file)?;
            Ok(Some(serde_json::to_value(info).map_err(|e| {
                Error::Other(format!("{}: cannot describe the raster: {e}", file.id()))
            })?))
        }
        _ => Ok(None),
    }
}
