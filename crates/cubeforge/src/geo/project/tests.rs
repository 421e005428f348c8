//! The measurement that decides (design regrid.md §4.6): proj4rs against pyproj 3.7.2 / PROJ
//! 9.5.1 on the points `scripts/crs_accuracy.py` writes (`tests/data/crs/points.{json,bin}`,
//! 1,000 per pair), every point within 1 mm (projected) and 1e-8° (geographic).
//!
//! Full run (10^5 points a pair, table with max, p99 and points/s):
//!   .venv/bin/python scripts/crs_accuracy.py 100000 /tmp/crs-points
//!   CUBEFORGE_CRS_POINTS=/tmp/crs-points cargo test --release -p cubeforge crs_accuracy -- --nocapture

use super::*;
use std::path::PathBuf;
use std::time::Instant;

/// Projected tolerance (metres) and geographic tolerance (degrees).
const TOL_M: f64 = 1e-3;
const TOL_DEG: f64 = 1e-8;

struct Pair {
    name: String,
    projected: String,
    lon: Vec<f64>,
    lat: Vec<f64>,
    x: Vec<f64>,
    y: Vec<f64>,
    lon2: Vec<f64>,
    lat2: Vec<f64>,
}

fn load() -> (PathBuf, Vec<Pair>) {
    let base = match std::env::var("CUBEFORGE_CRS_POINTS") {
        Ok(p) => PathBuf::from(p),
        Err(_) => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/crs/points"),
    };
    let meta: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(base.with_extension("json")).expect("points.json"),
    )
    .expect("points.json parses");
    let bytes = std::fs::read(base.with_extension("bin")).expect("points.bin");
    let all: Vec<f64> = bytes
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
        .collect();
    let pairs = meta["pairs"]
        .as_array()
        .expect("pairs")
        .iter()
        .map(|p| {
            let n = p["n"].as_u64().unwrap() as usize;
            let off = p["offset"].as_u64().unwrap() as usize;
            let arr = |i: usize| all[off + i * n..off + (i + 1) * n].to_vec();
            Pair {
                name: p["name"].as_str().unwrap().to_string(),
                projected: p["projected"].as_str().unwrap().to_string(),
                lon: arr(0),
                lat: arr(1),
                x: arr(2),
                y: arr(3),
                lon2: arr(4),
                lat2: arr(5),
            }
        })
        .collect();
    (base, pairs)
}

/// Longitude difference in degrees, modulo 360.
fn dlon(a: f64, b: f64) -> f64 {
    let d = (a - b).rem_euclid(360.0);
    d.min(360.0 - d)
}

fn p99(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() as f64 * 0.99).ceil() as usize).clamp(1, v.len()) - 1]
}

struct Row {
    what: String,
    max: f64,
    p99: f64,
    unit: &'static str,
    per_s: f64,
    bad: usize,
    worst: String,
}

