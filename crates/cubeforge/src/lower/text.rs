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
                storage: t.storage.clone(),
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::{json, Map, Value};
    use zarrs_storage::ReadableStorageTraits as _;

    use crate::build::{build_input, BuildOptions};
    use crate::cf::CfDecoding;
    use crate::coord::Coord;
    use crate::dtype::DType;
    use crate::formats::memory::MemorySource;
    use crate::lower::{Input, InputDim, InputVar};
    use crate::recipe::RecipeDoc;
    use crate::store::{Location, Store};
    use crate::text::{TextArray, TextData, TextVar};

    /// `v (station 4)` on a computed station coordinate, `name (station)` `|S5` and the
    /// strings `code (station)`.
    fn input() -> Input {
        let v = MemorySource::from_f64(
            "memory://text-in/v",
            DType::Float32,
            (&[4], &[4]),
            &[1.0, 2.0, 3.0, 4.0],
        )
        .expect("source");
        let decoding = CfDecoding::from_attrs(&Map::new(), DType::Float32, None).expect("cf");
        let coord_decoding = CfDecoding::from_attrs(&Map::new(), DType::Int32, None).expect("cf");
        let names = TextArray::from_chars(&[4, 5], b"alphabeta\0gammadelta".to_vec(), true);
        let text = |values: TextArray| TextVar {
            dims: vec!["station".into()],
            values: Arc::new(values),
            attrs: Map::new(),
            chunks: vec![4],
            storage: crate::text::TextStorage::default(),
        };
        let codes = TextData::Str(["a", "bé", "c", "d"].map(String::from).to_vec());
        Input {
            location: "memory://text-in".into(),
            dims: vec![InputDim {
                name: "station".into(),
                len: 4,
                coord: Some(Coord::computed(
                    10.0,
                    10.0,
                    4,
                    DType::Int32,
                    Map::new(),
                    coord_decoding,
                )),
            }],
            variables: vec![InputVar {
                name: "v".into(),
                dims: vec!["station".into()],
                source: Arc::new(v),
                decoding,
                attrs: Map::new(),
            }],
            attrs: Map::new(),
            unreadable: Vec::new(),
            texts: vec![
                ("name".into(), text(names.expect("names"))),
                (
                    "code".into(),
                    text(TextArray {
                        shape: vec![4],
                        data: codes,
                    }),
                ),
            ],
        }
    }

    /// Build `operations` into `memory://{name}` (Zarr `format`, uncompressed); the documents
    /// and the one chunk of `var`.
    fn built(name: &str, format: u8, operations: &str, var: &str) -> (Value, Vec<u8>) {
        let text = format!(
            "version: 1\ninputs:\n  m: {{url: \"memory://text-in\"}}\noutput:\n  url: \
             \"memory://{name}\"\n  zarr_format: {format}\n  compressor: none\noperations:\n{operations}"
        );
        let doc = RecipeDoc::parse("text.yaml", &text).expect("recipe");
        let output = Location::parse(&format!("memory://{name}")).expect("location");
        let opts = BuildOptions {
            memory_limit: 1 << 20,
            ..BuildOptions::default()
        };
        build_input(&doc, &input(), &output, &opts, &|_, _, _| {}).expect("build");
        let store = Store::open(&output).expect("store");
        let get = |key: &str| {
            let k = zarrs_storage::StoreKey::new(key).expect("key");
            store.storage().get(&k).expect("get").expect(key).to_vec()
        };
        let (meta, chunk) = if format == 2 {
            (format!("{var}/.zarray"), format!("{var}/0"))
        } else {
            (format!("{var}/zarr.json"), format!("{var}/c/0"))
        };
        let meta: Value = serde_json::from_slice(&get(&meta)).expect("json");
        (meta, get(&chunk))
    }

    #[test]
    fn selections_select_text_held_in_memory_and_the_cube_holds_it() {
        let ops = "  - isel: {station: {start: 1}}\n  - sortby: station\n  - isel: {station: {stop: 2}}\n";
        let (meta, chunk) = built("text-out-2", 2, ops, "name");
        assert_eq!(meta["dtype"], json!("|S5"));
        assert_eq!(meta["shape"], json!([2]));
        assert_eq!(chunk, b"beta\0gamma");
        let (meta, chunk) = built("text-out-3", 3, ops, "code");
        assert_eq!(
            meta["data_type"],
            json!({"name": "fixed_length_utf32", "configuration": {"length_bytes": 8}})
        );
        assert_eq!(meta["fill_value"], json!(""));
        let want: Vec<u8> = [u32::from('b'), 0xe9, u32::from('c'), 0]
            .iter()
            .flat_map(|c| c.to_le_bytes())
            .collect();
        assert_eq!(chunk, want);
    }

    #[test]
    fn computing_on_text_is_refused_naming_it() {
        let text = "version: 1\ninputs:\n  m: {url: \"memory://text-in\"}\noutput: {url: \
                    \"memory://text-bad\"}\noperations:\n  - assign: {x: \"name * 2\"}\n";
        let doc = RecipeDoc::parse("bad.yaml", text).expect("recipe");
        let output = Location::parse("memory://text-bad").expect("location");
        let e = build_input(
            &doc,
            &input(),
            &output,
            &BuildOptions::default(),
            &|_, _, _| {},
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("'name' is a text variable (|S5)"), "{e}");
        assert!(e.contains("bad.yaml:6"), "{e}");
    }
}
