//! Coordinate reference systems without PROJ's database: EPSG codes through `crs-definitions`
//! (PROJ string and WKT of 6,184 codes), WKT 1/2 mapped method by method to a PROJ string, PROJ
//! strings composed into GDAL-flavour WKT 1 (`crs_wkt` of the cube). Transforms are
//! `geo::project`'s, with `proj4rs`.
//!
//! Datums: every CRS is sorted into a [`DatumKind`]; a pair needs either one datum, a WGS 84
//! equivalent or `+towgs84` on both sides, or a sphere on one side (no shift, as PROJ's
//! ballpark and MODIS practice). Anything else is refused by `Projector::new`.

mod area_table;
mod compose;
pub(crate) mod wkt;

use wkt::Wkt;

/// A coordinate reference system: its WKT (as written into cubes), EPSG code and the PROJ
/// string transforms use.
#[derive(Debug, Clone, PartialEq)]
pub struct Crs {
    /// WKT 1, GDAL's flavour (what rioxarray/GDAL write as `crs_wkt` / `spatial_ref`). For the
    /// few EPSG codes crs-definitions only has in WKT 2 (3D and ensemble CRSs), that WKT 2.
    pub wkt: String,
    /// Its EPSG code, when it has one.
    pub epsg: Option<u32>,
    /// The PROJ string transforms use.
    pub proj4: String,
}

/// How a CRS's datum relates to WGS 84, for deciding whether a pair can be transformed.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum DatumKind {
    /// WGS 84 or a datum PROJ takes to it with a null transformation (GDA94, ETRS89, NAD83…,
    /// `+towgs84=0,0,0`, `+nadgrids=@null`, an ellipsoid-only WGS84/GRS80).
    Wgs84,
    /// A datum with `+towgs84` (3 or 7 parameters) or a `+datum` proj4rs knows the shift of.
    Shift(String),
    /// A sphere without datum: no shift is applied (PROJ's ballpark).
    Sphere,
    /// A datum needing a grid shift file (not carried): `+nadgrids=…`, NAD27.
    Grid(String),
    /// An ellipsoid without a known relation to WGS 84: its PROJ ellipsoid parameters.
    Unknown(String),
}

impl Crs {
    /// "EPSG:4326" / "epsg:32633" / "EPSG::4326" / "urn:ogc:def:crs:EPSG::4326", a PROJ string
    /// "+proj=...", WKT 1 or WKT 2 (a root AUTHORITY["EPSG",n] / ID["EPSG",n] goes by the code).
    pub fn parse(text: &str) -> Result<Crs, String> {
        let t = text.trim();
        let shown = shorten(t);
        let lower = t.to_ascii_lowercase();
        let code_text = lower
            .strip_prefix("urn:ogc:def:crs:epsg:")
            .map(|r| r.rsplit(':').next().unwrap_or(r))
            .or_else(|| {
                lower
                    .strip_prefix("epsg:")
                    .map(|r| r.trim_start_matches(':'))
            });
        let res = if let Some(code) = code_text {
            code.trim()
                .parse::<u32>()
                .map_err(|_| "the EPSG code is not a number".to_string())
                .and_then(Crs::from_epsg)
        } else if t.starts_with('+') || lower.starts_with("proj=") {
            Crs::from_proj4(t)
        } else if t.contains('[') {
            Crs::from_wkt(t)
        } else {
            Err("not an EPSG code (EPSG:n), a PROJ string (+proj=…) or WKT".into())
        };
        res.map_err(|e| {
            if e.contains(&shown) {
                e
            } else {
                format!("CRS {shown:?}: {e}")
            }
        })
    }

