//! GeoTIFF and Cloud-Optimized GeoTIFF input, opened as xarray's rasterio engine opens it
//! (`rioxarray.open_rasterio(path)` then `.to_dataset(name="band_data")`): the first image's
//! pixels as `band_data (band, y, x)` (or one `(y, x)` variable per band when the input names
//! its bands), `band` numbered from 1, `x` and `y` at pixel centres from the affine transform
//! (two-dimensional `xc`/`yc` for a rotated or sheared transform, as rioxarray gives them), and a
//! scalar `spatial_ref` carrying `crs_wkt`, `spatial_ref`, `GeoTransform` and the CF
//! grid-mapping attributes pyproj derives (see [`geokeys::cf_attrs`]). The nodata value is
//! `_FillValue` and GDAL's per-band scale and offset are `scale_factor`/`add_offset`, so CF
//! decoding masks and unpacks them, into the float type rioxarray reads into (see
//! `rasterio_decoding`: float32 for bytes, with or without nodata). The file's metadata are the
//! band variable's attributes, none global, as in rioxarray's dataset. Overviews are listed,
//! not read. GDAL's mask (an internal mask, a `.msk` file beside a local file, or an alpha band;
//! `geotiff/mask.rs`) makes masked pixels NaN, as `read(masked=True)` does in rioxarray.
//!
//! | file | what |
//! |---|---|
//! | `geotiff/reader.rs` | the file's bytes for the `tiff` crate's decoders; the decoder pool |
//! | `geotiff/ifd.rs` | the first IFD: layout, compression, tags; overviews listed |
//! | `geotiff/source.rs` | the pixels as [`ChunkSource`](crate::source::ChunkSource)s |
//! | `geotiff/geokeys.rs` | GeoKeys to a CRS as WKT |
//! | `geotiff/transform.rs` | the affine transform, pixel centres, `GeoTransform` text |
//! | `geotiff/metadata.rs` | GDAL's metadata tag (scale, offset, descriptions, items) |
//! | `geotiff/mask.rs` | GDAL's mask: internal, `.msk` or alpha; mask chunks decoded |

use std::sync::Arc;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::cf::CfDecoding;
use crate::coord::Coord;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::formats::file::RangeFile;
use crate::formats::memory::MemorySource;
use crate::formats::open::InputOptions;
use crate::lower::{Input, InputDim, InputVar};

mod deflate;
mod geokeys;
mod ifd;
mod mask;
mod metadata;
mod reader;
mod source;
mod transform;

pub(crate) use geokeys::cf_attrs;

use geokeys::{Crs, GeoKeys};
use ifd::Ifd;
use mask::Mask;
use metadata::Item;
use reader::{Blocks, Pool};
use source::{MaskPlan, Raster, TiffSource, Unpack};
use transform::Affine;

/// What `cubeforge info` shows of a GeoTIFF beyond its variables.
#[derive(Debug, Clone, Serialize)]
pub struct RasterInfo {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Number of bands.
    pub bands: u16,
    /// The bands' element type.
    pub dtype: DType,
    /// `tiles` or `strips`.
    pub layout: &'static str,
    /// Tile (or strip) shape, `[rows, columns]`.
    pub block: [u32; 2],
    /// `pixel` (PlanarConfiguration 1) or `band` (2).
    pub interleave: &'static str,
    /// The compression's name (`deflate`, `lzw`, `none`, …).
    pub compression: String,
    /// The predictor (1 none, 2 horizontal, 3 floating point).
    pub predictor: u16,
    /// Whether the file is a BigTIFF.
    pub bigtiff: bool,
    /// Overview sizes, `[width, height]`, largest first as stored.
    pub overviews: Vec<[u32; 2]>,
    /// The CRS as WKT, when the GeoKeys give one cubeforge can read.
    pub crs_wkt: Option<String>,
    /// Its EPSG code, when the GeoKeys name one.
    pub epsg: Option<u32>,
    /// The affine transform in GDAL's order `(c, a, b, f, d, e)`.
    pub geo_transform: [f64; 6],
    /// `Area` or `Point` (pixel-is-point), when the file has GeoKeys.
    pub area_or_point: Option<&'static str>,
    /// The nodata value (GDAL_NODATA), as stored.
    pub nodata: Option<String>,
}

