//! Fixtures the unit tests share: small Zarr arrays in memory stores (plain, Blosc, parts, 2-d
//! grids), plan nodes over them, and nodes built by hand.

use std::sync::Arc;

use crate::cf::CfDecoding;
use crate::dtype::DType;
use crate::exec::Exec;
use crate::formats::zarr::{list_group, ZarrArray};
use crate::plan::{Block, Node, NodeRef, Op, Reduction, SourceRef, UnOp, VType, Window};
use crate::source::{ChunkSource, Sources};
use crate::store::Store;

/// A Zarr v2 group in a fresh memory store.
pub(crate) fn memory_group(url: &str) -> Store {
    let store = Store::open_str(url).expect("memory store");
    put_key(&store, ".zgroup", br#"{"zarr_format": 2}"#.to_vec());
    store
}

/// Store `bytes` at `key`.
pub(crate) fn put_key(store: &Store, key: &str, bytes: Vec<u8>) {
    use zarrs_storage::WritableStorageTraits as _;
    let k = zarrs_storage::StoreKey::new(key).expect("key");
    store.storage().set(&k, bytes.into()).expect("set");
}

/// The first array of the group at the root of `store`.
pub(crate) fn first_array(store: &Store) -> ZarrArray {
    let listing = list_group(store, "").expect("listing");
    ZarrArray::open(store, &listing.arrays[0]).expect("array")
}

/// Values given along one dimension, as a node.
pub(crate) fn along(dim: &str, vals: Vec<f64>, vtype: VType) -> NodeRef {
    let n = vals.len() as u64;
    Node::new(
        Op::Along {
            dim: dim.into(),
            values: Arc::new(vals),
        },
        vec![dim.into()],
        vec![n],
        vtype,
    )
}

/// A memory store holding a float32 array `a` of shape [n] in chunks of 1 (chunk `n - 1` not
/// stored), uncompressed.
pub(crate) fn memory_array(name: &str, n: u64) -> ZarrArray {
    let store = memory_group(&format!("memory://{name}"));
    let put = |key: &str, bytes: Vec<u8>| put_key(&store, key, bytes);
    let zarray = format!(
        r#"{{"zarr_format": 2, "shape": [{n}], "chunks": [1], "dtype": "<f4",
           "compressor": null, "filters": null, "fill_value": "NaN", "order": "C"}}"#
    );
    put("a/.zarray", zarray.into_bytes());
    for i in 0..n - 1 {
        #[allow(clippy::cast_precision_loss)]
        put(&format!("a/{i}"), (i as f32).to_le_bytes().to_vec());
    }
    first_array(&store)
}

/// A 1-d float32 array of `n` Blosc-compressed chunks of 1024 values (value = position), the
/// last chunk not stored, chunk 2 with bytes after its frame.
pub(crate) fn blosc_array(name: &str, n: u32) -> ZarrArray {
    blosc_array_of(name, n, 1024)
}

/// A float32 array of `n` Blosc chunks of `len` elements, value `i` at `i`; the last chunk is
/// not stored, and chunk 2 has bytes after its frame.
pub(crate) fn blosc_array_of(name: &str, n: u32, len: u32) -> ZarrArray {
    let store = memory_group(&format!("memory://{name}"));
    let put = |key: &str, bytes: Vec<u8>| put_key(&store, key, bytes);
    put(
        "a/.zarray",
        format!(
            r#"{{"zarr_format": 2, "shape": [{}], "chunks": [{}], "dtype": "<f4",
               "compressor": {{"id": "blosc", "cname": "lz4", "clevel": 5, "shuffle": 1,
               "blocksize": 0}}, "filters": null, "fill_value": "NaN", "order": "C"}}"#,
            u64::from(n) * u64::from(len),
            len
        )
        .into_bytes(),
    );
    for c in 0..n - 1 {
        #[allow(clippy::cast_precision_loss)]
        let raw: Vec<u8> = (c * len..(c + 1) * len)
            .flat_map(|i| (i as f32).to_le_bytes())
            .collect();
        let mut frame = crate::formats::zarr::blosc::tests::frame(&raw);
        if c == 2 {
            // Bytes after the frame, as z5py writes them: decoded by `zarrs`, then copied.
            frame.extend_from_slice(&[0; 8]);
        }
        put(&format!("a/{c}"), frame);
    }
    first_array(&store)
}

