//! Reads every GeoTIFF listed in `shared/data/real/MANIFEST.md` (written by GDAL) through the
//! input dispatcher and checks what the manifest says rasterio returns: size, band count, type,
//! transform, EPSG code, nodata, overview sizes, and per band the sum, pixel values and the
//! SHA-256 of the values (`sha16`); JPEG-compressed bands are compared with a tolerance (JPEG
//! decoders differ by a few levels). Every band variable keeps the `ChunkSource` contract.
//!
//! With `GEOTIFF_WKT_DUMP=<file>` set, the CRS WKT read from each file is written there as JSON
//! (`{path: {crs_wkt, GeoTransform, x, y, band_attrs}}`), for comparing with rasterio's CRS in Python.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use cubeforge::formats::file::RangeFile;
use cubeforge::formats::geotiff;
use cubeforge::formats::open::{open_input, InputOptions};
use cubeforge::lower::Input;
use cubeforge::source::contract;
use cubeforge::store::Location;
use sha2::{Digest, Sha256};

fn real_data() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/real");
    p.join("MANIFEST.md").exists().then_some(p)
}

/// What the manifest states for one band.
#[derive(Debug, Default)]
struct Band {
    sum: Option<f64>,
    nan: Option<u64>,
    px: Vec<(u64, u64, f64)>,
    sha16: Option<String>,
}

/// What the manifest states for one file.
#[derive(Debug, Default)]
struct Row {
    path: String,
    width: u64,
    height: u64,
    bands: u64,
    dtype: String,
    transform: Vec<f64>,
    epsg: Option<u32>,
    nodata: Option<f64>,
    overviews: Vec<(u32, u32)>,
    per_band: Vec<Band>,
}

fn number(s: &str) -> f64 {
    let t = s.trim().trim_end_matches([',', '.', ';']);
    if t == "nan" {
        f64::NAN
    } else {
        t.parse().unwrap_or_else(|_| panic!("not a number: {s:?}"))
    }
}

fn parse_band(text: &str) -> Band {
    let mut band = Band::default();
    for part in text.split(", ") {
        let part = part.trim();
        if let Some(v) = part
            .strip_prefix("sum ")
            .or_else(|| part.strip_prefix("nansum "))
        {
            band.sum = Some(number(v));
        } else if let Some(v) = part.strip_prefix("NaN ") {
            band.nan = Some(number(v) as u64);
        } else if let Some(v) = part.strip_prefix("sha16 ") {
            band.sha16 = v.trim().get(..16).map(str::to_string);
        } else if let Some(rest) = part.strip_prefix("px[") {
            let (at, v) = rest.split_once("] ").expect("px");
            let (r, c) = at.split_once(',').expect("px index");
            band.px
                .push((number(r) as u64, number(c) as u64, number(v)));
        }
    }
    band
}

fn rows(manifest: &str) -> Vec<Row> {
    let section = manifest
        .split("## GeoTIFF / COG")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("GeoTIFF section");
    let mut out = Vec::new();
    for line in section.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.split(" | ").collect();
        let path = cells[0]
            .trim_start_matches("| ")
            .trim_matches('`')
            .to_string();
        let expect = cells.last().expect("cell").trim_end_matches(" |");
        let mut row = Row {
            path,
            ..Row::default()
        };
        let (head, bands) = expect.split_once(". b1: ").expect("bands");
        for item in head.split("; ") {
            let item = item.trim();
            if let Some(size) = item
                .strip_suffix(" px")
                .or_else(|| item.split(" px,").next().filter(|_| item.contains(" px,")))
            {
                let (w, h) = size.split_once('×').expect("size");
                row.width = number(w) as u64;
                row.height = number(h) as u64;
                let rest: Vec<&str> = item.split(", ").collect();
                row.bands = number(rest[1].split(' ').next().expect("bands")) as u64;
                row.dtype = rest[2].trim().to_string();
            } else if let Some(t) = item.strip_prefix("transform (") {
                row.transform = t.trim_end_matches(')').split(", ").map(number).collect();
            } else if let Some(e) = item.strip_prefix("EPSG ") {
                row.epsg = Some(number(e) as u32);
            } else if let Some(n) = item.strip_prefix("nodata ") {
                row.nodata = Some(number(n));
            } else if let Some(o) = item.strip_prefix("overviews ") {
                for ov in o.split(", ") {
                    let size = ov.split("→ ").nth(1).expect("overview size");
                    let (w, h) = size.split_once('×').expect("overview");
                    row.overviews.push((number(w) as u32, number(h) as u32));
                }
            }
        }
        let bands = format!("b1: {bands}");
        for b in bands.split(" · ") {
            let b = b.split_once(": ").expect("band").1;
            let b = b.split(" (").next().expect("band text");
            row.per_band.push(parse_band(b));
        }
        out.push(row);
    }
    out
}