/// A parsed file: its first image, its georeferencing and metadata, and its decoders.
struct Opened {
    ifd: Ifd,
    blocks: Arc<Blocks>,
    pool: Option<Pool>,
    keys: GeoKeys,
    crs: Option<Crs>,
    transform: Affine,
    items: Vec<Item>,
}

fn parse(file: &RangeFile) -> Result<Opened> {
    let id = file.id();
    let head = file.read(0, file.len().min(4) as usize)?;
    let bigtiff = head.len() == 4 && (head[2..] == [43, 0] || head[2..] == [0, 43]);
    let blocks = Blocks::new(file.clone());
    let mut dec = reader::open_decoder(&blocks).map_err(|e| ifd::meta_error(id, e))?;
    let ifd = ifd::read(id, &mut dec, bigtiff)?;
    let keys = ifd
        .geokeys
        .as_deref()
        .map(|dir| GeoKeys::parse(dir, &ifd.geo_doubles, &ifd.geo_ascii))
        .unwrap_or_default();
    let crs = if keys.is_empty() {
        None
    } else {
        match keys.crs() {
            Ok(c) => Some(c),
            Err(why) => {
                tracing::warn!("{id}: no CRS read: {why}");
                None
            }
        }
    };
    let transform = Affine::from_tags(
        ifd.transformation.as_deref(),
        ifd.tiepoints.as_deref(),
        ifd.pixel_scale.as_deref(),
        keys.pixel_is_point(),
    )
    .unwrap_or(Affine::IDENTITY);
    let items = ifd
        .gdal_metadata
        .as_deref()
        .map(metadata::items)
        .unwrap_or_default();
    Ok(Opened {
        pool: Some(Pool::new(blocks.clone(), dec)),
        ifd,
        blocks,
        keys,
        crs,
        transform,
        items,
    })
}

