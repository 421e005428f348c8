//! Point methods (`nearest`, `bilinear`, `cubic`) as GDAL 3.10.3's
//! `GWKRealCaseThread` applies them to one target pixel (design §2.2).
//!
//! `(sx, sy)` is the target pixel's centre mapped into global source pixel
//! space; `scale` is GDAL's `[XSCALE, YSCALE]` (target pixels per source pixel,
//! `scale::estimate_scale`). Rules, each from the GDAL source:
//! - The centre pixel (`GWKCheckAndComputeSrcOffsets`) is
//!   `floor(s + 1e-10)` (a position within 1e-10 of the raster's far edge is
//!   the last pixel); `s < 0`, `s + 1e-10 > size` or NaN give NaN, and so does
//!   an invalid (NaN) centre pixel, for all three methods.
//! - `nearest`, and any method on a source one pixel wide or high, return the
//!   centre pixel.
//! - With both scales `>= 0.95` bilinear uses `GWKBilinearResample4Sample` and
//!   cubic `GWKCubicResample4Sample` (which falls back to the bilinear one
//!   where its 4×4 taps leave the raster or hold an invalid pixel).
//! - Otherwise both use `GWKResample`: the filter (`GWKBilinear`,
//!   `GWKCubic`) at `(i - δ)·scale` over `R = ceil(r / scale)` pixels, with
//!   invalid pixels skipped and the weights renormalised.
//!
//! Pixels read: see `kernel::reach`. On a source spanning 360° (`wrap_x`)
//! columns wrap across its seam and are never clamped or clipped, as if the
//! source were rolled to sit under the target (GDAL 3.10 clamps there, which
//! makes a seam inside the target an edge).

use super::kernel::{filter_radius_scaled, use_4_samples, Method, SrcWindow};

/// `GWKCheckAndComputeSrcOffsets`' tolerance on the far edge.
const EDGE_EPS: f64 = 1e-10;

/// The target value at source position `(sx, sy)`; NaN when there is none.
///
/// # Panics
/// On an area method (use `area::area`).
#[must_use]
pub fn point(src: &SrcWindow, method: Method, sx: f64, sy: f64, scale: [f64; 2]) -> f64 {
    assert!(
        !method.is_area(),
        "point() takes nearest, bilinear or cubic, not {method:?}"
    );
    let Some((ix, iy)) = centre_pixel(src, sx, sy) else {
        return f64::NAN;
    };
    let centre = src.get(ix, iy);
    if centre.is_nan() {
        return f64::NAN;
    }
    if method == Method::Nearest || src.width == 1 || src.height == 1 {
        return centre;
    }
    match (method, use_4_samples(scale)) {
        (Method::Bilinear, true) => bilinear4(src, sx, sy),
        (Method::Cubic, true) => cubic4(src, sx, sy),
        _ => stretched(src, method, sx, sy, scale),
    }
}

/// The source pixel holding position `(sx, sy)` as GDAL picks it, or `None`
/// when the position is outside the raster (or NaN).
#[must_use]
pub fn centre_pixel(src: &SrcWindow, sx: f64, sy: f64) -> Option<(i64, i64)> {
    let (w, h) = (src.width as f64, src.height as f64);
    let outside = |s: f64, size: f64| s.is_nan() || s < 0.0 || s + EDGE_EPS > size;
    if (if src.wrap_x {
        sx.is_nan()
    } else {
        outside(sx, w)
    }) || outside(sy, h)
    {
        return None;
    }
    let ix = if src.wrap_x {
        (sx + EDGE_EPS).floor() as i64
    } else {
        ((sx + EDGE_EPS) as i64).min(src.width - 1)
    };
    let iy = ((sy + EDGE_EPS) as i64).min(src.height - 1);
    Some((ix, iy))
}

/// The columns (or rows: pass that axis' position and scale) `point` may
/// read for position `s`, inclusive and before clipping to the raster: the
/// centre pixel `floor(s + 1e-10)` and the method's taps. Always within
/// `floor(s) - h ..= floor(s) + h`, `h = kernel::reach(..)` on that axis.
/// `None` for `s < 0` or NaN, where `point` reads nothing. Point methods only.
#[must_use]
pub fn point_span(method: Method, scale: [f64; 2], axis: usize, s: f64) -> Option<(i64, i64)> {
    if s.is_nan() || s < 0.0 {
        return None;
    }
    let c = (s + EDGE_EPS).floor() as i64;
    let i0 = (s - 0.5).floor() as i64;
    let (lo, hi) = match method {
        Method::Nearest => (c, c),
        _ if use_4_samples(scale) => {
            // bilinear4 (also cubic's fallback): i0 (−1 → 0) and the next one,
            // read even at weight 0.
            let (mut lo, hi) = (i0.max(0), i0.max(0) + 1);
            if method == Method::Cubic {
                let t = (s - 0.5) as i64;
                lo = lo.min(t - 1);
                return Some((lo.min(c), (t + 2).max(hi).max(c)));
            }
            (lo, hi)
        }
        _ => {
            let big_r = filter_radius_scaled(method, scale[axis]);
            (i0 + (method.filter_radius() + 1) % 2 - big_r, i0 + big_r)
        }
    };
    Some((lo.min(c), hi.max(c)))
}

