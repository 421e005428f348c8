//! `cubeforge info`: a summary of a dataset like xarray's repr, as text or as a stable JSON
//! document (see `docs/info-json.md`).

use std::fmt::Write as _;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::dataset::{Dataset, Scalar, Variable};
use crate::error::Result;

pub mod files;
pub mod open;

/// Version of the JSON document; bumped on any incompatible change.
pub const INFO_JSON_VERSION: u32 = 1;

/// The `info` report.
#[derive(Debug, Clone, Serialize)]
pub struct InfoReport {
    /// Always `"cubeforge-info"`.
    pub format: &'static str,
    /// [`INFO_JSON_VERSION`].
    pub version: u32,
    /// The store's location.
    pub location: String,
    /// Group path within the store (`""` for the root).
    pub group: String,
    /// Zarr format (2 or 3).
    pub zarr_format: u8,
    /// Whether the metadata came from consolidated metadata.
    pub consolidated: bool,
    /// Dimension sizes, in order.
    pub dims: Map<String, Value>,
    /// Coordinate variables by name.
    pub coords: Map<String, Value>,
    /// Data variables by name.
    pub data_vars: Map<String, Value>,
    /// Global attributes.
    pub attrs: Map<String, Value>,
    /// Sub-groups.
    pub groups: Vec<String>,
    /// What the input is stored as: `zarr`, `netcdf3`, `netcdf4`, `hdf5`, `geotiff`.
    pub source_format: String,
    /// How many files the input joins, for several files read as one dataset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub files: Option<u64>,
    /// Rasters: size, tiling, compression, CRS, transform and overviews.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raster: Option<Value>,
    /// The grid of a gridded input (a raster, or variables on regular x/y or lon/lat
    /// coordinates): CRS, dims, shape, resolution, affine, bbox, first and last centres, as
    /// `cubeforge grid` prints a recipe's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grid: Option<Value>,
}

/// What the report says of one variable.
#[derive(Debug, Clone, Serialize)]
pub struct VarInfo {
    /// Dimension names.
    pub dims: Vec<String>,
    /// Shape.
    pub shape: Vec<u64>,
    /// Decoded dtype (what xarray shows).
    pub dtype: String,
    /// Stored dtype as written in the metadata.
    pub stored_dtype: String,
    /// Read-chunk shape (inner chunks of sharded arrays).
    pub chunks: Vec<u64>,
    /// Shard shape, for sharded arrays.
    pub shards: Option<Vec<u64>>,
    /// Codec pipeline.
    pub codecs: Vec<String>,
    /// Zarr fill value as stored.
    pub fill_value: Value,
    /// Decoded (uncompressed) size in bytes.
    pub nbytes: u64,
    /// Bytes stored (chunks and metadata).
    pub stored_bytes: Option<u64>,
    /// First value (coordinates only): a number, an ISO 8601 date-time, or null when missing.
    pub first: Option<Value>,
    /// Last value (coordinates only).
    pub last: Option<Value>,
    /// Attributes after CF decoding.
    pub attrs: Map<String, Value>,
    /// Why the variable cannot be read, if it cannot.
    pub error: Option<String>,
}

pub(crate) fn scalar_json(s: &Scalar) -> Value {
    match s {
        Scalar::Number(x) if x.is_infinite() => {
            Value::String(if *x > 0.0 { "Infinity" } else { "-Infinity" }.into())
        }
        Scalar::Number(x) => serde_json::Number::from_f64(*x).map_or(Value::Null, Value::Number),
        Scalar::Integer(i) => i64::try_from(*i)
            .map(Value::from)
            .or_else(|_| u64::try_from(*i).map(Value::from))
            .unwrap_or(Value::Null),
        Scalar::Bool(b) => Value::Bool(*b),
        Scalar::Duration(ns) => Value::String(iso_duration(*ns)),
        Scalar::Time(t) => Value::String(t.to_iso()),
        Scalar::Missing => Value::Null,
    }
}

/// An ISO 8601 duration (`P1DT6H0M0S`, `PT0.5S`), as pandas writes and parses them.
fn iso_duration(ns: i128) -> String {
    let sign = if ns < 0 { "-" } else { "" };
    let ns = ns.unsigned_abs();
    let secs = ns / 1_000_000_000;
    let frac = ns % 1_000_000_000;
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    let frac = if frac == 0 {
        String::new()
    } else {
        format!(".{frac:09}").trim_end_matches('0').to_string()
    };
    format!("{sign}P{d}DT{h}H{m}M{s}{frac}S")
}

