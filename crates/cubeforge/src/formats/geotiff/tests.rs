//! GeoTIFFs written here — strips by the `tiff` crate's encoder (deflate, LZW, predictor 2,
//! BigTIFF, RGB), tiles written tag by tag (pixel- and band-interleaved, predictors 2 and 3 applied
//! here, partial edge tiles, a tile not stored) — read back value for value; corrupt tiles and
//! compressions with no decoder are named errors.

use std::io::Cursor;
use std::path::Path;

use tiff::encoder::{colortype, Compression, Predictor, TiffEncoder};
use tiff::tags::Tag;

use super::*;
use crate::source::{contract, ChunkSource};

fn write(dir: &Path, name: &str, bytes: &[u8]) -> RangeFile {
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write");
    RangeFile::open(path.to_str().expect("path")).expect("open")
}

fn band_data(input: &Input) -> &InputVar {
    input
        .variables
        .iter()
        .find(|v| v.name == "band_data")
        .expect("band_data")
}

fn read_all(src: &dyn ChunkSource) -> Vec<f64> {
    contract::check(src).expect("contract");
    let shape = src.shape().to_vec();
    src.read_region(&vec![0; shape.len()], &shape)
        .expect("read")
        .to_f64_vec()
}

#[test]
fn strips_with_deflate_lzw_and_predictor_2_read_back() {
    let dir = tempfile::tempdir().expect("dir");
    let (w, h) = (37u32, 23u32);
    let values: Vec<u16> = (0..w * h).map(|i| (i * 7919 % 65_521) as u16).collect();
    for (name, compression, big) in [
        (
            "deflate.tif",
            Compression::Deflate(tiff::encoder::DeflateLevel::Balanced),
            false,
        ),
        ("lzw.tif", Compression::Lzw, false),
        ("big.tif", Compression::Lzw, true),
        ("packbits.tif", Compression::Packbits, false),
    ] {
        let mut buf = Cursor::new(Vec::new());
        if big {
            let mut enc = TiffEncoder::new_big(&mut buf)
                .expect("enc")
                .with_compression(compression)
                .with_predictor(Predictor::Horizontal);
            let mut img = enc.new_image::<colortype::Gray16>(w, h).expect("image");
            img.rows_per_strip(5).expect("rows");
            img.write_data(&values).expect("data");
        } else {
            let mut enc = TiffEncoder::new(&mut buf)
                .expect("enc")
                .with_compression(compression)
                .with_predictor(Predictor::Horizontal);
            let mut img = enc.new_image::<colortype::Gray16>(w, h).expect("image");
            img.rows_per_strip(5).expect("rows");
            img.write_data(&values).expect("data");
        }
        let file = write(dir.path(), name, buf.get_ref());
        let input = open(&file, &InputOptions::default()).expect(name);
        let var = band_data(&input);
        assert_eq!(var.source.shape(), [1, u64::from(h), u64::from(w)]);
        let got = read_all(var.source.as_ref());
        let want: Vec<f64> = values.iter().map(|v| f64::from(*v)).collect();
        assert_eq!(got, want, "{name}");
        let info = describe(&file).expect("describe");
        assert_eq!(info.bigtiff, big, "{name}");
        assert_eq!(info.layout, "strips");
        assert_eq!(info.predictor, 2);
    }
}

