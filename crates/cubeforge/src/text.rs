//! Text variables: NetCDF character arrays (`NC_CHAR`) and variable-length strings
//! (`NC_STRING`), held in memory whole and carried into the cube as xarray reads them.
//!
//! They are not computed on: lowering keeps them beside the plan ([`crate::lower::State`]'s
//! `texts`), selections along their dimensions select them here ([`TextArray::take`]), and the
//! build writes each as one chunk after the computed arrays ([`write_texts`]).
//!
//! What xarray shows (netCDF4 and h5netcdf engines, default decoding), and so the cube:
//! - a character array whose last dimension has no variable of its name and is the last
//!   dimension of every variable that uses it, all of them character arrays, is stacked along it
//!   into fixed-width bytes `|S{n}` ([`stackable_dims`]); other character arrays stay `|S1`;
//! - with an `_Encoding` attribute, those bytes decode to `str` (object); the cube keeps the
//!   attribute and the bytes without trailing NULs, `|S{longest}`, as `to_zarr` writes them;
//! - variable-length strings read as fixed-width unicode, `<U{longest}`.
//!
//! In Zarr v2 they are `|S{n}` and `<U{n}` (fill value `null`); in v3 `null_terminated_bytes`
//! and `fixed_length_utf32` (fill value `""`), as zarr-python 3 writes them.

use std::collections::BTreeSet;
use std::sync::Arc;

use indexmap::IndexMap;
use serde_json::{json, Map, Value};

use crate::error::{Error, Result};
use crate::formats::zarr::writer::{array_doc, ArrayDoc, ArrayLayout, Compressor};
use crate::lower::State;
use crate::recipe::RecipeDoc;
use crate::store::Store;

/// The most bytes of text an input holds in memory; variables beyond are left unreadable, with
/// their size named.
pub const MAX_TEXT_BYTES: u64 = 256 << 20;

/// The values of a text variable, in C order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TextData {
    /// Fixed-width bytes (NumPy `|S{width}`): `width` bytes an element, padded with NULs.
    Bytes {
        /// Bytes an element.
        width: usize,
        /// The elements, one after the other.
        data: Vec<u8>,
    },
    /// Strings (NumPy `<U{n}`), one an element.
    Str(Vec<String>),
}

/// A text array held in memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextArray {
    /// Its shape.
    pub shape: Vec<u64>,
    /// Its values.
    pub data: TextData,
}

/// A text variable of an input or a cube being built.
#[derive(Debug, Clone)]
pub struct TextVar {
    /// Dimension names, one per axis of `values`.
    pub dims: Vec<String>,
    /// Its values.
    pub values: Arc<TextArray>,
    /// Its attributes (`_Encoding` included: the cube keeps it, so that xarray decodes).
    pub attrs: Map<String, Value>,
    /// The chunk shape of its source along `dims`, as `info` shows it (the cube writes one
    /// chunk).
    pub chunks: Vec<u64>,
    /// How the source stores it, as xarray's netcdf4 engine describes it in `encoding`.
    pub storage: TextStorage,
}

/// How a source stores a text variable (what the netcdf4 engine puts in its encoding).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TextStorage {
    /// The character dimension the values were stacked along (`char_dim_name`).
    pub char_dim: Option<String>,
    /// The stored chunk shape over the variable's dimensions in the file (the character
    /// dimension included); `None` when stored contiguously or not in chunks.
    pub stored_chunks: Option<Vec<u64>>,
    /// The filters it is stored with, as `cubeforge info` names them.
    pub filters: Vec<String>,
}

