//! The `cubeforge` binary on good and bad input: every failure is one line naming the path and
//! the problem, exit code 2, and never a panic.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn cubeforge(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cubeforge"))
        .args(args)
        .output()
        .expect("run cubeforge")
}

/// Assert a clean failure and return its one-line message.
fn fails(args: &[&str]) -> String {
    let out = cubeforge(args);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{args:?}: expected exit 2, stderr: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{args:?} panicked: {stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{args:?}: expected one line, got: {stderr}");
    assert!(lines[0].starts_with("error: "), "{stderr}");
    lines[0].to_string()
}

fn example(dir: &Path, days: &str) -> PathBuf {
    let out = dir.join("io.zarr");
    let res = cubeforge(&[
        "example",
        "io",
        "--quiet",
        "--days",
        days,
        out.to_str().unwrap(),
    ]);
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    out
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn info_on_example_succeeds_in_text_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let store = example(dir.path(), "260");
    let out = cubeforge(&["info", s(&store)]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("Dimensions:  (lat: 177, lon: 241, time: 260)"),
        "{text}"
    );
    assert!(text.contains("1979-01-01 ... 1979-09-17"), "{text}");
    let out = cubeforge(&["info", "--json", "--verify", s(&store)]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["format"], "cubeforge-info");
    assert_eq!(doc["dims"]["time"], 260);
    assert_eq!(doc["coords"]["time"]["dtype"], "datetime64[ns]");
    assert_eq!(doc["coords"]["time"]["last"], "1979-09-17T00:00:00");
    assert_eq!(doc["coords"]["lat"]["first"], 32.0);
    assert_eq!(doc["data_vars"]["CHL_cmes-land"]["dtype"], "uint8");
    assert_eq!(
        doc["data_vars"]["so"]["chunks"],
        serde_json::json!([500, 177, 241])
    );
    // 260 days: gapfree is all NaN over days 0..104, so its first chunk is absent.
    assert!(doc["verify"]["chunks_absent"].as_u64().unwrap() >= 1);
    assert!(doc["verify"]["chunks_decoded"].as_u64().unwrap() > 10);
}

#[test]
fn missing_path() {
    let msg = fails(&["info", "/nonexistent/cube.zarr"]);
    assert!(
        msg.contains("/nonexistent/cube.zarr") && msg.contains("no such"),
        "{msg}"
    );
}

#[test]
fn directory_that_is_not_zarr() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), "hello").unwrap();
    let msg = fails(&["info", s(dir.path())]);
    assert!(
        msg.contains(s(dir.path())) && msg.contains("not a Zarr store"),
        "{msg}"
    );
}

#[test]
fn invalid_location() {
    let msg = fails(&["info", "ftp://host/cube.zarr"]);
    assert!(
        msg.contains("ftp://host/cube.zarr") && msg.contains("unknown scheme"),
        "{msg}"
    );
    let msg = fails(&["info", ""]);
    assert!(msg.contains("empty location"), "{msg}");
}

#[test]
fn corrupt_zarray() {
    let dir = tempfile::tempdir().unwrap();
    let store = example(dir.path(), "10");
    std::fs::remove_file(store.join(".zmetadata")).unwrap();
    std::fs::write(
        store.join("sst/.zarray"),
        "{\"zarr_format\": 2, \"shape\": [10, 177",
    )
    .unwrap();
    let msg = fails(&["info", s(&store)]);
    assert!(
        msg.contains("sst/.zarray")
            && msg.contains("invalid metadata")
            && msg.contains("not valid JSON"),
        "{msg}"
    );
}

#[test]
fn corrupt_consolidated_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let store = example(dir.path(), "10");
    std::fs::write(store.join(".zmetadata"), "{\"metadata\": [1, 2]}").unwrap();
    let msg = fails(&["info", s(&store)]);
    assert!(
        msg.contains(".zmetadata") && msg.contains("invalid metadata"),
        "{msg}"
    );
}