#[test]
fn pixel_interleaved_rgb_strips_are_band_y_x_and_bands_can_be_named() {
    let dir = tempfile::tempdir().expect("dir");
    let (w, h) = (11u32, 9u32);
    let values: Vec<u8> = (0..w * h * 3).map(|i| (i % 251) as u8).collect();
    let mut buf = Cursor::new(Vec::new());
    let mut enc = TiffEncoder::new(&mut buf).expect("enc");
    let mut img = enc.new_image::<colortype::RGB8>(w, h).expect("image");
    img.rows_per_strip(4).expect("rows");
    img.write_data(&values).expect("data");
    let file = write(dir.path(), "rgb.tif", buf.get_ref());
    let input = open(&file, &InputOptions::default()).expect("open");
    let got = read_all(band_data(&input).source.as_ref());
    let plane = (w * h) as usize;
    for b in 0..3 {
        for p in 0..plane {
            assert_eq!(
                got[b * plane + p],
                f64::from(values[p * 3 + b]),
                "band {b} pixel {p}"
            );
        }
    }
    let opts = InputOptions {
        bands: Some(vec!["red".into(), "green".into(), "blue".into()]),
        ..InputOptions::default()
    };
    let named = open(&file, &opts).expect("named");
    for (b, name) in ["red", "green", "blue"].iter().enumerate() {
        let v = named
            .variables
            .iter()
            .find(|v| v.name == *name)
            .expect("band");
        assert_eq!(v.dims, ["y", "x"]);
        assert_eq!(read_all(v.source.as_ref()), got[b * plane..(b + 1) * plane]);
    }
    assert!(!named.dims.iter().any(|d| d.name == "band"));
    let two = InputOptions {
        bands: Some(vec!["red".into(), "nir".into()]),
        ..InputOptions::default()
    };
    let err = open(&file, &two)
        .expect_err("2 names for 3 bands")
        .to_string();
    assert!(
        err.contains("rgb.tif") && err.contains("2 bands") && err.contains("has 3"),
        "{err}"
    );
}

/// Horizontal differencing (predictor 2) of one row of `spp`-sample pixels.
fn predict2(row: &mut [u16], spp: usize) {
    for i in (spp..row.len()).rev() {
        row[i] = row[i].wrapping_sub(row[i - spp]);
    }
}

/// The floating-point predictor (3) of one row of f32 samples: bytes split into planes, most
/// significant first, then differenced byte by byte.
fn predict3(row: &[f32]) -> Vec<u8> {
    let n = row.len();
    let mut out = vec![0u8; n * 4];
    for (i, v) in row.iter().enumerate() {
        for (b, byte) in v.to_be_bytes().iter().enumerate() {
            out[b * n + i] = *byte;
        }
    }
    for i in (1..out.len()).rev() {
        out[i] = out[i].wrapping_sub(out[i - 1]);
    }
    out
}

/// A tiled little-endian TIFF of `bands` u16 bands (value `b*1000 + y*w + x`), tiles 8×8 over
/// 13×10 pixels (partial edge tiles), uncompressed with predictor 2, pixel- or
/// band-interleaved; tile `missing` (if any) not stored; georeferenced in EPSG:32633.
fn tiled_u16(planar: bool, bands: u16, missing: Option<usize>) -> (Vec<u8>, Vec<u16>) {
    tiled_u16_sized(planar, bands, missing, (13, 10, 8))
}

/// As [`tiled_u16`], `w` × `h` pixels in tiles of `t` × `t`.
fn tiled_u16_sized(
    planar: bool,
    bands: u16,
    missing: Option<usize>,
    dims: (usize, usize, usize),
) -> (Vec<u8>, Vec<u16>) {
    tiled_u16_with(planar, bands, missing, dims, false)
}

