//! GDAL's mask of a GeoTIFF, which xarray's rasterio engine reads through (`masked=True`):
//!
//! - an internal mask: the transparency-mask image after the first one (NewSubfileType 4,
//!   PhotometricInterpretation 4, 1-bit or 8-bit), as `GDAL_TIFF_INTERNAL_MASK` writes it; one
//!   sample for every band (a per-dataset mask) or one per band;
//! - an external mask: the first image of `<file>.msk` beside a local file (8-bit);
//! - an alpha band: the last band of a 2-band grey or 4-band RGB file whose ExtraSamples call it
//!   alpha, masking the other bands (used only when the file has no nodata value, as GDAL's
//!   `GetMaskBand` orders them).
//!
//! A pixel is valid where its mask value is non-zero. An internal or external mask replaces the
//! nodata value: GDAL then masks by the mask alone, so a pixel holding the nodata value but
//! valid in the mask is a value.
//!
//! The `tiff` crate reads no transparency masks (its colour types refuse PhotometricInterpretation
//! 4), so the mask's chunks are inflated here with the crates of each compression (`flate2`,
//! `weezl`, `zstd`; PackBits, a few lines, tested against the `tiff` crate's encoder) and their
//! rows of bits unpacked.

use std::io::Read;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::formats::file::RangeFile;
use crate::formats::geotiff::source::Recent;

/// The largest decoded mask chunk read (the `tiff` crate's limit for the image's chunks).
const MAX_CHUNK_BYTES: u64 = 1 << 30;

/// The layout of a mask image.
#[derive(Debug, Clone)]
pub(crate) struct MaskIfd {
    /// Width and height in pixels (the image's).
    pub width: u32,
    pub height: u32,
    /// Samples per pixel: 1 (every band) or the image's band count (one per band).
    pub samples: u16,
    /// Bits per sample: 1 or 8.
    pub bits: u8,
    /// Compression tag value.
    pub compression: u16,
    /// Predictor tag value (masks have none: 1).
    pub predictor: u16,
    /// Samples in separate planes (PlanarConfiguration 2).
    pub planar: bool,
    /// Tiles (else strips).
    pub tiled: bool,
    /// Chunk width (the image width for strips) and height (rows per strip).
    pub chunk_w: u32,
    pub chunk_h: u32,
    /// Where each chunk's stored bytes start, and how many there are.
    pub offsets: Vec<u64>,
    pub byte_counts: Vec<u64>,
}

impl MaskIfd {
    /// Whether cubeforge can read this mask for an image of `width` × `height` with `bands`
    /// bands; why not otherwise.
    pub(crate) fn check(
        &self,
        width: u32,
        height: u32,
        bands: u16,
    ) -> std::result::Result<(), String> {
        if self.width != width || self.height != height {
            return Err(format!(
                "the mask is {}x{}, the image {width}x{height}",
                self.width, self.height
            ));
        }
        if self.samples != 1 && self.samples != bands {
            return Err(format!(
                "the mask has {} samples for {bands} bands",
                self.samples
            ));
        }
        if self.bits != 1 && self.bits != 8 {
            return Err(format!("{}-bit mask samples", self.bits));
        }
        if !matches!(self.compression, 1 | 5 | 8 | 32946 | 32773 | 50000) {
            return Err(format!("mask compression {}", self.compression));
        }
        if self.predictor != 1 {
            return Err(format!("a mask with predictor {}", self.predictor));
        }
        let planes = if self.planar {
            u64::from(self.samples)
        } else {
            1
        };
        if self.chunk_w == 0 || self.chunk_h == 0 {
            return Err("a mask chunk of no size".into());
        }
        let chunk = u64::from(self.chunk_w)
            .checked_mul(u64::from(self.samples))
            .and_then(|n| n.checked_mul(u64::from(self.bits)))
            .map(|bits| bits.div_ceil(8))
            .and_then(|row| row.checked_mul(u64::from(self.chunk_h)));
        if chunk.is_none_or(|n| n > MAX_CHUNK_BYTES) {
            return Err(format!(
                "mask chunks of {}x{} samples, over {} MiB each",
                self.chunk_w,
                self.chunk_h,
                MAX_CHUNK_BYTES >> 20
            ));
        }
        let want = u64::from(width.div_ceil(self.chunk_w))
            * u64::from(height.div_ceil(self.chunk_h))
            * planes;
        if self.offsets.len() as u64 != want || self.byte_counts.len() as u64 != want {
            return Err(format!(
                "{} mask chunk offsets and {} byte counts for {want} chunks",
                self.offsets.len(),
                self.byte_counts.len()
            ));
        }
        Ok(())
    }

