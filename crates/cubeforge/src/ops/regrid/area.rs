//! Area methods (`average`, `mode`, `min`, `max`, `median`, `q1`, `q3`) as
//! GDAL 3.10.3's `GWKAverageOrModeThread` applies them to one target pixel
//! (design §2.3).
//!
//! The footprint is `x = [xmin, xmax)`, `y = [ymin, ymax)` in global source
//! pixel space. GDAL takes it from two transformed corners of the target pixel,
//! `(iDstX, iDstY)` and `(iDstX + 1, iDstY + 1)`, swapped into order (not the
//! bounding box of all four); with `wrap_x` the caller passes `xmax > width`
//! for a footprint that crosses the seam (GDAL adds `nSrcXSize` to it).
//!
//! Rules, each from the GDAL source:
//! - The footprint must meet the raster within 1e-10
//!   (`xmax > -1e-10 && xmin < width + 1e-10`, rows alike), else NaN.
//! - Pixels visited: columns `max(floor(xmin + 1e-10), 0) ..
//!   min(ceil(xmax - 1e-10), width)` (not clamped with `wrap_x`; columns then
//!   taken modulo the width), at least one pixel when inside the raster; rows
//!   alike; row-major order. So an edge on a pixel boundary does not take the
//!   pixel beyond it.
//! - Weights (`COMPUTE_WEIGHT`): `1 - (xmin - first)` for the first column,
//!   `1 - (end - xmax)` for the last, 1 between, 1 for a single column; a
//!   footprint sticking out of the raster gives its edge pixel a weight above
//!   1, as in GDAL. Only `average` uses weights: the order methods and `mode`
//!   count every visited valid pixel once.
//! - `average`: `W += w; m += (w / W)·(v − m)` over valid pixels with `w > 0`.
//! - `mode`: values compared as f32 and the result is the f32 value (GDAL's
//!   `GWKAOM_Fmode` for int32/float types; the uint8/int16 histogram gives the
//!   same for integers); the leader changes only when a count becomes strictly
//!   greater than the leader's (first to reach the maximum wins ties).
//! - `min` / `max`: strict comparison from the first valid value.
//! - `median` / `q1` / `q3`: sorted valid values at index
//!   `ceil(quant·n − 1)`.
//! - No valid pixel: NaN. GDAL's margin test (`nXMargin`: a footprint corner
//!   more than `2·max(1, ceil(1/scale))` pixels outside the source gives no
//!   value) is the caller's (`Regrid::footprint`), which knows the scale.

use super::kernel::{Method, SrcWindow};

const EPS: f64 = 1e-10;

/// The pixels one axis of a footprint visits: `start..end` (end exclusive), or
/// `None` when the footprint misses the raster. `wrap` leaves `end` unclamped.
#[must_use]
pub fn footprint_range(lo: f64, hi: f64, size: i64, wrap: bool) -> Option<(i64, i64)> {
    let (lo, hi) = if lo > hi { (hi, lo) } else { (lo, hi) };
    if !(hi > -EPS && lo < size as f64 + EPS) {
        return None; // also NaN
    }
    let start = (lo + EPS).floor().max(0.0) as i64;
    let mut end = ((hi - EPS).ceil().min(i32::MAX as f64)) as i64;
    if !wrap {
        end = end.min(size);
    }
    if start == end && end < size {
        end += 1;
    }
    Some((start, end))
}

/// GDAL's `COMPUTE_WEIGHT_Y` / `COMPUTE_WEIGHT` for one axis.
#[inline]
fn axis_weight(i: i64, start: i64, end: i64, lo: f64, hi: f64) -> f64 {
    if i == start {
        if start + 1 == end {
            1.0
        } else {
            1.0 - (lo - start as f64)
        }
    } else if i + 1 == end {
        1.0 - (end as f64 - hi)
    } else {
        1.0
    }
}

