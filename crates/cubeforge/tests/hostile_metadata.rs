//! Property tests of what cubeforge reads before any data: Zarr metadata documents (`.zarray`,
//! `.zattrs`, `zarr.json`, `.zmetadata`) made of arbitrary JSON values or arbitrary bytes, with
//! shapes and chunks drawn from the whole `u64` range, and locations (`Location::parse`) made of
//! arbitrary text. Whatever they hold, parsing, listing, opening and describing a group returns
//! a value or an error: it never panics, aborts on a huge allocation or overflows.

use std::sync::atomic::{AtomicU64, Ordering};

use cubeforge::dataset::Dataset;
use cubeforge::store::{Location, Store};
use cubeforge::zarr::{list_group, ArrayMeta};
use proptest::prelude::*;
use serde_json::{json, Value};
use zarrs_storage::{StoreKey, WritableStorageTraits as _};

/// A fresh in-memory store, one per case.
fn memory_store() -> Store {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    Store::open_str(&format!("memory://hostile-metadata-{n}")).expect("memory store")
}

fn put(store: &Store, key: &str, bytes: Vec<u8>) {
    let k = StoreKey::new(key).expect("key");
    store.storage().set(&k, bytes.into()).expect("set");
}

/// Any JSON value, a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        "[a-z<|>0-9_.]{0,8}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,10}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A size from anywhere in `u64`: small, around 2^32, or huge.
fn any_size() -> impl Strategy<Value = u64> {
    prop_oneof![
        0u64..6,
        (1u64 << 31)..(1u64 << 33),
        any::<u64>(),
        Just(u64::MAX)
    ]
}

/// A JSON size: usually a size, sometimes negative, fractional or not a number.
fn json_size() -> impl Strategy<Value = Value> {
    prop_oneof![
        8 => any_size().prop_map(Value::from),
        1 => any::<i64>().prop_map(Value::from),
        1 => Just(json!(1.5)),
        1 => Just(json!("3")),
    ]
}

fn dims_list() -> impl Strategy<Value = Value> {
    prop_oneof![
        3 => prop::collection::vec(prop::sample::select(vec!["a", "x", "y", "time"]), 0..5)
            .prop_map(|v| json!(v)),
        1 => any_json(),
    ]
}

/// A `.zarray` document close to a real one, with sizes and fields drawn wide.
fn zarray() -> impl Strategy<Value = Value> {
    (
        prop::collection::vec(json_size(), 0..4),
        prop::collection::vec(json_size(), 0..4),
        prop::sample::select(vec![
            "<f4", "<f8", "|u1", "<i8", ">i2", "|b1", "|S7", "<U3", "<q9", "<c8", "<M8[ns]",
        ]),
        prop::sample::select(vec![
            json!(null),
            json!({"id": "blosc", "cname": "lz4", "clevel": 5, "shuffle": 1}),
            json!({"id": "zlib", "level": 1}),
            json!({"id": "no-such-codec"}),
            json!("blosc"),
        ]),
        prop_oneof![any_json(), Just(json!("NaN")), Just(json!(0))],
        prop::sample::select(vec![json!(2), json!(3), json!("2"), json!(null)]),
        prop::sample::select(vec![json!("C"), json!("F"), json!("Z")]),
    )
        .prop_map(|(shape, chunks, dtype, compressor, fill, format, order)| {
            json!({"zarr_format": format, "shape": shape, "chunks": chunks, "dtype": dtype,
                   "compressor": compressor, "fill_value": fill, "order": order, "filters": null})
        })
}

/// A v3 array `zarr.json` close to a real one.
fn zarr_json() -> impl Strategy<Value = Value> {
    (
        prop::collection::vec(json_size(), 0..4),
        prop::collection::vec(json_size(), 0..4),
        prop::sample::select(vec![
            "float32",
            "int64",
            "uint8",
            "bool",
            "complex64",
            "string",
            "r16",
            "float16",
        ]),
        prop::sample::select(vec![json!(3), json!(4), json!("3"), json!(null)]),
        dims_list(),
        prop::option::of(prop::collection::vec(json_size(), 0..4)),
        prop_oneof![any_json(), Just(json!(0)), Just(json!("NaN"))],
    )
        .prop_map(|(shape, chunks, dtype, format, names, inner, fill)| {
            let mut codecs = vec![json!({"name": "bytes", "configuration": {"endian": "little"}})];
            if let Some(inner) = inner {
                codecs = vec![json!({"name": "sharding_indexed", "configuration": {
                    "chunk_shape": inner, "codecs": codecs,
                    "index_codecs": [{"name": "bytes", "configuration": {"endian": "little"}}]}})];
            }
            json!({"zarr_format": format, "node_type": "array", "shape": shape,
                   "data_type": dtype, "fill_value": fill, "dimension_names": names,
                   "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": chunks}},
                   "chunk_key_encoding": {"name": "default"}, "codecs": codecs})
        })
}