#[test]
fn corrupt_zarr_json() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("v3.zarr");
    std::fs::create_dir_all(store.join("a")).unwrap();
    std::fs::write(
        store.join("zarr.json"),
        r#"{"zarr_format": 3, "node_type": "group", "attributes": {}}"#,
    )
    .unwrap();
    std::fs::write(
        store.join("a/zarr.json"),
        "{\"zarr_format\": 3, \"node_type\": \"array\", \"shape\": [4]",
    )
    .unwrap();
    let msg = fails(&["info", s(&store)]);
    assert!(
        msg.contains("a/zarr.json") && msg.contains("not valid JSON"),
        "{msg}"
    );
    // Valid JSON that is not array metadata.
    std::fs::write(
        store.join("a/zarr.json"),
        r#"{"zarr_format": 3, "node_type": "array", "shape": "four"}"#,
    )
    .unwrap();
    let msg = fails(&["info", s(&store)]);
    assert!(
        msg.contains("a/zarr.json") && msg.contains("'shape'"),
        "{msg}"
    );
}

#[test]
fn truncated_chunk() {
    let dir = tempfile::tempdir().unwrap();
    let store = example(dir.path(), "150");
    // A data chunk: found by --verify.
    let chunk = store.join("sst/1.0.0");
    let bytes = std::fs::read(&chunk).unwrap();
    std::fs::write(&chunk, &bytes[..bytes.len() / 2]).unwrap();
    assert!(
        cubeforge(&["info", s(&store)]).status.success(),
        "plain info reads no data chunks"
    );
    let msg = fails(&["info", "--verify", s(&store)]);
    assert!(
        msg.contains("sst/1.0.0") && msg.contains("cannot decode chunk"),
        "{msg}"
    );
    // A coordinate chunk: info itself reads coordinates.
    let lat = store.join("lat/0");
    let bytes = std::fs::read(&lat).unwrap();
    std::fs::write(&lat, &bytes[..bytes.len() / 2]).unwrap();
    let msg = fails(&["info", s(&store)]);
    assert!(
        msg.contains("lat/0") && msg.contains("cannot decode chunk"),
        "{msg}"
    );
}

fn edit_json(path: &Path, f: impl FnOnce(&mut serde_json::Value)) {
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    f(&mut v);
    std::fs::write(path, serde_json::to_vec(&v).unwrap()).unwrap();
}

#[test]
fn unknown_codec() {
    let dir = tempfile::tempdir().unwrap();
    let store = example(dir.path(), "10");
    std::fs::remove_file(store.join(".zmetadata")).unwrap();
    edit_json(&store.join("topo/.zarray"), |v| {
        v["compressor"] = serde_json::json!({"id": "fancyzip", "level": 3});
    });
    let out = cubeforge(&["info", s(&store)]);
    assert_eq!(out.status.code(), Some(2));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("topo"),
        "the report is still printed: {stdout}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("topo/.zarray") && stderr.contains("unsupported codec 'fancyzip'"),
        "{stderr}"
    );
}

#[test]
fn unsupported_calendar() {
    let dir = tempfile::tempdir().unwrap();
    let store = example(dir.path(), "10");
    std::fs::remove_file(store.join(".zmetadata")).unwrap();
    edit_json(&store.join("time/.zattrs"), |v| {
        v["calendar"] = serde_json::json!("lunar")
    });
    let msg = fails(&["info", s(&store)]);
    assert!(
        msg.contains("time") && msg.contains("unsupported calendar 'lunar'"),
        "{msg}"
    );
}

#[test]
fn example_refuses_to_overwrite_without_flag() {
    let dir = tempfile::tempdir().unwrap();
    let store = example(dir.path(), "3");
    let msg = fails(&["example", "io", "--days", "3", s(&store)]);
    assert!(
        msg.contains(s(&store)) && msg.contains("--overwrite"),
        "{msg}"
    );
    let out = cubeforge(&[
        "example",
        "io",
        "--quiet",
        "--days",
        "4",
        "--overwrite",
        s(&store),
    ]);
    assert!(out.status.success());
    let out = cubeforge(&["info", "--json", s(&store)]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["dims"]["time"], 4);
}