/// The target value over footprint `x × y`; NaN when no valid pixel.
/// `scratch` holds the values of the order methods and `mode`, reused.
///
/// # Panics
/// On a point method (use `point::point`).
#[must_use]
pub fn area(
    src: &SrcWindow,
    method: Method,
    x: [f64; 2],
    y: [f64; 2],
    scratch: &mut Vec<f64>,
) -> f64 {
    assert!(
        method.is_area(),
        "area() takes an area method, not {method:?}"
    );
    let (xlo, xhi) = if x[0] > x[1] {
        (x[1], x[0])
    } else {
        (x[0], x[1])
    };
    let (ylo, yhi) = if y[0] > y[1] {
        (y[1], y[0])
    } else {
        (y[0], y[1])
    };
    let Some((x0, x1)) = footprint_range(xlo, xhi, src.width, src.wrap_x) else {
        return f64::NAN;
    };
    let Some((y0, y1)) = footprint_range(ylo, yhi, src.height, false) else {
        return f64::NAN;
    };
    let visit = |f: &mut dyn FnMut(f64, i64, i64)| {
        for row in y0..y1 {
            for col in x0..x1 {
                let v = src.get(col, row);
                if !v.is_nan() {
                    f(v, col, row);
                }
            }
        }
    };
    match method {
        Method::Average => average(src, [x0, x1], [y0, y1], [xlo, xhi], [ylo, yhi]),
        Method::Min | Method::Max => {
            // GDAL starts from lowest() / max() and compares strictly.
            let max = method == Method::Max;
            let mut best = if max { f64::MIN } else { f64::MAX };
            let mut found = false;
            visit(&mut |v, _, _| {
                found = true;
                if (max && best < v) || (!max && best > v) {
                    best = v;
                }
            });
            if found {
                best
            } else {
                f64::NAN
            }
        }
        Method::Mode => mode(visit, scratch),
        Method::Median | Method::Q1 | Method::Q3 => {
            scratch.clear();
            visit(&mut |v, _, _| scratch.push(v));
            quantile(method, scratch)
        }
        _ => unreachable!(),
    }
}

/// `average` over the pixels `x0..x1` × `y0..y1` of the footprint `[xlo, xhi) × [ylo, yhi)`:
/// GDAL's weighted incremental mean in row-major order. COMPUTE_WEIGHT(iSrcX, dfWeightY) is the
/// y weight times the x factor (an exact 1.0 between the edges); the x factors are computed once
/// and rows inside the block are read as slices (the same operations, in the same order).
fn average(src: &SrcWindow, x: [i64; 2], y: [i64; 2], xf: [f64; 2], yf: [f64; 2]) -> f64 {
    let [x0, x1] = x;
    let [y0, y1] = y;
    let wx: Vec<f64> = (x0..x1)
        .map(|c| axis_weight(c, x0, x1, xf[0], xf[1]))
        .collect();
    let (mut total, mut mean) = (0.0, 0.0);
    let block_w = src.cols.end - src.cols.start;
    let direct_cols = !src.wrap_x && x0 >= src.cols.start && x1 <= src.cols.end;
    for row in y0..y1 {
        let wy = axis_weight(row, y0, y1, yf[0], yf[1]);
        let mut take = |v: f64, w2: f64| {
            let w = wy * w2;
            if !v.is_nan() && w > 0.0 {
                total += w;
                mean += (w / total) * (v - mean);
            }
        };
        if direct_cols && src.rows.contains(&row) {
            #[allow(clippy::cast_sign_loss, clippy::cast_possible_truncation)]
            let at = ((row - src.rows.start) * block_w + (x0 - src.cols.start)) as usize;
            for (v, w2) in src.values[at..at + wx.len()].iter().zip(&wx) {
                take(*v, *w2);
            }
        } else {
            for (col, w2) in (x0..x1).zip(&wx) {
                take(src.get(col, row), *w2);
            }
        }
    }
    if total > 0.0 {
        mean
    } else {
        f64::NAN
    }
}

/// GDAL's running mode, in O(n log n): the leader changes only when a count
/// becomes strictly greater than the leader's, so the final leader is the value
/// whose final count `M` is the largest and whose `M`-th occurrence comes first.
/// Values compare as f32 (`0.0 == -0.0`) and the result is the value as first
/// seen. `scratch` holds one sortable key per valid pixel (see `mode_key`).
fn mode(visit: impl Fn(&mut dyn FnMut(f64, i64, i64)), scratch: &mut Vec<f64>) -> f64 {
    scratch.clear();
    let mut n: u64 = 0;
    visit(&mut |v, _, _| {
        scratch.push(f64::from_bits(mode_key(v as f32, n)));
        n += 1;
    });
    scratch.sort_unstable_by_key(|k| k.to_bits());
    // (index of the M-th occurrence, count M, first-seen value) of the leader.
    let mut best: Option<(u64, usize, f32)> = None;
    let mut start = 0;
    while start < scratch.len() {
        let group = scratch[start].to_bits() >> 32;
        let end = start
            + scratch[start..]
                .iter()
                .take_while(|k| k.to_bits() >> 32 == group)
                .count();
        let (first, last) = (scratch[start].to_bits(), scratch[end - 1].to_bits());
        let (count, reached) = (end - start, last & 0x7fff_ffff);
        if best.is_none_or(|(r, c, _)| count > c || (count == c && reached < r)) {
            best = Some((reached, count, key_value(first)));
        }
        start = end;
    }
    best.map_or(f64::NAN, |(_, _, v)| f64::from(v))
}