fn usize_of(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// The dimensions xarray stacks character arrays along: of `vars` (name, dimension names,
/// whether it is a character array), the last dimensions of character arrays that no variable
/// is named after and that every variable using them has last and is a character array of.
#[must_use]
pub fn stackable_dims(vars: &[(String, Vec<String>, bool)]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (_, dims, is_char) in vars {
        let Some(last) = dims.last() else { continue };
        if !is_char || out.contains(last) || vars.iter().any(|(n, _, _)| n == last) {
            continue;
        }
        let ok = vars
            .iter()
            .filter(|(_, d, _)| d.contains(last))
            .all(|(_, d, c)| *c && d.last() == Some(last));
        if ok {
            out.push(last.clone());
        }
    }
    out
}

impl TextArray {
    /// Character bytes of shape `shape` (one byte an element): stacked along the last axis into
    /// `|S{n}` when `stack`, else `|S1`.
    ///
    /// # Errors
    /// A message when the bytes do not fill the shape.
    pub fn from_chars(
        shape: &[u64],
        bytes: Vec<u8>,
        stack: bool,
    ) -> std::result::Result<Self, String> {
        let n: u64 = shape.iter().product();
        if bytes.len() as u64 != n {
            return Err(format!("{} bytes of text for shape {shape:?}", bytes.len()));
        }
        match (stack, shape.split_last()) {
            (true, Some((&w, rest))) => {
                let width = usize_of(w);
                let mut data = bytes;
                if width == 0 {
                    // NumPy has no `|S0`: an empty string dimension stacks to `|S1` of b''.
                    data = vec![0; usize_of(rest.iter().product())];
                }
                Ok(TextArray {
                    shape: rest.to_vec(),
                    data: TextData::Bytes {
                        width: width.max(1),
                        data,
                    },
                })
            }
            _ => Ok(TextArray {
                shape: shape.to_vec(),
                data: TextData::Bytes {
                    width: 1,
                    data: bytes,
                },
            }),
        }
    }

    /// The number of elements.
    #[must_use]
    pub fn len(&self) -> usize {
        match &self.data {
            TextData::Bytes { width, data } => data.len() / (*width).max(1),
            TextData::Str(v) => v.len(),
        }
    }

    /// Whether it has no elements.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes it holds in memory (about).
    #[must_use]
    pub fn nbytes(&self) -> u64 {
        match &self.data {
            TextData::Bytes { data, .. } => data.len() as u64,
            TextData::Str(v) => v.iter().map(|s| s.len() as u64 + 24).sum(),
        }
    }

    /// Element `i` as bytes, without trailing NULs (as NumPy shows `|S` values); a string's
    /// UTF-8.
    #[must_use]
    pub fn element(&self, i: usize) -> &[u8] {
        match &self.data {
            TextData::Bytes { width, data } => {
                let e = &data[i * width..(i + 1) * width];
                let end = e.iter().rposition(|b| *b != 0).map_or(0, |p| p + 1);
                &e[..end]
            }
            TextData::Str(v) => v[i].as_bytes(),
        }
    }

    /// The elements at flat positions `idx`, in that order.
    fn gather(&self, idx: &[usize]) -> TextData {
        match &self.data {
            TextData::Bytes { width, data } => {
                let mut out = Vec::with_capacity(idx.len() * width);
                for &i in idx {
                    out.extend_from_slice(&data[i * width..(i + 1) * width]);
                }
                TextData::Bytes {
                    width: *width,
                    data: out,
                }
            }
            TextData::Str(v) => TextData::Str(idx.iter().map(|&i| v[i].clone()).collect()),
        }
    }

    /// The positions `sub` (in that order) along `axis`: a selection, as `isel` with a list.
    #[must_use]
    pub fn take(&self, axis: usize, sub: &[u64]) -> TextArray {
        let outer: usize = self.shape[..axis].iter().map(|n| usize_of(*n)).product();
        let inner: usize = self.shape[axis + 1..]
            .iter()
            .map(|n| usize_of(*n))
            .product();
        let n = usize_of(self.shape[axis]);
        let mut idx = Vec::with_capacity(outer * sub.len() * inner);
        for o in 0..outer {
            for s in sub {
                let base = (o * n + usize_of(*s)) * inner;
                idx.extend(base..base + inner);
            }
        }
        let mut shape = self.shape.clone();
        shape[axis] = sub.len() as u64;
        TextArray {
            shape,
            data: self.gather(&idx),
        }
    }

    /// The same values with a new axis of length 1 at `axis`.
    #[must_use]
    pub fn with_axis(&self, axis: usize) -> TextArray {
        let mut shape = self.shape.clone();
        shape.insert(axis.min(shape.len()), 1);
        TextArray {
            shape,
            data: self.data.clone(),
        }
    }

    /// `parts` joined along `axis` (the same shape along the others); bytes of different
    /// widths are padded to the widest, as NumPy concatenates `|S` arrays.
    ///
    /// # Errors
    /// A message when the parts do not fit together (other shapes, bytes and strings).
    pub fn concat(parts: &[&TextArray], axis: usize) -> std::result::Result<TextArray, String> {
        let first = parts.first().ok_or("nothing to join")?;
        let mut shape = first.shape.clone();
        shape[axis] = parts.iter().map(|p| p.shape[axis]).sum();
        for p in parts {
            let mut a = p.shape.clone();
            a[axis] = shape[axis];
            if a != shape {
                return Err(format!("shapes {:?} and {:?}", first.shape, p.shape));
            }
        }
        let outer: usize = shape[..axis].iter().map(|n| usize_of(*n)).product();
        let inner: usize = shape[axis + 1..].iter().map(|n| usize_of(*n)).product();
        let data = match &first.data {
            TextData::Bytes { .. } => {
                let width = parts
                    .iter()
                    .map(|p| match &p.data {
                        TextData::Bytes { width, .. } => Ok(*width),
                        TextData::Str(_) => Err("bytes and strings".to_string()),
                    })
                    .collect::<std::result::Result<Vec<_>, _>>()?
                    .into_iter()
                    .max()
                    .unwrap_or(1);
                let mut data = Vec::new();
                for o in 0..outer {
                    for p in parts {
                        let block = usize_of(p.shape[axis]) * inner;
                        for i in o * block..(o + 1) * block {
                            let e = p.element(i);
                            data.extend_from_slice(e);
                            data.resize(data.len() + width - e.len(), 0);
                        }
                    }
                }
                TextData::Bytes { width, data }
            }
            TextData::Str(_) => {
                let mut out = Vec::new();
                for o in 0..outer {
                    for p in parts {
                        let TextData::Str(v) = &p.data else {
                            return Err("bytes and strings".into());
                        };
                        let block = usize_of(p.shape[axis]) * inner;
                        out.extend_from_slice(&v[o * block..(o + 1) * block]);
                    }
                }
                TextData::Str(out)
            }
        };
        Ok(TextArray { shape, data })
    }

    /// The NumPy type xarray shows for these values with attributes `attrs`: `|S{n}`, `object`
    /// (bytes with an `_Encoding`) or `<U{n}`.
    #[must_use]
    pub fn xarray_dtype(&self, attrs: &Map<String, Value>) -> String {
        match &self.data {
            TextData::Bytes { .. } if attrs.contains_key("_Encoding") => "object".into(),
            TextData::Bytes { width, .. } => format!("|S{width}"),
            TextData::Str(_) => format!("<U{}", self.unicode_width()),
        }
    }

    /// Code points of the longest string (at least 1), NumPy's `<U` width.
    fn unicode_width(&self) -> usize {
        match &self.data {
            TextData::Str(v) => v
                .iter()
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
                .max(1),
            TextData::Bytes { .. } => 1,
        }
    }

    /// The element type and the C-order bytes the cube stores, as `to_zarr` writes what xarray
    /// read: bytes at their width (with an `_Encoding`, at the longest value's), strings as
    /// UTF-32 (little-endian) at the longest value's.
    fn stored(&self, attrs: &Map<String, Value>) -> (StoredType, Vec<u8>) {
        match &self.data {
            TextData::Bytes { width, data } if !attrs.contains_key("_Encoding") => {
                (StoredType::Bytes(*width), data.clone())
            }
            TextData::Bytes { .. } => {
                let w = (0..self.len())
                    .map(|i| self.element(i).len())
                    .max()
                    .unwrap_or(0)
                    .max(1);
                let mut out = Vec::with_capacity(self.len() * w);
                for i in 0..self.len() {
                    let e = self.element(i);
                    out.extend_from_slice(e);
                    out.resize(out.len() + w - e.len(), 0);
                }
                (StoredType::Bytes(w), out)
            }
            TextData::Str(v) => {
                let n = self.unicode_width();
                let mut out = Vec::with_capacity(v.len() * n * 4);
                for s in v {
                    let mut k = 0;
                    for c in s.chars() {
                        out.extend_from_slice(&u32::from(c).to_le_bytes());
                        k += 1;
                    }
                    out.resize(out.len() + (n - k) * 4, 0);
                }
                (StoredType::Utf32(n), out)
            }
        }
    }
}

/// A text array's element type in the cube.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StoredType {
    /// `|S{n}`.
    Bytes(usize),
    /// `<U{n}` (n code points).
    Utf32(usize),
}

