//! `regrid`: a variable on a source grid brought onto a target grid with `gdalwarp -r`'s
//! semantics, one 2-D plane (one time step, one band) at a time, so no step's missing pixels
//! mask another's. An output window reads the source window its pixels' footprints cover plus
//! the kernel's reach; each target pixel is computed from the same source pixels whatever the
//! window, so results do not depend on chunking or on the number of workers.
//!
//! | file | what |
//! |---|---|
//! | `regrid/kernel.rs` | the source window the kernels read; a method's reach |
//! | `regrid/point.rs` | nearest, bilinear and cubic (4-sample, and stretched when downsampling) |
//! | `regrid/area.rs` | average, mode, min, max, median, q1, q3 over a pixel's footprint |
//! | `regrid/scale.rs` | GDAL's estimate of the downsampling scale of a grid pair |
//!
//! The reference is GDAL 3.10.3 (rasterio 1.4.4's): positions through its approximate
//! transformer over whole target rows, the footprint of an area method from two diagonal
//! corners, and positions just outside the source transformed again exactly, as
//! `GWKCheckAndComputeSrcOffsets` does.

use std::ops::Range;
use std::sync::Arc;

use serde_json::json;

use crate::dtype::DType;
use crate::error::Result;
use crate::geo::pixel_map::PixelMap;
use crate::plan::{Block, Data, Node, NodeRef, VType, Window, WindowOp};
use crate::recipe::Method;

pub mod area;
pub mod kernel;
pub mod point;
pub mod scale;
#[cfg(test)]
mod testutil;

use kernel::SrcWindow;

/// Source pixels added around a window's footprint beyond the kernel's reach: the
/// approximation's error and rounding at pixel boundaries.
const MARGIN: i64 = 1;

/// One variable regridded.
#[derive(Debug)]
pub struct Regrid {
    input: [NodeRef; 1],
    map: Arc<PixelMap>,
    method: Method,
    /// The positions of the rows and columns dimensions (same in input and output).
    axes: [usize; 2],
    /// The fill value of an integer variable (pixels equal to it have no value); `None` for
    /// floats, whose NaN has none.
    fill: Option<f64>,
    /// GDAL's scale (target pixels per source pixel, per axis) of the grid pair.
    scale: [f64; 2],
    /// The integer type a categorical variable is stored as, when its interpolated values are
    /// rounded to it (`floor(x + 0.5)`, clamped) as GDAL stores them in the band's type.
    round_to: Option<DType>,
}

impl Regrid {
    /// `input` (whose dimensions `axes` are the source grid's rows and columns) regridded by
    /// `method` through `map`.
    #[must_use]
    pub fn new(
        input: NodeRef,
        map: Arc<PixelMap>,
        method: Method,
        axes: [usize; 2],
        fill: Option<f64>,
    ) -> Regrid {
        let scale = scale_of(&map);
        Regrid {
            input: [input],
            map,
            method,
            axes,
            fill,
            scale,
            round_to: None,
        }
    }

    /// Interpolated values rounded to the integer type `stored` (a categorical variable read as
    /// floats, regridded with `interpolate_integers`).
    #[must_use]
    pub fn rounded_to(mut self, stored: DType) -> Regrid {
        self.round_to = Some(stored);
        self
    }

    fn is_area(&self) -> bool {
        !matches!(
            self.method,
            Method::Nearest | Method::Bilinear | Method::Cubic
        )
    }

