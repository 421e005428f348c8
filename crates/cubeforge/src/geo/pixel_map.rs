//! `PixelMap`: a target grid's pixel/line positions to a source grid's, as GDAL's warper maps
//! them (destination pixel → destination CRS by its geotransform → source CRS → source pixel by
//! the inverse geotransform, `GDALGenImgProjTransform`), exactly or with GDAL's piecewise-linear
//! approximation along each *whole* target row (`GDALApproxTransform`, error in source pixels).
//! A position depends on its row and column only, never on which window asks: that is what
//! makes results independent of the output chunking.
//!
//! Longitudes: a geographic source takes each longitude into its own turn of the globe (from
//! its west edge when it spans 360°, whose columns the kernels then also wrap, GDAL's
//! `bWrapOverX`; centred on it otherwise), so `0..360` sources and grids crossing the
//! antimeridian need no user step. Longitudes already in that turn are left as they are, so
//! positions match GDAL's bit for bit there.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::approx::approx_row;
use super::project::Projector;
use super::{Affine, GeoBox};

/// Maps target pixel/line positions to source pixel/line positions.
#[derive(Debug)]
pub struct PixelMap {
    /// The source grid.
    pub src: GeoBox,
    /// The target grid.
    pub dst: GeoBox,
    proj: Option<Projector>,
    src_inv: Affine,
    /// The approximation's error threshold in source pixels; 0 for exact.
    pub error_threshold: f64,
    /// For a geographic source: the longitude a turn of the globe around which every
    /// longitude is taken into (its west edge when it spans 360°, else its centre), and
    /// whether that is a west edge.
    lon_ref: Option<(f64, bool)>,
    /// Whether the source spans 360° of longitude (columns wrap).
    pub wrap_x: bool,
    /// Whole approximated target rows already computed, by (line, offset): several output
    /// windows across one row (and parts of one window) share them. Bounded by bytes.
    runs: Mutex<HashMap<(u64, u64), Run>>,
}

/// The source positions (x, y) of a whole target row.
type Run = Arc<(Vec<f64>, Vec<f64>)>;

/// The bytes of approximated rows a [`PixelMap`] keeps.
const RUNS_BYTES: u64 = 32 << 20;

impl PixelMap {
    /// The map from `dst` to `src`.
    ///
    /// # Errors
    /// A source grid whose transform cannot be inverted; a CRS pair without a transform.
    pub fn new(src: GeoBox, dst: GeoBox, error_threshold: f64) -> Result<PixelMap, String> {
        let src_inv = src
            .affine
            .inverse()
            .ok_or_else(|| "the source grid's transform cannot be inverted".to_string())?;
        let proj = if src.crs.equivalent(&dst.crs) {
            None
        } else {
            Some(Projector::new(&src.crs, &dst.crs)?)
        };
        let (mut lon_ref, mut wrap_x) = (None, false);
        if src.crs.is_geographic() {
            let [a, _, c, ..] = src.affine.0;
            #[allow(clippy::cast_precision_loss)]
            let span = a * src.shape[1] as f64;
            wrap_x = (span.abs() - 360.0).abs() < a.abs() / 2.0;
            lon_ref = Some(if wrap_x {
                (c.min(c + span), true)
            } else {
                (c + span / 2.0, false)
            });
        }
        Ok(PixelMap {
            src,
            dst,
            proj,
            src_inv,
            error_threshold,
            lon_ref,
            wrap_x,
            runs: Mutex::default(),
        })
    }

    /// Whether the two grids are in one CRS (the map is affine, up to longitude wrapping).
    #[must_use]
    pub fn same_crs(&self) -> bool {
        self.proj.is_none()
    }

    /// Target pixel/line positions `x`, `y` to source pixel/line positions, in place, exactly.
    /// A position that cannot be transformed becomes NaN.
    pub fn exact(&self, x: &mut [f64], y: &mut [f64]) {
        self.exact_around(x, y, self.lon_ref);
    }

