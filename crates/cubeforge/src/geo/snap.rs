//! Snapping a grid's edges to multiples of its pixel size, as odc-geo does it
//! (`odc/geo/math.py`: `maybe_int`, `split_float`, `snap_grid`, `_snap_edge`): quotients within
//! a tolerance of a whole number are taken as that number before any `floor` or `ceil`, so
//! `0.3 / 0.1 = 2.9999999999999996` gives 3 columns, not 2 or 4.

/// `x` as a whole part (`round(x)`) and a fraction in `(-0.5, 0.5]`, as odc-geo's
/// `split_float`.
fn split_float(x: f64) -> (f64, f64) {
    if !x.is_finite() {
        return (x, 0.0);
    }
    let mut part = x % 1.0;
    let mut whole = x - part;
    if part > 0.5 {
        part -= 1.0;
        whole += 1.0;
    } else if part < -0.5 {
        part += 1.0;
        whole -= 1.0;
    }
    (whole, part)
}

/// `x` taken as the whole number it is within `tol` of, else `x` (odc-geo's `maybe_int`).
#[must_use]
pub fn maybe_int(x: f64, tol: f64) -> f64 {
    let (whole, part) = split_float(x);
    if part.abs() < tol {
        whole
    } else {
        x
    }
}

/// The edge a pixel size `res` (either sign) puts first and the number of pixels that cover
/// `x0 ..= x1`, with pixel edges at `off_pix · |res|` plus multiples of `|res|`, or, with no
/// offset (`None`), starting at the bbox's own edge (odc-geo's `snap_grid`). For a negative
/// `res` the first edge is the upper one.
#[must_use]
pub fn snap_grid(x0: f64, x1: f64, res: f64, off_pix: Option<f64>, tol: f64) -> (f64, u64) {
    let count = |q: f64| -> u64 {
        let n = maybe_int(q, tol).ceil();
        if n >= 1.0 {
            n as u64
        } else {
            1
        }
    };
    let Some(off_pix) = off_pix else {
        return if res > 0.0 {
            (x0, count((x1 - x0) / res))
        } else {
            (x1, count((x1 - x0) / -res))
        };
    };
    let off = off_pix * res.abs();
    let (tx, n) = snap_edge(x0 - off, x1 - off, res, tol);
    (tx + off, n)
}

fn snap_edge(x0: f64, x1: f64, res: f64, tol: f64) -> (f64, u64) {
    let pos = |r: f64| -> (f64, u64) {
        let lo = maybe_int(x0 / r, tol).floor();
        let hi = maybe_int(x1 / r, tol).ceil();
        let n = (hi - lo).max(1.0);
        (lo * r, n as u64)
    };
    if res > 0.0 {
        return pos(res);
    }
    let (tx, n) = pos(-res);
    #[allow(clippy::cast_precision_loss)]
    let top = tx + n as f64 * (-res);
    (top, n)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn odc_geo_cases() {
        // Numbers from odc-geo 0.5.3's `snap_grid` with `tol=0.01`.
        assert_eq!(snap_grid(60.0, 80.0, 0.25, Some(0.0), 0.01), (60.0, 80));
        assert_eq!(snap_grid(0.0, 20.0, -0.25, Some(0.0), 0.01), (20.0, 80));
        assert_eq!(snap_grid(60.0, 80.0, 0.25, Some(0.5), 0.01), (59.875, 81));
        assert_eq!(snap_grid(0.0, 20.0, -0.25, Some(0.5), 0.01), (20.125, 81));
        // datacube-core#1382: 0.3 / 0.1 is 2.9999999999999996.
        assert_eq!(snap_grid(0.0, 0.3, 0.1, Some(0.0), 0.01).1, 3);
        assert_eq!(snap_grid(0.0, 0.3, 0.1, None, 0.01), (0.0, 3));
        // A bbox edge just past a multiple does not add a pixel within the tolerance.
        assert_eq!(snap_grid(0.0, 1.000_01, 0.1, Some(0.0), 0.01).1, 10);
        assert_eq!(snap_grid(0.0, 1.01, 0.1, Some(0.0), 0.01).1, 11);
        assert_eq!(snap_grid(0.05, 0.95, 0.1, Some(0.0), 0.01), (0.0, 10));
        assert_eq!(snap_grid(-0.05, 0.05, -0.1, None, 0.01), (0.05, 1));
        assert_eq!(maybe_int(2.999_999_999_999_999_6, 0.01), 3.0);
        assert_eq!(maybe_int(-2.995, 0.01), -3.0);
        assert_eq!(maybe_int(2.5, 0.01), 2.5);
    }

    proptest! {
        /// The snapped grid covers the bbox (to the tolerance) and its edges are multiples of
        /// the pixel size shifted by the anchor.
        #[test]
        fn snapped_grids_cover_the_bbox(x0 in -1e3f64..1e3, span in 1e-3f64..1e3,
                                        res in 1e-3f64..10.0, off in 0.0f64..1.0) {
            let x1 = x0 + span;
            let (tx, n) = snap_grid(x0, x1, res, Some(off), 0.01);
            let end = tx + n as f64 * res;
            prop_assert!(tx <= x0 + 0.011 * res, "{} > {}", tx, x0);
            prop_assert!(end >= x1 - 0.011 * res, "{} < {}", end, x1);
            let k = (tx - off * res) / res;
            prop_assert!((k - k.round()).abs() < 1e-6 * k.abs().max(1.0));
            let (ty, m) = snap_grid(x0, x1, -res, Some(off), 0.01);
            prop_assert_eq!(m, n);
            prop_assert!((ty - end).abs() <= 1e-9 * end.abs().max(1.0));
        }
    }
}