fn sha16(values: &[u8], esize: usize) -> String {
    let mut le = Vec::with_capacity(values.len());
    for e in values.chunks(esize) {
        let mut e = e.to_vec();
        if cfg!(target_endian = "big") {
            e.reverse();
        }
        le.extend(e);
    }
    let digest = Sha256::digest(&le);
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// Files of the manifest with an internal mask.
const MASKED: [&str; 1] = ["rasterio/cogeo.tif"];

fn check_file(root: &Path, row: &Row, wkts: &mut BTreeMap<String, serde_json::Value>) {
    let path = root.join(&row.path);
    let location = Location::parse(path.to_str().expect("path")).expect("location");
    let input: Input = open_input(&location, &InputOptions::default()).expect(&row.path);
    let var = input
        .variables
        .iter()
        .find(|v| v.name == "band_data")
        .expect("band_data");
    assert_eq!(var.dims, ["band", "y", "x"]);
    let src = &var.source;
    assert_eq!(
        src.shape(),
        [row.bands, row.height, row.width],
        "{}",
        row.path
    );
    // A file with GDAL's mask is read through it, as rioxarray reads it: into float32, NaN
    // where masked (cogeo.tif's internal mask masks nothing).
    let want_type = if MASKED.contains(&row.path.as_str()) {
        "float32"
    } else {
        row.dtype.as_str()
    };
    assert_eq!(src.dtype().name(), want_type, "{}", row.path);
    contract::check(src.as_ref()).unwrap_or_else(|e| panic!("{}: {e}", row.path));
    let all = src.read_region(&[0, 0, 0], src.shape()).expect("read");
    let esize = src.dtype().size();
    let plane = (row.height * row.width) as usize;
    let jpeg = src.encoding().iter().any(|e| e == "jpeg");
    for (b, want) in row.per_band.iter().enumerate() {
        let bytes = &all.bytes[b * plane * esize..(b + 1) * plane * esize];
        let values: Vec<f64> = bytes
            .chunks(esize)
            .map(|e| src.dtype().element_to_f64(e))
            .collect();
        let sum: f64 = values.iter().filter(|v| !v.is_nan()).sum();
        let nan = values.iter().filter(|v| v.is_nan()).count() as u64;
        let at = |r: u64, c: u64| values[(r * row.width + c) as usize];
        if jpeg {
            let s = want.sum.expect("sum");
            assert!(
                (sum - s).abs() / s < 0.005,
                "{} b{}: sum {sum} vs {s}",
                row.path,
                b + 1
            );
            for (r, c, v) in &want.px {
                assert!(
                    (at(*r, *c) - v).abs() <= 6.0,
                    "{} b{} px[{r},{c}] {} vs {v}",
                    row.path,
                    b + 1,
                    at(*r, *c)
                );
            }
            continue;
        }
        assert_eq!(
            Some(sha16(bytes, esize)),
            want.sha16,
            "{} b{}",
            row.path,
            b + 1
        );
        if let Some(s) = want.sum {
            assert!(
                (sum - s).abs() <= 1e-6 * s.abs().max(1.0),
                "{} b{}: sum {sum} vs {s}",
                row.path,
                b + 1
            );
        }
        assert_eq!(nan, want.nan.unwrap_or(0), "{} b{}", row.path, b + 1);
        for (r, c, v) in &want.px {
            let got = at(*r, *c);
            assert!(
                got == *v || (got.is_nan() && v.is_nan()) || (got - v).abs() < 1e-7,
                "{} b{} px[{r},{c}] {got} vs {v}",
                row.path,
                b + 1
            );
        }
    }
    // The transform, from the GeoTransform text (GDAL order c a b f d e).
    let sr = input
        .variables
        .iter()
        .find(|v| v.name == "spatial_ref")
        .expect("spatial_ref");
    let gt: Vec<f64> = sr.attrs["GeoTransform"]
        .as_str()
        .expect("text")
        .split(' ')
        .map(number)
        .collect();
    let affine = [gt[1], gt[2], gt[0], gt[4], gt[5], gt[3]];
    for (got, want) in affine.iter().zip(&row.transform) {
        assert!(
            (got - want).abs() <= 1e-6 * want.abs().max(1.0),
            "{}: transform {affine:?} vs {:?}",
            row.path,
            row.transform
        );
    }
    // Coordinates at pixel centres (rectilinear transforms).
    if let Some(x) = input
        .dims
        .iter()
        .find(|d| d.name == "x")
        .and_then(|d| d.coord.as_ref())
    {
        let xs = x.raw().expect("x").to_f64_vec();
        assert_eq!(xs[0], affine[0] * 0.5 + affine[2], "{}", row.path);
    } else {
        assert!(
            input.variables.iter().any(|v| v.name == "xc"),
            "{}: no x coordinate nor xc",
            row.path
        );
    }
    // Nodata.
    match row.nodata {
        Some(n) if n.is_nan() => assert_eq!(var.decoding.fill_values.len(), 1),
        Some(n) => assert_eq!(var.decoding.fill_values, [n], "{}", row.path),
        None => assert!(var.decoding.fill_values.is_empty(), "{}", row.path),
    }
    let info = geotiff::describe(&RangeFile::open(path.to_str().expect("path")).expect("file"))
        .expect("describe");
    assert_eq!(info.epsg, row.epsg, "{}", row.path);
    let ovs: Vec<(u32, u32)> = info.overviews.iter().map(|o| (o[0], o[1])).collect();
    assert_eq!(ovs, row.overviews, "{}", row.path);
    let coord = |name: &str| {
        input
            .dims
            .iter()
            .find(|d| d.name == name)
            .and_then(|d| d.coord.as_ref())
            .map(|c| c.raw().expect("coord").to_f64_vec())
    };
    wkts.insert(
        row.path.clone(),
        serde_json::json!({
            "crs_wkt": info.crs_wkt,
            "GeoTransform": sr.attrs["GeoTransform"],
            "x": coord("x"),
            "y": coord("y"),
            "band_attrs": var.attrs,
            "xc": input.variables.iter().find(|v| v.name == "xc").map(|v| v.source.read_region(&[0, 0], v.source.shape()).expect("xc").to_f64_vec()),
            "yc": input.variables.iter().find(|v| v.name == "yc").map(|v| v.source.read_region(&[0, 0], v.source.shape()).expect("yc").to_f64_vec()),
        }),
    );
}

#[test]
fn every_manifest_geotiff_reads_as_stated() {
    let Some(root) = real_data() else {
        eprintln!("shared/data/real not found beside the repository: skipped");
        return;
    };
    let manifest = std::fs::read_to_string(root.join("MANIFEST.md")).expect("manifest");
    let rows = rows(&manifest);
    assert_eq!(rows.len(), 13, "GeoTIFF rows in the manifest");
    let mut wkts = BTreeMap::new();
    for row in &rows {
        check_file(&root, row, &mut wkts);
    }
    if let Ok(dump) = std::env::var("GEOTIFF_WKT_DUMP") {
        std::fs::write(dump, serde_json::to_string_pretty(&wkts).expect("json")).expect("dump");
    }
}