    fn across(&self) -> u32 {
        self.width.div_ceil(self.chunk_w)
    }

    fn down(&self) -> u32 {
        self.height.div_ceil(self.chunk_h)
    }

    fn samples_per_chunk(&self) -> usize {
        if self.planar {
            1
        } else {
            usize::from(self.samples)
        }
    }
}

/// A mask image and the chunks of it decoded last.
#[derive(Debug)]
pub(crate) struct Mask {
    /// What messages call the mask (the file, and `mask`).
    id: String,
    ifd: MaskIfd,
    file: RangeFile,
    /// Whether band `b` is masked by sample `b` (else every band by sample 0).
    per_band: bool,
    recent: Recent,
}

impl Mask {
    /// The mask `ifd` of `file`; `per_band`: band `b` is masked by sample `b` of it.
    pub(crate) fn new(id: String, ifd: MaskIfd, file: RangeFile, per_band: bool) -> Mask {
        Mask {
            id,
            ifd,
            file,
            per_band,
            recent: Recent::default(),
        }
    }

    /// Whether the mask holds one sample per band (else one for all).
    pub(crate) fn per_band(&self) -> bool {
        self.per_band
    }

    /// Validity (1 valid, 0 masked) of the pixels of rows `y0 .. y0 + h` and columns
    /// `x0 .. x0 + w` (inside the image) for band `band` (0-based; any band of a per-dataset
    /// mask), C order. The layout was accepted by [`MaskIfd::check`], so a chunk holds at most
    /// 1 GiB and its index fits.
    ///
    /// # Errors
    /// A mask chunk that cannot be read or decoded, naming it.
    pub(crate) fn valid(&self, band: u16, y0: u64, x0: u64, h: u64, w: u64) -> Result<Vec<u8>> {
        let m = &self.ifd;
        let mut out = vec![1u8; usize::try_from(h * w).unwrap_or(0)];
        if h == 0 || w == 0 {
            return Ok(out);
        }
        let sample = if self.per_band() {
            usize::from(band)
        } else {
            0
        };
        let (plane, s) = if m.planar {
            (u64::try_from(sample).unwrap_or(0), 0)
        } else {
            (0, sample)
        };
        let spc = m.samples_per_chunk();
        let (ch, cw) = (u64::from(m.chunk_h), u64::from(m.chunk_w));
        let (across, down) = (u64::from(m.across()), u64::from(m.down()));
        let at = |y: u64, x: u64| usize::try_from((y - y0) * w + (x - x0)).unwrap_or(0);
        for cr in y0 / ch..=(y0 + h - 1) / ch {
            let rows = (cr * ch).max(y0)..((cr + 1) * ch).min(y0 + h);
            for cc in x0 / cw..=(x0 + w - 1) / cw {
                let cols = (cc * cw).max(x0)..((cc + 1) * cw).min(x0 + w);
                let index = u32::try_from(plane * across * down + cr * across + cc)
                    .map_err(|_| Error::Other(format!("{}: no chunk {cr}, {cc}", self.id)))?;
                let Some(chunk) = self.chunk(index)? else {
                    // A chunk not stored: GDAL reads it as zeros, all masked.
                    for y in rows.clone() {
                        for x in cols.clone() {
                            out[at(y, x)] = 0;
                        }
                    }
                    continue;
                };
                let row_len = row_bytes(m.chunk_w as usize * spc, m.bits);
                for y in rows.clone() {
                    let row =
                        &chunk[usize::try_from(y - cr * ch).unwrap_or(0) * row_len..][..row_len];
                    for x in cols.clone() {
                        let k = usize::try_from(x - cc * cw).unwrap_or(0) * spc + s;
                        let on = if m.bits == 1 {
                            row[k / 8] >> (7 - k % 8) & 1
                        } else {
                            row[k]
                        };
                        out[at(y, x)] = u8::from(on != 0);
                    }
                }
            }
        }
        Ok(out)
    }