#[test]
fn crs_accuracy_against_pyproj() {
    let (base, pairs) = load();
    let geo = Crs::parse("EPSG:4326").unwrap();
    let mut rows = Vec::new();
    for p in &pairs {
        let crs = Crs::parse(&p.projected).unwrap_or_else(|e| panic!("{}: {e}", p.name));
        let pr = Projector::new(&geo, &crs).unwrap_or_else(|e| panic!("{}: {e}", p.name));
        let n = p.lon.len();

        // Forward: geographic (src) -> projected (dst).
        let (mut x, mut y) = (p.lon.clone(), p.lat.clone());
        let t = Instant::now();
        pr.src_to_dst(&mut x, &mut y);
        let per_s = n as f64 / t.elapsed().as_secs_f64();
        let err: Vec<f64> = (0..n)
            .map(|i| (x[i] - p.x[i]).hypot(y[i] - p.y[i]))
            .map(|e| if e.is_nan() { f64::INFINITY } else { e })
            .collect();
        rows.push(row(
            format!("{} 4326->proj", p.name),
            &err,
            "m",
            TOL_M,
            per_s,
            |i| {
                format!(
                    "lon {} lat {}: {} {} vs {} {}",
                    p.lon[i], p.lat[i], x[i], y[i], p.x[i], p.y[i]
                )
            },
        ));

        // The same through the other constructor and direction.
        let back = Projector::new(&crs, &geo).unwrap();
        let (mut x2, mut y2) = (p.lon.clone(), p.lat.clone());
        back.dst_to_src(&mut x2, &mut y2);
        assert!(
            (0..n).all(|i| x2[i] == x[i] && y2[i] == y[i]),
            "{}: dst_to_src of (proj, 4326) differs from src_to_dst of (4326, proj)",
            p.name
        );

        // Inverse: projected (dst) -> geographic (src).
        let (mut lon, mut lat) = (p.x.clone(), p.y.clone());
        let t = Instant::now();
        pr.dst_to_src(&mut lon, &mut lat);
        let per_s = n as f64 / t.elapsed().as_secs_f64();
        let err: Vec<f64> = (0..n)
            .map(|i| dlon(lon[i], p.lon2[i]).max((lat[i] - p.lat2[i]).abs()))
            .map(|e| if e.is_nan() { f64::INFINITY } else { e })
            .collect();
        rows.push(row(
            format!("{} proj->4326", p.name),
            &err,
            "deg",
            TOL_DEG,
            per_s,
            |i| {
                format!(
                    "x {} y {}: {} {} vs {} {}",
                    p.x[i], p.y[i], lon[i], lat[i], p.lon2[i], p.lat2[i]
                )
            },
        ));
        assert!(
            lon.iter().all(|l| (-180.0..=180.0).contains(l)),
            "{}: lon range",
            p.name
        );

        // Round trip through proj4rs alone.
        let (mut rx, mut ry) = (x.clone(), y.clone());
        pr.dst_to_src(&mut rx, &mut ry);
        let err: Vec<f64> = (0..n)
            .map(|i| dlon(rx[i], p.lon[i]).max((ry[i] - p.lat[i]).abs()))
            .map(|e| if e.is_nan() { f64::INFINITY } else { e })
            .collect();
        rows.push(row(
            format!("{} round trip", p.name),
            &err,
            "deg",
            1e-9,
            0.0,
            |i| format!("lon {} lat {}: {} {}", p.lon[i], p.lat[i], rx[i], ry[i]),
        ));
    }
    println!("points: {} ({} a pair)", base.display(), pairs[0].lon.len());
    println!("| pair, direction | max error | p99 | points/s | over tolerance |");
    println!("|---|---|---|---|---|");
    for r in &rows {
        println!(
            "| {} | {:.3e} {} | {:.3e} {} | {} | {} |",
            r.what,
            r.max,
            r.unit,
            r.p99,
            r.unit,
            if r.per_s > 0.0 {
                format!("{:.2e}", r.per_s)
            } else {
                "-".into()
            },
            r.bad
        );
    }
    let failures: Vec<String> = rows
        .iter()
        .filter(|r| r.bad > 0)
        .map(|r| {
            format!(
                "{}: {} points over tolerance, worst {}",
                r.what, r.bad, r.worst
            )
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn row(
    what: String,
    err: &[f64],
    unit: &'static str,
    tol: f64,
    per_s: f64,
    show: impl Fn(usize) -> String,
) -> Row {
    let (imax, max) = err
        .iter()
        .copied()
        .enumerate()
        .fold((0, 0.0), |acc, (i, e)| if e > acc.1 { (i, e) } else { acc });
    Row {
        what,
        max,
        p99: p99(err.to_vec()),
        unit,
        per_s,
        bad: err.iter().filter(|e| **e > tol).count(),
        worst: show(imax),
    }
}

#[test]
fn failures_become_nan_and_lengths_are_kept() {
    let geo = Crs::parse("EPSG:4326").unwrap();
    let ps = Crs::parse("EPSG:3031").unwrap();
    let pr = Projector::new(&ps, &geo).unwrap();
    // dst (geographic) -> src (polar stereographic): latitude 95 cannot be transformed.
    let (mut x, mut y) = (vec![0.0, 10.0, f64::NAN], vec![-70.0, 95.0, 1.0]);
    pr.dst_to_src(&mut x, &mut y);
    assert!(x[0].is_finite() && y[0].is_finite());
    assert!(x[1].is_nan() && y[1].is_nan());
    assert!(x[2].is_nan() && y[2].is_nan());
}

#[test]
fn longitudes_come_out_in_minus_180_180() {
    let geo = Crs::parse("EPSG:4326").unwrap();
    let utm = Crs::parse("EPSG:32760").unwrap();
    let pr = Projector::new(&geo, &utm).unwrap();
    // East of 180 in zone 60.
    let (mut x, mut y) = (vec![800_000.0], vec![5_000_000.0]);
    pr.dst_to_src(&mut x, &mut y);
    assert!(x[0] < 0.0 && x[0] > -180.0, "{}", x[0]);
    // The same CRS twice: identity, only wrapping.
    let id = Projector::new(&geo, &Crs::parse("+proj=longlat +datum=WGS84").unwrap()).unwrap();
    assert!(id.is_identity());
    let (mut x, mut y) = (vec![190.0, -200.0, 180.0], vec![10.0, 20.0, 95.0]);
    id.dst_to_src(&mut x, &mut y);
    assert_eq!((x[0], y[0]), (-170.0, 10.0));
    assert_eq!((x[1], y[1]), (160.0, 20.0));
    assert!(x[2].is_nan() && y[2].is_nan());
}

#[test]
fn datum_pairs_without_a_shift_are_refused() {
    let geo = Crs::parse("EPSG:4326").unwrap();
    let intl = Crs::parse("+proj=longlat +ellps=intl").unwrap();
    let e = Projector::new(&intl, &geo).unwrap_err();
    assert!(
        e.contains("no datum shift known") && e.contains("+ellps=intl"),
        "{e}"
    );
    assert!(e.contains("WGS 84"), "{e}");
    // NAD27 needs grids, which are not carried: its ellipsoid alone.
    let e = Projector::new(&Crs::parse("EPSG:4267").unwrap(), &geo).unwrap_err();
    assert!(
        e.contains("NAD27") && e.contains("no datum shift known"),
        "{e}"
    );
    // With a shift it goes, and so does the same unknown datum on both sides.
    let osgb = Crs::parse("EPSG:27700").unwrap();
    Projector::new(&osgb, &geo).unwrap();
    Projector::new(
        &intl,
        &Crs::parse("+proj=utm +zone=30 +ellps=intl").unwrap(),
    )
    .unwrap();
    // A sphere takes no shift (MODIS).
    Projector::new(&Crs::parse("+proj=sinu +R=6371007.181").unwrap(), &osgb).unwrap();
}

#[test]
fn a_datum_shift_matches_pyproj() {
    // pyproj 3.7.2 (PROJ 9.5.1, no OSTN15 grid installed, so its Helmert towgs84 pipeline):
    // Transformer.from_crs(27700, 4326, always_xy=True).transform(530000, 180000)
    let osgb = Crs::parse("EPSG:27700").unwrap();
    let geo = Crs::parse("EPSG:4326").unwrap();
    let pr = Projector::new(&geo, &osgb).unwrap();
    let (mut x, mut y) = (vec![530_000.0], vec![180_000.0]);
    pr.dst_to_src(&mut x, &mut y);
    assert!(
        (x[0] - REF_27700.0).abs() < 1e-8 && (y[0] - REF_27700.1).abs() < 1e-8,
        "{x:?} {y:?}"
    );
}

const REF_27700: (f64, f64) = (-0.12835394047946935, 51.50399082763378);

#[test]
fn projector_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Projector>();
}