/// A 10 x 6 float32 array in 4 x 3 Blosc chunks, value `100 * row + col`; chunk (1, 1) is not
/// stored.
pub(crate) fn blosc_2d(name: &str) -> ZarrArray {
    let store = memory_group(&format!("memory://{name}"));
    put_key(
        &store,
        "a/.zarray",
        br#"{"zarr_format": 2, "shape": [10, 6], "chunks": [4, 3], "dtype": "<f4",
           "compressor": {"id": "blosc", "cname": "lz4", "clevel": 5, "shuffle": 1,
           "blocksize": 0}, "filters": null, "fill_value": "NaN", "order": "C"}"#
            .to_vec(),
    );
    for (ci, cj) in (0..3u64).flat_map(|i| (0..2u64).map(move |j| (i, j))) {
        if (ci, cj) == (1, 1) {
            continue;
        }
        #[allow(clippy::cast_precision_loss)]
        let raw: Vec<u8> = (0..4u64)
            .flat_map(|r| (0..3u64).map(move |c| ((ci * 4 + r) * 100 + cj * 3 + c) as f32))
            .flat_map(f32::to_le_bytes)
            .collect();
        put_key(
            &store,
            &format!("a/{ci}.{cj}"),
            crate::formats::zarr::blosc::tests::frame(&raw),
        );
    }
    first_array(&store)
}

/// A source node over `source`, added to `sources`, of dimensions `dims`, decoded with NaN as
/// the fill value.
pub(crate) fn source_node(
    sources: &mut Sources,
    source: Arc<dyn ChunkSource>,
    dims: &[&str],
) -> NodeRef {
    let dtype = source.dtype();
    let vtype = VType::of(dtype);
    let decoding =
        CfDecoding::from_attrs(&serde_json::Map::new(), dtype, Some(f64::NAN)).expect("decoding");
    let shape = source.shape().to_vec();
    let source = SourceRef {
        index: sources.add(source.clone()),
        location: source.id().to_string(),
        dtype,
    };
    Node::new(
        Op::Source {
            source,
            decoding: Box::new(decoding),
        },
        dims.iter().map(|d| (*d).to_string()).collect(),
        shape,
        vtype,
    )
}

/// A (t, x) float32 array in memory, uncompressed, `value(t, x)` everywhere, as a source node
/// whose reader is added to `sources`.
pub(crate) fn grid_source(
    sources: &mut Sources,
    name: &str,
    shape: [u64; 2],
    chunks: [u64; 2],
    value: impl Fn(u64, u64) -> f32,
) -> NodeRef {
    let store = memory_group(&format!("memory://{name}"));
    let put = |key: &str, bytes: Vec<u8>| put_key(&store, key, bytes);
    put(
        "a/.zarray",
        format!(
            r#"{{"zarr_format": 2, "shape": {shape:?}, "chunks": {chunks:?},
               "dtype": "<f4", "compressor": null, "filters": null, "fill_value": "NaN",
               "order": "C"}}"#
        )
        .into_bytes(),
    );
    for i in 0..shape[0].div_ceil(chunks[0]) {
        for j in 0..shape[1].div_ceil(chunks[1]) {
            let mut bytes = Vec::new();
            for t in i * chunks[0]..(i + 1) * chunks[0] {
                for x in j * chunks[1]..(j + 1) * chunks[1] {
                    bytes.extend_from_slice(&value(t, x).to_le_bytes());
                }
            }
            put(&format!("a/{i}.{j}"), bytes);
        }
    }
    source_node(sources, Arc::new(first_array(&store)), &["t", "x"])
}

