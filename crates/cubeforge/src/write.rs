//! The write layer: the output arrays of a build and their chunks. Each output chunk (or shard)
//! is computed on its own, padded with the fill value at the edges (in the padded block itself
//! where the node allows it), encoded once with the array's `zarrs` codecs (once for all the
//! chunks that repeat it, `write/repeats.rs`) and handed to the store; chunks of fill values only are
//! not written, as zarr-python does not write them. Metadata goes last, through
//! [`crate::formats::zarr::writer`]; [`destination`] decides what happens to what is there.

use std::sync::Arc;

use bytes::Bytes;
use serde_json::{Map, Value};

use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::exec::{chunk_window, recycle, Exec};
use crate::formats::zarr::writer::{array_doc, zarrs_metadata, ArrayDoc, ArrayLayout};
use crate::formats::zarr::ZArray;
use crate::plan::{Data, NodeRef, VType, Window};
use crate::store::Store;

pub mod destination;
pub(crate) mod repeats;

use repeats::Repeats;

/// An output array: its metadata documents, the `zarrs` array its chunks are encoded by, and
/// what computes them.
pub struct OutArray {
    /// Its metadata documents, committed last.
    pub doc: ArrayDoc,
    /// Dimension names.
    pub dims: Vec<String>,
    /// Shape.
    pub shape: Vec<u64>,
    /// Element type.
    pub dtype: DType,
    /// The chunk-grid shape written per task (the shard shape for sharded arrays).
    pub write_chunks: Vec<u64>,
    array: ZArray,
    source: OutSource,
    /// For a variable that does not vary along some of its dimensions: its chunks encoded once.
    repeats: Option<Repeats>,
}

impl std::fmt::Debug for OutArray {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutArray")
            .field("name", &self.doc.name)
            .field("shape", &self.shape)
            .finish_non_exhaustive()
    }
}

/// What an output array's values come from.
#[derive(Debug)]
pub enum OutSource {
    /// A node of the plan.
    Node(NodeRef),
    /// Values at hand (a coordinate), as stored.
    Values(Vec<u8>),
}

impl OutArray {
    /// An output array of `layout`, with attributes `attrs`, written into `store`, its values
    /// from `source`.
    ///
    /// # Errors
    /// [`Error::Other`] when `zarrs` refuses the array (an internal error).
    pub fn new(
        store: &Store,
        layout: &ArrayLayout<'_>,
        attrs: Map<String, Value>,
        source: OutSource,
    ) -> Result<OutArray> {
        let doc = array_doc(layout, attrs);
        let meta = zarrs_metadata(&doc)?;
        let path = format!("/{}", layout.name);
        let array = zarrs::array::Array::new_with_metadata(store.storage().clone(), &path, meta)
            .map_err(|e| Error::Other(format!("{}: {e}", store.location().join(layout.name))))?
            .with_codec_specific_options(&reproducible_shards());
        Ok(OutArray {
            doc,
            dims: layout.dims.to_vec(),
            shape: layout.shape.to_vec(),
            dtype: layout.dtype,
            write_chunks: layout
                .shards
                .map_or_else(|| layout.chunks.to_vec(), <[u64]>::to_vec),
            repeats: match &source {
                OutSource::Node(n) => Repeats::of(n),
                OutSource::Values(_) => None,
            },
            array,
            source,
        })
    }

    /// The node computing its values, unless they are at hand.
    #[must_use]
    pub fn node(&self) -> Option<&NodeRef> {
        match &self.source {
            OutSource::Node(n) => Some(n),
            OutSource::Values(_) => None,
        }
    }

    /// The grid index of every chunk (or shard) written, in C order.
    #[must_use]
    pub fn chunk_indices(&self) -> Vec<Vec<u64>> {
        let grid: Vec<u64> = self
            .shape
            .iter()
            .zip(&self.write_chunks)
            .map(|(n, c)| n.div_ceil((*c).max(1)).max(1))
            .collect();
        let total: u64 = grid.iter().product();
        (0..total)
            .filter_map(|flat| zarrs::array::unravel_index(flat, &grid))
            .collect()
    }

    /// The window of chunk (or shard) `idx`.
    #[must_use]
    pub fn window(&self, idx: &[u64]) -> Window {
        chunk_window(idx, &self.write_chunks, &self.shape)
    }
}

