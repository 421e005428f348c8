//! GeoKeys to a CRS, as GDAL reads them: an EPSG code (projected or geographic) becomes the
//! EPSG database's WKT; a user-defined projected CRS is composed as WKT from its keys for the
//! common projection methods (Albers, Lambert conformal conic 1SP/2SP, transverse Mercator,
//! polar stereographic, Mercator, Lambert azimuthal equal-area, equirectangular, sinusoidal), on the
//! geographic CRS the keys name, with the ellipsoid the keys give where they give one (GDAL
//! keeps the geographic CRS's names and overrides its ellipsoid's axes). Anything else has no
//! CRS, with a warning.

use std::collections::BTreeMap;

use crate::geo::crs::wkt::Wkt;

/// `GTModelTypeGeoKey`.
const MODEL_TYPE: u16 = 1024;
/// `GTRasterTypeGeoKey`.
pub(crate) const RASTER_TYPE: u16 = 1025;
/// `GTCitationGeoKey`.
const GT_CITATION: u16 = 1026;
const GEOGRAPHIC_TYPE: u16 = 2048;
const GEOG_CITATION: u16 = 2049;
const GEOG_ANGULAR_UNITS: u16 = 2054;
const GEOG_SEMI_MAJOR: u16 = 2057;
const GEOG_SEMI_MINOR: u16 = 2058;
const GEOG_INV_FLATTENING: u16 = 2059;
const PROJECTED_TYPE: u16 = 3072;
const PCS_CITATION: u16 = 3073;
const PROJ_COORD_TRANS: u16 = 3075;
const PROJ_LINEAR_UNITS: u16 = 3076;
const PROJ_LINEAR_UNIT_SIZE: u16 = 3077;
const STD_PARALLEL1: u16 = 3078;
const STD_PARALLEL2: u16 = 3079;
const NAT_ORIGIN_LONG: u16 = 3080;
const NAT_ORIGIN_LAT: u16 = 3081;
const FALSE_EASTING: u16 = 3082;
const FALSE_NORTHING: u16 = 3083;
const FALSE_ORIGIN_LONG: u16 = 3084;
const FALSE_ORIGIN_LAT: u16 = 3085;
const FALSE_ORIGIN_EASTING: u16 = 3086;
const FALSE_ORIGIN_NORTHING: u16 = 3087;
const CENTER_LONG: u16 = 3088;
const CENTER_LAT: u16 = 3089;
const CENTER_EASTING: u16 = 3090;
const CENTER_NORTHING: u16 = 3091;
const SCALE_AT_NAT_ORIGIN: u16 = 3092;
const SCALE_AT_CENTER: u16 = 3093;
const STRAIGHT_VERT_POLE_LONG: u16 = 3095;

/// "User-defined" in GeoKeys.
const USER_DEFINED: u16 = 32767;

/// One GeoKey's value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum KeyValue {
    /// A SHORT.
    Short(u16),
    /// DOUBLEs.
    Doubles(Vec<f64>),
    /// An ASCII string (the trailing `|` removed).
    Ascii(String),
}

/// GeoKeys by number.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct GeoKeys(pub BTreeMap<u16, KeyValue>);

/// A CRS read from GeoKeys.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Crs {
    /// WKT 1 (GDAL's flavour).
    pub wkt: String,
    /// Its EPSG code, when the keys name one.
    pub epsg: Option<u32>,
}

impl GeoKeys {
    /// Parse the GeoKeyDirectoryTag `dir` with the GeoDoubleParamsTag `doubles` and the
    /// GeoAsciiParamsTag `ascii`; entries that point outside them are skipped.
    pub(crate) fn parse(dir: &[u16], doubles: &[f64], ascii: &str) -> GeoKeys {
        let mut keys = BTreeMap::new();
        let count = dir.get(3).copied().unwrap_or(0) as usize;
        for e in 0..count {
            let Some(entry) = dir.get(4 + e * 4..8 + e * 4) else {
                break;
            };
            let (key, loc, n, off) = (
                entry[0],
                entry[1],
                usize::from(entry[2]),
                usize::from(entry[3]),
            );
            let value = match loc {
                0 => Some(KeyValue::Short(entry[3])),
                34736 => doubles
                    .get(off..off + n)
                    .map(|d| KeyValue::Doubles(d.to_vec())),
                34737 => ascii
                    .get(off..off + n)
                    .map(|s| KeyValue::Ascii(s.trim_end_matches(['|', '\0']).to_string())),
                34735 => dir
                    .get(off..off + n)
                    .and_then(|s| s.first())
                    .map(|v| KeyValue::Short(*v)),
                _ => None,
            };
            if let Some(v) = value {
                keys.insert(key, v);
            }
        }
        GeoKeys(keys)
    }

