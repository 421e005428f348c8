//! Shared types of the regrid kernels: the source block a kernel reads, the
//! resampling methods, and the halo (`reach`) a caller adds to a window.
//!
//! The kernels reproduce GDAL 3.10.3's warp kernel (`alg/gdalwarpkernel.cpp`,
//! the version rasterio 1.4.4 ships; design `regrid.md` §2). Values are f64 and
//! NaN is "invalid" (the caller maps integer fill values to NaN before and back
//! after). Positions are in global source pixel space: pixel `(i, j)` covers
//! `[i, i+1) × [j, j+1)`.

use std::ops::Range;

/// A block of the source raster, as decoded for one target window.
#[derive(Clone, Debug)]
pub struct SrcWindow<'a> {
    /// Row-major block of the source, `rows.len() × cols.len()`; NaN = invalid.
    pub values: &'a [f64],
    /// The global source rows the block holds.
    pub rows: Range<i64>,
    /// The global source columns the block holds.
    pub cols: Range<i64>,
    /// Width of the whole source raster.
    pub width: i64,
    /// Height of the whole source raster.
    pub height: i64,
    /// The source spans 360°: columns wrap modulo `width` (GDAL `bWrapOverX`).
    /// Only the area methods use it (GDAL 3.10's point kernels never wrap);
    /// the caller then gives the whole width (`cols = 0..width`).
    pub wrap_x: bool,
}

impl SrcWindow<'_> {
    /// The value of global source pixel `(col, row)`: NaN outside the raster
    /// (after wrapping the column when `wrap_x`).
    ///
    /// # Panics
    /// When the pixel is inside the raster but outside the block: the caller's
    /// window is too small, which is a bug in the caller's `reach` arithmetic
    /// (the kernels read only what the module docs promise).
    #[inline]
    #[must_use]
    pub fn get(&self, col: i64, row: i64) -> f64 {
        let col = if self.wrap_x && self.width > 0 {
            col.rem_euclid(self.width)
        } else {
            col
        };
        if col < 0 || col >= self.width || row < 0 || row >= self.height {
            return f64::NAN;
        }
        debug_assert!(
            self.cols.contains(&col) && self.rows.contains(&row),
            "source pixel ({col}, {row}) is outside the block ({:?}, {:?})",
            self.cols,
            self.rows
        );
        // Outside the block in a release build (a window the caller got wrong): no value
        // rather than a crash; the proptests hold the kernels to their reach.
        if !self.cols.contains(&col) || !self.rows.contains(&row) {
            return f64::NAN;
        }
        let w = self.cols.end - self.cols.start;
        self.values[((row - self.rows.start) * w + (col - self.cols.start)) as usize]
    }
}

/// The `gdalwarp -r` methods, as recipes name them.
pub use crate::recipe::Method;

impl Method {
    /// Area methods take a footprint (`area::area`); the others a point
    /// (`point::point`).
    #[must_use]
    pub fn is_area(self) -> bool {
        !matches!(self, Method::Nearest | Method::Bilinear | Method::Cubic)
    }

    /// GDAL's filter radius (`anGWKFilterRadius`): 0 nearest, 1 bilinear,
    /// 2 cubic; 0 for the area methods.
    #[must_use]
    pub fn filter_radius(self) -> i64 {
        match self {
            Method::Bilinear => 1,
            Method::Cubic => 2,
            _ => 0,
        }
    }
}

/// GDAL 3.10's `bUse4SamplesFormula`: the plain 4-sample bilinear / 4×4 cubic
/// formulas apply when both scales are at least 0.95; otherwise the stretched
/// general filter (`GWKResample`) does.
#[must_use]
pub fn use_4_samples(scale: [f64; 2]) -> bool {
    scale[0] >= 0.95 && scale[1] >= 0.95
}

/// GDAL's stretched kernel radius per axis (`nXRadius`): `ceil(r / scale)`
/// when `scale < 1`, else `r`.
#[must_use]
pub fn filter_radius_scaled(method: Method, scale: f64) -> i64 {
    let r = method.filter_radius();
    if scale < 1.0 {
        (r as f64 / scale).ceil() as i64
    } else {
        r
    }
}