/// Codec options under which a shard's chunks are laid out in C order, whichever of the
/// threads encoding them finishes first: `zarrs` otherwise appends them as they finish, so the
/// same values could be written as different bytes from one build to the next.
fn reproducible_shards() -> zarrs::array::CodecSpecificOptions {
    use zarrs::array::codec::array_to_bytes::sharding::{ShardingCodecOptions, SubchunkWriteOrder};
    zarrs::array::CodecSpecificOptions::default().with_option(
        ShardingCodecOptions::default().with_subchunk_write_order(SubchunkWriteOrder::C),
    )
}

/// Threads writing finished chunks ([`crate::write_behind::WriteBehind`]): enough to keep a local disk's queue or a
/// few uploads busy while the workers compute.
pub const WRITE_THREADS: usize = 4;

/// The most encoded chunk bytes waiting for a writer thread; a worker with a chunk to write
/// waits while the queue is full.
pub const WRITE_BEHIND_BYTES: usize = 32 * 1024 * 1024;

/// Compute output chunk `idx` of `o` (edge chunks padded with the fill value) and write it:
/// an encoded chunk, or none for a chunk of fill values only.
///
/// # Errors
/// Read and decode errors of the inputs; a write that fails, naming the chunk.
pub fn write_chunk(ex: &Exec, out_store: &Store, o: &OutArray, idx: &[u64]) -> Result<()> {
    thread_local! {
        /// Each worker's buffer for padded edge chunks, reused: a fresh chunk-sized buffer per
        /// chunk costs the kernel page faults and zeroing.
        static PADDED: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    let failed = |e: &dyn std::fmt::Display| {
        Error::Other(format!(
            "{}: cannot write chunk: {e}",
            out_store.location().join(o.array.chunk_key(idx).as_str())
        ))
    };
    let put = |encoded: Option<Bytes>| match encoded {
        Some(bytes) => o
            .array
            .storage()
            .set(&o.array.chunk_key(idx), bytes)
            .map_err(|e| failed(&e)),
        None => o.array.erase_chunk(idx).map_err(|e| failed(&e)),
    };
    let n = match &o.source {
        // A coordinate of a dimension of length 0 has no values and no chunk to write.
        OutSource::Values(b) if b.is_empty() => return Ok(()),
        OutSource::Values(b) => return put(encode_chunk(o, idx, b).map_err(|e| failed(&e))?),
        OutSource::Node(n) => n,
    };
    let window = o.window(idx);
    let got: Vec<u64> = window.iter().map(|r| r.end - r.start).collect();
    // The chunk's values, padded with the fill value to the full chunk shape at the edges,
    // encoded.
    let compute = || -> Result<Option<Bytes>> {
        if got != o.write_chunks && vtype_is(n.vtype, o.dtype) {
            // An edge chunk computed in the padded block itself where the node allows it.
            let full: Vec<usize> = o
                .write_chunks
                .iter()
                .map(|c| usize::try_from(*c).unwrap_or(0))
                .collect();
            if let Some(data) = ex.eval_padded(n, &window, &full)? {
                let encoded = encode_chunk(o, idx, &encode(&data, o.dtype));
                recycle(data);
                return encoded.map_err(|e| failed(&e));
            }
        }
        let block = ex.eval(n, &window)?;
        let bytes = encode(&block.data, o.dtype);
        let encoded = if got == o.write_chunks {
            encode_chunk(o, idx, &bytes)
        } else {
            let fill_value = Data::F64(vec![if o.dtype.is_float() { f64::NAN } else { 0.0 }]);
            let fill = encode(&fill_value, o.dtype);
            PADDED.with(|padded| {
                let mut padded = padded.borrow_mut();
                pad_chunk(&mut padded, &bytes, &got, &o.write_chunks, &fill);
                encode_chunk(o, idx, &padded)
            })
        };
        drop(bytes);
        recycle(block.data);
        encoded.map_err(|e| failed(&e))
    };
    let encoded = match &o.repeats {
        None => compute()?,
        Some(repeats) => repeats
            .cell(idx, &got)
            .get_or_init(|| compute().map_err(Arc::new))
            .clone()
            .map_err(Error::from_shared)?,
    };
    put(encoded)
}

/// Whether values of type `vtype` are stored as `dtype` byte for byte (see [`encode`]).
fn vtype_is(vtype: VType, dtype: DType) -> bool {
    matches!(
        (vtype, dtype),
        (VType::F32, DType::Float32) | (VType::F64, DType::Float64)
    )
}

/// Chunk `idx` of `o` with the values `bytes` (the full chunk shape), encoded as
/// `zarrs::array::Array::store_chunk` encodes it; `None` for a chunk of fill values only, which
/// is not written (as zarr-python does not write them). The writer stores the bytes itself
/// (`store_chunk` would encode again, and `store_encoded_chunk` is `unsafe`), so that a chunk
/// repeated by a broadcast variable is encoded once ([`Repeats`]).
fn encode_chunk(
    o: &OutArray,
    idx: &[u64],
    bytes: &[u8],
) -> std::result::Result<Option<Bytes>, zarrs::array::ArrayError> {
    use zarrs::array::ArrayToBytesCodecTraits as _;
    let options = zarrs::array::CodecOptions::default();
    let bytes = zarrs::array::ArrayBytes::new_flen(bytes);
    if !options.store_empty_chunks() && bytes.is_fill_value(o.array.fill_value()) {
        return Ok(None);
    }
    let shape = o.array.chunk_shape(idx)?;
    let encoded = o
        .array
        .codecs()
        .encode(
            bytes,
            &shape,
            o.array.data_type(),
            o.array.fill_value(),
            &options,
        )
        .map_err(zarrs::array::ArrayError::CodecError)?;
    Ok(Some(Bytes::from(encoded.into_owned())))
}

/// `bytes`, a C-order array of shape `got`, padded to `full` (each dimension at least as long)
/// with the element `fill`, into `out` (replacing what it held). Every byte of the result is
/// written once, row by row.
fn pad_chunk(out: &mut Vec<u8>, bytes: &[u8], got: &[u64], full: &[u64], fill: &[u8]) {
    let to_usize = |n: u64| usize::try_from(n).unwrap_or(0);
    out.clear();
    let Some((&last, outer)) = full.split_last() else {
        out.extend_from_slice(bytes);
        return;
    };
    let row = to_usize(last) * fill.len();
    let got_row = to_usize(got.last().copied().unwrap_or(0)) * fill.len();
    let fill_row = fill.repeat(to_usize(last));
    let rows: usize = outer.iter().map(|n| to_usize(*n)).product();
    out.reserve(rows * row);
    let mut idx = vec![0u64; outer.len()];
    let mut src = 0;
    for _ in 0..rows {
        if idx.iter().zip(got).all(|(i, g)| i < g) {
            out.extend_from_slice(&bytes[src..src + got_row]);
            out.extend_from_slice(&fill_row[got_row..]);
            src += got_row;
        } else {
            out.extend_from_slice(&fill_row);
        }
        for d in (0..outer.len()).rev() {
            idx[d] += 1;
            if idx[d] < outer[d] {
                break;
            }
            idx[d] = 0;
        }
    }
}

/// Whether an output chunk from an interrupted build exists and decodes (absent all-fill chunks
/// are recomputed, which is cheap and writes nothing).
///
/// # Errors
/// A storage error asking for the chunk.
pub fn chunk_is_good(store: &Store, o: &OutArray, idx: &[u64]) -> Result<bool> {
    use zarrs_storage::ReadableStorageTraits as _;
    let key = o.array.chunk_key(idx);
    let present = store
        .storage()
        .size_key(&key)
        .map_err(|e| store.storage_error(key.as_str(), e))?
        .is_some();
    Ok(present
        && o.array
            .retrieve_chunk::<zarrs::array::ArrayBytes<'static>>(idx)
            .is_ok())
}

/// `data` as stored values of `dtype` (native endian): borrowed when the block already holds them.
fn encode(data: &Data, dtype: DType) -> std::borrow::Cow<'_, [u8]> {
    let vals = |i: usize| data.get_f64(i);
    let n = data.len();
    match (data, dtype) {
        (Data::F32(v), DType::Float32) => {
            return std::borrow::Cow::Borrowed(bytemuck::cast_slice(v))
        }
        (Data::F64(v), DType::Float64) => {
            return std::borrow::Cow::Borrowed(bytemuck::cast_slice(v))
        }
        (Data::I64(v), DType::Int64) => return std::borrow::Cow::Borrowed(bytemuck::cast_slice(v)),
        (Data::U64(v), DType::UInt64) => {
            return std::borrow::Cow::Borrowed(bytemuck::cast_slice(v))
        }
        _ => {}
    }
    let mut out = Vec::with_capacity(n * dtype.size());
    for i in 0..n {
        dtype.push_f64(vals(i), &mut out);
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edge_chunks_are_padded_with_the_fill_value() {
        // A 2 x 3 x 2 block of u16 values 1..=12 in a 3 x 4 x 3 chunk, fill 0xFFFF.
        let got = [2u64, 3, 2];
        let full = [3u64, 4, 3];
        let bytes: Vec<u8> = (1u16..=12).flat_map(u16::to_le_bytes).collect();
        let pad = |bytes: &[u8], got: &[u64], full: &[u64], fill: &[u8]| {
            // A reused buffer: what it held before is replaced.
            let mut out = vec![7u8; 100];
            pad_chunk(&mut out, bytes, got, full, fill);
            out
        };
        let padded = pad(&bytes, &got, &full, &[0xFF, 0xFF]);
        let values: Vec<u16> = padded
            .chunks(2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
            .collect();
        let mut want = vec![u16::MAX; 36];
        for t in 0..2 {
            for y in 0..3 {
                for x in 0..2 {
                    want[(t * 4 + y) * 3 + x] = u16::try_from(1 + (t * 3 + y) * 2 + x).unwrap();
                }
            }
        }
        assert_eq!(values, want);
        // One dimension; and nothing to pad.
        assert_eq!(pad(&[1, 2], &[2], &[3], &[9]), [1, 2, 9]);
        assert_eq!(pad(&bytes, &got, &got, &[0, 0]), bytes);
    }

    #[test]
    fn the_chunks_of_a_shard_are_laid_out_in_c_order() {
        use crate::exec::Exec;
        use crate::expr::BinOp;
        use crate::formats::zarr::writer::Compressor;
        use crate::plan::{Node, Op};
        use crate::source::Sources;
        use crate::testkit::along;
        use zarrs_storage::ReadableStorageTraits as _;
        // One shard of 8 x 8 chunks whose sizes differ, encoded on all workers.
        #[allow(clippy::cast_precision_loss)]
        let x = along(
            "x",
            (0..64u32)
                .map(|i| {
                    if i % 3 == 0 {
                        0.0
                    } else {
                        f64::from(i * i) * 1.37
                    }
                })
                .collect(),
            VType::F64,
        );
        let t = along("t", (0..128u32).map(f64::from).collect(), VType::F64);
        let dims = vec!["t".to_string(), "x".to_string()];
        let node = Node::new(
            Op::Binary(BinOp::Mul, t, x),
            dims.clone(),
            vec![128, 64],
            VType::F64,
        );
        let store = Store::open_str("memory://write-shard-order").expect("store");
        let layout = ArrayLayout {
            zarr_format: 3,
            name: "v",
            dims: &dims,
            shape: &[128, 64],
            chunks: &[16, 8],
            shards: Some(&[128, 64]),
            dtype: DType::Float64,
            compressor: &Compressor::Zstd { level: 3 },
        };
        let o = OutArray::new(&store, &layout, Map::new(), OutSource::Node(node)).expect("array");
        let ex = Exec::new(Sources::default(), 1 << 20);
        let key = zarrs_storage::StoreKey::new("v/c/0/0").expect("key");
        let mut written = Vec::new();
        for _ in 0..4 {
            write_chunk(&ex, &store, &o, &[0, 0]).expect("write");
            written.push(store.storage().get(&key).expect("get").expect("stored"));
        }
        assert!(
            written.windows(2).all(|w| w[0] == w[1]),
            "the same bytes each time"
        );
        // The index (offset, size per chunk, then a checksum) at the end: offsets in C order.
        let shard = &written[0];
        let index = &shard[shard.len() - (64 * 16 + 4)..shard.len() - 4];
        let offsets: Vec<u64> = index
            .chunks_exact(16)
            .map(|e| u64::from_le_bytes(e[..8].try_into().expect("8 bytes")))
            .collect();
        assert_eq!(offsets[0], 0);
        assert!(offsets.windows(2).all(|w| w[0] < w[1]), "{offsets:?}");
    }
}
