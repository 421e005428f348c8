//! `Crs`: the forms `parse` takes, WKT without codes mapped to PROJ strings, PROJ strings
//! composed into GDAL WKT 1, equivalence, names, areas, errors. Reference values are pyproj
//! 3.7.2's (`scripts/crs_accuracy.py` writes `tests/data/crs/cases.json`).

use super::*;
use crate::geo::project::Projector;

#[test]
fn epsg_forms() {
    let a = Crs::parse("EPSG:4326").unwrap();
    for t in [
        "epsg:4326",
        "EPSG::4326",
        " EPSG:4326 ",
        "urn:ogc:def:crs:EPSG::4326",
    ] {
        assert_eq!(Crs::parse(t).unwrap(), a, "{t}");
    }
    assert_eq!(a.epsg, Some(4326));
    assert_eq!(a.proj4, "+proj=longlat +datum=WGS84 +no_defs");
    assert!(a.wkt.starts_with("GEOGCS[\"WGS 84\""));
    assert!(a.is_geographic());
    assert_eq!(a.name(), "WGS 84");
    let utm = Crs::from_epsg(32633).unwrap();
    assert_eq!(utm.name(), "WGS 84 / UTM zone 33N");
    assert!(!utm.is_geographic());
    // GDAL writes no TOWGS84 for an EPSG code; the PROJ string keeps the shift.
    let albers = Crs::from_epsg(3577).unwrap();
    assert!(!albers.wkt.contains("TOWGS84"), "{}", albers.wkt);
    assert!(albers.proj4.contains("+towgs84=0,0,0,0,0,0,0"));
}

#[test]
fn wkt_with_a_root_code_goes_by_the_code() {
    let utm = Crs::from_epsg(32633).unwrap();
    assert_eq!(Crs::parse(&utm.wkt).unwrap(), utm);
    // WKT 2 with ID["EPSG",n].
    let wkt2 = r#"PROJCRS["WGS 84 / UTM zone 33N",BASEGEOGCRS["WGS 84",ENSEMBLE["World Geodetic System 1984 ensemble",MEMBER["World Geodetic System 1984 (Transit)"],ELLIPSOID["WGS 84",6378137,298.257223563,LENGTHUNIT["metre",1]],ENSEMBLEACCURACY[2.0]],PRIMEM["Greenwich",0,ANGLEUNIT["degree",0.0174532925199433]],ID["EPSG",4326]],CONVERSION["UTM zone 33N",METHOD["Transverse Mercator",ID["EPSG",9807]]],CS[Cartesian,2],ID["EPSG",32633]]"#;
    assert_eq!(Crs::parse(wkt2).unwrap(), utm);
    assert!(Crs::parse(wkt2).unwrap().equivalent(&utm));
}

#[test]
fn equivalence() {
    let a = Crs::parse("EPSG:4326").unwrap();
    let b = Crs::parse("+proj=longlat +datum=WGS84").unwrap();
    let c = Crs::parse("+proj=longlat +ellps=WGS84 +towgs84=0,0,0").unwrap();
    assert!(a.equivalent(&b) && b.equivalent(&a) && a.equivalent(&c));
    let no_code = Crs::parse(&a.wkt.replace(",AUTHORITY[\"EPSG\",\"4326\"]]", "]")).unwrap();
    assert_eq!(no_code.epsg, None);
    assert!(no_code.equivalent(&a), "{}", no_code.proj4);
    let utm = Crs::parse("EPSG:32633").unwrap();
    let utm_p = Crs::parse("+proj=utm +zone=33 +datum=WGS84").unwrap();
    let utm_t = Crs::parse("+proj=tmerc +lon_0=15 +k=0.9996 +x_0=500000 +datum=WGS84").unwrap();
    assert!(utm.equivalent(&utm_p) && utm.equivalent(&utm_t));
    assert!(!utm.equivalent(&Crs::parse("EPSG:32634").unwrap()));
    assert!(!utm.equivalent(&a));
    assert!(!a.equivalent(&Crs::parse("EPSG:4277").unwrap()));
}

#[test]
fn area_of_use() {
    assert_eq!(
        Crs::parse("EPSG:3031").unwrap().area_of_use(),
        Some([-180.0, -90.0, 180.0, -60.0])
    );
    let a = Crs::parse("EPSG:3577").unwrap().area_of_use().unwrap();
    assert!(
        (a[0] - 112.85).abs() < 1e-5 && (a[3] + 9.86).abs() < 1e-5,
        "{a:?}"
    );
    assert_eq!(
        Crs::parse("+proj=sinu +R=6371007.181")
            .unwrap()
            .area_of_use(),
        None
    );
}

