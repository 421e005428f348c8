//! GDAL-flavour WKT 1 of a CRS given as a PROJ string, as `pyproj.CRS(s).to_wkt("WKT1_GDAL")`
//! writes it (PROJ 9.5), for the common methods: longlat, utm, tmerc/etmerc, aea, laea,
//! polar stere/ups, merc (and Web Mercator), sinu, lcc, eqc.

use super::{fmt_num, ProjParams};

const PRIMEM: &str = "PRIMEM[\"Greenwich\",0,AUTHORITY[\"EPSG\",\"8901\"]]";
const DEGREE: &str = "UNIT[\"degree\",0.0174532925199433,AUTHORITY[\"EPSG\",\"9122\"]]";
const METRE: &str = "UNIT[\"metre\",1,AUTHORITY[\"EPSG\",\"9001\"]]";
const EN_AXES: &str = "AXIS[\"Easting\",EAST],AXIS[\"Northing\",NORTH]";

/// PROJ's ellipsoids that GDAL names: (PROJ id, WKT name, a, inverse flattening, EPSG code).
const ELLIPSOIDS: &[(&str, &str, f64, f64, u32)] = &[
    ("WGS84", "WGS 84", 6378137.0, 298.257223563, 7030),
    ("GRS80", "GRS 1980", 6378137.0, 298.257222101, 7019),
    ("WGS72", "WGS 72", 6378135.0, 298.26, 7043),
    (
        "intl",
        "International 1924 (Hayford 1909, 1910)",
        6378388.0,
        297.0,
        0,
    ),
    ("airy", "Airy 1830", 6377563.396, 299.3249646, 0),
    ("bessel", "Bessel 1841", 6377397.155, 299.1528128, 0),
    ("clrk66", "Clarke 1866", 6378206.4, 294.978698213898, 0),
    ("clrk80", "Clarke 1880 mod.", 6378249.145, 293.4663, 0),
    ("krass", "Krassovsky, 1942", 6378245.0, 298.3, 0),
    (
        "aust_SA",
        "Australian Natl & S. Amer. 1969",
        6378160.0,
        298.25,
        0,
    ),
];