    fn short(&self, key: u16) -> Option<u16> {
        match self.0.get(&key)? {
            KeyValue::Short(v) => Some(*v),
            _ => None,
        }
    }

    fn double(&self, key: u16) -> Option<f64> {
        match self.0.get(&key)? {
            KeyValue::Doubles(v) => v.first().copied(),
            KeyValue::Short(v) => Some(f64::from(*v)),
            KeyValue::Ascii(_) => None,
        }
    }

    fn ascii(&self, key: u16) -> Option<&str> {
        match self.0.get(&key)? {
            KeyValue::Ascii(s) => Some(s),
            _ => None,
        }
    }

    /// Whether the raster is pixel-is-point (`GTRasterTypeGeoKey` = 2).
    pub(crate) fn pixel_is_point(&self) -> bool {
        self.short(RASTER_TYPE) == Some(2)
    }

    /// Whether any GeoKey is present.
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The CRS, or `Err` with why there is none.
    pub(crate) fn crs(&self) -> Result<Crs, String> {
        let model = self.short(MODEL_TYPE);
        let projected = self.short(PROJECTED_TYPE);
        match (model, projected) {
            (Some(1) | None, Some(code)) if code != USER_DEFINED && code != 0 => epsg(code),
            (Some(1), _) => self.user_projected(),
            (Some(2), _) => match self.short(GEOGRAPHIC_TYPE) {
                Some(code) if code != USER_DEFINED && code != 0 => {
                    let base = epsg(code)?;
                    match self.geogcs()? {
                        g if g == base.wkt => Ok(base),
                        g => Ok(Crs { wkt: g, epsg: None }),
                    }
                }
                _ => Ok(Crs {
                    wkt: self.geogcs()?,
                    epsg: None,
                }),
            },
            (Some(3), _) => Err("geocentric CRSs are not read".into()),
            _ => Err("no model type or CRS code in the GeoKeys".into()),
        }
    }

    /// The GEOGCS: the EPSG one the keys name, its ellipsoid replaced by the keys' axes when
    /// they give them; or one composed from the keys.
    fn geogcs(&self) -> Result<String, String> {
        let a = self.double(GEOG_SEMI_MAJOR);
        let invf = self.double(GEOG_INV_FLATTENING).or_else(|| {
            let (a, b) = (a?, self.double(GEOG_SEMI_MINOR)?);
            Some(if a == b { 0.0 } else { a / (a - b) })
        });
        match self.short(GEOGRAPHIC_TYPE) {
            Some(code) if code != USER_DEFINED && code != 0 => {
                let base = epsg(code)?.wkt;
                if !base.starts_with("GEOGCS[") {
                    return Err(format!("EPSG:{code} is not a geographic CRS"));
                }
                Ok(match (a, invf) {
                    (Some(a), Some(invf)) => replace_spheroid(&base, a, invf),
                    _ => base,
                })
            }
            _ => {
                let (Some(a), Some(invf)) = (a, invf) else {
                    return Err("a user-defined geographic CRS without ellipsoid axes".into());
                };
                if self.short(GEOG_ANGULAR_UNITS).is_some_and(|u| u != 9102) {
                    return Err("a geographic CRS in angular units other than degrees".into());
                }
                let name = self.ascii(GEOG_CITATION).unwrap_or("unknown");
                Ok(format!(
                    "GEOGCS[\"{name}\",DATUM[\"unknown\",SPHEROID[\"unnamed\",{},{}]],\
                     PRIMEM[\"Greenwich\",0],UNIT[\"degree\",0.0174532925199433,\
                     AUTHORITY[\"EPSG\",\"9122\"]]]",
                    num(a),
                    num(invf)
                ))
            }
        }
    }