impl StoredType {
    fn size(self) -> usize {
        match self {
            StoredType::Bytes(n) => n,
            StoredType::Utf32(n) => 4 * n,
        }
    }
}

/// The documents of text array `name` (one chunk of the whole array) in a cube of
/// `zarr_format` compressed by `compressor`, and its stored element type and bytes: the
/// documents of a byte array of that layout, with the type, fill value and `bytes` codec
/// zarr-python writes for text.
fn text_doc(
    zarr_format: u8,
    name: &str,
    var: &TextVar,
    compressor: &Compressor,
) -> (ArrayDoc, StoredType, Vec<u8>) {
    let (stored, bytes) = var.values.stored(&var.attrs);
    let shape = &var.values.shape;
    let chunks: Vec<u64> = shape.iter().map(|n| (*n).max(1)).collect();
    let layout = ArrayLayout {
        zarr_format,
        name,
        dims: &var.dims,
        shape,
        chunks: &chunks,
        shards: None,
        dtype: crate::dtype::DType::UInt8,
        compressor,
    };
    let mut doc = array_doc(&layout, var.attrs.clone());
    if zarr_format == 2 {
        doc.meta["dtype"] = json!(match stored {
            StoredType::Bytes(n) => format!("|S{n}"),
            StoredType::Utf32(n) => format!("<U{n}"),
        });
        doc.meta["fill_value"] = Value::Null;
    } else {
        doc.meta["data_type"] = match stored {
            StoredType::Bytes(n) => {
                json!({"name": "null_terminated_bytes", "configuration": {"length_bytes": n}})
            }
            StoredType::Utf32(n) => {
                json!({"name": "fixed_length_utf32", "configuration": {"length_bytes": 4 * n}})
            }
        };
        doc.meta["fill_value"] = json!("");
        if let Some(codecs) = doc.meta["codecs"].as_array_mut() {
            if let StoredType::Utf32(_) = stored {
                codecs[0] = json!({"name": "bytes", "configuration": {"endian": "little"}});
            }
            for c in codecs.iter_mut() {
                if c["name"] == "blosc" {
                    c["configuration"]["typesize"] = json!(stored.size());
                }
            }
        }
    }
    (doc, stored, bytes)
}