    /// The source rows and columns the target `rows` × `cols` read (clipped to the source;
    /// empty when they fall outside it).
    fn source_ranges(&self, rows: &Range<u64>, cols: &Range<u64>) -> (Range<i64>, Range<i64>) {
        let [h, w] = self
            .map
            .src
            .shape
            .map(|v| i64::try_from(v).unwrap_or(i64::MAX));
        #[allow(clippy::cast_precision_loss)]
        let xs: Vec<f64> = (cols.start..=cols.end).map(|c| c as f64).collect();
        let (mut sx, mut sy) = (vec![0.0; xs.len()], vec![0.0; xs.len()]);
        let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
        for r in rows.start..=rows.end {
            sx.copy_from_slice(&xs);
            #[allow(clippy::cast_precision_loss)]
            sy.fill(r as f64);
            self.map.exact(&mut sx, &mut sy);
            for (x, y) in sx.iter().zip(&sy) {
                if x.is_finite() && y.is_finite() {
                    (x0, x1, y0, y1) = (x0.min(*x), x1.max(*x), y0.min(*y), y1.max(*y));
                }
            }
        }
        if x0 > x1 {
            return (0..0, 0..0);
        }
        let reach = kernel::reach(self.method, self.scale);
        #[allow(clippy::cast_possible_truncation)]
        let clip = |lo: f64, hi: f64, pad: i64, n: i64| -> Range<i64> {
            let a = (lo.floor() as i64).saturating_sub(pad + MARGIN).max(0);
            let b = (hi.ceil() as i64).saturating_add(pad + MARGIN + 1).min(n);
            if a >= b {
                0..0
            } else {
                a..b
            }
        };
        let cols = if self.map.wrap_x {
            0..w
        } else {
            clip(x0, x1, reach[0], w)
        };
        (clip(y0, y1, reach[1], h), cols)
    }

    /// The source positions of the window's target pixels, row-major: for point methods the
    /// centres; for area methods the two diagonal corners of each pixel (`(c, r)` and
    /// `(c + 1, r + 1)`), as GDAL's `GWKAverageOrMode` takes them.
    fn positions(&self, rows: &Range<u64>, cols: &Range<u64>) -> Positions {
        let n = usize::try_from(cols.end - cols.start).unwrap_or(0);
        let nr = usize::try_from(rows.end - rows.start).unwrap_or(0);
        let mut p = Positions {
            x: vec![0.0; n * nr],
            y: vec![0.0; n * nr],
            x2: Vec::new(),
            y2: Vec::new(),
        };
        let [sh, sw] = self.map.src.shape;
        #[allow(clippy::cast_precision_loss)]
        let (sh, sw) = (sh as f64, sw as f64);
        if self.is_area() {
            p.x2 = vec![0.0; n * nr];
            p.y2 = vec![0.0; n * nr];
        }
        for (k, r) in rows.clone().enumerate() {
            let at = k * n..(k + 1) * n;
            #[allow(clippy::cast_precision_loss)]
            let r = r as f64;
            if self.is_area() {
                self.map.run(
                    r,
                    0.0,
                    cols.clone(),
                    &mut p.x[at.clone()],
                    &mut p.y[at.clone()],
                );
                self.map.run(
                    r + 1.0,
                    1.0,
                    cols.clone(),
                    &mut p.x2[at.clone()],
                    &mut p.y2[at],
                );
                continue;
            }
            self.map.run(
                r + 0.5,
                0.5,
                cols.clone(),
                &mut p.x[at.clone()],
                &mut p.y[at.clone()],
            );
            // A position just outside the source is transformed again exactly.
            let near = |s: f64, n: f64| (s < 0.0 && s > -1.0) || (s + 1e-10 > n && s < n + 1.0);
            for (i, c) in at.zip(cols.clone()) {
                if near(p.x[i], sw) || near(p.y[i], sh) {
                    #[allow(clippy::cast_precision_loss)]
                    let (mut mx, mut my) = ([c as f64 + 0.5], [r + 0.5]);
                    self.map.exact(&mut mx, &mut my);
                    (p.x[i], p.y[i]) = (mx[0], my[0]);
                }
            }
        }
        p
    }