/// As [`tiled_u16_sized`], each tile DEFLATE-compressed (a zlib stream) when `deflate`.
fn tiled_u16_with(
    planar: bool,
    bands: u16,
    missing: Option<usize>,
    (w, h, t): (usize, usize, usize),
    deflate: bool,
) -> (Vec<u8>, Vec<u16>) {
    let value = |b: usize, y: usize, x: usize| (b * 1000 + y * w + x) as u16;
    let (across, down) = (w.div_ceil(t), h.div_ceil(t));
    let planes = if planar { usize::from(bands) } else { 1 };
    let spc = if planar { 1 } else { usize::from(bands) };
    let mut buf = Cursor::new(Vec::new());
    let mut enc = TiffEncoder::new(&mut buf).expect("enc");
    let mut dir = enc.image_directory().expect("dir");
    let (mut offsets, mut counts) = (Vec::new(), Vec::new());
    for p in 0..planes {
        for ty in 0..down {
            for tx in 0..across {
                let mut tile = Vec::new();
                for r in 0..t {
                    let mut row = Vec::new();
                    for c in 0..t {
                        for s in 0..spc {
                            let (y, x, b) = (ty * t + r, tx * t + c, if planar { p } else { s });
                            row.push(if y < h && x < w { value(b, y, x) } else { 0 });
                        }
                    }
                    predict2(&mut row, spc);
                    tile.extend(row);
                }
                let k = offsets.len();
                if Some(k) == missing {
                    offsets.push(0u32);
                    counts.push(0u32);
                    continue;
                }
                let (off, count) = if deflate {
                    use std::io::Write as _;
                    let raw: Vec<u8> = tile.iter().flat_map(|v| v.to_le_bytes()).collect();
                    let mut z =
                        flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::new(6));
                    z.write_all(&raw).expect("deflate");
                    let packed = z.finish().expect("deflate");
                    (dir.write_data(&packed[..]).expect("tile"), packed.len())
                } else {
                    (dir.write_data(&tile[..]).expect("tile"), tile.len() * 2)
                };
                offsets.push(u32::try_from(off).expect("offset"));
                counts.push(u32::try_from(count).expect("count"));
            }
        }
    }
    dir.write_tag(Tag::ImageWidth, w as u32).expect("tag");
    dir.write_tag(Tag::ImageLength, h as u32).expect("tag");
    dir.write_tag(Tag::BitsPerSample, &vec![16u16; usize::from(bands)][..])
        .expect("tag");
    dir.write_tag(Tag::Compression, if deflate { 8u16 } else { 1 })
        .expect("tag");
    dir.write_tag(Tag::PhotometricInterpretation, 1u16)
        .expect("tag");
    dir.write_tag(Tag::SamplesPerPixel, bands).expect("tag");
    dir.write_tag(Tag::PlanarConfiguration, if planar { 2u16 } else { 1 })
        .expect("tag");
    dir.write_tag(Tag::Predictor, 2u16).expect("tag");
    dir.write_tag(Tag::TileWidth, t as u32).expect("tag");
    dir.write_tag(Tag::TileLength, t as u32).expect("tag");
    dir.write_tag(Tag::TileOffsets, &offsets[..]).expect("tag");
    dir.write_tag(Tag::TileByteCounts, &counts[..])
        .expect("tag");
    dir.write_tag(Tag::ExtraSamples, &vec![0u16; usize::from(bands) - 1][..])
        .expect("tag");
    dir.write_tag(Tag::ModelPixelScaleTag, &[30.0f64, 30.0, 0.0][..])
        .expect("tag");
    dir.write_tag(
        Tag::ModelTiepointTag,
        &[0.0f64, 0.0, 0.0, 500_000.0, 4_000_000.0, 0.0][..],
    )
    .expect("tag");
    dir.write_tag(
        Tag::GeoKeyDirectoryTag,
        &[
            1u16, 1, 0, 3, 1024, 0, 1, 1, 1025, 0, 1, 2, 3072, 0, 1, 32633,
        ][..],
    )
    .expect("tag");
    dir.write_tag(Tag::GdalNodata, "7").expect("tag");
    dir.write_tag(Tag::Unknown(42112), "<GDALMetadata>\n  <Item name=\"ACQUISITION_START\">2021-06-01T10:00:00Z</Item>\n  <Item name=\"SCALE\" sample=\"0\" role=\"scale\">0.5</Item>\n  <Item name=\"SCALE\" sample=\"1\" role=\"scale\">0.5</Item>\n  <Item name=\"SCALE\" sample=\"2\" role=\"scale\">0.5</Item>\n</GDALMetadata>").expect("tag");
    dir.write_tag(Tag::DateTime, "2021:06:01 10:00:00")
        .expect("tag");
    dir.finish().expect("finish");
    let mut all = Vec::new();
    for b in 0..usize::from(bands) {
        for y in 0..h {
            for x in 0..w {
                all.push(value(b, y, x));
            }
        }
    }
    (buf.into_inner(), all)
}

