//! Whether a grid's bbox lies where its CRS is defined: latitudes within ±90° and at most one
//! turn of longitudes for a geographic CRS; for a projected CRS, the bbox's edges must
//! transform to longitude/latitude, and with an EPSG code, meet the code's area of use.

use super::crs::Crs;
use super::geobox::Bbox;
use super::project::Projector;

/// Points sampled along each edge of a bbox.
const EDGE_POINTS: usize = 21;

/// Check `bbox` (in `crs`'s units) against where `crs` is defined.
///
/// # Errors
/// Why the bbox is outside, naming the CRS and its area.
pub fn check(crs: &Crs, b: &Bbox) -> Result<(), String> {
    if crs.is_geographic() {
        if b.bottom < -90.0 - 1e-9 || b.top > 90.0 + 1e-9 {
            return Err(format!(
                "latitudes {} to {} are outside -90 to 90 (the CRS {} is geographic)",
                b.bottom,
                b.top,
                crs.name()
            ));
        }
        if b.left < -360.0 || b.right > 720.0 || b.right - b.left > 360.0 + 1e-9 {
            return Err(format!(
                "longitudes {} to {} do not make one turn of the globe",
                b.left, b.right
            ));
        }
        return Ok(());
    }
    let wgs84 = Crs::from_epsg(4326)?;
    let p = Projector::new(&wgs84, crs)?;
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    #[allow(clippy::cast_precision_loss)]
    for i in 0..EDGE_POINTS {
        let t = i as f64 / (EDGE_POINTS - 1) as f64;
        let (x, y) = (
            b.left + t * (b.right - b.left),
            b.bottom + t * (b.top - b.bottom),
        );
        xs.extend([x, x, b.left, b.right]);
        ys.extend([b.bottom, b.top, y, y]);
    }
    p.dst_to_src(&mut xs, &mut ys);
    let ok: Vec<(f64, f64)> = xs
        .iter()
        .zip(&ys)
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .map(|(x, y)| (*x, *y))
        .collect();
    if ok.is_empty() {
        return Err(format!(
            "no point of the bbox (left {}, bottom {}, right {}, top {}) can be taken to \
             longitude/latitude in {}",
            b.left,
            b.bottom,
            b.right,
            b.top,
            crs.name()
        ));
    }
    let Some([w, s, e, n]) = crs.area_of_use() else {
        return Ok(());
    };
    let lat_meets = ok.iter().any(|(_, y)| *y >= s - 1.0) && ok.iter().any(|(_, y)| *y <= n + 1.0);
    let (lo, hi) = ok.iter().fold((f64::MAX, f64::MIN), |(lo, hi), (x, _)| {
        (lo.min(*x), hi.max(*x))
    });
    // An area crossing the antimeridian (west > east) is two spans of longitude.
    let spans: Vec<(f64, f64)> = if w <= e {
        vec![(w, e)]
    } else {
        vec![(w, 180.0), (-180.0, e)]
    };
    let lon_meets = hi - lo >= 180.0 || spans.iter().any(|(a, z)| lo <= z + 1.0 && hi >= a - 1.0);
    if lat_meets && lon_meets {
        return Ok(());
    }
    Err(format!(
        "the bbox (left {}, bottom {}, right {}, top {}) is outside the area of use of {} \
         (longitudes {w} to {e}, latitudes {s} to {n}; the bbox is in the grid's CRS units)",
        b.left,
        b.bottom,
        b.right,
        b.top,
        crs.name()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bbox(left: f64, bottom: f64, right: f64, top: f64) -> Bbox {
        Bbox {
            left,
            bottom,
            right,
            top,
        }
    }

    #[test]
    fn bboxes_inside_and_outside_the_area_of_use() {
        let utm = Crs::from_epsg(32643).expect("UTM 43N");
        assert!(check(&utm, &bbox(300_000.0, 1_000_000.0, 700_000.0, 2_000_000.0)).is_ok());
        // Metres far to the east: longitudes beyond the zone's 72..78.
        let e = check(
            &utm,
            &bbox(5_000_000.0, 1_000_000.0, 6_000_000.0, 2_000_000.0),
        )
        .expect_err("outside");
        assert!(e.contains("outside the area of use"), "{e}");
        let wgs = Crs::from_epsg(4326).expect("4326");
        assert!(check(&wgs, &bbox(170.0, -10.0, 190.0, 10.0)).is_ok());
        assert!(check(&wgs, &bbox(0.0, -95.0, 10.0, 10.0)).is_err());
    }
}
