//! GDAL 3.10.3's `XSCALE` / `YSCALE` (target pixels per source pixel, below 1
//! when downsampling), computed once for the whole target grid (design §4.4).
//!
//! GDAL 3.10.3 does **not** transform unit squares (that is GDAL master's
//! `PerformWarp`). It takes the ratio of window sizes:
//! `GDALWarpOperation::ComputeSourceWindow` transforms 21 points along each
//! edge of the target window (every edge pixel corner when a target corner
//! fails to transform; a 23×23 grid when an edge point fails), takes their
//! bounding box in source pixel space (a bound within 1e-6 of an integer is
//! rounded to it), clips its size to the raster (`dfSrcXSizeRaw`), and
//! `PerformWarp` sets `XSCALE = nDstXSize / dfSrcXSizeRaw`, 1 when the window
//! is not larger than the target, and snaps a scale below 1 whose reciprocal is
//! within 0.05 of an integer `n` to `1/n`. When `YSCALE / XSCALE > 100`
//! (a source wrapped at the antimeridian), `XSCALE` becomes the mean of local
//! scales sampled on a 10×10 grid, those under a tenth of the largest dropped.
//!
//! Not reproduced: GDAL's source-to-target refinement of a grid window
//! (`ComputeSourceWindowStartingFromSource`), and the last ulp of
//! `nSrcXSize - dfSrcXExtraSize` (we divide by the raw size itself).

/// The destination→source map: `map(dst_x, dst_y, src_x, src_y)` writes the
/// source pixel/line of each destination pixel/line position (NaN on failure).
pub type Map<'a> = &'a dyn Fn(&[f64], &[f64], &mut [f64], &mut [f64]);

/// `[XSCALE, YSCALE]` for warping the `src_w × src_h` raster onto the whole
/// `dst_w × dst_h` target grid through `map`. Same-CRS grids give the exact
/// resolution ratio (0.01° → 0.05°: `0.2`).
#[must_use]
pub fn estimate_scale(map: Map, dst_w: u64, dst_h: u64, src_w: u64, src_h: u64) -> [f64; 2] {
    let Some(b) = source_bounds(map, dst_w, dst_h) else {
        return [1.0, 1.0];
    };
    let (sw, sh) = (src_w as f64, src_h as f64);
    if b[0] > sw || b[2] < 0.0 || b[1] > sh || b[3] < 0.0 {
        return [1.0, 1.0]; // GDAL warps nothing
    }
    let b = b.map(round_if_close);
    let raw_x = (sw - b[0].max(0.0).trunc()).min(b[2] - b[0]).max(0.0);
    let raw_y = (sh - b[1].max(0.0).trunc()).min(b[3] - b[1]).max(0.0);
    let mut scale = [
        axis_scale(dst_w as f64, raw_x),
        axis_scale(dst_h as f64, raw_y),
    ];
    if scale[1] / scale[0] > 100.0 {
        if let Some(x) = sampled_x_scale(map, dst_w, dst_h) {
            scale[0] = x;
        }
    }
    scale
}

/// `PerformWarp`'s ratio with its "window not larger than the target" case
/// and the snap to `1/n`.
fn axis_scale(dst: f64, raw: f64) -> f64 {
    if raw <= 0.0 || raw <= dst {
        return 1.0;
    }
    let s = dst / raw;
    let r = 1.0 / s;
    let n = (r + 0.5) as i64;
    if (r - n as f64).abs() < 0.05 {
        1.0 / n as f64
    } else {
        s
    }
}

/// `roundIfCloseEnough`.
fn round_if_close(v: f64) -> f64 {
    let r = v.round();
    if (r - v).abs() < 1e-6 {
        r
    } else {
        v
    }
}

/// Transforms points, returning `[min_x, min_y, max_x, max_y]` of those that
/// succeed and the number that failed.
fn bounds_of(map: Map, xs: &[f64], ys: &[f64]) -> ([f64; 4], usize) {
    let (mut sx, mut sy) = (vec![0.0; xs.len()], vec![0.0; xs.len()]);
    map(xs, ys, &mut sx, &mut sy);
    let mut b = [
        f64::INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NEG_INFINITY,
    ];
    let mut failed = 0;
    for (&x, &y) in sx.iter().zip(&sy) {
        if x.is_nan() || y.is_nan() || x.is_infinite() || y.is_infinite() {
            failed += 1;
            continue;
        }
        b = [b[0].min(x), b[1].min(y), b[2].max(x), b[3].max(y)];
    }
    (b, failed)
}

/// `ComputeSourceWindow`'s bounding box of the target window in source pixel
/// space, or `None` when too few points transform.
fn source_bounds(map: Map, dst_w: u64, dst_h: u64) -> Option<[f64; 4]> {
    let (w, h) = (dst_w as f64, dst_h as f64);
    let (cx, cy) = ([0.0, w, 0.0, w], [0.0, 0.0, h, h]);
    let all = bounds_of(map, &cx, &cy).1 > 0;
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    if all {
        for i in 0..=dst_w {
            xs.extend([i as f64, i as f64]);
            ys.extend([0.0, h]);
        }
        for j in 1..dst_h {
            xs.extend([0.0, w]);
            ys.extend([j as f64, j as f64]);
        }
    } else {
        let step = 1.0 / 20.0;
        let mut ratio = 0.0;
        while ratio <= 1.0 + step * 0.5 {
            xs.extend([ratio * w, ratio * w, 0.0, w]);
            ys.extend([0.0, h, ratio * h, ratio * h]);
            ratio += step;
        }
    }
    let (mut b, mut failed) = bounds_of(map, &xs, &ys);
    let mut n = xs.len();
    if failed > 0 {
        // The 23×23 grid (GDAL uses nDstXSize for the row ratios too).
        let step = 1.0 / 20.0;
        let ratio = |i: usize| match i {
            0 => 0.5 / w,
            22 => 1.0 - 0.5 / w,
            _ => (i - 1) as f64 * step,
        };
        (xs, ys) = (Vec::new(), Vec::new());
        for iy in 0..23 {
            for ix in 0..23 {
                xs.push(ratio(ix) * w);
                ys.push(ratio(iy) * h);
            }
        }
        (b, failed) = bounds_of(map, &xs, &ys);
        n = xs.len();
    }
    (failed + 5 <= n).then_some(b)
}

