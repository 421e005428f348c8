//! Lazily read variables of any input cubeforge opens (a Zarr store, NetCDF/HDF5 or GeoTIFF
//! files, several files joined): what the xarray backend and `Batches` read through.
//!
//! [`Reader::describe`] gives the variables as a reference engine presents them before CF
//! decoding: the stored type, and the attributes as stored (the coding attributes rebuilt from
//! the reader's [`CfDecoding`]), so that xarray's own decoding gives what it gives with its
//! reference engine. [`Reader::read`] returns stored values of a region; [`Reader::read_f32`]
//! decoded values (masked values NaN), for training batches. Chunks are fetched and decoded in
//! parallel.

use std::sync::Arc;

use cubeforge::cf::time::Calendar;
use cubeforge::cf::{CfDecoding, Decoded};
use cubeforge::coord::Coord;
use cubeforge::dtype::{DType, RawArray};
use cubeforge::formats::sniff::Sniffed;
use cubeforge::formats::{glob, multi, open as formats_open};
use cubeforge::lower::Input;
use cubeforge::recipe::TimeFrom;
use cubeforge::region::{copy_region, fill_region};
use cubeforge::source::{check_region, read_region_parallel, ChunkSource};
use cubeforge::store::Location;
use cubeforge::text::TextData;
use numpy::PyArray1;
use pyo3::prelude::*;
use rayon::prelude::*;
use serde_json::{json, Map, Value};

use crate::errors::IntoPy as _;
use crate::pool;

/// One readable array: a data variable or a dimension's coordinate.
#[derive(Clone)]
pub(crate) struct Array {
    pub(crate) dims: Vec<String>,
    pub(crate) source: Arc<dyn ChunkSource>,
    pub(crate) decoding: CfDecoding,
    /// Attributes without the value-coding ones (those come from `decoding`).
    pub(crate) attrs: Map<String, Value>,
    /// The stored chunk shape (of the file, for a coordinate held in memory).
    pub(crate) chunks: Vec<u64>,
    /// The chunks the format stores (`None`: stored contiguously; see
    /// [`ChunkSource::stored_chunks`]).
    pub(crate) stored_chunks: Option<Vec<u64>>,
    /// The filters or codecs the values are stored with, as `cubeforge info` names them.
    pub(crate) filters: Vec<String>,
}

/// An opened input.
#[pyclass(frozen, module = "cubeforge._native")]
pub(crate) struct Reader {
    pub(crate) input: Input,
    /// `zarr`, `netcdf3`, `netcdf4` or `geotiff` (of the first file, for several).
    pub(crate) format: &'static str,
    /// A single NetCDF file's unlimited dimensions (`None` for other inputs).
    pub(crate) unlimited: Option<Vec<String>>,
}

/// Open `url` (a glob or several files joined along `concat`, a group of a Zarr store or a
/// NetCDF-4 file, a raster's bands as variables).
#[pyfunction]
#[pyo3(signature = (url, concat=None, group=String::new(), bands=None, time_from=None))]
pub(crate) fn open(
    py: Python<'_>,
    url: String,
    concat: Option<String>,
    group: String,
    bands: Option<Vec<String>>,
    time_from: Option<String>,
) -> PyResult<Reader> {
    let opts = formats_open::InputOptions {
        group,
        bands,
        undecoded_times: true,
    };
    let time_from = match time_from
        .as_deref()
        .map(|t| t.split_once(':').unwrap_or((t, "")))
    {
        None => None,
        Some(("pattern", v)) if !v.is_empty() => Some(TimeFrom::Pattern(v.into())),
        Some(("attribute", v)) if !v.is_empty() => Some(TimeFrom::Attribute(v.into())),
        Some(("metadata", v)) if !v.is_empty() => Some(TimeFrom::Metadata(v.into())),
        Some(("tag", v)) if !v.is_empty() => Some(TimeFrom::Tag(v.into())),
        Some(_) => {
            return Err(crate::errors::raise(
                "InvalidUrlError",
                &url,
                "time_from: give pattern:FORMAT, attribute:NAME, metadata:ITEM or tag:NAME",
            ))
        }
    };
    let (input, format, unlimited) = py
        .detach(|| {
            type Opened = (Input, &'static str, Option<Vec<String>>);
            pool::install(0, || -> cubeforge::Result<Opened> {
                if concat.is_some() || glob::is_glob(&url) {
                    let urls = [url.clone()];
                    let opened =
                        multi::open_spec(&urls, concat.as_deref(), time_from.as_ref(), &opts)?;
                    let format = match opened.files.first().map(|f| Location::parse(f)) {
                        Some(Ok(loc)) => format_of(&formats_open::find(&loc)?),
                        _ => "unknown",
                    };
                    Ok((opened.input, format, None))
                } else {
                    let loc = Location::parse(&url)?;
                    let found = formats_open::find(&loc)?;
                    let format = format_of(&found);
                    let (input, unlimited) = match found {
                        formats_open::Found::Zarr => (formats_open::open_input(&loc, &opts)?, None),
                        formats_open::Found::File(file, Sniffed::NetCdfClassic | Sniffed::Hdf5) => {
                            let (input, unlimited) =
                                cubeforge::formats::netcdf::open_with_unlimited(&file, &opts)?;
                            (input, Some(unlimited))
                        }
                        formats_open::Found::File(file, kind) => {
                            (formats_open::open_file(&file, kind, &opts)?, None)
                        }
                    };
                    Ok((input, format, unlimited))
                }
            })
        })?
        .py()?;
    Ok(Reader {
        input,
        format,
        unlimited,
    })
}

/// The format's name, as the Python layer tells the reference engines apart.
fn format_of(found: &formats_open::Found) -> &'static str {
    match found {
        formats_open::Found::Zarr => "zarr",
        formats_open::Found::File(_, Sniffed::Tiff) => "geotiff",
        formats_open::Found::File(_, Sniffed::NetCdfClassic) => "netcdf3",
        formats_open::Found::File(_, Sniffed::Hdf5) => "netcdf4",
        formats_open::Found::File(_, Sniffed::Unknown) => "unknown",
    }
}