/// Open the root group of `store` as a dataset and, where it opens, touch every size and name
/// a report is made of. Must not panic or abort, whatever the store holds.
fn open_everything(store: &Store) {
    let _ = list_group(store, "");
    if let Ok(ds) = Dataset::open(store, "") {
        for v in &ds.variables {
            let _ = (v.meta.len(), v.decoded_dtype(), v.attrs(), v.problem());
            if let Ok(a) = v.array(store) {
                let _ = (a.unit_len(), a.direct_chunk_len());
            }
        }
        // Describing reads the first and last values of coordinates: only where a chunk is
        // small, since a missing chunk is produced whole as fill values.
        let small = ds
            .variables
            .iter()
            .all(|v| cubeforge::zarr::element_count(&v.meta.chunks).is_some_and(|n| n <= 1 << 16));
        if small {
            let _ = cubeforge::info::report(&ds);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn array_summaries_of_any_json(zarray in any_json(), zattrs in any_json(), v3 in any_json()) {
        let _ = ArrayMeta::from_v2(&zarray, Some(&zattrs), "memory://x/.zarray");
        let _ = ArrayMeta::from_v3(&v3, "memory://x/zarr.json");
    }

    #[test]
    fn v2_arrays_with_sizes_from_anywhere(doc in zarray(), dims in dims_list(), consolidated in any::<bool>()) {
        let store = memory_store();
        let zattrs = json!({"_ARRAY_DIMENSIONS": dims, "units": "K"});
        let meta = ArrayMeta::from_v2(&doc, Some(&zattrs), "memory://x/a/.zarray");
        if let Ok(m) = &meta {
            // A summary that parses has sizes that fit, and one name per dimension.
            prop_assert!(cubeforge::zarr::element_count(&m.shape).is_some());
            if let Some(names) = &m.dimension_names {
                prop_assert_eq!(names.len(), m.shape.len());
            }
        }
        put(&store, ".zgroup", br#"{"zarr_format": 2}"#.to_vec());
        if consolidated {
            let zmeta = json!({"zarr_consolidated_format": 1, "metadata": {
                ".zgroup": {"zarr_format": 2}, "a/.zarray": doc, "a/.zattrs": zattrs}});
            put(&store, ".zmetadata", zmeta.to_string().into_bytes());
        }
        put(&store, "a/.zarray", doc.to_string().into_bytes());
        put(&store, "a/.zattrs", zattrs.to_string().into_bytes());
        open_everything(&store);
    }

    #[test]
    fn v3_arrays_with_sizes_from_anywhere(doc in zarr_json(), consolidated in any::<bool>()) {
        let store = memory_store();
        let mut root = json!({"zarr_format": 3, "node_type": "group", "attributes": {}});
        if consolidated {
            root["consolidated_metadata"] = json!({"kind": "inline", "must_understand": false,
                                                   "metadata": {"a": doc}});
        }
        put(&store, "zarr.json", root.to_string().into_bytes());
        put(&store, "a/zarr.json", doc.to_string().into_bytes());
        open_everything(&store);
    }

    #[test]
    fn metadata_documents_of_any_bytes(
        bytes in prop::collection::vec(any::<u8>(), 0..64),
        key in prop::sample::select(vec![".zgroup", ".zmetadata", "zarr.json", ".zarray", ".zattrs",
                                          "a/.zarray", "a/.zattrs", "a/zarr.json"]),
    ) {
        let store = memory_store();
        put(&store, ".zgroup", br#"{"zarr_format": 2}"#.to_vec());
        put(&store, "a/.zarray", json!({"zarr_format": 2, "shape": [4], "chunks": [2], "dtype": "<f4",
            "compressor": null, "fill_value": "NaN", "order": "C", "filters": null}).to_string().into_bytes());
        put(&store, key, bytes);
        open_everything(&store);
    }

    #[test]
    fn group_paths_of_any_text(group in "[a-z./\\\\]{0,12}|\\PC{0,12}") {
        let store = memory_store();
        put(&store, ".zgroup", br#"{"zarr_format": 2}"#.to_vec());
        if let Ok(ds) = Dataset::open(&store, &group) {
            // Whatever opened is inside the store: no segment climbs out.
            prop_assert!(!ds.group.split('/').any(|s| s == ".." || s == "."));
        }
    }

    #[test]
    fn locations_of_any_text(text in "\\PC{0,40}") {
        if let Ok(loc) = Location::parse(&text) {
            let _ = (loc.to_string(), loc.join("a/b"), loc.local_path());
        }
    }

    #[test]
    fn urls_with_schemes_and_odd_keys(
        scheme in prop::sample::select(vec!["s3", "S3", "gs", "gcs", "az", "abfs", "http", "https", "file",
                                            "memory", "ftp", ""]),
        rest in "[a-zA-Z0-9./%?#@:_\\-\\[\\] ]{0,40}",
    ) {
        let text = format!("{scheme}://{rest}");
        if let Ok(loc) = Location::parse(&text) {
            let shown = loc.join("k");
            prop_assert!(!shown.is_empty());
        }
    }
}

#[test]
fn object_keys_that_climb_out_are_refused() {
    for text in [
        "s3://b/a/../c",
        "s3://b/a/%2e%2e/c",
        "gs://b/./x",
        "https://h/a/.%2E/b",
    ] {
        assert!(Location::parse(text).is_err(), "{text}");
    }
}
