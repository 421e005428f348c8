//! `GeoBox`: a grid as odc-geo models it: a CRS, an affine transform of pixel edges and a shape
//! `(rows, columns)`; pixel-is-area, coordinates at pixel centres (`i·a + (c + a/2)`, odc-geo's
//! formula, so a cube's coordinates equal `GeoBox.coords` bit for bit).

use serde_json::{json, Value};

use super::affine::{py_float, Affine};
use super::crs::Crs;
use super::snap::snap_grid;

/// odc-geo's default tolerance for snapping a bbox: a hundredth of a pixel.
pub const SNAP_TOL: f64 = 0.01;

/// How far from a regular step a coordinate's steps may be, in pixels.
const REGULAR_TOL: f64 = 1e-6;

/// A bounding box in a CRS's units.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bbox {
    /// Western edge.
    pub left: f64,
    /// Southern edge.
    pub bottom: f64,
    /// Eastern edge.
    pub right: f64,
    /// Northern edge.
    pub top: f64,
}

/// How a grid from a bbox and a resolution snaps.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Anchor {
    /// Pixel edges at these fractions of a pixel from multiples of the resolution (0: edges on
    /// multiples, 0.5: centres), per axis `(x, y)`.
    Fraction(f64, f64),
    /// The origin at the bbox's corner.
    Floating,
}

/// A grid: CRS, affine (pixel edges), shape `[rows, columns]`.
#[derive(Debug, Clone, PartialEq)]
pub struct GeoBox {
    /// Its CRS.
    pub crs: Crs,
    /// Pixel (col, row) edges to coordinates.
    pub affine: Affine,
    /// `[rows, columns]`.
    pub shape: [u64; 2],
}

/// One axis of a grid as a computed coordinate: `start + step·i` for `i` in `0..len`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Axis {
    /// The first pixel's centre.
    pub start: f64,
    /// The pixel size (negative for a north-up grid's rows).
    pub step: f64,
    /// How many pixels.
    pub len: u64,
}

impl Axis {
    /// The centre of pixel `i`, as the coordinate holds it.
    #[must_use]
    #[allow(clippy::cast_precision_loss)]
    pub fn at(&self, i: u64) -> f64 {
        self.start + self.step * i as f64
    }
}

impl GeoBox {
    /// The grid covering `bbox` with pixels of `res` (`[x, y]`, `y < 0` north-up), snapped as
    /// odc-geo's `GeoBox.from_bbox(bbox, crs, resolution=res, anchor=…)` (tolerance 0.01 px).
    ///
    /// # Errors
    /// A zero or non-finite resolution, an empty or inverted bbox.
    pub fn from_bbox_resolution(
        crs: Crs,
        bbox: Bbox,
        res: [f64; 2],
        anchor: Anchor,
    ) -> Result<GeoBox, String> {
        check_bbox(&bbox)?;
        for (r, axis) in res.iter().zip(["x", "y"]) {
            if !r.is_finite() || *r == 0.0 {
                return Err(format!(
                    "{axis} resolution must be non-zero and finite, not {r}"
                ));
            }
        }
        let (ox, oy) = match anchor {
            Anchor::Fraction(x, y) => (Some(x), Some(y)),
            Anchor::Floating => (None, None),
        };
        let (tx, nx) = snap_grid(bbox.left, bbox.right, res[0], ox, SNAP_TOL);
        let (ty, ny) = snap_grid(bbox.bottom, bbox.top, res[1], oy, SNAP_TOL);
        Ok(GeoBox {
            crs,
            affine: Affine([res[0], 0.0, tx, 0.0, res[1], ty]),
            shape: [ny, nx],
        })
    }

    /// The grid of `size` (`[x, y]`) pixels spanning `bbox` exactly, north-up (xcube gen's
    /// `output_region` + `output_size`): never snapped.
    ///
    /// # Errors
    /// A zero size, an empty or inverted bbox.
    pub fn from_bbox_size(crs: Crs, bbox: Bbox, size: [u64; 2]) -> Result<GeoBox, String> {
        check_bbox(&bbox)?;
        if size[0] == 0 || size[1] == 0 {
            return Err(format!(
                "size must be at least 1 along x and y, not {size:?}"
            ));
        }
        #[allow(clippy::cast_precision_loss)]
        let (rx, ry) = (
            (bbox.right - bbox.left) / size[0] as f64,
            -(bbox.top - bbox.bottom) / size[1] as f64,
        );
        Ok(GeoBox {
            crs,
            affine: Affine([rx, 0.0, bbox.left, 0.0, ry, bbox.top]),
            shape: [size[1], size[0]],
        })
    }