    /// The CRS of an EPSG code (the EPSG tables `crs-definitions` carries).
    ///
    /// # Errors
    /// A code the tables lack.
    pub fn from_epsg(code: u32) -> Result<Crs, String> {
        let def = u16::try_from(code)
            .ok()
            .and_then(crs_definitions::from_code)
            .ok_or_else(|| {
                format!(
                    "EPSG:{code} is not in the EPSG table cubeforge carries (crs-definitions 0.6)"
                )
            })?;
        if def.proj4.trim().is_empty() {
            return Err(format!(
                "EPSG:{code} has no PROJ definition in crs-definitions"
            ));
        }
        let mut p = ProjParams::parse(def.proj4).map_err(|e| format!("EPSG:{code}: {e}"))?;
        if matches!(p.get("proj"), Some("geocent" | "cart")) {
            return Err(format!(
                "EPSG:{code} is a geocentric CRS, which grids cannot use"
            ));
        }
        epsg_datum(&mut p, def.wkt);
        let proj4 = p.to_string();
        check_proj(&proj4).map_err(|e| format!("EPSG:{code} ({proj4}): {e}"))?;
        let wkt = if def.wkt.starts_with("GEOGCS[") || def.wkt.starts_with("PROJCS[") {
            epsg_wkt(def.wkt)
        } else if def.wkt.is_empty() {
            compose::wkt1(&p)?
        } else {
            def.wkt.to_string()
        };
        Ok(Crs {
            wkt,
            epsg: Some(code),
            proj4,
        })
    }

    /// The CRS of WKT 1 or WKT 2: by its root EPSG code when it has one, else method by method.
    ///
    /// # Errors
    /// WKT that cannot be read, or a method without a PROJ mapping here.
    pub fn from_wkt(wkt: &str) -> Result<Crs, String> {
        let shown = shorten(wkt);
        let root = Wkt::parse(wkt).ok_or_else(|| format!("WKT {shown:?} does not parse"))?;
        if let Some(code) = root.epsg() {
            if let Ok(crs) = Crs::from_epsg(code) {
                return Ok(crs);
            }
        }
        // GDAL writes a PROJ4 extension where WKT 1 has no words (Web Mercator and the like).
        if let Some(ext) = root
            .child(&["EXTENSION"])
            .filter(|e| e.text(0) == Some("PROJ4"))
            .and_then(|e| e.text(1))
        {
            let mut crs = Crs::from_proj4(ext).map_err(|e| format!("WKT {shown:?}: {e}"))?;
            crs.wkt = wkt.trim().to_string();
            crs.epsg = root.epsg();
            return Ok(crs);
        }
        let p = wkt::to_proj(&root).map_err(|e| format!("WKT {shown:?}: {e}"))?;
        let proj4 = p.to_string();
        check_proj(&proj4).map_err(|e| format!("WKT {shown:?} (as {proj4}): {e}"))?;
        let wkt1 = if matches!(root.keyword(), "GEOGCS" | "PROJCS") {
            wkt.trim().to_string()
        } else {
            compose::wkt1(&p).map_err(|e| format!("WKT {shown:?}: {e}"))?
        };
        Ok(Crs {
            wkt: wkt1,
            epsg: root.epsg(),
            proj4,
        })
    }

    /// A PROJ string (`+proj=…`; `+init=epsg:n` goes by the code).
    pub fn from_proj4(text: &str) -> Result<Crs, String> {
        let mut p = ProjParams::parse(text)?;
        if let Some(init) = p.get("init") {
            let code = init
                .to_ascii_lowercase()
                .strip_prefix("epsg:")
                .and_then(|c| c.parse::<u32>().ok())
                .ok_or_else(|| format!("+init={init} is not supported (only +init=epsg:n)"))?;
            return Crs::from_epsg(code);
        }
        match p.get("proj") {
            None => return Err("a PROJ string without +proj".into()),
            Some("geocent" | "cart") => {
                return Err("a geocentric CRS, which grids cannot use".into())
            }
            Some("pipeline") => return Err("a PROJ pipeline is not a CRS".into()),
            _ => {}
        }
        for key in ["type", "wktext", "no_defs"] {
            p.remove(key);
        }
        // PROJ's default ellipsoid is GRS80 (proj4rs's is WGS84): say it.
        if ["datum", "ellps", "a", "R"]
            .iter()
            .all(|k| p.get_entry(k).is_none())
        {
            p.push("ellps", Some("GRS80".into()));
        }
        p.push("no_defs", None);
        if is_web_mercator(&p) {
            return Crs::from_epsg(3857);
        }
        let proj4 = p.to_string();
        check_proj(&proj4)?;
        let wkt = compose::wkt1(&p)?;
        Ok(Crs {
            wkt,
            epsg: None,
            proj4,
        })
    }

    /// Whether it is geographic (longitude, latitude in degrees).
    pub fn is_geographic(&self) -> bool {
        matches!(
            ProjParams::parse(&self.proj4)
                .ok()
                .as_ref()
                .and_then(|p| p.get("proj")),
            Some("longlat" | "latlong" | "lonlat" | "latlon")
        )
    }