#[test]
fn errors_name_the_text_and_why() {
    for (t, why) in [
        ("EPSG:999999", "not in the EPSG table"),
        ("EPSG:abc", "not a number"),
        ("EPSG:4328", "geocentric"),
        ("+proj=nope +datum=WGS84", "proj4rs does not take"),
        ("+proj=robin +datum=WGS84", "no WKT is written for +proj=robin"),
        ("+proj=stere +lat_0=52 +datum=WGS84", "oblique stereographic"),
        ("hello", "not an EPSG code"),
        ("PROJCS[\"x\",GEOGCS[\"y\"", "does not parse"),
        (
            "PROJCS[\"x\",GEOGCS[\"WGS 84\",DATUM[\"WGS_1984\",SPHEROID[\"WGS 84\",6378137,298.257223563]],PRIMEM[\"Greenwich\",0],UNIT[\"degree\",0.0174532925199433]],PROJECTION[\"Robinson\"],UNIT[\"metre\",1]]",
            "the projection method Robinson is not supported",
        ),
    ] {
        let e = Crs::parse(t).unwrap_err();
        assert!(e.contains(why), "{t}: {e}");
        assert!(e.contains(&t[..5]), "{t}: {e}");
    }
}

/// Every case of cases.json: parsed, transformed like pyproj (1 mm, 1e-8°), and for PROJ
/// strings composed into pyproj's WKT1_GDAL, which reads back as an equivalent CRS.
#[test]
fn cases_match_pyproj() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/crs/cases.json");
    let cases: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let geo = Crs::parse("EPSG:4326").unwrap();
    let mut failures = Vec::new();
    for c in cases["cases"].as_array().unwrap() {
        let label = c["label"].as_str().unwrap();
        let text = c["text"].as_str().unwrap();
        let v = |k: &str| -> Vec<f64> {
            c[k].as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect()
        };
        let crs = match Crs::parse(text) {
            Ok(c) => c,
            Err(e) => {
                failures.push(format!("{label}: {e}"));
                continue;
            }
        };
        let pr = match Projector::new(&geo, &crs) {
            Ok(p) => p,
            Err(e) => {
                failures.push(format!("{label}: {e}"));
                continue;
            }
        };
        let (lon, lat, ex, ey) = (v("lon"), v("lat"), v("x"), v("y"));
        let (mut x, mut y) = (lon.clone(), lat.clone());
        pr.src_to_dst(&mut x, &mut y);
        for i in 0..x.len() {
            let err = (x[i] - ex[i]).hypot(y[i] - ey[i]);
            if err.is_nan() || err > 1e-3 {
                failures.push(format!(
                    "{label} ({}): lon {} lat {} gives {} {}, pyproj {} {}",
                    crs.proj4, lon[i], lat[i], x[i], y[i], ex[i], ey[i]
                ));
                break;
            }
        }
        let (lon2, lat2) = (v("lon2"), v("lat2"));
        let (mut x, mut y) = (ex.clone(), ey.clone());
        pr.dst_to_src(&mut x, &mut y);
        for i in 0..x.len() {
            let dl = (x[i] - lon2[i]).rem_euclid(360.0);
            let ok = dl.min(360.0 - dl) <= 1e-8 && (y[i] - lat2[i]).abs() <= 1e-8;
            if !ok {
                failures.push(format!(
                    "{label}: x {} y {} gives {} {}, pyproj {} {}",
                    ex[i], ey[i], x[i], y[i], lon2[i], lat2[i]
                ));
                break;
            }
        }
        if label == "webmerc_proj" {
            // Web Mercator's PROJ string is taken as EPSG:3857.
            assert_eq!(crs, Crs::from_epsg(3857).unwrap());
        } else if let Some(w) = c["wkt1_gdal"].as_str() {
            if crs.wkt != w {
                failures.push(format!("{label}: WKT\n ours   {}\n pyproj {w}", crs.wkt));
            }
            match Crs::parse(&crs.wkt) {
                Ok(back) if back.equivalent(&crs) => {}
                Ok(back) => failures.push(format!(
                    "{label}: WKT reads back as {} (from {})",
                    back.proj4, crs.proj4
                )),
                Err(e) => failures.push(format!("{label}: WKT does not read back: {e}")),
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