impl Opened {
    fn area_or_point(&self) -> Option<&'static str> {
        if self.keys.is_empty() {
            None
        } else if self.keys.pixel_is_point() {
            Some("Point")
        } else {
            Some("Area")
        }
    }

    /// The nodata value, parsed.
    fn nodata(&self) -> Option<f64> {
        let s = self.ifd.nodata.as_deref()?;
        match s.to_ascii_lowercase().as_str() {
            "nan" | "-nan" => Some(f64::NAN),
            "inf" => Some(f64::INFINITY),
            "-inf" => Some(f64::NEG_INFINITY),
            t => t.parse().ok(),
        }
    }

    /// The dataset's metadata as GDAL lists it: TIFF text tags, GDAL metadata items of the
    /// dataset, `AREA_OR_POINT`; as rioxarray parses them (numbers where they read as numbers).
    fn dataset_tags(&self) -> Map<String, Value> {
        let mut out = Map::new();
        for (name, value) in &self.ifd.text {
            if let Some((_, _, gdal)) = ifd::TEXT_TAGS.iter().find(|(n, _, _)| n == name) {
                out.insert((*gdal).to_string(), parse_tag(value));
            }
        }
        for item in self.items.iter().filter(|i| i.sample.is_none()) {
            out.insert(item.name.clone(), parse_tag(&item.value));
        }
        if let Some(ap) = self.area_or_point() {
            out.insert("AREA_OR_POINT".into(), Value::String(ap.into()));
        }
        out
    }

    /// A band's role item (`scale`, `offset`, `description`, `unittype`).
    fn band_role(&self, band: u16, role: &str) -> Option<&str> {
        self.items
            .iter()
            .find(|i| i.sample == Some(band) && i.role.as_deref() == Some(role))
            .map(|i| i.value.as_str())
    }

    /// The attributes rioxarray gives a band variable holding `bands` (0-based).
    fn band_attrs(&self, bands: &[u16]) -> Map<String, Value> {
        let mut attrs = self.dataset_tags();
        let first = bands.first().copied().unwrap_or(0);
        for item in self
            .items
            .iter()
            .filter(|i| i.sample == Some(first) && i.role.is_none())
        {
            attrs.insert(item.name.clone(), parse_tag(&item.value));
        }
        for gone in [
            "_FillValue",
            "missing_value",
            "fill_value",
            "nodata",
            "nodatavals",
            "is_tiled",
            "res",
        ] {
            attrs.remove(gone);
        }
        if let Some(v) = self.nodata() {
            attrs.insert("_FillValue".into(), fill_json(self.ifd.dtype, v));
        }
        let num = |b: u16, role: &str, default: f64| {
            self.band_role(b, role)
                .and_then(|s| s.trim().parse::<f64>().ok())
                .unwrap_or(default)
        };
        let scales: Vec<f64> = bands.iter().map(|b| num(*b, "scale", 1.0)).collect();
        let offsets: Vec<f64> = bands.iter().map(|b| num(*b, "offset", 0.0)).collect();
        let same = |v: &[f64]| v.iter().all(|x| *x == v[0]);
        if !scales.is_empty()
            && same(&scales)
            && same(&offsets)
            && (scales[0] != 1.0 || offsets[0] != 0.0)
        {
            attrs.insert("scale_factor".into(), json_f64(scales[0]));
            attrs.insert("add_offset".into(), json_f64(offsets[0]));
        } else if !same(&scales) || !same(&offsets) {
            tracing::warn!(
                "{}: scales or offsets differ across bands; band_data is not unpacked (name the \
                 bands to get one variable per band)",
                self.blocks.file().id()
            );
            attrs.insert(
                "scales".into(),
                scales.iter().map(|v| json_f64(*v)).collect(),
            );
            attrs.insert(
                "offsets".into(),
                offsets.iter().map(|v| json_f64(*v)).collect(),
            );
        }
        let descriptions: Vec<Option<&str>> = bands
            .iter()
            .map(|b| self.band_role(*b, "description"))
            .collect();
        if descriptions.iter().any(Option::is_some) {
            let all_same = descriptions.iter().all(|d| *d == descriptions[0]);
            let value = if all_same {
                Value::String(descriptions[0].unwrap_or_default().to_string())
            } else {
                descriptions
                    .iter()
                    .map(|d| d.map_or(Value::Null, |s| Value::String(s.into())))
                    .collect()
            };
            attrs.insert("long_name".into(), value);
        }
        let units: Vec<Option<&str>> = bands
            .iter()
            .map(|b| self.band_role(*b, "unittype"))
            .collect();
        if units.iter().any(Option::is_some) {
            let value = if units.len() == 1 {
                Value::String(units[0].unwrap_or_default().to_string())
            } else {
                units
                    .iter()
                    .map(|d| d.map_or(Value::Null, |s| Value::String(s.into())))
                    .collect()
            };
            attrs.insert("units".into(), value);
        }
        attrs.insert("grid_mapping".into(), Value::String("spatial_ref".into()));
        attrs
    }

    /// The `spatial_ref` variable's attributes.
    fn spatial_ref_attrs(&self) -> Map<String, Value> {
        let mut attrs = Map::new();
        if let Some(crs) = &self.crs {
            attrs.insert("crs_wkt".into(), Value::String(crs.wkt.clone()));
            attrs.extend(geokeys::cf_attrs(&crs.wkt));
            attrs.insert("spatial_ref".into(), Value::String(crs.wkt.clone()));
        }
        attrs.insert(
            "GeoTransform".into(),
            Value::String(self.transform.geo_transform_text()),
        );
        attrs
    }

    fn info(&self) -> RasterInfo {
        let ifd = &self.ifd;
        RasterInfo {
            width: ifd.width,
            height: ifd.height,
            bands: ifd.samples,
            dtype: ifd.dtype,
            layout: if ifd.tiled { "tiles" } else { "strips" },
            block: [ifd.chunk_h, ifd.chunk_w],
            interleave: if ifd.planar { "band" } else { "pixel" },
            compression: ifd::compression_name(ifd.compression).0.to_string(),
            predictor: ifd.predictor,
            bigtiff: ifd.bigtiff,
            overviews: ifd.overviews.iter().map(|(w, h)| [*w, *h]).collect(),
            crs_wkt: self.crs.as_ref().map(|c| c.wkt.clone()),
            epsg: self.crs.as_ref().and_then(|c| c.epsg),
            geo_transform: self.transform.gdal(),
            area_or_point: self.area_or_point(),
            nodata: ifd.nodata.clone(),
        }
    }
}