/// The GDAL WKT 1 of `p` (a parsed PROJ string), or why not.
pub(crate) fn wkt1(p: &ProjParams) -> Result<String, String> {
    let geogcs = geogcs(p)?;
    let proj = p.get("proj").unwrap_or("");
    let num = |key: &str, default: f64| number(p, key, default);
    if matches!(proj, "longlat" | "latlong" | "lonlat" | "latlon") {
        return Ok(geogcs);
    }
    let (to_meter, unit) = linear_unit(p)?;
    let fe = num("x_0", 0.0)? / to_meter;
    let fn_ = num("y_0", 0.0)? / to_meter;
    let (lat_0, lon_0, k) = (
        num("lat_0", 0.0)?,
        num("lon_0", 0.0)?,
        num("k_0", num("k", 1.0)?)?,
    );
    let mut extension = None;
    let (method, params): (&str, Vec<(&str, f64)>) = match proj {
        "utm" => {
            let zone = num("zone", f64::NAN)?;
            if !((1.0..=60.0).contains(&zone) && zone.fract() == 0.0) {
                return Err("+proj=utm needs +zone=1..60".into());
            }
            let south = p.get_entry("south").is_some();
            return Ok(format!(
                "PROJCS[\"unknown\",{geogcs},PROJECTION[\"Transverse_Mercator\"],\
                 PARAMETER[\"latitude_of_origin\",0],PARAMETER[\"central_meridian\",{}],\
                 PARAMETER[\"scale_factor\",0.9996],PARAMETER[\"false_easting\",500000],\
                 PARAMETER[\"false_northing\",{}],{METRE},{EN_AXES}]",
                fmt_num(zone * 6.0 - 183.0),
                if south { 10000000 } else { 0 }
            ));
        }
        "tmerc" | "etmerc" => (
            "Transverse_Mercator",
            vec![
                ("latitude_of_origin", lat_0),
                ("central_meridian", lon_0),
                ("scale_factor", k),
            ],
        ),
        "aea" => (
            "Albers_Conic_Equal_Area",
            vec![
                ("latitude_of_center", lat_0),
                ("longitude_of_center", lon_0),
                ("standard_parallel_1", num("lat_1", 0.0)?),
                ("standard_parallel_2", num("lat_2", 0.0)?),
            ],
        ),
        "laea" => (
            "Lambert_Azimuthal_Equal_Area",
            vec![
                ("latitude_of_center", lat_0),
                ("longitude_of_center", lon_0),
            ],
        ),
        "lcc" => {
            let lat_1 = num("lat_1", lat_0)?;
            let lat_2 = num("lat_2", lat_1)?;
            if lat_1 == lat_2 && p.get("lat_0").is_none_or(|_| lat_0 == lat_1) {
                (
                    "Lambert_Conformal_Conic_1SP",
                    vec![
                        ("latitude_of_origin", lat_1),
                        ("central_meridian", lon_0),
                        ("scale_factor", k),
                    ],
                )
            } else {
                (
                    "Lambert_Conformal_Conic_2SP",
                    vec![
                        ("latitude_of_origin", lat_0),
                        ("central_meridian", lon_0),
                        ("standard_parallel_1", lat_1),
                        ("standard_parallel_2", lat_2),
                    ],
                )
            }
        }
        "stere" | "ups" => {
            return polar_stereographic(p, &geogcs, &unit, to_meter, [lat_0, lon_0, k, fe, fn_]);
        }
        "merc" | "webmerc" => {
            let sphere_on_null = p.get("nadgrids") == Some("@null")
                && p.get("a").is_some()
                && p.get("a") == p.get("b");
            if proj == "webmerc" || sphere_on_null {
                extension = Some(p.to_string());
            }
            match p.get("lat_ts") {
                Some(_) if num("lat_ts", 0.0)? != 0.0 => (
                    "Mercator_2SP",
                    vec![
                        ("standard_parallel_1", num("lat_ts", 0.0)?),
                        ("central_meridian", lon_0),
                    ],
                ),
                _ => (
                    "Mercator_1SP",
                    vec![("central_meridian", lon_0), ("scale_factor", k)],
                ),
            }
        }
        "sinu" => ("Sinusoidal", vec![("longitude_of_center", lon_0)]),
        "eqc" if lat_0 == 0.0 => (
            "Equirectangular",
            vec![
                ("standard_parallel_1", num("lat_ts", 0.0)?),
                ("central_meridian", lon_0),
            ],
        ),
        "eqc" => (
            "Equirectangular",
            vec![
                ("latitude_of_origin", lat_0),
                ("standard_parallel_1", num("lat_ts", 0.0)?),
                ("central_meridian", lon_0),
            ],
        ),
        other => {
            return Err(format!(
                "no WKT is written for +proj={other} (supported: longlat, utm, tmerc, aea, laea, \
                 polar stere/ups, merc, sinu, lcc, eqc)"
            ))
        }
    };
    let mut wkt = format!("PROJCS[\"unknown\",{geogcs},PROJECTION[\"{method}\"]");
    for (n, v) in params {
        wkt.push_str(&format!(",PARAMETER[\"{n}\",{}]", fmt_num(v)));
    }
    wkt.push_str(&format!(
        ",PARAMETER[\"false_easting\",{}],PARAMETER[\"false_northing\",{}],{unit}",
        fmt_num(fe),
        fmt_num(fn_)
    ));
    if let Some(ext) = extension {
        wkt.push_str(",AXIS[\"X\",EAST],AXIS[\"Y\",NORTH]");
        wkt.push_str(&format!(",EXTENSION[\"PROJ4\",\"{ext}\"]]"));
    } else {
        wkt.push_str(&format!(",{EN_AXES}]"));
    }
    Ok(wkt)
}

