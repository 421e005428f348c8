//! GDAL's approximate transformer over one scanline (`GDALApproxTransform` /
//! `GDALApproxTransformInternal`, `alg/gdaltransformer.cpp`, GDAL 3.10.3;
//! design §2.5), so that a target row's source positions are those GDAL uses
//! with `gdalwarp -et` (0.125 px by default).
//!
//! A run of at most 5 points (or a zero threshold, or a degenerate run) is
//! transformed exactly. Otherwise its first, middle (`m = (n − 1)/2`) and last
//! points are; if the line from first to last, evaluated at the middle by x
//! distance, misses the middle by at most the threshold (`|Δx| + |Δy|`, source
//! pixels) every point is interpolated along that line, else the run splits
//! into `[0, m)` and `[m, n)` (which share the middle's transform as their
//! end / start); a half of at most 5 points is transformed exactly, the other
//! recurses. A failed middle transform makes the whole run exact.

/// The exact destination→source transform: pixel/line arrays in, source
/// pixel/line out, in place; NaN where a point fails.
pub type Exact<'a> = &'a dyn Fn(&mut [f64], &mut [f64]);

/// Source positions of the destination points `(xs[i], y)` through GDAL's
/// approximation at `threshold` source pixels (0: exact).
///
/// # Panics
/// When `out_x` or `out_y` is not as long as `xs`.
pub fn approx_row(
    exact: Exact,
    xs: &[f64],
    y: f64,
    threshold: f64,
    out_x: &mut [f64],
    out_y: &mut [f64],
) {
    let n = xs.len();
    assert!(
        out_x.len() == n && out_y.len() == n,
        "approx_row: output lengths differ from xs"
    );
    out_x.copy_from_slice(xs);
    out_y.fill(y);
    if n == 0 {
        return;
    }
    let mid = (n - 1) / 2;
    if xs[0] == xs[n - 1] || xs[0] == xs[mid] || threshold == 0.0 || n <= 5 {
        exact(out_x, out_y);
        return;
    }
    let mut sx = [xs[0], xs[mid], xs[n - 1]];
    let mut sy = [y; 3];
    exact(&mut sx, &mut sy);
    if sx.iter().chain(&sy).any(|v| v.is_nan()) {
        exact(out_x, out_y);
        return;
    }
    internal(exact, threshold, out_x, out_y, sx, sy);
}