    /// The grid whose pixel centres are `y` (rows) and `x` (columns): each regular (every step
    /// within 1e-6 px of `(last − first)/(n − 1)`), at least two values each.
    ///
    /// # Errors
    /// Which axis is too short or irregular, with its worst step.
    pub fn from_axes(crs: Crs, y: &[f64], x: &[f64]) -> Result<GeoBox, String> {
        let (ry, cy) = regular(y, "y")?;
        let (rx, cx) = regular(x, "x")?;
        Ok(GeoBox {
            crs,
            affine: Affine([rx, 0.0, cx - rx / 2.0, 0.0, ry, cy - ry / 2.0]),
            shape: [y.len() as u64, x.len() as u64],
        })
    }

    /// Its dimensions `[rows, columns]`: `lat`, `lon` for a geographic CRS, else `y`, `x`.
    #[must_use]
    pub fn dims(&self) -> [&'static str; 2] {
        if self.crs.is_geographic() {
            ["lat", "lon"]
        } else {
            ["y", "x"]
        }
    }

    /// The coordinates of rows and columns (pixel centres), as odc-geo computes them.
    #[must_use]
    pub fn axes(&self) -> [Axis; 2] {
        let [a, _, c, _, e, f] = self.affine.0;
        [
            Axis {
                start: f + e / 2.0,
                step: e,
                len: self.shape[0],
            },
            Axis {
                start: c + a / 2.0,
                step: a,
                len: self.shape[1],
            },
        ]
    }

    /// The edges it covers.
    #[must_use]
    #[allow(clippy::cast_precision_loss)]
    pub fn bbox(&self) -> Bbox {
        let [a, _, c, _, e, f] = self.affine.0;
        let (x1, y1) = (c + a * self.shape[1] as f64, f + e * self.shape[0] as f64);
        Bbox {
            left: c.min(x1),
            right: c.max(x1),
            bottom: f.min(y1),
            top: f.max(y1),
        }
    }

    /// What it is, for `cubeforge grid` and `info`: CRS, dims and shape, resolution, affine
    /// (both orders), bbox, first and last centres.
    #[must_use]
    pub fn describe(&self) -> Value {
        let [rows, cols] = self.axes();
        let dims = self.dims();
        let b = self.bbox();
        json!({
            "crs": {
                "name": self.crs.name(),
                "epsg": self.crs.epsg,
                "geographic": self.crs.is_geographic(),
            },
            "dims": dims,
            "shape": self.shape,
            "resolution": {"x": self.affine.0[0], "y": self.affine.0[4]},
            "affine": self.affine.0,
            "geo_transform": self.affine.gdal(),
            "bbox": {"left": b.left, "bottom": b.bottom, "right": b.right, "top": b.top},
            "coords": {
                dims[0]: {
                    "first": rows.at(0),
                    "last": rows.at(rows.len.saturating_sub(1)),
                    "size": rows.len,
                },
                dims[1]: {
                    "first": cols.at(0),
                    "last": cols.at(cols.len.saturating_sub(1)),
                    "size": cols.len,
                },
            },
        })
    }

    /// The description as lines of text.
    #[must_use]
    pub fn describe_text(&self) -> String {
        let [rows, cols] = self.axes();
        let [dy, dx] = self.dims();
        let b = self.bbox();
        let a = self.affine.0;
        let f = |v: f64| py_float(v);
        let epsg = self
            .crs
            .epsg
            .map_or_else(String::new, |c| format!(" (EPSG:{c})"));
        format!(
            "crs:        {}{epsg}\nshape:      {dy}: {}, {dx}: {}\nresolution: x {}, y {}\n\
             affine:     ({}, {}, {}, {}, {}, {})\nbbox:       left {}, bottom {}, right {}, top {}\n\
             {dy}:{}first {}, last {}\n{dx}:{}first {}, last {}\n",
            self.crs.name(),
            rows.len,
            cols.len,
            f(a[0]),
            f(a[4]),
            f(a[0]),
            f(a[1]),
            f(a[2]),
            f(a[3]),
            f(a[4]),
            f(a[5]),
            f(b.left),
            f(b.bottom),
            f(b.right),
            f(b.top),
            " ".repeat(11 - dy.len()),
            f(rows.at(0)),
            f(rows.at(rows.len.saturating_sub(1))),
            " ".repeat(11 - dx.len()),
            f(cols.at(0)),
            f(cols.at(cols.len.saturating_sub(1))),
        )
    }
}

fn check_bbox(b: &Bbox) -> Result<(), String> {
    let finite = [b.left, b.bottom, b.right, b.top]
        .iter()
        .all(|v| v.is_finite());
    if !finite || b.left >= b.right || b.bottom >= b.top {
        return Err(format!(
            "bbox must have left < right and bottom < top (finite), not left {}, bottom {}, \
             right {}, top {}",
            b.left, b.bottom, b.right, b.top
        ));
    }
    Ok(())
}