impl Reader {
    /// The array called `name`: a variable, or a dimension's stored coordinate.
    pub(crate) fn array(&self, name: &str) -> PyResult<Array> {
        if let Some(v) = self.input.variables.iter().find(|v| v.name == name) {
            return Ok(Array {
                dims: v.dims.clone(),
                source: v.source.clone(),
                decoding: v.decoding.clone(),
                attrs: v.attrs.clone(),
                chunks: v.source.chunk_shape().to_vec(),
                stored_chunks: v.source.stored_chunks(),
                filters: v.source.encoding(),
            });
        }
        if let Some(d) = self.input.dims.iter().find(|d| d.name == name) {
            if let Some(c) = &d.coord {
                return coord_array(&d.name, c);
            }
        }
        Err(crate::errors::raise(
            "MissingError",
            &self.input.location,
            &format!("{}: variable '{name}' not found", self.input.location),
        ))
    }
}

fn coord_array(name: &str, c: &Coord) -> PyResult<Array> {
    if let Some((source, decoding)) = &c.packed {
        // Decoded when the file was opened: present the packed values, as stored.
        return Ok(Array {
            dims: vec![name.to_string()],
            source: source.clone(),
            decoding: decoding.clone(),
            attrs: cubeforge::cf::without_value_coding(&c.attrs),
            chunks: source.chunk_shape().to_vec(),
            stored_chunks: source.stored_chunks(),
            filters: source.encoding(),
        });
    }
    let raw = c.raw().py()?;
    let len = raw.shape.clone();
    let (chunks, stored_chunks, filters) = match &c.values {
        cubeforge::coord::CoordValues::Stored(s) => {
            (s.chunk_shape().to_vec(), s.stored_chunks(), s.encoding())
        }
        cubeforge::coord::CoordValues::Computed { .. } => (len.clone(), None, Vec::new()),
    };
    // A coordinate of an empty dimension is one empty chunk (chunk lengths are at least 1).
    let unit: Vec<u64> = len.iter().map(|n| (*n).max(1)).collect();
    let source = cubeforge::formats::memory::MemorySource::new(
        name,
        raw.dtype,
        (&len, &unit),
        raw.bytes,
        vec![0; raw.dtype.size()],
    )
    .py()?;
    Ok(Array {
        dims: vec![name.to_string()],
        source: Arc::new(source),
        decoding: c.decoding.clone(),
        attrs: cubeforge::cf::without_value_coding(&c.attrs),
        chunks,
        stored_chunks,
        filters,
    })
}

fn number(v: f64) -> Value {
    if v.is_finite() {
        json!(v)
    } else {
        json!(v.to_string())
    }
}

