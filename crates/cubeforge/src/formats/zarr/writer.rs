//! The one writer of Zarr metadata: array documents (v2 `.zarray`, v3 `zarr.json`) as
//! zarr-python writes them, and the group commit, written after every chunk: array documents,
//! then the group's, consolidated metadata last of all, so that a reader never opens a store
//! whose chunks are not all written. `cubeforge build` and the example generator both use it.

use serde::Deserialize;
use serde_json::{json, Map, Value};
use zarrs_storage::{StoreKey, WritableStorageTraits};

use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::store::Store;

/// An output compressor.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "lowercase")]
pub enum Compressor {
    /// Blosc.
    Blosc {
        /// `lz4`, `lz4hc`, `zstd`, `zlib`, `blosclz`.
        #[serde(default = "default_cname")]
        cname: String,
        /// 0–9.
        #[serde(default = "default_clevel")]
        clevel: u8,
        /// 0 none, 1 byte, 2 bit.
        #[serde(default = "default_shuffle")]
        shuffle: u8,
    },
    /// Zstandard.
    Zstd {
        /// Level.
        #[serde(default)]
        level: i32,
    },
    /// Gzip / zlib.
    Zlib {
        /// Level.
        #[serde(default = "default_clevel")]
        level: u8,
    },
    /// No compression.
    None,
}

fn default_cname() -> String {
    "lz4".into()
}
fn default_clevel() -> u8 {
    5
}
fn default_shuffle() -> u8 {
    1
}

impl Compressor {
    /// What zarr-python writes by default: Blosc lz4 level 5 with byte shuffle for Zarr v2,
    /// zstd level 0 for Zarr v3.
    #[must_use]
    pub fn default_for(zarr_format: u8) -> Compressor {
        if zarr_format == 2 {
            Compressor::Blosc {
                cname: "lz4".into(),
                clevel: 5,
                shuffle: 1,
            }
        } else {
            Compressor::Zstd { level: 0 }
        }
    }
}

/// The metadata documents of one array of a group.
#[derive(Debug, Clone)]
pub struct ArrayDoc {
    /// The array's name in the group.
    pub name: String,
    /// Where its metadata document goes (`name/.zarray`, `name/zarr.json`).
    pub meta_key: String,
    /// The metadata document (v3: attributes included).
    pub meta: Value,
    /// Its attributes (v2: `name/.zattrs`, `_ARRAY_DIMENSIONS` included).
    pub attrs: Value,
}

/// The layout of an array to write: its place, dimensions, shape, chunks and encoding.
#[derive(Debug, Clone, Copy)]
pub struct ArrayLayout<'a> {
    /// Zarr format, 2 or 3.
    pub zarr_format: u8,
    /// Name in the group.
    pub name: &'a str,
    /// Dimension names.
    pub dims: &'a [String],
    /// Shape.
    pub shape: &'a [u64],
    /// Chunk shape (the inner chunks of shards).
    pub chunks: &'a [u64],
    /// Shard shape (v3 only).
    pub shards: Option<&'a [u64]>,
    /// Element type.
    pub dtype: DType,
    /// Compressor.
    pub compressor: &'a Compressor,
}

/// The documents of an array of `layout` with attributes `attrs`: floats get a NaN fill value
/// (and a `_FillValue` attribute in v3, as xarray writes it), dimension names go in
/// `_ARRAY_DIMENSIONS` (v2) or `dimension_names` (v3).
#[must_use]
pub fn array_doc(layout: &ArrayLayout<'_>, mut attrs: Map<String, Value>) -> ArrayDoc {
    let ArrayLayout {
        zarr_format,
        name,
        dims,
        shape,
        chunks,
        shards,
        dtype,
        compressor,
    } = *layout;
    let fill = if dtype.is_float() {
        json!("NaN")
    } else {
        Value::Null
    };
    let (meta_key, meta) = if zarr_format == 2 {
        attrs.insert("_ARRAY_DIMENSIONS".into(), json!(dims));
        (
            format!("{name}/.zarray"),
            json!({
                "zarr_format": 2, "shape": shape, "chunks": chunks, "dtype": v2_dtype(dtype),
                "compressor": compressor_json(compressor), "fill_value": fill, "order": "C", "filters": null,
                "dimension_separator": ".",
            }),
        )
    } else {
        if dtype.is_float() {
            attrs.insert(
                "_FillValue".into(),
                json!(crate::cf::xarray_fill_value(f64::NAN)),
            );
        }
        let fill3 = if dtype.is_float() {
            json!("NaN")
        } else if dtype == DType::Bool {
            json!(false)
        } else {
            json!(0)
        };
        let (grid, codecs) = match shards {
            Some(s) => (
                s.to_vec(),
                vec![json!({"name": "sharding_indexed", "configuration": {
                "chunk_shape": chunks, "codecs": v3_codecs(compressor, dtype),
                "index_codecs": [{"name": "bytes", "configuration": {"endian": "little"}}, {"name": "crc32c"}],
                "index_location": "end"}})],
            ),
            None => (chunks.to_vec(), v3_codecs(compressor, dtype)),
        };
        (
            format!("{name}/zarr.json"),
            json!({
                "zarr_format": 3, "node_type": "array", "shape": shape, "data_type": dtype.name(),
                "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": grid}},
                "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
                "fill_value": fill3, "codecs": codecs, "attributes": Value::Object(attrs.clone()), "dimension_names": dims,
            }),
        )
    };
    ArrayDoc {
        name: name.to_string(),
        meta_key,
        meta,
        attrs: Value::Object(attrs),
    }
}