/// A valid pixel's value inside the raster, else `None`.
#[inline]
fn valid(src: &SrcWindow, col: i64, row: i64) -> Option<f64> {
    if (!src.wrap_x && (col < 0 || col >= src.width)) || row < 0 || row >= src.height {
        return None;
    }
    let v = src.get(col, row);
    (!v.is_nan()).then_some(v)
}

/// `GWKBilinearResample4Sample`: the 2×2 taps around `(sx, sy)`, weights of
/// the taps inside the raster and valid, renormalised (`Σw < 1e-5` → NaN).
#[must_use]
pub fn bilinear4(src: &SrcWindow, sx: f64, sy: f64) -> f64 {
    let mut isx = (sx - 0.5).floor() as i64;
    let mut isy = (sy - 0.5).floor() as i64;
    let mut rx = 1.5 - (sx - isx as f64);
    let mut ry = 1.5 - (sy - isy as f64);
    if isx == -1 && !src.wrap_x {
        isx = 0;
        rx = 1.0;
    }
    if isy == -1 {
        isy = 0;
        ry = 1.0;
    }
    let mut acc = 0.0;
    let mut div = 0.0;
    // GDAL's order: upper left, upper right, lower left, lower right.
    let taps = [
        (isx, isy, rx * ry),
        (isx + 1, isy, (1.0 - rx) * ry),
        (isx, isy + 1, rx * (1.0 - ry)),
        (isx + 1, isy + 1, (1.0 - rx) * (1.0 - ry)),
    ];
    for (col, row, m) in taps {
        if let Some(v) = valid(src, col, row) {
            div += m;
            acc += v * m;
        }
    }
    if div == 1.0 {
        acc
    } else if div < 0.00001 {
        f64::NAN
    } else {
        acc / div
    }
}

/// `GWKCubicComputeWeights`: Keys' cubic convolution (a = −0.5) at offset `x`
/// in [0, 1) from the second tap, in GDAL's operation order.
#[must_use]
#[inline]
pub fn cubic_weights(x: f64) -> [f64; 4] {
    let half_x = 0.5 * x;
    let three_x = 3.0 * x;
    let half_x2 = half_x * x;
    [
        half_x * (-1.0 + x * (2.0 - x)),
        1.0 + half_x2 * (-5.0 + three_x),
        half_x * (1.0 + x * (4.0 - three_x)),
        half_x2 * (-1.0 + x),
    ]
}

/// GDAL's `CONVOL4`, left to right.
#[inline]
fn convol4(a: &[f64; 4], b: &[f64; 4]) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2] + a[3] * b[3]
}

/// `GWKCubicResample4Sample`: the 4×4 taps, or `bilinear4` when they leave
/// the raster or any of them is invalid. Not renormalised.
#[must_use]
pub fn cubic4(src: &SrcWindow, sx: f64, sy: f64) -> f64 {
    // GDAL truncates here (`static_cast<int>`), where bilinear floors; for
    // s in [0, 0.5) both end in the bilinear fallback.
    let isx = if src.wrap_x {
        (sx - 0.5).floor() as i64
    } else {
        (sx - 0.5) as i64
    };
    let isy = (sy - 0.5) as i64;
    let dx = sx - 0.5 - isx as f64;
    let dy = sy - 0.5 - isy as f64;
    let x_out = !src.wrap_x && (isx - 1 < 0 || isx + 2 >= src.width);
    if x_out || isy - 1 < 0 || isy + 2 >= src.height {
        return bilinear4(src, sx, sy);
    }
    let cx = cubic_weights(dx);
    let mut rows = [0.0; 4];
    for (k, row) in (isy - 1..=isy + 2).enumerate() {
        let mut v = [0.0; 4];
        for (m, col) in (isx - 1..=isx + 2).enumerate() {
            v[m] = src.get(col, row);
            if v[m].is_nan() {
                return bilinear4(src, sx, sy);
            }
        }
        rows[k] = convol4(&cx, &v);
    }
    convol4(&cubic_weights(dy), &rows)
}

