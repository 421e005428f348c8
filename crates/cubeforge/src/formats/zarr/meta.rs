//! Array metadata summaries: what a `.zarray` (v2) or `zarr.json` (v3) document says, read by
//! cubeforge itself so that `info` can describe an array `zarrs` cannot decode and errors can
//! name the unsupported feature.

use serde_json::{Map, Value};

use super::ZarrFormat;
use crate::dtype::DType;
use crate::error::{Error, Result};

/// What a metadata summary says about one array, read from its JSON document.
#[derive(Debug, Clone)]
pub struct ArrayMeta {
    /// Zarr format (2 or 3).
    pub zarr_format: ZarrFormat,
    /// Shape.
    pub shape: Vec<u64>,
    /// Read-chunk shape (the inner chunk shape for sharded arrays).
    pub chunks: Vec<u64>,
    /// Shard shape for sharded v3 arrays.
    pub shards: Option<Vec<u64>>,
    /// Data type as written in the metadata (`<f4`, `float32`, `|S7`, …).
    pub dtype_text: String,
    /// The numeric type, when it is one.
    pub dtype: Option<DType>,
    /// The raw `fill_value` JSON.
    pub fill_value: Value,
    /// Codec pipeline, one entry per codec (`blosc(cname=lz4,clevel=5,shuffle=1)`).
    pub codecs: Vec<String>,
    /// Dimension names from `_ARRAY_DIMENSIONS` (v2) or `dimension_names` (v3).
    pub dimension_names: Option<Vec<Option<String>>>,
    /// Attributes, without `_ARRAY_DIMENSIONS`.
    pub attrs: Map<String, Value>,
}

impl ArrayMeta {
    /// Summarise a v2 `.zarray` document and its `.zattrs`.
    ///
    /// # Errors
    /// [`Error::InvalidMetadata`] when required fields are missing or malformed.
    pub fn from_v2(zarray: &Value, zattrs: Option<&Value>, location: &str) -> Result<ArrayMeta> {
        let bad = |reason: String| Error::InvalidMetadata {
            location: location.to_string(),
            reason,
        };
        let obj = zarray
            .as_object()
            .ok_or_else(|| bad("expected a JSON object".into()))?;
        let shape = u64_list(obj.get("shape"), "shape").map_err(bad)?;
        let chunks = u64_list(obj.get("chunks"), "chunks").map_err(bad)?;
        if chunks.len() != shape.len() {
            return Err(bad(format!(
                "'chunks' has {} entries but 'shape' has {}",
                chunks.len(),
                shape.len()
            )));
        }
        let dtype_text = match obj.get("dtype") {
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
            None => return Err(bad("missing 'dtype'".into())),
        };
        let mut codecs = Vec::new();
        if obj.get("order").and_then(Value::as_str) == Some("F") {
            codecs.push("transpose(order=F)".to_string());
        }
        if let Some(Value::Array(filters)) = obj.get("filters") {
            codecs.extend(filters.iter().map(describe_v2_codec));
        }
        match obj.get("compressor") {
            Some(Value::Null) | None => {}
            Some(c) => codecs.push(describe_v2_codec(c)),
        }
        let mut attrs = zattrs
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        if let Some(v) = obj.get("zarr_format").filter(|v| v.as_u64() != Some(2)) {
            return Err(bad(format!(
                "'zarr_format' is {v}; a .zarray document says 2"
            )));
        }
        let dimension_names = match attrs.remove("_ARRAY_DIMENSIONS") {
            None => None,
            Some(v) => {
                Some(names_list(&v, shape.len(), "_ARRAY_DIMENSIONS (in .zattrs)").map_err(bad)?)
            }
        };
        let dtype = DType::from_name(&dtype_text).filter(|_| !dtype_text.starts_with(['S', 'U']));
        check_sizes(&shape, &chunks, dtype).map_err(bad)?;
        Ok(ArrayMeta {
            zarr_format: 2,
            dtype,
            shape,
            chunks,
            shards: None,
            dtype_text,
            fill_value: obj.get("fill_value").cloned().unwrap_or(Value::Null),
            codecs,
            dimension_names,
            attrs,
        })
    }