/// `doc`'s metadata in `zarrs`' own form, with its attributes, for writing chunks through it.
///
/// # Errors
/// [`Error::Other`] when `zarrs` refuses the document (an internal error).
pub fn zarrs_metadata(doc: &ArrayDoc) -> Result<zarrs::array::ArrayMetadata> {
    let internal = |e: serde_json::Error| Error::Other(format!("internal: {}: {e}", doc.name));
    if doc.meta.get("zarr_format") == Some(&json!(2)) {
        let mut m: zarrs::array::ArrayMetadataV2 =
            serde_json::from_value(doc.meta.clone()).map_err(internal)?;
        m.attributes = doc.attrs.as_object().cloned().unwrap_or_default();
        Ok(zarrs::array::ArrayMetadata::V2(m))
    } else {
        Ok(zarrs::array::ArrayMetadata::V3(
            serde_json::from_value(doc.meta.clone()).map_err(internal)?,
        ))
    }
}

/// Commit a group: every array's documents, then the group's attributes and metadata, then
/// its consolidated metadata (v2 `.zmetadata`; v3 inline in the group's `zarr.json`), so that
/// until the last write a reader finds no finished group.
///
/// # Errors
/// Storage errors naming the key.
pub fn commit_group(
    store: &Store,
    zarr_format: u8,
    arrays: &[ArrayDoc],
    attrs: Map<String, Value>,
) -> Result<()> {
    let mut consolidated = Map::new();
    for a in arrays {
        put_json(store, &a.meta_key, &a.meta)?;
        if zarr_format == 2 {
            let attrs_key = format!("{}/.zattrs", a.name);
            put_json(store, &attrs_key, &a.attrs)?;
            consolidated.insert(a.meta_key.clone(), a.meta.clone());
            consolidated.insert(attrs_key, a.attrs.clone());
        } else {
            consolidated.insert(a.name.clone(), a.meta.clone());
        }
    }
    if zarr_format == 2 {
        put_json(store, ".zattrs", &Value::Object(attrs.clone()))?;
        consolidated.insert(".zattrs".into(), Value::Object(attrs));
        consolidated.insert(".zgroup".into(), json!({"zarr_format": 2}));
        put_json(
            store,
            ".zmetadata",
            &json!({"metadata": consolidated, "zarr_consolidated_format": 1}),
        )?;
        // Last: xarray and zarr-python open a v2 store only once its `.zgroup` exists.
        put_json(store, ".zgroup", &json!({"zarr_format": 2}))
    } else {
        put_json(
            store,
            "zarr.json",
            &json!({
                "zarr_format": 3, "node_type": "group", "attributes": attrs,
                "consolidated_metadata": {"kind": "inline", "must_understand": false, "metadata": consolidated},
            }),
        )
    }
}

/// Write a JSON document at `key`, formatted as zarr-python formats metadata.
///
/// # Errors
/// Storage errors.
pub fn put_json(store: &Store, key: &str, value: &Value) -> Result<()> {
    let text = serde_json::to_string_pretty(value).map_err(|e| Error::Other(e.to_string()))?;
    let k = StoreKey::new(key).map_err(|e| Error::Other(e.to_string()))?;
    store
        .storage()
        .set(&k, text.into_bytes().into())
        .map_err(|e| store.storage_error(key, e))
}

/// The v2 `compressor` document of `c`.
fn compressor_json(c: &Compressor) -> Value {
    match c {
        Compressor::Blosc {
            cname,
            clevel,
            shuffle,
        } => {
            json!({"id": "blosc", "cname": cname, "clevel": clevel, "shuffle": shuffle, "blocksize": 0})
        }
        Compressor::Zstd { level } => json!({"id": "zstd", "level": level, "checksum": false}),
        Compressor::Zlib { level } => json!({"id": "zlib", "level": level}),
        Compressor::None => Value::Null,
    }
}

/// The v3 codec pipeline of `c` for elements of type `dtype`.
fn v3_codecs(c: &Compressor, dtype: DType) -> Vec<Value> {
    let mut codecs = vec![if dtype.size() == 1 {
        json!({"name": "bytes"})
    } else {
        json!({"name": "bytes", "configuration": {"endian": "little"}})
    }];
    match c {
        Compressor::Blosc { cname, clevel, shuffle } => codecs.push(json!({"name": "blosc", "configuration": {
            "cname": cname, "clevel": clevel, "shuffle": match shuffle { 0 => "noshuffle", 2 => "bitshuffle", _ => "shuffle" },
            "typesize": dtype.size(), "blocksize": 0}})),
        Compressor::Zstd { level } => codecs.push(json!({"name": "zstd", "configuration": {"level": level, "checksum": false}})),
        Compressor::Zlib { level } => codecs.push(json!({"name": "gzip", "configuration": {"level": level}})),
        Compressor::None => {}
    }
    codecs
}

/// The v2 `dtype` text of `d` (little-endian).
fn v2_dtype(d: DType) -> String {
    let code = match d {
        DType::Bool => return "|b1".into(),
        DType::Int8 => return "|i1".into(),
        DType::UInt8 => return "|u1".into(),
        DType::Int16 => "i2",
        DType::Int32 => "i4",
        DType::Int64 => "i8",
        DType::UInt16 => "u2",
        DType::UInt32 => "u4",
        DType::UInt64 => "u8",
        DType::Float16 => "f2",
        DType::Float32 => "f4",
        DType::Float64 => "f8",
    };
    format!("<{code}")
}