/// The `YSCALE / XSCALE > 100` branch: mean of local x scales on a grid.
fn sampled_x_scale(map: Map, dst_w: u64, dst_h: u64) -> Option<f64> {
    let (nx, ny) = (dst_w.min(10), dst_h.min(10));
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    for iy in 0..ny {
        for ix in 0..nx {
            let x = if nx == 1 {
                0.0
            } else {
                ix as f64 * dst_w as f64 / (nx - 1) as f64
            };
            let y = if ny == 1 {
                0.0
            } else {
                iy as f64 * dst_h as f64 / (ny - 1) as f64
            };
            xs.extend([x, if ix == nx - 1 { x - 1.0 } else { x + 1.0 }, x]);
            ys.extend([y, y, if iy == ny - 1 { y - 1.0 } else { y + 1.0 }]);
        }
    }
    let (mut sx, mut sy) = (vec![0.0; xs.len()], vec![0.0; xs.len()]);
    map(&xs, &ys, &mut sx, &mut sy);
    let ok = |k: usize| !sx[k].is_nan() && !sy[k].is_nan();
    let mut scales: Vec<f64> = (0..xs.len())
        .step_by(3)
        .filter(|&i| ok(i) && ok(i + 1) && ok(i + 2))
        .map(|i| 1.0 / (sx[i + 1] - sx[i]).abs().max((sx[i + 2] - sx[i]).abs()))
        .collect();
    scales.sort_by(f64::total_cmp);
    let max = *scales.last()?;
    let kept: Vec<f64> = scales.into_iter().filter(|&s| s > max / 10.0).collect();
    (!kept.is_empty()).then(|| kept.iter().sum::<f64>() / kept.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Same-CRS affine map: source pixel = (dst pixel · d + o) / s.
    fn linear(d: f64, ox: f64, oy: f64) -> impl Fn(&[f64], &[f64], &mut [f64], &mut [f64]) {
        move |x, y, sx, sy| {
            for i in 0..x.len() {
                sx[i] = x[i] * d + ox;
                sy[i] = y[i] * d + oy;
            }
        }
    }

    #[test]
    fn resolution_ratio_for_same_crs_grids() {
        // 0.01° → 0.05°, GDAL's arithmetic: geo = 10 + px·0.05, src = (geo − 10)/0.01.
        let map = |x: &[f64], y: &[f64], sx: &mut [f64], sy: &mut [f64]| {
            for i in 0..x.len() {
                sx[i] = -10.0 / 0.01 + (10.0 + x[i] * 0.05) * (1.0 / 0.01);
                sy[i] = -50.0 / -0.01 + (50.0 + y[i] * -0.05) * (1.0 / -0.01);
            }
        };
        assert_eq!(estimate_scale(&map, 100, 80, 500, 400), [0.2, 0.2]);
        assert_eq!(
            estimate_scale(&linear(1.0 / 0.3, 0.0, 0.0), 30, 30, 100, 100),
            [0.3, 0.3]
        );
    }

    #[test]
    fn snapping_and_upsampling() {
        // 1.04 snaps to 1; 1.06 does not.
        assert_eq!(
            estimate_scale(&linear(1.04, 0.0, 0.0), 25, 25, 26, 26),
            [1.0, 1.0]
        );
        let s = estimate_scale(&linear(1.06, 0.0, 0.0), 18, 18, 20, 20);
        assert!((s[0] - 1.0 / 1.06).abs() < 1e-12, "{s:?}");
        // 1/1.96 snaps to 1/2.
        assert_eq!(
            estimate_scale(&linear(1.96, 0.0, 0.0), 10, 10, 20, 20),
            [0.5, 0.5]
        );
        assert_eq!(
            estimate_scale(&linear(1.0 / 3.0, 0.0, 0.0), 15, 15, 5, 5),
            [1.0, 1.0]
        );
    }

    #[test]
    fn window_clipped_to_the_raster() {
        // Target 5 px of 4 source px from −5: covers −5..15 of a 10 px source.
        assert_eq!(
            estimate_scale(&linear(4.0, -5.0, -5.0), 5, 5, 10, 10),
            [0.5, 0.5]
        );
        // Entirely outside, or failing everywhere: GDAL warps nothing.
        assert_eq!(
            estimate_scale(&linear(1.0, 50.0, 0.0), 5, 5, 10, 10),
            [1.0, 1.0]
        );
        let fail = |_: &[f64], _: &[f64], sx: &mut [f64], sy: &mut [f64]| {
            sx.fill(f64::NAN);
            sy.fill(f64::NAN);
        };
        assert_eq!(estimate_scale(&fail, 5, 5, 10, 10), [1.0, 1.0]);
    }
}
