//! The first image's IFD as the reader needs it: size, samples and their type, how chunks are
//! laid out and compressed, where each lies in the file, the GeoTIFF and GDAL tags; and the
//! sizes of the reduced-resolution images (overviews) that follow it, listed, never read.

use tiff::decoder::ifd::Value;
use tiff::decoder::ChunkType;
use tiff::tags::Tag;
use tiff::TiffError;

use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::formats::geotiff::mask::MaskIfd;
use crate::formats::geotiff::reader::TiffDecoder;

/// `GDAL_METADATA`: GDAL's XML of metadata items (scale, offset, band descriptions, …).
pub(crate) const GDAL_METADATA: u16 = 42112;

/// TIFF text tags by name, with the name GDAL lists them under (`TIFFTAG_…`).
pub(crate) const TEXT_TAGS: [(&str, u16, &str); 9] = [
    ("DocumentName", 269, "TIFFTAG_DOCUMENTNAME"),
    ("ImageDescription", 270, "TIFFTAG_IMAGEDESCRIPTION"),
    ("Make", 271, "TIFFTAG_MAKE"),
    ("Model", 272, "TIFFTAG_MODEL"),
    ("Software", 305, "TIFFTAG_SOFTWARE"),
    ("DateTime", 306, "TIFFTAG_DATETIME"),
    ("Artist", 315, "TIFFTAG_ARTIST"),
    ("HostComputer", 316, "TIFFTAG_HOSTCOMPUTER"),
    ("Copyright", 33432, "TIFFTAG_COPYRIGHT"),
];

/// The first image of a TIFF file.
#[derive(Debug, Clone)]
pub(crate) struct Ifd {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Samples per pixel (bands).
    pub samples: u16,
    /// The samples' element type.
    pub dtype: DType,
    /// Compression tag value.
    pub compression: u16,
    /// Predictor tag value (1: none).
    pub predictor: u16,
    /// Whether bands are stored in separate chunks (PlanarConfiguration 2).
    pub planar: bool,
    /// PhotometricInterpretation.
    pub photometric: u16,
    /// Tiles (else strips).
    pub tiled: bool,
    /// Chunk width (the image width for strips).
    pub chunk_w: u32,
    /// Chunk height (rows per strip for strips).
    pub chunk_h: u32,
    /// Where each chunk's stored bytes start.
    pub offsets: Vec<u64>,
    /// How many stored bytes each chunk has.
    pub byte_counts: Vec<u64>,
    /// JPEGTables, for JPEG chunks.
    pub jpeg_tables: Option<Vec<u8>>,
    /// ModelPixelScaleTag.
    pub pixel_scale: Option<Vec<f64>>,
    /// ModelTiepointTag.
    pub tiepoints: Option<Vec<f64>>,
    /// ModelTransformationTag.
    pub transformation: Option<Vec<f64>>,
    /// GeoKeyDirectoryTag.
    pub geokeys: Option<Vec<u16>>,
    /// GeoDoubleParamsTag.
    pub geo_doubles: Vec<f64>,
    /// GeoAsciiParamsTag.
    pub geo_ascii: String,
    /// GDAL_NODATA.
    pub nodata: Option<String>,
    /// GDAL_METADATA.
    pub gdal_metadata: Option<String>,
    /// TIFF text tags present, by the names of [`TEXT_TAGS`].
    pub text: Vec<(&'static str, String)>,
    /// Whether the file is a BigTIFF.
    pub bigtiff: bool,
    /// Whether the file's byte order is little-endian (`II`).
    pub little_endian: bool,
    /// Overviews (width, height), in file order; masks are not listed.
    pub overviews: Vec<(u32, u32)>,
    /// ExtraSamples (0 unspecified, 1 associated alpha, 2 unassociated alpha), one per sample
    /// beyond the photometric ones.
    pub extra_samples: Vec<u16>,
    /// The full-resolution transparency mask stored after the image (GDAL's internal mask).
    pub mask: Option<MaskIfd>,
}

impl Ifd {
    /// Chunks per band plane: across × down.
    pub(crate) fn chunks_across(&self) -> u32 {
        self.width.div_ceil(self.chunk_w)
    }