    /// A short name for messages ("WGS 84", "WGS 84 / UTM zone 33N", or the PROJ string).
    pub fn name(&self) -> String {
        if let Some(n) = Wkt::parse(&self.wkt)
            .as_ref()
            .and_then(|w| w.text(0))
            .filter(|n| !n.is_empty() && !n.eq_ignore_ascii_case("unknown") && *n != "unnamed")
        {
            return n.to_string();
        }
        match self.epsg {
            Some(c) => format!("EPSG:{c}"),
            None => self.proj4.clone(),
        }
    }

    /// Whether two CRSs are the same for transforming points (e.g. EPSG:4326 from a code and
    /// from its WKT): same code, same PROJ string, or the same projected coordinates (within
    /// 1e-7 m, 1e-12°) for a global net of WGS 84 points.
    pub fn equivalent(&self, other: &Crs) -> bool {
        if self.epsg.is_some() && self.epsg == other.epsg || self.proj4 == other.proj4 {
            return true;
        }
        if self.is_geographic() != other.is_geographic() || self.datum() != other.datum() {
            return false;
        }
        let (Ok(a), Ok(b), Ok(wgs)) = (
            self.proj(),
            other.proj(),
            proj4rs::Proj::from_proj_string("+proj=longlat +datum=WGS84 +no_defs"),
        ) else {
            return false;
        };
        let geographic = self.is_geographic();
        // Radians for geographic CRSs (1e-11 rad is 0.06 mm), metres for projected ones.
        let tol = if geographic { 1e-11 } else { 1e-6 };
        let mut finite = 0;
        for i in 0..13 {
            for j in 0..9 {
                let lon = (-178.0 + 29.5 * i as f64).to_radians();
                let lat = (-88.0 + 22.0 * j as f64).to_radians();
                let pa = proj4rs::adaptors::transform_xy(&wgs, &a, lon, lat);
                let pb = proj4rs::adaptors::transform_xy(&wgs, &b, lon, lat);
                match (pa, pb) {
                    (Ok(pa), Ok(pb)) if pa.0.is_finite() && pb.0.is_finite() => {
                        let dx = if geographic {
                            let d = (pa.0 - pb.0).rem_euclid(std::f64::consts::TAU);
                            d.min(std::f64::consts::TAU - d)
                        } else {
                            (pa.0 - pb.0).abs()
                        };
                        if dx > tol || (pa.1 - pb.1).abs() > tol {
                            return false;
                        }
                        finite += 1;
                    }
                    (Ok(pa), Ok(pb)) if !pa.0.is_finite() && !pb.0.is_finite() => {}
                    (Err(_), Err(_)) => {}
                    _ => return false,
                }
            }
        }
        finite > 0
    }

    /// Area of use (west, south, east, north in degrees) when known (EPSG codes), else None.
    /// East < west where it crosses the antimeridian.
    pub fn area_of_use(&self) -> Option<[f64; 4]> {
        let code = u16::try_from(self.epsg?).ok()?;
        let t = &area_table::AREAS;
        let i = t.binary_search_by_key(&code, |r| r.0).ok()?;
        Some(t[i].1.map(f64::from))
    }

    /// The proj4rs object of this CRS, with WGS 84 equivalence made explicit (`+towgs84=0,0,0`
    /// where only a WGS84/GRS80 ellipsoid is named), so that proj4rs shifts against it.
    pub(crate) fn proj(&self) -> Result<proj4rs::Proj, String> {
        let mut p = ProjParams::parse(&self.proj4)?;
        if self.datum() == DatumKind::Wgs84
            && ["datum", "towgs84", "nadgrids"]
                .iter()
                .all(|k| p.get_entry(k).is_none())
        {
            p.insert_before("no_defs", "towgs84", Some("0,0,0".into()));
        }
        proj4rs::Proj::from_proj_string(&p.to_string()).map_err(|e| format!("{}: {e}", self.name()))
    }