/// A tag value as rioxarray's `_parse_tag` reads it: `{a,b,…}` of numbers is a list of floats,
/// else an integer, else a float, else the text.
fn parse_tag(value: &str) -> Value {
    if let Some(inner) = value.strip_prefix('{').and_then(|v| v.strip_suffix('}')) {
        let parts: Option<Vec<f64>> = inner
            .split(',')
            .map(|p| p.trim().parse::<f64>().ok())
            .collect();
        if let Some(parts) = parts.filter(|p| !p.is_empty()) {
            return parts.into_iter().map(json_f64).collect();
        }
    }
    let t = value.trim();
    if let Ok(i) = t.parse::<i64>() {
        return Value::from(i);
    }
    if let Ok(f) = t.parse::<f64>() {
        if f.is_finite() {
            return json_f64(f);
        }
    }
    Value::String(value.to_string())
}

/// A float as a JSON attribute (`"NaN"`, `"Infinity"` for the non-finite).
fn json_f64(v: f64) -> Value {
    serde_json::Number::from_f64(v).map_or_else(
        || {
            Value::String(if v.is_nan() {
                "NaN".into()
            } else if v > 0.0 {
                "Infinity".into()
            } else {
                "-Infinity".into()
            })
        },
        Value::Number,
    )
}

/// The nodata value as `_FillValue` of type `dtype` (rioxarray casts it to the band's type).
#[allow(clippy::cast_possible_truncation)]
fn fill_json(dtype: DType, v: f64) -> Value {
    if dtype.is_integer() && v.fract() == 0.0 && v.is_finite() {
        if v < 0.0 {
            return Value::from(v as i64);
        }
        return Value::from(v as u64);
    }
    match dtype {
        DType::Float32 | DType::Float16 => json_f64(f64::from(v as f32)),
        _ => json_f64(v),
    }
}

/// One element of `dtype` holding the nodata value, or 0 when there is none or it does not fit.
fn fill_element(dtype: DType, nodata: Option<f64>) -> Vec<u8> {
    let mut out = Vec::with_capacity(dtype.size());
    let fits = nodata.filter(|v| !dtype.is_integer() || dtype.wrap(*v) == *v);
    dtype.push_f64(fits.unwrap_or(0.0), &mut out);
    out
}

/// The decoding of a band variable as xarray's rasterio engine applies it: rioxarray opens with
/// `mask_and_scale=True`, so it always reads through GDAL's mask (`masked=True`) into the type
/// `maybe_promote` gives the band type (float32 for 1- and 2-byte integers, float64 for wider
/// integers, floats as they are), whether or not there is a nodata value, then computes
/// `values * scale + offset` with GDAL's scale and offset as Python floats, which NumPy holds to
/// that type (so float32 results are unpacked in single precision). [`CfDecoding::from_attrs_typed`]
/// cannot say this (its rules are xarray's CF decoding, which keeps an unmasked, unpacked integer
/// type): the masking is the reader's, not the attributes'.
fn rasterio_decoding(dtype: DType, attrs: &Map<String, Value>, id: &str) -> Result<CfDecoding> {
    let mut d = identity(dtype, attrs, id)?;
    if matches!(d.decoded, crate::cf::Decoded::Numeric(_)) {
        d.decoded = crate::cf::Decoded::Numeric(match dtype {
            DType::Int8 | DType::UInt8 | DType::Int16 | DType::UInt16 => DType::Float32,
            t if t.is_float() || t == DType::Bool => t,
            _ => DType::Float64,
        });
    }
    Ok(d)
}

fn identity(dtype: DType, attrs: &Map<String, Value>, id: &str) -> Result<CfDecoding> {
    CfDecoding::from_attrs(attrs, dtype, None).map_err(|e| Error::InvalidMetadata {
        location: id.to_string(),
        reason: e.to_string(),
    })
}

