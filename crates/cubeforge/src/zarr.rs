//! Zarr format layer: hierarchy discovery (v2 with or without consolidated `.zmetadata`, v3 with
//! or without inline consolidated metadata, implicit v3 groups), array metadata summaries, and
//! chunk-wise reads through `zarrs`.
//!
//! Metadata documents are parsed twice on purpose: once into a small [`ArrayMeta`] summary of our
//! own (so that `info` can describe an array even when `zarrs` cannot decode it, and name the
//! unsupported feature), and once by `zarrs` itself, which owns all decoding.

use std::sync::Arc;

use serde_json::{Map, Value};
use zarrs::array::{Array, ArrayBytes, ArrayMetadata, ArrayMetadataV2, ArrayMetadataV3};
use zarrs_storage::{
    ListableStorageTraits, ReadableStorageTraits, ReadableWritableListableStorageTraits, StoreKey,
    StorePrefix,
};

use crate::dtype::{DType, RawArray};
use crate::error::{Error, Result};
use crate::store::Store;

/// The `zarrs` array type over cubeforge's storage handle.
pub type ZArray = Array<dyn ReadableWritableListableStorageTraits>;

/// A Zarr format version.
pub type ZarrFormat = u8;

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

/// One array found in a group, ready to open.
#[derive(Debug, Clone)]
pub struct ArrayEntry {
    /// Name within its group.
    pub name: String,
    /// Node path from the store root (`/sst`, `/group/array`).
    pub path: String,
    /// Metadata summary.
    pub meta: ArrayMeta,
    /// The metadata in `zarrs`'s own form.
    pub(crate) zarrs_meta: std::result::Result<ArrayMetadata, String>,
}

/// The members of one group.
#[derive(Debug, Clone)]
pub struct GroupListing {
    /// Zarr format of the group.
    pub zarr_format: ZarrFormat,
    /// Whether the listing came from consolidated metadata.
    pub consolidated: bool,
    /// Group attributes.
    pub attrs: Map<String, Value>,
    /// Arrays directly in the group, sorted by name.
    pub arrays: Vec<ArrayEntry>,
    /// Sub-groups directly in the group, sorted by name.
    pub groups: Vec<String>,
    /// When the node at the path is itself an array (not a group), this is true and `arrays`
    /// holds that one array.
    pub is_array: bool,
}

fn key_in(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}/{name}")
    }
}

fn get_json(store: &Store, key: &str) -> Result<Option<Value>> {
    let k = StoreKey::new(key).map_err(|e| Error::InvalidUrl {
        url: store.location().join(key),
        reason: e.to_string(),
    })?;
    let Some(bytes) = store
        .storage()
        .get(&k)
        .map_err(|e| store.storage_error(key, e))?
    else {
        return Ok(None);
    };
    let text = std::str::from_utf8(&bytes).map_err(|e| Error::InvalidMetadata {
        location: store.location().join(key),
        reason: format!("not UTF-8 text: {e}"),
    })?;
    serde_json::from_str(text)
        .map(Some)
        .map_err(|e| Error::InvalidMetadata {
            location: store.location().join(key),
            reason: format!("not valid JSON: {e}"),
        })
}

fn v2_entry(
    store: &Store,
    path: &str,
    name: &str,
    zarray: &Value,
    zattrs: Option<&Value>,
) -> Result<ArrayEntry> {
    let location = store.location().join(&key_in(path, ".zarray"));
    let meta = ArrayMeta::from_v2(zarray, zattrs, &location)?;
    let zarrs_meta = serde_json::from_value::<ArrayMetadataV2>(zarray.clone())
        .map(|mut m| {
            if let Some(Value::Object(a)) = zattrs {
                m.attributes = a.clone();
            }
            ArrayMetadata::V2(m)
        })
        .map_err(|e| e.to_string());
    Ok(ArrayEntry {
        name: name.to_string(),
        path: format!("/{path}"),
        meta,
        zarrs_meta,
    })
}

fn v3_entry(store: &Store, path: &str, name: &str, doc: &Value) -> Result<ArrayEntry> {
    let location = store.location().join(&key_in(path, "zarr.json"));
    let meta = ArrayMeta::from_v3(doc, &location)?;
    let zarrs_meta = serde_json::from_value::<ArrayMetadataV3>(doc.clone())
        .map(ArrayMetadata::V3)
        .map_err(|e| e.to_string());
    Ok(ArrayEntry {
        name: name.to_string(),
        path: format!("/{path}"),
        meta,
        zarrs_meta,
    })
}