fn decoded_itemsize(v: &Variable) -> u64 {
    let name = v.decoded_dtype();
    if name.starts_with("datetime64") || name.starts_with("timedelta64") || name == "object" {
        return 8;
    }
    crate::dtype::DType::from_name(&name).map_or(0, |d| d.size() as u64)
}

fn var_info(ds: &Dataset, v: &Variable) -> Result<VarInfo> {
    let len = v.meta.len();
    let (mut first, mut last) = (None, None);
    let mut error = v.problem().map(str::to_string);
    let stored_bytes = match v.array(&ds.store) {
        Ok(a) => Some(a.stored_bytes()?),
        Err(_) => None,
    };
    if v.is_coord && len > 0 && error.is_none() {
        // A coordinate that cannot be decoded (corrupt chunk, bad time value) is an error of the
        // whole report, not a note on one variable.
        first = Some(scalar_json(&ds.read_scalar(v, 0)?));
        last = Some(scalar_json(&ds.read_scalar(v, len - 1)?));
    }
    if let Some(e) = &mut error {
        // The message already names the location; keep it to one line.
        *e = e.replace('\n', " ");
    }
    Ok(VarInfo {
        dims: v.dims.clone(),
        shape: v.shape().to_vec(),
        dtype: v.decoded_dtype(),
        stored_dtype: v.meta.dtype_text.clone(),
        chunks: v.meta.chunks.clone(),
        shards: v.meta.shards.clone(),
        codecs: v.meta.codecs.clone(),
        fill_value: v.meta.fill_value.clone(),
        nbytes: len.saturating_mul(decoded_itemsize(v)),
        stored_bytes,
        first,
        last,
        attrs: v.attrs(),
        error,
    })
}

/// Build the report for a dataset. Coordinates' first and last values are read (two elements
/// each); nothing else is.
///
/// # Errors
/// Storage errors while sizing arrays.
pub fn report(ds: &Dataset) -> Result<InfoReport> {
    let mut coords = Map::new();
    let mut data_vars = Map::new();
    for v in &ds.variables {
        let info = serde_json::to_value(var_info(ds, v)?).unwrap_or(Value::Null);
        if v.is_coord {
            coords.insert(v.name.clone(), info);
        } else {
            data_vars.insert(v.name.clone(), info);
        }
    }
    Ok(InfoReport {
        format: "cubeforge-info",
        version: INFO_JSON_VERSION,
        location: ds.store.location().to_string(),
        group: ds.group.clone(),
        zarr_format: ds.zarr_format,
        consolidated: ds.consolidated,
        dims: ds
            .dims
            .iter()
            .map(|(n, s)| (n.clone(), Value::from(*s)))
            .collect(),
        coords,
        data_vars,
        attrs: ds
            .attrs
            .iter()
            .filter(|(k, _)| k.as_str() != "coordinates")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        groups: ds.groups.clone(),
        source_format: "zarr".into(),
        files: None,
        raster: None,
        grid: None,
    })
}

/// What `info --verify` found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct VerifyReport {
    /// Chunks (or shards) decoded.
    pub chunks_decoded: u64,
    /// Chunks absent from the store (read as the fill value).
    pub chunks_absent: u64,
}

/// Decode every chunk of every variable, so that truncated or corrupt chunks are found before a
/// long job (or an upload) trips over them. The chunks present are found by one listing per
/// array (not one request per chunk of the grid: a sparse array may have billions of chunk
/// positions and few chunks); the others are counted as absent.
///
/// # Errors
/// The first variable that cannot be read, a listing that fails (a symbolic link loop in a
/// local store, say), or the first chunk that cannot be decoded, named by its full path.
pub fn verify(ds: &Dataset) -> Result<VerifyReport> {
    let mut report = VerifyReport::default();
    for v in &ds.variables {
        let array = v.array(&ds.store)?;
        let grid: Vec<u64> = array.inner().chunk_grid_shape().to_vec();
        let total = crate::zarr::element_count(&grid).unwrap_or(u64::MAX);
        let mut present = stored_chunks(ds, array, &grid)?;
        present.sort_unstable();
        for idx in &present {
            array.read_chunk(idx)?;
        }
        report.chunks_decoded += present.len() as u64;
        report.chunks_absent += total.saturating_sub(present.len() as u64);
    }
    Ok(report)
}