/// A u64 that sorts by f32 value (`-0.0` with `0.0`), then by visiting order
/// `n`: the order-preserving f32 bits, a `-0.0` flag, and 31 bits of `n`.
fn mode_key(v: f32, n: u64) -> u64 {
    let neg_zero = v == 0.0 && v.is_sign_negative();
    let bits = if neg_zero { 0 } else { v.to_bits() };
    let ord = if bits >> 31 == 1 {
        !bits
    } else {
        bits | 0x8000_0000
    };
    (u64::from(ord) << 32) | (u64::from(neg_zero) << 31) | (n & 0x7fff_ffff)
}

/// The f32 value of a `mode_key`.
fn key_value(key: u64) -> f32 {
    let ord = (key >> 32) as u32;
    let bits = if ord >> 31 == 1 {
        ord & 0x7fff_ffff
    } else {
        !ord
    };
    if key >> 31 & 1 == 1 {
        -0.0
    } else {
        f32::from_bits(bits)
    }
}

/// `median` / `q1` / `q3`: the sorted values at `ceil(quant·n − 1)`.
fn quantile(method: Method, values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let quant: f32 = match method {
        Method::Q1 => 0.25,
        Method::Q3 => 0.75,
        _ => 0.5,
    };
    values.sort_by(f64::total_cmp);
    // GDAL: `float quant`, `static_cast<int>(std::ceil(quant * size - 1))`,
    // the product in float (size_t converted to float).
    let idx = (quant * values.len() as f32 - 1.0).ceil() as usize;
    values[idx]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(values: &[f64], wrap: bool) -> SrcWindow<'_> {
        let w = values.len() as i64;
        SrcWindow {
            values,
            rows: 0..1,
            cols: 0..w,
            width: w,
            height: 1,
            wrap_x: wrap,
        }
    }

    fn at(values: &[f64], m: Method, x: [f64; 2], wrap: bool) -> f64 {
        area(&row(values, wrap), m, x, [0.0, 1.0], &mut Vec::new())
    }

    #[test]
    fn edges_on_pixel_boundaries_take_no_extra_pixel() {
        assert_eq!(footprint_range(1.0, 2.0, 4, false), Some((1, 2)));
        assert_eq!(
            footprint_range(1.0 + 1e-11, 2.0 - 1e-11, 4, false),
            Some((1, 2))
        );
        assert_eq!(footprint_range(0.9, 2.1, 4, false), Some((0, 3)));
        // A zero-width footprint takes the pixel it sits in.
        assert_eq!(footprint_range(2.0, 2.0, 4, false), Some((2, 3)));
        // Outside (within 1e-10 counts as touching).
        assert_eq!(footprint_range(4.0, 5.0, 4, false), Some((4, 4)));
        assert_eq!(footprint_range(4.1, 5.0, 4, false), None);
        assert_eq!(footprint_range(-2.0, -0.5, 4, false), None);
        assert_eq!(footprint_range(f64::NAN, 1.0, 4, false), None);
        assert_eq!(footprint_range(3.5, 4.5, 4, true), Some((3, 5)));
        let v = [7.0, 3.0, 7.0, 3.0];
        assert_eq!(at(&v, Method::Max, [1.0, 2.0], false), 3.0);
        assert!(at(&v, Method::Average, [4.0, 5.0], false).is_nan());
    }

    #[test]
    fn average_weights_and_edge_overhang() {
        let v = [7.0, 3.0, 7.0, 3.0];
        assert_eq!(
            at(&v, Method::Average, [0.9, 2.1], false),
            3.666666666666667
        );
        // Sticking out on the left gives pixel 0 a weight of 1.5 (GDAL).
        assert_eq!(at(&[10.0, 20.0], Method::Average, [-0.5, 1.5], false), 12.5);
    }

    #[test]
    fn order_methods_count_every_overlapped_pixel_once() {
        let v = [7.0, 3.0, 7.0, 3.0];
        for m in [Method::Mode, Method::Median, Method::Max] {
            assert_eq!(at(&v, m, [0.9, 2.1], false), 7.0, "{m:?}");
        }
        assert_eq!(at(&v, Method::Min, [0.9, 2.1], false), 3.0);
        let q = [1.0, 2.0, 3.0, 10.0];
        assert_eq!(at(&q, Method::Median, [0.0, 4.0], false), 2.0);
        let q: Vec<f64> = (1..=15).map(f64::from).collect();
        assert_eq!(at(&q, Method::Median, [0.0, 15.0], false), 8.0);
        assert_eq!(at(&q, Method::Q1, [0.0, 15.0], false), 4.0);
        assert_eq!(at(&q, Method::Q3, [0.0, 15.0], false), 12.0);
    }

    /// GDAL's own loop (`GWKAOM_Fmode`): entries in order of appearance, a
    /// strictly greater count takes the lead.
    fn mode_reference(values: &[f64]) -> f64 {
        let (mut vals, mut counts): (Vec<f32>, Vec<u32>) = (Vec::new(), Vec::new());
        let mut leader: Option<usize> = None;
        for &v in values.iter().filter(|v| !v.is_nan()) {
            let v = v as f32;
            let k = vals.iter().position(|&x| x == v).unwrap_or_else(|| {
                vals.push(v);
                counts.push(0);
                vals.len() - 1
            });
            counts[k] += 1;
            if leader.is_none_or(|l| counts[k] > counts[l]) {
                leader = Some(k);
            }
        }
        leader.map_or(f64::NAN, |l| f64::from(vals[l]))
    }

    proptest::proptest! {
        #[test]
        fn mode_equals_gdal_loop(raw in proptest::collection::vec(-3i32..4, 0..40), shift in 0u8..3) {
            let values: Vec<f64> = raw
                .iter()
                .map(|&r| match (r, shift) {
                    (3, _) => f64::NAN,
                    (0, 1) => -0.0,
                    (r, 2) => f64::from(r) * 0.1 + 1e-12,
                    (r, _) => f64::from(r),
                })
                .collect();
            let got = at(&values, Method::Mode, [0.0, values.len() as f64], false);
            let want = mode_reference(&values);
            proptest::prop_assert!(got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()),
                "{values:?}: {got} vs {want}");
        }
    }

    #[test]
    fn mode_ties_go_to_the_first_to_reach_the_maximum() {
        assert_eq!(
            at(&[7.0, 9.0, 9.0, 7.0], Method::Mode, [0.0, 4.0], false),
            9.0
        );
        assert_eq!(
            at(&[9.0, 7.0, 7.0, 9.0], Method::Mode, [0.0, 4.0], false),
            7.0
        );
        assert_eq!(at(&[1.0, 5.0, 2.0], Method::Mode, [0.25, 2.75], false), 1.0);
        // Values compared and returned as f32 (GDAL's GWKAOM_Fmode).
        let v = [0.1, 0.1 + 1e-12, 0.3];
        assert_eq!(at(&v, Method::Mode, [0.0, 3.0], false), 0.1f32 as f64);
    }

    #[test]
    fn invalid_pixels_never_count() {
        let v = [f64::NAN, 4.0, f64::NAN];
        for m in [
            Method::Average,
            Method::Mode,
            Method::Min,
            Method::Max,
            Method::Median,
            Method::Q1,
            Method::Q3,
        ] {
            assert_eq!(at(&v, m, [0.0, 3.0], false), 4.0, "{m:?}");
            assert!(at(&v, m, [0.0, 1.0], false).is_nan(), "{m:?}");
        }
    }

    #[test]
    fn wrap_x_reads_across_the_seam() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(at(&v, Method::Average, [3.5, 4.5], true), 2.5);
        assert_eq!(at(&v, Method::Min, [3.5, 4.5], true), 1.0);
        // Without wrap the end is clamped: pixel 3 alone.
        assert_eq!(at(&v, Method::Average, [3.5, 4.5], false), 4.0);
    }
}
