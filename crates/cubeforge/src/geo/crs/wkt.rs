//! Reading WKT (1, GDAL's and ESRI's flavours, and 2): the node tree, the EPSG code a CRS names,
//! and the PROJ string of a CRS that names none, method by method.
//!
//! The tree parser is `formats::geotiff::geokeys::Wkt`'s, with `number` also reading a quoted
//! number (WKT 1 writes `AUTHORITY["EPSG","4326"]`, WKT 2 `ID["EPSG",4326]`).

use super::{fmt_num, ProjParams};

/// A WKT node: its keyword and items (quoted texts, numbers, nodes).
#[derive(Debug)]
pub(crate) enum Wkt {
    Text(String),
    Number(f64),
    Node(String, Vec<Wkt>),
}

impl Wkt {
    /// Parse `s` (one node) into a tree; `None` when it is not WKT.
    pub(crate) fn parse(s: &str) -> Option<Wkt> {
        fn node(s: &[u8], at: &mut usize, depth: usize) -> Option<Wkt> {
            if depth > 64 {
                return None;
            }
            let skip = |at: &mut usize| {
                while *at < s.len() && (s[*at] as char).is_whitespace() {
                    *at += 1;
                }
            };
            skip(at);
            if *at < s.len() && s[*at] == b'"' {
                // WKT doubles a quote inside a text.
                let mut text = Vec::new();
                let mut i = *at + 1;
                loop {
                    match s.get(i) {
                        None => return None,
                        Some(b'"') if s.get(i + 1) == Some(&b'"') => {
                            text.push(b'"');
                            i += 2;
                        }
                        Some(b'"') => break,
                        Some(c) => {
                            text.push(*c);
                            i += 1;
                        }
                    }
                }
                *at = i + 1;
                return Some(Wkt::Text(String::from_utf8_lossy(&text).into_owned()));
            }
            let start = *at;
            while *at < s.len() && !matches!(s[*at], b'[' | b']' | b',' | b'(' | b')') {
                *at += 1;
            }
            let word = std::str::from_utf8(&s[start..*at]).ok()?.trim().to_string();
            skip(at);
            if *at < s.len() && matches!(s[*at], b'[' | b'(') {
                *at += 1;
                let mut items = Vec::new();
                loop {
                    items.push(node(s, at, depth + 1)?);
                    skip(at);
                    match s.get(*at) {
                        Some(b',') => *at += 1,
                        Some(b']' | b')') => {
                            *at += 1;
                            break;
                        }
                        _ => return None,
                    }
                }
                return Some(Wkt::Node(word.to_ascii_uppercase(), items));
            }
            if word.is_empty() {
                return None;
            }
            word.parse().ok().map(Wkt::Number).or(Some(Wkt::Text(word)))
        }
        let mut at = 0;
        let tree = node(s.as_bytes(), &mut at, 0)?;
        // Only trailing blanks may follow the root node.
        (s[at..].trim().is_empty() && matches!(tree, Wkt::Node(..))).then_some(tree)
    }

    pub(crate) fn keyword(&self) -> &str {
        match self {
            Wkt::Node(k, _) => k,
            _ => "",
        }
    }

    fn items(&self) -> &[Wkt] {
        match self {
            Wkt::Node(_, items) => items,
            _ => &[],
        }
    }

    /// The first child node with one of `keys`.
    pub(crate) fn child(&self, keys: &[&str]) -> Option<&Wkt> {
        self.items()
            .iter()
            .find(|i| matches!(i, Wkt::Node(k, _) if keys.contains(&k.as_str())))
    }

    pub(crate) fn children<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a Wkt> + 'a {
        self.items()
            .iter()
            .filter(move |i| matches!(i, Wkt::Node(k, _) if k == key))
    }

    pub(crate) fn text(&self, i: usize) -> Option<&str> {
        match self.items().get(i) {
            Some(Wkt::Text(t)) => Some(t),
            _ => None,
        }
    }

    /// Item `i` as a number, also when quoted.
    pub(crate) fn number(&self, i: usize) -> Option<f64> {
        match self.items().get(i) {
            Some(Wkt::Number(n)) => Some(*n),
            Some(Wkt::Text(t)) => t.trim().parse().ok(),
            _ => None,
        }
    }

    /// The EPSG code of this node's own `AUTHORITY["EPSG",n]` (WKT 1) or `ID["EPSG",n]` (WKT 2).
    pub(crate) fn epsg(&self) -> Option<u32> {
        self.children("AUTHORITY")
            .chain(self.children("ID"))
            .find(|a| a.text(0).is_some_and(|t| t.eq_ignore_ascii_case("EPSG")))
            .and_then(|a| a.number(1))
            .filter(|n| *n >= 1.0 && *n <= u32::MAX as f64 && n.fract() == 0.0)
            .map(|n| n as u32)
    }
}