#[test]
fn json_errors_are_json() {
    let out = cubeforge(&["info", "--json", "/nonexistent/cube.zarr"]);
    assert_eq!(out.status.code(), Some(2));
    let doc: serde_json::Value = serde_json::from_slice(&out.stderr).unwrap();
    assert!(doc["error"]
        .as_str()
        .unwrap()
        .contains("/nonexistent/cube.zarr"));
}

const RECIPE: &str = "version: 1
inputs:
  io: {url: in.zarr}
output:
  url: out.zarr
  chunks: {time: 100, lat: 64, lon: 64}
operations:
  - keep: [sst, CHL_cmes-gapfree, CHL_cmes-land]
  - rename: {CHL_cmes-gapfree: y}
  - sel: {lat: {start: 35, stop: -5}}
  - assign: {ly: \"log(y)\"}
";

/// `build RECIPE --input INPUT --output OUT`, then `extra`.
fn build_args<'a>(
    recipe: &'a Path,
    input: &'a Path,
    out: &'a Path,
    extra: &[&'a str],
) -> Vec<&'a str> {
    let mut args = vec!["build", s(recipe), "--input", s(input), "--output", s(out)];
    args.extend_from_slice(extra);
    args
}

/// A temporary directory with an example input of `days` days, RECIPE written to `r.yaml`, and
/// the output path `cube.zarr` (not created).
struct BuildCase {
    /// Kept for the case's lifetime: dropping it removes the directory.
    _dir: tempfile::TempDir,
    input: PathBuf,
    recipe: PathBuf,
    out: PathBuf,
}

impl BuildCase {
    fn new(days: &str) -> BuildCase {
        let dir = tempfile::tempdir().unwrap();
        let input = example(dir.path(), days);
        let recipe = dir.path().join("r.yaml");
        std::fs::write(&recipe, RECIPE).unwrap();
        let out = dir.path().join("cube.zarr");
        BuildCase {
            _dir: dir,
            input,
            recipe,
            out,
        }
    }

    /// Run `build` on the case, with `extra` arguments.
    fn build(&self, extra: &[&str]) -> Output {
        cubeforge(&build_args(&self.recipe, &self.input, &self.out, extra))
    }
}

/// Run `build` on a variant of RECIPE; returns the one-line error, and checks nothing was written.
fn bad_recipe(dir: &Path, input: &Path, recipe: &str) -> String {
    let path = dir.join("bad.yaml");
    std::fs::write(&path, recipe).unwrap();
    let out = dir.join("out.zarr");
    let msg = fails(&build_args(&path, input, &out, &["--quiet"]));
    assert!(
        !out.exists(),
        "nothing may be written for a bad recipe: {msg}"
    );
    assert!(
        msg.contains("bad.yaml:"),
        "the error names the recipe and line: {msg}"
    );
    msg
}

