//! The pixels of a GeoTIFF's first image as [`ChunkSource`]s: `(band, y, x)` for all bands, or
//! `(y, x)` for one. A unit is a tile, or a group of strips of about 1 MiB; in pixel-interleaved
//! files a unit holds every band of its pixels, in band-interleaved ones a single band. Edge
//! units are whole (the stored padding, or the fill value past the last strip). Decoding is the
//! `tiff` crate's (predictors included), except DEFLATE integer chunks with predictor 1 or 2
//! (`deflate.rs`, the common COG layout) and JPEG with YCbCr photometry, which is decoded to
//! RGB with `zune-jpeg` as GDAL returns it.

use std::sync::{Arc, Mutex};

use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::formats::geotiff::ifd::{compression_name, Ifd};
use crate::formats::geotiff::mask::Mask;
use crate::formats::geotiff::reader::{Blocks, Pool};
use crate::region::{grid_blocks, Region};
use crate::source::{check_region, ChunkSource};

/// Decoded strips grouped into one unit reach about this many bytes.
const STRIP_UNIT_BYTES: u64 = 1 << 20;

/// A decoded chunk: its samples, and the rows and columns of data they hold.
type Decoded = (Arc<Vec<u8>>, u32, u32);

/// What the sources of one file share: its first IFD, its decoders, and the last chunks
/// decoded (per-band sources of a pixel-interleaved file decode each chunk once).
#[derive(Debug)]
pub(crate) struct Raster {
    pub(crate) id: String,
    pub(crate) ifd: Ifd,
    blocks: Arc<Blocks>,
    pool: Pool,
    /// Strips per unit (1 for tiles).
    strips_per_unit: u32,
    fill: Vec<u8>,
    recent: Recent,
}

/// The last 16 chunks decoded, by their TIFF number: shared by the sources of one file (per-band
/// sources of a pixel-interleaved file), and by the bands one mask chunk covers.
#[derive(Debug, Default)]
pub(crate) struct Recent(Mutex<Vec<(u32, Arc<Vec<u8>>)>>);

impl Recent {
    /// Chunk `index`, if it is among the last decoded.
    pub(crate) fn get(&self, index: u32) -> Option<Arc<Vec<u8>>> {
        let r = self.0.lock().ok()?;
        r.iter().find(|(k, _)| *k == index).map(|(_, v)| v.clone())
    }

    /// Keep chunk `index`, forgetting the oldest past 16.
    pub(crate) fn put(&self, index: u32, data: Arc<Vec<u8>>) {
        if let Ok(mut r) = self.0.lock() {
            if r.len() >= 16 {
                r.remove(0);
            }
            r.push((index, data));
        }
    }
}

impl Raster {
    /// The raster of `ifd`, decoded by `pool`'s decoders; `fill` is one element of the value
    /// of chunks that are not stored.
    pub(crate) fn new(
        id: String,
        ifd: Ifd,
        blocks: Arc<Blocks>,
        pool: Pool,
        fill: Vec<u8>,
    ) -> Raster {
        let strips_per_unit = if ifd.tiled {
            1
        } else {
            let strip = u64::from(ifd.width)
                * u64::from(ifd.chunk_h)
                * u64::from(ifd.samples_per_chunk())
                * ifd.dtype.size() as u64;
            u32::try_from((STRIP_UNIT_BYTES / strip.max(1)).max(1))
                .unwrap_or(u32::MAX)
                .min(ifd.chunks_down())
        };
        Raster {
            id,
            ifd,
            blocks,
            pool,
            strips_per_unit,
            fill,
            recent: Recent::default(),
        }
    }

    /// Rows and columns of a unit.
    pub(crate) fn unit_hw(&self) -> (u64, u64) {
        let ifd = &self.ifd;
        let rows = u64::from(ifd.chunk_h) * u64::from(self.strips_per_unit);
        (rows, u64::from(ifd.chunk_w))
    }

    /// What the chunk at `index` is called in messages.
    fn chunk_name(&self, index: u32) -> String {
        let kind = if self.ifd.tiled { "tile" } else { "strip" };
        format!("{} ({kind} {index})", self.id)
    }