/// The halo, in source pixels per axis `[x, y]`, around what a target pixel
/// maps to, that the kernel may read.
///
/// - Point methods at `(sx, sy)`: every pixel read lies in
///   `floor(s) - h ..= floor(s) + h` per axis (`h` this value), clipped to the
///   raster (`point::point_span` gives the exact span). Nearest: 1, as the
///   centre pixel is `floor(s + 1e-10)`, which is `floor(s) + 1` within 1e-10
///   below an integer (it never reads below `floor(s)`). 4-sample bilinear (`use_4_samples`): 1
///   (`floor(s - 0.5) ..= floor(s - 0.5) + 1`). 4×4 cubic: 2
///   (`floor(s - 0.5) - 1 ..= floor(s - 0.5) + 2`). Stretched (`GWKResample`):
///   `R + 1`, `R = filter_radius_scaled` (columns `floor(s - 0.5) + f ..=
///   floor(s - 0.5) + R`, `f = (r + 1) % 2 - R`, GDAL's `nFiltInitX`).
/// - Area methods: 0 — a footprint `[xmin, xmax) × [ymin, ymax)` reads
///   `floor(xmin) ..= ceil(xmax) - 1` (and rows alike), clipped to the raster
///   (columns modulo the width with `wrap_x`); see `area::footprint_range`.
#[must_use]
pub fn reach(method: Method, scale: [f64; 2]) -> [i64; 2] {
    match method {
        Method::Nearest => [1, 1],
        Method::Bilinear | Method::Cubic => {
            if use_4_samples(scale) {
                let h = method.filter_radius();
                [h, h]
            } else {
                // The 4-sample bilinear fallback of cubic needs 1 < R + 1.
                [
                    filter_radius_scaled(method, scale[0]) + 1,
                    filter_radius_scaled(method, scale[1]) + 1,
                ]
            }
        }
        _ => [0, 0],
    }
}

#[cfg(test)]
mod tests {
    use super::super::area::{area, footprint_range};
    use super::super::point::{point, point_span};
    use super::*;
    use proptest::prelude::*;

    const METHODS: [Method; 10] = [
        Method::Nearest,
        Method::Bilinear,
        Method::Cubic,
        Method::Average,
        Method::Mode,
        Method::Min,
        Method::Max,
        Method::Median,
        Method::Q1,
        Method::Q3,
    ];

    fn values(n: usize, mut seed: u64, nan_pct: u64) -> Vec<f64> {
        (0..n)
            .map(|_| {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let r = seed >> 33;
                if r % 100 < nan_pct {
                    f64::NAN
                } else {
                    (r % 50) as f64 / 4.0
                }
            })
            .collect()
    }

    /// The block of `full` over `cols × rows` (inclusive, clipped).
    fn block(
        full: &SrcWindow,
        cols: (i64, i64),
        rows: (i64, i64),
    ) -> (Vec<f64>, Range<i64>, Range<i64>) {
        let c = cols.0.max(0)..(cols.1 + 1).min(full.width).max(cols.0.max(0));
        let r = rows.0.max(0)..(rows.1 + 1).min(full.height).max(rows.0.max(0));
        let mut v = Vec::new();
        for row in r.clone() {
            for col in c.clone() {
                v.push(full.get(col, row));
            }
        }
        (v, c, r)
    }

