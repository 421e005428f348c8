//! Builds from several inputs, and from many files joined as one: per-input operations, the
//! merge, and the whole path from a glob of Zarr stores on disk.

use serde_json::json;

use super::*;
use crate::dataset::Dataset;
use crate::dtype::DType;
use crate::lower::concat::concat_inputs;
use crate::lower::concat::tests::{chl, coord, daily, var};
use crate::lower::{Input, InputDim};

const LATS: [f64; 2] = [10.0, 10.5];

/// Three daily files joined, as the `oc` input.
fn oc() -> Opened {
    let files = [
        daily("src/oc_3.nc", "days since 2020-01-01", 0, &[2], &LATS),
        daily("src/oc_1.nc", "days since 2020-01-01", 0, &[0], &LATS),
        daily("src/oc_2.nc", "days since 2020-01-01", 0, &[1], &LATS),
    ];
    let input = concat_inputs(&files, "time", None, "src/oc_*.nc").expect("joined");
    Opened {
        files: files.iter().map(|f| f.location.clone()).collect(),
        input,
    }
}

/// The `era` input: `wind (time 3, lat, lon 3)` = 2, on `lats`, days 0..3 in hours.
fn era(lats: &[f64], name: &str) -> Opened {
    let ny = lats.len() as u64;
    let input = Input {
        location: "src/era.nc".into(),
        dims: vec![
            InputDim {
                name: "time".into(),
                len: 3,
                coord: Some(coord(
                    "src/era.nc/time",
                    DType::Int64,
                    &[0.0, 24.0, 48.0],
                    json!({"units": "hours since 2020-01-01", "calendar": "gregorian"}),
                )),
            },
            InputDim {
                name: "lat".into(),
                len: ny,
                coord: Some(coord(
                    "src/era.nc/lat",
                    DType::Float32,
                    lats,
                    json!({"units": "degrees_north"}),
                )),
            },
            InputDim {
                name: "lon".into(),
                len: 3,
                coord: None,
            },
        ],
        variables: vec![var(
            &format!("src/era.nc/{name}"),
            name,
            &["time", "lat", "lon"],
            &[3, ny, 3],
            &vec![2.0; (9 * ny) as usize],
        )],
        attrs: serde_json::Map::new(),
        unreadable: Vec::new(),
        texts: Vec::new(),
    };
    Opened {
        files: vec![input.location.clone()],
        input,
    }
}

const RECIPE: &str = "version: 1
inputs:
  oc:
    url: \"src/oc_*.nc\"
    concat: time
    operations:
      - keep: [chl]
  era:
    url: src/era.nc
    operations:
      - rename: {wind: w}
output:
  url: \"memory://unused\"