    /// Decode chunk `index` (numbered as the TIFF numbers them: plane, row, column): its
    /// samples, C order over (rows, columns, samples per chunk), the rows and columns of the
    /// data in it (edge chunks hold fewer). `None` for a chunk not stored.
    fn chunk(&self, index: u32) -> Result<Option<Decoded>> {
        let ifd = &self.ifd;
        let i = index as usize;
        let (Some(&offset), Some(&count)) = (ifd.offsets.get(i), ifd.byte_counts.get(i)) else {
            return Err(Error::Other(format!(
                "{}: no such chunk",
                self.chunk_name(index)
            )));
        };
        let (rows, cols) = self.data_hw(index);
        if offset == 0 || count == 0 {
            return Ok(None);
        }
        if let Some(hit) = self.recent.get(index) {
            return Ok(Some((hit, rows, cols)));
        }
        let len = usize::try_from(count).map_err(|_| self.corrupt(index, "too large".into()))?;
        let stored = self.blocks.file().read(offset, len).map_err(|e| match e {
            Error::CorruptChunk { reason, .. } => self.corrupt(index, reason),
            other => other,
        })?;
        let decoded = if ifd.compression == 7 {
            self.decode_jpeg(index, &stored, rows, cols)?
        } else {
            self.decode_tiff(index, offset, stored, rows, cols)?
        };
        let decoded = Arc::new(decoded);
        if !ifd.planar && ifd.samples > 1 {
            self.recent.put(index, decoded.clone());
        }
        Ok(Some((decoded, rows, cols)))
    }

    /// Rows and columns of data in chunk `index`.
    fn data_hw(&self, index: u32) -> (u32, u32) {
        let ifd = &self.ifd;
        let per_plane = ifd.chunks_across() * ifd.chunks_down();
        let k = index % per_plane.max(1);
        let (r, c) = (k / ifd.chunks_across(), k % ifd.chunks_across());
        let rows = ifd.chunk_h.min(ifd.height - r * ifd.chunk_h);
        let cols = if ifd.tiled {
            ifd.chunk_w.min(ifd.width - c * ifd.chunk_w)
        } else {
            ifd.width
        };
        (rows, cols)
    }

    fn corrupt(&self, index: u32, reason: String) -> Error {
        Error::CorruptChunk {
            location: self.chunk_name(index),
            reason,
        }
    }

    fn decode_tiff(
        &self,
        index: u32,
        offset: u64,
        stored: bytes::Bytes,
        rows: u32,
        cols: u32,
    ) -> Result<Vec<u8>> {
        let ifd = &self.ifd;
        let spc = usize::from(ifd.samples_per_chunk());
        let pixel = spc * ifd.dtype.size();
        if super::deflate::applies(ifd) {
            // Tiles are stored whole; a strip holds the rows it has.
            let (sw, sh) = if ifd.tiled {
                (ifd.chunk_w, ifd.chunk_h)
            } else {
                (cols, rows)
            };
            let mut out = vec![0u8; sw as usize * sh as usize * pixel];
            if super::deflate::decode(&stored, &mut out, ifd, sw as usize * spc, spc) {
                return Ok(compact(out, (sw, sh), (cols, rows), pixel));
            }
        }
        let mut dec = self
            .pool
            .take()
            .map_err(|e| self.corrupt(index, e.to_string()))?;
        // The crate's idea of the chunk's data size (it takes edge tiles of later planes of a
        // band-interleaved file for whole ones, which they are as stored).
        let (cw, ch) = dec.chunk_data_dimensions(index);
        if cw < cols || ch < rows {
            return Err(self.corrupt(index, format!("{cw}x{ch} decoded, {cols}x{rows} wanted")));
        }
        let mut out = vec![0u8; cw as usize * ch as usize * pixel];
        dec.inner().set_window(Some((offset, stored)));
        let got = dec.read_chunk_bytes(index, &mut out);
        dec.inner().set_window(None);
        match got {
            Ok(()) => {
                self.pool.give(dec);
                Ok(compact(out, (cw, ch), (cols, rows), pixel))
            }
            Err(tiff::TiffError::UnsupportedError(u)) => Err(Error::Unsupported {
                location: self.chunk_name(index),
                feature: "TIFF feature".into(),
                detail: u.to_string(),
            }),
            Err(e) => Err(self.corrupt(index, e.to_string())),
        }
    }