/// List the group (or single array) at `path` (`""` for the root).
///
/// # Errors
/// [`Error::NotFound`] when nothing is there, [`Error::NotZarr`] when there is no Zarr metadata,
/// [`Error::InvalidMetadata`] for unreadable metadata documents.
pub fn list_group(store: &Store, path: &str) -> Result<GroupListing> {
    let path = path.trim_matches('/');
    if !store.exists()? {
        return Err(Error::NotFound {
            location: store.location().to_string(),
        });
    }
    let name_of = |p: &str| p.rsplit('/').next().unwrap_or("").to_string();

    if let Some(doc) = get_json(store, &key_in(path, "zarr.json"))? {
        let node_type = doc.get("node_type").and_then(Value::as_str).unwrap_or("");
        return match node_type {
            "array" => {
                let name = if path.is_empty() {
                    store_stem(store)
                } else {
                    name_of(path)
                };
                Ok(GroupListing {
                    zarr_format: 3,
                    consolidated: false,
                    attrs: Map::new(),
                    arrays: vec![v3_entry(store, path, &name, &doc)?],
                    groups: vec![],
                    is_array: true,
                })
            }
            "group" => list_v3_group(store, path, &doc),
            other => Err(Error::InvalidMetadata {
                location: store.location().join(&key_in(path, "zarr.json")),
                reason: format!("unknown node_type '{other}' (expected 'group' or 'array')"),
            }),
        };
    }
    if let Some(zgroup) = get_json(store, &key_in(path, ".zgroup"))? {
        check_v2_format(store, &key_in(path, ".zgroup"), &zgroup)?;
        return list_v2_group(store, path);
    }
    if let Some(zarray) = get_json(store, &key_in(path, ".zarray"))? {
        check_v2_format(store, &key_in(path, ".zarray"), &zarray)?;
        let zattrs = get_json(store, &key_in(path, ".zattrs"))?;
        let name = if path.is_empty() {
            store_stem(store)
        } else {
            name_of(path)
        };
        return Ok(GroupListing {
            zarr_format: 2,
            consolidated: false,
            attrs: Map::new(),
            arrays: vec![v2_entry(store, path, &name, &zarray, zattrs.as_ref())?],
            groups: vec![],
            is_array: true,
        });
    }
    // A v3 implicit group: no metadata of its own, but children with zarr.json.
    let listing = list_children(store, path, 3)?;
    if !listing.arrays.is_empty() || !listing.groups.is_empty() {
        return Ok(listing);
    }
    Err(Error::NotZarr {
        location: store.location().join(path),
    })
}

fn store_stem(store: &Store) -> String {
    let text = store.location().to_string();
    let last = text
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or("data")
        .to_string();
    last.strip_suffix(".zarr")
        .map_or(last.clone(), str::to_string)
}

fn check_v2_format(store: &Store, key: &str, doc: &Value) -> Result<()> {
    match doc.get("zarr_format").and_then(Value::as_u64) {
        Some(2) => Ok(()),
        Some(v) => Err(Error::Unsupported {
            location: store.location().join(key),
            feature: format!("zarr_format {v}"),
            detail: "v2 metadata documents must say zarr_format 2".into(),
        }),
        None => Err(Error::InvalidMetadata {
            location: store.location().join(key),
            reason: "missing 'zarr_format'".into(),
        }),
    }
}

fn list_v2_group(store: &Store, path: &str) -> Result<GroupListing> {
    let attrs = get_json(store, &key_in(path, ".zattrs"))?
        .and_then(|v| v.as_object().cloned())
        .unwrap_or_default();
    let zmeta_key = key_in(path, ".zmetadata");
    if let Some(zmeta) = get_json(store, &zmeta_key)? {
        let Some(entries) = zmeta.get("metadata").and_then(Value::as_object) else {
            return Err(Error::InvalidMetadata {
                location: store.location().join(&zmeta_key),
                reason: "consolidated metadata has no 'metadata' object".into(),
            });
        };
        let mut arrays = Vec::new();
        let mut groups = Vec::new();
        for (key, doc) in entries {
            let Some((child, file)) = key.rsplit_once('/') else {
                continue;
            };
            if child.contains('/') {
                continue; // deeper than one level: belongs to a sub-group
            }
            let child_path = key_in(path, child);
            match file {
                ".zarray" => {
                    let zattrs = entries.get(&format!("{child}/.zattrs"));
                    arrays.push(v2_entry(store, &child_path, child, doc, zattrs)?);
                }
                ".zgroup" => groups.push(child.to_string()),
                _ => {}
            }
        }
        arrays.sort_by(|a, b| a.name.cmp(&b.name));
        groups.sort();
        return Ok(GroupListing {
            zarr_format: 2,
            consolidated: true,
            attrs,
            arrays,
            groups,
            is_array: false,
        });
    }
    let mut listing = list_children(store, path, 2)?;
    listing.attrs = attrs;
    Ok(listing)
}

fn list_v3_group(store: &Store, path: &str, doc: &Value) -> Result<GroupListing> {
    let attrs = doc
        .get("attributes")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let consolidated = doc
        .get("consolidated_metadata")
        .and_then(|c| c.get("metadata"))
        .and_then(Value::as_object);
    if let Some(entries) = consolidated {
        let mut arrays = Vec::new();
        let mut groups = Vec::new();
        for (child, child_doc) in entries {
            if child.contains('/') {
                continue;
            }
            match child_doc.get("node_type").and_then(Value::as_str) {
                Some("array") => {
                    arrays.push(v3_entry(store, &key_in(path, child), child, child_doc)?)
                }
                Some("group") => groups.push(child.clone()),
                _ => {}
            }
        }
        arrays.sort_by(|a, b| a.name.cmp(&b.name));
        groups.sort();
        return Ok(GroupListing {
            zarr_format: 3,
            consolidated: true,
            attrs,
            arrays,
            groups,
            is_array: false,
        });
    }
    let mut listing = list_children(store, path, 3)?;
    listing.attrs = attrs;
    Ok(listing)
}