    /// As [`PixelMap::exact`] for a source spanning 360°, with longitudes taken into the turn
    /// of the globe centred on the target grid's centre, and columns shifted so that centre
    /// falls mid-raster: the source as if rolled to sit under the target, continuous across
    /// its seam (for estimating the scale, which a seam inside the target would otherwise
    /// make look like a window of the whole width).
    pub fn exact_unrolled(&self, x: &mut [f64], y: &mut [f64]) {
        if !self.wrap_x {
            return self.exact(x, y);
        }
        #[allow(clippy::cast_precision_loss)]
        let (mut cx, mut cy) = (
            [self.dst.shape[1] as f64 / 2.0],
            [self.dst.shape[0] as f64 / 2.0],
        );
        self.exact_around(&mut cx, &mut cy, None);
        let centre_lon = self.src.affine.apply(cx[0], 0.0).0;
        let (mut px, mut py) = (cx, cy);
        self.exact_around(&mut px, &mut py, Some((centre_lon - 180.0, true)));
        self.exact_around(x, y, Some((centre_lon - 180.0, true)));
        #[allow(clippy::cast_precision_loss)]
        let shift = px[0] - self.src.shape[1] as f64 / 2.0;
        for v in x.iter_mut() {
            *v -= shift;
        }
    }

    fn exact_around(&self, x: &mut [f64], y: &mut [f64], lon_ref: Option<(f64, bool)>) {
        for (px, py) in x.iter_mut().zip(y.iter_mut()) {
            let (gx, gy) = self.dst.affine.apply(*px, *py);
            (*px, *py) = (gx, gy);
        }
        if let Some(p) = &self.proj {
            p.dst_to_src(x, y);
        }
        for (px, py) in x.iter_mut().zip(y.iter_mut()) {
            match lon_ref {
                Some((west, true)) if px.is_finite() && (*px < west || *px >= west + 360.0) => {
                    *px -= 360.0 * ((*px - west) / 360.0).floor();
                }
                Some((centre, false)) if px.is_finite() && (*px - centre).abs() > 180.0 => {
                    *px -= 360.0 * ((*px - centre) / 360.0).round();
                }
                _ => {}
            }
            let (sx, sy) = self.src_inv.apply(*px, *py);
            (*px, *py) = (sx, sy);
        }
    }

    /// GDAL's source positions of the target points `(k + offset, y)` for `k` in `cols`: the
    /// approximation runs over the *whole* target row (`k` in `0..width`), as GDAL runs it over
    /// a row of its warp chunk, so which columns are asked for changes no bit; exact when the
    /// threshold is 0.
    pub fn run(
        &self,
        y: f64,
        offset: f64,
        cols: std::ops::Range<u64>,
        out_x: &mut [f64],
        out_y: &mut [f64],
    ) {
        #[allow(clippy::cast_precision_loss)]
        if self.error_threshold == 0.0 {
            for (k, c) in cols.enumerate() {
                out_x[k] = c as f64 + offset;
            }
            out_y.fill(y);
            self.exact(out_x, out_y);
            return;
        }
        let row = self.whole_run(y, offset);
        let (a, b) = (
            usize::try_from(cols.start).unwrap_or(0),
            usize::try_from(cols.end).unwrap_or(0),
        );
        out_x.copy_from_slice(&row.0[a..b]);
        out_y.copy_from_slice(&row.1[a..b]);
    }

    /// The approximated positions of the whole target row `(k + offset, y)`, computed once.
    fn whole_run(&self, y: f64, offset: f64) -> Run {
        let key = (y.to_bits(), offset.to_bits());
        let lock = || {
            self.runs
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        };
        if let Some(r) = lock().get(&key) {
            return r.clone();
        }
        #[allow(clippy::cast_precision_loss)]
        let all: Vec<f64> = (0..self.dst.shape[1]).map(|c| c as f64 + offset).collect();
        let (mut ax, mut ay) = (vec![0.0; all.len()], vec![0.0; all.len()]);
        let exact = |x: &mut [f64], y: &mut [f64]| self.exact(x, y);
        approx_row(&exact, &all, y, self.error_threshold, &mut ax, &mut ay);
        let row = Arc::new((ax, ay));
        let mut runs = lock();
        let keep = (RUNS_BYTES / (16 * self.dst.shape[1].max(1))).max(16);
        if runs.len() as u64 >= keep {
            runs.clear();
        }
        runs.insert(key, row.clone());
        row
    }
}