    fn first(&self, keys: &[u16]) -> f64 {
        keys.iter().find_map(|k| self.double(*k)).unwrap_or(0.0)
    }

    /// A user-defined projected CRS, composed from its projection keys.
    fn user_projected(&self) -> Result<Crs, String> {
        let geogcs = self.geogcs()?;
        let method = self
            .short(PROJ_COORD_TRANS)
            .ok_or("a user-defined projected CRS without ProjCoordTransGeoKey")?;
        let lat0 = self.first(&[NAT_ORIGIN_LAT, FALSE_ORIGIN_LAT, CENTER_LAT]);
        let lon0 = self.first(&[NAT_ORIGIN_LONG, FALSE_ORIGIN_LONG, CENTER_LONG]);
        let fe = self.first(&[FALSE_EASTING, FALSE_ORIGIN_EASTING, CENTER_EASTING]);
        let fn_ = self.first(&[FALSE_NORTHING, FALSE_ORIGIN_NORTHING, CENTER_NORTHING]);
        let k = self
            .double(SCALE_AT_NAT_ORIGIN)
            .or_else(|| self.double(SCALE_AT_CENTER))
            .unwrap_or(1.0);
        let sp1 = self.first(&[STD_PARALLEL1]);
        let sp2 = self.first(&[STD_PARALLEL2]);
        let (name, params): (&str, Vec<(&str, f64)>) = match method {
            1 => (
                "Transverse_Mercator",
                vec![
                    ("latitude_of_origin", lat0),
                    ("central_meridian", lon0),
                    ("scale_factor", k),
                ],
            ),
            7 if self.double(STD_PARALLEL1).is_some() => (
                "Mercator_2SP",
                vec![("standard_parallel_1", sp1), ("central_meridian", lon0)],
            ),
            7 => (
                "Mercator_1SP",
                vec![
                    ("latitude_of_origin", lat0),
                    ("central_meridian", lon0),
                    ("scale_factor", k),
                ],
            ),
            8 => (
                "Lambert_Conformal_Conic_2SP",
                vec![
                    ("standard_parallel_1", sp1),
                    ("standard_parallel_2", sp2),
                    (
                        "latitude_of_origin",
                        self.first(&[FALSE_ORIGIN_LAT, NAT_ORIGIN_LAT, CENTER_LAT]),
                    ),
                    (
                        "central_meridian",
                        self.first(&[FALSE_ORIGIN_LONG, NAT_ORIGIN_LONG, CENTER_LONG]),
                    ),
                ],
            ),
            9 => (
                "Lambert_Conformal_Conic_1SP",
                vec![
                    ("latitude_of_origin", lat0),
                    ("central_meridian", lon0),
                    ("scale_factor", k),
                ],
            ),
            10 => (
                "Lambert_Azimuthal_Equal_Area",
                vec![
                    (
                        "latitude_of_center",
                        self.first(&[CENTER_LAT, NAT_ORIGIN_LAT]),
                    ),
                    (
                        "longitude_of_center",
                        self.first(&[CENTER_LONG, NAT_ORIGIN_LONG]),
                    ),
                ],
            ),
            11 => (
                "Albers_Conic_Equal_Area",
                vec![
                    ("latitude_of_center", lat0),
                    ("longitude_of_center", lon0),
                    ("standard_parallel_1", sp1),
                    ("standard_parallel_2", sp2),
                ],
            ),
            15 => (
                "Polar_Stereographic",
                vec![
                    ("latitude_of_origin", lat0),
                    (
                        "central_meridian",
                        self.first(&[STRAIGHT_VERT_POLE_LONG, NAT_ORIGIN_LONG]),
                    ),
                    ("scale_factor", k),
                ],
            ),
            17 => (
                "Equirectangular",
                vec![
                    (
                        "latitude_of_origin",
                        self.first(&[CENTER_LAT, NAT_ORIGIN_LAT]),
                    ),
                    (
                        "central_meridian",
                        self.first(&[CENTER_LONG, NAT_ORIGIN_LONG]),
                    ),
                    ("standard_parallel_1", sp1),
                ],
            ),
            24 => (
                "Sinusoidal",
                vec![(
                    "longitude_of_center",
                    self.first(&[CENTER_LONG, NAT_ORIGIN_LONG, FALSE_ORIGIN_LONG]),
                )],
            ),
            other => {
                return Err(format!(
                    "projection method {other} (ProjCoordTransGeoKey) is not read"
                ))
            }
        };
        let unit = self.linear_unit()?;
        let name_of = self
            .ascii(PCS_CITATION)
            .or_else(|| self.ascii(GT_CITATION))
            .unwrap_or("unnamed");
        let mut wkt = format!(
            "PROJCS[\"{}\",{geogcs},PROJECTION[\"{name}\"]",
            name_of.replace('"', "")
        );
        for (p, v) in params {
            wkt.push_str(&format!(",PARAMETER[\"{p}\",{}]", num(v)));
        }
        wkt.push_str(&format!(
            ",PARAMETER[\"false_easting\",{}],PARAMETER[\"false_northing\",{}],{unit},\
             AXIS[\"Easting\",EAST],AXIS[\"Northing\",NORTH]]",
            num(fe),
            num(fn_)
        ));
        Ok(Crs { wkt, epsg: None })
    }