/// The coding attributes of `d`, as the reference engines present them before decoding (NaN
/// and infinities as text, which the Python side turns back into numbers of the right type).
fn coding(d: &CfDecoding, attrs: &Map<String, Value>) -> Value {
    let fills: Vec<Value> = d
        .fill_values
        .iter()
        .map(|&f| {
            // Stored fill values of an `_Unsigned` variable are the signed ones.
            if d.unsigned && f.is_finite() {
                let bits = 8 * d.stored.size() as u32;
                let f = if f >= 2f64.powi(bits as i32 - 1) {
                    f - 2f64.powi(bits as i32)
                } else {
                    f
                };
                number(f)
            } else {
                number(f)
            }
        })
        .collect();
    let written_units = d.written.get("units").and_then(Value::as_str);
    let written_calendar = d.written.get("calendar").and_then(Value::as_str);
    let (kind, time) = match &d.decoded {
        Decoded::Numeric(t) => ("numeric", json!({"decoded": t.name()})),
        Decoded::Time(enc) => {
            // As written when known (decoding normalises "NOLEAP" and "days since 1-1-1").
            let units = attrs
                .get("units")
                .cloned()
                .unwrap_or_else(|| match written_units {
                    Some(u) => json!(u),
                    None => json!(enc.units_string()),
                });
            let calendar = attrs
                .get("calendar")
                .cloned()
                .or_else(|| match written_calendar {
                    Some(c) => Some(json!(c)),
                    None if enc.calendar != Calendar::Standard => Some(json!(enc.calendar.name())),
                    None => None,
                });
            ("time", json!({"units": units, "calendar": calendar}))
        }
        Decoded::Timedelta(unit, dtype) => (
            "timedelta",
            json!({"units": attrs.get("units").cloned().unwrap_or_else(|| match written_units {
                        Some(u) => json!(u),
                        None => json!(unit.name()),
                    }),
                   "dtype": dtype}),
        ),
    };
    json!({"kind": kind, "fill_values": fills, "scale_factor": d.scale_factor.map(number),
           "add_offset": d.add_offset.map(number), "unsigned": d.unsigned, "time": time,
           "missing_value_only": d.missing_value_only, "written": d.written})
}

fn describe_array(name: &str, a: &Array) -> Value {
    json!({"name": name, "dims": a.dims, "shape": a.source.shape(),
           "dtype": a.source.dtype().name(), "chunks": a.chunks,
           "stored_chunks": a.stored_chunks, "filters": a.filters,
           "attrs": a.attrs, "coding": coding(&a.decoding, &a.attrs)})
}

fn describe_text(name: &str, t: &cubeforge::text::TextVar) -> Value {
    let (dtype, values) = match &t.values.data {
        TextData::Bytes { width, data } => (
            format!("|S{width}"),
            Value::Array(
                data.chunks((*width).max(1))
                    .map(|c| {
                        let end = c.iter().position(|b| *b == 0).unwrap_or(c.len());
                        json!(c[..end].iter().map(|b| u32::from(*b)).collect::<Vec<_>>())
                    })
                    .collect(),
            ),
        ),
        TextData::Str(v) => ("str".to_string(), json!(v)),
    };
    json!({"name": name, "dims": t.dims, "shape": t.values.shape, "dtype": dtype,
           "values": values, "attrs": t.attrs, "chunks": t.chunks,
           "char_dim": t.storage.char_dim, "stored_chunks": t.storage.stored_chunks,
           "filters": t.storage.filters})
}

#[pymethods]
impl Reader {
    /// The input as JSON: `location`, `attrs`, `dims` (name to length, in order), `variables`
    /// (dimension coordinates first; each with `dims`, `shape`, stored `dtype`, `chunks`,
    /// `attrs` and `coding`), `texts` (values included) and `unreadable`.
    fn describe(&self) -> PyResult<String> {
        let dims: Map<String, Value> = self
            .input
            .dims
            .iter()
            .map(|d| (d.name.clone(), json!(d.len)))
            .collect();
        let mut vars = Vec::new();
        for d in &self.input.dims {
            if let Some(c) = &d.coord {
                vars.push(describe_array(&d.name, &coord_array(&d.name, c)?));
            }
        }
        for v in &self.input.variables {
            vars.push(describe_array(&v.name, &self.array(&v.name)?));
        }
        let texts: Vec<Value> = self
            .input
            .texts
            .iter()
            .map(|(n, t)| describe_text(n, t))
            .collect();
        let doc = json!({"location": self.input.location, "format": self.format,
                         "attrs": self.input.attrs,
                         "dims": dims, "variables": vars, "texts": texts,
                         "unreadable": self.input.unreadable,
                         "unlimited_dims": self.unlimited});
        serde_json::to_string(&doc)
            .map_err(|e| pyo3::exceptions::PyRuntimeError::new_err(e.to_string()))
    }