/// `+key` of `p` as a number, `default` when absent.
fn number(p: &ProjParams, key: &str, default: f64) -> Result<f64, String> {
    match p.get(key) {
        None => Ok(default),
        Some(v) => v
            .parse::<f64>()
            .map_err(|_| format!("+{key}={v} is not a number")),
    }
}

/// The metres per unit of `p`'s `+units`/`+to_meter`, and its WKT `UNIT`.
fn linear_unit(p: &ProjParams) -> Result<(f64, String), String> {
    let to_meter = match (p.get("units"), p.get("to_meter")) {
        (Some("m") | None, None) => 1.0,
        (Some("km"), None) => 1000.0,
        (Some("ft"), None) => 0.3048,
        (Some("us-ft"), None) => 1200.0 / 3937.0,
        (_, Some(_)) => number(p, "to_meter", 1.0)?,
        (Some(u), None) => return Err(format!("+units={u} is not supported")),
    };
    let unit = match p.get("units") {
        _ if to_meter == 1.0 => METRE.to_string(),
        Some("ft") => "UNIT[\"foot\",0.3048,AUTHORITY[\"EPSG\",\"9002\"]]".to_string(),
        Some("us-ft") => {
            "UNIT[\"US survey foot\",0.304800609601219,AUTHORITY[\"EPSG\",\"9003\"]]".to_string()
        }
        _ => format!("UNIT[\"unknown\",{}]", fmt_num(to_meter)),
    };
    Ok((to_meter, unit))
}

/// The WKT of a polar stereographic `+proj=stere` (`+lat_0=±90`, with `+lat_ts`: variant B) or
/// `+proj=ups`; `origin` is `[lat_0, lon_0, k, false easting, false northing]` in the CRS's unit.
fn polar_stereographic(
    p: &ProjParams,
    geogcs: &str,
    unit: &str,
    to_meter: f64,
    origin: [f64; 5],
) -> Result<String, String> {
    let [lat_0, lon_0, k, fe, fn_] = origin;
    let proj = p.get("proj").unwrap_or("");
    let (lat_0, k, fe, fn_) = if proj == "ups" {
        let s = p.get_entry("south").is_some();
        (
            if s { -90.0 } else { 90.0 },
            0.994,
            2e6 / to_meter,
            2e6 / to_meter,
        )
    } else {
        (lat_0, k, fe, fn_)
    };
    if lat_0.abs() != 90.0 {
        return Err(format!(
            "+proj=stere with +lat_0={} (oblique stereographic) is not supported",
            fmt_num(lat_0)
        ));
    }
    let params = match p.get("lat_ts") {
        Some(_) if proj == "stere" => vec![
            ("latitude_of_origin", number(p, "lat_ts", 0.0)?),
            ("central_meridian", lon_0),
        ],
        _ => vec![
            ("latitude_of_origin", lat_0),
            ("central_meridian", lon_0),
            ("scale_factor", k),
        ],
    };
    let mut wkt = format!("PROJCS[\"unknown\",{geogcs},PROJECTION[\"Polar_Stereographic\"]");
    for (n, v) in params {
        wkt.push_str(&format!(",PARAMETER[\"{n}\",{}]", fmt_num(v)));
    }
    wkt.push_str(&format!(
        ",PARAMETER[\"false_easting\",{}],PARAMETER[\"false_northing\",{}],{unit}]",
        fmt_num(fe),
        fmt_num(fn_)
    ));
    Ok(wkt)
}