    /// A JPEG chunk: the shared tables, then the chunk's own stream, decoded to RGB for YCbCr
    /// photometry (as GDAL does), as stored otherwise; clipped to the chunk's data.
    fn decode_jpeg(&self, index: u32, stored: &[u8], rows: u32, cols: u32) -> Result<Vec<u8>> {
        use zune_core::bytestream::ZCursor;
        use zune_core::colorspace::ColorSpace;
        use zune_core::options::DecoderOptions;
        let ifd = &self.ifd;
        let mut stream = Vec::with_capacity(stored.len() + 1024);
        match &ifd.jpeg_tables {
            Some(t) if t.len() >= 4 && stored.len() >= 2 => {
                stream.extend_from_slice(&t[..t.len() - 2]);
                stream.extend_from_slice(&stored[2..]);
            }
            _ => stream.extend_from_slice(stored),
        }
        let mut options = DecoderOptions::default();
        if ifd.photometric == 6 {
            options = options.jpeg_set_out_colorspace(ColorSpace::RGB);
        }
        let mut dec = zune_jpeg::JpegDecoder::new_with_options(ZCursor::new(stream), options);
        let decoded = dec
            .decode()
            .map_err(|e| self.corrupt(index, format!("JPEG: {e:?}")))?;
        let (w, _h) = dec
            .dimensions()
            .ok_or_else(|| self.corrupt(index, "JPEG without dimensions".into()))?;
        let spc = usize::from(ifd.samples_per_chunk());
        let (rows, cols, w) = (rows as usize, cols as usize, w);
        if ifd.dtype != DType::UInt8 || decoded.len() < rows * w * spc || w < cols {
            return Err(self.corrupt(
                index,
                format!(
                    "JPEG decodes to {} bytes, {w} wide; {rows}x{cols}x{spc} wanted",
                    decoded.len()
                ),
            ));
        }
        let mut out = Vec::with_capacity(rows * cols * spc);
        for r in 0..rows {
            out.extend_from_slice(&decoded[r * w * spc..(r * w + cols) * spc]);
        }
        Ok(out)
    }
}

/// A decoded chunk of `stored` = (columns, rows) pixels of `pixel` bytes, cut to the `data`
/// (columns, rows) at its start (an edge tile holds padding past the image).
fn compact(out: Vec<u8>, stored: (u32, u32), data: (u32, u32), pixel: usize) -> Vec<u8> {
    let ((sw, sh), (cols, rows)) = (stored, data);
    if sw == cols && sh == rows {
        return out;
    }
    let row = cols as usize * pixel;
    let mut compact = Vec::with_capacity(rows as usize * row);
    for r in 0..rows as usize {
        let at = r * sw as usize * pixel;
        compact.extend_from_slice(&out[at..at + row]);
    }
    compact
}

/// Bands unpacked by the source itself, as rioxarray unpacks bands whose GDAL scales or offsets
/// differ (one `scale_factor` cannot say them), or masks them by GDAL's mask (which no
/// attribute can say): nodata or masked pixels NaN, others `value * scale + offset` computed
/// in `out` (float32 results in single precision, as NumPy computes them with Python-float
/// scales).
#[derive(Debug, Clone)]
pub(crate) struct Unpack {
    /// The decoded type (rioxarray's `maybe_promote` of the band type).
    pub(crate) out: DType,
    /// Scale and offset per band (0-based, all bands of the file).
    pub(crate) scales: Vec<f64>,
    pub(crate) offsets: Vec<f64>,
    /// The nodata value, if any (ignored by GDAL where the file has a mask).
    pub(crate) nodata: Option<f64>,
    /// GDAL's mask of the bands, when it is not the nodata value.
    pub(crate) mask: Option<MaskPlan>,
}

/// Where GDAL's mask of a band comes from (see `mask.rs`).
#[derive(Debug, Clone)]
pub(crate) enum MaskPlan {
    /// A mask image, internal or in a `.msk` file.
    Image(Arc<Mask>),
    /// The alpha band (0-based): the other bands are masked where it is 0.
    Alpha(u16),
}