/// The one chunk of `doc` holding `bytes` (elements of `stored`), encoded by the documents'
/// compressor through `zarrs`: an array of raw elements of the same size stands in for the
/// text type, which `zarrs` does not know, and encodes the same bytes.
fn encode_text_chunk(
    store: &Store,
    doc: &ArrayDoc,
    stored: StoredType,
    bytes: &[u8],
) -> Result<(String, bytes::Bytes)> {
    use zarrs::array::ArrayToBytesCodecTraits as _;
    let mut standin = doc.clone();
    if standin.meta["zarr_format"] == 2 {
        use base64::Engine as _;
        standin.meta["dtype"] = json!(format!("|V{}", stored.size()));
        let zeros = vec![0u8; stored.size()];
        standin.meta["fill_value"] = json!(base64::engine::general_purpose::STANDARD.encode(zeros));
    } else {
        standin.meta["data_type"] = json!(format!("r{}", 8 * stored.size()));
        standin.meta["fill_value"] = json!(vec![0; stored.size()]);
        if let Some(codecs) = standin.meta["codecs"].as_array_mut() {
            codecs[0] = json!({"name": "bytes"});
        }
    }
    let location = store.location().join(&doc.name);
    let internal = |e: &dyn std::fmt::Display| Error::Other(format!("{location}: {e}"));
    let meta = crate::formats::zarr::writer::zarrs_metadata(&standin)?;
    let path = format!("/{}", doc.name);
    let array = zarrs::array::Array::new_with_metadata(store.storage().clone(), &path, meta)
        .map_err(|e| internal(&e))?;
    let idx = vec![0u64; array.dimensionality()];
    let options = zarrs::array::CodecOptions::default();
    // Written even when it holds only empty strings: the fill value is `null`, which leaves
    // the values of a missing chunk to each reader's default.
    let ab = zarrs::array::ArrayBytes::new_flen(bytes);
    let shape = array.chunk_shape(&idx).map_err(|e| internal(&e))?;
    let encoded = array
        .codecs()
        .encode(ab, &shape, array.data_type(), array.fill_value(), &options)
        .map_err(|e| internal(&e))?;
    let key = array.chunk_key(&idx).as_str().to_string();
    Ok((key, bytes::Bytes::from(encoded.into_owned())))
}

