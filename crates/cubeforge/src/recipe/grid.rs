//! The recipe's target grid (`grid:`), `regrid` and `expand`: the types, as the recipe spells
//! them. Resolving a grid is [`crate::geo::spec`]'s; lowering `regrid` and `expand` is
//! `lower/regrid.rs`'s and `lower/expand.rs`'s.

use indexmap::IndexMap;
use serde::Deserialize;

/// The target grid, odc-geo's GeoBox model: a CRS and `bbox` + `resolution`, `bbox` + `size`,
/// or `like: INPUT`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GridSpec {
    /// `EPSG:n`, a PROJ string (`+proj=…`) or WKT; required unless `like`.
    #[serde(default)]
    pub crs: Option<String>,
    /// The area to cover, in the grid's CRS.
    #[serde(default)]
    pub bbox: Option<BboxSpec>,
    /// The pixel size: one number (square pixels, north-up) or `{x, y}`.
    #[serde(default)]
    pub resolution: Option<ResolutionSpec>,
    /// The number of pixels across the bbox (xcube gen's `output_size`); never snapped.
    #[serde(default)]
    pub size: Option<SizeSpec>,
    /// An input's own grid.
    #[serde(default)]
    pub like: Option<String>,
    /// How `bbox` + `resolution` snap: `edge` (default), `center`, `floating` or `{x, y}`
    /// pixel fractions, as odc-geo's `anchor`.
    #[serde(default)]
    pub anchor: Option<AnchorSpec>,
}

/// A bounding box in a CRS's units; explicit edges, never a tuple.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BboxSpec {
    /// Western edge.
    pub left: f64,
    /// Southern edge.
    pub bottom: f64,
    /// Eastern edge.
    pub right: f64,
    /// Northern edge.
    pub top: f64,
}

/// A pixel size: `0.25` means `{x: 0.25, y: -0.25}` (north-up).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum ResolutionSpec {
    /// Square pixels, north-up.
    Square(f64),
    /// Each axis as given (`y > 0` is a south-up grid, asked for explicitly).
    Xy {
        /// Along x (positive).
        x: f64,
        /// Along y (negative: north-up).
        y: f64,
    },
}

/// A grid's size in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SizeSpec {
    /// Columns.
    pub x: u64,
    /// Rows.
    pub y: u64,
}

/// How a grid from `bbox` + `resolution` snaps (odc-geo's `anchor`).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum AnchorSpec {
    /// `edge`, `center` (or `centre`), `floating`.
    Named(AnchorName),
    /// Pixel fractions in `[0, 1)` that align with 0.
    Fraction {
        /// Along x.
        x: f64,
        /// Along y.
        y: f64,
    },
}

/// A named anchor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnchorName {
    /// Pixel edges on multiples of the resolution.
    Edge,
    /// Pixel centres on multiples of the resolution.
    #[serde(alias = "centre")]
    Center,
    /// No snapping: the origin is the bbox's corner.
    Floating,
}

/// A resampling method, as `gdalwarp -r` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// The source pixel the target centre falls in.
    Nearest,
    /// Bilinear (a triangle filter stretched over the footprint when downsampling by 2 or more).
    Bilinear,
    /// Cubic convolution (Catmull-Rom), stretched likewise.
    Cubic,
    /// The area-weighted mean of valid source pixels.
    Average,
    /// The most frequent value.
    Mode,
    /// The smallest value.
    Min,
    /// The largest value.
    Max,
    /// The median.
    #[serde(alias = "med")]
    Median,
    /// The first quartile.
    Q1,
    /// The third quartile.
    Q3,
}

impl Method {
    /// Its name in recipes.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Method::Nearest => "nearest",
            Method::Bilinear => "bilinear",
            Method::Cubic => "cubic",
            Method::Average => "average",
            Method::Mode => "mode",
            Method::Min => "min",
            Method::Max => "max",
            Method::Median => "median",
            Method::Q1 => "q1",
            Method::Q3 => "q3",
        }
    }

    /// Whether it interpolates or averages (and so makes values no source pixel has).
    #[must_use]
    pub fn interpolates(self) -> bool {
        matches!(self, Method::Bilinear | Method::Cubic | Method::Average)
    }
}

/// One method for every variable, or one per variable.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum MethodSpec {
    /// The same for all.
    One(Method),
    /// By variable name; `_default` for the rest.
    PerVariable(IndexMap<String, Method>),
}