    /// Summarise a v3 `zarr.json` array document.
    ///
    /// # Errors
    /// [`Error::InvalidMetadata`] when required fields are missing or malformed.
    pub fn from_v3(doc: &Value, location: &str) -> Result<ArrayMeta> {
        let bad = |reason: String| Error::InvalidMetadata {
            location: location.to_string(),
            reason,
        };
        let obj = doc
            .as_object()
            .ok_or_else(|| bad("expected a JSON object".into()))?;
        match obj.get("zarr_format") {
            Some(v) if v.as_u64() == Some(3) => {}
            Some(v) => {
                return Err(bad(format!(
                    "'zarr_format' is {v}; a zarr.json document of Zarr v3 says 3"
                )))
            }
            None => return Err(bad("missing 'zarr_format'".into())),
        }
        let shape = u64_list(obj.get("shape"), "shape").map_err(bad)?;
        let grid_chunks = u64_list(
            obj.get("chunk_grid")
                .and_then(|g| g.get("configuration"))
                .and_then(|c| c.get("chunk_shape")),
            "chunk_grid.configuration.chunk_shape",
        )
        .map_err(bad)?;
        let dtype_text = match obj.get("data_type") {
            Some(Value::String(s)) => s.clone(),
            Some(other) => other
                .get("name")
                .and_then(Value::as_str)
                .map_or_else(|| other.to_string(), str::to_string),
            None => return Err(bad("missing 'data_type'".into())),
        };
        let codec_list = obj
            .get("codecs")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut chunks = grid_chunks.clone();
        let mut shards = None;
        for c in &codec_list {
            if c.get("name").and_then(Value::as_str) == Some("sharding_indexed") {
                if let Ok(inner) = u64_list(
                    c.get("configuration").and_then(|c| c.get("chunk_shape")),
                    "chunk_shape",
                ) {
                    shards = Some(grid_chunks.clone());
                    chunks = inner;
                }
            }
        }
        let dimension_names = match obj.get("dimension_names") {
            None | Some(Value::Null) => None,
            Some(v) => Some(names_list(v, shape.len(), "dimension_names").map_err(bad)?),
        };
        if grid_chunks.len() != shape.len() || chunks.len() != shape.len() {
            return Err(bad(format!(
                "the chunk shape has {} entries but 'shape' has {}",
                chunks.len().min(grid_chunks.len()),
                shape.len()
            )));
        }
        let dtype = DType::from_name(&dtype_text);
        check_sizes(&shape, &chunks, dtype).map_err(bad)?;
        let mut attrs = obj
            .get("attributes")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        attrs.remove("_ARRAY_DIMENSIONS");
        Ok(ArrayMeta {
            zarr_format: 3,
            dtype,
            shape,
            chunks,
            shards,
            dtype_text,
            fill_value: obj.get("fill_value").cloned().unwrap_or(Value::Null),
            codecs: codec_list.iter().map(describe_v3_codec).collect(),
            dimension_names,
            attrs,
        })
    }

    /// Number of elements (the summaries check when they are made that it fits in a `u64`).
    #[must_use]
    pub fn len(&self) -> u64 {
        element_count(&self.shape).unwrap_or(u64::MAX)
    }