    /// How this CRS's datum relates to WGS 84.
    pub(crate) fn datum(&self) -> DatumKind {
        let Ok(p) = ProjParams::parse(&self.proj4) else {
            return DatumKind::Unknown(self.proj4.clone());
        };
        if let Some(g) = p.get("nadgrids") {
            return if g.trim_start_matches('@') == "null" {
                DatumKind::Wgs84
            } else {
                DatumKind::Grid(g.to_string())
            };
        }
        if let Some(t) = p.get("towgs84") {
            let zero = t.split(',').all(|v| v.trim().parse::<f64>() == Ok(0.0));
            return if zero {
                DatumKind::Wgs84
            } else {
                DatumKind::Shift(t.to_string())
            };
        }
        match p.get("datum") {
            Some("WGS84" | "NAD83") => return DatumKind::Wgs84,
            Some("NAD27") => return DatumKind::Grid("NAD27".into()),
            Some(d) => return DatumKind::Shift(d.to_string()),
            None => {}
        }
        let num = |k: &str| p.get(k).and_then(|v| v.parse::<f64>().ok());
        if num("R").is_some()
            || num("a").is_some() && (num("a") == num("b") || num("rf") == Some(0.0))
            || p.get("ellps") == Some("sphere")
        {
            return DatumKind::Sphere;
        }
        let wgs84_axes = num("a") == Some(6378137.0)
            && num("rf").is_some_and(|rf| {
                (rf - 298.257223563).abs() < 1e-8 || (rf - 298.257222101).abs() < 1e-8
            });
        if matches!(p.get("ellps"), Some("WGS84" | "GRS80")) || wgs84_axes {
            return DatumKind::Wgs84;
        }
        let key = ["ellps", "a", "b", "rf", "f", "es", "e"]
            .iter()
            .filter_map(|k| p.get(k).map(|v| format!("+{k}={v}")))
            .collect::<Vec<_>>()
            .join(" ");
        DatumKind::Unknown(if key.is_empty() {
            "+ellps=GRS80".into()
        } else {
            key
        })
    }
}

/// The datum of an EPSG code's PROJ string as PROJ transforms it: a `+datum` other than
/// WGS84/NAD83 (proj4rs's table has older `towgs84` values, e.g. OSGB36's, millimetres off) or
/// a grid (`+nadgrids`, not carried) is replaced by the WKT's ellipsoid and `TOWGS84` (the EPSG
/// Helmert transformation PROJ uses without grids); without one, by the ellipsoid alone (no
/// known shift, refused against other datums).
fn epsg_datum(p: &mut ProjParams, wkt: &str) {
    let named = p
        .get("datum")
        .is_some_and(|d| !matches!(d, "WGS84" | "NAD83"));
    let grid = p.get("nadgrids").is_some_and(|g| g != "@null");
    if !named && !grid {
        return;
    }
    let Some(root) = Wkt::parse(wkt) else { return };
    let geog = if root.keyword() == "GEOGCS" {
        Some(&root)
    } else {
        root.child(&["GEOGCS"])
    };
    let Some(datum) = geog.and_then(|g| g.child(&["DATUM"])) else {
        return;
    };
    let Some(sph) = datum.child(&["SPHEROID"]) else {
        return;
    };
    let (Some(a), Some(invf)) = (sph.number(1), sph.number(2)) else {
        return;
    };
    for key in [
        "datum", "nadgrids", "towgs84", "ellps", "a", "b", "rf", "f", "R",
    ] {
        p.remove(key);
    }
    if invf == 0.0 {
        p.insert_before("no_defs", "R", Some(fmt_num(a)));
    } else {
        p.insert_before("no_defs", "a", Some(fmt_num(a)));
        p.insert_before("no_defs", "rf", Some(fmt_num(invf)));
    }
    if let Some(t) = datum.child(&["TOWGS84"]) {
        let v: Vec<String> = (0..7).map_while(|i| t.number(i)).map(fmt_num).collect();
        if v.len() == 3 || v.len() == 7 {
            p.insert_before("no_defs", "towgs84", Some(v.join(",")));
        }
    }
}

/// Whether `p` is EPSG:3857's PROJ string (spherical Mercator on `+nadgrids=@null`).
fn is_web_mercator(p: &ProjParams) -> bool {
    let n = |k: &str, d: f64| p.get(k).map_or(Some(d), |v| v.parse::<f64>().ok());
    p.get("proj") == Some("merc")
        && n("a", 0.0) == Some(6378137.0)
        && n("b", 0.0) == Some(6378137.0)
        && p.get("nadgrids") == Some("@null")
        && [
            ("lat_ts", 0.0),
            ("lon_0", 0.0),
            ("x_0", 0.0),
            ("y_0", 0.0),
            ("k", 1.0),
            ("k_0", 1.0),
        ]
        .iter()
        .all(|(k, d)| n(k, *d) == Some(*d))
        && p.get("units").is_none_or(|u| u == "m")
        && p.get("to_meter").is_none()
}