    /// Chunk `index` inflated: its rows of packed samples, whole (a tile's padding included;
    /// a strip's rows of data); `None` when not stored.
    fn chunk(&self, index: u32) -> Result<Option<Arc<Vec<u8>>>> {
        let m = &self.ifd;
        let i = index as usize;
        let (Some(&offset), Some(&count)) = (m.offsets.get(i), m.byte_counts.get(i)) else {
            return Err(self.corrupt(index, "no such chunk".into()));
        };
        if offset == 0 || count == 0 {
            return Ok(None);
        }
        if let Some(hit) = self.recent.get(index) {
            return Ok(Some(hit));
        }
        let rows = if m.tiled {
            m.chunk_h
        } else {
            let r = index % m.down().max(1);
            m.chunk_h.min(m.height - r * m.chunk_h)
        };
        let want = row_bytes(m.chunk_w as usize * m.samples_per_chunk(), m.bits) * rows as usize;
        let len = usize::try_from(count).map_err(|_| self.corrupt(index, "too large".into()))?;
        let stored = self.file.read(offset, len).map_err(|e| match e {
            Error::CorruptChunk { reason, .. } => self.corrupt(index, reason),
            other => other,
        })?;
        let data = inflate(m.compression, &stored, want).map_err(|why| self.corrupt(index, why))?;
        if data.len() < want {
            return Err(self.corrupt(
                index,
                format!("{} bytes decoded, {want} wanted", data.len()),
            ));
        }
        let data = Arc::new(data);
        self.recent.put(index, data.clone());
        Ok(Some(data))
    }

    fn corrupt(&self, index: u32, reason: String) -> Error {
        let kind = if self.ifd.tiled { "tile" } else { "strip" };
        Error::CorruptChunk {
            location: format!("{} ({kind} {index})", self.id),
            reason,
        }
    }
}

/// Bytes in a row of `samples` samples of `bits` bits (rows start on a byte).
fn row_bytes(samples: usize, bits: u8) -> usize {
    (samples * usize::from(bits)).div_ceil(8)
}

/// `stored` decompressed by TIFF compression `compression`, at most `want` bytes of it.
fn inflate(compression: u16, stored: &[u8], want: usize) -> std::result::Result<Vec<u8>, String> {
    let limit = u64::try_from(want).unwrap_or(u64::MAX);
    let mut out = Vec::with_capacity(want);
    match compression {
        1 => out.extend_from_slice(&stored[..want.min(stored.len())]),
        8 | 32946 => {
            flate2::read::ZlibDecoder::new(stored)
                .take(limit)
                .read_to_end(&mut out)
                .map_err(|e| format!("DEFLATE: {e}"))?;
        }
        50000 => {
            zstd::stream::read::Decoder::new(stored)
                .map_err(|e| format!("ZSTD: {e}"))?
                .take(limit)
                .read_to_end(&mut out)
                .map_err(|e| format!("ZSTD: {e}"))?;
        }
        5 => {
            let mut dec = weezl::decode::Decoder::with_tiff_size_switch(weezl::BitOrder::Msb, 8);
            out.resize(want, 0);
            let (mut read, mut written) = (0, 0);
            while written < want {
                let got = dec.decode_bytes(&stored[read..], &mut out[written..]);
                read += got.consumed_in;
                written += got.consumed_out;
                match got.status {
                    Ok(weezl::LzwStatus::Ok) if got.consumed_in + got.consumed_out > 0 => {}
                    Ok(_) => break,
                    // A stream may end badly once every byte is out.
                    Err(e) if written < want => return Err(format!("LZW: {e}")),
                    Err(_) => break,
                }
            }
            out.truncate(written);
        }
        32773 => packbits(stored, want, &mut out),
        other => return Err(format!("mask compression {other}")),
    }
    Ok(out)
}

