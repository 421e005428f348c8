//! Point transforms between two CRSs with `proj4rs` (pure Rust proj.4; `tmerc`/`utm` are its
//! exact Poder/Engsager series as in PROJ >= 6, `sinu` is there since 0.3). Coordinates are
//! always x = easting or longitude, y = northing or latitude (GIS order), angles in degrees.

use super::crs::{Crs, DatumKind};
use proj4rs::errors::Result as ProjResult;
use proj4rs::transform::{transform, Transform, TransformClosure};
use proj4rs::Proj;

/// Point transforms between one pair of CRSs.
pub struct Projector {
    src: Crs,
    dst: Crs,
    src_proj: Proj,
    dst_proj: Proj,
    src_geo: bool,
    dst_geo: bool,
    /// The two CRSs transform points the same: only longitudes are wrapped.
    identity: bool,
}

impl std::fmt::Debug for Projector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Projector")
            .field("src", &self.src.proj4)
            .field("dst", &self.dst.proj4)
            .field("identity", &self.identity)
            .finish()
    }
}

impl Projector {
    /// A projector between `src` and `dst`; refuses datum pairs without a known shift, naming
    /// both.
    pub fn new(src: &Crs, dst: &Crs) -> Result<Projector, String> {
        check_datums(src, dst)?;
        let src_proj = src.proj()?;
        let dst_proj = dst.proj()?;
        Ok(Projector {
            identity: src.equivalent(dst),
            src_geo: src.is_geographic(),
            dst_geo: dst.is_geographic(),
            src: src.clone(),
            dst: dst.clone(),
            src_proj,
            dst_proj,
        })
    }

    /// The CRS points are taken to by [`Projector::dst_to_src`].
    pub fn src(&self) -> &Crs {
        &self.src
    }

    /// The CRS points are taken from by [`Projector::dst_to_src`].
    pub fn dst(&self) -> &Crs {
        &self.dst
    }

    /// Whether the two CRSs transform points the same (nothing but longitude wrapping is done).
    pub fn is_identity(&self) -> bool {
        self.identity
    }

    /// Points given in `dst` coordinates, transformed in place into `src` coordinates.
    /// x = easting or longitude (degrees), y = northing or latitude (degrees), always (GIS order).
    /// A point that cannot be transformed becomes NaN (both coordinates). When `src` is
    /// geographic, longitudes come out in -180..180.
    pub fn dst_to_src(&self, x: &mut [f64], y: &mut [f64]) {
        run(
            &self.dst_proj,
            self.dst_geo,
            &self.src_proj,
            self.src_geo,
            self.identity,
            x,
            y,
        );
    }

    /// Points given in `src` coordinates, transformed in place into `dst` coordinates.
    pub fn src_to_dst(&self, x: &mut [f64], y: &mut [f64]) {
        run(
            &self.src_proj,
            self.src_geo,
            &self.dst_proj,
            self.dst_geo,
            self.identity,
            x,
            y,
        );
    }
}

/// Refuses a pair whose datums have no known shift between them.
fn check_datums(src: &Crs, dst: &Crs) -> Result<(), String> {
    use DatumKind::*;
    let (a, b) = (src.datum(), dst.datum());
    if a == b {
        return Ok(());
    }
    let describe = |crs: &Crs, d: &DatumKind| match d {
        Grid(g) => format!("{} (datum shift grid {g})", crs.name()),
        Unknown(e) => format!("{} (ellipsoid {e}, no +towgs84)", crs.name()),
        _ => crs.name(),
    };
    match (&a, &b) {
        (Grid(_), _) | (_, Grid(_)) => Err(format!(
            "no datum shift between {} and {}: grid shift files are not carried; give a PROJ \
             string with +towgs84",
            describe(src, &a),
            describe(dst, &b)
        )),
        (Sphere, _) | (_, Sphere) => Ok(()),
        (Unknown(_), _) | (_, Unknown(_)) => Err(format!(
            "no datum shift known between {} and {}; give a PROJ string with +towgs84",
            describe(src, &a),
            describe(dst, &b)
        )),
        _ => Ok(()),
    }
}

fn run(
    from: &Proj,
    from_geo: bool,
    to: &Proj,
    to_geo: bool,
    identity: bool,
    x: &mut [f64],
    y: &mut [f64],
) {
    assert_eq!(x.len(), y.len(), "x and y of different lengths");
    if identity {
        for (x, y) in x.iter_mut().zip(y.iter_mut()) {
            if !(x.is_finite() && y.is_finite()) || (to_geo && y.abs() > 90.0) {
                *x = f64::NAN;
                *y = f64::NAN;
            } else if to_geo {
                *x = wrap180(*x);
            }
        }
        return;
    }
    if from_geo {
        for v in x.iter_mut().chain(y.iter_mut()) {
            *v = v.to_radians();
        }
    }
    let mut points = Points {
        x: &mut *x,
        y: &mut *y,
    };
    // Points carries failures as NaN, so transform itself does not fail.
    let _ = transform(from, to, &mut points);
    if to_geo {
        for (x, y) in x.iter_mut().zip(y.iter_mut()) {
            *x = wrap180(x.to_degrees());
            *y = y.to_degrees();
        }
    }
}

/// `lon` in -180..180 (180 stays 180).
#[inline]
fn wrap180(lon: f64) -> f64 {
    if (-180.0..=180.0).contains(&lon) {
        lon
    } else {
        (lon + 180.0).rem_euclid(360.0) - 180.0
    }
}

/// Two coordinate slices as proj4rs points; a point that fails a step becomes NaN and is
/// skipped by later steps.
struct Points<'a> {
    x: &'a mut [f64],
    y: &'a mut [f64],
}

impl Transform for Points<'_> {
    fn transform_coordinates<F: TransformClosure>(&mut self, f: &mut F) -> ProjResult<()> {
        for (x, y) in self.x.iter_mut().zip(self.y.iter_mut()) {
            if !(x.is_finite() && y.is_finite()) {
                *x = f64::NAN;
                *y = f64::NAN;
                continue;
            }
            match f(*x, *y, 0.0) {
                Ok((a, b, _)) if a.is_finite() && b.is_finite() => {
                    *x = a;
                    *y = b;
                }
                _ => {
                    *x = f64::NAN;
                    *y = f64::NAN;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
