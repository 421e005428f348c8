//! The affine transform of a GeoTIFF, as GDAL (and so rasterio) reports it: from the
//! ModelTransformationTag, or from one tie point and the pixel scale; shifted by half a pixel
//! for pixel-is-point rasters (GDAL's default). Pixel-centre coordinates as rioxarray computes
//! them, and the `GeoTransform` text rioxarray writes (Python's `repr` of each number).

/// An affine transform `(a, b, c, d, e, f)`: `x = a·col + b·row + c`, `y = d·col + e·row + f`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Affine(pub [f64; 6]);

impl Affine {
    /// What GDAL reports for a raster with no georeferencing.
    pub(crate) const IDENTITY: Affine = Affine([1.0, 0.0, 0.0, 0.0, 1.0, 0.0]);

    /// From the GeoTIFF tags (`None` when they give no transform: no tags, or several tie
    /// points without a scale, which are ground control points).
    pub(crate) fn from_tags(
        matrix: Option<&[f64]>,
        tiepoints: Option<&[f64]>,
        scale: Option<&[f64]>,
        pixel_is_point: bool,
    ) -> Option<Affine> {
        let mut t = if let Some(m) = matrix.filter(|m| m.len() >= 8) {
            [m[0], m[1], m[3], m[4], m[5], m[7]]
        } else {
            let tp = tiepoints.filter(|t| t.len() >= 6)?;
            let s = scale.filter(|s| s.len() >= 2)?;
            let (i, j, x, y) = (tp[0], tp[1], tp[3], tp[4]);
            [s[0], 0.0, x - i * s[0], 0.0, -s[1], y + j * s[1]]
        };
        if pixel_is_point {
            t[2] -= t[0] * 0.5 + t[1] * 0.5;
            t[5] -= t[3] * 0.5 + t[4] * 0.5;
        }
        Some(Affine(t))
    }

    /// Whether it has no rotation or shear (x depends on the column only, y on the row).
    pub(crate) fn is_rectilinear(&self) -> bool {
        self.0[1] == 0.0 && self.0[3] == 0.0
    }

    /// The transform of pixel centres (`self · translation(0.5, 0.5)`, as `affine` computes
    /// it): coordinate `x` of column `i` is `a·i + c'`, `y` of row `j` is `e·j + f'`.
    pub(crate) fn centres(&self) -> Affine {
        let [a, b, c, d, e, f] = self.0;
        Affine([a, b, a * 0.5 + b * 0.5 + c, d, e, d * 0.5 + e * 0.5 + f])
    }

    /// GDAL's order `(c, a, b, f, d, e)`.
    pub(crate) fn gdal(&self) -> [f64; 6] {
        let [a, b, c, d, e, f] = self.0;
        [c, a, b, f, d, e]
    }

    /// The `GeoTransform` attribute rioxarray writes: GDAL's order, each number as Python's
    /// `str` writes a float, separated by spaces.
    pub(crate) fn geo_transform_text(&self) -> String {
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
pub(crate) fn py_float(v: f64) -> String {
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

    #[test]
    fn pixel_is_point_shifts_by_half_a_pixel() {
        let t = Affine::from_tags(
            None,
            Some(&[0.0, 0.0, 0.0, 100.0, 200.0, 0.0]),
            Some(&[10.0, 20.0, 0.0]),
            true,
        )
        .expect("transform");
        assert_eq!(t.0, [10.0, 0.0, 95.0, 0.0, -20.0, 210.0]);
        assert_eq!(t.geo_transform_text(), "95.0 10.0 0.0 210.0 0.0 -20.0");
        // Several tie points without a scale are ground control points: no transform.
        assert!(Affine::from_tags(None, Some(&[0.0; 12]), None, false).is_none());
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