    /// The footprint of target pixel `i` in source pixels, as GDAL orders it; a source
    /// spanning 360° whose footprint reaches across its seam is unrolled past its east edge
    /// (GDAL's `bWrapOverX` heuristic).
    fn footprint(
        &self,
        p: &Positions,
        i: usize,
        col: u64,
        row: u64,
    ) -> Option<([f64; 2], [f64; 2])> {
        let (a, b) = ((p.x[i], p.y[i]), (p.x2[i], p.y2[i]));
        if !(a.0.is_finite() && a.1.is_finite() && b.0.is_finite() && b.1.is_finite()) {
            return None;
        }
        // GDAL's margin: a corner more than 2·max(1, ceil(1/scale)) pixels outside the source
        // gives no value, however much of the footprint the source covers.
        #[allow(clippy::cast_precision_loss)]
        let (w, h) = (self.map.src.shape[1] as f64, self.map.src.shape[0] as f64);
        let margin = |s: f64| 2.0 * (1.0 / s).ceil().max(1.0);
        let (mx, my) = (margin(self.scale[0]), margin(self.scale[1]));
        let inside = |v: f64, n: f64, m: f64| v >= -m && v - n <= m;
        if !(inside(a.0, w, mx) && inside(b.0, w, mx) && inside(a.1, h, my) && inside(b.1, h, my)) {
            return None;
        }
        let (mut x0, mut x1) = (a.0.min(b.0), a.0.max(b.0));
        let (y0, y1) = (a.1.min(b.1), a.1.max(b.1));
        if self.map.wrap_x {
            let w = self.map.src.shape[1];
            // Corners taken into the source's turn of the globe on either side of its seam: the
            // footprint is the short way round.
            #[allow(clippy::cast_precision_loss)]
            if x1 - x0 > w as f64 / 2.0 {
                (x0, x1) = (x1, x0 + w as f64);
            }
            #[allow(clippy::cast_precision_loss)]
            let thr = 2.min(w / 10) as f64;
            #[allow(clippy::cast_precision_loss)]
            let wf = w as f64;
            if x0 * self.scale[0] < thr && (wf - x1) * self.scale[0] < thr {
                #[allow(clippy::cast_precision_loss)]
                let (mut mx, mut my) = ([col as f64 + 0.5], [row as f64]);
                self.map.exact(&mut mx, &mut my);
                if mx[0] < x0 {
                    (x0, x1) = (x1, x0 + wf);
                }
            }
        }
        Some(([x0, x1], [y0, y1]))
    }

    /// One plane's target pixels (`rows` × `cols` of the target) from the source plane `src`.
    fn plane(
        &self,
        src: &SrcWindow<'_>,
        pos: &Positions,
        rows: &Range<u64>,
        cols: &Range<u64>,
    ) -> Vec<f64> {
        let kernel = self.method;
        let w = usize::try_from(cols.end - cols.start).unwrap_or(0);
        let mut out = vec![f64::NAN; pos.x.len()];
        if self.is_area() {
            let mut scratch = Vec::new();
            for (i, o) in out.iter_mut().enumerate() {
                let (r, c) = (rows.start + (i / w) as u64, cols.start + (i % w) as u64);
                if let Some((x, y)) = self.footprint(pos, i, c, r) {
                    *o = area::area(src, kernel, x, y, &mut scratch);
                }
            }
        } else {
            for (i, o) in out.iter_mut().enumerate() {
                if pos.x[i].is_finite() && pos.y[i].is_finite() {
                    *o = point::point(src, kernel, pos.x[i], pos.y[i], self.scale);
                }
            }
        }
        out
    }
}

impl Regrid {
    /// Bands of whole target rows of a one-plane `window` whose joined source windows fit
    /// `budget`, greedily.
    fn row_bands(&self, window: &Window, budget: u64) -> Vec<Window> {
        let [ya, xa] = self.axes;
        let rows = window[ya].clone();
        let mut parts = Vec::new();
        let (mut start, mut acc) = (rows.start, (0..0, 0..0));
        for t in rows.clone() {
            let (r, c) = self.source_ranges(&(t..t + 1), &window[xa]);
            if plane_bytes(&r, &c) > budget {
                // One target row alone is too much: close the band before it, then cut the
                // row into runs of columns.
                if t > start {
                    let mut w = window.clone();
                    w[ya] = start..t;
                    parts.push(w);
                }
                let mut w = window.clone();
                w[ya] = t..t + 1;
                parts.extend(self.column_runs(&w, budget));
                (start, acc) = (t + 1, (0..0, 0..0));
                continue;
            }
            let joined = (union(&acc.0, &r), union(&acc.1, &c));
            if t > start && plane_bytes(&joined.0, &joined.1) > budget {
                let mut w = window.clone();
                w[ya] = start..t;
                parts.push(w);
                (start, acc) = (t, (r, c));
            } else {
                acc = joined;
            }
        }
        if start < rows.end {
            let mut w = window.clone();
            w[ya] = start..rows.end;
            parts.push(w);
        }
        parts
    }