    /// The WKT `UNIT` of a user-defined projected CRS's linear unit.
    fn linear_unit(&self) -> Result<String, String> {
        Ok(
            match (
                self.short(PROJ_LINEAR_UNITS),
                self.double(PROJ_LINEAR_UNIT_SIZE),
            ) {
                (Some(9001) | None, _) => {
                    "UNIT[\"metre\",1,AUTHORITY[\"EPSG\",\"9001\"]]".to_string()
                }
                (Some(9002), _) => "UNIT[\"foot\",0.3048,AUTHORITY[\"EPSG\",\"9002\"]]".to_string(),
                (Some(9003), _) => {
                    "UNIT[\"US survey foot\",0.304800609601219,AUTHORITY[\"EPSG\",\"9003\"]]"
                        .to_string()
                }
                (_, Some(size)) => format!("UNIT[\"unknown\",{}]", num(size)),
                (Some(u), None) => return Err(format!("linear unit {u} is not read")),
            },
        )
    }
}

/// The EPSG database's WKT of `code`.
fn epsg(code: u16) -> Result<Crs, String> {
    crs_definitions::from_code(code)
        .filter(|d| !d.wkt.is_empty())
        .map(|d| Crs {
            wkt: crate::geo::crs::epsg_wkt(d.wkt),
            epsg: Some(u32::from(code)),
        })
        .ok_or_else(|| format!("EPSG:{code} is not in the EPSG database cubeforge carries"))
}

/// `wkt` with its first SPHEROID's semi-major axis and inverse flattening replaced.
fn replace_spheroid(wkt: &str, a: f64, invf: f64) -> String {
    let Some(at) = wkt.find("SPHEROID[\"") else {
        return wkt.to_string();
    };
    let name_start = at + "SPHEROID[\"".len();
    let Some(name_len) = wkt[name_start..].find('"') else {
        return wkt.to_string();
    };
    let nums_start = name_start + name_len + 2; // past `",`
    let rest = &wkt[nums_start..];
    // The two numbers end at the next `,AUTHORITY` or `]`.
    let Some(first_comma) = rest.find(',') else {
        return wkt.to_string();
    };
    let after = &rest[first_comma + 1..];
    let end = after.find([',', ']']).unwrap_or(after.len());
    format!(
        "{}{},{}{}",
        &wkt[..nums_start],
        num(a),
        num(invf),
        &after[end..]
    )
}