    /// Whether the array has no elements.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The number of elements of `shape`, `None` when it does not fit in a `u64`.
#[must_use]
pub fn element_count(shape: &[u64]) -> Option<u64> {
    shape.iter().try_fold(1u64, |acc, n| acc.checked_mul(*n))
}

/// Arrays and chunks whose element counts and byte sizes fit in 64 bits, and chunks that
/// are not empty along a dimension the array has.
fn check_sizes(
    shape: &[u64],
    chunks: &[u64],
    dtype: Option<DType>,
) -> std::result::Result<(), String> {
    let item = dtype.map_or(1, |d| d.size() as u64);
    let fits = |s: &[u64]| element_count(s).and_then(|n| n.checked_mul(item)).is_some();
    if !fits(shape) {
        return Err(format!(
            "'shape' {shape:?} holds more elements than fit in 64 bits"
        ));
    }
    if !fits(chunks) {
        return Err(format!(
            "chunk shape {chunks:?} holds more elements than fit in 64 bits"
        ));
    }
    if let Some(axis) = (0..chunks.len()).find(|&i| chunks[i] == 0 && shape.get(i) != Some(&0)) {
        return Err(format!(
            "chunk shape {chunks:?} is 0 along axis {axis}; chunks must have at least one element per dimension"
        ));
    }
    Ok(())
}

/// Dimension names: a list of strings (or nulls, in v3), one per dimension of the array.
fn names_list(
    v: &Value,
    ndim: usize,
    field: &str,
) -> std::result::Result<Vec<Option<String>>, String> {
    let Some(names) = v.as_array() else {
        return Err(format!("'{field}' must be a list of names, found {v}"));
    };
    if names.len() != ndim {
        return Err(format!(
            "'{field}' names {} dimension(s) ({}) but the array has {ndim}",
            names.len(),
            v
        ));
    }
    names
        .iter()
        .map(|n| match n {
            Value::String(s) => Ok(Some(s.clone())),
            Value::Null => Ok(None),
            other => Err(format!("'{field}' must hold names, found {other}")),
        })
        .collect()
}

fn u64_list(v: Option<&Value>, field: &str) -> std::result::Result<Vec<u64>, String> {
    let arr = v
        .and_then(Value::as_array)
        .ok_or_else(|| format!("missing or non-list '{field}'"))?;
    arr.iter()
        .map(|x| {
            x.as_u64()
                .ok_or_else(|| format!("'{field}' must hold non-negative integers, found {x}"))
        })
        .collect()
}

fn describe_config(obj: &Map<String, Value>, skip: &[&str]) -> String {
    let mut parts = Vec::new();
    for (k, v) in obj {
        if skip.contains(&k.as_str()) {
            continue;
        }
        let text = match v {
            Value::String(s) => s.clone(),
            Value::Array(items) if items.iter().all(Value::is_object) && !items.is_empty() => {
                let inner: Vec<String> = items.iter().map(describe_v3_codec).collect();
                format!("[{}]", inner.join(", "))
            }
            other => other.to_string(),
        };
        parts.push(format!("{k}={text}"));
    }
    parts.join(",")
}

fn describe_v2_codec(c: &Value) -> String {
    let Some(obj) = c.as_object() else {
        return c.to_string();
    };
    let id = obj.get("id").and_then(Value::as_str).unwrap_or("?");
    format!("{id}({})", describe_config(obj, &["id"]))
}

fn describe_v3_codec(c: &Value) -> String {
    let name = c.get("name").and_then(Value::as_str).unwrap_or("?");
    match c.get("configuration").and_then(Value::as_object) {
        Some(cfg) if !cfg.is_empty() => format!("{name}({})", describe_config(cfg, &[])),
        _ => name.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zarray(shape: Value, chunks: Value) -> Value {
        serde_json::json!({"zarr_format": 2, "shape": shape, "chunks": chunks, "dtype": "<f4",
                           "compressor": null, "fill_value": "NaN", "order": "C", "filters": null})
    }

    fn reason(r: Result<ArrayMeta>) -> String {
        r.expect_err("refused").to_string()
    }

    #[test]
    fn sizes_must_fit_in_64_bits() {
        let big = serde_json::json!([1u64 << 40, 1u64 << 40, 1u64 << 40]);
        let e = reason(ArrayMeta::from_v2(
            &zarray(big, serde_json::json!([1, 1, 1])),
            None,
            "x/.zarray",
        ));
        assert!(e.contains("x/.zarray") && e.contains("64 bits"), "{e}");
        // Elements that fit, bytes that do not (4 bytes each).
        let e = reason(ArrayMeta::from_v2(
            &zarray(serde_json::json!([u64::MAX / 2]), serde_json::json!([1])),
            None,
            "x",
        ));
        assert!(e.contains("64 bits"), "{e}");
        let e = reason(ArrayMeta::from_v2(
            &zarray(serde_json::json!([4]), serde_json::json!([0])),
            None,
            "x",
        ));
        assert!(e.contains("chunk shape [0]"), "{e}");
        let ok = ArrayMeta::from_v2(
            &zarray(serde_json::json!([1u64 << 50]), serde_json::json!([10])),
            None,
            "x",
        );
        assert_eq!(ok.expect("fits").len(), 1u64 << 50);
    }

    #[test]
    fn one_dimension_name_per_axis() {
        let doc = zarray(serde_json::json!([2, 3]), serde_json::json!([2, 3]));
        let attrs = |names: Value| serde_json::json!({ "_ARRAY_DIMENSIONS": names });
        for names in [
            serde_json::json!(["y"]),
            serde_json::json!(["y", "x", "z"]),
            serde_json::json!("y"),
        ] {
            let e = reason(ArrayMeta::from_v2(&doc, Some(&attrs(names)), "v/.zarray"));
            assert!(
                e.contains("v/.zarray") && e.contains("_ARRAY_DIMENSIONS"),
                "{e}"
            );
        }
        let m =
            ArrayMeta::from_v2(&doc, Some(&attrs(serde_json::json!(["y", "x"]))), "v").expect("ok");
        assert_eq!(m.dimension_names.map(|n| n.len()), Some(2));
        let v3 = |names: Value, format: Value| {
            serde_json::json!({"zarr_format": format, "node_type": "array",
            "shape": [2, 3], "data_type": "float32", "fill_value": 0, "dimension_names": names,
            "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [2, 3]}},
            "codecs": [{"name": "bytes"}]})
        };
        let e = reason(ArrayMeta::from_v3(
            &v3(serde_json::json!(["y"]), serde_json::json!(3)),
            "v/zarr.json",
        ));
        assert!(e.contains("dimension_names") && e.contains("has 2"), "{e}");
        for format in [serde_json::json!(4), serde_json::json!("3"), Value::Null] {
            let e = reason(ArrayMeta::from_v3(
                &v3(serde_json::json!(["y", "x"]), format),
                "v/zarr.json",
            ));
            assert!(
                e.contains("v/zarr.json") && e.contains("zarr_format"),
                "{e}"
            );
        }
        assert!(ArrayMeta::from_v3(
            &v3(serde_json::json!(["y", null]), serde_json::json!(3)),
            "v"
        )
        .is_ok());
    }

    #[test]
    fn describes_codecs() {
        let v2 = serde_json::json!({"id": "blosc", "cname": "lz4", "clevel": 5, "shuffle": 1});
        assert_eq!(
            describe_v2_codec(&v2),
            "blosc(cname=lz4,clevel=5,shuffle=1)"
        );
        let v3 = serde_json::json!({"name": "sharding_indexed", "configuration": {
            "chunk_shape": [2, 2],
            "codecs": [{"name": "bytes", "configuration": {"endian": "little"}}, {"name": "gzip", "configuration": {"level": 5}}]
        }});
        assert_eq!(
            describe_v3_codec(&v3),
            "sharding_indexed(chunk_shape=[2,2],codecs=[bytes(endian=little), gzip(level=5)])"
        );
    }
}