/// Find children by listing the store (no consolidated metadata).
fn list_children(store: &Store, path: &str, zarr_format: ZarrFormat) -> Result<GroupListing> {
    let prefix = if path.is_empty() {
        StorePrefix::root()
    } else {
        StorePrefix::new(format!("{path}/")).map_err(|e| Error::InvalidUrl {
            url: store.location().join(path),
            reason: e.to_string(),
        })?
    };
    let dir = store
        .storage()
        .list_dir(&prefix)
        .map_err(|e| store.storage_error(path, e))?;
    let mut arrays = Vec::new();
    let mut groups = Vec::new();
    for child_prefix in dir.prefixes() {
        let child_path = child_prefix.as_str().trim_end_matches('/');
        let child = child_path
            .rsplit('/')
            .next()
            .unwrap_or(child_path)
            .to_string();
        if zarr_format == 3 {
            match get_json(store, &key_in(child_path, "zarr.json"))? {
                Some(doc) if doc.get("node_type").and_then(Value::as_str) == Some("array") => {
                    arrays.push(v3_entry(store, child_path, &child, &doc)?);
                }
                Some(_) => groups.push(child),
                None => {
                    if has_metadata_below(store, child_prefix)? {
                        groups.push(child); // implicit group
                    }
                }
            }
        } else if let Some(zarray) = get_json(store, &key_in(child_path, ".zarray"))? {
            let zattrs = get_json(store, &key_in(child_path, ".zattrs"))?;
            arrays.push(v2_entry(
                store,
                child_path,
                &child,
                &zarray,
                zattrs.as_ref(),
            )?);
        } else if get_json(store, &key_in(child_path, ".zgroup"))?.is_some() {
            groups.push(child);
        }
    }
    arrays.sort_by(|a, b| a.name.cmp(&b.name));
    groups.sort();
    Ok(GroupListing {
        zarr_format,
        consolidated: false,
        attrs: Map::new(),
        arrays,
        groups,
        is_array: false,
    })
}

fn has_metadata_below(store: &Store, prefix: &StorePrefix) -> Result<bool> {
    let keys = store
        .storage()
        .list_prefix(prefix)
        .map_err(|e| store.storage_error(prefix.as_str(), e))?;
    Ok(keys.iter().any(|k| k.as_str().ends_with("zarr.json")))
}

/// Decoded chunks from this size on are decompressed on several threads.
const LARGE_CHUNK_BYTES: usize = 32 << 20;

/// Chunks decoded larger than this are decoded and cached in parts (see
/// [`ZarrArray::unit_rows`]).
pub const PART_BYTES: usize = 32 << 20;

/// Rows per part when chunks of `chunk_len` decoded bytes (shape `chunks`) are split into
/// equal parts of at most `max_bytes` along their first dimension: the fewest parts that fit,
/// `None` when the chunk fits whole or no split along the first dimension fits.
fn part_rows(chunks: &[u64], chunk_len: Option<usize>, max_bytes: usize) -> Option<u64> {
    let len = u64::try_from(chunk_len?).ok()?;
    let rows = *chunks.first()?;
    if len <= max_bytes as u64 || rows < 2 {
        return None;
    }
    (2..=rows)
        .filter(|k| rows % k == 0)
        .find(|k| len / k <= max_bytes as u64)
        .map(|k| rows / k)
}

/// The decoded size of a chunk when the array's chunks are single Blosc frames of C-order,
/// native-endian elements (see [`ZarrArray::direct_chunk_len`]).
fn direct_blosc_chunk_len(meta: &ArrayMeta, dtype: DType) -> Option<usize> {
    let native = if cfg!(target_endian = "little") {
        '<'
    } else {
        '>'
    };
    let byte_order_ok = meta.dtype_text.starts_with(native)
        || (meta.dtype_text.starts_with('|') && dtype.size() == 1);
    let blosc_alone = meta.codecs.len() == 1 && meta.codecs[0].starts_with("blosc(");
    if meta.zarr_format != 2 || meta.shards.is_some() || !byte_order_ok || !blosc_alone {
        return None;
    }
    let n = meta
        .chunks
        .iter()
        .try_fold(1u64, |acc, c| acc.checked_mul(*c))?;
    usize::try_from(n).ok()?.checked_mul(dtype.size())
}

/// An array opened for reading through `zarrs`.
#[derive(Clone)]
pub struct ZarrArray {
    store: Store,
    entry: ArrayEntry,
    array: Arc<ZArray>,
    dtype: DType,
    direct_len: Option<usize>,
    /// Rows along the first dimension of each part of a chunk, when chunks are decoded and
    /// cached in parts (see [`ZarrArray::unit_rows`]).
    part_rows: Option<u64>,
}

impl std::fmt::Debug for ZarrArray {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZarrArray")
            .field("location", &self.location())
            .finish_non_exhaustive()
    }
}

impl ZarrArray {
    /// Open an array listed by [`list_group`].
    ///
    /// # Errors
    /// [`Error::Unsupported`] naming the data type, codec or other feature that `zarrs` cannot
    /// decode; [`Error::InvalidMetadata`] when `zarrs` rejects the metadata.
    pub fn open(store: &Store, entry: &ArrayEntry) -> Result<ZarrArray> {
        let meta_key = if entry.meta.zarr_format == 2 {
            ".zarray"
        } else {
            "zarr.json"
        };
        let location = store
            .location()
            .join(&key_in(entry.path.trim_start_matches('/'), meta_key));
        let unsupported = |feature: String, detail: String| Error::Unsupported {
            location: location.clone(),
            feature,
            detail,
        };
        let metadata = match &entry.zarrs_meta {
            Ok(m) => m.clone(),
            Err(reason) => {
                return Err(Error::InvalidMetadata {
                    location: location.clone(),
                    reason: reason.clone(),
                })
            }
        };
        let array = Array::new_with_metadata(store.storage().clone(), &entry.path, metadata)
            .map_err(|e| {
                let msg = e.to_string();
                unsupported(classify_unsupported(&entry.meta, &msg), msg)
            })?;
        let Some(dtype) = DType::from_zarrs(array.data_type()) else {
            return Err(unsupported(
                format!("data type '{}'", entry.meta.dtype_text),
                "cubeforge reads boolean, integer and floating-point arrays only".into(),
            ));
        };
        let direct_len = direct_blosc_chunk_len(&entry.meta, dtype);
        Ok(ZarrArray {
            store: store.clone(),
            entry: entry.clone(),
            array: Arc::new(array),
            dtype,
            direct_len,
            part_rows: part_rows(&entry.meta.chunks, direct_len, PART_BYTES),
        })
    }