    /// Runs of target columns of a one-row `window` whose source windows fit `budget`,
    /// greedily (one column at least).
    fn column_runs(&self, window: &Window, budget: u64) -> Vec<Window> {
        let [ya, xa] = self.axes;
        let cols = window[xa].clone();
        let mut parts = Vec::new();
        let (mut start, mut acc) = (cols.start, (0..0, 0..0));
        for c in cols.clone() {
            let (r, x) = self.source_ranges(&window[ya], &(c..c + 1));
            let joined = (union(&acc.0, &r), union(&acc.1, &x));
            if c > start && plane_bytes(&joined.0, &joined.1) > budget {
                let mut w = window.clone();
                w[xa] = start..c;
                parts.push(w);
                (start, acc) = (c, (r, x));
            } else {
                acc = joined;
            }
        }
        let mut w = window.clone();
        w[xa] = start..cols.end;
        parts.push(w);
        parts
    }
}

/// The smallest range holding `a` and `b` (either may be empty).
fn union(a: &Range<i64>, b: &Range<i64>) -> Range<i64> {
    match (a.is_empty(), b.is_empty()) {
        (true, _) => b.clone(),
        (_, true) => a.clone(),
        _ => a.start.min(b.start)..a.end.max(b.end),
    }
}

/// The bytes one plane's source window takes as read and as `f64`.
fn plane_bytes(r: &Range<i64>, c: &Range<i64>) -> u64 {
    let n = (r.end - r.start).max(0) * (c.end - c.start).max(0);
    u64::try_from(n).unwrap_or(0).saturating_mul(16)
}

/// `window` cut along its dimensions not in `fixed` (the spatial ones, then those already cut)
/// into parts of at most `fit` planes: groups along the outermost such dimension, each of its
/// positions alone (and the next dimension cut likewise) when one holds more.
fn split_planes(window: &Window, fixed: &[usize], fit: usize) -> Vec<Window> {
    let others: Vec<usize> = (0..window.len()).filter(|k| !fixed.contains(k)).collect();
    let Some(&a) = others.first() else {
        return vec![window.clone()];
    };
    let inner: u64 = others[1..]
        .iter()
        .map(|k| window[*k].end - window[*k].start)
        .product();
    let r = window[a].clone();
    let fit64 = fit as u64;
    if inner <= fit64 {
        let g = (fit64 / inner.max(1)).max(1);
        return (r.start..r.end)
            .step_by(usize::try_from(g).unwrap_or(1))
            .map(|s| {
                let mut w = window.clone();
                w[a] = s..(s + g).min(r.end);
                w
            })
            .collect();
    }
    let mut out = Vec::new();
    for i in r {
        let mut w = window.clone();
        w[a] = i..i + 1;
        let mut f = fixed.to_vec();
        f.push(a);
        out.extend(split_planes(&w, &f, fit));
    }
    out
}

/// Source positions of a window's target pixels (see [`Regrid::positions`]).
struct Positions {
    x: Vec<f64>,
    y: Vec<f64>,
    /// The second corners, for area methods.
    x2: Vec<f64>,
    y2: Vec<f64>,
}

