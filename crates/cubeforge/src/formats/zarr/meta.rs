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
        let dimension_names = match attrs.remove("_ARRAY_DIMENSIONS") {
            Some(Value::Array(names)) => Some(
                names
                    .iter()
                    .map(|n| n.as_str().map(str::to_string))
                    .collect::<Vec<_>>(),
            ),
            _ => None,
        };
        Ok(ArrayMeta {
            zarr_format: 2,
            dtype: DType::from_name(&dtype_text).filter(|_| !dtype_text.starts_with(['S', 'U'])),
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
            Some(Value::Array(names)) => Some(
                names
                    .iter()
                    .map(|n| n.as_str().map(str::to_string))
                    .collect(),
            ),
            _ => None,
        };
        let mut attrs = obj
            .get("attributes")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        attrs.remove("_ARRAY_DIMENSIONS");
        Ok(ArrayMeta {
            zarr_format: 3,
            dtype: DType::from_name(&dtype_text),
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

    /// Number of elements.
    #[must_use]
    pub fn len(&self) -> u64 {
        self.shape.iter().product()
    }

    /// Whether the array has no elements.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
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