/// A number as WKT writes it: shortest round-trip, integers without a fraction.
fn num(v: f64) -> String {
    if v == v.trunc() && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// The CF `grid_mapping_name` of a WKT 1 CRS, for the common projections.
pub(crate) fn grid_mapping_name(wkt: &str) -> Option<&'static str> {
    if wkt.starts_with("GEOGCS[") {
        return Some("latitude_longitude");
    }
    let at = wkt.find("PROJECTION[\"")? + "PROJECTION[\"".len();
    let name = &wkt[at..at + wkt[at..].find('"')?];
    Some(match name {
        "Transverse_Mercator" => "transverse_mercator",
        "Albers_Conic_Equal_Area" => "albers_conical_equal_area",
        "Lambert_Conformal_Conic_1SP" | "Lambert_Conformal_Conic_2SP" => "lambert_conformal_conic",
        "Lambert_Azimuthal_Equal_Area" => "lambert_azimuthal_equal_area",
        "Polar_Stereographic" => "polar_stereographic",
        "Mercator_1SP" | "Mercator_2SP" | "Popular_Visualisation_Pseudo_Mercator" => "mercator",
        "Equirectangular" => "latitude_longitude",
        _ => return None,
    })
}

/// The datum name PROJ gives a WKT 1 datum name (GDAL's WKT 1 writes PROJ's names with `_` for
/// spaces, and `WGS_1984` / `WGS_1972` for the World Geodetic Systems).
fn datum_name(wkt1: &str) -> String {
    match wkt1 {
        "WGS_1984" => "World Geodetic System 1984".into(),
        "WGS_1972" => "World Geodetic System 1972".into(),
        other => other.replace('_', " "),
    }
}

/// The CF grid-mapping attributes `pyproj.CRS.to_cf()` gives a WKT 1 CRS (as rioxarray writes
/// them on `spatial_ref`), as far as the WKT says them: the ellipsoid, prime meridian, datum and
/// CRS names, `grid_mapping_name`, and the parameters of transverse Mercator, Albers, Lambert
/// conformal (2SP), Lambert azimuthal, polar stereographic and Mercator (1SP) projections
/// (others CF names get names and ellipsoid only; those CF has no grid mapping of, nothing).
pub(crate) fn cf_attrs(wkt: &str) -> serde_json::Map<String, serde_json::Value> {
    use serde_json::{json, Map};
    let mut out = Map::new();
    let Some(root) = Wkt::parse(wkt) else {
        return out;
    };
    let Wkt::Node(kind, _) = &root else {
        return out;
    };
    let method = root
        .child(&["PROJECTION"])
        .and_then(|p| p.text(0))
        .unwrap_or("");
    // pyproj gives nothing but `crs_wkt` for a method CF has no grid mapping of: Pseudo-Mercator
    // (a Mercator_1SP with a PROJ4 extension in WKT 1), equirectangular, and any this does not
    // know.
    let pseudo = root
        .child(&["EXTENSION"])
        .and_then(|e| e.text(1))
        .is_some_and(|p| p.contains("+proj=merc") && p.contains("+nadgrids=@null"));
    if kind == "PROJCS"
        && (pseudo || grid_mapping_name(wkt).is_none() || method == "Equirectangular")
    {
        return out;
    }
    let geog = match kind.as_str() {
        "GEOGCS" => &root,
        "PROJCS" => match root.child(&["GEOGCS"]) {
            Some(g) => g,
            None => return out,
        },
        _ => return out,
    };
    let datum = geog.child(&["DATUM"]);
    ellipsoid_attrs(geog, &mut out);
    if let Some(n) = geog.text(0) {
        out.insert("geographic_crs_name".into(), json!(n));
    }
    if let Some(n) = datum.and_then(|d| d.text(0)) {
        out.insert("horizontal_datum_name".into(), json!(datum_name(n)));
    }
    if kind == "PROJCS" {
        if let Some(n) = root.text(0) {
            out.insert("projected_crs_name".into(), json!(n));
        }
    }
    if let Some(g) = grid_mapping_name(wkt) {
        out.insert("grid_mapping_name".into(), json!(g));
    }
    if kind != "PROJCS" {
        return out;
    }
    for (k, v) in projection_params(&root, method) {
        if !v.is_null() {
            out.insert(k.into(), v);
        }
    }
    out
}

