//! A recipe's `grid:` block resolved to a [`GeoBox`], with errors naming the field and its
//! line, before any data is read. `like: INPUT` is resolved where the input is open
//! (`lower/grid.rs`); here it only checks the block's shape.

use super::crs::Crs;
use super::geobox::{Anchor, Bbox, GeoBox};
use crate::error::{Error, Result};
use crate::recipe::{AnchorName, AnchorSpec, GridSpec, RecipeDoc, ResolutionSpec};

/// An error about `grid.FIELD`, at the line of `FIELD` within the `grid:` block.
pub fn grid_err(doc: &RecipeDoc, field: &str, message: impl Into<String>) -> Error {
    doc.error_at(grid_line(doc, field), &format!("grid.{field}"), message)
}

/// The line of `field` inside the `grid:` block (the block's line when not found).
fn grid_line(doc: &RecipeDoc, field: &str) -> usize {
    let start = doc.line_of("grid");
    if start == 0 {
        return 1;
    }
    let lines: Vec<&str> = doc.text.lines().collect();
    let indent = |l: &str| l.len() - l.trim_start().len();
    let base = indent(lines[start - 1]);
    if lines[start - 1].contains(&format!("{field}:")) {
        return start;
    }
    for (n, l) in lines.iter().enumerate().skip(start) {
        if !l.trim().is_empty() && !l.trim_start().starts_with('#') && indent(l) <= base {
            break;
        }
        if l.trim_start().starts_with(&format!("{field}:")) {
            return n + 1;
        }
    }
    start
}

/// The CRS `grid.crs` names.
///
/// # Errors
/// A missing or unparsable CRS, at `grid.crs`.
pub fn grid_crs(doc: &RecipeDoc, spec: &GridSpec) -> Result<Crs> {
    let Some(text) = &spec.crs else {
        return Err(grid_err(
            doc,
            "crs",
            "a grid needs a crs (EPSG:n, a PROJ string or WKT) unless it is `like: INPUT`",
        ));
    };
    Crs::parse(text).map_err(|m| grid_err(doc, "crs", m))
}

/// Check the block's shape: exactly one of `resolution`, `size`, `like`; a `bbox` with the
/// first two; `anchor` only with `resolution`.
///
/// # Errors
/// The first problem, naming its field.
pub fn check_shape(doc: &RecipeDoc, spec: &GridSpec) -> Result<()> {
    let given: Vec<&str> = [
        ("resolution", spec.resolution.is_some()),
        ("size", spec.size.is_some()),
        ("like", spec.like.is_some()),
    ]
    .iter()
    .filter(|(_, g)| *g)
    .map(|(n, _)| *n)
    .collect();
    if given.len() != 1 {
        let field = given.get(1).copied().unwrap_or("resolution");
        return Err(grid_err(
            doc,
            field,
            format!(
                "give exactly one of resolution, size or like (given: {})",
                if given.is_empty() {
                    "none".to_string()
                } else {
                    given.join(", ")
                }
            ),
        ));
    }
    if spec.like.is_none() && spec.bbox.is_none() {
        return Err(grid_err(
            doc,
            "bbox",
            "a grid from resolution or size needs a bbox",
        ));
    }
    if spec.like.is_some() && (spec.bbox.is_some() || spec.crs.is_some()) {
        return Err(grid_err(
            doc,
            "like",
            "a grid `like: INPUT` takes that input's CRS and extent: leave out crs and bbox",
        ));
    }
    if spec.anchor.is_some() && spec.resolution.is_none() {
        return Err(grid_err(
            doc,
            "anchor",
            "anchor goes with resolution only (size never snaps)",
        ));
    }
    if let Some(AnchorSpec::Fraction { x, y }) = spec.anchor {
        if !(0.0..1.0).contains(&x) || !(0.0..1.0).contains(&y) {
            return Err(grid_err(
                doc,
                "anchor",
                format!("anchor fractions must be in [0, 1), not x {x}, y {y}"),
            ));
        }
    }
    Ok(())
}