/// `name` lower-cased with everything but letters and digits dropped, to compare WKT names of
/// any flavour (`Transverse_Mercator`, `Transverse Mercator`).
pub(crate) fn squash(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// A unit node's factor (`UNIT["metre",1]`, `LENGTHUNIT["metre",1]`, `ANGLEUNIT["degree",…]`).
fn unit_factor(node: Option<&Wkt>) -> Option<f64> {
    node.and_then(|u| u.number(1)).filter(|f| *f > 0.0)
}

const DEGREE: f64 = std::f64::consts::PI / 180.0;

/// Datum names PROJ transforms to WGS 84 with a null (ballpark-free) transformation: these take
/// `+towgs84=0,0,0` when the WKT gives no shift.
const WGS84_LIKE: &[&str] = &[
    "wgs1984",
    "worldgeodeticsystem1984",
    "worldgeodeticsystem1984ensemble",
    "geocentricdatumofaustralia1994",
    "gda94",
    "geocentricdatumofaustralia2020",
    "gda2020",
    "europeanterrestrialreferencesystem1989",
    "europeanterrestrialreferencesystem1989ensemble",
    "etrs89",
    "northamericandatum1983",
    "nad83",
    "newzealandgeodeticdatum2000",
    "nzgd2000",
    "sistemadereferenciageocentricoparaasamericas2000",
    "sirgas2000",
];

/// The PROJ parameters of a WKT CRS without a usable EPSG code: `Err` names what is missing or
/// not supported.
pub(crate) fn to_proj(root: &Wkt) -> Result<ProjParams, String> {
    let kind = root.keyword();
    let (geog, proj) = match kind {
        "GEOGCS" | "GEOGCRS" | "GEODCRS" | "GEOGRAPHICCRS" | "GEODETICCRS" => (root, None),
        "PROJCS" | "PROJCRS" | "PROJECTEDCRS" => (
            root.child(&["GEOGCS", "BASEGEOGCRS", "BASEGEODCRS", "GEOGCRS", "GEODCRS"])
                .ok_or("a projected CRS without its geographic CRS")?,
            Some(root),
        ),
        "BOUNDCRS" => return bound_to_proj(root),
        "" => return Err("not WKT".into()),
        other => return Err(format!("{other} CRSs are not supported")),
    };
    let cartesian = root
        .child(&["CS"])
        .and_then(|c| c.text(0))
        .is_some_and(|t| t.eq_ignore_ascii_case("cartesian"));
    if (kind == "GEODCRS" || kind == "GEODETICCRS") && cartesian {
        return Err("geocentric CRSs are not supported".into());
    }
    let mut p = ProjParams::default();
    match proj {
        None => p.push("proj", Some("longlat".into())),
        Some(root) => projection(root, &mut p)?,
    }
    geographic(geog, &mut p)?;
    if p.get_entry("pseudo").is_some() {
        // Web Mercator: spherical formulas on WGS 84 coordinates taken as they are.
        for key in [
            "pseudo", "datum", "ellps", "a", "b", "rf", "R", "towgs84", "nadgrids",
        ] {
            p.remove(key);
        }
        p.push("a", Some("6378137".into()));
        p.push("b", Some("6378137".into()));
        p.push("nadgrids", Some("@null".into()));
    }
    if proj.is_none() {
        // Angles in anything but degrees are refused: the projector speaks degrees.
        let unit = unit_factor(geog.child(&["UNIT", "ANGLEUNIT"])).or_else(|| {
            geog.children("AXIS")
                .next()
                .and_then(|a| unit_factor(a.child(&["ANGLEUNIT", "UNIT"])))
        });
        if let Some(f) = unit {
            if (f / DEGREE - 1.0).abs() > 1e-9 {
                return Err(format!(
                    "a geographic CRS in angular units of {f} rad (not degrees)"
                ));
            }
        }
    }
    p.push("no_defs", None);
    Ok(p)
}

/// WKT 2 `BOUNDCRS`: the source CRS, with the Helmert parameters of its transformation to WGS 84
/// as `+towgs84`.
fn bound_to_proj(root: &Wkt) -> Result<ProjParams, String> {
    let source = root
        .child(&["SOURCECRS"])
        .and_then(|s| s.items().iter().find(|i| matches!(i, Wkt::Node(..))))
        .ok_or("a BOUNDCRS without SOURCECRS")?;
    let mut p = to_proj(source)?;
    let Some(t) = root.child(&["ABRIDGEDTRANSFORMATION"]) else {
        return Ok(p);
    };
    let method = t
        .child(&["METHOD"])
        .and_then(|m| m.text(0))
        .map(squash)
        .unwrap_or_default();
    // Translations in metres, rotations in arc-seconds, scale in ppm (PROJ writes the scale
    // difference as a factor in "unity", or in "parts per million").
    let param = |names: &[&str]| {
        t.children("PARAMETER").find(|q| {
            q.text(0)
                .is_some_and(|n| names.contains(&squash(n).as_str()))
        })
    };
    let value = |names: &[&str]| {
        param(names).map_or(0.0, |q| {
            let v = q.number(1).unwrap_or(0.0);
            match unit_factor(q.child(&["ANGLEUNIT"])) {
                Some(f) => {
                    let arcsec = DEGREE / 3600.0;
                    if (f / arcsec - 1.0).abs() < 1e-9 {
                        v
                    } else {
                        v * f / arcsec
                    }
                }
                None => v * unit_factor(q.child(&["LENGTHUNIT"])).unwrap_or(1.0),
            }
        })
    };
    let scale_ppm = param(&["scaledifference"]).map_or(0.0, |q| {
        let v = q.number(1).unwrap_or(0.0);
        match unit_factor(q.child(&["SCALEUNIT"])) {
            Some(1.0) => (v - 1.0) * 1e6,
            Some(f) => v * f * 1e6,
            // PROJ writes a unitless factor (1 for none); a value near 0 reads as ppm.
            None if (v - 1.0).abs() < 1e-3 => (v - 1.0) * 1e6,
            None => v,
        }
    });
    let three = [
        value(&["xaxistranslation"]),
        value(&["yaxistranslation"]),
        value(&["zaxistranslation"]),
    ];
    let towgs84: Vec<f64> = if method.starts_with("geocentrictranslations") {
        three.to_vec()
    } else if method.starts_with("positionvector") || method.starts_with("coordinateframe") {
        let sign = if method.starts_with("coordinateframe") {
            -1.0
        } else {
            1.0
        };
        let mut v = three.to_vec();
        v.extend([
            sign * value(&["xaxisrotation"]),
            sign * value(&["yaxisrotation"]),
            sign * value(&["zaxisrotation"]),
            scale_ppm,
        ]);
        v
    } else {
        return Err(format!(
            "the BOUNDCRS transformation method {method} is not supported"
        ));
    };
    p.remove("datum");
    p.remove("towgs84");
    p.remove("nadgrids");
    let text = towgs84
        .iter()
        .map(|v| fmt_num(*v))
        .collect::<Vec<_>>()
        .join(",");
    p.insert_before("no_defs", "towgs84", Some(text));
    Ok(p)
}

/// The ellipsoid, datum shift and prime meridian of the geographic CRS node `geog`.
fn geographic(geog: &Wkt, p: &mut ProjParams) -> Result<(), String> {
    // A geographic CRS with an EPSG code takes that code's datum.
    if let Some(code) = geog.epsg() {
        if let Some(def) = u16::try_from(code)
            .ok()
            .and_then(crs_definitions::from_code)
        {
            let base = ProjParams::parse(def.proj4)?;
            if base.get("proj") == Some("longlat") {
                for key in [
                    "datum", "ellps", "a", "b", "rf", "f", "R", "towgs84", "nadgrids", "pm",
                ] {
                    if let Some(v) = base.get_entry(key) {
                        p.push(key, v.clone());
                    }
                }
                return Ok(());
            }
        }
    }
    let datum = geog
        .child(&["DATUM", "ENSEMBLE"])
        .ok_or("a geographic CRS without DATUM")?;
    let sph = datum
        .child(&["SPHEROID", "ELLIPSOID"])
        .or_else(|| geog.child(&["SPHEROID", "ELLIPSOID"]))
        .ok_or("a datum without SPHEROID")?;
    let (Some(mut a), Some(invf)) = (sph.number(1), sph.number(2)) else {
        return Err("a SPHEROID without its axis and inverse flattening".into());
    };
    if let Some(f) = unit_factor(sph.child(&["LENGTHUNIT", "UNIT"])) {
        a *= f;
    }
    let name = squash(datum.text(0).unwrap_or(""));
    let towgs84 = datum.child(&["TOWGS84"]).map(|t| {
        (0..7)
            .map_while(|i| t.number(i))
            .map(fmt_num)
            .collect::<Vec<_>>()
    });
    let null_grid = name.contains("nadgridsnull")
        || datum
            .child(&["EXTENSION"])
            .is_some_and(|e| e.text(1).is_some_and(|g| g.trim() == "@null"));
    let wgs84_axes = a == 6378137.0 && (invf - 298.257223563).abs() < 1e-9;
    let wgs84_name =
        name == "wgs1984" || name == "dwgs1984" || name.starts_with("worldgeodeticsystem1984");
    if wgs84_name && wgs84_axes {
        p.push("datum", Some("WGS84".into()));
        return prime_meridian(geog, p);
    }
    if invf == 0.0 {
        p.push("R", Some(fmt_num(a)));
    } else {
        p.push("a", Some(fmt_num(a)));
        p.push("rf", Some(fmt_num(invf)));
    }
    if null_grid {
        p.push("nadgrids", Some("@null".into()));
    } else if let Some(t) = towgs84.filter(|t| t.len() == 3 || t.len() == 7) {
        p.push("towgs84", Some(t.join(",")));
    } else if WGS84_LIKE.contains(&name.as_str()) {
        p.push("towgs84", Some("0,0,0,0,0,0,0".into()));
    } else if let Some(code) = datum.epsg() {
        // A datum code: the towgs84 of a geographic CRS on it, where crs-definitions has one.
        if let Some(t) = towgs84_of_datum(code) {
            p.push("towgs84", Some(t));
        }
    }
    prime_meridian(geog, p)
}

/// The `+towgs84` crs-definitions gives the geographic CRSs whose WKT names datum `code`.
fn towgs84_of_datum(code: u32) -> Option<String> {
    let needle = format!("AUTHORITY[\"EPSG\",\"{code}\"]],PRIMEM");
    (4000u16..5000).find_map(|c| {
        let d = crs_definitions::from_code(c)?;
        if !d.wkt.starts_with("GEOGCS[") || !d.wkt.contains(&needle) {
            return None;
        }
        ProjParams::parse(d.proj4)
            .ok()?
            .get("towgs84")
            .map(str::to_string)
    })
}

fn prime_meridian(geog: &Wkt, p: &mut ProjParams) -> Result<(), String> {
    if let Some(pm) = geog.child(&["PRIMEM"]) {
        let lon = pm.number(1).unwrap_or(0.0);
        if lon != 0.0 {
            // WKT 1 gives it in the GEOGCS's unit, WKT 2 in its own (degrees by default).
            let f = unit_factor(pm.child(&["ANGLEUNIT"]))
                .or_else(|| unit_factor(geog.child(&["UNIT"])))
                .unwrap_or(DEGREE);
            p.push("pm", Some(fmt_num(lon * f / DEGREE)));
        }
    }
    Ok(())
}

/// A projection's parameters by role, from the WKT's `PARAMETER`s under any of their names.
struct Named {
    lat_0: Option<f64>,
    lon_0: Option<f64>,
    k: Option<f64>,
    x_0: Option<f64>,
    y_0: Option<f64>,
    lat_1: Option<f64>,
    lat_2: Option<f64>,
    lat_ts: Option<f64>,
}

/// The `PARAMETER`s of `conv` by role: angles in degrees, lengths in metres (`linear` metres
/// per unit for WKT 1's false easting and northing).
fn named_params(conv: &Wkt, wkt2: bool, linear: f64) -> Named {
    // Parameters by squashed name.
    let params: Vec<(String, f64)> = conv
        .children("PARAMETER")
        .filter_map(|q| {
            let name = squash(q.text(0)?);
            let v = q.number(1)?;
            let v = if let Some(f) = unit_factor(q.child(&["ANGLEUNIT"])) {
                if (f / DEGREE - 1.0).abs() < 1e-12 {
                    v
                } else {
                    v * f / DEGREE
                }
            } else if let Some(f) = unit_factor(q.child(&["LENGTHUNIT"])) {
                v * f
            } else if q.child(&["SCALEUNIT"]).is_some() {
                v
            } else if !wkt2 && (name.contains("easting") || name.contains("northing")) {
                v * linear
            } else {
                v
            };
            Some((name, v))
        })
        .collect();
    let get = |names: &[&str]| {
        params
            .iter()
            .find(|(n, _)| names.contains(&n.as_str()))
            .map(|(_, v)| *v)
    };
    let lat_0 = get(&[
        "latitudeoforigin",
        "latitudeofcenter",
        "latitudeofnaturalorigin",
        "latitudeoffalseorigin",
        "latitudeofprojectioncentre",
        "latitudeofprojectioncenter",
    ]);
    let lon_0 = get(&[
        "centralmeridian",
        "longitudeofcenter",
        "longitudeofnaturalorigin",
        "longitudeoffalseorigin",
        "longitudeoforigin",
        "longitudeofprojectioncentre",
        "longitudeofprojectioncenter",
        "straightverticallongitudefrompole",
    ]);
    let k = get(&[
        "scalefactor",
        "scalefactoratnaturalorigin",
        "scalefactoratprojectioncentre",
    ]);
    let x_0 = get(&[
        "falseeasting",
        "eastingatfalseorigin",
        "eastingatprojectioncentre",
    ]);
    let y_0 = get(&[
        "falsenorthing",
        "northingatfalseorigin",
        "northingatprojectioncentre",
    ]);
    let lat_1 = get(&["standardparallel1", "latitudeof1ststandardparallel"]);
    let lat_2 = get(&["standardparallel2", "latitudeof2ndstandardparallel"]);
    let lat_ts = get(&["latitudeofstandardparallel", "standardparallel1"]);
    Named {
        lat_0,
        lon_0,
        k,
        x_0,
        y_0,
        lat_1,
        lat_2,
        lat_ts,
    }
}

/// `+proj=stere` from a polar stereographic method (GDAL's, EPSG's variants A and B, ESRI's
/// north/south pole ones): a pole and a scale, or a standard parallel.
fn polar_stereographic(
    p: &mut ProjParams,
    method: &str,
    lat_0: Option<f64>,
    esri_ts: Option<f64>,
    lat_ts: Option<f64>,
    k: Option<f64>,
) {
    p.push("proj", Some("stere".to_string()));
    let ts = if method.starts_with("stereographic") {
        esri_ts
    } else {
        lat_ts
    };
    match (method, lat_0, ts) {
        ("polarstereographicvariantb", _, Some(ts)) | (_, None, Some(ts)) => {
            put(p, "lat_0", Some(90f64.copysign(ts)));
            put(p, "lat_ts", Some(ts));
        }
        (_, Some(l), _) if l.abs() == 90.0 => {
            put(p, "lat_0", Some(l));
            put(p, "k", k);
        }
        (_, Some(l), _) => {
            // GDAL's WKT 1: a latitude of origin other than a pole is the standard parallel.
            put(p, "lat_0", Some(90f64.copysign(l)));
            put(p, "lat_ts", Some(l));
        }
        (m, None, None) => {
            let south = m == "stereographicsouthpole";
            put(p, "lat_0", Some(if south { -90.0 } else { 90.0 }));
            put(p, "k", k);
        }
    }
}

/// `+proj` and its parameters, and the linear unit, of the projected CRS `root`.
fn projection(root: &Wkt, p: &mut ProjParams) -> Result<(), String> {
    let wkt2 = root.keyword() != "PROJCS";
    let conv = if wkt2 {
        root.child(&["CONVERSION"])
            .ok_or("a PROJCRS without CONVERSION")?
    } else {
        root
    };
    let method_node = if wkt2 {
        conv.child(&["METHOD", "PROJECTION"])
    } else {
        conv.child(&["PROJECTION"])
    };
    let method_name = method_node
        .and_then(|m| m.text(0))
        .ok_or("a projected CRS without its projection method")?;
    let method = squash(method_name);
    // The linear unit: WKT 1's UNIT of the PROJCS; WKT 2's LENGTHUNIT of the CRS or of its axes.
    let linear = if wkt2 {
        unit_factor(root.child(&["LENGTHUNIT", "UNIT"])).or_else(|| {
            root.children("AXIS")
                .next()
                .and_then(|a| unit_factor(a.child(&["LENGTHUNIT", "UNIT"])))
        })
    } else {
        unit_factor(root.child(&["UNIT"]))
    }
    .unwrap_or(1.0);
    let Named {
        lat_0,
        lon_0,
        k,
        x_0,
        y_0,
        lat_1,
        lat_2,
        lat_ts,
    } = named_params(conv, wkt2, linear);
    let proj = |name: &str| Some(name.to_string());
    match method.as_str() {
        "transversemercator" | "gausskruger" => {
            p.push("proj", proj("tmerc"));
            put(p, "lat_0", lat_0);
            put(p, "lon_0", lon_0);
            put(p, "k", k);
        }
        "albersconicequalarea" | "albersequalarea" | "albers" => {
            p.push("proj", proj("aea"));
            put(p, "lat_0", lat_0);
            put(p, "lon_0", lon_0);
            put(p, "lat_1", lat_1);
            put(p, "lat_2", lat_2);
        }
        "lambertconformalconic2sp" | "lambertconicconformal2sp" | "lambertconformalconic"
            if lat_1.is_some() =>
        {
            p.push("proj", proj("lcc"));
            put(p, "lat_0", lat_0);
            put(p, "lon_0", lon_0);
            put(p, "lat_1", lat_1);
            put(p, "lat_2", lat_2.or(lat_1));
            if method == "lambertconformalconic" {
                put(p, "k_0", k);
            }
        }
        "lambertconformalconic1sp" | "lambertconicconformal1sp" | "lambertconformalconic" => {
            p.push("proj", proj("lcc"));
            put(p, "lat_1", lat_0);
            put(p, "lat_0", lat_0);
            put(p, "lon_0", lon_0);
            put(p, "k_0", k);
        }
        "polarstereographic"
        | "polarstereographicvarianta"
        | "polarstereographicvariantb"
        | "stereographicnorthpole"
        | "stereographicsouthpole" => {
            polar_stereographic(p, &method, lat_0, lat_1.or(lat_ts), lat_ts, k);
            put(p, "lon_0", lon_0);
        }
        "popularvisualisationpseudomercator" => {
            p.push("proj", proj("merc"));
            put(p, "lon_0", lon_0);
            put(p, "x_0", x_0);
            put(p, "y_0", y_0);
            p.push("pseudo", None);
            return units(p, linear);
        }
        "mercator1sp" | "mercatorvarianta" => {
            p.push("proj", proj("merc"));
            put(p, "lon_0", lon_0);
            put(p, "k", k);
        }
        "mercator2sp" | "mercatorvariantb" | "mercator" => {
            p.push("proj", proj("merc"));
            put(p, "lat_ts", lat_ts.or(lat_1));
            put(p, "lon_0", lon_0);
            if lat_ts.or(lat_1).is_none() {
                put(p, "k", k);
            }
        }
        "lambertazimuthalequalarea" => {
            p.push("proj", proj("laea"));
            put(p, "lat_0", lat_0);
            put(p, "lon_0", lon_0);
        }
        "sinusoidal" => {
            p.push("proj", proj("sinu"));
            put(p, "lon_0", lon_0);
        }
        "equirectangular"
        | "equidistantcylindrical"
        | "equidistantcylindricalspherical"
        | "platecarree" => {
            p.push("proj", proj("eqc"));
            put(p, "lat_ts", lat_ts.or(lat_1));
            put(p, "lat_0", lat_0);
            put(p, "lon_0", lon_0);
        }
        _ => {
            return Err(format!(
                "the projection method {method_name} is not supported (supported: transverse \
                 Mercator, Albers, Lambert conformal conic, polar stereographic, Mercator, \
                 Lambert azimuthal equal area, sinusoidal, equirectangular)"
            ))
        }
    }
    put(p, "x_0", x_0);
    put(p, "y_0", y_0);
    units(p, linear)
}

fn units(p: &mut ProjParams, linear: f64) -> Result<(), String> {
    if linear == 1.0 {
        p.push("units", Some("m".into()));
    } else {
        p.push("to_meter", Some(fmt_num(linear)));
    }
    Ok(())
}

fn put(p: &mut ProjParams, key: &str, v: Option<f64>) {
    if let Some(v) = v {
        p.push(key, Some(fmt_num(v)));
    }
}
