//! Affine transforms of grids, as GDAL, rasterio's `affine` and odc-geo hold them: pixel
//! *edges* (`x = a·col + b·row + c`), pixel-centre coordinates as rioxarray and odc-geo compute
//! them, GDAL's order, the inverse as `GDALInvGeoTransform` computes it, and the
//! `GeoTransform` text rioxarray writes (Python's `repr` of each number).

/// An affine transform `(a, b, c, d, e, f)`: `x = a·col + b·row + c`, `y = d·col + e·row + f`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Affine(pub [f64; 6]);

impl Affine {
    /// What GDAL reports for a raster with no georeferencing.
    pub const IDENTITY: Affine = Affine([1.0, 0.0, 0.0, 0.0, 1.0, 0.0]);

    /// Whether it has no rotation or shear (x depends on the column only, y on the row).
    pub fn is_rectilinear(&self) -> bool {
        self.0[1] == 0.0 && self.0[3] == 0.0
    }

    /// The transform of pixel centres (`self · translation(0.5, 0.5)`, as `affine` computes
    /// it): coordinate `x` of column `i` is `a·i + c'`, `y` of row `j` is `e·j + f'`.
    pub fn centres(&self) -> Affine {
        let [a, b, c, d, e, f] = self.0;
        Affine([a, b, a * 0.5 + b * 0.5 + c, d, e, d * 0.5 + e * 0.5 + f])
    }

    /// The inverse (geo → pixel) as `GDALInvGeoTransform` computes it, in this crate's order;
    /// `None` for a degenerate transform. A rectilinear one takes GDAL's exact path
    /// (`-c/a`, `1/a`), so positions match GDAL's to the bit.
    #[must_use]
    pub fn inverse(&self) -> Option<Affine> {
        let [a, b, c, d, e, f] = self.0;
        if b == 0.0 && d == 0.0 && a != 0.0 && e != 0.0 {
            return Some(Affine([1.0 / a, 0.0, -c / a, 0.0, 1.0 / e, -f / e]));
        }
        let det = a * e - b * d;
        let magnitude = a.abs().max(b.abs()).max(d.abs().max(e.abs()));
        if det.abs() <= 1e-10 * magnitude * magnitude || !det.is_finite() {
            return None;
        }
        let inv = 1.0 / det;
        Some(Affine([
            e * inv,
            -b * inv,
            (b * f - c * e) * inv,
            -d * inv,
            a * inv,
            (-a * f + c * d) * inv,
        ]))
    }

    /// The point `(col, row)` maps to, as GDAL applies a geotransform
    /// (`c + col·a + row·b`, `f + col·d + row·e`).
    #[must_use]
    pub fn apply(&self, col: f64, row: f64) -> (f64, f64) {
        let [a, b, c, d, e, f] = self.0;
        (c + col * a + row * b, f + col * d + row * e)
    }

    /// GDAL's order `(c, a, b, f, d, e)`.
    pub fn gdal(&self) -> [f64; 6] {
        let [a, b, c, d, e, f] = self.0;
        [c, a, b, f, d, e]
    }

    /// The `GeoTransform` attribute rioxarray writes: GDAL's order, each number as Python's
    /// `str` writes a float, separated by spaces.
    pub fn geo_transform_text(&self) -> String {
        self.gdal()
            .iter()
            .map(|v| py_float(*v))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// A float as Python's `repr`/`str` writes it: the shortest digits that read back, positional
/// for decimal exponents from -4 to 15 (with `.0` for integers), scientific otherwise
/// (`1e+16`, `1.5e-05`).
pub fn py_float(v: f64) -> String {
    if v.is_nan() {
        return "nan".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if v == 0.0 {
        return if v.is_sign_negative() {
            "-0.0".into()
        } else {
            "0.0".into()
        };
    }
    // Rust's `{:e}` gives the shortest round-trip digits: `d.ddde±x`.
    let sci = format!("{:e}", v.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let sign = if v < 0.0 { "-" } else { "" };
    if (-4..16).contains(&exp) {
        let n = digits.len() as i32;
        let body = if exp < 0 {
            format!("0.{}{digits}", "0".repeat((-exp - 1) as usize))
        } else if exp + 1 >= n {
            format!("{digits}{}.0", "0".repeat((exp + 1 - n) as usize))
        } else {
            let (int, frac) = digits.split_at((exp + 1) as usize);
            format!("{int}.{frac}")
        };
        format!("{sign}{body}")
    } else {
        let (first, rest) = digits.split_at(1);
        let m = if rest.is_empty() {
            first.to_string()
        } else {
            format!("{first}.{rest}")
        };
        let es = if exp < 0 { '-' } else { '+' };
        format!("{sign}{m}e{es}{:02}", exp.abs())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn inverse_as_gdal_computes_it() {
        let t = Affine([0.25, 0.0, 60.0, 0.0, -0.25, 20.0]);
        let inv = t.inverse().expect("invertible");
        assert_eq!(inv.0, [4.0, 0.0, -240.0, 0.0, -4.0, 80.0]);
        assert_eq!(inv.apply(60.125, 19.875), (0.5, 0.5));
        let rotated = Affine([2.0, 1.0, 10.0, 1.0, -2.0, 5.0]);
        let r = rotated.inverse().expect("invertible");
        let (x, y) = rotated.apply(3.0, 4.0);
        let (c, w) = r.apply(x, y);
        assert!((c - 3.0).abs() < 1e-12 && (w - 4.0).abs() < 1e-12);
        assert!(Affine([1.0, 2.0, 0.0, 2.0, 4.0, 0.0]).inverse().is_none());
    }

    #[test]
    fn python_float_text() {
        for (v, s) in [
            (440_720.0, "440720.0"),
            (-60.0, "-60.0"),
            (0.0, "0.0"),
            (14.257_399_655_072_21, "14.25739965507221"),
            (0.5, "0.5"),
            (1e16, "1e+16"),
            (1.5e-5, "1.5e-05"),
            (0.0001, "0.0001"),
            (123_456_789_012_345.6, "123456789012345.6"),
            (-2.5e-300, "-2.5e-300"),
            (f64::NAN, "nan"),
        ] {
            assert_eq!(py_float(v), s);
        }
    }

    proptest! {
        #[test]
        fn python_float_text_reads_back(bits in any::<u64>()) {
            let v = f64::from_bits(bits);
            prop_assume!(v.is_finite());
            let s = py_float(v);
            prop_assert_eq!(s.parse::<f64>().expect("parses"), v);
            let plain = !s.contains('e');
            let exp = if v == 0.0 { 0 } else { v.abs().log10().floor() as i32 };
            // Positional exactly for exponents -4..16 (log10 may round at the edges).
            if (-3..15).contains(&exp) { prop_assert!(plain, "{}", s); }
            if !(-6..18).contains(&exp) { prop_assert!(!plain, "{}", s); }
            if plain { prop_assert!(s.contains('.'), "{}", s); }
        }
    }
}
