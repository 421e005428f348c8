//! The affine transform of a GeoTIFF, as GDAL (and so rasterio) reports it: from the
//! ModelTransformationTag, or from one tie point and the pixel scale; shifted by half a pixel
//! for pixel-is-point rasters (GDAL's default).

pub(crate) use crate::geo::Affine;

impl Affine {
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
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