/// Whether proj4rs builds `proj4`.
fn check_proj(proj4: &str) -> Result<(), String> {
    proj4rs::Proj::from_proj_string(proj4)
        .map(|_| ())
        .map_err(|e| format!("proj4rs does not take {proj4}: {e}"))
}

/// `text` cut to 80 characters for messages.
fn shorten(text: &str) -> String {
    let t = text.trim();
    match t.char_indices().nth(80) {
        Some((at, _)) => format!("{}…", &t[..at]),
        None => t.to_string(),
    }
}

/// An EPSG code's WKT 1 as GDAL writes it for the code: without `TOWGS84[…]` clauses (GDAL on
/// PROJ 6 and later does not add them to a CRS read by EPSG code, and PROJ reads a CRS that has
/// one as a different, bound CRS), and without the `scale_factor` of 1 that the tables give a
/// polar stereographic CRS defined by its standard parallel (variant B: EPSG:3031, 3413), which
/// GDAL leaves out and PROJ would read as a scale at the pole (variant A), nor the tables'
/// east/north axes on a polar stereographic CRS.
pub(crate) fn epsg_wkt(wkt: &str) -> String {
    let mut out = String::with_capacity(wkt.len());
    let mut rest = wkt;
    while let Some(at) = rest.find(",TOWGS84[") {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        match after.find(']') {
            Some(end) => rest = &after[end + 1..],
            None => {
                rest = after;
                break;
            }
        }
    }
    out.push_str(rest);
    if out.contains("PROJECTION[\"Polar_Stereographic\"]") {
        // The tables' east/north axes are not the EPSG polar ones (GDAL writes none, and PROJ
        // does not recognise the code with them).
        out = out.replace(",AXIS[\"Easting\",EAST],AXIS[\"Northing\",NORTH]", "");
        let variant_b = !out.contains("PARAMETER[\"latitude_of_origin\",90]")
            && !out.contains("PARAMETER[\"latitude_of_origin\",-90]");
        if variant_b {
            out = out.replace(",PARAMETER[\"scale_factor\",1]", "");
        }
    }
    out
}

/// A number as WKT and PROJ strings write it: shortest round-trip, integers without a fraction.
/// (Same as `formats::geotiff::geokeys::num`.)
pub(crate) fn fmt_num(v: f64) -> String {
    if v == v.trunc() && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// A PROJ string's parameters, in order: `+key=value` or `+flag`.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct ProjParams(Vec<(String, Option<String>)>);

impl ProjParams {
    pub(crate) fn parse(text: &str) -> Result<ProjParams, String> {
        let mut out = Vec::new();
        for tok in text.split_whitespace() {
            let tok = tok.strip_prefix('+').unwrap_or(tok);
            if tok.is_empty() {
                continue;
            }
            let (k, v) = match tok.split_once('=') {
                Some((k, v)) => (k.to_string(), Some(v.to_string())),
                None => (tok.to_string(), None),
            };
            if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!("{tok:?} is not a PROJ parameter"));
            }
            out.push((k, v));
        }
        if out.is_empty() {
            return Err("an empty PROJ string".into());
        }
        Ok(ProjParams(out))
    }

    /// The value of `key` (`None` when absent or a flag).
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .and_then(|(_, v)| v.as_deref())
    }

    /// `Some` when `key` is present: its value, or `None` for a flag.
    pub(crate) fn get_entry(&self, key: &str) -> Option<&Option<String>> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub(crate) fn push(&mut self, key: &str, value: Option<String>) {
        self.0.push((key.to_string(), value));
    }

    pub(crate) fn remove(&mut self, key: &str) {
        self.0.retain(|(k, _)| k != key);
    }

    /// Insert before `before` (at the end when it is absent).
    pub(crate) fn insert_before(&mut self, before: &str, key: &str, value: Option<String>) {
        let at = self
            .0
            .iter()
            .position(|(k, _)| k == before)
            .unwrap_or(self.0.len());
        self.0.insert(at, (key.to_string(), value));
    }
}

impl std::fmt::Display for ProjParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, (k, v)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            match v {
                Some(v) => write!(f, "+{k}={v}")?,
                None => write!(f, "+{k}")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