    /// The same array with chunks decoded in parts of at most `max_bytes` where they are larger
    /// (the executor uses [`PART_BYTES`]; tests use small sizes).
    #[must_use]
    pub fn with_part_bytes(mut self, max_bytes: usize) -> ZarrArray {
        self.part_rows = part_rows(&self.entry.meta.chunks, self.direct_len, max_bytes);
        self
    }

    /// Rows along the first dimension of the units the executor decodes and caches, when they
    /// are parts of chunks: chunks whose decoded size exceeds [`PART_BYTES`], stored as one
    /// Blosc frame (see [`ZarrArray::direct_chunk_len`]), are split into equal parts along
    /// their first dimension, each decoded on its own (C-Blosc decompresses only the blocks a
    /// part covers). A 500-day chunk then occupies the cache a quarter at a time, and parts that
    /// hold only positions a build does not read are never decoded. `None`: units are chunks.
    #[must_use]
    pub fn unit_rows(&self) -> Option<u64> {
        self.part_rows
    }

    /// The chunk a unit belongs to, and the unit's place in it (0 when units are chunks).
    #[must_use]
    pub fn unit_chunk(&self, unit: &[u64]) -> (Vec<u64>, u64) {
        match (self.part_rows, self.entry.meta.chunks.first()) {
            (Some(rows), Some(c0)) if !unit.is_empty() => {
                let parts = c0 / rows;
                let mut chunk = unit.to_vec();
                chunk[0] = unit[0] / parts;
                (chunk, unit[0] % parts)
            }
            _ => (unit.to_vec(), 0),
        }
    }

    /// The decoded size in bytes of every unit when units are decoded straight into a caller's
    /// buffer: a part's size, or [`ZarrArray::direct_chunk_len`].
    #[must_use]
    pub fn unit_len(&self) -> Option<usize> {
        match (
            self.part_rows,
            self.entry.meta.chunks.first(),
            self.direct_len,
        ) {
            (Some(rows), Some(c0), Some(len)) => {
                Some(len / usize::try_from(c0 / rows).unwrap_or(1).max(1))
            }
            _ => self.direct_len,
        }
    }

    /// The decoded size in bytes of unit `unit`.
    #[must_use]
    pub fn unit_bytes(&self, unit: &[u64]) -> usize {
        if let Some(len) = self.unit_len() {
            return len;
        }
        let n = self
            .array
            .chunk_shape(unit)
            .map(|s| s.iter().map(|n| n.get()).product::<u64>())
            .unwrap_or(0);
        usize::try_from(n).unwrap_or(usize::MAX) * self.dtype.size()
    }

    /// The units that the region `start .. start + shape` overlaps, in grid order, each with
    /// the region of the array its decoded buffer holds (whole, as stored: edge units extend
    /// beyond the array).
    ///
    /// # Errors
    /// [`Error::Other`] for a region outside the array or an irregular chunk grid.
    pub fn units_in(
        &self,
        start: &[u64],
        shape: &[u64],
    ) -> Result<Vec<(Vec<u64>, zarrs::array::ArraySubset)>> {
        let other = |e: &dyn std::fmt::Display| Error::Other(e.to_string());
        let Some(rows) = self.part_rows else {
            let subset =
                zarrs::array::ArraySubset::new_with_start_shape(start.to_vec(), shape.to_vec())
                    .map_err(|e| other(&e))?;
            let chunks = self
                .array
                .chunks_in_array_subset(&subset)
                .map_err(|e| other(&e))?
                .ok_or_else(|| {
                    Error::Other(format!("{}: irregular chunk grid", self.location()))
                })?;
            return chunks
                .indices()
                .into_iter()
                .map(|idx| {
                    let cs = self.array.chunk_subset(&idx).map_err(|e| other(&e))?;
                    Ok((idx.to_vec(), cs))
                })
                .collect();
        };
        let inside = start.len() == self.shape().len()
            && shape.len() == start.len()
            && start
                .iter()
                .zip(shape)
                .zip(self.shape())
                .all(|((s, n), len)| s.checked_add(*n).is_some_and(|end| end <= *len));
        if !inside {
            return Err(Error::Other(format!(
                "{}: region {start:?} + {shape:?} outside the array",
                self.location()
            )));
        }
        if shape.iter().product::<u64>() == 0 {
            return Ok(Vec::new());
        }
        let mut unit = self.entry.meta.chunks.clone();
        unit[0] = rows;
        let lo: Vec<u64> = start.iter().zip(&unit).map(|(s, u)| s / u).collect();
        let hi: Vec<u64> = start
            .iter()
            .zip(shape)
            .zip(&unit)
            .map(|((s, n), u)| (s + n - 1) / u)
            .collect();
        let mut out = Vec::new();
        let mut idx = lo.clone();
        loop {
            let at: Vec<u64> = idx.iter().zip(&unit).map(|(i, u)| i * u).collect();
            let cs = zarrs::array::ArraySubset::new_with_start_shape(at, unit.clone())
                .map_err(|e| other(&e))?;
            out.push((idx.clone(), cs));
            let mut d = idx.len();
            loop {
                if d == 0 {
                    return Ok(out);
                }
                d -= 1;
                if idx[d] < hi[d] {
                    idx[d] += 1;
                    break;
                }
                idx[d] = lo[d];
            }
        }
    }

    /// Element type.
    #[must_use]
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// Shape.
    #[must_use]
    pub fn shape(&self) -> &[u64] {
        &self.entry.meta.shape
    }