/// Open a GeoTIFF (or COG) as xarray's rasterio engine does (see the module documentation).
/// `opts.bands` names the bands: one `(y, x)` variable per band instead of `band_data`.
///
/// # Errors
/// A file that is not a readable TIFF; [`Error::Unsupported`] for a compression or sample type
/// with no decoder; [`Error::Recipe`]-free [`Error::InvalidMetadata`] when `opts.bands` does
/// not name as many bands as the file has.
pub fn open(file: &RangeFile, opts: &InputOptions) -> Result<Input> {
    let id = file.id().to_string();
    let mut opened = parse(file)?;
    let ifd = opened.ifd.clone();
    let pool = match opened.pool.take() {
        Some(p) => p,
        None => Pool::new(
            opened.blocks.clone(),
            reader::open_decoder(&opened.blocks).map_err(|e| ifd::meta_error(&id, e))?,
        ),
    };
    let n = ifd.samples;
    // Named bands: every band in order, or (when the names are fewer) the bands whose GDAL
    // descriptions they are.
    let mut picked: Vec<(String, u16)> = Vec::new();
    if let Some(names) = &opts.bands {
        if names.len() == usize::from(n) {
            picked = names.iter().cloned().zip(0..n).collect();
        } else {
            picked = names
                .iter()
                .filter_map(|name| {
                    (0..n)
                        .find(|b| opened.band_role(*b, "description") == Some(name.as_str()))
                        .map(|b| (name.clone(), b))
                })
                .collect();
        }
        if picked.len() != names.len() {
            return Err(Error::InvalidMetadata {
                location: id,
                reason: format!(
                    "the input names {} bands ({}), the file has {n} and not all are band \
                     descriptions",
                    names.len(),
                    names.join(", ")
                ),
            });
        }
    }
    let fill = fill_element(ifd.dtype, opened.nodata());
    let mask = mask_plan(&opened, file);
    let raster = Arc::new(Raster::new(
        id.clone(),
        ifd.clone(),
        opened.blocks.clone(),
        pool,
        fill,
    ));
    let f64_id = identity(DType::Float64, &Map::new(), &id)?;
    let centres = opened.transform.centres();
    let [a, _, c0, _, e, f0] = centres.0;
    let rect = opened.transform.is_rectilinear();
    let mut dims = Vec::new();
    if opts.bands.is_none() {
        dims.push(InputDim {
            name: "band".into(),
            len: u64::from(n),
            coord: Some(Coord::computed(
                1.0,
                1.0,
                u64::from(n),
                DType::Int64,
                Map::new(),
                identity(DType::Int64, &Map::new(), &id)?,
            )),
        });
    }
    let (h, w) = (u64::from(ifd.height), u64::from(ifd.width));
    let coord = |start: f64, step: f64, len: u64| {
        rect.then(|| Coord::computed(start, step, len, DType::Float64, Map::new(), f64_id.clone()))
    };
    dims.push(InputDim {
        name: "y".into(),
        len: h,
        coord: coord(f0, e, h),
    });
    dims.push(InputDim {
        name: "x".into(),
        len: w,
        coord: coord(c0, a, w),
    });

    let mut variables = Vec::new();
    match &opts.bands {
        None => {
            let all: Vec<u16> = (0..n).collect();
            variables.push(band_var(&opened, &raster, &mask, "band_data", None, &all)?);
        }
        Some(_) => {
            for (name, b) in &picked {
                variables.push(band_var(&opened, &raster, &mask, name, Some(*b), &[*b])?);
            }
        }
    }
    if !rect {
        variables.extend(rotated_coords(
            &id, &centres, ifd.height, ifd.width, &f64_id,
        )?);
    }
    let sr = MemorySource::new(
        &format!("{id}#spatial_ref"),
        DType::Int64,
        (&[], &[]),
        0i64.to_ne_bytes().to_vec(),
        0i64.to_ne_bytes().to_vec(),
    )?;
    variables.push(InputVar {
        name: "spatial_ref".into(),
        dims: Vec::new(),
        source: Arc::new(sr),
        decoding: identity(DType::Int64, &Map::new(), &id)?,
        attrs: opened.spatial_ref_attrs(),
    });
    Ok(Input {
        location: id,
        dims,
        variables,
        // rioxarray's dataset is its band DataArray's: the tags are the band variable's.
        attrs: Map::new(),
        unreadable: Vec::new(),
        texts: Vec::new(),
    })
}