impl Unpack {
    #[allow(clippy::cast_possible_truncation)]
    fn value(&self, band: u16, raw: f64) -> f64 {
        let b = usize::from(band);
        let (s, o) = (
            self.scales.get(b).copied().unwrap_or(1.0),
            self.offsets.get(b).copied().unwrap_or(0.0),
        );
        if self.mask.is_none()
            && self
                .nodata
                .is_some_and(|n| n == raw || (n.is_nan() && raw.is_nan()))
        {
            return f64::NAN;
        }
        if self.out == DType::Float32 {
            f64::from((raw as f32) * (s as f32) + (o as f32))
        } else {
            raw * s + o
        }
    }
}

/// The pixels of a TIFF: all bands `(band, y, x)`, or one band `(y, x)`.
#[derive(Debug)]
pub(crate) struct TiffSource {
    id: String,
    raster: Arc<Raster>,
    /// `None`: every band; `Some(b)`: band `b` (0-based) alone.
    band: Option<u16>,
    shape: Vec<u64>,
    chunks: Vec<u64>,
    unpack: Option<Unpack>,
}

impl TiffSource {
    /// The source of `raster`'s bands (`None`: all, as `(band, y, x)`), called `id`.
    pub(crate) fn new(id: String, raster: Arc<Raster>, band: Option<u16>) -> TiffSource {
        let ifd = &raster.ifd;
        let (uh, uw) = raster.unit_hw();
        let (h, w) = (u64::from(ifd.height), u64::from(ifd.width));
        let (shape, chunks) = match band {
            Some(_) => (vec![h, w], vec![uh, uw]),
            None => {
                let nb = if ifd.planar {
                    1
                } else {
                    u64::from(ifd.samples)
                };
                (vec![u64::from(ifd.samples), h, w], vec![nb, uh, uw])
            }
        };
        TiffSource {
            id,
            raster,
            band,
            shape,
            chunks,
            unpack: None,
        }
    }

    /// This source with its bands unpacked by `unpack`.
    pub(crate) fn unpacked(mut self, unpack: Unpack) -> TiffSource {
        self.unpack = Some(unpack);
        self
    }

    /// The TIFF's number of the chunk of `band` in chunk row `row` and column `col`.
    fn chunk_index(&self, band: u16, row: u32, col: u64) -> u32 {
        let ifd = &self.raster.ifd;
        let (across, down) = (ifd.chunks_across(), ifd.chunks_down());
        let plane = if ifd.planar { u32::from(band) } else { 0 };
        plane * across * down + row * across + u32::try_from(col).unwrap_or(0)
    }

    /// The stored samples of `bands` (0-based) in the unit at unit row `uy` and column `ux`:
    /// C order over (band, rows, columns) of the whole unit, the fill value where no data is;
    /// `None` when none of its chunks is stored.
    fn gather(&self, bands: &[u16], uy: u64, ux: u64) -> Result<Option<Vec<u8>>> {
        let raster = &self.raster;
        let ifd = &raster.ifd;
        let (uh, uw) = raster.unit_hw();
        let esize = ifd.dtype.size();
        let (uh_us, uw_us) = (
            usize::try_from(uh).unwrap_or(0),
            usize::try_from(uw).unwrap_or(0),
        );
        let spc = usize::from(ifd.samples_per_chunk());
        let first_row = u32::try_from(uy * uh / u64::from(ifd.chunk_h)).unwrap_or(u32::MAX);
        let chunk_rows = if ifd.tiled { 1 } else { raster.strips_per_unit };
        let mut out = raster.fill.repeat(bands.len() * uh_us * uw_us);
        let mut any = false;
        for (bi, &band) in bands.iter().enumerate() {
            for cr in first_row..(first_row + chunk_rows).min(ifd.chunks_down()) {
                let index = self.chunk_index(band, cr, ux);
                let Some((data, rows, cols)) = raster.chunk(index)? else {
                    continue;
                };
                any = true;
                let sample = if ifd.planar { 0 } else { usize::from(band) };
                let row0 = ((cr - first_row) * ifd.chunk_h) as usize;
                for r in 0..rows as usize {
                    let dst_row = (bi * uh_us + row0 + r) * uw_us;
                    if spc == 1 {
                        let (src, n) = (r * cols as usize * esize, cols as usize * esize);
                        out[dst_row * esize..dst_row * esize + n]
                            .copy_from_slice(&data[src..src + n]);
                        continue;
                    }
                    for c in 0..cols as usize {
                        let src = ((r * cols as usize + c) * spc + sample) * esize;
                        let dst = (dst_row + c) * esize;
                        out[dst..dst + esize].copy_from_slice(&data[src..src + esize]);
                    }
                }
            }
        }
        Ok(any.then_some(out))
    }