    /// Metadata summary.
    #[must_use]
    pub fn meta(&self) -> &ArrayMeta {
        &self.entry.meta
    }

    /// The `zarrs` array, for the executor.
    #[must_use]
    pub fn inner(&self) -> &Arc<ZArray> {
        &self.array
    }

    /// Full location of the array, for messages.
    #[must_use]
    pub fn location(&self) -> String {
        self.store.location().join(&self.entry.path)
    }

    /// The file holding a chunk, when the store is a local directory.
    #[must_use]
    pub fn chunk_path(&self, chunk: &[u64]) -> Option<std::path::PathBuf> {
        let root = self.store.location().local_path()?;
        Some(root.join(self.array.chunk_key(chunk).as_str()))
    }

    /// The fill value as `f64` (from `zarrs`'s parsed fill value).
    #[must_use]
    pub fn fill_value_f64(&self) -> f64 {
        self.dtype
            .element_to_f64(self.array.fill_value().as_ne_bytes())
    }

    /// Bytes stored under the array (chunks, shards and metadata).
    ///
    /// # Errors
    /// [`Error::Storage`] when listing fails.
    pub fn stored_bytes(&self) -> Result<u64> {
        let prefix_text = format!("{}/", self.entry.path.trim_matches('/'));
        let prefix = if prefix_text == "/" {
            StorePrefix::root()
        } else {
            StorePrefix::new(prefix_text.clone()).map_err(|e| Error::Other(e.to_string()))?
        };
        self.store
            .storage()
            .size_prefix(&prefix)
            .map_err(|e| self.store.storage_error(&prefix_text, e))
    }

    /// Decode chunk `chunk` (grid indices) into native-endian bytes of its full chunk shape.
    ///
    /// # Errors
    /// [`Error::CorruptChunk`] naming the chunk key when decoding fails, [`Error::Storage`] when
    /// reading it fails.
    pub fn read_chunk(&self, chunk: &[u64]) -> Result<Vec<u8>> {
        match self.read_chunk_if_exists(chunk)? {
            Some(bytes) => Ok(bytes),
            None => {
                let n: u64 = self
                    .array
                    .chunk_shape(chunk)
                    .map_err(|e| Error::Other(e.to_string()))?
                    .iter()
                    .map(|x| x.get())
                    .product();
                Ok(self.fill_bytes().repeat(usize::try_from(n).unwrap_or(0)))
            }
        }
    }

    /// The fill value of the array, one element's native-endian bytes: what a missing chunk
    /// holds everywhere.
    #[must_use]
    pub fn fill_bytes(&self) -> Vec<u8> {
        self.array.fill_value().as_ne_bytes().to_vec()
    }

    /// A chunk's decoded bytes (C order, native endian), or `None` when the chunk is not stored
    /// (it then holds the fill value everywhere).
    ///
    /// # Errors
    /// A read failure, or a chunk that cannot be decoded, naming the chunk's key.
    pub fn read_chunk_if_exists(&self, chunk: &[u64]) -> Result<Option<Vec<u8>>> {
        match self.read_encoded(chunk)? {
            Some(encoded) => self.decode_encoded(chunk, &encoded).map(Some),
            None => Ok(None),
        }
    }

    /// The decoded size in bytes of every chunk, when chunks can be decoded straight into a
    /// caller's buffer by [`ZarrArray::decode_into`]: Zarr v2 arrays compressed with Blosc
    /// alone (no filters, C order, little-endian or single-byte elements), the layout
    /// zarr-python, xarray and the netCDF-to-Zarr converters write by default.
    #[must_use]
    pub fn direct_chunk_len(&self) -> Option<usize> {
        self.direct_len
    }

    /// Decode the stored bytes `encoded` of chunk `chunk` (from [`ZarrArray::read_encoded`])
    /// into `out`, which must be [`ZarrArray::direct_chunk_len`] bytes long.
    ///
    /// Blosc frames are decompressed by C-Blosc (the library `zarrs` calls) straight into `out`;
    /// anything else (a frame with trailing bytes, a frame whose header disagrees with the
    /// array) goes through `zarrs` and is copied.
    ///
    /// # Errors
    /// [`Error::CorruptChunk`] naming the chunk when the bytes cannot be decoded;
    /// [`Error::Other`] when `out` has the wrong size.
    pub fn decode_into(&self, chunk: &[u64], encoded: &[u8], out: &mut [u8]) -> Result<()> {
        if self.direct_len != Some(out.len()) {
            return Err(Error::Other(format!(
                "{}: a {}-byte buffer for a chunk of {:?} bytes",
                self.location(),
                out.len(),
                self.direct_len
            )));
        }
        // A chunk this large holds up every task that needs it (a 500-day chunk among 100-day
        // ones): its blocks are decompressed on as many threads as there are workers.
        let threads = if out.len() >= LARGE_CHUNK_BYTES {
            rayon::current_num_threads()
        } else {
            1
        };
        if crate::blosc::decompress_into(encoded, out, threads) {
            return Ok(());
        }
        let decoded = self.decode_encoded(chunk, encoded)?;
        if decoded.len() != out.len() {
            return Err(self.corrupt(
                chunk,
                format!("{} decoded bytes, expected {}", decoded.len(), out.len()),
            ));
        }
        out.copy_from_slice(&decoded);
        Ok(())
    }