/// The ellipsoid and prime meridian attributes of the `GEOGCS` node `geog`.
fn ellipsoid_attrs(geog: &Wkt, out: &mut serde_json::Map<String, serde_json::Value>) {
    use serde_json::json;
    let datum = geog.child(&["DATUM"]);
    if let Some(sph) = datum.and_then(|d| d.child(&["SPHEROID"])) {
        if let (Some(a), Some(invf)) = (sph.number(1), sph.number(2)) {
            let b = if invf == 0.0 {
                a
            } else {
                a * (1.0 - 1.0 / invf)
            };
            out.insert("semi_major_axis".into(), json!(a));
            out.insert("semi_minor_axis".into(), json!(b));
            out.insert("inverse_flattening".into(), json!(invf));
        }
        if let Some(n) = sph.text(0) {
            out.insert("reference_ellipsoid_name".into(), json!(n));
        }
    }
    if let Some(pm) = geog.child(&["PRIMEM"]) {
        if let Some(l) = pm.number(1) {
            out.insert("longitude_of_prime_meridian".into(), json!(l));
        }
        if let Some(n) = pm.text(0) {
            out.insert("prime_meridian_name".into(), json!(n));
        }
    }
}

/// The CF parameters of the projection `method` of the WKT 1 `root` (a `PROJCS`), each `null`
/// where the WKT lacks it; none for a method this does not know.
fn projection_params(root: &Wkt, method: &str) -> Vec<(&'static str, serde_json::Value)> {
    use serde_json::{json, Value};
    let param = |name: &str| {
        root.children("PARAMETER")
            .find(|p| p.text(0).is_some_and(|n| n.eq_ignore_ascii_case(name)))
            .and_then(|p| p.number(1))
    };
    let p = |n: &str| param(n).map_or(Value::Null, |v| json!(v));
    match method {
        "Transverse_Mercator" => vec![
            ("latitude_of_projection_origin", p("latitude_of_origin")),
            ("longitude_of_central_meridian", p("central_meridian")),
            ("false_easting", p("false_easting")),
            ("false_northing", p("false_northing")),
            ("scale_factor_at_central_meridian", p("scale_factor")),
        ],
        "Albers_Conic_Equal_Area" => vec![
            (
                "standard_parallel",
                match (param("standard_parallel_1"), param("standard_parallel_2")) {
                    (Some(a), Some(b)) => json!([a, b]),
                    _ => Value::Null,
                },
            ),
            ("latitude_of_projection_origin", p("latitude_of_center")),
            ("longitude_of_central_meridian", p("longitude_of_center")),
            ("false_easting", p("false_easting")),
            ("false_northing", p("false_northing")),
        ],
        "Lambert_Conformal_Conic_2SP" => vec![
            (
                "standard_parallel",
                match (param("standard_parallel_1"), param("standard_parallel_2")) {
                    (Some(a), Some(b)) => json!([a, b]),
                    _ => Value::Null,
                },
            ),
            ("latitude_of_projection_origin", p("latitude_of_origin")),
            ("longitude_of_central_meridian", p("central_meridian")),
            ("false_easting", p("false_easting")),
            ("false_northing", p("false_northing")),
        ],
        "Lambert_Azimuthal_Equal_Area" => vec![
            ("longitude_of_projection_origin", p("longitude_of_center")),
            ("latitude_of_projection_origin", p("latitude_of_center")),
            ("false_easting", p("false_easting")),
            ("false_northing", p("false_northing")),
        ],
        "Polar_Stereographic" => {
            let lat0 = param("latitude_of_origin");
            if lat0.is_some_and(|l| l.abs() == 90.0) {
                vec![
                    ("latitude_of_projection_origin", p("latitude_of_origin")),
                    (
                        "straight_vertical_longitude_from_pole",
                        p("central_meridian"),
                    ),
                    ("false_easting", p("false_easting")),
                    ("false_northing", p("false_northing")),
                    ("scale_factor_at_projection_origin", p("scale_factor")),
                ]
            } else {
                // Variant B: the latitude of origin is the standard parallel.
                vec![
                    ("standard_parallel", p("latitude_of_origin")),
                    (
                        "straight_vertical_longitude_from_pole",
                        p("central_meridian"),
                    ),
                    ("false_easting", p("false_easting")),
                    ("false_northing", p("false_northing")),
                ]
            }
        }
        "Mercator_1SP" => vec![
            // pyproj states the standard parallel a scale factor of 1 means (the equator);
            // another scale factor's parallel needs PROJ and is left out.
            (
                "standard_parallel",
                if param("scale_factor") == Some(1.0) {
                    json!(0.0)
                } else {
                    Value::Null
                },
            ),
            ("longitude_of_projection_origin", p("central_meridian")),
            ("false_easting", p("false_easting")),
            ("false_northing", p("false_northing")),
            ("scale_factor_at_projection_origin", p("scale_factor")),
        ],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cf_attrs_of_utm_and_albers() {
        let utm = epsg(32618).expect("utm").wkt;
        let cf = cf_attrs(&utm);
        assert_eq!(cf["semi_major_axis"], 6_378_137.0);
        assert_eq!(cf["inverse_flattening"], 298.257_223_563);
        assert_eq!(cf["reference_ellipsoid_name"], "WGS 84");
        assert_eq!(cf["horizontal_datum_name"], "World Geodetic System 1984");
        assert_eq!(cf["projected_crs_name"], "WGS 84 / UTM zone 18N");
        assert_eq!(cf["grid_mapping_name"], "transverse_mercator");
        assert_eq!(cf["longitude_of_central_meridian"], -75.0);
        assert_eq!(cf["scale_factor_at_central_meridian"], 0.9996);
        assert_eq!(cf["false_easting"], 500_000.0);
        let b = cf["semi_minor_axis"].as_f64().expect("b");
        assert!((b - 6_356_752.314_245_179).abs() < 1e-6, "{b}");
        let albers = cf_attrs(&epsg(3577).expect("albers").wkt);
        assert_eq!(
            albers["standard_parallel"],
            serde_json::json!([-18.0, -36.0])
        );
        assert_eq!(albers["longitude_of_central_meridian"], 132.0);
        assert_eq!(
            albers["horizontal_datum_name"],
            "Geocentric Datum of Australia 1994"
        );
        assert!(cf_attrs("not wkt [").is_empty());
        assert!(cf_attrs(&epsg(3857).expect("pseudo").wkt).is_empty());
        let ups = cf_attrs(&epsg(32761).expect("ups").wkt);
        assert_eq!(ups["latitude_of_projection_origin"], -90.0);
        assert_eq!(ups["scale_factor_at_projection_origin"], 0.994);
    }

    #[test]
    fn a_spheroid_is_replaced_keeping_names_and_authority() {
        let base = epsg(4326).expect("4326").wkt;
        let got = replace_spheroid(&base, 6_378_140.0, 298.257);
        assert!(
            got.contains("SPHEROID[\"WGS 84\",6378140,298.257,AUTHORITY[\"EPSG\",\"7030\"]]"),
            "{got}"
        );
        assert!(got.ends_with("AUTHORITY[\"EPSG\",\"4326\"]]"), "{got}");
    }

    #[test]
    fn towgs84_clauses_are_dropped() {
        let wkt = epsg(3577).expect("3577").wkt;
        assert!(!wkt.contains("TOWGS84"), "{wkt}");
        assert!(
            wkt.contains("DATUM[\"Geocentric_Datum_of_Australia_1994\",SPHEROID["),
            "{wkt}"
        );
        assert!(wkt.ends_with("AUTHORITY[\"EPSG\",\"3577\"]]"), "{wkt}");
    }

    #[test]
    fn keys_point_into_the_double_and_ascii_tables() {
        let dir = [
            1, 1, 0, 3, 1024, 0, 1, 1, 2057, 34736, 1, 1, 1026, 34737, 5, 0,
        ];
        let keys = GeoKeys::parse(&dir, &[0.0, 6_378_137.0], "name|");
        assert_eq!(keys.short(MODEL_TYPE), Some(1));
        assert_eq!(keys.double(GEOG_SEMI_MAJOR), Some(6_378_137.0));
        assert_eq!(keys.ascii(GT_CITATION), Some("name"));
        // Entries pointing outside the tables are skipped, not a panic.
        let bad = GeoKeys::parse(&[1, 1, 0, 2, 2057, 34736, 4, 9], &[], "");
        assert!(bad.is_empty());
    }
}