/// GDAL's mask of the file's bands, where it is not the nodata value, in
/// `GDALRasterBand::GetMaskBand`'s order: the internal mask, else a `.msk` file beside a local
/// file, else (with no nodata value) an alpha band that is band 2 of 2 or band 4 of 4. A mask
/// that cannot be read is named in a warning and the next in that order is tried.
fn mask_plan(opened: &Opened, file: &RangeFile) -> Option<MaskPlan> {
    let ifd = &opened.ifd;
    let id = file.id();
    if let Some(m) = &ifd.mask {
        match m.check(ifd.width, ifd.height, ifd.samples) {
            Ok(()) => {
                let mask = Mask::new(
                    format!("{id} (mask)"),
                    m.clone(),
                    file.clone(),
                    m.samples > 1,
                );
                return Some(MaskPlan::Image(Arc::new(mask)));
            }
            Err(why) => tracing::warn!("{id}: its internal mask is not applied: {why}"),
        }
    }
    if let Some(plan) = external_mask(ifd, file) {
        return Some(plan);
    }
    if opened.nodata().is_some() {
        return None;
    }
    alpha_band(ifd).map(MaskPlan::Alpha)
}

/// The mask in `<file>.msk` (or `.MSK`) beside a local file, as GDAL reads it: its first image,
/// 8-bit, used only when its `INTERNAL_MASK_FLAGS_1` metadata item says it is a mask; per
/// dataset (that item's bit 2) or one band of it per band.
fn external_mask(ifd: &Ifd, file: &RangeFile) -> Option<MaskPlan> {
    let id = file.id();
    let path = file.local_path()?;
    let msk = [".msk", ".MSK"]
        .iter()
        .map(|ext| {
            let mut p = path.as_os_str().to_owned();
            p.push(ext);
            std::path::PathBuf::from(p)
        })
        .find(|p| p.is_file())?;
    let opened = msk
        .to_str()
        .ok_or_else(|| Error::Other(format!("{}: not a UTF-8 path", msk.display())))
        .and_then(RangeFile::open)
        .and_then(|f| parse(&f).map(|o| (f, o)));
    let (f, o) = match opened {
        Ok(x) => x,
        Err(e) => {
            tracing::warn!("{id}: its .msk mask is not applied: {e}");
            return None;
        }
    };
    let flags = o
        .items
        .iter()
        .find(|i| i.sample.is_none() && i.name == "INTERNAL_MASK_FLAGS_1")
        .and_then(|i| i.value.trim().parse::<u32>().ok())?;
    let m = o.ifd.as_mask();
    let per_band = flags & 2 == 0;
    if per_band && m.samples != ifd.samples {
        tracing::warn!(
            "{id}: its .msk mask is not applied: per-band flags with {} bands for {}",
            m.samples,
            ifd.samples
        );
        return None;
    }
    match m.check(ifd.width, ifd.height, m.samples) {
        Ok(()) => Some(MaskPlan::Image(Arc::new(Mask::new(
            f.id().to_string(),
            m,
            f.clone(),
            per_band,
        )))),
        Err(why) => {
            tracing::warn!("{id}: its .msk mask is not applied: {why}");
            None
        }
    }
}

/// The band (0-based) GDAL takes as the others' mask: band 2 of 2 or band 4 of 4 when its
/// ExtraSamples entry says alpha (associated or not) and it holds bytes or 16-bit unsigned
/// integers.
fn alpha_band(ifd: &Ifd) -> Option<u16> {
    if !matches!(ifd.samples, 2 | 4) || !matches!(ifd.dtype, DType::UInt8 | DType::UInt16) {
        return None;
    }
    let extra = u16::try_from(ifd.extra_samples.len()).ok()?;
    let base = ifd.samples.checked_sub(extra)?;
    let last = ifd.samples - 1;
    let kind = ifd
        .extra_samples
        .get(usize::from(last.checked_sub(base)?))?;
    matches!(kind, 1 | 2).then_some(last)
}