/// `GWKBilinear`: the triangle filter.
#[inline]
fn tri(x: f64) -> f64 {
    let a = x.abs();
    if a <= 1.0 {
        1.0 - a
    } else {
        0.0
    }
}

/// `CubicKernel` (`alg/gdalresamplingkernels.h`), Catmull-Rom.
#[must_use]
#[inline]
pub fn cubic_kernel(x: f64) -> f64 {
    let a = x.abs();
    if a <= 1.0 {
        let x2 = x * x;
        x2 * (1.5 * a - 2.5) + 1.0
    } else if a <= 2.0 {
        let x2 = x * x;
        x2 * (-0.5 * a + 2.5) - 4.0 * a + 2.0
    } else {
        0.0
    }
}

/// One axis of `GWKResample`: the first and last tap offsets (relative to
/// `floor(s - 0.5)`) inside the raster, and the filter argument's scale.
fn taps(method: Method, i0: i64, size: i64, scale: f64) -> (i64, i64, Option<f64>) {
    let r = method.filter_radius();
    let big_r = filter_radius_scaled(method, scale);
    let mut lo = (r + 1) % 2 - big_r; // nFiltInitX
    let mut hi = big_r;
    if i0 + lo < 0 && size < i64::MAX / 4 {
        lo = -i0;
    }
    if i0 + hi >= size {
        hi = size - i0 - 1;
    }
    (lo, hi, (scale < 1.0).then_some(scale))
}

