//! `cubeforge grid`: what a recipe's `grid:` block resolves to (CRS, dims and shape,
//! resolution, affine, bbox, first and last centres), so a grid can be checked before a build.

use serde_json::Value;

use crate::error::{Error, Result};
use crate::geo::{spec, GeoBox};
use crate::recipe::RecipeDoc;

/// The grid `doc`'s `grid:` block resolves to.
///
/// # Errors
/// A recipe without a `grid:` block; a block that does not resolve (its field and line named);
/// a `like: INPUT` grid, which only a build resolves (it needs the input's coordinates).
pub fn resolve(doc: &RecipeDoc) -> Result<GeoBox> {
    let Some(g) = &doc.recipe.grid else {
        return Err(Error::Recipe {
            location: format!("{}:1", doc.path),
            message: "grid: the recipe has no `grid:` block".into(),
        });
    };
    spec::resolve(doc, g)?.ok_or_else(|| {
        spec::grid_err(
            doc,
            "like",
            "a grid `like: INPUT` is the input's own grid: `cubeforge info INPUT` shows it",
        )
    })
}

/// The grid as JSON (see [`GeoBox::describe`]).
#[must_use]
pub fn describe(gb: &GeoBox) -> Value {
    gb.describe()
}