#[test]
fn tiles_pixel_and_band_interleaved_with_predictor_2_and_edge_tiles_read_back() {
    let dir = tempfile::tempdir().expect("dir");
    for planar in [false, true] {
        let (bytes, want) = tiled_u16(planar, 3, None);
        let file = write(dir.path(), &format!("tiled-{planar}.tif"), &bytes);
        let input = open(&file, &InputOptions::default()).expect("open");
        let var = band_data(&input);
        assert_eq!(var.source.shape(), [3, 10, 13]);
        assert_eq!(
            var.source.chunk_shape(),
            if planar { [1, 8, 8] } else { [3, 8, 8] }
        );
        let want: Vec<f64> = want.iter().map(|v| f64::from(*v)).collect();
        assert_eq!(read_all(var.source.as_ref()), want, "planar {planar}");
        // Georeferencing: pixel-is-point shifts the origin by half a pixel, as GDAL does.
        let sr = input
            .variables
            .iter()
            .find(|v| v.name == "spatial_ref")
            .expect("spatial_ref");
        assert_eq!(
            sr.attrs["GeoTransform"],
            "499985.0 30.0 0.0 4000015.0 0.0 -30.0"
        );
        assert!(sr.attrs["crs_wkt"]
            .as_str()
            .expect("wkt")
            .contains("UTM zone 33N"));
        assert_eq!(sr.attrs["grid_mapping_name"], "transverse_mercator");
        let x = input
            .dims
            .iter()
            .find(|d| d.name == "x")
            .and_then(|d| d.coord.clone())
            .expect("x");
        assert_eq!(
            x.raw().expect("x").to_f64_vec()[..2],
            [500_000.0, 500_030.0]
        );
        let y = input
            .dims
            .iter()
            .find(|d| d.name == "y")
            .and_then(|d| d.coord.clone())
            .expect("y");
        assert_eq!(
            y.raw().expect("y").to_f64_vec()[..2],
            [4_000_000.0, 3_999_970.0]
        );
        // Nodata and scale: the attributes, and the decoding they make.
        assert_eq!(var.decoding.fill_values, [7.0]);
        assert_eq!(var.decoding.scale_factor, Some(0.5));
        assert_eq!(var.attrs["AREA_OR_POINT"], "Point");
        assert_eq!(var.attrs["grid_mapping"], "spatial_ref");
        assert_eq!(var.attrs["ACQUISITION_START"], "2021-06-01T10:00:00Z");
        assert!(
            input.attrs.is_empty(),
            "the tags are band_data's, as rioxarray shows them"
        );
        assert_eq!(
            tag_text(&file, "DateTime").expect("tag").as_deref(),
            Some("2021:06:01 10:00:00")
        );
        assert_eq!(
            tag_text(&file, "ACQUISITION_START")
                .expect("tag")
                .as_deref(),
            Some("2021-06-01T10:00:00Z")
        );
        assert_eq!(tag_text(&file, "Artist").expect("tag"), None);
        let info = describe(&file).expect("info");
        assert_eq!(
            (info.epsg, info.layout, info.block),
            (Some(32633), "tiles", [8, 8])
        );
    }
}

#[test]
fn a_tile_not_stored_reads_as_nodata() {
    let dir = tempfile::tempdir().expect("dir");
    let (bytes, want) = tiled_u16(true, 2, Some(1));
    let file = write(dir.path(), "sparse.tif", &bytes);
    let input = open(&file, &InputOptions::default()).expect("open");
    let src = band_data(&input).source.clone();
    assert_eq!(src.read_unit(&[0, 0, 1]).expect("unit"), None);
    let got = read_all(src.as_ref());
    for y in 0..8 {
        for x in 0..13 {
            let i = y * 13 + x;
            let expect = if x >= 8 { 7.0 } else { f64::from(want[i]) };
            assert_eq!(got[i], expect, "({y}, {x})");
        }
    }
}