/// The grid indices of the chunks of `array` the store holds, from one listing of its prefix.
fn stored_chunks(
    ds: &Dataset,
    array: &crate::zarr::ZarrArray,
    grid: &[u64],
) -> Result<Vec<Vec<u64>>> {
    use zarrs_storage::{ListableStorageTraits as _, StorePrefix};
    let path = array.meta_path();
    let prefix_text = if path.is_empty() {
        String::new()
    } else {
        format!("{path}/")
    };
    let prefix = if prefix_text.is_empty() {
        StorePrefix::root()
    } else {
        StorePrefix::new(prefix_text.clone()).map_err(|e| crate::Error::InvalidUrl {
            url: ds.store.location().join(&prefix_text),
            reason: e.to_string(),
        })?
    };
    let is_chunk = |rel: &str| {
        let idx = chunk_index(rel, grid.len())?;
        let inside = idx.iter().zip(grid).all(|(i, n)| i < n);
        let key = format!("{prefix_text}{rel}");
        (inside && array.inner().chunk_key(&idx).as_str() == key).then_some(idx)
    };
    let keys: Vec<String> = match ds.store.location().local_path() {
        Some(root) => {
            let dir = root.join(&prefix_text);
            let mut found = Vec::new();
            local_files(&dir, "", grid.len() + 1, &is_chunk, &mut found)?;
            found
        }
        None => ds
            .store
            .storage()
            .list_prefix(&prefix)
            .map_err(|e| ds.store.storage_error(&prefix_text, e))?
            .iter()
            .filter_map(|k| k.as_str().strip_prefix(&prefix_text).map(str::to_string))
            .collect(),
    };
    Ok(keys.iter().filter_map(|rel| is_chunk(rel)).collect())
}

/// The files below the local directory `dir` (relative paths, `/`-separated, `rel` before
/// them), at most `depth` levels down. Symbolic links to directories are not followed (a link
/// loop is not walked); a directory, or a link that leads nowhere or loops, where `is_chunk`
/// says a chunk is, is an error naming it.
fn local_files(
    dir: &std::path::Path,
    rel: &str,
    depth: usize,
    is_chunk: &dyn Fn(&str) -> Option<Vec<u64>>,
    out: &mut Vec<String>,
) -> Result<()> {
    let io = |path: &std::path::Path, source: std::io::Error| crate::Error::Io {
        path: path.display().to_string(),
        source,
    };
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && rel.is_empty() => return Ok(()),
        Err(e) => return Err(io(dir, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| io(dir, e))?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let child = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        let link = entry.file_type().map_err(|e| io(&path, e))?.is_symlink();
        match std::fs::metadata(&path) {
            Ok(m) if m.is_file() => out.push(child),
            Ok(m) if m.is_dir() && is_chunk(&child).is_some() => {
                return Err(crate::Error::CorruptChunk {
                    location: path.display().to_string(),
                    reason: "a directory where the chunk should be".into(),
                })
            }
            Ok(m) if m.is_dir() && !link && depth > 0 => {
                local_files(&path, &child, depth - 1, is_chunk, out)?;
            }
            Err(e) if is_chunk(&child).is_some() => return Err(io(&path, e)),
            _ => {}
        }
    }
    Ok(())
}

/// The grid index a chunk key (relative to its array) spells, in any of Zarr's key encodings
/// (`0.1`, `0/1`, `c/0/1`, `c.0.1`, `c`); the caller confirms it against the array's own.
fn chunk_index(rel: &str, ndim: usize) -> Option<Vec<u64>> {
    let body = rel
        .strip_prefix("c/")
        .or_else(|| rel.strip_prefix("c."))
        .unwrap_or(rel);
    if ndim == 0 {
        return (rel == "c" || rel == "0").then(Vec::new);
    }
    let idx: Vec<u64> = body
        .split(['.', '/'])
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    (idx.len() == ndim).then_some(idx)
}