/// The GEOGCS of `p`'s datum, ellipsoid and prime meridian.
fn geogcs(p: &ProjParams) -> Result<String, String> {
    if let Some(pm) = p.get("pm") {
        if pm != "greenwich" && !pm.parse::<f64>().is_ok_and(|v| v == 0.0) {
            return Err(format!("no WKT is written for a prime meridian +pm={pm}"));
        }
    }
    let datum = p.get("datum");
    let (sph, datum_name, datum_auth) = match datum {
        Some("WGS84") => (
            spheroid(ELLIPSOIDS[0].1, 6378137.0, 298.257223563, 7030),
            "WGS_1984".to_string(),
            6326,
        ),
        Some("NAD83") => (
            spheroid("GRS 1980", 6378137.0, 298.257222101, 7019),
            "North_American_Datum_1983".to_string(),
            6269,
        ),
        Some("NAD27") => (
            spheroid("Clarke 1866", 6378206.4, 294.978698213898, 7008),
            "North_American_Datum_1927".to_string(),
            6267,
        ),
        Some(d) => {
            return Err(format!(
                "no WKT is written for +datum={d} (give +ellps and +towgs84)"
            ))
        }
        None => {
            let (name, a, invf) = ellipsoid(p)?;
            let code = ELLIPSOIDS.iter().find(|e| e.1 == name).map_or(0, |e| e.4);
            let sph = spheroid(&name, a, invf, code);
            let mut dn = if name == "unknown" {
                "unknown".to_string()
            } else {
                format!("Unknown based on {name} ellipsoid")
            };
            let mut extra = String::new();
            if let Some(t) = p.get("towgs84") {
                dn.push_str(&format!(" using towgs84={t}"));
                extra = format!(",TOWGS84[{t}]");
            } else if let Some(g) = p.get("nadgrids") {
                dn.push_str(&format!(" using nadgrids={g}"));
                extra = format!(",EXTENSION[\"PROJ4_GRIDS\",\"{g}\"]");
            }
            return Ok(format!(
                "GEOGCS[\"unknown\",DATUM[\"{dn}\",{sph}{extra}],{PRIMEM},{DEGREE}]"
            ));
        }
    };
    Ok(format!(
        "GEOGCS[\"unknown\",DATUM[\"{datum_name}\",{sph},AUTHORITY[\"EPSG\",\"{datum_auth}\"]],\
         {PRIMEM},{DEGREE}]"
    ))
}

fn spheroid(name: &str, a: f64, invf: f64, code: u32) -> String {
    if code == 0 {
        format!("SPHEROID[\"{name}\",{},{}]", fmt_num(a), fmt_num(invf))
    } else {
        format!(
            "SPHEROID[\"{name}\",{},{},AUTHORITY[\"EPSG\",\"{code}\"]]",
            fmt_num(a),
            fmt_num(invf)
        )
    }
}

/// The ellipsoid's WKT name, semi-major axis and inverse flattening (0 for a sphere).
fn ellipsoid(p: &ProjParams) -> Result<(String, f64, f64), String> {
    let f = |key: &str| p.get(key).and_then(|v| v.parse::<f64>().ok());
    if let Some(r) = f("R") {
        return Ok(("unknown".into(), r, 0.0));
    }
    let named = p
        .get("ellps")
        .map(|e| {
            ELLIPSOIDS
                .iter()
                .find(|x| x.0.eq_ignore_ascii_case(e))
                .ok_or_else(|| format!("no WKT is written for +ellps={e} (give +a and +rf)"))
        })
        .transpose()?;
    let a = f("a").or(named.map(|n| n.2));
    let invf = if let Some(rf) = f("rf") {
        Some(rf)
    } else if let (Some(a), Some(b)) = (a, f("b")) {
        Some(if a == b { 0.0 } else { a / (a - b) })
    } else if let Some(fl) = f("f") {
        Some(if fl == 0.0 { 0.0 } else { 1.0 / fl })
    } else {
        named.map(|n| n.3)
    };
    match (a, invf) {
        (Some(a), Some(invf)) => {
            let name = match named {
                Some(n) if n.2 == a && n.3 == invf => n.1.to_string(),
                _ => "unknown".to_string(),
            };
            Ok((name, a, invf))
        }
        // PROJ's default ellipsoid.
        (None, None) => Ok((ELLIPSOIDS[1].1.into(), 6378137.0, 298.257222101)),
        _ => Err("an ellipsoid without both its axis and flattening".into()),
    }
}
