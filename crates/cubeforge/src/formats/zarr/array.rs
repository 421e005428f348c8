//! One Zarr array opened for reading: chunk and unit reads through `zarrs`, Blosc chunks
//! decoded straight into a caller's buffer ([`super::blosc`]), and the [`ChunkSource`] the
//! executor reads it through.

use std::sync::Arc;

use zarrs::array::{Array, ArrayBytes};
use zarrs_storage::{Bytes, ReadableStorageTraits, StorePrefix};

use super::blosc::Planes;
use super::{key_in, ArrayEntry, ArrayMeta, ZArray};
use crate::dtype::{DType, RawArray};
use crate::error::{Error, Result};
use crate::region::{copy_region, grid_blocks, Region};
use crate::source::{check_region, ChunkSource, DirectUnits, PlaneFrames};
use crate::store::Store;

/// Decoded chunks from this size on are decompressed on several threads.
const LARGE_CHUNK_BYTES: usize = 32 << 20;

/// Chunks decoded larger than this are decoded and cached in parts (see
/// [`ZarrArray::unit_rows`]).
pub const PART_BYTES: usize = 32 << 20;

/// The largest chunk (or shard) cubeforge decodes, in bytes: a larger one would be allocated
/// whole (even a missing one, as its fill value), and no Zarr writer makes chunks this large
/// (Blosc frames hold at most 2 GiB).
pub const MAX_CHUNK_BYTES: u64 = 4 << 30;

/// Refuse arrays whose chunks (or shards) decode larger than [`MAX_CHUNK_BYTES`].
fn check_chunk_bytes(meta: &ArrayMeta, dtype: DType) -> std::result::Result<(), String> {
    let sizes = std::iter::once(&meta.chunks).chain(meta.shards.as_ref());
    for shape in sizes {
        let bytes =
            super::meta::element_count(shape).and_then(|n| n.checked_mul(dtype.size() as u64));
        match bytes {
            Some(b) if b <= MAX_CHUNK_BYTES => {}
            _ => {
                return Err(format!(
                    "a chunk of shape {shape:?} decodes to {} bytes, more than the {} GiB \
                     cubeforge decodes at once; rechunk the array",
                    bytes.map_or_else(|| "more than 2^64".to_string(), |b| b.to_string()),
                    MAX_CHUNK_BYTES >> 30
                ))
            }
        }
    }
    Ok(())
}

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
    /// The full location, for messages and the executor's cache keys.
    location: String,
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
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