/// `GWKResample` for bilinear and cubic: the (stretched, when a scale is
/// below 1) separable filter over the valid pixels, renormalised unless the
/// weights sum to 1 within 1e-5; `Σw < 1e-6` gives NaN.
#[must_use]
pub fn stretched(src: &SrcWindow, method: Method, sx: f64, sy: f64, scale: [f64; 2]) -> f64 {
    let f: fn(f64) -> f64 = if method == Method::Cubic {
        cubic_kernel
    } else {
        tri
    };
    let isx = (sx - 0.5).floor() as i64;
    let isy = (sy - 0.5).floor() as i64;
    let dx = sx - 0.5 - isx as f64;
    let dy = sy - 0.5 - isy as f64;
    let width = if src.wrap_x { i64::MAX / 4 } else { src.width };
    let (i_lo, i_hi, x_scale) = taps(method, isx, width, scale[0]);
    let (j_lo, j_hi, y_scale) = taps(method, isy, src.height, scale[1]);
    let weight = |t: f64, s: Option<f64>| match s {
        Some(s) => f(t * s),
        None => f(t),
    };
    // The weights of each axis once (GDAL recomputes the x weights for every row; the values
    // are the same), then GDAL's order of operations: per row, Σ v·w2 and Σ w2 over the valid
    // pixels, then Σ row·w1.
    let wx: Vec<f64> = (i_lo..=i_hi)
        .map(|i| weight(i as f64 - dx, x_scale))
        .collect();
    let mut acc = 0.0;
    let mut acc_w = 0.0;
    let block_w = src.cols.end - src.cols.start;
    let direct = !src.wrap_x
        && isx + i_lo >= src.cols.start
        && isx + i_hi < src.cols.end
        && isy + j_lo >= src.rows.start
        && isy + j_hi < src.rows.end;
    for j in j_lo..=j_hi {
        let w1 = weight(j as f64 - dy, y_scale);
        let mut row_acc = 0.0;
        let mut row_w = 0.0;
        if direct {
            let at =
                ((isy + j - src.rows.start) * block_w + (isx + i_lo - src.cols.start)) as usize;
            let row = &src.values[at..at + wx.len()];
            for (v, w2) in row.iter().zip(&wx) {
                if v.is_nan() {
                    continue;
                }
                row_acc += v * w2;
                row_w += w2;
            }
        } else {
            for (i, w2) in (i_lo..=i_hi).zip(&wx) {
                let v = src.get(isx + i, isy + j);
                if v.is_nan() {
                    continue;
                }
                row_acc += v * w2;
                row_w += w2;
            }
        }
        acc += row_acc * w1;
        acc_w += row_w * w1;
    }
    if acc_w < 0.000001 {
        f64::NAN
    } else if !(0.99999..=1.00001).contains(&acc_w) {
        acc / acc_w
    } else {
        acc
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn win(values: &[f64], h: i64, w: i64) -> SrcWindow<'_> {
        SrcWindow {
            values,
            rows: 0..h,
            cols: 0..w,
            width: w,
            height: h,
            wrap_x: false,
        }
    }

    #[test]
    fn centre_pixel_follows_gdal_edges() {
        let v = vec![0.0; 20];
        let s = win(&v, 4, 5);
        assert_eq!(centre_pixel(&s, 0.0, 0.0), Some((0, 0)));
        // Within 1e-10 below a boundary: the pixel after it.
        assert_eq!(centre_pixel(&s, 3.0 - 1e-11, 1.5), Some((3, 1)));
        // Within 1e-10 of the far edge: outside; below that: the last pixel.
        assert_eq!(centre_pixel(&s, 5.0 - 1e-11, 1.5), None);
        assert_eq!(centre_pixel(&s, 5.0 - 1e-9, 1.5), Some((4, 1)));
        assert_eq!(centre_pixel(&s, -1e-300, 1.0), None);
        assert_eq!(centre_pixel(&s, f64::NAN, 1.0), None);
    }

    #[test]
    fn invalid_centre_is_nan_for_every_point_method() {
        let mut v: Vec<f64> = (0..16).map(f64::from).collect();
        v[5] = f64::NAN;
        let s = win(&v, 4, 4);
        for m in [Method::Nearest, Method::Bilinear, Method::Cubic] {
            assert!(point(&s, m, 1.5, 1.5, [1.0, 1.0]).is_nan());
            assert!(point(&s, m, 1.99, 1.01, [0.5, 0.5]).is_nan());
            assert!(!point(&s, m, 2.0, 2.0, [1.0, 1.0]).is_nan());
        }
    }

    #[test]
    fn bilinear_clamps_half_a_pixel_from_the_edge() {
        let v: Vec<f64> = (0..16).map(|i| f64::from(i % 4) * 10.0).collect();
        let s = win(&v, 4, 4);
        // iSrcX = -1 becomes 0 with ratio 1: the edge column alone.
        assert_eq!(bilinear4(&s, 0.25, 2.0), 0.0);
        assert_eq!(bilinear4(&s, 3.9, 2.0), 30.0);
        assert_eq!(bilinear4(&s, 1.75, 2.0), 12.5);
    }

    #[test]
    fn one_row_or_column_is_nearest() {
        let v = [10.0, 20.0, 30.0, 40.0];
        let s = win(&v, 1, 4);
        assert_eq!(point(&s, Method::Bilinear, 1.49, 0.5, [1.0, 1.0]), 20.0);
        assert_eq!(point(&s, Method::Cubic, 2.01, 0.5, [1.0, 1.0]), 30.0);
    }

    /// Table 2.6 numbers straight through the kernel: `arange(16)**2`, 4×4 →
    /// 2×2 (scale 0.5, stretched), and the ÷2 upsampling of `[[1,2],[3,NaN]]`.
    #[test]
    fn table_2_6_through_the_kernel() {
        let v: Vec<f64> = (0..16).map(|i| f64::from(i * i)).collect();
        let s = win(&v, 4, 4);
        let got = [(1.0, 1.0), (3.0, 1.0), (1.0, 3.0), (3.0, 3.0)]
            .map(|(x, y)| point(&s, Method::Bilinear, x, y, [0.5, 0.5]));
        assert_eq!(
            got,
            [
                21.081632653061224,
                34.775510204081634,
                105.48979591836735,
                138.9387755102041
            ]
        );
        let v = [1.0, 2.0, 3.0, f64::NAN];
        let s = win(&v, 2, 2);
        for m in [Method::Bilinear, Method::Cubic] {
            assert_eq!(point(&s, m, 0.75, 0.75, [2.0, 2.0]), 1.6);
            assert_eq!(point(&s, m, 1.25, 0.75, [2.0, 2.0]), 1.8461538461538463);
            assert!(point(&s, m, 1.25, 1.25, [2.0, 2.0]).is_nan());
        }
    }

    #[test]
    fn cubic_weights_are_the_catmull_rom_kernel() {
        for x in [0.0, 0.1, 0.25, 0.5, 0.9] {
            let w = cubic_weights(x);
            let k = [1.0 + x, x, 1.0 - x, 2.0 - x].map(cubic_kernel);
            for i in 0..4 {
                assert!((w[i] - k[i]).abs() < 1e-15, "{x} {i}");
            }
            assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-15);
        }
    }

    #[test]
    fn stretched_skips_invalid_and_renormalises() {
        let mut v = vec![1.0; 64];
        v[9] = f64::NAN;
        v[10] = 5.0;
        let s = win(&v, 8, 8);
        let r = point(&s, Method::Bilinear, 2.5, 1.5, [0.25, 0.25]);
        assert!(r > 1.0 && r < 5.0);
        // All taps but the centre invalid: the centre alone.
        let mut v = vec![f64::NAN; 64];
        v[2 * 8 + 2] = 7.0;
        let s = win(&v, 8, 8);
        assert_eq!(point(&s, Method::Cubic, 2.5, 2.5, [0.5, 0.5]), 7.0);
    }
}
