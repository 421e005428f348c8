//! Text variables while operations apply ([`State::texts`]): held in memory, never computed on.
//! Selections along their dimensions select them, renames rename them, an operation that
//! replaces a dimension (`resample`) drops those along it (as xarray's `resample().mean()`
//! drops what it cannot average), and an expression that uses one is refused naming it.
//! Many files: [`concat_texts`].

use std::sync::Arc;

use super::input::Input;
use super::State;
use crate::error::{Error, Result};
use crate::text::{TextArray, TextVar};

impl State<'_> {
    /// Positions `sub` (of the current ones) along `dim` in every text variable that has it.
    pub(super) fn take_texts(&mut self, dim: &str, sub: &[u64]) {
        for t in self.texts.values_mut() {
            if let Some(axis) = t.dims.iter().position(|d| d == dim) {
                t.values = Arc::new(t.values.take(axis, sub));
            }
        }
    }

    /// Dimensions renamed by `rename` in every text variable, and a dimension's text
    /// coordinate with its dimension.
    pub(super) fn rename_text_dims(&mut self, rename: &dyn Fn(&String) -> String) {
        let old = std::mem::take(&mut self.texts);
        self.texts = old
            .into_iter()
            .map(|(k, mut t)| {
                let coord = t.dims.len() == 1 && t.dims[0] == k;
                t.dims = t.dims.iter().map(rename).collect();
                (if coord { rename(&k) } else { k }, t)
            })
            .collect();
    }

    /// Text variables along `dim` dropped, as xarray's reductions over `dim` drop what they
    /// cannot reduce.
    pub(super) fn drop_texts_along(&mut self, dim: &str) {
        self.texts.retain(|_, t| !t.dims.iter().any(|d| d == dim));
    }

    /// Why `name` cannot be computed on, when it is a text variable.
    pub(super) fn text_reason(&self, name: &str) -> Option<String> {
        let t = self.texts.get(name)?;
        Some(format!(
            "'{name}' is a text variable ({}); text is carried into the cube as it is, not \
             computed on",
            t.values.xarray_dtype(&t.attrs)
        ))
    }
}

/// The text variables of files `parts` (in the joined order; `template` the one whose variables
/// the join takes) joined along `dim`: those with `dim` concatenated (a file without it gives
/// one position), the others taken once and required to be the same in every file.
///
/// # Errors
/// [`Error::Combine`] naming the file: a text variable missing, or without `dim` and different
/// from the template's; values that cannot be joined.
pub(super) fn concat_texts(
    parts: &[&Input],
    template: &Input,
    dim: &str,
    any_dim: bool,
) -> Result<Vec<(String, TextVar)>> {
    let mut out = Vec::new();
    for (name, t) in &template.texts {
        let find = |p: &Input| -> Result<TextVar> {
            p.texts
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
                .ok_or_else(|| Error::Combine {
                    location: p.location.clone(),
                    reason: format!(
                        "text variable '{name}' is missing (it is in {})",
                        template.location
                    ),
                })
        };
        let along = if any_dim {
            t.dims.iter().any(|d| d == dim)
        } else {
            !t.dims.is_empty()
        };
        if !along {
            for p in parts {
                let own = find(p)?;
                if own.dims != t.dims || own.values != t.values || own.attrs != t.attrs {
                    return Err(Error::Combine {
                        location: p.location.clone(),
                        reason: format!(
                            "text variable '{name}' differs from that of {}; a variable without \
                             the joined dimension must be the same in every file",
                            template.location
                        ),
                    });
                }
            }
            out.push((name.clone(), t.clone()));
            continue;
        }
        let axis = t.dims.iter().position(|d| d == dim).unwrap_or(0);
        let mut arrays: Vec<TextArray> = Vec::with_capacity(parts.len());
        for p in parts {
            let own = find(p)?;
            let has = own.dims.iter().any(|d| d == dim);
            arrays.push(if has {
                (*own.values).clone()
            } else {
                own.values.with_axis(axis)
            });
        }
        let refs: Vec<&TextArray> = arrays.iter().collect();
        let values = TextArray::concat(&refs, axis).map_err(|e| Error::Combine {
            location: template.location.clone(),
            reason: format!("text variable '{name}' cannot be joined along '{dim}': {e}"),
        })?;
        let mut dims = t.dims.clone();
        if !dims.iter().any(|d| d == dim) {
            dims.insert(axis, dim.to_string());
        }
        out.push((
            name.clone(),
            TextVar {
                dims,
                values: Arc::new(values),
                attrs: t.attrs.clone(),
                chunks: t.chunks.clone(),
            },
        ));
    }
    for p in parts {
        if let Some((n, _)) = p
            .texts
            .iter()
            .find(|(n, _)| !template.texts.iter().any(|(m, _)| m == n))
        {
            return Err(Error::Combine {
                location: p.location.clone(),
                reason: format!(
                    "text variable '{n}' is not in {}; every file must have the same variables",
                    template.location
                ),
            });
        }
    }
    Ok(out)
}