    /// GDAL's mask of each of `bands` over the unit at (`uy`, `ux`): per band, `None` when the
    /// band is not masked, else a flag per pixel of the whole unit (1 valid; pixels past the
    /// image valid).
    fn validity(
        &self,
        unpack: &Unpack,
        bands: &[u16],
        uy: u64,
        ux: u64,
    ) -> Result<Vec<Option<Vec<u8>>>> {
        let raster = &self.raster;
        let ifd = &raster.ifd;
        let (uh, uw) = raster.unit_hw();
        let (y0, x0) = (uy * uh, ux * uw);
        match &unpack.mask {
            None => Ok(vec![None; bands.len()]),
            Some(MaskPlan::Image(mask)) => {
                let h = uh.min(u64::from(ifd.height) - y0);
                let w = uw.min(u64::from(ifd.width) - x0);
                let mut out: Vec<Option<Vec<u8>>> = Vec::with_capacity(bands.len());
                for (bi, &band) in bands.iter().enumerate() {
                    if bi > 0 && !mask.per_band() {
                        out.push(out[0].clone());
                        continue;
                    }
                    let got = mask.valid(band, y0, x0, h, w)?;
                    let mut whole = vec![1u8; usize::try_from(uh * uw).unwrap_or(0)];
                    let (h, w, uw) = (h as usize, w as usize, uw as usize);
                    for r in 0..h {
                        whole[r * uw..r * uw + w].copy_from_slice(&got[r * w..(r + 1) * w]);
                    }
                    out.push(Some(whole));
                }
                Ok(out)
            }
            Some(MaskPlan::Alpha(alpha)) => {
                let esize = ifd.dtype.size();
                let samples = match self.gather(&[*alpha], uy, ux)? {
                    Some(s) => s,
                    None => raster.fill.repeat(usize::try_from(uh * uw).unwrap_or(0)),
                };
                let flags: Vec<u8> = samples
                    .chunks_exact(esize)
                    .map(|e| u8::from(ifd.dtype.element_to_f64(e) != 0.0))
                    .collect();
                Ok(bands
                    .iter()
                    .map(|b| (b != alpha).then(|| flags.clone()))
                    .collect())
            }
        }
    }

    /// The bands (0-based) unit `unit` holds.
    fn unit_bands(&self, unit: &[u64]) -> Vec<u16> {
        let ifd = &self.raster.ifd;
        match self.band {
            Some(b) => vec![b],
            None if ifd.planar => vec![u16::try_from(unit[0]).unwrap_or(u16::MAX)],
            None => (0..ifd.samples).collect(),
        }
    }
}

impl ChunkSource for TiffSource {
    fn id(&self) -> &str {
        &self.id
    }

    fn dtype(&self) -> DType {
        self.unpack
            .as_ref()
            .map_or(self.raster.ifd.dtype, |u| u.out)
    }

    fn shape(&self) -> &[u64] {
        &self.shape
    }

    fn chunk_shape(&self) -> &[u64] {
        &self.chunks
    }

    /// The TIFF's blocks (a tile, or one strip's rows as GDAL counts them: at most the
    /// height), where a unit may group several strips.
    fn stored_chunks(&self) -> Option<Vec<u64>> {
        let ifd = &self.raster.ifd;
        let rows = if ifd.tiled {
            u64::from(ifd.chunk_h)
        } else {
            u64::from(ifd.chunk_h).clamp(1, u64::from(ifd.height).max(1))
        };
        let mut c = self.chunks.clone();
        let n = c.len();
        c[n - 2] = rows;
        Some(c)
    }

    fn units_in(&self, start: &[u64], shape: &[u64]) -> Result<Vec<(Vec<u64>, Region)>> {
        check_region(&self.id, &self.shape, start, shape)?;
        Ok(grid_blocks(start, shape, &self.chunks))
    }

