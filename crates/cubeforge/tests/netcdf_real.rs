//! Every NetCDF and HDF5 file of `shared/data/real` opened through `open_input`, checked against
//! what `MANIFEST.md` says a correct reader returns (shapes, types, sums, first values, the
//! SHA-256 of the values), with xarray's names for dimensions (phony ones included) and every
//! readable variable and coordinate keeping the `ChunkSource` contract.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use cubeforge::cf::Decoded;
use cubeforge::coord::CoordValues;
use cubeforge::dtype::{DType, RawArray};
use cubeforge::formats::open::{open_input, InputOptions};
use cubeforge::lower::Input;
use cubeforge::source::{contract, ChunkSource};
use cubeforge::store::Location;
use sha2::{Digest, Sha256};

fn real_data() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/real");
    p.join("MANIFEST.md").exists().then_some(p)
}

fn sha16(raw: &RawArray) -> String {
    let digest = Sha256::digest(raw.to_le_bytes());
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

fn open(rel: &str, group: &str) -> Option<Input> {
    let root = real_data()?;
    let path = root.join(rel);
    let opts = InputOptions {
        group: group.into(),
        ..InputOptions::default()
    };
    let location = Location::parse(path.to_str().expect("utf-8 path")).expect("location");
    Some(open_input(&location, &opts).unwrap_or_else(|e| panic!("{rel}: {e}")))
}

/// The source of variable or coordinate `name`.
fn source(input: &Input, name: &str) -> Arc<dyn ChunkSource> {
    if let Some(v) = input.variables.iter().find(|v| v.name == name) {
        return v.source.clone();
    }
    let d = input
        .dims
        .iter()
        .find(|d| d.name == name)
        .unwrap_or_else(|| panic!("{}: no variable {name}", input.location));
    match &d.coord.as_ref().expect("a coordinate").values {
        CoordValues::Stored(s) => s.clone(),
        CoordValues::Computed { .. } => panic!("computed coordinate"),
    }
}

fn read(input: &Input, name: &str) -> RawArray {
    let s = source(input, name);
    let shape = s.shape().to_vec();
    s.read_region(&vec![0; shape.len()], &shape)
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn sum(raw: &RawArray) -> f64 {
    raw.to_f64_vec().iter().sum()
}

/// Every readable variable and coordinate keeps the contract (a scalar: on its one region).
fn check_all(input: &Input) {
    let check = |s: &dyn ChunkSource| {
        if s.shape().is_empty() {
            // The contract's region copies need a dimension: the one unit is the value.
            let unit = s.read_unit(&[]).unwrap().unwrap();
            assert_eq!(unit.len(), s.dtype().size(), "{}", s.id());
            assert_eq!(s.read_region(&[], &[]).unwrap().bytes, unit, "{}", s.id());
        } else {
            contract::check(s).unwrap_or_else(|e| panic!("{e}"));
        }
    };
    for v in &input.variables {
        check(v.source.as_ref());
    }
    for d in &input.dims {
        if let Some(CoordValues::Stored(s)) = d.coord.as_ref().map(|c| &c.values) {
            check(s.as_ref());
        }
    }
}

fn dims(input: &Input) -> Vec<(String, u64)> {
    input.dims.iter().map(|d| (d.name.clone(), d.len)).collect()
}

fn var_dims(input: &Input, name: &str) -> Vec<String> {
    input
        .variables
        .iter()
        .find(|v| v.name == name)
        .map(|v| v.dims.clone())
        .unwrap_or_else(|| panic!("no variable {name}"))
}

#[test]
fn classic_calendars_read_their_raw_times() {
    for f in ["360", "365", "366"] {
        let Some(input) = open(&format!("netcdf-c/ref_test_{f}_day_1900.nc"), "") else {
            return;
        };
        check_all(&input);
        let t = read(&input, "time");
        assert_eq!((t.dtype, t.shape.clone()), (DType::Int32, vec![2300]));
        assert_eq!(sum(&t), 2_643_850.0);
        assert_eq!(sha16(&t), "1d7ef6e7dc39f8d4");
        let coord = input.dims[0].coord.as_ref().expect("time coordinate");
        assert!(matches!(coord.decoding.decoded, Decoded::Time(_)));
    }
}

#[test]
fn classic_and_64bit_offset_and_netcdf4_classic_hold_the_same_values() {
    for f in [
        "netcdf-c/ref_nctest_classic.nc",
        "netcdf-c/ref_nctest_64bit_offset.nc",
        "netcdf-c/nctest_netcdf4_classic.nc",
    ] {
        let Some(input) = open(f, "") else { return };
        check_all(&input);
        let ce = read(&input, "ce");
        assert_eq!(
            (ce.dtype, ce.shape.clone()),
            (DType::Float32, vec![5, 3, 7]),
            "{f}"
        );
        assert_eq!(sum(&ce), 4958.0, "{f}");
        assert_eq!(sha16(&ce), "a65a2fe0861d5b76", "{f}");
        assert_eq!(sum(&read(&input, "cd")), 16.0, "{f}");
        let b = read(&input, "bytev");
        assert_eq!(
            (b.dtype, b.shape.clone()),
            (DType::Int8, vec![2, 3, 5, 6, 4, 31])
        );
        assert_eq!(sum(&b), -9839.0, "{f}");
        assert_eq!(sha16(&b), "b8f6dd15e4823eb2", "{f}");
        assert_eq!(sum(&read(&input, "shortvar")), -692.0, "{f}");
        assert_eq!(sum(&read(&input, "floatvar")), 352_108.0, "{f}");
        assert_eq!(sum(&read(&input, "doublevar")), -692.0, "{f}");
        let rec = input.dims.iter().find(|d| d.name == "rec").expect("rec");
        assert_eq!(rec.len, 5, "{f}");
        assert_eq!(var_dims(&input, "ce"), ["rec", "i2", "i3"]);
        // Text variables are read whole; `d4` is not a string dimension (other variables
        // use it), so `charv` stays characters, as xarray reads it.
        let (_, charv) = input
            .texts
            .iter()
            .find(|(n, _)| n == "charv")
            .expect("charv is text");
        assert_eq!(charv.dims, ["d0", "d1", "d2", "d3", "d4"], "{f}");
        assert_eq!(charv.values.xarray_dtype(&charv.attrs), "|S1", "{f}");
        assert_eq!(charv.values.len(), 2 * 3 * 5 * 6 * 4, "{f}");
        let first: Vec<&[u8]> = (0..4).map(|i| charv.values.element(i)).collect();
        assert_eq!(first, [&b""[..], b"\x01", b"\x02", b"\x03"], "{f}");
        assert!(!input.unreadable.iter().any(|(n, _)| n == "charv"), "{f}");
        assert_eq!(input.attrs["title"], "test netcdf");
    }
}

#[test]
fn null_byte_padding_header_reads() {
    let Some(input) = open("netcdf-c/ref_null_byte_padding_test.nc", "") else {
        return;
    };
    check_all(&input);
    assert_eq!(read(&input, "raw_data_start_date").to_f64_vec(), [1825.0]);
    assert_eq!(read(&input, "raw_data_end_date").to_f64_vec(), [1856.0]);
    assert_eq!(read(&input, "globe").to_f64_vec(), [17.130_560_094_361_062]);
}

#[test]
fn record_variables_interleave_as_stated() {
    let Some(input) = open("georust-netcdf/pres_temp_4D.nc", "") else {
        return;
    };
    check_all(&input);
    assert_eq!(
        dims(&input),
        [
            ("time".into(), 2),
            ("level".into(), 2),
            ("latitude".into(), 6),
            ("longitude".into(), 12)
        ]
    );
    let p = read(&input, "pressure");
    assert_eq!(p.shape, [2, 2, 6, 12]);
    assert_eq!(sum(&p), 279_792.0);
    assert_eq!(p.to_f64_vec()[..4], [900.0, 901.0, 902.0, 903.0]);
    assert_eq!(sha16(&p), "1f42de24d8cd50ed");
    let t = read(&input, "temperature");
    assert_eq!(sum(&t), 23184.0);
    assert_eq!(t.to_f64_vec()[..4], [9.0, 10.0, 11.0, 12.0]);
    assert_eq!(sha16(&t), "77d57d66043d63d5");
    assert_eq!(sum(&read(&input, "latitude")), 225.0);
    assert_eq!(sum(&read(&input, "longitude")), -1170.0);

    let Some(xy) = open("georust-netcdf/simple_xy.nc", "") else {
        return;
    };
    check_all(&xy);
    let d = read(&xy, "data");
    assert_eq!((d.dtype, d.shape.clone()), (DType::Int32, vec![6, 12]));
    assert_eq!(sum(&d), 2556.0);
    assert_eq!(sha16(&d), "981fa2eba4abdfe7");
}

#[test]
fn unsigned_bytes_and_an_empty_unlimited_dimension() {
    let Some(input) = open("netcdf4-python/ubyte.nc", "") else {
        return;
    };
    check_all(&input);
    assert_eq!(read(&input, "ub").to_f64_vec(), [0.0, -1.0]);
    assert_eq!(read(&input, "sb").to_f64_vec(), [-128.0, 127.0]);
    assert_eq!(read(&input, "sb2").to_f64_vec(), [-127.0, -127.0]);
    let ub = input.variables.iter().find(|v| v.name == "ub").unwrap();
    assert_eq!(ub.decoding.decoded_dtype_name(), "uint8");
    assert_eq!(ub.decoding.decode_number(-1.0), Some(255.0));

    let Some(input) = open("netcdf4-python/netcdf_dummy_file.nc", "") else {
        return;
    };
    check_all(&input);
    assert_eq!(dims(&input), [("time".into(), 0), ("z".into(), 8)]);
    assert_eq!(read(&input, "time").shape, [0]);
    let z = read(&input, "z");
    assert!(z.to_f64_vec().iter().all(|v| *v == -9999.9));
    let lat = read(&input, "latitude");
    assert_eq!(lat.to_f64_vec(), [9.969_209_968_386_869e36]);
    // No _FillValue: the default fill is not masked (as xarray).
    let latv = input
        .variables
        .iter()
        .find(|v| v.name == "latitude")
        .unwrap();
    assert!(latv.decoding.fill_values.is_empty());
}

#[test]
fn netcdf4_packed_unsigned_deflated_goes16() {
    let Some(input) = open("netcdf4-python/20171025_2056.Cloud_Top_Height.nc", "") else {
        return;
    };
    check_all(&input);
    let ht = read(&input, "HT");
    assert_eq!((ht.dtype, ht.shape.clone()), (DType::Int16, vec![300, 500]));
    assert_eq!(sum(&ht), -539_059_300.0);
    assert_eq!(sha16(&ht), "97bba50fd75fe549");
    let values = ht.to_f64_vec();
    assert_eq!(values.iter().filter(|v| **v == -1.0).count(), 57432);
    assert_eq!(values[150 * 500 + 250], 425.0);
    let v = input.variables.iter().find(|v| v.name == "HT").unwrap();
    assert_eq!(v.source.chunk_shape(), [300, 250]);
    assert_eq!(v.source.encoding(), ["deflate(level=1)"]);
    let decoded = v.decoding.decode_number(425.0).unwrap();
    assert!((decoded - 129.711_58).abs() < 1e-4, "{decoded}");
    assert_eq!(v.decoding.decode_number(-1.0), None);
    let dqf = read(&input, "DQF");
    assert_eq!(
        dqf.to_f64_vec()
            .iter()
            .map(|v| if *v < 0.0 { v + 256.0 } else { *v })
            .sum::<f64>(),
        229_062.0
    );
    assert_eq!(input.attrs["Conventions"], "CF-1.7");
}

#[test]
fn netcdf4_contiguous_packed_air() {
    let Some(input) = open("kerchunk/air.nc", "") else {
        return;
    };
    check_all(&input);
    assert_eq!(
        dims(&input),
        [("time".into(), 124), ("lat".into(), 11), ("lon".into(), 21)]
    );
    let air = read(&input, "air");
    assert_eq!(air.shape, [124, 11, 21]);
    assert_eq!(sum(&air), 774_874_628.0);
    assert_eq!(air.to_f64_vec()[..4], [25820.0, 25820.0, 25870.0, 25979.0]);
    assert_eq!(sha16(&air), "d834b4b65a9481c4");
    let lat = read(&input, "lat").to_f64_vec();
    assert_eq!((lat[0], lat[10]), (75.0, 50.0));
    let lon = read(&input, "lon").to_f64_vec();
    assert_eq!((lon[0], lon[20]), (250.0, 300.0));
    let a = input.variables.iter().find(|v| v.name == "air").unwrap();
    assert!(!a.attrs.contains_key("scale_factor"));
    assert_eq!(a.attrs["units"], "degK");
}

#[test]
fn netcdf4_shuffled_deflated_planet_scope() {
    let Some(input) = open("rioxarray/PLANET_SCOPE_3D.nc", "") else {
        return;
    };
    check_all(&input);
    let blue = read(&input, "blue");
    assert_eq!(
        (blue.dtype, blue.shape.clone()),
        (DType::Float64, vec![2, 10, 10])
    );
    assert!((sum(&blue) - 703.932_797_191_311_9).abs() < 1e-9);
    assert_eq!(sha16(&blue), "08c9a4a9cf8c23ee");
    assert_eq!(sha16(&read(&input, "green")), "32c7194e740e56ee");
    let v = input.variables.iter().find(|v| v.name == "blue").unwrap();
    assert_eq!(v.source.encoding(), ["shuffle", "deflate(level=5)"]);
    assert_eq!(sum(&read(&input, "x")), 4_662_810.0);
}

#[test]
fn netcdf4_all_types_and_records() {
    let Some(input) = open("netcdf-c/ref_nc_test_netcdf4_4_0.nc", "") else {
        return;
    };
    check_all(&input);
    let i64v = read(&input, "i64");
    assert_eq!(i64v.dtype, DType::Int64);
    assert_eq!(i64v.bytes, i64::MAX.to_ne_bytes());
    let ui64 = read(&input, "ui64");
    assert_eq!(ui64.bytes, 9_223_372_036_854_775_810u64.to_ne_bytes());
    assert_eq!(read(&input, "ui").to_f64_vec(), [2_147_483_650.0]);
    assert_eq!(read(&input, "us").to_f64_vec(), [32770.0]);
    assert_eq!(read(&input, "ub").to_f64_vec(), [130.0]);
    assert_eq!(
        read(&input, "dr").to_f64_vec(),
        [-1.797_693_134_862_31e308, 1.797_693_134_862_31e308]
    );
    assert_eq!(sum(&read(&input, "ir4")), -190_640.0);
    let dr44 = read(&input, "dr44");
    assert_eq!(dr44.shape, [2, 4, 4]);
    assert_eq!(sum(&dr44), 1_268_320.0);
    assert_eq!(sha16(&dr44), "d2a8e3549cd74429");
}

#[test]
fn groups_see_their_parents_dimensions_and_compounds_are_unreadable() {
    let Some(g1) = open("georust-netcdf/simple_nc4.nc", "grp1") else {
        return;
    };
    check_all(&g1);
    assert_eq!(dims(&g1), [("x".into(), 6), ("y".into(), 12)]);
    let d = read(&g1, "data");
    assert_eq!((d.dtype, d.shape.clone()), (DType::UInt64, vec![6, 12]));
    assert_eq!(sum(&d), 2556.0);
    assert_eq!(sha16(&d), "036c0836cd86cc6a");
    let Some(g2) = open("georust-netcdf/simple_nc4.nc", "/grp2") else {
        return;
    };
    assert!(g2.variables.is_empty());
    assert_eq!(
        g2.unreadable,
        [(
            "data".to_string(),
            "compound type {i1: int32, i2: int32} is not supported".to_string()
        )]
    );
    let root = real_data().unwrap().join("georust-netcdf/simple_nc4.nc");
    let opts = InputOptions {
        group: "grp9".into(),
        ..InputOptions::default()
    };
    let e = open_input(&Location::parse(root.to_str().unwrap()).unwrap(), &opts).unwrap_err();
    let e = e.to_string();
    assert!(
        e.contains("simple_nc4.nc") && e.contains("grp9") && e.contains("grp1"),
        "{e}"
    );
}

#[test]
fn plain_hdf5_gets_phony_dimensions_as_netcdf_c_names_them() {
    let Some(a) = open("netcdf-c/ref_groups.h5", "MyGroup/Group_A") else {
        return;
    };
    assert_eq!(var_dims(&a, "dset2"), ["phony_dim_0", "phony_dim_1"]);
    assert_eq!(
        dims(&a),
        [("phony_dim_0".into(), 2), ("phony_dim_1".into(), 10)]
    );
    let Some(g) = open("netcdf-c/ref_groups.h5", "/MyGroup") else {
        return;
    };
    assert_eq!(var_dims(&g, "dset1"), ["phony_dim_2", "phony_dim_3"]);
    let d = read(&g, "dset1");
    assert_eq!((d.dtype, d.shape.clone()), (DType::Int32, vec![3, 3]));
    assert_eq!(d.to_f64_vec(), [1., 2., 3., 1., 2., 3., 1., 2., 3.]);
    check_all(&g);
    let d = read(&a, "dset2");
    assert_eq!(
        d.to_f64_vec()[..10],
        [1., 2., 3., 4., 5., 6., 7., 8., 9., 10.]
    );
    assert_eq!(sum(&d), 110.0);
    check_all(&a);
}

#[test]
fn zstd_blosc_and_shuffle_zstd_filters_decode() {
    for (f, encoding, dtype, shape, sum_, sha) in [
        (
            "kerchunk/hdf5_compression_zstd.h5",
            "zstd(level=3)",
            DType::Int64,
            vec![100],
            4950.0,
            Some("96bdba67cd0b5e6d"),
        ),
        (
            "kerchunk/hdf5_mini_blosc.h5",
            "blosc(lz4, clevel=5, shuffle)",
            DType::Int32,
            vec![3, 2],
            15.0,
            Some("cd9a54ed1f18bf97"),
        ),
        (
            "kerchunk/hdf5_mini_shuffle_zstd.h5",
            "shuffle",
            DType::Int32,
            vec![3, 2],
            15.0,
            None,
        ),
    ] {
        let Some(input) = open(f, "") else { return };
        check_all(&input);
        let d = read(&input, "data");
        assert_eq!((d.dtype, d.shape.clone()), (dtype, shape), "{f}");
        assert_eq!(sum(&d), sum_, "{f}");
        if let Some(sha) = sha {
            assert_eq!(sha16(&d), sha, "{f}");
        }
        let v = &input.variables[0];
        assert_eq!(v.source.encoding()[0], encoding, "{f}");
        assert_eq!(v.dims[0], "phony_dim_0");
    }
}

// ---- Generated files: bad input, unknown filters, threads ----

const PYTHON: &str = "/work/main/.venv/bin/python";

/// Run `script` with the test venv's Python in `dir`; `false` when there is no such Python.
fn python(dir: &Path, script: &str) -> bool {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python");
    let python = if python.exists() {
        python
    } else {
        PathBuf::from(PYTHON)
    };
    if !python.exists() {
        return false;
    }
    let out = std::process::Command::new(python)
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    true
}

fn open_path(path: &Path) -> cubeforge::error::Result<Input> {
    let location = Location::parse(path.to_str().expect("utf-8")).expect("location");
    open_input(&location, &InputOptions::default())
}

#[test]
fn truncated_and_garbage_files_are_one_line_errors_naming_the_file() {
    let Some(root) = real_data() else { return };
    let dir = tempfile::tempdir().unwrap();
    for f in ["kerchunk/air.nc", "georust-netcdf/pres_temp_4D.nc"] {
        let bytes = std::fs::read(root.join(f)).unwrap();
        let cut = dir.path().join("cut.nc");
        std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
        // Either opening fails, or reading some variable does; both name the file.
        let e = match open_path(&cut) {
            Err(e) => e.to_string(),
            Ok(input) => input
                .variables
                .iter()
                .find_map(|v| {
                    let shape = v.source.shape().to_vec();
                    v.source.read_region(&vec![0; shape.len()], &shape).err()
                })
                .expect("a truncated file fails somewhere")
                .to_string(),
        };
        assert!(e.contains("cut.nc") && !e.contains('\n'), "{f}: {e}");
        let mut garbage = bytes[..8].to_vec();
        garbage.extend((0..5000u32).map(|i| (i * 7919 % 251) as u8));
        let g = dir.path().join("garbage.nc");
        std::fs::write(&g, &garbage).unwrap();
        let e = open_path(&g).unwrap_err().to_string();
        assert!(e.contains("garbage.nc") && !e.contains('\n'), "{f}: {e}");
    }
}

#[test]
fn a_chunk_with_an_unknown_filter_names_the_file_variable_and_filter() {
    let dir = tempfile::tempdir().unwrap();
    if !python(
        dir.path(),
        "import h5py, numpy as np\n\
         with h5py.File('f.h5', 'w') as f:\n    \
         f.create_dataset('v', data=np.arange(400, dtype='f4').reshape(20, 20), chunks=(10, 10), compression='gzip')\n",
    ) {
        return;
    }
    let path = dir.path().join("f.h5");
    let mut bytes = std::fs::read(&path).unwrap();
    // The filter pipeline message (version 1, one filter, deflate): its id becomes 32099.
    let pattern = [1u8, 1, 0, 0, 0, 0, 0, 0, 1, 0];
    let at = bytes
        .windows(pattern.len())
        .position(|w| w == pattern)
        .expect("a version 1 pipeline message with deflate");
    bytes[at + 8..at + 10].copy_from_slice(&32099u16.to_le_bytes());
    std::fs::write(&path, &bytes).unwrap();
    let input = open_path(&path).unwrap();
    let v = &input.variables[0];
    assert_eq!(v.source.encoding()[0], "filter 32099 (deflate)");
    let e = v.source.read_unit(&[0, 0]).unwrap_err().to_string();
    assert!(
        e.contains("f.h5/v") && e.contains("filter 32099") && !e.contains('\n'),
        "{e}"
    );
}

/// Decode every chunk of a deflate + shuffle NetCDF-4 file on 1 and on 2 threads: chunk reads
/// from several threads must not serialise behind a lock. Prints the times (`--ignored
/// --nocapture`); asserts only that both read the same values.
#[test]
#[ignore = "a measurement, run by hand"]
fn chunks_decode_in_parallel() {
    let dir = tempfile::tempdir().unwrap();
    let path = std::env::var("CUBEFORGE_NC_BENCH").map_or_else(
        |_| {
            assert!(python(
                dir.path(),
                "import netCDF4, numpy as np\n\
                 ds = netCDF4.Dataset('big.nc', 'w')\n\
                 [ds.createDimension(n, s) for n, s in (('t', 64), ('y', 512), ('x', 512))]\n\
                 v = ds.createVariable('v', 'f4', ('t', 'y', 'x'), zlib=True, complevel=4, shuffle=True, chunksizes=(1, 512, 512))\n\
                 rng = np.random.default_rng(0)\n\
                 for i in range(64): v[i] = rng.normal(0, 1, (512, 512)).astype('f4')\n\
                 ds.close()\n",
            ));
            dir.path().join("big.nc")
        },
        PathBuf::from,
    );
    let input = open_path(&path).unwrap();
    let source = input.variables[0].source.clone();
    let shape = source.shape().to_vec();
    let units = source.units_in(&vec![0; shape.len()], &shape).unwrap();
    let mut sums = Vec::new();
    for threads in [1, 2] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let t = std::time::Instant::now();
        let total: usize = pool.install(|| {
            use rayon::prelude::*;
            units
                .par_iter()
                .map(|(u, _)| source.read_unit(u).unwrap().unwrap().len())
                .sum()
        });
        println!(
            "{threads} thread(s): {} units, {} MiB decoded in {:.3} s",
            units.len(),
            total >> 20,
            t.elapsed().as_secs_f64()
        );
        sums.push(total);
    }
    assert_eq!(sums[0], sums[1]);
}

/// Open `bytes` as a file and read every unit of every variable: errors are fine, panics not.
fn open_and_read_all(dir: &Path, bytes: &[u8]) {
    let path = dir.join("mutant.nc");
    std::fs::write(&path, bytes).unwrap();
    let Ok(input) = open_path(&path) else { return };
    let sources =
        input
            .variables
            .iter()
            .map(|v| v.source.clone())
            .chain(
                input
                    .dims
                    .iter()
                    .filter_map(|d| match d.coord.as_ref().map(|c| &c.values) {
                        Some(CoordValues::Stored(s)) => Some(s.clone()),
                        _ => None,
                    }),
            );
    for s in sources {
        let shape = s.shape().to_vec();
        // Mutated shapes can be huge: read the first units only.
        let Ok(units) = s.units_in(
            &vec![0; shape.len()],
            &shape.iter().map(|n| (*n).min(64)).collect::<Vec<_>>(),
        ) else {
            continue;
        };
        for (u, _) in units.iter().take(16) {
            let _ = s.read_unit(u);
        }
    }
}

mod mutations {
    use super::*;
    use proptest::prelude::*;

    fn corpus(rel: &str) -> Option<Vec<u8>> {
        Some(std::fs::read(real_data()?.join(rel)).unwrap())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

        #[test]
        fn mutated_or_truncated_files_never_panic(
            which in 0usize..3,
            edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..8),
            cut in any::<prop::sample::Index>(),
            truncate in any::<bool>(),
        ) {
            let files = ["georust-netcdf/simple_xy.nc", "kerchunk/hdf5_mini_blosc.h5", "netcdf4-python/ubyte.nc"];
            let Some(mut bytes) = corpus(files[which]) else { return Ok(()) };
            for (at, b) in &edits {
                let i = at.index(bytes.len());
                bytes[i] = *b;
            }
            if truncate {
                bytes.truncate(cut.index(bytes.len()));
            }
            let dir = tempfile::tempdir().unwrap();
            open_and_read_all(dir.path(), &bytes);
        }
    }
}