operations:
  - assign: {ratio: \"chl / w\"}
";

fn options() -> BuildOptions {
    BuildOptions {
        memory_limit: 1 << 20,
        ..BuildOptions::default()
    }
}

fn read(ds: &Dataset, name: &str) -> Vec<f64> {
    let v = ds.variable(name).expect(name);
    v.array(&ds.store)
        .expect("array")
        .read_all()
        .expect("values")
        .to_f64_vec()
}

#[test]
fn two_inputs_on_one_grid_merge_after_their_own_operations() {
    let doc = RecipeDoc::parse("r.yaml", RECIPE).expect("recipe");
    let out = Location::parse("memory://multi-merged").expect("location");
    let inputs = vec![
        ("oc".to_string(), oc()),
        ("era".to_string(), era(&LATS, "wind")),
    ];
    let (summary, report) =
        build_inputs(&doc, &inputs, &out, &options(), &|_, _, _| {}).expect("build");
    assert!(report.is_some());
    assert_eq!(summary.dims["time"], "3");
    let ds = Dataset::open(&Store::open(&out).expect("store"), "").expect("cube");
    let names: Vec<&str> = ds.variables.iter().map(|v| v.name.as_str()).collect();
    assert!(
        names.contains(&"chl") && names.contains(&"w") && names.contains(&"ratio"),
        "{names:?}"
    );
    assert!(
        !names.contains(&"depth") && !names.contains(&"wind"),
        "{names:?}"
    );
    assert_eq!(read(&ds, "time"), vec![0.0, 1.0, 2.0]);
    let (c, r) = (read(&ds, "chl"), read(&ds, "ratio"));
    let mut k = 0;
    for day in 0..3 {
        for y in 0..2 {
            for x in 0..3 {
                let want = chl(day, y, x) as f32;
                assert_eq!(c[k], f64::from(want));
                assert_eq!(r[k], f64::from(want / 2.0));
                k += 1;
            }
        }
    }
    assert_eq!(read(&ds, "w"), vec![2.0; 18]);
    assert_eq!(
        ds.attrs["cubeforge_inputs"],
        json!(["src/oc_*.nc", "src/era.nc"])
    );
}

fn refusal(inputs: Vec<(String, Opened)>, recipe: &str, out: &str) -> String {
    let doc = RecipeDoc::parse("r.yaml", recipe).expect("recipe");
    let out = Location::parse(out).expect("location");
    build_inputs(&doc, &inputs, &out, &options(), &|_, _, _| {})
        .expect_err("refused")
        .to_string()
}

#[test]
fn inputs_on_other_grids_or_with_the_same_names_are_refused() {
    let e = refusal(
        vec![
            ("oc".into(), oc()),
            ("era".into(), era(&[10.0, 10.5, 11.0], "wind")),
        ],
        RECIPE,
        "memory://multi-grid",
    );
    assert!(
        e.contains("inputs 'oc' and 'era' disagree on dimension 'lat': 2 positions vs 3; bring them onto one grid first"),
        "{e}"
    );
    let e = refusal(
        vec![
            ("oc".into(), oc()),
            ("era".into(), era(&[10.0, 10.25], "wind")),
        ],
        RECIPE,
        "memory://multi-grid2",
    );
    assert!(
        e.contains("dimension 'lat': coordinates differ, first at position 1: 10.5 vs 10.25"),
        "{e}"
    );
    // The same name in both inputs: a rename is suggested.
    let clash = RECIPE.replace("rename: {wind: w}", "rename: {wind: chl}");
    let e = refusal(
        vec![("oc".into(), oc()), ("era".into(), era(&LATS, "wind"))],
        &clash,
        "memory://multi-clash",
    );
    assert!(
        e.contains("inputs 'oc' and 'era'") && e.contains("'chl'") && e.contains("rename"),
        "{e}"
    );
}

#[test]
fn an_input_operation_error_names_its_own_line() {
    let bad = RECIPE.replace(
        "      - keep: [chl]",
        "      - keep: [chl]\n      - drop: [nope]",
    );
    let e = refusal(
        vec![("oc".into(), oc()), ("era".into(), era(&LATS, "wind"))],
        &bad,
        "memory://multi-lines",
    );
    assert!(e.starts_with("r.yaml:8:"), "{e}");
    assert!(
        e.contains("inputs.oc.operations[1].drop") && e.contains("'nope'"),
        "{e}"
    );
    let bad = RECIPE.replace("rename: {wind: w}", "rename: {gust: w}");
    let e = refusal(
        vec![("oc".into(), oc()), ("era".into(), era(&LATS, "wind"))],
        &bad,
        "memory://multi-lines2",
    );
    assert!(
        e.starts_with("r.yaml:11:") && e.contains("inputs.era.operations[0].rename"),
        "{e}"
    );
    // Flow style: every operation at the line of the key.
    let flow = RECIPE.replace(
        "    operations:\n      - keep: [chl]\n",
        "    operations: [{keep: [chl]}, {assign: {x: \"chl +\"}}]\n",
    );
    let e = RecipeDoc::parse("r.yaml", &flow)
        .expect_err("refused")
        .to_string();
    assert!(
        e.starts_with("r.yaml:6:") && e.contains("inputs.oc.operations[1].assign.x"),
        "{e}"
    );
}

/// Write `input` as a Zarr store at `path`.
fn write_zarr(input: &Input, path: &std::path::Path) {
    let text = "version: 1\ninputs:\n  i: {url: x}\noutput: {url: y}\n";
    let doc = RecipeDoc::parse("w.yaml", text).expect("recipe");
    let out = Location::Local(path.to_path_buf());
    build_input(&doc, input, &out, &options(), &|_, _, _| {}).expect("written");
}

#[test]
fn a_glob_of_stores_on_disk_builds_as_one_input_merged_with_another() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().display().to_string();
    // Names in another order than times.
    for (name, day) in [("oc_a", 2), ("oc_b", 0), ("oc_c", 1)] {
        let input = daily(name, "days since 2020-01-01", 0, &[day], &LATS);
        write_zarr(&input, &tmp.path().join(format!("{name}.zarr")));
    }
    write_zarr(&era(&LATS, "wind").input, &tmp.path().join("era.zarr"));
    let recipe = RECIPE
        .replace("src/oc_*.nc", &format!("{dir}/oc_*.zarr"))
        .replace("src/era.nc", &format!("{dir}/era.zarr"))
        .replace("memory://unused", &format!("{dir}/out.zarr"));
    let doc = RecipeDoc::parse("r.yaml", &recipe).expect("recipe");
    build(&doc, &options(), &|_, _, _| {}).expect("build");
    let ds = Dataset::open(
        &Store::open_str(&format!("{dir}/out.zarr")).expect("out"),
        "",
    )
    .expect("cube");
    assert_eq!(read(&ds, "time"), vec![0.0, 1.0, 2.0]);
    let c = read(&ds, "chl");
    assert_eq!(c[0], f64::from(chl(0, 0, 0) as f32));
    assert_eq!(c[6 + 4], f64::from(chl(1, 1, 1) as f32));
    assert_eq!(c[12 + 5], f64::from(chl(2, 1, 2) as f32));
    assert_eq!(read(&ds, "ratio")[17], f64::from(chl(2, 1, 2) as f32 / 2.0));

    // The destination may not be one of the files.
    let inside = recipe.replace(&format!("{dir}/out.zarr"), &format!("{dir}/oc_a.zarr"));
    let doc = RecipeDoc::parse("r.yaml", &inside).expect("recipe");
    let opts = BuildOptions {
        overwrite: true,
        ..options()
    };
    let e = build(&doc, &opts, &|_, _, _| {})
        .expect_err("refused")
        .to_string();
    assert!(e.contains("oc_a.zarr"), "{e}");
    // An empty glob, and several files without concat.
    let empty = recipe.replace("oc_*.zarr", "sst_*.zarr");
    let doc = RecipeDoc::parse("r.yaml", &empty).expect("recipe");
    let e = build(&doc, &options(), &|_, _, _| {})
        .expect_err("refused")
        .to_string();
    assert!(
        e.contains("r.yaml:3:") && e.contains("sst_*.zarr") && e.contains("no file matches"),
        "{e}"
    );
    let no_concat = recipe.replace("    concat: time\n", "");
    let doc = RecipeDoc::parse("r.yaml", &no_concat).expect("recipe");
    let e = build(&doc, &options(), &|_, _, _| {})
        .expect_err("refused")
        .to_string();
    assert!(e.contains("names 3 files") && e.contains("concat"), "{e}");
}