/// GDAL's scale estimate for the grid pair, over the whole target grid; a source spanning 360°
/// as if rolled to sit under the target (GDAL would take a seam inside the target for a window
/// of the whole width, and blur bilinear and cubic over it).
fn scale_of(map: &PixelMap) -> [f64; 2] {
    let exact = |x: &[f64], y: &[f64], ox: &mut [f64], oy: &mut [f64]| {
        ox.copy_from_slice(x);
        oy.copy_from_slice(y);
        map.exact_unrolled(ox, oy);
    };
    let [sh, sw] = map.src.shape;
    scale::estimate_scale(&exact, map.dst.shape[1], map.dst.shape[0], sw, sh)
}

impl WindowOp for Regrid {
    fn name(&self) -> &'static str {
        "regrid"
    }

    fn inputs(&self) -> &[NodeRef] {
        &self.input
    }

    fn input_window(&self, _out: &Node, _i: usize, window: &Window) -> Window {
        let [ya, xa] = self.axes;
        let (rows, cols) = self.source_ranges(&window[ya], &window[xa]);
        let mut w = window.clone();
        // A window outside the source reads one pixel (an empty read is not asked of a
        // source); its targets get no value.
        let to_u = |r: Range<i64>| -> Range<u64> {
            if r.is_empty() {
                0..1
            } else {
                u64::try_from(r.start).unwrap_or(0)..u64::try_from(r.end).unwrap_or(0)
            }
        };
        w[ya] = to_u(rows);
        w[xa] = to_u(cols);
        w
    }

    fn eval(&self, out: &Node, window: &Window, inputs: Vec<Block>) -> Result<Data> {
        let [ya, xa] = self.axes;
        let (rows, cols) = self.source_ranges(&window[ya], &window[xa]);
        let Some(block) = inputs.into_iter().next() else {
            return Err(crate::error::Error::Other(
                "internal: regrid takes one input".into(),
            ));
        };
        let mut values = block.data.to_f64();
        if let Some(fill) = self.fill {
            for v in &mut values {
                if *v == fill {
                    *v = f64::NAN;
                }
            }
        }
        let bshape: Vec<usize> = block.shape.clone();
        let oshape: Vec<usize> = window
            .iter()
            .map(|r| usize::try_from(r.end - r.start).unwrap_or(0))
            .collect();
        let total: usize = oshape.iter().product();
        let mut result = vec![f64::NAN; total];
        let (oh, ow) = (oshape[ya], oshape[xa]);
        let (bh, bw) = (bshape[ya], bshape[xa]);
        let positions = self.positions(&window[ya], &window[xa]);
        let [sh, sw] = self
            .map
            .src
            .shape
            .map(|v| i64::try_from(v).unwrap_or(i64::MAX));
        let bstrides = strides(&bshape);
        let ostrides = strides(&oshape);
        let mut plane = if bh * bw == values.len() {
            Vec::new()
        } else {
            vec![0.0; bh * bw]
        };
        for outer in outer_indices(&oshape, ya, xa) {
            let bbase: usize = outer.iter().zip(&bstrides).map(|(i, s)| i * s).sum();
            let obase: usize = outer.iter().zip(&ostrides).map(|(i, s)| i * s).sum();
            let values_here = if rows.is_empty() || cols.is_empty() {
                None
            } else {
                // A block of one plane in (rows, columns) order is the plane itself.
                let whole = bh * bw == values.len() && ya < xa;
                if !whole {
                    for r in 0..bh {
                        for c in 0..bw {
                            plane[r * bw + c] = values[bbase + r * bstrides[ya] + c * bstrides[xa]];
                        }
                    }
                }
                Some(self.plane(
                    &SrcWindow {
                        values: if whole { &values } else { &plane },
                        rows: rows.clone(),
                        cols: cols.clone(),
                        width: sw,
                        height: sh,
                        wrap_x: self.map.wrap_x,
                    },
                    &positions,
                    &window[ya],
                    &window[xa],
                ))
            };
            if let Some(p) = values_here {
                for r in 0..oh {
                    for c in 0..ow {
                        result[obase + r * ostrides[ya] + c * ostrides[xa]] = p[r * ow + c];
                    }
                }
            }
        }
        if let (Some(d), true) = (self.round_to, self.method.interpolates()) {
            let (lo, hi) = int_range(d);
            for v in result.iter_mut().filter(|v| !v.is_nan()) {
                *v = (*v + 0.5).floor().clamp(lo, hi);
            }
        }
        Ok(finish(result, out.vtype, self.fill))
    }

    /// Bands of target rows whose source windows (held as stored and as `f64`, for every step
    /// of the window) fit `budget`; each target pixel reads the same source pixels whichever
    /// band computes it.
    fn split(&self, _out: &Node, window: &Window, budget: u64) -> Vec<Window> {
        let [ya, xa] = self.axes;
        let planes: u64 = window
            .iter()
            .enumerate()
            .filter(|(k, _)| *k != ya && *k != xa)
            .map(|(_, r)| r.end - r.start)
            .product();
        let (r, c) = self.source_ranges(&window[ya], &window[xa]);
        let per_plane = plane_bytes(&r, &c);
        if per_plane.saturating_mul(planes) <= budget {
            return vec![window.clone()];
        }
        // First fewer planes (time steps, bands) per part: each is regridded on its own, and
        // its source chunks are then read once.
        let fit = usize::try_from((budget / per_plane.max(1)).max(1)).unwrap_or(1);
        let mut parts = Vec::new();
        for w in split_planes(window, &[ya, xa], fit) {
            if per_plane <= budget {
                parts.push(w);
            } else {
                parts.extend(self.row_bands(&w, budget));
            }
        }
        parts
    }

    /// The grid's dimensions, and the input's other dimensions its values change along.
    fn value_dims(&self, out: &Node) -> Vec<String> {
        let varying = self.input[0].value_dims();
        let input = &self.input[0].dims;
        out.dims
            .iter()
            .enumerate()
            .filter(|(k, _)| self.axes.contains(k) || varying.contains(&input[*k]))
            .map(|(_, d)| d.clone())
            .collect()
    }

    fn describe(&self) -> serde_json::Value {
        json!({
            "method": self.method.name(),
            "scale": self.scale,
            "error_threshold": self.map.error_threshold,
            "source_shape": self.map.src.shape,
            "source_affine": self.map.src.affine.0,
            "same_crs": self.map.same_crs(),
            "wrap_x": self.map.wrap_x,
        })
    }
}