    /// Chunks down a band plane.
    pub(crate) fn chunks_down(&self) -> u32 {
        self.height.div_ceil(self.chunk_h)
    }

    /// Samples stored per chunk: one in band-interleaved files, all in pixel-interleaved.
    pub(crate) fn samples_per_chunk(&self) -> u16 {
        if self.planar {
            1
        } else {
            self.samples
        }
    }
}

/// A `tiff` crate error reading metadata of `id` as a cubeforge error.
pub(crate) fn meta_error(id: &str, e: TiffError) -> Error {
    match e {
        TiffError::UnsupportedError(u) => Error::Unsupported {
            location: id.to_string(),
            feature: "TIFF feature".into(),
            detail: u.to_string(),
        },
        // A header or directory cut short: a truncated or damaged file.
        TiffError::IoError(io) => Error::InvalidMetadata {
            location: id.to_string(),
            reason: format!("not a readable TIFF file: its header or directory: {io}"),
        },
        other => Error::InvalidMetadata {
            location: id.to_string(),
            reason: format!("not a readable TIFF file: {other}"),
        },
    }
}

/// The compressions a reader decodes, by tag value; the name of any other.
pub(crate) fn compression_name(c: u16) -> (&'static str, bool) {
    match c {
        1 => ("none", true),
        5 => ("lzw", true),
        8 | 32946 => ("deflate", true),
        32773 => ("packbits", true),
        50000 => ("zstd", true),
        7 => ("jpeg", true),
        50001 => ("webp", true),
        2 => ("CCITT RLE", false),
        3 => ("CCITT Group 3 fax", false),
        4 => ("CCITT Group 4 fax", false),
        6 => ("old-style JPEG", false),
        34712 => ("JPEG 2000", false),
        34887 => ("LERC", false),
        34925 => ("LZMA", false),
        50002 => ("JPEG XL", false),
        _ => ("unknown", false),
    }
}

fn element_type(id: &str, sample_format: u16, bits: u16) -> Result<DType> {
    let t = match (sample_format, bits) {
        (1, 8) => DType::UInt8,
        (1, 16) => DType::UInt16,
        (1, 32) => DType::UInt32,
        (1, 64) => DType::UInt64,
        (2, 8) => DType::Int8,
        (2, 16) => DType::Int16,
        (2, 32) => DType::Int32,
        (2, 64) => DType::Int64,
        (3, 16) => DType::Float16,
        (3, 32) => DType::Float32,
        (3, 64) => DType::Float64,
        _ => {
            return Err(Error::Unsupported {
                location: id.to_string(),
                feature: "TIFF sample type".into(),
                detail: format!(
                    "{bits}-bit samples of SampleFormat {sample_format} (1 unsigned, 2 signed, \
                     3 float); 8, 16, 32 or 64-bit samples can be read"
                ),
            })
        }
    };
    Ok(t)
}

/// Read the first image's IFD (the decoder is on it) and list the overviews after it.
///
/// # Errors
/// Tags that cannot be read; a sample type or compression with no decoder
/// ([`Error::Unsupported`], naming it and the file).
pub(crate) fn read(id: &str, dec: &mut TiffDecoder, bigtiff: bool) -> Result<Ifd> {
    let err = |e| meta_error(id, e);
    let (width, height) = dec.dimensions().map_err(err)?;
    let uint = |dec: &mut TiffDecoder, tag: Tag| -> Result<Option<u64>> {
        dec.find_tag(tag)
            .map_err(err)?
            .map(Value::into_u64)
            .transpose()
            .map_err(err)
    };
    let samples = u16::try_from(uint(dec, Tag::SamplesPerPixel)?.unwrap_or(1)).unwrap_or(0);
    let bits: Vec<u64> = match dec.find_tag(Tag::BitsPerSample).map_err(err)? {
        Some(v) => v.into_u64_vec().map_err(err)?,
        None => vec![1],
    };
    let formats: Vec<u64> = match dec.find_tag(Tag::SampleFormat).map_err(err)? {
        Some(v) => v.into_u64_vec().map_err(err)?,
        None => vec![1],
    };
    let bits0 = u16::try_from(bits.first().copied().unwrap_or(1)).unwrap_or(0);
    let format0 = u16::try_from(formats.first().copied().unwrap_or(1)).unwrap_or(0);
    if bits.iter().any(|b| *b != u64::from(bits0)) || formats.iter().any(|f| *f != formats[0]) {
        return Err(Error::Unsupported {
            location: id.to_string(),
            feature: "TIFF sample type".into(),
            detail: format!(
                "bands of different types (BitsPerSample {bits:?}, SampleFormat {formats:?})"
            ),
        });
    }
    let dtype = element_type(id, format0, bits0)?;
    let compression = u16::try_from(uint(dec, Tag::Compression)?.unwrap_or(1)).unwrap_or(0);
    let (name, decodable) = compression_name(compression);
    if !decodable {
        return Err(Error::Unsupported {
            location: id.to_string(),
            feature: format!("TIFF compression {name} ({compression})"),
            detail: "no decoder for it; deflate, LZW, ZSTD, PackBits, JPEG, WebP and \
                     uncompressed files can be read (gdal_translate -co COMPRESS=DEFLATE converts)"
                .into(),
        });
    }
    let predictor = u16::try_from(uint(dec, Tag::Predictor)?.unwrap_or(1)).unwrap_or(0);
    let planar = uint(dec, Tag::PlanarConfiguration)?.unwrap_or(1) == 2;
    let photometric =
        u16::try_from(uint(dec, Tag::PhotometricInterpretation)?.unwrap_or(1)).unwrap_or(u16::MAX);
    let tiled = dec.get_chunk_type() == ChunkType::Tile;
    let (chunk_w, chunk_h) = dec.chunk_dimensions();
    let (off_tag, count_tag) = if tiled {
        (Tag::TileOffsets, Tag::TileByteCounts)
    } else {
        (Tag::StripOffsets, Tag::StripByteCounts)
    };
    let vec_u64 = |dec: &mut TiffDecoder, tag: Tag| -> Result<Vec<u64>> {
        match dec.find_tag(tag).map_err(err)? {
            Some(v) => v.into_u64_vec().map_err(err),
            None => Ok(Vec::new()),
        }
    };
    let offsets = vec_u64(dec, off_tag)?;
    let byte_counts = vec_u64(dec, count_tag)?;
    let f64s = |dec: &mut TiffDecoder, tag: Tag| -> Result<Option<Vec<f64>>> {
        dec.find_tag(tag)
            .map_err(err)?
            .map(Value::into_f64_vec)
            .transpose()
            .map_err(err)
    };
    let text = |dec: &mut TiffDecoder, tag: Tag| -> Result<Option<String>> {
        Ok(match dec.find_tag(tag).map_err(err)? {
            Some(Value::Ascii(s)) => Some(s.trim_end_matches('\0').to_string()),
            Some(Value::List(items)) => Some(
                items
                    .into_iter()
                    .filter_map(|v| match v {
                        Value::Ascii(s) => Some(s),
                        _ => None,
                    })
                    .collect::<Vec<_>>()
                    .join("\0"),
            ),
            Some(other) => other.into_string().ok(),
            None => None,
        })
    };
    let mut texts = Vec::new();
    for (name, code, _) in TEXT_TAGS {
        if let Some(s) = text(dec, Tag::Unknown(code))? {
            texts.push((name, s));
        }
    }
    let jpeg_tables = match dec.find_tag(Tag::JPEGTables).map_err(err)? {
        Some(v) => Some(v.into_u8_vec().map_err(err)?),
        None => None,
    };
    let geokeys = match dec.find_tag(Tag::GeoKeyDirectoryTag).map_err(err)? {
        Some(v) => Some(
            v.into_u64_vec()
                .map_err(err)?
                .into_iter()
                .map(|k| u16::try_from(k).unwrap_or(u16::MAX))
                .collect(),
        ),
        None => None,
    };
    let mut ifd = Ifd {
        width,
        height,
        samples,
        dtype,
        compression,
        predictor,
        planar,
        photometric,
        tiled,
        chunk_w,
        chunk_h,
        offsets,
        byte_counts,
        jpeg_tables,
        pixel_scale: f64s(dec, Tag::ModelPixelScaleTag)?,
        tiepoints: f64s(dec, Tag::ModelTiepointTag)?,
        transformation: f64s(dec, Tag::ModelTransformationTag)?,
        geokeys,
        geo_doubles: f64s(dec, Tag::GeoDoubleParamsTag)?.unwrap_or_default(),
        geo_ascii: text(dec, Tag::GeoAsciiParamsTag)?.unwrap_or_default(),
        nodata: text(dec, Tag::GdalNodata)?.map(|s| s.trim().to_string()),
        gdal_metadata: text(dec, Tag::Unknown(GDAL_METADATA))?,
        text: texts,
        bigtiff,
        little_endian: dec.byte_order() == tiff::tags::ByteOrder::LittleEndian,
        overviews: Vec::new(),
        extra_samples: vec_u64(dec, Tag::ExtraSamples)?
            .into_iter()
            .map(|v| u16::try_from(v).unwrap_or(0))
            .collect(),
        mask: None,
    };
    check_layout(id, &ifd)?;
    (ifd.overviews, ifd.mask) = later_images(id, dec, (width, height))?;
    Ok(ifd)
}

/// The chunk tables must cover every chunk of every plane.
fn check_layout(id: &str, ifd: &Ifd) -> Result<()> {
    let planes = if ifd.planar {
        u64::from(ifd.samples)
    } else {
        1
    };
    let want = u64::from(ifd.chunks_across()) * u64::from(ifd.chunks_down()) * planes;
    if ifd.samples == 0
        || ifd.chunk_w == 0
        || ifd.chunk_h == 0
        || ifd.offsets.len() as u64 != want
        || ifd.byte_counts.len() as u64 != want
    {
        return Err(Error::InvalidMetadata {
            location: id.to_string(),
            reason: format!(
                "{} chunk offsets and {} byte counts for {want} chunks of {}x{} in a {}x{} \
                 image of {} bands",
                ifd.offsets.len(),
                ifd.byte_counts.len(),
                ifd.chunk_w,
                ifd.chunk_h,
                ifd.width,
                ifd.height,
                ifd.samples
            ),
        });
    }
    Ok(())
}

/// Overview sizes (width, height) and the full-resolution mask.
type LaterImages = (Vec<(u32, u32)>, Option<MaskIfd>);

/// The images after the first IFD: the reduced-resolution ones (NewSubfileType bit 0 set, bit
/// 2 — a transparency mask — not), as (width, height), and the first transparency mask (bit 2
/// set, bit 0 not) of the image's `size`, if any (as GDAL matches masks to images by size; one
/// whose tags cannot be read is named in a warning and skipped). The IFD chain is followed for
/// at most 1024 images.
fn later_images(id: &str, dec: &mut TiffDecoder, size: (u32, u32)) -> Result<LaterImages> {
    let err = |e| meta_error(id, e);
    let Some(first) = dec.ifd_pointer() else {
        return Ok((Vec::new(), None));
    };
    let mut mask = None;
    let mut next = dec.read_directory(first).map_err(err)?.next();
    let mut out = Vec::new();
    let mut seen = vec![first.0];
    while let Some(ptr) = next {
        if seen.contains(&ptr.0) || seen.len() > 1024 {
            break;
        }
        seen.push(ptr.0);
        let dir = dec.read_directory(ptr).map_err(err)?;
        next = dir.next();
        let mut tags = dec.read_directory_tags(&dir);
        let kind: u32 = tags
            .find_tag_unsigned(Tag::NewSubfileType)
            .map_err(err)?
            .unwrap_or(0);
        let w: Option<u32> = tags.find_tag_unsigned(Tag::ImageWidth).map_err(err)?;
        let h: Option<u32> = tags.find_tag_unsigned(Tag::ImageLength).map_err(err)?;
        if kind & 1 == 1 && kind & 4 == 0 {
            if let (Some(w), Some(h)) = (w, h) {
                out.push((w, h));
            }
        }
        if kind & 5 == 4 && mask.is_none() && (w, h) == (Some(size.0), Some(size.1)) {
            match mask_layout(&mut tags, size.0, size.1) {
                Ok(m) => mask = Some(m),
                Err(e) => tracing::warn!("{id}: its mask is not applied: {e}"),
            }
        }
    }
    Ok((out, mask))
}

/// The layout of a mask image from its directory's tags.
fn mask_layout(
    tags: &mut tiff::decoder::IfdDecoder<'_>,
    width: u32,
    height: u32,
) -> std::result::Result<MaskIfd, TiffError> {
    let bits: Vec<u64> = tags
        .find_tag_unsigned_vec(Tag::BitsPerSample)?
        .unwrap_or_else(|| vec![1]);
    let tiled = tags.find_entry(Tag::TileOffsets).is_some();
    let (chunk_w, chunk_h, off_tag, count_tag) = if tiled {
        (
            tags.find_tag_unsigned(Tag::TileWidth)?.unwrap_or(0),
            tags.find_tag_unsigned(Tag::TileLength)?.unwrap_or(0),
            Tag::TileOffsets,
            Tag::TileByteCounts,
        )
    } else {
        let rows: u32 = tags.find_tag_unsigned(Tag::RowsPerStrip)?.unwrap_or(height);
        (
            width,
            rows.min(height),
            Tag::StripOffsets,
            Tag::StripByteCounts,
        )
    };
    Ok(MaskIfd {
        width,
        height,
        samples: tags.find_tag_unsigned(Tag::SamplesPerPixel)?.unwrap_or(1),
        bits: bits
            .first()
            .and_then(|b| u8::try_from(*b).ok())
            .filter(|_| bits.iter().all(|b| *b == bits[0]))
            .unwrap_or(0),
        compression: tags.find_tag_unsigned(Tag::Compression)?.unwrap_or(1),
        predictor: tags.find_tag_unsigned(Tag::Predictor)?.unwrap_or(1),
        planar: tags.find_tag_unsigned::<u16>(Tag::PlanarConfiguration)? == Some(2),
        tiled,
        chunk_w,
        chunk_h,
        offsets: tags.find_tag_unsigned_vec(off_tag)?.unwrap_or_default(),
        byte_counts: tags.find_tag_unsigned_vec(count_tag)?.unwrap_or_default(),
    })
}

impl Ifd {
    /// This image as a mask (a `.msk` file's first image): its layout, 8-bit.
    pub(crate) fn as_mask(&self) -> MaskIfd {
        MaskIfd {
            width: self.width,
            height: self.height,
            samples: self.samples,
            bits: if self.dtype == DType::UInt8 { 8 } else { 0 },
            compression: self.compression,
            predictor: self.predictor,
            planar: self.planar,
            tiled: self.tiled,
            chunk_w: self.chunk_w,
            chunk_h: self.chunk_h,
            offsets: self.offsets.clone(),
            byte_counts: self.byte_counts.clone(),
        }
    }
}