    fn same(a: f64, b: f64) -> bool {
        a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]
        /// Every pixel a kernel reads lies within the window `reach` (points)
        /// or `footprint_range` (areas) promises: the kernel on a block of
        /// just that window (`get` panics outside it) gives the same bits.
        #[test]
        fn kernels_read_only_the_promised_window(
            h in 1i64..9, w in 1i64..12, seed: u64, nan_pct in 0u64..60,
            m in 0usize..10, sx in -3.0f64..15.0, sy in -3.0f64..12.0,
            snap in 0u8..4, len in (0.0f64..7.0, 0.0f64..7.0), wrap: bool,
            scale in (prop::sample::select(vec![0.1, 0.3, 0.5, 0.94, 0.95, 1.0, 3.0]),
                      prop::sample::select(vec![0.1, 0.3, 0.5, 0.94, 0.95, 1.0, 3.0])),
        ) {
            let method = METHODS[m];
            let scale = [scale.0, scale.1];
            // Positions on, or within 1e-10 below, pixel boundaries.
            let (sx, sy) = match snap {
                0 => (sx, sy),
                1 => (sx.round(), sy.round()),
                2 => (sx.round() - 1e-11, sy.round() - 1e-11),
                _ => (sx.round() + 0.5, sy.round() + 0.5),
            };
            let vals = values((h * w) as usize, seed, nan_pct);
            let full = SrcWindow { values: &vals, rows: 0..h, cols: 0..w, width: w, height: h, wrap_x: wrap };
            let mut scratch = Vec::new();
            if method.is_area() {
                let (x, y) = ([sx, sx + len.0], [sy, sy + len.1]);
                let want = area(&full, method, x, y, &mut scratch);
                let cols = match footprint_range(x[0], x[1], w, wrap) {
                    None => (0, -1),
                    Some(_) if wrap => (0, w - 1),
                    Some((a, b)) => (a, b - 1),
                };
                let rows = footprint_range(y[0], y[1], h, false).map_or((0, -1), |(a, b)| (a, b - 1));
                let (v, c, r) = block(&full, cols, rows);
                let part = SrcWindow { values: &v, rows: r, cols: c, ..full.clone() };
                prop_assert!(same(area(&part, method, x, y, &mut scratch), want));
            } else {
                let want = point(&full, method, sx, sy, scale);
                let (spx, spy) = (point_span(method, scale, 0, sx), point_span(method, scale, 1, sy));
                let hr = reach(method, scale);
                let (fx, fy) = (sx.floor() as i64, sy.floor() as i64);
                let within = |sp: Option<(i64, i64)>, f: i64, h: i64| sp.is_none_or(|(a, b)| f - h <= a && b <= f + h);
                // Columns of a source spanning 360° wrap: the caller gives the whole width.
                prop_assert!(wrap || within(spx, fx, hr[0]), "x span {spx:?} reach {hr:?} at {sx}");
                prop_assert!(within(spy, fy, hr[1]), "y span {spy:?} reach {hr:?} at {sy}");
                let cols = if wrap { (0, w - 1) } else { spx.unwrap_or((0, -1)) };
                let (v, c, r) = block(&full, cols, spy.unwrap_or((0, -1)));
                let part = SrcWindow { values: &v, rows: r, cols: c, ..full.clone() };
                prop_assert!(same(point(&part, method, sx, sy, scale), want));
            }
        }
    }

    /// Found by the property test: bilinear reads the tap after a clamped
    /// edge column (at weight 0), and a negative position reads nothing.
    #[test]
    fn point_span_edges() {
        assert_eq!(
            point_span(Method::Bilinear, [1.0, 1.0], 0, 0.0),
            Some((0, 1))
        );
        assert_eq!(point_span(Method::Cubic, [0.95, 0.95], 0, -1e-11), None);
        assert_eq!(
            point_span(Method::Nearest, [1.0, 1.0], 1, 5.0 - 1e-11),
            Some((5, 5))
        );
    }

    #[test]
    fn reach_per_method() {
        assert_eq!(reach(Method::Nearest, [1.0, 1.0]), [1, 1]);
        assert_eq!(reach(Method::Bilinear, [1.0, 0.95]), [1, 1]);
        assert_eq!(reach(Method::Cubic, [2.0, 1.0]), [2, 2]);
        // Stretched: R = ceil(r / scale), plus one for floor(s - 0.5).
        assert_eq!(reach(Method::Bilinear, [0.5, 0.5]), [3, 3]);
        assert_eq!(reach(Method::Cubic, [0.3, 1.0]), [8, 3]);
        assert_eq!(reach(Method::Average, [0.1, 0.1]), [0, 0]);
    }

    #[test]
    fn get_wraps_columns_and_is_nan_outside() {
        let v = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let w = SrcWindow {
            values: &v,
            rows: 0..2,
            cols: 0..3,
            width: 3,
            height: 2,
            wrap_x: true,
        };
        assert_eq!(w.get(3, 1), 4.0);
        assert_eq!(w.get(-1, 0), 3.0);
        assert!(w.get(0, 2).is_nan());
        let nw = SrcWindow {
            wrap_x: false,
            ..w.clone()
        };
        assert!(nw.get(3, 1).is_nan());
    }

    /// Outside the block but inside the raster: a debug build panics (a window the caller got
    /// wrong), a release build has no value rather than crash.
    #[test]
    #[cfg_attr(debug_assertions, should_panic(expected = "outside the block"))]
    fn get_outside_the_block() {
        let v = [1.0, 2.0];
        let w = SrcWindow {
            values: &v,
            rows: 1..2,
            cols: 0..2,
            width: 2,
            height: 2,
            wrap_x: false,
        };
        assert!(w.get(0, 0).is_nan());
        assert_eq!(w.get(1, 1), 2.0);
    }
}