#[test]
fn floating_point_predictor_tiles_read_back() {
    let dir = tempfile::tempdir().expect("dir");
    let (w, h, t) = (5usize, 3usize, 16usize);
    let value = |y: usize, x: usize| (y as f32 - 1.25) * 1.0e3 + x as f32 * 0.37;
    let mut buf = Cursor::new(Vec::new());
    let mut enc = TiffEncoder::new(&mut buf).expect("enc");
    let mut dir_enc = enc.image_directory().expect("dir");
    let mut tile = Vec::new();
    for r in 0..t {
        let row: Vec<f32> = (0..t)
            .map(|c| if r < h && c < w { value(r, c) } else { 0.0 })
            .collect();
        tile.extend(predict3(&row));
    }
    let off = dir_enc.write_data(&tile[..]).expect("tile");
    for (tag, v) in [
        (Tag::ImageWidth, w as u32),
        (Tag::ImageLength, h as u32),
        (Tag::TileWidth, t as u32),
        (Tag::TileLength, t as u32),
    ] {
        dir_enc.write_tag(tag, v).expect("tag");
    }
    for (tag, v) in [
        (Tag::BitsPerSample, 32u16),
        (Tag::Compression, 1),
        (Tag::PhotometricInterpretation, 1),
        (Tag::SampleFormat, 3),
        (Tag::Predictor, 3),
    ] {
        dir_enc.write_tag(tag, v).expect("tag");
    }
    dir_enc
        .write_tag(Tag::TileOffsets, u32::try_from(off).expect("off"))
        .expect("tag");
    dir_enc
        .write_tag(Tag::TileByteCounts, u32::try_from(tile.len()).expect("len"))
        .expect("tag");
    dir_enc.finish().expect("finish");
    let file = write(dir.path(), "float.tif", buf.get_ref());
    let input = open(&file, &InputOptions::default()).expect("open");
    let got = read_all(band_data(&input).source.as_ref());
    let want: Vec<f64> = (0..h)
        .flat_map(|y| (0..w).map(move |x| f64::from(value(y, x))))
        .collect();
    assert_eq!(got, want);
    // No georeferencing: the identity transform, no CRS, no AREA_OR_POINT.
    let sr = input
        .variables
        .iter()
        .find(|v| v.name == "spatial_ref")
        .expect("spatial_ref");
    assert_eq!(sr.attrs["GeoTransform"], "0.0 1.0 0.0 0.0 0.0 1.0");
    assert!(!sr.attrs.contains_key("crs_wkt"));
}

fn corpus(rel: &str) -> Option<std::path::PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/real")
        .join(rel);
    p.exists().then_some(p)
}