    /// The stored values of `name` in the region `start .. start + shape`, as a flat array of
    /// the stored type (the caller reshapes).
    fn read<'py>(
        &self,
        py: Python<'py>,
        name: &str,
        start: Vec<u64>,
        shape: Vec<u64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let a = self.array(name)?;
        let raw = py
            .detach(|| {
                pool::install(0, || {
                    read_region_parallel(a.source.as_ref(), &start, &shape)
                })
            })?
            .py()?;
        raw_to_numpy(py, raw)
    }

    /// Count, mean, population variance times count (M2), min and max of the decoded,
    /// non-missing values of a numeric variable in the region, in float64: one pass, units in
    /// parallel.
    fn moments(
        &self,
        py: Python<'_>,
        name: &str,
        start: Vec<u64>,
        shape: Vec<u64>,
    ) -> PyResult<(u64, f64, f64, f64, f64)> {
        let a = self.array(name)?;
        py.detach(|| pool::install(0, || region_moments(&a, &start, &shape)))?
            .py()
    }

    /// The decoded values of a numeric variable in the region, as float32 with NaN where values
    /// are missing (flat; the caller reshapes).
    fn read_f32<'py>(
        &self,
        py: Python<'py>,
        name: &str,
        start: Vec<u64>,
        shape: Vec<u64>,
    ) -> PyResult<Bound<'py, PyArray1<f32>>> {
        let a = self.array(name)?;
        if !matches!(a.decoding.decoded, Decoded::Numeric(_)) {
            return Err(crate::errors::batch_error(format!(
                "{}: variable '{name}' holds times, not numbers",
                self.input.location
            )));
        }
        let out = py
            .detach(|| {
                pool::install(0, || {
                    read_region_parallel(a.source.as_ref(), &start, &shape)
                        .map(|raw| decode_f32(&a.decoding, &raw.dtype, &raw.bytes))
                })
            })?
            .py()?;
        Ok(PyArray1::from_vec(py, out))
    }
}

/// Count, mean, sum of squared deviations, min and max of the non-NaN values of `values`, in
/// float64.
fn moments(values: &[f32]) -> (u64, f64, f64, f64, f64) {
    let mut n = 0u64;
    let mut sum = 0.0f64;
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for &v in values {
        if !v.is_nan() {
            let v = f64::from(v);
            n += 1;
            sum += v;
            lo = lo.min(v);
            hi = hi.max(v);
        }
    }
    if n == 0 {
        return (0, 0.0, 0.0, lo, hi);
    }
    #[allow(clippy::cast_precision_loss)]
    let mean = sum / n as f64;
    let m2 = values
        .iter()
        .filter(|v| !v.is_nan())
        .map(|&v| (f64::from(v) - mean).powi(2))
        .sum();
    (n, mean, m2, lo, hi)
}

/// Two sets of moments as one (Chan, Golub and LeVeque's pairwise update).
fn merge(a: (u64, f64, f64, f64, f64), b: (u64, f64, f64, f64, f64)) -> (u64, f64, f64, f64, f64) {
    if a.0 == 0 {
        return (b.0, b.1, b.2, a.3.min(b.3), a.4.max(b.4));
    }
    if b.0 == 0 {
        return (a.0, a.1, a.2, a.3.min(b.3), a.4.max(b.4));
    }
    let n = a.0 + b.0;
    #[allow(clippy::cast_precision_loss)]
    let (na, nb, nn) = (a.0 as f64, b.0 as f64, n as f64);
    let delta = b.1 - a.1;
    let mean = a.1 + delta * nb / nn;
    let m2 = a.2 + b.2 + delta * delta * na * nb / nn;
    (n, mean, m2, a.3.min(b.3), a.4.max(b.4))
}