/// The grid a `grid:` block given by `bbox` + `resolution` or `bbox` + `size` resolves to
/// (`None` for `like`, which needs the input).
///
/// # Errors
/// A malformed block, an unparsable CRS, a bad resolution, size or bbox, a bbox outside the
/// CRS's area of use: each naming its field and line.
pub fn resolve(doc: &RecipeDoc, spec: &GridSpec) -> Result<Option<GeoBox>> {
    check_shape(doc, spec)?;
    if spec.like.is_some() {
        return Ok(None);
    }
    let crs = grid_crs(doc, spec)?;
    let Some(b) = spec.bbox else {
        return Err(grid_err(
            doc,
            "bbox",
            "a grid from resolution or size needs a bbox",
        ));
    };
    let bbox = Bbox {
        left: b.left,
        bottom: b.bottom,
        right: b.right,
        top: b.top,
    };
    let finite = [b.left, b.bottom, b.right, b.top]
        .iter()
        .all(|v| v.is_finite());
    if !finite || b.left >= b.right || b.bottom >= b.top {
        return Err(grid_err(
            doc,
            "bbox",
            format!(
                "left must be less than right and bottom less than top, not left {}, bottom {}, \
                 right {}, top {}",
                b.left, b.bottom, b.right, b.top
            ),
        ));
    }
    let gb = if let Some(r) = spec.resolution {
        let res = match r {
            ResolutionSpec::Square(r) => {
                if !(r.is_finite() && r > 0.0) {
                    return Err(grid_err(
                        doc,
                        "resolution",
                        format!(
                            "a resolution must be positive and finite, not {r} (a north-up grid \
                             is `resolution: {}`; a south-up one `{{x: R, y: R}}`)",
                            r.abs()
                        ),
                    ));
                }
                [r, -r]
            }
            ResolutionSpec::Xy { x, y } => {
                if !(x.is_finite() && x > 0.0) {
                    return Err(grid_err(
                        doc,
                        "resolution",
                        format!(
                            "the x resolution must be positive and finite, not {x} (a north-up \
                             grid is `{{x: {0}, y: -{0}}}`)",
                            x.abs()
                        ),
                    ));
                }
                if !y.is_finite() || y == 0.0 {
                    return Err(grid_err(
                        doc,
                        "resolution",
                        format!(
                            "the y resolution must be non-zero and finite, not {y} (negative: \
                             north-up, positive: south-up)"
                        ),
                    ));
                }
                [x, y]
            }
        };
        let anchor = match spec.anchor {
            None | Some(AnchorSpec::Named(AnchorName::Edge)) => Anchor::Fraction(0.0, 0.0),
            Some(AnchorSpec::Named(AnchorName::Center)) => Anchor::Fraction(0.5, 0.5),
            Some(AnchorSpec::Named(AnchorName::Floating)) => Anchor::Floating,
            Some(AnchorSpec::Fraction { x, y }) => Anchor::Fraction(x, y),
        };
        GeoBox::from_bbox_resolution(crs, bbox, res, anchor)
            .map_err(|m| grid_err(doc, "resolution", m))?
    } else if let Some(s) = spec.size {
        GeoBox::from_bbox_size(crs, bbox, [s.x, s.y]).map_err(|m| grid_err(doc, "size", m))?
    } else {
        return Ok(None);
    };
    check_bbox(doc, &gb)?;
    Ok(Some(gb))
}

/// The bbox must be ordered and lie in the CRS's area of use.
fn check_bbox(doc: &RecipeDoc, gb: &GeoBox) -> Result<()> {
    let b = gb.bbox();
    if gb.shape[0] > 1 << 31 || gb.shape[1] > 1 << 31 {
        return Err(grid_err(
            doc,
            "resolution",
            format!(
                "the grid would have {} x {} pixels",
                gb.shape[0], gb.shape[1]
            ),
        ));
    }
    super::area::check(&gb.crs, &b).map_err(|m| grid_err(doc, "bbox", m))
}