impl ZarrArray {
    /// Open an array listed by [`super::list_group`].
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
        check_chunk_bytes(&entry.meta, dtype)
            .map_err(|detail| unsupported("chunk size".into(), detail))?;
        let direct_len = direct_blosc_chunk_len(&entry.meta, dtype);
        Ok(ZarrArray {
            store: store.clone(),
            entry: entry.clone(),
            location: store.location().join(&entry.path),
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
    pub fn units_in(&self, start: &[u64], shape: &[u64]) -> Result<Vec<(Vec<u64>, Region)>> {
        let other = |e: &dyn std::fmt::Display| Error::Other(e.to_string());
        check_region(&self.location, self.shape(), start, shape)?;
        if shape.contains(&0) {
            return Ok(Vec::new());
        }
        let Some(rows) = self.part_rows else {
            let subset =
                zarrs::array::ArraySubset::new_with_start_shape(start.to_vec(), shape.to_vec())
                    .map_err(|e| other(&e))?;
            let chunks = self
                .array
                .chunks_in_array_subset(&subset)
                .map_err(|e| other(&e))?
                .ok_or_else(|| Error::Other(format!("{}: irregular chunk grid", self.location)))?;
            return chunks
                .indices()
                .into_iter()
                .map(|idx| {
                    let cs = self.array.chunk_subset(&idx).map_err(|e| other(&e))?;
                    Ok((
                        idx.to_vec(),
                        Region::new(cs.start().to_vec(), cs.shape().to_vec()),
                    ))
                })
                .collect();
        };
        let mut unit = self.entry.meta.chunks.clone();
        unit[0] = rows;
        Ok(grid_blocks(start, shape, &unit))
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

    /// The `zarrs` array (its codecs, chunk grid and keys).
    #[must_use]
    pub fn inner(&self) -> &Arc<ZArray> {
        &self.array
    }

    /// The array's node path from the store root, without slashes at either end (`""` for an
    /// array at the root).
    #[must_use]
    pub fn meta_path(&self) -> &str {
        self.entry.path.trim_matches('/')
    }

    /// Full location of the array, for messages.
    #[must_use]
    pub fn location(&self) -> String {
        self.location.clone()
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
        if super::blosc::decompress_into(encoded, out, threads) {
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
        if super::blosc::getitem_into(frame, from, out) {
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
    pub fn read_encoded(&self, chunk: &[u64]) -> Result<Option<Bytes>> {
        let key = self.array.chunk_key(chunk);
        let storage_error = |source| self.store.storage_error(key.as_str(), source);
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
    pub fn read_encoded_sparse(&self, chunk: &[u64]) -> Result<Option<Bytes>> {
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

impl ChunkSource for ZarrArray {
    fn id(&self) -> &str {
        &self.location
    }

    fn dtype(&self) -> DType {
        self.dtype
    }

    fn shape(&self) -> &[u64] {
        &self.entry.meta.shape
    }

    /// The chunk shape (the inner chunk of a sharded array; the units of a sharded array are its
    /// shards, which `zarrs` decodes whole).
    fn chunk_shape(&self) -> &[u64] {
        &self.entry.meta.chunks
    }

    fn units_in(&self, start: &[u64], shape: &[u64]) -> Result<Vec<(Vec<u64>, Region)>> {
        ZarrArray::units_in(self, start, shape)
    }

    fn unit_bytes(&self, unit: &[u64]) -> usize {
        ZarrArray::unit_bytes(self, unit)
    }

    fn read_unit(&self, unit: &[u64]) -> Result<Option<Vec<u8>>> {
        let Some(len) = self.unit_len() else {
            return self.read_chunk_if_exists(unit);
        };
        let Some(stored) = self.read_encoded(&self.unit_chunk(unit).0)? else {
            return Ok(None);
        };
        let mut out = vec![0u8; len];
        self.decode_unit_into(unit, &stored, &mut out)?;
        Ok(Some(out))
    }

    fn fill_element(&self) -> Vec<u8> {
        self.fill_bytes()
    }

    fn read_region(&self, start: &[u64], shape: &[u64]) -> Result<RawArray> {
        ZarrArray::read_region(self, start, shape)
    }

    fn local_file(&self, unit: &[u64]) -> Option<std::path::PathBuf> {
        self.chunk_path(&self.unit_chunk(unit).0)
    }

    fn direct(&self) -> Option<&dyn DirectUnits> {
        self.direct_len.map(|_| self as &dyn DirectUnits)
    }
}

/// Chunks that are single Blosc frames ([`ZarrArray::direct_chunk_len`]), and equal parts of
/// large ones ([`ZarrArray::unit_rows`]), decoded by C-Blosc into the cache's buffers.
impl DirectUnits for ZarrArray {
    fn unit_len(&self) -> usize {
        ZarrArray::unit_len(self).unwrap_or(0)
    }

    fn read_stored(&self, unit: &[u64]) -> Result<Option<Bytes>> {
        self.read_encoded(&self.unit_chunk(unit).0)
    }

    fn decode_unit_into(&self, unit: &[u64], stored: &[u8], out: &mut [u8]) -> Result<()> {
        ZarrArray::decode_unit_into(self, unit, stored, out)
    }

    fn planes(&self) -> Option<&dyn PlaneFrames> {
        Some(self)
    }
}

/// Blosc frames with byte shuffle (what zarr-python writes by default): which values are NaN is
/// read from the planes of their most significant bytes.
impl PlaneFrames for ZarrArray {
    fn frame_of(&self, unit: &[u64]) -> (Vec<u64>, usize) {
        let (chunk, part) = self.unit_chunk(unit);
        let values = ZarrArray::unit_len(self).unwrap_or(0) / self.dtype.size().max(1);
        (chunk, usize::try_from(part).unwrap_or(0) * values)
    }

    fn read_frame(&self, frame: &[u64]) -> Result<Option<Bytes>> {
        self.read_encoded_sparse(frame)
    }

    fn byte_planes<'a>(&self, stored: &'a [u8]) -> Option<Planes<'a>> {
        let size = self.dtype.size();
        let frame = self.trimmed_blosc_frame(stored).unwrap_or(stored);
        Planes::parse(frame, size).filter(|p| Some(p.values() * size) == self.direct_len)
    }

    fn corrupt(&self, frame: &[u64], reason: String) -> Error {
        ZarrArray::corrupt(self, frame, reason)
    }
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

#[cfg(test)]
mod tests {
    use crate::source::{contract, ChunkSource};
    use crate::testkit::{blosc_2d, blosc_array, memory_array, sharded_v3};

    #[test]
    fn zarr_arrays_keep_the_source_contract() {
        let arrays = [
            // Uncompressed, one value per chunk, the last chunk not stored.
            memory_array("array-contract-plain", 5),
            // Blosc frames decoded straight into buffers, one with bytes after it, one absent.
            blosc_array("array-contract-blosc", 5),
            // 2-d Blosc chunks, whole and in parts of 2 rows; chunk (1, 1) absent.
            blosc_2d("array-contract-2d"),
            blosc_2d("array-contract-parts").with_part_bytes(24),
            // Zarr v3 shards of zstd chunks, one shard absent: units are shards.
            sharded_v3("array-contract-v3"),
        ];
        for array in &arrays {
            contract::check(array).unwrap_or_else(|e| panic!("{e}"));
        }
        // The capabilities each declares.
        let direct = |a: &dyn ChunkSource| a.direct().map(|d| (d.unit_len(), d.planes().is_some()));
        assert_eq!(direct(&arrays[0]), None);
        assert_eq!(direct(&arrays[1]), Some((4096, true)));
        assert_eq!(direct(&arrays[3]), Some((24, true)));
        assert_eq!(direct(&arrays[4]), None);
        assert_eq!(arrays[4].chunk_shape(), [2, 3]);
        assert_eq!(
            arrays[4].units_in(&[0, 0], &[10, 6]).expect("units").len(),
            3
        );
    }
}