/// `GDALApproxTransformInternal` on `x`, `y` (destination positions in,
/// source positions out) given the transforms of its start, middle and end.
fn internal(
    exact: Exact,
    threshold: f64,
    x: &mut [f64],
    y: &mut [f64],
    sme_x: [f64; 3],
    sme_y: [f64; 3],
) {
    let n = x.len();
    let mid = (n - 1) / 2;
    let span = x[n - 1] - x[0];
    let dx = (sme_x[2] - sme_x[0]) / span;
    let dy = (sme_y[2] - sme_y[0]) / span;
    let error = ((sme_x[0] + dx * (x[mid] - x[0])) - sme_x[1]).abs()
        + ((sme_y[0] + dy * (x[mid] - x[0])) - sme_y[1]).abs();
    if error <= threshold {
        for i in (0..n).rev() {
            let dist = x[i] - x[0];
            x[i] = sme_x[0] + dx * dist;
            y[i] = sme_y[0] + dy * dist;
        }
        return;
    }
    let (q1, q2, q3) = ((mid - 1) / 2, mid - 1, mid + (n - mid - 1) / 2);
    let exact1 = mid <= 5 || y[0] != y[q2] || y[0] != y[q1] || x[0] == x[q2] || x[0] == x[q1];
    let exact2 = n - mid <= 5
        || y[mid] != y[n - 1]
        || y[mid] != y[q3]
        || x[mid] == x[n - 1]
        || x[mid] == x[q3];
    let mut mx = [x[q1], x[q2], x[q3]];
    let mut my = [y[q1], y[q2], y[q3]];
    let ok = |mx: &[f64], my: &[f64]| mx.iter().chain(my).all(|v| !v.is_nan());
    let middles_ok = match (exact1, exact2) {
        (false, false) => {
            exact(&mut mx, &mut my);
            ok(&mx, &my)
        }
        (false, true) => {
            exact(&mut mx[..2], &mut my[..2]);
            ok(&mx[..2], &my[..2])
        }
        (true, false) => {
            exact(&mut mx[2..], &mut my[2..]);
            ok(&mx[2..], &my[2..])
        }
        (true, true) => false, // GDAL's bSuccess stays FALSE: both halves exact
    };
    if !middles_ok || exact1 {
        exact(&mut x[1..mid], &mut y[1..mid]);
        (x[0], y[0]) = (sme_x[0], sme_y[0]);
    } else {
        let (hx, hy) = (&mut x[..mid], &mut y[..mid]);
        internal(
            exact,
            threshold,
            hx,
            hy,
            [sme_x[0], mx[0], mx[1]],
            [sme_y[0], my[0], my[1]],
        );
    }
    if !middles_ok || exact2 {
        exact(&mut x[mid + 1..n - 1], &mut y[mid + 1..n - 1]);
        (x[mid], y[mid]) = (sme_x[1], sme_y[1]);
        (x[n - 1], y[n - 1]) = (sme_x[2], sme_y[2]);
    } else {
        let (hx, hy) = (&mut x[mid..], &mut y[mid..]);
        internal(
            exact,
            threshold,
            hx,
            hy,
            [sme_x[1], mx[2], sme_x[2]],
            [sme_y[1], my[2], sme_y[2]],
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    fn run(
        f: fn(f64, f64) -> (f64, f64),
        n: usize,
        threshold: f64,
        calls: &Cell<usize>,
    ) -> (Vec<f64>, Vec<f64>) {
        let exact = |x: &mut [f64], y: &mut [f64]| {
            calls.set(calls.get() + x.len());
            for (a, b) in x.iter_mut().zip(y.iter_mut()) {
                (*a, *b) = f(*a, *b);
            }
        };
        let xs: Vec<f64> = (0..n).map(|i| i as f64 + 0.5).collect();
        let (mut ox, mut oy) = (vec![0.0; n], vec![0.0; n]);
        approx_row(&exact, &xs, 3.5, threshold, &mut ox, &mut oy);
        (ox, oy)
    }

    fn curved(x: f64, y: f64) -> (f64, f64) {
        (x * x / 50.0 + 0.1 * y, y + (x / 20.0).sin() * 3.0)
    }

    #[test]
    fn zero_threshold_and_short_runs_are_exact() {
        let calls = Cell::new(0);
        let (ax, ay) = run(curved, 100, 0.0, &calls);
        assert_eq!(calls.get(), 100);
        for i in 0..100 {
            assert_eq!((ax[i], ay[i]), curved(i as f64 + 0.5, 3.5));
        }
        calls.set(0);
        let (bx, _) = run(curved, 5, 10.0, &calls);
        assert_eq!(calls.get(), 5);
        assert_eq!(bx[4], curved(4.5, 3.5).0);
    }

    #[test]
    fn a_linear_map_is_interpolated_from_three_points() {
        let calls = Cell::new(0);
        let (ax, ay) = run(|x, y| (2.0 * x + 1.0, y - 0.25 * x), 1000, 0.125, &calls);
        assert_eq!(calls.get(), 3);
        for i in 0..1000 {
            let x = i as f64 + 0.5;
            assert!(
                (ax[i] - (2.0 * x + 1.0)).abs() < 1e-9 && (ay[i] - (3.5 - 0.25 * x)).abs() < 1e-9
            );
        }
    }

    #[test]
    fn a_curved_map_splits_until_the_middle_fits() {
        let calls = Cell::new(0);
        let (ax, ay) = run(curved, 400, 0.125, &calls);
        assert!(calls.get() > 3 && calls.get() < 400, "{}", calls.get());
        let worst = (0..400)
            .map(|i| {
                let (x, y) = curved(i as f64 + 0.5, 3.5);
                (ax[i] - x).abs() + (ay[i] - y).abs()
            })
            .fold(0.0, f64::max);
        assert!(worst < 0.125, "{worst}");
        // The run ends are always exact.
        assert_eq!(ax[0], curved(0.5, 3.5).0);
        assert_eq!(ax[399], curved(399.5, 3.5).0);
    }

    #[test]
    fn a_failed_middle_makes_the_run_exact() {
        let calls = Cell::new(0);
        let f = |x: f64, y: f64| {
            if (x - 50.5).abs() < 1e-9 {
                (f64::NAN, f64::NAN)
            } else {
                (x * x, y)
            }
        };
        let (ax, _) = run(f, 101, 0.125, &calls);
        assert_eq!(calls.get(), 3 + 101);
        assert!(ax[50].is_nan());
        assert_eq!(ax[51], 51.5 * 51.5);
    }
}