    /// Decode unit `unit` (see [`ZarrArray::unit_rows`]) of its chunk's stored bytes `encoded`
    /// into `out`, which must be [`ZarrArray::unit_len`] bytes long.
    ///
    /// # Errors
    /// As [`ZarrArray::decode_into`].
    pub fn decode_unit_into(&self, unit: &[u64], encoded: &[u8], out: &mut [u8]) -> Result<()> {
        let (chunk, part) = self.unit_chunk(unit);
        if self.part_rows.is_none() {
            return self.decode_into(&chunk, encoded, out);
        }
        if self.unit_len() != Some(out.len()) {
            return Err(Error::Other(format!(
                "{}: a {}-byte buffer for a part of {:?} bytes",
                self.location(),
                out.len(),
                self.unit_len()
            )));
        }
        let from = usize::try_from(part).unwrap_or(usize::MAX) * out.len();
        // A frame with bytes after it (z5py) is read in part too, rather than decoded whole once
        // per part.
        let frame = self.trimmed_blosc_frame(encoded).unwrap_or(encoded);
        if crate::blosc::getitem_into(frame, from, out) {
            return Ok(());
        }
        let decoded = self.decode_encoded(&chunk, encoded)?;
        match decoded.get(from..from + out.len()) {
            Some(bytes) if Some(decoded.len()) == self.direct_len => {
                out.copy_from_slice(bytes);
                Ok(())
            }
            _ => Err(self.corrupt(
                &chunk,
                format!(
                    "{} decoded bytes, expected {:?}",
                    decoded.len(),
                    self.direct_len
                ),
            )),
        }
    }

    pub(crate) fn corrupt(&self, chunk: &[u64], reason: String) -> Error {
        Error::CorruptChunk {
            location: self
                .store
                .location()
                .join(self.array.chunk_key(chunk).as_str()),
            reason,
        }
    }

    /// A chunk's stored bytes, as the store holds them (a mapped local file, or the buffer an
    /// object store filled): not copied into a `Vec` first as `Array::retrieve_chunk` does.
    /// `None` when the chunk is not stored.
    ///
    /// # Errors
    /// [`Error::Storage`] naming the chunk when reading fails.
    pub fn read_encoded(&self, chunk: &[u64]) -> Result<Option<zarrs_storage::Bytes>> {
        let key = self.array.chunk_key(chunk);
        let storage_error = |source| Error::Storage {
            location: self.store.location().join(key.as_str()),
            source,
        };
        let storage = self
            .array
            .storage_transformers()
            .create_readable_transformer(Arc::new(zarrs_storage::StorageHandle::new(
                self.store.storage().clone(),
            )))
            .map_err(storage_error)?;
        storage.get(&key).map_err(storage_error)
    }

    /// A chunk's stored bytes for reading a small part of them: a local file is mapped without
    /// bringing in its pages first (see [`crate::store::map_sparse`]); other stores as
    /// [`ZarrArray::read_encoded`]. `None` when the chunk is not stored.
    ///
    /// # Errors
    /// As [`ZarrArray::read_encoded`].
    pub fn read_encoded_sparse(&self, chunk: &[u64]) -> Result<Option<zarrs_storage::Bytes>> {
        if let Some(path) = self.chunk_path(chunk) {
            if let Ok(found) = crate::store::map_sparse(&path) {
                return Ok(found);
            }
            // Anything else: as the store reports it.
        }
        self.read_encoded(chunk)
    }

    /// Decode a chunk's stored bytes through `zarrs`.
    fn decode_encoded(&self, chunk: &[u64], encoded: &[u8]) -> Result<Vec<u8>> {
        use zarrs::array::ArrayToBytesCodecTraits as _;
        let shape = self
            .array
            .chunk_shape(chunk)
            .map_err(|e| Error::Other(e.to_string()))?;
        let decode = |bytes: &[u8]| {
            self.array
                .codecs()
                .decode(
                    std::borrow::Cow::Borrowed(bytes),
                    &shape,
                    self.array.data_type(),
                    self.array.fill_value(),
                    &zarrs::array::CodecOptions::default(),
                )
                .map(ArrayBytes::into_owned)
        };
        let decoded = match decode(encoded) {
            Ok(b) => b,
            Err(e) => self
                .trimmed_blosc_frame(encoded)
                .and_then(|frame| decode(frame).ok())
                .ok_or_else(|| self.corrupt(chunk, e.to_string()))?,
        };
        let fixed = decoded
            .into_fixed()
            .map_err(|e| Error::Other(e.to_string()))?;
        Ok(fixed.into_owned())
    }

