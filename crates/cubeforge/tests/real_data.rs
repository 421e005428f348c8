//! Reads every Zarr array listed in `shared/data/real/MANIFEST.md` (written by zarr-python 2 and
//! 3, z5py and zarrs) and checks what the manifest says a correct reader returns: shape, dtype
//! and the SHA-256 of the values (`sha16`), plus integer sums. Arrays using a feature `zarrs`
//! cannot decode must fail with an error that names that feature. Every array read also keeps the
//! contract of the executor's `ChunkSource` (units cover regions exactly, absent units read as
//! fill, unit reads agree with region reads).

use std::path::{Path, PathBuf};

use cubeforge::dataset::Dataset;
use cubeforge::store::Store;
use sha2::{Digest, Sha256};

fn real_data() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/real");
    p.join("MANIFEST.md").exists().then_some(p)
}

/// One Zarr row of the manifest.
#[derive(Debug)]
struct Row {
    path: String,
    contents: String,
    expect: String,
}

fn zarr_rows(manifest: &str) -> Vec<Row> {
    let mut rows = Vec::new();
    for line in manifest.lines() {
        let cells: Vec<&str> = line.split(" | ").collect();
        if cells.len() < 5 || !line.starts_with("| `") {
            continue;
        }
        let contents = cells[3].trim();
        if !(contents.starts_with("Zarr v2, dtype") || contents.starts_with("Zarr v3, `")) {
            continue;
        }
        let path = cells[0]
            .trim_start_matches("| ")
            .trim_matches('`')
            .to_string();
        rows.push(Row {
            path,
            contents: contents.to_string(),
            expect: cells[4].to_string(),
        });
    }
    rows
}

fn field<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    let start = text.find(&format!("{name} "))? + name.len() + 1;
    let rest = &text[start..];
    let end = if rest.starts_with('[') {
        rest.find(']')? + 1
    } else {
        rest.find([',', '.', ' ']).unwrap_or(rest.len())
    };
    Some(&rest[..end])
}