/// Values of the output type: integers rounded as GDAL rounds (`floor(x + 0.5)`), clamped, and
/// the fill value where there is none.
fn finish(values: Vec<f64>, vtype: VType, fill: Option<f64>) -> Data {
    match vtype {
        VType::Int(_) => {
            // `convert` clamps to the type's range.
            let fill = fill.unwrap_or(0.0);
            Data::F64(
                values
                    .into_iter()
                    .map(|v| if v.is_nan() { fill } else { (v + 0.5).floor() })
                    .collect(),
            )
            .convert(vtype)
        }
        _ => Data::F64(values).convert(vtype),
    }
}

/// The values an integer type holds.
#[allow(clippy::cast_precision_loss)]
fn int_range(d: DType) -> (f64, f64) {
    match d {
        DType::Int8 => (f64::from(i8::MIN), f64::from(i8::MAX)),
        DType::UInt8 => (0.0, f64::from(u8::MAX)),
        DType::Int16 => (f64::from(i16::MIN), f64::from(i16::MAX)),
        DType::UInt16 => (0.0, f64::from(u16::MAX)),
        DType::Int32 => (f64::from(i32::MIN), f64::from(i32::MAX)),
        DType::UInt32 => (0.0, f64::from(u32::MAX)),
        DType::UInt64 => (0.0, u64::MAX as f64),
        _ => (i64::MIN as f64, i64::MAX as f64),
    }
}

fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