/// `kind` of `child` over its dimensions `dims`.
pub(crate) fn reduce(child: &NodeRef, kind: Reduction, dims: &[&str], vtype: VType) -> NodeRef {
    let keep: Vec<(String, u64)> = child
        .dims
        .iter()
        .zip(&child.shape)
        .filter(|(d, _)| !dims.contains(&d.as_str()))
        .map(|(d, n)| (d.clone(), *n))
        .collect();
    Node::new(
        Op::Reduce {
            child: child.clone(),
            dims: dims.iter().map(|d| (*d).to_string()).collect(),
            kind,
        },
        keep.iter().map(|(d, _)| d.clone()).collect(),
        keep.iter().map(|(_, n)| *n).collect(),
        vtype,
    )
}

/// `op` of `child`, of type `vtype`.
pub(crate) fn unary_node(op: UnOp, child: &NodeRef, vtype: VType) -> NodeRef {
    Node::new(
        Op::Unary(op, child.clone()),
        child.dims.clone(),
        child.shape.clone(),
        vtype,
    )
}

/// A plan's reference to source `index` at `location`, storing `dtype` (nothing opened).
pub(crate) fn source_ref(index: usize, location: &str, dtype: DType) -> SourceRef {
    SourceRef {
        index,
        location: location.into(),
        dtype,
    }
}

/// `all`/`any` of `op` (`IsNan` or `NotNull`) of `child` over the dimensions `over`.
pub(crate) fn nan_reduction(
    ex: &Exec,
    child: &NodeRef,
    dims: &[String],
    op: UnOp,
    kind: Reduction,
    over: &[&str],
) -> crate::error::Result<Block> {
    let unary = Node::new(
        Op::Unary(op, child.clone()),
        dims.to_vec(),
        child.shape.clone(),
        VType::Bool,
    );
    let kept: Vec<usize> = (0..dims.len())
        .filter(|i| !over.contains(&dims[*i].as_str()))
        .collect();
    let node = Node::new(
        Op::Reduce {
            child: unary,
            dims: over.iter().map(|d| (*d).to_string()).collect(),
            kind,
        },
        kept.iter().map(|i| dims[*i].clone()).collect(),
        kept.iter().map(|i| child.shape[*i]).collect(),
        VType::Bool,
    );
    let window: Window = node.shape.iter().map(|n| 0..*n).collect();
    ex.eval(&node, &window)
}

/// A 10 x 6 float32 Zarr v3 array in shards of 4 x 6 holding chunks of 2 x 3 (zstd), value
/// `100 * row + col`; shard (1, 0) is not stored.
pub(crate) fn sharded_v3(name: &str) -> ZarrArray {
    use crate::formats::zarr::writer::{array_doc, zarrs_metadata, ArrayLayout, Compressor};
    let store = Store::open_str(&format!("memory://{name}")).expect("memory store");
    put_key(
        &store,
        "zarr.json",
        br#"{"zarr_format": 3, "node_type": "group", "attributes": {}}"#.to_vec(),
    );
    let dims = ["y".to_string(), "x".to_string()];
    let layout = ArrayLayout {
        zarr_format: 3,
        name: "a",
        dims: &dims,
        shape: &[10, 6],
        chunks: &[2, 3],
        shards: Some(&[4, 6]),
        dtype: DType::Float32,
        compressor: &Compressor::Zstd { level: 1 },
    };
    let doc = array_doc(&layout, serde_json::Map::new());
    put_key(&store, "a/zarr.json", doc.meta.to_string().into_bytes());
    let array = zarrs::array::Array::new_with_metadata(
        store.storage().clone(),
        "/a",
        zarrs_metadata(&doc).expect("metadata"),
    )
    .expect("array");
    for shard in [0u64, 2] {
        #[allow(clippy::cast_precision_loss)]
        let values: Vec<f32> = (0..4u64)
            .flat_map(|r| (0..6u64).map(move |c| ((shard * 4 + r) * 100 + c) as f32))
            .collect();
        array.store_chunk(&[shard, 0], &values).expect("shard");
    }
    first_array(&store)
}