#[test]
fn build_writes_a_cube_and_dry_run_writes_nothing() {
    let case = BuildCase::new("260");
    let out = &case.out;
    let plan = case.build(&["--dry-run", "--json"]);
    assert!(
        plan.status.success(),
        "{}",
        String::from_utf8_lossy(&plan.stderr)
    );
    assert!(!out.exists());
    let doc: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
    assert_eq!(doc["plan"]["dims"]["lat"], "149");
    assert_eq!(doc["plan"]["passes"], 1);
    let res = case.build(&["--quiet"]);
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let info = cubeforge(&["info", "--json", "--verify", s(out)]);
    assert!(
        info.status.success(),
        "{}",
        String::from_utf8_lossy(&info.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
    assert_eq!(doc["data_vars"]["ly"]["dtype"], "float32");
    assert_eq!(
        doc["data_vars"]["ly"]["chunks"],
        serde_json::json!([100, 64, 64])
    );
    assert_eq!(doc["attrs"]["cubeforge_version"], env!("CARGO_PKG_VERSION"));
    // A second build refuses to overwrite unless asked.
    let msg = fails(&build_args(&case.recipe, &case.input, out, &[]));
    assert!(msg.contains("--overwrite"), "{msg}");
}

/// A chunk that cannot be read is named once, with its cause once.
#[test]
fn an_unreadable_input_chunk_is_named_with_its_cause_once() {
    let case = BuildCase::new("130");
    let chunk = case.input.join("sst").join("1.0.0");
    std::fs::remove_file(&chunk).unwrap();
    std::fs::create_dir(&chunk).unwrap();
    let msg = fails(&build_args(
        &case.recipe,
        &case.input,
        &case.out,
        &["--quiet"],
    ));
    assert!(msg.contains(s(&chunk)), "{msg}");
    let cause = msg.rsplit(": ").next().unwrap();
    assert_eq!(msg.matches(cause).count(), 1, "{msg}");
}

/// A dry run prints the plan as a graph, reading no data variable: it works with all their chunks
/// gone (only metadata and the coordinates labels select on are read).
#[test]
fn a_dry_run_prints_the_graph_without_reading_data() {
    let case = BuildCase::new("130");
    for var in ["sst", "CHL_cmes-gapfree", "CHL_cmes-land"] {
        for chunk in chunk_files(&case.input.join(var)) {
            std::fs::remove_file(chunk).unwrap();
        }
    }
    let plan = case.build(&["--dry-run", "--json"]);
    assert!(
        plan.status.success(),
        "{}",
        String::from_utf8_lossy(&plan.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
    let graph = &doc["plan"]["graph"];
    let nodes = graph["nodes"].as_array().unwrap();
    for (i, n) in nodes.iter().enumerate() {
        assert_eq!(n["id"], i);
        assert!(n["inputs"]
            .as_array()
            .unwrap()
            .iter()
            .all(|j| j.as_u64().unwrap() < i as u64));
    }
    let op = |id: &serde_json::Value| nodes[id.as_u64().unwrap() as usize]["op"].clone();
    let outputs = graph["outputs"].as_array().unwrap();
    let names: Vec<&str> = outputs
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["lat", "lon", "time", "y", "CHL_cmes-land", "sst", "ly"]
    );
    for o in outputs {
        assert_eq!(o["pass"], 1, "{o}");
    }
    assert!(
        outputs[0]["node"].is_null(),
        "coordinates are written from their values"
    );
    assert_eq!(op(&outputs[6]["node"]), "unary");
    let ly = &nodes[outputs[6]["node"].as_u64().unwrap() as usize];
    assert_eq!(
        (ly["params"]["function"].as_str(), ly["dtype"].as_str()),
        (Some("log"), Some("float32"))
    );
    let sources: Vec<&str> = nodes
        .iter()
        .filter(|n| n["op"] == "source")
        .map(|n| n["params"]["location"].as_str().unwrap())
        .collect();
    assert_eq!(sources.len(), 3, "{sources:?}");
    assert!(
        sources.iter().all(|l| l.starts_with(s(&case.input))),
        "{sources:?}"
    );
}

/// The chunk files of one array of a v2 store (its `.zarray` and `.zattrs` left out).
fn chunk_files(array_dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(array_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .collect()
}

/// A rebuild over a finished cube (`--resume` or `--overwrite`) takes its group metadata away
/// before anything else, so a rebuild that fails leaves nothing a reader takes for a cube.
#[test]
fn a_failed_rebuild_leaves_no_finished_cube_behind() {
    let case = BuildCase::new("120");
    let (input, out) = (&case.input, &case.out);
    let build = |flag: &str| case.build(&["--quiet", flag]);
    // The input's `sst` chunks, whole and cut short.
    let chunks: Vec<(PathBuf, Vec<u8>)> = chunk_files(&input.join("sst"))
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect();
    assert!(!chunks.is_empty());
    let group_metadata = [".zgroup", ".zattrs", ".zmetadata"];
    for flag in ["--resume", "--overwrite"] {
        for (path, bytes) in &chunks {
            std::fs::write(path, bytes).unwrap();
        }
        let res = build("--overwrite");
        assert!(
            res.status.success(),
            "{}",
            String::from_utf8_lossy(&res.stderr)
        );
        assert!(group_metadata.iter().all(|k| out.join(k).is_file()));
        for (path, bytes) in &chunks {
            std::fs::write(path, &bytes[..bytes.len() / 2]).unwrap();
        }
        // Without its `sst` chunks the resumed build must recompute them from the input.
        for path in chunk_files(&out.join("sst")) {
            std::fs::remove_file(path).unwrap();
        }
        let res = build(flag);
        let stderr = String::from_utf8_lossy(&res.stderr);
        assert_eq!(res.status.code(), Some(2), "{flag}: {stderr}");
        assert!(
            stderr.contains("sst/") && stderr.contains("cannot decode chunk"),
            "{flag}: {stderr}"
        );
        for key in group_metadata {
            assert!(
                !out.join(key).exists(),
                "{flag}: {key} left after a failed build"
            );
        }
        fails(&["info", s(out)]);
    }
}

#[test]
fn bad_recipes_name_field_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let input = example(dir.path(), "20");
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "unknown op",
            "  - rename: {CHL_cmes-gapfree: y}",
            &[":9:", "unknown variant `renam`"],
        ),
        (
            "unknown key",
            "  url: out.zarr",
            &[":6:", "unknown field `colour`"],
        ),
        (
            "missing variable",
            "  - keep: [sst, CHL_cmes-gapfree, CHL_cmes-land]",
            &[":8:", "variable 'nope' not found"],
        ),
        (
            "type mismatch",
            "  - sel: {lat: {start: 35, stop: -5}}",
            &[":10:", "sel.lat", "expected a number or a date-time"],
        ),
        (
            "slice on a missing coordinate",
            "  - sel: {lat: {start: 35, stop: -5}}",
            &[":10:", "'depth' is not a dimension"],
        ),
        (
            "slice selecting nothing",
            "  - sel: {lat: {start: 35, stop: -5}}",
            &[":10:", "selects nothing"],
        ),
        (
            "chunk size 0",
            "  chunks: {time: 100, lat: 64, lon: 64}",
            &[":6:", "output.chunks.time", "at least 1"],
        ),
        (
            "bad expression",
            "  - assign: {ly: \"log(y)\"}",
            &[":11:", "operations[3].assign.ly"],
        ),
    ];
    let replacements = [
        "  - renam: {CHL_cmes-gapfree: y}",
        "  url: out.zarr\n  colour: red",
        "  - keep: [sst, nope, CHL_cmes-land]",
        "  - sel: {lat: {start: [35], stop: -5}}",
        "  - sel: {depth: {start: 35, stop: -5}}",
        "  - sel: {lat: {start: 80, stop: 70}}",
        "  chunks: {time: 0, lat: 64, lon: 64}",
        "  - assign: {ly: \"log(y\"}",
    ];
    for ((name, line, expected), replacement) in cases.iter().zip(replacements) {
        assert!(
            RECIPE.contains(line),
            "{name}: the template has no line {line}"
        );
        let recipe = RECIPE.replace(line, replacement);
        let msg = bad_recipe(dir.path(), &input, &recipe);
        for e in *expected {
            assert!(msg.contains(e), "{name}: expected '{e}' in: {msg}");
        }
    }
    // Output equal to input.
    let path = dir.path().join("same.yaml");
    std::fs::write(&path, RECIPE).unwrap();
    let msg = fails(&build_args(&path, &input, &input, &[]));
    assert!(msg.contains("is the input"), "{msg}");
}