/// The step and first value of regular centres `c`.
fn regular(c: &[f64], axis: &str) -> Result<(f64, f64), String> {
    let n = c.len();
    if n < 2 {
        return Err(format!(
            "the {axis} coordinate has {n} value(s): a grid needs at least 2 to know its pixel size"
        ));
    }
    #[allow(clippy::cast_precision_loss)]
    let step = (c[n - 1] - c[0]) / (n - 1) as f64;
    if !step.is_finite() || step == 0.0 {
        return Err(format!(
            "the {axis} coordinate does not change along its dimension"
        ));
    }
    let mut worst = (0.0f64, 0usize);
    for (i, w) in c.windows(2).enumerate() {
        let off = ((w[1] - w[0]) / step - 1.0).abs();
        if off.is_nan() || off > worst.0 {
            worst = (if off.is_nan() { f64::INFINITY } else { off }, i);
        }
    }
    if worst.0 > REGULAR_TOL {
        let i = worst.1;
        return Err(format!(
            "the {axis} coordinate is not regular: step {} between positions {i} and {} differs \
             from the mean step {step} by {:.3e} of a pixel",
            c[i + 1] - c[i],
            i + 1,
            worst.0
        ));
    }
    Ok((step, c[0]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wgs84() -> Crs {
        Crs::from_epsg(4326).expect("EPSG:4326")
    }

    fn bbox(left: f64, bottom: f64, right: f64, top: f64) -> Bbox {
        Bbox {
            left,
            bottom,
            right,
            top,
        }
    }

    #[test]
    fn grids_from_a_bbox_as_odc_geo_makes_them() {
        // Expected values from odc-geo 0.5.3 `GeoBox.from_bbox`.
        let g = GeoBox::from_bbox_resolution(
            wgs84(),
            bbox(60.0, 0.0, 80.0, 20.0),
            [0.25, -0.25],
            Anchor::Fraction(0.0, 0.0),
        )
        .expect("grid");
        assert_eq!(g.shape, [80, 80]);
        assert_eq!(g.affine.0, [0.25, 0.0, 60.0, 0.0, -0.25, 20.0]);
        let [lat, lon] = g.axes();
        assert_eq!((lon.at(0), lon.at(79)), (60.125, 79.875));
        assert_eq!((lat.at(0), lat.at(79)), (19.875, 0.125));
        assert_eq!(g.dims(), ["lat", "lon"]);
        let c = GeoBox::from_bbox_resolution(
            wgs84(),
            bbox(60.0, 0.0, 80.0, 20.0),
            [0.25, -0.25],
            Anchor::Fraction(0.5, 0.5),
        )
        .expect("grid");
        assert_eq!(c.shape, [81, 81]);
        assert_eq!(c.affine.0, [0.25, 0.0, 59.875, 0.0, -0.25, 20.125]);
        let t = GeoBox::from_bbox_resolution(
            wgs84(),
            bbox(0.0, 0.0, 0.3, 0.3),
            [0.1, -0.1],
            Anchor::Fraction(0.0, 0.0),
        )
        .expect("grid");
        assert_eq!(t.shape, [3, 3]);
        let s =
            GeoBox::from_bbox_size(wgs84(), bbox(60.0, 0.0, 80.0, 20.0), [80, 40]).expect("grid");
        assert_eq!(s.affine.0, [0.25, 0.0, 60.0, 0.0, -0.5, 20.0]);
        assert_eq!(s.shape, [40, 80]);
        assert!(GeoBox::from_bbox_resolution(
            wgs84(),
            bbox(60.0, 0.0, 80.0, 20.0),
            [0.0, -0.25],
            Anchor::Floating
        )
        .is_err());
        assert!(GeoBox::from_bbox_size(wgs84(), bbox(80.0, 0.0, 60.0, 20.0), [1, 1]).is_err());
    }

    #[test]
    fn grids_from_coordinates() {
        let lon: Vec<f64> = (0..80).map(|i| f64::from(i) * 0.25 + 60.125).collect();
        let lat: Vec<f64> = (0..40).map(|i| f64::from(i) * -0.5 + 19.75).collect();
        let g = GeoBox::from_axes(wgs84(), &lat, &lon).expect("grid");
        assert_eq!(g.affine.0, [0.25, 0.0, 60.0, 0.0, -0.5, 20.0]);
        assert_eq!(g.shape, [40, 80]);
        let mut bad = lon.clone();
        bad[10] += 0.01;
        let e = GeoBox::from_axes(wgs84(), &lat, &bad).expect_err("irregular");
        assert!(
            e.contains("not regular") && e.contains("positions 9 and 10"),
            "{e}"
        );
        assert!(GeoBox::from_axes(wgs84(), &lat, &[1.0]).is_err());
    }
}
