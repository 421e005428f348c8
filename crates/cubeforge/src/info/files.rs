//! `cubeforge info` of an input that is not a Zarr store: a NetCDF, HDF5 or GeoTIFF file, or
//! several files joined along a dimension, described from the [`Input`] its reader made, in the
//! same document as a Zarr store's.

use serde_json::{Map, Value};

use crate::cf::CfDecoding;
use crate::coord::Coord;
use crate::dataset::decode_value;
use crate::dtype::DType;
use crate::error::Result;
use crate::info::{scalar_json, InfoReport, VarInfo, INFO_JSON_VERSION};
use crate::lower::{Input, InputVar};

/// What the report adds for inputs that are files.
#[derive(Debug, Clone, Default)]
pub struct FileDetails {
    /// The format (`netcdf3`, `netcdf4`, `hdf5`, `geotiff`, `zarr`).
    pub format: String,
    /// The files read, when the input is several.
    pub files: Option<u64>,
    /// Raster facts (size, tiling, CRS, transform, overviews), for rasters.
    pub raster: Option<Value>,
}

fn itemsize(d: &CfDecoding) -> u64 {
    let name = d.decoded_dtype_name();
    if name.starts_with("datetime64") || name.starts_with("timedelta64") || name == "object" {
        return 8;
    }
    DType::from_name(&name).map_or(0, |d| d.size() as u64)
}

fn first_last(coord: &Coord, name: &str, location: &str) -> Result<(Value, Value)> {
    let raw = coord.raw()?;
    if raw.is_empty() {
        return Ok((Value::Null, Value::Null));
    }
    let one = |i: usize| -> Result<Value> {
        Ok(scalar_json(&decode_value(
            Some(&coord.decoding),
            name,
            &raw,
            i,
            location,
        )?))
    };
    Ok((one(0)?, one(raw.len() - 1)?))
}

fn coord_info(name: &str, coord: &Coord, location: &str) -> Result<VarInfo> {
    let (first, last) = first_last(coord, name, location)?;
    let (chunks, codecs) = match &coord.values {
        crate::coord::CoordValues::Stored(s) => (s.chunk_shape().to_vec(), s.encoding()),
        crate::coord::CoordValues::Computed { len, .. } => (vec![*len], Vec::new()),
    };
    Ok(VarInfo {
        dims: vec![name.to_string()],
        shape: vec![coord.len()],
        dtype: coord.decoding.decoded_dtype_name(),
        stored_dtype: coord.dtype.name().to_string(),
        chunks,
        shards: None,
        codecs,
        fill_value: Value::Null,
        nbytes: coord.len().saturating_mul(itemsize(&coord.decoding)),
        stored_bytes: None,
        first: Some(first),
        last: Some(last),
        attrs: coord.decoding.visible_attrs(&coord.attrs),
        error: None,
    })
}

fn var_info(v: &InputVar) -> VarInfo {
    let shape = v.source.shape().to_vec();
    let len = shape.iter().product::<u64>();
    VarInfo {
        dims: v.dims.clone(),
        shape,
        dtype: v.decoding.decoded_dtype_name(),
        stored_dtype: v.source.dtype().name().to_string(),
        chunks: v.source.chunk_shape().to_vec(),
        shards: None,
        codecs: v.source.encoding(),
        fill_value: Value::Null,
        nbytes: len.saturating_mul(itemsize(&v.decoding)),
        stored_bytes: None,
        first: None,
        last: None,
        attrs: v.attrs.clone(),
        error: None,
    }
}

/// A text variable as xarray shows it: its NumPy type (`|S64`, `<U5`, `object` for bytes it
/// decodes), its attributes without `_Encoding` (which xarray moves to the encoding).
fn text_info(t: &crate::text::TextVar) -> VarInfo {
    let shape = t.values.shape.clone();
    let dtype = t.values.xarray_dtype(&t.attrs);
    let itemsize = match dtype.get(..2) {
        Some("|S") => dtype[2..].parse().unwrap_or(1),
        Some("<U") => 4 * dtype[2..].parse::<u64>().unwrap_or(1),
        _ => 8,
    };
    VarInfo {
        dims: t.dims.clone(),
        dtype,
        stored_dtype: match t.values.data {
            crate::text::TextData::Bytes { .. } => "char".into(),
            crate::text::TextData::Str(_) => "string".into(),
        },
        chunks: t.chunks.clone(),
        shards: None,
        codecs: Vec::new(),
        fill_value: Value::Null,
        nbytes: shape.iter().product::<u64>().saturating_mul(itemsize),
        stored_bytes: None,
        first: None,
        last: None,
        attrs: t
            .attrs
            .iter()
            .filter(|(k, _)| k.as_str() != "_Encoding")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        error: None,
        shape,
    }
}

fn unreadable_info(reason: &str) -> VarInfo {
    VarInfo {
        dims: Vec::new(),
        shape: Vec::new(),
        dtype: "unsupported".into(),
        stored_dtype: String::new(),
        chunks: Vec::new(),
        shards: None,
        codecs: Vec::new(),
        fill_value: Value::Null,
        nbytes: 0,
        stored_bytes: None,
        first: None,
        last: None,
        attrs: Map::new(),
        error: Some(reason.replace('\n', " ")),
    }
}