    fn unit_bytes(&self, _unit: &[u64]) -> usize {
        let n: u64 = self.chunks.iter().product();
        usize::try_from(n).unwrap_or(usize::MAX) * self.dtype().size()
    }

    fn read_unit(&self, unit: &[u64]) -> Result<Option<Vec<u8>>> {
        let raster = &self.raster;
        let ifd = &raster.ifd;
        let (uy, ux) = (unit[unit.len() - 2], unit[unit.len() - 1]);
        let (uh, uw) = raster.unit_hw();
        if ux >= u64::from(ifd.chunks_across()) || uy * uh >= u64::from(ifd.height) {
            return Err(Error::Other(format!("{}: no unit {unit:?}", self.id)));
        }
        let bands = self.unit_bands(unit);
        if ifd.tiled && ifd.samples_per_chunk() == 1 && bands.len() == 1 && self.unpack.is_none() {
            // One whole tile of one band is the unit as decoded: no copy.
            let index = self.chunk_index(bands[0], u32::try_from(uy).unwrap_or(u32::MAX), ux);
            let (rows, cols) = raster.data_hw(index);
            if u64::from(rows) == uh && u64::from(cols) == uw {
                return Ok(raster
                    .chunk(index)?
                    .map(|(data, _, _)| Arc::try_unwrap(data).unwrap_or_else(|d| d.to_vec())));
            }
        }
        let masked = self.unpack.as_ref().is_some_and(|u| u.mask.is_some());
        let out = match self.gather(&bands, uy, ux)? {
            Some(out) => out,
            // GDAL reads chunks not stored as the fill value, which the mask may keep valid.
            None if masked => raster
                .fill
                .repeat(bands.len() * usize::try_from(uh * uw).unwrap_or(0)),
            None => return Ok(None),
        };
        let Some(unpack) = &self.unpack else {
            return Ok(Some(out));
        };
        let esize = ifd.dtype.size();
        let per_band = usize::try_from(uh * uw).unwrap_or(0);
        let valid = self.validity(unpack, &bands, uy, ux)?;
        let mut unpacked = Vec::with_capacity(out.len() / esize * unpack.out.size());
        for (k, e) in out.chunks_exact(esize).enumerate() {
            let bi = k / per_band.max(1);
            let band = bands.get(bi).copied().unwrap_or(0);
            let ok = valid
                .get(bi)
                .and_then(Option::as_ref)
                .is_none_or(|v| v[k % per_band.max(1)] != 0);
            let value = if ok {
                unpack.value(band, ifd.dtype.element_to_f64(e))
            } else {
                f64::NAN
            };
            unpack.out.push_f64(value, &mut unpacked);
        }
        Ok(Some(unpacked))
    }

    fn fill_element(&self) -> Vec<u8> {
        match &self.unpack {
            Some(u) => {
                let mut out = Vec::new();
                u.out.push_f64(f64::NAN, &mut out);
                out
            }
            None => self.raster.fill.clone(),
        }
    }

    fn local_file(&self, _unit: &[u64]) -> Option<std::path::PathBuf> {
        self.raster
            .blocks
            .file()
            .local_path()
            .map(std::path::Path::to_path_buf)
    }

    fn encoding(&self) -> Vec<String> {
        let ifd = &self.raster.ifd;
        let mut out = Vec::new();
        if ifd.compression != 1 {
            out.push(compression_name(ifd.compression).0.to_string());
        }
        if ifd.predictor > 1 {
            out.push(format!("predictor={}", ifd.predictor));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unpack_masks_nodata_and_scales_each_band_in_its_precision() {
        let u = Unpack {
            out: DType::Float32,
            scales: vec![0.0001, 0.0002],
            offsets: vec![-0.1, 0.5],
            nodata: Some(0.0),
            mask: None,
        };
        assert!(u.value(0, 0.0).is_nan());
        #[allow(clippy::cast_possible_truncation)]
        let want = f64::from(9449f32 * (0.0001f64 as f32) + (-0.1f64 as f32));
        assert_eq!(u.value(0, 9449.0).to_bits(), want.to_bits());
        let wide = Unpack {
            out: DType::Float64,
            ..u
        };
        assert_eq!(wide.value(1, 10.0), 10.0 * 0.0002 + 0.5);
    }
}