    /// Some writers (z5py, the C++ z5 library) append bytes after a Blosc frame. zarr-python
    /// ignores them; C-Blosc's validation, which `zarrs` applies, refuses the chunk. When the
    /// compressor is Blosc and the frame header says it is shorter than the stored object, the
    /// frame alone.
    pub(crate) fn trimmed_blosc_frame<'a>(&self, encoded: &'a [u8]) -> Option<&'a [u8]> {
        if !self
            .entry
            .meta
            .codecs
            .last()
            .is_some_and(|c| c.starts_with("blosc("))
        {
            return None;
        }
        let cbytes =
            usize::try_from(u32::from_le_bytes(encoded.get(12..16)?.try_into().ok()?)).ok()?;
        if cbytes < 16 || cbytes >= encoded.len() {
            return None;
        }
        Some(&encoded[..cbytes])
    }

    /// Read the region `start .. start + shape` chunk by chunk.
    ///
    /// # Errors
    /// As [`ZarrArray::read_chunk`]; [`Error::Other`] for a region outside the array.
    pub fn read_region(&self, start: &[u64], shape: &[u64]) -> Result<RawArray> {
        let ndim = self.shape().len();
        if start.len() != ndim
            || shape.len() != ndim
            || start
                .iter()
                .zip(shape)
                .zip(self.shape())
                .any(|((s, n), a)| s + n > *a)
        {
            return Err(Error::Other(format!(
                "{}: region {start:?}+{shape:?} outside array of shape {:?}",
                self.location(),
                self.shape()
            )));
        }
        let esize = self.dtype.size();
        let total: u64 = shape.iter().product();
        let mut out = vec![0u8; usize::try_from(total).unwrap_or(usize::MAX) * esize];
        if total == 0 {
            return Ok(RawArray {
                dtype: self.dtype,
                shape: shape.to_vec(),
                bytes: out,
            });
        }
        let subset =
            zarrs::array::ArraySubset::new_with_start_shape(start.to_vec(), shape.to_vec())
                .map_err(|e| Error::Other(e.to_string()))?;
        let chunks = self
            .array
            .chunks_in_array_subset(&subset)
            .map_err(|e| Error::Other(e.to_string()))?
            .ok_or_else(|| Error::Other(format!("{}: irregular chunk grid", self.location())))?;
        for chunk in &chunks.indices() {
            let chunk_subset = self
                .array
                .chunk_subset(&chunk)
                .map_err(|e| Error::Other(e.to_string()))?;
            let data = self.read_chunk(&chunk)?;
            copy_region(
                &data,
                chunk_subset.shape(),
                chunk_subset.start(),
                &mut out,
                shape,
                start,
                esize,
            );
        }
        Ok(RawArray {
            dtype: self.dtype,
            shape: shape.to_vec(),
            bytes: out,
        })
    }

    /// Read the whole array.
    ///
    /// # Errors
    /// As [`ZarrArray::read_region`].
    pub fn read_all(&self) -> Result<RawArray> {
        let shape = self.shape().to_vec();
        self.read_region(&vec![0; shape.len()], &shape)
    }
}

/// Remove every key under `prefix` (`""` for the whole store).
///
/// # Errors
/// [`Error::Storage`] when the backend refuses.
pub fn erase_prefix(store: &Store, prefix: &str) -> Result<()> {
    use zarrs_storage::WritableStorageTraits as _;
    let p = prefix.trim_matches('/');
    let sp = if p.is_empty() {
        StorePrefix::root()
    } else {
        StorePrefix::new(format!("{p}/")).map_err(|e| Error::Other(e.to_string()))?
    };
    store
        .storage()
        .erase_prefix(&sp)
        .map_err(|e| store.storage_error(p, e))
}

/// Name the feature behind a `zarrs` refusal, for error messages.
fn classify_unsupported(meta: &ArrayMeta, msg: &str) -> String {
    let lower = msg.to_ascii_lowercase();
    if lower.contains("data type") || lower.contains("data_type") || lower.contains("dtype") {
        return format!("data type '{}'", meta.dtype_text);
    }
    if lower.contains("codec") || lower.contains("compressor") || lower.contains("filter") {
        // Name the codec the message mentions, when we can find it.
        for c in &meta.codecs {
            let name = c.split('(').next().unwrap_or(c);
            if lower.contains(&name.to_ascii_lowercase()) {
                return format!("codec '{name}'");
            }
        }
        return "codec".into();
    }
    if lower.contains("fill value") || lower.contains("fill_value") {
        return format!(
            "fill value {} for data type '{}'",
            meta.fill_value, meta.dtype_text
        );
    }
    "array metadata".into()
}

/// Copy the overlap of a source block (shape `src_shape` at `src_start`) into a destination block
/// (shape `dst_shape` at `dst_start`), both C-ordered with `esize`-byte elements.
pub fn copy_region(
    src: &[u8],
    src_shape: &[u64],
    src_start: &[u64],
    dst: &mut [u8],
    dst_shape: &[u64],
    dst_start: &[u64],
    esize: usize,
) {
    copy_region_in(
        src, src_shape, src_start, dst, dst_shape, dst_start, dst_shape, esize,
    );
}

/// [`copy_region`] into a destination block (shape `dst_shape` at `dst_start`) that sits at the
/// start of each dimension of a larger C-ordered buffer of shape `dst_layout`; the buffer's
/// elements outside the block are left as they are.
#[allow(clippy::too_many_arguments)]
pub fn copy_region_in(
    src: &[u8],
    src_shape: &[u64],
    src_start: &[u64],
    dst: &mut [u8],
    dst_shape: &[u64],
    dst_start: &[u64],
    dst_layout: &[u64],
    esize: usize,
) {
    if src_shape.is_empty() {
        dst[..esize].copy_from_slice(&src[..esize]);
        return;
    }
    overlap_rows_in(
        src_shape,
        src_start,
        dst_shape,
        dst_start,
        dst_layout,
        |so, dof, n| {
            dst[dof * esize..(dof + n) * esize].copy_from_slice(&src[so * esize..(so + n) * esize]);
        },
    );
}

/// Set the overlap of a block of fill values (shape `src_shape` at `src_start`, every element
/// the `elem` bytes) with a destination block (shape `dst_shape` at `dst_start`).
pub fn fill_region(
    elem: &[u8],
    src_shape: &[u64],
    src_start: &[u64],
    dst: &mut [u8],
    dst_shape: &[u64],
    dst_start: &[u64],
) {
    fill_region_in(
        elem, src_shape, src_start, dst, dst_shape, dst_start, dst_shape,
    );
}

/// [`fill_region`] into a block laid out in a larger buffer, as [`copy_region_in`].
pub fn fill_region_in(
    elem: &[u8],
    src_shape: &[u64],
    src_start: &[u64],
    dst: &mut [u8],
    dst_shape: &[u64],
    dst_start: &[u64],
    dst_layout: &[u64],
) {
    let esize = elem.len();
    if src_shape.is_empty() {
        dst[..esize].copy_from_slice(elem);
        return;
    }
    let all_zero = elem.iter().all(|b| *b == 0);
    overlap_rows_in(
        src_shape,
        src_start,
        dst_shape,
        dst_start,
        dst_layout,
        |_, dof, n| {
            let row = &mut dst[dof * esize..(dof + n) * esize];
            if all_zero {
                row.fill(0);
            } else {
                for e in row.chunks_exact_mut(esize) {
                    e.copy_from_slice(elem);
                }
            }
        },
    );
}