/// Every index of `shape` with the two spatial axes at 0, in C order.
fn outer_indices(shape: &[usize], ya: usize, xa: usize) -> Vec<Vec<usize>> {
    let mut out = vec![vec![0; shape.len()]];
    for (axis, n) in shape.iter().enumerate() {
        if axis == ya || axis == xa {
            continue;
        }
        out = out
            .into_iter()
            .flat_map(|idx| {
                (0..*n).map(move |i| {
                    let mut v = idx.clone();
                    v[axis] = i;
                    v
                })
            })
            .collect();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geo::{Affine, Crs, GeoBox};
    use crate::plan::Op;

    /// A UTM raster (1200 × 2418 pixels of 550 m) onto 0.25°: a small budget cuts an output
    /// window into bands of target rows that tile it, each reading a smaller source window.
    #[test]
    fn split_cuts_bands_of_rows_that_tile_the_window() {
        let src = GeoBox {
            crs: Crs::from_epsg(32643).expect("UTM 43N"),
            affine: Affine([550.0, 0.0, 170_000.0, 0.0, -550.0, 1_770_000.0]),
            shape: [2418, 1200],
        };
        let dst = GeoBox {
            crs: Crs::from_epsg(4326).expect("WGS 84"),
            affine: Affine([0.25, 0.0, 60.0, 0.0, -0.25, 20.0]),
            shape: [80, 80],
        };
        let map = Arc::new(PixelMap::new(src, dst, 0.125).expect("map"));
        let input = Node::new(
            Op::Const(Data::F64(vec![0.0])),
            vec!["y".into(), "x".into()],
            vec![2418, 1200],
            VType::F32,
        );
        let op = Regrid::new(input, map, Method::Average, [0, 1], None);
        let out = Node::new(
            Op::Const(Data::F64(vec![0.0])),
            vec!["lat".into(), "lon".into()],
            vec![80, 80],
            VType::F32,
        );
        let window = vec![0..80, 0..80];
        assert_eq!(op.split(&out, &window, u64::MAX), vec![window.clone()]);
        let parts = op.split(&out, &window, 1 << 20);
        assert!(parts.len() > 4, "{} parts", parts.len());
        // The parts tile the window (each pixel in one part), and each reads within the budget
        // unless it is a single target pixel.
        let mut seen = vec![0u8; 80 * 80];
        for p in &parts {
            for r in p[0].clone() {
                for c in p[1].clone() {
                    seen[(r * 80 + c) as usize] += 1;
                }
            }
            let (r, c) = op.source_ranges(&p[0], &p[1]);
            let n = (r.end - r.start).max(0) * (c.end - c.start).max(0);
            let single = p[0].end - p[0].start == 1 && p[1].end - p[1].start == 1;
            assert!(n * 16 <= 1 << 20 || single, "{p:?}: {n} pixels");
        }
        assert!(seen.iter().all(|n| *n == 1));
        // Steps first: ten planes of a (time, y, x) variable, a budget for three planes of the
        // whole window: parts of three steps, none cut in rows.
        let input3 = Node::new(
            Op::Const(Data::F64(vec![0.0])),
            vec!["time".into(), "y".into(), "x".into()],
            vec![10, 2418, 1200],
            VType::F32,
        );
        let op3 = Regrid::new(input3, op.map.clone(), Method::Average, [1, 2], None);
        let w3 = vec![0..10, 0..80, 0..80];
        let (r, c) = op3.source_ranges(&w3[1], &w3[2]);
        let plane = plane_bytes(&r, &c);
        let parts = op3.split(&out, &w3, 3 * plane);
        let steps: Vec<_> = parts.iter().map(|p| p[0].clone()).collect();
        assert_eq!(steps, vec![0..3, 3..6, 6..9, 9..10]);
        assert!(parts.iter().all(|p| p[1] == (0..80) && p[2] == (0..80)));
        // Less than a plane: one step per part, each cut in bands of rows.
        let parts = op3.split(&out, &w3, plane / 3);
        assert!(parts.iter().all(|p| p[0].end - p[0].start == 1));
        assert!(parts.len() >= 30, "{}", parts.len());
    }
}