/// Sizes as xarray prints them (decimal units: `708B`, `24kB`, `3GB`).
#[must_use]
#[allow(clippy::cast_precision_loss)]
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "kB", "MB", "GB", "TB", "PB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u + 1 < UNITS.len() {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{n}B")
    } else if v < 10.0 {
        format!("{v:.1}{}", UNITS[u])
    } else {
        format!("{v:.0}{}", UNITS[u])
    }
}

fn short_value(v: &Value) -> String {
    match v {
        Value::String(s) => s
            .split('T')
            .next()
            .filter(|_| s.ends_with("T00:00:00"))
            .unwrap_or(s)
            .to_string(),
        Value::Null => "nan".into(),
        other => other.to_string(),
    }
}

fn truncate(text: &str, max: usize) -> String {
    let one_line: String = text.replace(['\n', '\r'], " ");
    if one_line.chars().count() <= max {
        one_line
    } else {
        let cut: String = one_line.chars().take(max.saturating_sub(3)).collect();
        format!("{cut}...")
    }
}

/// Render the report as text, in the layout of xarray's repr.
#[must_use]
pub fn render_text(r: &InfoReport) -> String {
    let mut out = String::new();
    let consolidated = if r.consolidated { ", consolidated" } else { "" };
    let group = if r.group.is_empty() {
        String::new()
    } else {
        format!(" group /{}", r.group)
    };
    let what = match (r.source_format.as_str(), r.files) {
        ("zarr" | "", _) => format!("Zarr v{}{consolidated}", r.zarr_format),
        (f, Some(n)) => format!("{f}, {n} files"),
        (f, None) => f.to_string(),
    };
    let _ = writeln!(out, "<cubeforge.Dataset> {}{group} ({what})", r.location);
    let dims: Vec<String> = r.dims.iter().map(|(k, v)| format!("{k}: {v}")).collect();
    let _ = writeln!(out, "Dimensions:  ({})", dims.join(", "));
    let width = r
        .coords
        .keys()
        .chain(r.data_vars.keys())
        .map(|k| k.chars().count())
        .max()
        .unwrap_or(0)
        .max(4);
    let line = |out: &mut String, marker: &str, name: &str, v: &Value| {
        let get = |k: &str| v.get(k).cloned().unwrap_or(Value::Null);
        let dims: Vec<String> = get("dims")
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|d| d.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let dtype = get("dtype").as_str().unwrap_or("?").to_string();
        let size = human_bytes(get("nbytes").as_u64().unwrap_or(0));
        let mut rest = String::new();
        if let (Some(first), Some(last)) = (v.get("first"), v.get("last")) {
            if !first.is_null() || !last.is_null() {
                rest = format!(" {} ... {}", short_value(first), short_value(last));
            }
        }
        let chunks = get("chunks")
            .as_array()
            .map(|a| {
                a.iter()
                    .map(Value::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default();
        let codecs = get("codecs")
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(" | ")
            })
            .unwrap_or_default();
        let stored = get("stored_bytes")
            .as_u64()
            .map(|b| format!(", stored {}", human_bytes(b)))
            .unwrap_or_default();
        let shards = get("shards")
            .as_array()
            .map(|a| {
                format!(
                    ", shards ({})",
                    a.iter()
                        .map(Value::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })
            .unwrap_or_default();
        let codecs = if codecs.is_empty() {
            "no codecs".to_string()
        } else {
            codecs
        };
        let _ = writeln!(
            out,
            "  {marker} {name:<width$} ({}) {dtype} {size}{rest}",
            dims.join(", ")
        );
        let _ = writeln!(
            out,
            "      {:<width$} chunks ({chunks}){shards}; {codecs}{stored}",
            ""
        );
        if let Some(err) = v.get("error").and_then(Value::as_str) {
            let _ = writeln!(out, "      {:<width$} cannot be read: {err}", "");
        }
    };
    if !r.coords.is_empty() {
        let _ = writeln!(out, "Coordinates:");
        for (name, v) in &r.coords {
            let marker = if r.dims.contains_key(name) { "*" } else { " " };
            line(&mut out, marker, name, v);
        }
    }
    let _ = writeln!(out, "Data variables:");
    if r.data_vars.is_empty() {
        let _ = writeln!(out, "    *empty*");
    }
    for (name, v) in &r.data_vars {
        line(&mut out, " ", name, v);
    }
    if let Some(g) = &r.grid {
        let _ = writeln!(out, "Grid:");
        for line in grid_lines(g) {
            let _ = writeln!(out, "    {line}");
        }
    }
    if let Some(Value::Object(raster)) = &r.raster {
        let _ = writeln!(out, "Raster:");
        for (k, v) in raster {
            let text = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let _ = writeln!(out, "    {:<14} {}", format!("{k}:"), truncate(&text, 100));
        }
    }
    if !r.attrs.is_empty() {
        let _ = writeln!(out, "Attributes: ({})", r.attrs.len());
        let aw = r
            .attrs
            .keys()
            .map(|k| k.chars().count())
            .max()
            .unwrap_or(0)
            .min(32);
        for (k, v) in &r.attrs {
            let text = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let _ = writeln!(out, "    {:<aw$} {}", format!("{k}:"), truncate(&text, 72));
        }
    }
    if !r.groups.is_empty() {
        let _ = writeln!(out, "Groups: {}", r.groups.join(", "));
    }
    out
}

/// The lines `info` shows of a grid (see [`crate::geo::GeoBox::describe`]).
fn grid_lines(g: &Value) -> Vec<String> {
    let f = |v: &Value| {
        v.as_f64()
            .map_or_else(|| v.to_string(), crate::geo::py_float)
    };
    let list = |v: &Value| {
        v.as_array()
            .map(|a| a.iter().map(f).collect::<Vec<_>>().join(", "))
            .unwrap_or_default()
    };
    let crs = &g["crs"];
    let epsg = crs["epsg"]
        .as_u64()
        .map_or_else(String::new, |c| format!(" (EPSG:{c})"));
    let mut out = vec![
        format!(
            "crs:           {}{epsg}",
            crs["name"].as_str().unwrap_or("")
        ),
        format!(
            "shape:         {}",
            g["dims"]
                .as_array()
                .into_iter()
                .flatten()
                .zip(g["shape"].as_array().into_iter().flatten())
                .map(|(d, n)| format!("{}: {n}", d.as_str().unwrap_or("?")))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        format!(
            "resolution:    x {}, y {}",
            f(&g["resolution"]["x"]),
            f(&g["resolution"]["y"])
        ),
        format!("affine:        ({})", list(&g["affine"])),
    ];
    let b = &g["bbox"];
    out.push(format!(
        "bbox:          left {}, bottom {}, right {}, top {}",
        f(&b["left"]),
        f(&b["bottom"]),
        f(&b["right"]),
        f(&b["top"])
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_print_like_xarray() {
        assert_eq!(human_bytes(708), "708B");
        assert_eq!(human_bytes(24_000), "24kB");
        assert_eq!(human_bytes(3_000_000_000), "3.0GB");
        assert_eq!(human_bytes(66_000_000_000), "66GB");
    }

    #[test]
    fn durations_are_iso_8601() {
        assert_eq!(iso_duration(0), "P0DT0H0M0S");
        assert_eq!(iso_duration(6 * 3600 * 1_000_000_000), "P0DT6H0M0S");
        assert_eq!(
            iso_duration(-(86_400 * 1_000_000_000 + 500_000_000)),
            "-P1DT0H0M0.5S"
        );
    }

    #[test]
    fn chunk_keys_in_every_encoding() {
        assert_eq!(chunk_index("0.1.2", 3), Some(vec![0, 1, 2]));
        assert_eq!(chunk_index("0/1/2", 3), Some(vec![0, 1, 2]));
        assert_eq!(chunk_index("c/4/5", 2), Some(vec![4, 5]));
        assert_eq!(chunk_index("c.4.5", 2), Some(vec![4, 5]));
        assert_eq!(chunk_index("c", 0), Some(vec![]));
        assert_eq!(chunk_index(".zarray", 1), None);
        assert_eq!(chunk_index("zarr.json", 1), None);
        assert_eq!(chunk_index("1.2", 3), None);
        assert_eq!(chunk_index("99999999999999999999999", 1), None);
    }

    #[test]
    fn truncates_long_attributes() {
        let long = "x".repeat(100);
        assert_eq!(truncate(&long, 10), "xxxxxxx...");
        assert_eq!(truncate("a\nb", 10), "a b");
    }
}