/// Stored values (`dtype`, native endian) decoded to float32, NaN where missing; as xarray
/// decodes them, then rounded to float32.
pub(crate) fn decode_f32(d: &CfDecoding, dtype: &DType, bytes: &[u8]) -> Vec<f32> {
    let size = dtype.size();
    if *dtype == DType::Float32 && d.is_nan_mask_only() {
        return bytes
            .chunks_exact(4)
            .map(|c| f32::from_ne_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
    }
    let as_f32 = matches!(d.decoded, Decoded::Numeric(DType::Float32));
    bytes
        .chunks_exact(size)
        .map(|c| {
            let raw = dtype.element_to_f64(c);
            if as_f32 {
                d.decode_number_f32(raw).unwrap_or(f32::NAN)
            } else {
                #[allow(clippy::cast_possible_truncation)]
                d.decode_number(raw).map_or(f32::NAN, |v| v as f32)
            }
        })
        .collect()
}

/// Moments of the decoded values of `a` in the region, one unit at a time in parallel, each unit
/// clipped to the region; merged in the units' order, so the result does not depend on threads.
fn region_moments(
    a: &Array,
    start: &[u64],
    shape: &[u64],
) -> cubeforge::Result<(u64, f64, f64, f64, f64)> {
    check_region(a.source.id(), a.source.shape(), start, shape)?;
    let units = a.source.units_in(start, shape)?;
    let mut total = (0, 0.0, 0.0, f64::INFINITY, f64::NEG_INFINITY);
    for group in units.chunks(UNITS_AT_ONCE) {
        let parts: Vec<_> = group
            .par_iter()
            .map(|(unit, region)| -> cubeforge::Result<_> {
                // The part of the unit inside the region.
                let s: Vec<u64> = region
                    .start()
                    .iter()
                    .zip(start)
                    .map(|(u, r)| *u.max(r))
                    .collect();
                let e: Vec<u64> = region
                    .start()
                    .iter()
                    .zip(region.shape())
                    .zip(start.iter().zip(shape))
                    .map(|((u, n), (r, m))| (u + n).min(r + m))
                    .collect();
                let n: Vec<u64> = s
                    .iter()
                    .zip(&e)
                    .map(|(a, b)| b.saturating_sub(*a))
                    .collect();
                let esize = a.source.dtype().size();
                let count = usize::try_from(n.iter().product::<u64>()).unwrap_or(0);
                let mut part = vec![0u8; count * esize];
                match a.source.read_unit(unit)? {
                    Some(b) => {
                        copy_region(&b, region.shape(), region.start(), &mut part, &n, &s, esize)
                    }
                    None => fill_region(&a.source.fill_element(), &n, &s, &mut part, &n, &s),
                }
                Ok(moments(&decode_f32(&a.decoding, &a.source.dtype(), &part)))
            })
            .collect::<cubeforge::Result<_>>()?;
        for p in parts {
            total = merge(total, p);
        }
    }
    Ok(total)
}

/// Units [`region_moments`] reads at once, as [`read_region_parallel`] does.
const UNITS_AT_ONCE: usize = 64;

fn typed<'py, T: numpy::Element + Copy>(
    py: Python<'py>,
    bytes: &[u8],
    from: impl Fn(&[u8]) -> T,
    size: usize,
) -> Bound<'py, PyAny> {
    let v: Vec<T> = bytes.chunks_exact(size).map(from).collect();
    PyArray1::from_vec(py, v).into_any()
}

/// Stored values as a flat NumPy array of their type.
fn raw_to_numpy(py: Python<'_>, raw: RawArray) -> PyResult<Bound<'_, PyAny>> {
    let b = &raw.bytes;
    Ok(match raw.dtype {
        DType::Bool => typed(py, b, |c| c[0] != 0, 1),
        DType::Int8 => typed(py, b, |c| i8::from_ne_bytes([c[0]]), 1),
        DType::UInt8 => typed(py, b, |c| c[0], 1),
        DType::Int16 => typed(py, b, |c| i16::from_ne_bytes([c[0], c[1]]), 2),
        DType::UInt16 => typed(py, b, |c| u16::from_ne_bytes([c[0], c[1]]), 2),
        DType::Int32 => typed(py, b, |c| i32::from_ne_bytes([c[0], c[1], c[2], c[3]]), 4),
        DType::UInt32 => typed(py, b, |c| u32::from_ne_bytes([c[0], c[1], c[2], c[3]]), 4),
        DType::Float32 => typed(py, b, |c| f32::from_ne_bytes([c[0], c[1], c[2], c[3]]), 4),
        DType::Int64 => typed(
            py,
            b,
            |c| i64::from_ne_bytes(c.try_into().unwrap_or([0; 8])),
            8,
        ),
        DType::UInt64 => typed(
            py,
            b,
            |c| u64::from_ne_bytes(c.try_into().unwrap_or([0; 8])),
            8,
        ),
        DType::Float64 => typed(
            py,
            b,
            |c| f64::from_ne_bytes(c.try_into().unwrap_or([0; 8])),
            8,
        ),
        DType::Float16 => {
            // NumPy's float16 from its bits: a uint16 array viewed as float16.
            let bits = typed(py, b, |c| u16::from_ne_bytes([c[0], c[1]]), 2);
            let np = py.import("numpy")?;
            bits.call_method1("view", (np.getattr("float16")?,))?
        }
    })
}