/// Write the text variables `texts` (name and variable) into `store`, one chunk each, and
/// return their documents for the group's commit. A variable with a dimension of length 0
/// has no chunk.
///
/// # Errors
/// Storage errors naming the key; a variable `zarrs` cannot encode, named.
pub fn write_texts<'a>(
    store: &Store,
    zarr_format: u8,
    compressor: &Compressor,
    texts: impl IntoIterator<Item = (&'a String, &'a TextVar)>,
) -> Result<Vec<ArrayDoc>> {
    use zarrs_storage::WritableStorageTraits as _;
    let mut docs = Vec::new();
    for (name, var) in texts {
        let (doc, stored, bytes) = text_doc(zarr_format, name, var, compressor);
        if !var.values.is_empty() {
            let (key, encoded) = encode_text_chunk(store, &doc, stored, &bytes)?;
            let k = zarrs_storage::StoreKey::new(&key)
                .map_err(|e| Error::Other(format!("{name}: {e}")))?;
            store
                .storage()
                .set(&k, encoded)
                .map_err(|e| store.storage_error(&key, e))?;
        }
        docs.push(doc);
    }
    Ok(docs)
}

/// Whether text variable `name` of `t` is a dimension's coordinate (one-dimensional, named
/// after its dimension).
fn is_coord(name: &str, t: &TextVar) -> bool {
    t.dims.len() == 1 && t.dims[0] == name
}

/// The dimensions the text variables other than coordinates use (their coordinates are
/// written with them).
pub fn kept_dims(texts: &IndexMap<String, TextVar>) -> Vec<String> {
    texts
        .iter()
        .filter(|(k, t)| !is_coord(k, t))
        .flat_map(|(_, t)| t.dims.clone())
        .collect()
}