fn band_var(
    opened: &Opened,
    raster: &Arc<Raster>,
    mask: &Option<MaskPlan>,
    name: &str,
    band: Option<u16>,
    bands: &[u16],
) -> Result<InputVar> {
    let id = format!("{}#{name}", raster.id);
    let mut source = TiffSource::new(id.clone(), raster.clone(), band);
    let mut attrs = opened.band_attrs(bands);
    let mut decoding = rasterio_decoding(opened.ifd.dtype, &attrs, &id)?;
    // An alpha band is not masked by itself.
    let mask = mask
        .clone()
        .filter(|m| !matches!(m, MaskPlan::Alpha(a) if bands == [*a]));
    if mask.is_some() || attrs.contains_key("scales") || attrs.contains_key("offsets") {
        // Scales or offsets that differ across bands: rioxarray unpacks each band with its own
        // (and keeps the lists in encoding); GDAL's mask: rioxarray reads through it. The
        // source does both here.
        let crate::cf::Decoded::Numeric(out) = decoding.decoded else {
            return Err(Error::InvalidMetadata {
                location: id,
                reason: "per-band scales on a time-valued band".into(),
            });
        };
        let n = opened.ifd.samples;
        let num = |b: u16, role: &str, default: f64| {
            opened
                .band_role(b, role)
                .and_then(|s| s.trim().parse::<f64>().ok())
                .unwrap_or(default)
        };
        source = source.unpacked(Unpack {
            out,
            scales: (0..n).map(|b| num(b, "scale", 1.0)).collect(),
            offsets: (0..n).map(|b| num(b, "offset", 0.0)).collect(),
            nodata: opened.nodata(),
            mask,
        });
        for key in [
            "scales",
            "offsets",
            "_FillValue",
            "scale_factor",
            "add_offset",
        ] {
            attrs.remove(key);
        }
        decoding = identity(out, &attrs, &id)?;
    }
    let dims = match band {
        Some(_) => vec!["y".to_string(), "x".to_string()],
        None => vec!["band".to_string(), "y".to_string(), "x".to_string()],
    };
    Ok(InputVar {
        name: name.to_string(),
        dims,
        source: Arc::new(source),
        attrs: decoding.visible_attrs(&attrs),
        decoding,
    })
}

/// `xc` and `yc (y, x)`: pixel centres of a rotated or sheared transform, as rioxarray computes
/// them (`x = (i·a + j·b) + c'`, `y = (i·d + j·e) + f'`).
#[allow(clippy::cast_precision_loss)]
fn rotated_coords(
    id: &str,
    centres: &Affine,
    height: u32,
    width: u32,
    decoding: &CfDecoding,
) -> Result<Vec<InputVar>> {
    let [a, b, c, d, e, f] = centres.0;
    let (h, w) = (u64::from(height), u64::from(width));
    let mut xs = Vec::with_capacity((h * w) as usize);
    let mut ys = Vec::with_capacity((h * w) as usize);
    for j in 0..h {
        for i in 0..w {
            let (i, j) = (i as f64, j as f64);
            xs.push((i * a + j * b) + c);
            ys.push((i * d + j * e) + f);
        }
    }
    let mut out = Vec::new();
    for (name, values) in [("xc", xs), ("yc", ys)] {
        let src = MemorySource::from_f64(
            &format!("{id}#{name}"),
            DType::Float64,
            (&[h, w], &[h, w]),
            &values,
        )?;
        out.push(InputVar {
            name: name.into(),
            dims: vec!["y".into(), "x".into()],
            source: Arc::new(src),
            decoding: decoding.clone(),
            attrs: Map::new(),
        });
    }
    Ok(out)
}

/// What `cubeforge info` shows of a GeoTIFF: size, bands, type, tiles or strips, compression
/// and predictor, overview sizes, CRS and transform.
///
/// # Errors
/// As [`open`].
pub fn describe(file: &RangeFile) -> Result<RasterInfo> {
    Ok(parse(file)?.info())
}

/// The text of TIFF tag `name` of the first image (`DateTime`, `ImageDescription`, `Software`,
/// `Artist`, `DocumentName`, `HostComputer`, `Copyright`, `Make`, `Model`, or GDAL's names for
/// them such as `TIFFTAG_DATETIME`), or of the GDAL metadata item of the dataset called `name`
/// (`ACQUISITION_START`); `None` when the file has none.
///
/// # Errors
/// As [`open`].
pub fn tag_text(file: &RangeFile, name: &str) -> Result<Option<String>> {
    let opened = parse(file)?;
    let tag = ifd::TEXT_TAGS
        .iter()
        .find(|(n, _, g)| n.eq_ignore_ascii_case(name) || g.eq_ignore_ascii_case(name));
    if let Some((n, _, _)) = tag {
        return Ok(opened
            .ifd
            .text
            .iter()
            .find(|(t, _)| t == n)
            .map(|(_, v)| v.clone()));
    }
    Ok(opened
        .items
        .iter()
        .find(|i| i.sample.is_none() && i.name == name)
        .map(|i| i.value.clone()))
}

#[cfg(test)]
mod tests;