/// A raster's block (tile or strip) rows and columns, and the bands one block holds (all of
/// them when pixel-interleaved), from the raster facts of the report.
fn raster_block(raster: Option<&Value>) -> Option<(u64, u64, u64)> {
    let r = raster?;
    let block = r.get("block")?.as_array()?;
    let rows = block.first()?.as_u64()?;
    let cols = block.get(1)?.as_u64()?;
    let bands = r.get("bands").and_then(Value::as_u64).unwrap_or(1);
    let per_chunk = if r.get("interleave").and_then(Value::as_str) == Some("pixel") {
        bands
    } else {
        1
    };
    Some((rows, cols, per_chunk))
}

/// Whether `name` is a coordinate as xarray would show it: named in a variable's
/// `coordinates`, or the `spatial_ref` grid mapping of a raster (rioxarray makes it one).
fn is_aux_coord(input: &Input, name: &str) -> bool {
    name == "spatial_ref"
        || input.variables.iter().any(|v| {
            v.attrs
                .get("coordinates")
                .and_then(Value::as_str)
                .is_some_and(|c| c.split_whitespace().any(|n| n == name))
        })
}

/// The report of `input`, a file (or files) of another format than Zarr. Coordinates' values
/// are read (they are held in memory whole anyway); nothing else is.
///
/// # Errors
/// Read and decode errors of a coordinate.
pub fn report_input(input: &Input, group: &str, details: &FileDetails) -> Result<InfoReport> {
    let mut coords = Map::new();
    let mut data_vars = Map::new();
    let to_json = |info: VarInfo| serde_json::to_value(info).unwrap_or(Value::Null);
    for d in &input.dims {
        if let Some(c) = &d.coord {
            coords.insert(
                d.name.clone(),
                to_json(coord_info(&d.name, c, &input.location)?),
            );
        }
    }
    let mut names: Vec<&InputVar> = input.variables.iter().collect();
    names.sort_by(|a, b| a.name.cmp(&b.name));
    let block = raster_block(details.raster.as_ref());
    for v in names {
        let mut info = var_info(v);
        if let Some((rows, cols, per_chunk)) = block {
            // A raster's chunks are its tiles or strips, as stored (the reader may decode
            // several strips at once).
            match info.dims.len() {
                3 if info.dims[1] == "y" => info.chunks = vec![per_chunk, rows, cols],
                2 if info.dims[0] == "y" => info.chunks = vec![rows, cols],
                _ => {}
            }
        }
        let info = to_json(info);
        if is_aux_coord(input, &v.name) {
            coords.insert(v.name.clone(), info);
        } else {
            data_vars.insert(v.name.clone(), info);
        }
    }
    for (name, t) in &input.texts {
        let info = to_json(text_info(t));
        if is_aux_coord(input, name) || t.dims == [name.clone()] {
            coords.insert(name.clone(), info);
        } else {
            data_vars.insert(name.clone(), info);
        }
    }
    for (name, reason) in &input.unreadable {
        if !coords.contains_key(name) && !data_vars.contains_key(name) {
            data_vars.insert(name.clone(), to_json(unreadable_info(reason)));
        }
    }
    Ok(InfoReport {
        format: "cubeforge-info",
        version: INFO_JSON_VERSION,
        location: input.location.clone(),
        group: group.trim_start_matches('/').to_string(),
        zarr_format: 0,
        consolidated: false,
        dims: input
            .dims
            .iter()
            .map(|d| (d.name.clone(), Value::from(d.len)))
            .collect(),
        coords,
        data_vars,
        attrs: input
            .attrs
            .iter()
            .filter(|(k, _)| k.as_str() != "coordinates")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        groups: Vec::new(),
        source_format: details.format.clone(),
        files: details.files,
        raster: details.raster.clone(),
        grid: crate::lower::grid_of_input(input).map(|g| g.describe()),
    })
}

/// The format name of a sniffed file, for the report.
#[must_use]
pub fn format_name(kind: crate::formats::sniff::Sniffed) -> &'static str {
    use crate::formats::sniff::Sniffed;
    match kind {
        Sniffed::NetCdfClassic => "netcdf3",
        Sniffed::Hdf5 => "netcdf4",
        Sniffed::Tiff => "geotiff",
        Sniffed::Unknown => "unknown",
    }
}

/// Decode every unit of every variable and coordinate of `input` (in parallel), to find
/// truncated or corrupt chunks and tiles, as `info --verify` does for Zarr stores.
///
/// # Errors
/// The first unit that cannot be read or decoded, naming it.
pub fn verify_input(input: &Input) -> Result<crate::info::VerifyReport> {
    use rayon::prelude::*;
    use std::sync::atomic::{AtomicU64, Ordering};
    let sources: Vec<std::sync::Arc<dyn crate::source::ChunkSource>> = input
        .variables
        .iter()
        .map(|v| v.source.clone())
        .chain(input.dims.iter().filter_map(|d| match &d.coord {
            Some(Coord {
                values: crate::coord::CoordValues::Stored(s),
                ..
            }) => Some(s.clone()),
            _ => None,
        }))
        .collect();
    let (decoded, absent) = (AtomicU64::new(0), AtomicU64::new(0));
    for s in &sources {
        let shape = s.shape().to_vec();
        let units = s.units_in(&vec![0; shape.len()], &shape)?;
        units.par_iter().try_for_each(|(unit, _)| -> Result<()> {
            match s.read_unit(unit)? {
                Some(_) => decoded.fetch_add(1, Ordering::Relaxed),
                None => absent.fetch_add(1, Ordering::Relaxed),
            };
            Ok(())
        })?;
    }
    Ok(crate::info::VerifyReport {
        chunks_decoded: decoded.into_inner(),
        chunks_absent: absent.into_inner(),
    })
}