#[test]
fn a_corrupt_tile_is_named() {
    let Some(src) = corpus("odc-geo/au-3577.tif") else {
        return;
    };
    let dir = tempfile::tempdir().expect("dir");
    let mut bytes = std::fs::read(src).expect("read");
    let opened = parse(&write(dir.path(), "ok.tif", &bytes)).expect("parse");
    let (off, len) = (
        opened.ifd.offsets[0] as usize,
        opened.ifd.byte_counts[0] as usize,
    );
    for b in &mut bytes[off + 2..off + len] {
        *b = 0xff;
    }
    let file = write(dir.path(), "corrupt.tif", &bytes);
    let input = open(&file, &InputOptions::default()).expect("metadata is intact");
    let err = band_data(&input)
        .source
        .read_unit(&[0, 0, 0])
        .expect_err("corrupt tile");
    assert!(matches!(err, Error::CorruptChunk { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("corrupt.tif") && msg.contains("tile 0"),
        "{msg}"
    );
}

#[test]
fn a_compression_with_no_decoder_is_named() {
    let Some(src) = corpus("rasterio/byte.tif") else {
        return;
    };
    let mut bytes = std::fs::read(src).expect("read");
    assert_eq!(&bytes[..4], b"II*\0");
    let ifd = u32::from_le_bytes(bytes[4..8].try_into().expect("4")) as usize;
    let n = usize::from(u16::from_le_bytes(
        bytes[ifd..ifd + 2].try_into().expect("2"),
    ));
    let entry = (0..n)
        .map(|i| ifd + 2 + i * 12)
        .find(|e| bytes[*e..*e + 2] == 259u16.to_le_bytes())
        .expect("Compression tag");
    bytes[entry + 8..entry + 10].copy_from_slice(&34887u16.to_le_bytes());
    let dir = tempfile::tempdir().expect("dir");
    let file = write(dir.path(), "lerc.tif", &bytes);
    let err = open(&file, &InputOptions::default()).expect_err("LERC");
    assert!(matches!(err, Error::Unsupported { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("lerc.tif") && msg.contains("LERC"), "{msg}");
}

/// Decoding a generated 4096×4096 tiled DEFLATE file with 1 and 2 threads (run with
/// `--ignored --nocapture` in a release build to see the times).
#[test]
#[ignore = "a measurement, not a check"]
fn decode_threads_measurement() {
    use rayon::prelude::*;
    let dir = tempfile::tempdir().expect("dir");
    let (w, t) = (4096usize, 256usize);
    let mut buf = Cursor::new(Vec::new());
    let mut enc = TiffEncoder::new(&mut buf).expect("enc");
    let mut d = enc.image_directory().expect("dir");
    let (mut offsets, mut counts) = (Vec::new(), Vec::new());
    for ty in 0..w / t {
        for tx in 0..w / t {
            let mut raw = Vec::with_capacity(t * t * 2);
            for r in 0..t {
                let mut row: Vec<u16> = (0..t)
                    .map(|c| (((ty * t + r) * 31 + (tx * t + c) * 17) % 4000) as u16)
                    .collect();
                predict2(&mut row, 1);
                raw.extend(row.iter().flat_map(|v| v.to_le_bytes()));
            }
            let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
            std::io::Write::write_all(&mut z, &raw).expect("z");
            let stored = z.finish().expect("z");
            offsets.push(u32::try_from(d.write_data(&stored[..]).expect("tile")).expect("off"));
            counts.push(u32::try_from(stored.len()).expect("len"));
        }
    }
    for (tag, v) in [
        (Tag::ImageWidth, w as u32),
        (Tag::ImageLength, w as u32),
        (Tag::TileWidth, t as u32),
        (Tag::TileLength, t as u32),
    ] {
        d.write_tag(tag, v).expect("tag");
    }
    for (tag, v) in [
        (Tag::BitsPerSample, 16u16),
        (Tag::Compression, 8),
        (Tag::PhotometricInterpretation, 1),
        (Tag::Predictor, 2),
    ] {
        d.write_tag(tag, v).expect("tag");
    }
    d.write_tag(Tag::TileOffsets, &offsets[..]).expect("tag");
    d.write_tag(Tag::TileByteCounts, &counts[..]).expect("tag");
    d.finish().expect("finish");
    let file = write(dir.path(), "big.tif", buf.get_ref());
    let input = open(&file, &InputOptions::default()).expect("open");
    let src = band_data(&input).source.clone();
    let units = src.units_in(&[0, 0, 0], src.shape()).expect("units");
    for threads in [1, 2, 1, 2, 1, 2] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("pool");
        let start = std::time::Instant::now();
        let n: usize = pool.install(|| {
            units
                .par_iter()
                .map(|(u, _)| src.read_unit(u).expect("unit").map_or(0, |b| b.len()))
                .sum()
        });
        eprintln!(
            "{threads} thread(s): {} tiles, {n} bytes in {:?}",
            units.len(),
            start.elapsed()
        );
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]

    /// Any size, tile size, band count and interleaving, stored or DEFLATE (decoded by
    /// `deflate.rs`, not the `tiff` crate): every band read back whole, every band's variable
    /// (bands named) equal to its plane of `band_data`, the contract kept.
    #[test]
    fn generated_tiled_files_read_back(
        w in 1usize..40,
        h in 1usize..40,
        t in proptest::sample::select(vec![16usize, 32]),
        bands in 1u16..4,
        planar in proptest::bool::ANY,
        deflate in proptest::bool::ANY,
    ) {
        let dir = tempfile::tempdir().expect("dir");
        let (bytes, want) = tiled_u16_with(planar, bands, None, (w, h, t), deflate);
        let file = write(dir.path(), "p.tif", &bytes);
        let input = open(&file, &InputOptions::default()).expect("open");
        let got = read_all(band_data(&input).source.as_ref());
        let want: Vec<f64> = want.iter().map(|v| f64::from(*v)).collect();
        proptest::prop_assert_eq!(&got, &want);
        let names: Vec<String> = (0..bands).map(|b| format!("b{b}")).collect();
        let opts = InputOptions { bands: Some(names.clone()), ..InputOptions::default() };
        let named = open(&file, &opts).expect("named");
        let plane = w * h;
        for (b, name) in names.iter().enumerate() {
            let v = named.variables.iter().find(|v| &v.name == name).expect("band");
            proptest::prop_assert_eq!(read_all(v.source.as_ref()), want[b * plane..(b + 1) * plane].to_vec());
        }
    }
}