/// Write the text variables of `state` into the cube at `store` (a dimension's text coordinate
/// when its dimension is in `used`), compressed as the recipe's output; their documents.
///
/// # Errors
/// As [`write_texts`].
pub fn write_cube_texts(
    doc: &RecipeDoc,
    state: &State<'_>,
    used: &BTreeSet<String>,
    store: &Store,
) -> Result<Vec<ArrayDoc>> {
    let output = &doc.recipe.output;
    let compressor = output
        .compressor
        .clone()
        .unwrap_or_else(|| Compressor::default_for(output.zarr_format));
    let texts = state
        .texts
        .iter()
        .filter(|(k, t)| !is_coord(k, t) || used.contains(*k));
    write_texts(store, output.zarr_format, &compressor, texts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dims(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_string()).collect()
    }

    #[test]
    fn char_arrays_stack_along_a_string_dimension_only_they_use_last() {
        let vars = vec![
            ("name".to_string(), dims(&["station", "strlen"]), true),
            ("temp".to_string(), dims(&["time", "station"]), false),
            ("code".to_string(), dims(&["station", "nchar"]), true),
            ("chars".to_string(), dims(&["station", "shared"]), true),
            ("nums".to_string(), dims(&["shared"]), false),
            ("c13".to_string(), dims(&["D1", "D3"]), true),
            ("c31".to_string(), dims(&["D3", "D1"]), true),
            ("x".to_string(), dims(&["x"]), false),
            ("cx".to_string(), dims(&["station", "x"]), true),
        ];
        // `shared` has a number variable, D1 and D3 are first in some variables, `x` has a
        // variable of its name.
        assert_eq!(stackable_dims(&vars), dims(&["strlen", "nchar"]));
        assert!(stackable_dims(&[("c".into(), vec![], true)]).is_empty());
    }

    #[test]
    fn chars_stack_into_fixed_width_bytes() {
        let a = TextArray::from_chars(&[2, 3], b"ab\0xyz".to_vec(), true).unwrap();
        assert_eq!(a.shape, [2]);
        assert_eq!(a.element(0), b"ab");
        assert_eq!(a.element(1), b"xyz");
        assert_eq!(a.xarray_dtype(&Map::new()), "|S3");
        let b = TextArray::from_chars(&[2, 3], b"ab\0xyz".to_vec(), false).unwrap();
        assert_eq!(b.shape, [2, 3]);
        assert_eq!(b.xarray_dtype(&Map::new()), "|S1");
        assert!(TextArray::from_chars(&[2, 3], vec![0; 5], true).is_err());
        let s = TextArray::from_chars(&[], b"q".to_vec(), true).unwrap();
        assert_eq!((s.shape.len(), s.element(0)), (0, &b"q"[..]));
    }

    #[test]
    fn selections_take_positions_along_an_axis() {
        // shape (3, 2): rows r0..r2, columns c0, c1
        let names: Vec<String> = (0..6).map(|i| format!("e{i}")).collect();
        let a = TextArray {
            shape: vec![3, 2],
            data: TextData::Str(names),
        };
        let rows = a.take(0, &[2, 0]);
        assert_eq!(rows.shape, [2, 2]);
        assert_eq!(rows.data, TextData::Str(dims(&["e4", "e5", "e0", "e1"])));
        let cols = a.take(1, &[1]);
        assert_eq!(cols.data, TextData::Str(dims(&["e1", "e3", "e5"])));
        let b = TextArray::from_chars(&[3, 2], b"aabbcc".to_vec(), true).unwrap();
        let t = b.take(0, &[1, 1]);
        assert_eq!((t.element(0), t.element(1)), (&b"bb"[..], &b"bb"[..]));
    }

    #[test]
    fn joins_pad_bytes_to_the_widest() {
        let a = TextArray::from_chars(&[1, 2, 1], b"ab".to_vec(), true).unwrap();
        let b = TextArray::from_chars(&[2, 2, 3], b"xyz\0\0\0pq\0rst".to_vec(), true).unwrap();
        let j = TextArray::concat(&[&a, &b], 0).unwrap();
        assert_eq!(j.shape, [3, 2]);
        let got: Vec<&[u8]> = (0..6).map(|i| j.element(i)).collect();
        assert_eq!(got, [&b"a"[..], b"b", b"xyz", b"", b"pq", b"rst"]);
        assert_eq!(j.xarray_dtype(&Map::new()), "|S3");
        // along the second axis
        let k = TextArray::concat(&[&a.take(0, &[0]), &a], 1).unwrap();
        assert_eq!(k.shape, [1, 4]);
        assert!(TextArray::concat(&[&a, &b.take(1, &[0])], 0).is_err());
    }

    #[test]
    fn stored_values_are_what_to_zarr_writes() {
        let mut attrs = Map::new();
        let a = TextArray::from_chars(&[2, 4], b"\xc3\xa9\0\0ab\0\0".to_vec(), true).unwrap();
        assert_eq!(a.stored(&attrs), (StoredType::Bytes(4), a_bytes(&a)));
        attrs.insert("_Encoding".into(), json!("utf-8"));
        assert_eq!(a.xarray_dtype(&attrs), "object");
        assert_eq!(
            a.stored(&attrs),
            (StoredType::Bytes(2), b"\xc3\xa9ab".to_vec())
        );
        let s = TextArray {
            shape: vec![2],
            data: TextData::Str(dims(&["é", "xy"])),
        };
        assert_eq!(s.xarray_dtype(&Map::new()), "<U2");
        let (t, b) = s.stored(&Map::new());
        assert_eq!(t, StoredType::Utf32(2));
        assert_eq!(b, [0xe9, 0, 0, 0, 0, 0, 0, 0, b'x', 0, 0, 0, b'y', 0, 0, 0]);
    }

    fn a_bytes(a: &TextArray) -> Vec<u8> {
        match &a.data {
            TextData::Bytes { data, .. } => data.clone(),
            TextData::Str(_) => Vec::new(),
        }
    }
}