/// Apple's PackBits (TIFF compression 32773): a header byte `n`, then `n + 1` literal bytes
/// (0 ≤ n ≤ 127), or one byte repeated `1 - n` times (-127 ≤ n ≤ -1); -128 is skipped.
/// Decodes until `want` bytes are out or the input ends.
fn packbits(stored: &[u8], want: usize, out: &mut Vec<u8>) {
    let mut i = 0;
    while i < stored.len() && out.len() < want {
        let n = i8::from_ne_bytes([stored[i]]);
        i += 1;
        if n >= 0 {
            let k = (usize::from(n.unsigned_abs()) + 1).min(stored.len() - i);
            out.extend_from_slice(&stored[i..i + k]);
            i += k;
        } else if n != -128 {
            let Some(&b) = stored.get(i) else { break };
            i += 1;
            out.extend(std::iter::repeat_n(b, 1 + usize::from(n.unsigned_abs())));
        }
    }
    out.truncate(want);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packbits_decodes_the_specification_example() {
        // Apple Technical Note TN1023's example.
        let packed = [
            0xFE, 0xAA, 0x02, 0x80, 0x00, 0x2A, 0xFD, 0xAA, 0x03, 0x80, 0x00, 0x2A, 0x22, 0xF7,
            0xAA,
        ];
        let want = [
            0xAA, 0xAA, 0xAA, 0x80, 0x00, 0x2A, 0xAA, 0xAA, 0xAA, 0xAA, 0x80, 0x00, 0x2A, 0x22,
            0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA,
        ];
        let mut out = Vec::new();
        packbits(&packed, 1000, &mut out);
        assert_eq!(out, want);
    }

    fn layout(chunk: u32, samples: u16, bits: u8) -> MaskIfd {
        MaskIfd {
            width: 64,
            height: 64,
            samples,
            bits,
            compression: 8,
            predictor: 1,
            planar: false,
            tiled: true,
            chunk_w: chunk,
            chunk_h: chunk,
            offsets: vec![8],
            byte_counts: vec![100],
        }
    }

    #[test]
    fn hostile_layouts_are_refused_not_allocated() {
        assert!(layout(64, 1, 1).check(64, 64, 1).is_ok());
        // 2^21 x 2^21 one-bit samples: 512 GiB a chunk.
        let why = layout(1 << 21, 1, 1).check(64, 64, 1).expect_err("huge");
        assert!(why.contains("over 1024 MiB"), "{why}");
        // A size whose product overflows 64 bits.
        assert!(layout(u32::MAX, 4, 8).check(64, 64, 4).is_err());
        assert!(layout(0, 1, 1).check(64, 64, 1).is_err());
        assert!(layout(64, 1, 4).check(64, 64, 1).is_err(), "4-bit masks");
        assert!(
            layout(64, 2, 1).check(64, 64, 3).is_err(),
            "2 samples for 3 bands"
        );
        assert!(layout(64, 1, 1).check(64, 65, 1).is_err(), "another size");
        let mut p = layout(64, 1, 1);
        p.predictor = 2;
        assert!(p.check(64, 64, 1).is_err());
        let mut short = layout(32, 1, 1);
        short.offsets = vec![8; 3];
        short.byte_counts = vec![100; 3];
        assert!(
            short.check(64, 64, 1).is_err(),
            "3 chunk offsets for 4 chunks"
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]
        /// Every compression a mask may use gives back what the `tiff` crate's encoders (and
        /// zstd's) compressed, runs and literals alike.
        #[test]
        fn inflate_reverses_each_encoder(
            runs in proptest::collection::vec((0u8..4, 1usize..300), 1..40),
        ) {
            use tiff::encoder::compression::{CompressionAlgorithm, Deflate, Lzw, Packbits};
            let raw: Vec<u8> = runs
                .iter()
                .enumerate()
                .flat_map(|(i, (v, n))| {
                    (0..*n).map(move |k| if i % 2 == 0 { *v } else { (k * 37 % 251) as u8 })
                })
                .collect();
            let mut packed = Vec::new();
            Packbits.write_to(&mut packed, &raw).expect("packbits");
            proptest::prop_assert_eq!(&inflate(32773, &packed, raw.len()).expect("p"), &raw);
            let mut lzw = Vec::new();
            Lzw.write_to(&mut lzw, &raw).expect("lzw");
            proptest::prop_assert_eq!(&inflate(5, &lzw, raw.len()).expect("l"), &raw);
            let mut z = Vec::new();
            Deflate::default().write_to(&mut z, &raw).expect("deflate");
            proptest::prop_assert_eq!(&inflate(8, &z, raw.len()).expect("d"), &raw);
            let zs = zstd::bulk::compress(&raw, 3).expect("zstd");
            proptest::prop_assert_eq!(&inflate(50000, &zs, raw.len()).expect("z"), &raw);
            proptest::prop_assert_eq!(&inflate(1, &raw, raw.len()).expect("n"), &raw);
        }
    }
}