/// Call `f(src_offset, dst_offset, len)` (in elements) for every row of the overlap of two
/// C-ordered blocks of the same dimensionality (at least one), in order.
pub(crate) fn overlap_rows(
    src_shape: &[u64],
    src_start: &[u64],
    dst_shape: &[u64],
    dst_start: &[u64],
    f: impl FnMut(usize, usize, usize),
) {
    overlap_rows_in(src_shape, src_start, dst_shape, dst_start, dst_shape, f);
}

/// [`overlap_rows`] with destination offsets in a buffer of shape `dst_layout` (each dimension
/// at least `dst_shape`'s) that holds the destination block at the start of each dimension.
pub(crate) fn overlap_rows_in(
    src_shape: &[u64],
    src_start: &[u64],
    dst_shape: &[u64],
    dst_start: &[u64],
    dst_layout: &[u64],
    mut f: impl FnMut(usize, usize, usize),
) {
    let ndim = src_shape.len();
    let mut lo = vec![0u64; ndim];
    let mut hi = vec![0u64; ndim];
    for d in 0..ndim {
        lo[d] = src_start[d].max(dst_start[d]);
        hi[d] = (src_start[d] + src_shape[d]).min(dst_start[d] + dst_shape[d]);
        if lo[d] >= hi[d] {
            return;
        }
    }
    let strides = |shape: &[u64]| {
        let mut s = vec![1usize; ndim];
        for d in (0..ndim - 1).rev() {
            s[d] = s[d + 1] * usize::try_from(shape[d + 1]).unwrap_or(0);
        }
        s
    };
    let ss = strides(src_shape);
    let ds = strides(dst_layout);
    let row = usize::try_from(hi[ndim - 1] - lo[ndim - 1]).unwrap_or(0);
    let mut idx = lo.clone();
    loop {
        let mut so = 0usize;
        let mut dof = 0usize;
        for d in 0..ndim {
            so += usize::try_from(idx[d] - src_start[d]).unwrap_or(0) * ss[d];
            dof += usize::try_from(idx[d] - dst_start[d]).unwrap_or(0) * ds[d];
        }
        f(so, dof, row);
        // advance the outer indices (all but the last)
        let mut d = ndim - 1;
        loop {
            if d == 0 {
                return;
            }
            d -= 1;
            idx[d] += 1;
            if idx[d] < hi[d] {
                break;
            }
            idx[d] = lo[d];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_region_2d() {
        // src block 2x3 at (1,1) holding 1..6; dst 4x4 at origin
        let src: Vec<u8> = (1..=6).collect();
        let mut dst = vec![0u8; 16];
        copy_region(&src, &[2, 3], &[1, 1], &mut dst, &[4, 4], &[0, 0], 1);
        assert_eq!(dst, vec![0, 0, 0, 0, 0, 1, 2, 3, 0, 4, 5, 6, 0, 0, 0, 0]);
        // dst window 2x2 at (2,2) sees src (2,2),(2,3)
        let mut win = vec![0u8; 4];
        copy_region(&src, &[2, 3], &[1, 1], &mut win, &[2, 2], &[2, 2], 1);
        assert_eq!(win, vec![5, 6, 0, 0]);
    }

    #[test]
    fn copy_region_in_a_larger_buffer_writes_the_block_only() {
        // src block 2x3 at (1,1) holding 1..6; the window 2x2 at (2,2) held at the start of a
        // 3x4 buffer sees src (2,2),(2,3)
        let src: Vec<u8> = (1..=6).collect();
        let mut buf = vec![9u8; 12];
        copy_region_in(
            &src,
            &[2, 3],
            &[1, 1],
            &mut buf,
            &[2, 2],
            &[2, 2],
            &[3, 4],
            1,
        );
        assert_eq!(buf, vec![5, 6, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9]);
        // the whole source in a 3x4 window at (1,1): rows of 3 in rows of 4
        let mut buf = vec![9u8; 12];
        copy_region_in(
            &src,
            &[2, 3],
            &[1, 1],
            &mut buf,
            &[3, 3],
            &[1, 1],
            &[3, 4],
            1,
        );
        assert_eq!(buf, vec![1, 2, 3, 9, 4, 5, 6, 9, 9, 9, 9, 9]);
        let mut buf = vec![9u8; 12];
        fill_region_in(&[7], &[2, 3], &[1, 1], &mut buf, &[3, 3], &[0, 0], &[3, 4]);
        assert_eq!(buf, vec![9, 9, 9, 9, 9, 7, 7, 9, 9, 7, 7, 9]);
    }

    #[test]
    fn fill_region_sets_only_the_overlap() {
        // a 2x3 block of fill value 7 (two-byte elements) at (1,1) seen by a 2x2 window at (2,2)
        let mut win = vec![0u8; 8];
        fill_region(&[7, 0], &[2, 3], &[1, 1], &mut win, &[2, 2], &[2, 2]);
        assert_eq!(win, vec![7, 0, 7, 0, 0, 0, 0, 0]);
        // a zero fill value
        let mut dst = vec![9u8; 4];
        fill_region(&[0], &[1, 2], &[0, 0], &mut dst, &[2, 2], &[0, 0]);
        assert_eq!(dst, vec![0, 0, 9, 9]);
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