/// `regrid`: the input's gridded variables onto the recipe's `grid`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegridSpec {
    /// The method(s).
    pub method: MethodSpec,
    /// Allow `bilinear`, `cubic` or `average` on an integer variable that is not packed
    /// (a categorical map, otherwise refused); the result is rounded as GDAL rounds.
    #[serde(default)]
    pub interpolate_integers: bool,
    /// The error allowed when approximating the transform, in source pixels (`gdalwarp -et`);
    /// 0 transforms every pixel exactly.
    #[serde(default = "default_error_threshold")]
    pub error_threshold: f64,
    /// The CRS of an input that names none (coordinates `x`/`y` without a grid mapping).
    #[serde(default)]
    pub source_crs: Option<String>,
}

fn default_error_threshold() -> f64 {
    0.125
}

/// `expand`: static variables given a dimension (with its coordinate) of another variable.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpandSpec {
    /// The variables to expand.
    pub variables: Vec<String>,
    /// The dimension they gain.
    pub along: String,
    /// The variable whose dimension (and order of dimensions) they take.
    pub like: String,
}

/// The training batch shape the output's chunks must tile (`output.batch`).
pub type BatchSpec = IndexMap<String, u64>;

/// Names a variable along a dimension, for messages.
pub type VarOf<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Chunk lengths near `c` that tile `b` (a divisor or a multiple of it), for a suggestion.
fn tiling_suggestions(c: u64, b: u64) -> Vec<u64> {
    let below = (1..=c).rev().find(|k| b % k == 0 || k % b == 0);
    let above = (c + 1..=c.saturating_mul(2).max(b)).find(|k| b % k == 0 || k % b == 0);
    below.into_iter().chain(above).collect()
}

/// Check `output.batch` against `output.chunks`: every batch dimension needs an explicit chunk
/// length, and a chunk and the batch must tile each other (one a whole multiple of the other),
/// so no batch straddles a chunk boundary. `var_of(dim)` names a variable along `dim` for the
/// message, when the variables are known. `Err((dim, message))`.
pub fn check_batch(
    batch: &BatchSpec,
    chunks: &IndexMap<String, u64>,
    var_of: Option<VarOf<'_>>,
) -> Result<(), (String, String)> {
    for (dim, b) in batch {
        if *b == 0 {
            return Err((dim.clone(), "a batch length must be at least 1".into()));
        }
        let Some(c) = chunks.get(dim) else {
            return Err((
                dim.clone(),
                format!(
                    "batch {dim}: {b} needs an explicit chunk length along '{dim}' in \
                     output.chunks (e.g. {dim}: {b}), so the batch can be checked against it"
                ),
            ));
        };
        if c % b != 0 && b % c != 0 {
            let s: Vec<String> = tiling_suggestions(*c, *b)
                .iter()
                .map(|k| format!("{dim}: {k}"))
                .collect();
            let who = var_of
                .and_then(|f| f(dim))
                .map_or_else(|| "chunks".to_string(), |v| format!("{v} has chunks"));
            return Err((
                dim.clone(),
                format!(
                    "{who} {dim}: {c}, which does not tile batch {dim}: {b} (neither divides the \
                     other), so batches would straddle chunk boundaries; use {}",
                    s.join(" or ")
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_must_tile_the_batch() {
        let batch: BatchSpec = [("time".to_string(), 10), ("lat".to_string(), 32)].into();
        let ok: IndexMap<String, u64> = [("time".to_string(), 20), ("lat".to_string(), 16)].into();
        assert!(check_batch(&batch, &ok, None).is_ok());
        let bad: IndexMap<String, u64> = [("time".to_string(), 10), ("lat".to_string(), 48)].into();
        let (dim, m) = check_batch(&batch, &bad, None).expect_err("48 does not tile 32");
        assert_eq!(dim, "lat");
        assert!(m.contains("use lat: 32 or lat: 64"), "{m}");
        let sst = |_: &str| Some("sst".to_string());
        let (_, m) = check_batch(&batch, &bad, Some(&sst)).expect_err("named");
        assert!(
            m.starts_with("sst has chunks lat: 48, which does not tile batch lat: 32"),
            "{m}"
        );
        let missing: IndexMap<String, u64> = [("time".to_string(), 10)].into();
        assert_eq!(
            check_batch(&batch, &missing, None)
                .expect_err("no lat chunk")
                .0,
            "lat"
        );
    }
}