fn sha16(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// Features the manifest's stores use that cubeforge reports as unsupported, by path suffix, with
/// the words the error must contain.
const UNSUPPORTED: &[(&str, &str)] = &[
    ("fixture/14/0", "data type '|S1'"),
    ("fixture/14/1", "data type '|S1'"),
    ("fixture/15/4", "data type '<U4'"),
    ("1d.contiguous.S7", "data type '|S7'"),
    ("1d.contiguous.U13.be", "data type '>U13'"),
    ("1d.contiguous.U13.le", "data type '<U13'"),
    ("1d.contiguous.U7", "data type '<U7'"),
    ("2d.chunked.U7", "data type '<U7'"),
    ("3d.chunked.O", "data type '|O'"),
    ("1d.contiguous.json2.O", "codec 'json2'"),
    ("v2/data.zarr/1d.contiguous.bitround.f4", "codec 'bitround'"),
    ("v2/data.zarr/1d.contiguous.delta.i2", "codec 'delta'"),
    (
        "v2/data.zarr/1d.contiguous.delta.shuffle.i2",
        "codec 'delta'",
    ),
    ("v2/data.zarr/1d.contiguous.lz4.i2", "codec 'lz4'"),
    (
        "v3/data.zarr/1d.contiguous.delta.i4",
        "codec 'numcodecs.delta'",
    ),
    (
        "v3/data.zarr/3d.contiguous.delta.i4.mixed",
        "codec 'numcodecs.delta'",
    ),
    ("string.vlen", "data type 'string'"),
    ("1d.contiguous.string.compressed", "data type 'string'"),
    ("1d.string.empty", "data type 'string'"),
    ("1d.string.unicode", "data type 'string'"),
];

#[test]
fn every_manifest_zarr_array_reads_as_stated() {
    let Some(root) = real_data() else {
        eprintln!("shared/data/real not found beside the repository: skipped");
        return;
    };
    let manifest = std::fs::read_to_string(root.join("MANIFEST.md")).unwrap();
    let rows = zarr_rows(&manifest);
    assert!(
        rows.len() >= 70,
        "expected the manifest's Zarr rows, found {}",
        rows.len()
    );
    let mut failures = Vec::new();
    let mut checked = 0;
    let mut refused = 0;
    for row in &rows {
        let store = Store::open(&cubeforge::store::Location::Local(root.join(&row.path))).unwrap();
        let ds = match Dataset::open(&store, "") {
            Ok(ds) => ds,
            Err(e) => {
                failures.push(format!("{}: cannot open: {e}", row.path));
                continue;
            }
        };
        assert_eq!(ds.variables.len(), 1, "{}", row.path);
        let var = &ds.variables[0];
        let expected_unsupported = UNSUPPORTED
            .iter()
            .find(|(suffix, _)| row.path.ends_with(suffix));
        let read = var.array(&store).and_then(|a| a.read_all());
        match (read, expected_unsupported) {
            (Err(e), Some((_, feature))) => {
                let msg = e.to_string();
                if !(msg.contains("unsupported")
                    && msg.contains(feature)
                    && msg.contains(&row.path))
                {
                    failures.push(format!(
                        "{}: error does not name {feature} and the path: {msg}",
                        row.path
                    ));
                }
                refused += 1;
            }
            (Err(e), None) => failures.push(format!("{}: unexpected error: {e}", row.path)),
            (Ok(_), Some((_, feature))) => {
                failures.push(format!(
                    "{}: expected an error naming {feature}, but it read",
                    row.path
                ));
            }
            (Ok(raw), None) => {
                checked += 1;
                // Units cover regions exactly and read as the array does (the executor's view).
                if let Err(e) = var
                    .array(&store)
                    .map_err(|e| e.to_string())
                    .and_then(|a| cubeforge::source::contract::check(a))
                {
                    failures.push(format!("{}: source contract: {e}", row.path));
                }
                let shape = format!(
                    "[{}]",
                    raw.shape
                        .iter()
                        .map(u64::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                if field(&row.expect, "shape") != Some(shape.as_str()) {
                    failures.push(format!(
                        "{}: shape {shape}, manifest {:?}",
                        row.path,
                        field(&row.expect, "shape")
                    ));
                }
                let dtype_word = row
                    .expect
                    .split_once("], ")
                    .and_then(|(_, rest)| rest.split(',').next())
                    .unwrap_or("");
                let dtype_ok = cubeforge::dtype::DType::from_name(dtype_word) == Some(raw.dtype);
                if !dtype_ok {
                    failures.push(format!(
                        "{}: dtype {}, manifest {dtype_word}",
                        row.path, raw.dtype
                    ));
                }
                if let Some(want) = field(&row.expect, "sha16") {
                    let got = sha16(&raw.to_le_bytes());
                    if got != want {
                        failures.push(format!("{}: sha16 {got}, manifest {want}", row.path));
                    }
                } else {
                    failures.push(format!("{}: manifest row has no sha16", row.path));
                }
                if raw.dtype.is_integer() || raw.dtype == cubeforge::dtype::DType::Bool {
                    if let Some(want) =
                        field(&row.expect, "sum").and_then(|s| s.parse::<i128>().ok())
                    {
                        #[allow(clippy::cast_possible_truncation)]
                        let got: i128 = raw.to_f64_vec().iter().map(|v| *v as i128).sum();
                        if got != want {
                            failures.push(format!("{}: sum {got}, manifest {want}", row.path));
                        }
                    }
                }
            }
        }
        let _ = &row.contents;
    }
    assert!(
        failures.is_empty(),
        "{} problems:\n{}",
        failures.len(),
        failures.join("\n")
    );
    for (suffix, _) in UNSUPPORTED {
        assert!(
            rows.iter().any(|r| r.path.ends_with(suffix)),
            "{suffix} is listed as unsupported but is not in the manifest"
        );
    }
    assert!(
        refused >= UNSUPPORTED.len(),
        "only {refused} arrays were refused"
    );
    assert!(checked >= 50, "only {checked} arrays were compared");
}

#[test]
fn consolidated_v2_group_lists_the_manifest_arrays() {
    let Some(root) = real_data() else { return };
    let store = Store::open(&cubeforge::store::Location::Local(
        root.join("zarrita.js/v2/data.zarr"),
    ))
    .unwrap();
    let ds = Dataset::open(&store, "").unwrap();
    assert!(ds.consolidated);
    assert_eq!(ds.variables.len(), 32);
    assert_eq!(ds.groups, vec!["my group with spaces".to_string()]);
    assert_eq!(ds.attrs.get("answer"), Some(&serde_json::json!(42)));
    let sub = Dataset::open(&store, "my group with spaces").unwrap();
    assert_eq!(
        sub.attrs.get("description").and_then(|v| v.as_str()),
        Some("A group with spaces in the name")
    );
}

#[test]
fn v3_inline_consolidated_and_implicit_groups() {
    let Some(root) = real_data() else { return };
    let store = Store::open(&cubeforge::store::Location::Local(
        root.join("zarrita.js/v3/data.zarr"),
    ))
    .unwrap();
    let ds = Dataset::open(&store, "consolidated").unwrap();
    assert!(ds.consolidated);
    let names: Vec<&str> = ds.variables.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(names, vec!["1d.chunked.i2", "2d.contiguous.i2"]);
    assert_eq!(ds.groups, vec!["nested".to_string()]);
    // No root zarr.json: an implicit group holding `group`.
    let store = Store::open(&cubeforge::store::Location::Local(
        root.join("zarrs/sharded_array_write_read.zarr"),
    ))
    .unwrap();
    let ds = Dataset::open(&store, "").unwrap();
    assert_eq!(ds.groups, vec!["group".to_string()]);
    let g = Dataset::open(&store, "group").unwrap();
    assert_eq!(g.variables[0].dims, vec!["y", "x"]);
    assert_eq!(g.attrs.get("foo").and_then(|v| v.as_str()), Some("bar"));
}

#[test]
fn utf8_attributes_survive() {
    let Some(root) = real_data() else { return };
    let store = Store::open(&cubeforge::store::Location::Local(
        root.join("zarr-python-v2/fixture/utf8attrs"),
    ))
    .unwrap();
    let ds = Dataset::open(&store, "").unwrap();
    assert_eq!(ds.attrs.get("foo").and_then(|v| v.as_str()), Some("た"));
}

#[test]
fn missing_chunk_reads_as_nan_fill() {
    let Some(root) = real_data() else { return };
    let store = Store::open(&cubeforge::store::Location::Local(
        root.join("zarrs/array_write_read.zarr/group/array"),
    ))
    .unwrap();
    let ds = Dataset::open(&store, "").unwrap();
    let raw = ds.variables[0].array(&store).unwrap().read_all().unwrap();
    let values = raw.to_f64_vec();
    assert_eq!(values.iter().filter(|v| v.is_nan()).count(), 16);
    assert!(values[0].is_nan());
}
