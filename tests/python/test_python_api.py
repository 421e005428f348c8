"""The Python package ``cubeforge`` against its contract (docs/python.md): builds byte-identical to
the command-line tool's, datasets identical to xarray's reference engines, typed exceptions, the
storage commands' JSON reports, and type information.

The CLI under test is ``CUBEFORGE_BIN`` (see conftest.py); the package is the one importable by the
test venv (``scripts/test.sh`` installs the wheel).
"""

from __future__ import annotations

import inspect
import json
import os
import pydoc
import shutil
import uuid
import warnings
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import yaml

import cubeforge as cfpy  # the package under test (``cubeforge`` is conftest's CLI fixture)
from pyapi_compare import (
    CF_ENCODING_KEYS,
    CHUNK_ENCODING_KEYS,
    STORAGE_ENCODING_KEYS,
    dataset_encoding_mismatches,
    dtype_mismatches,
    encoding_mismatches,
    fail_on,
    identical_mismatches,
    reference,
    store_differences,
    store_files,
)
from pyapi_inputs import (
    write_geotiff,
    write_netcdf_raw,
    write_netcdf_xarray,
    write_time_series_files,
    write_zarr,
)
from sources_compare import REAL_DATA

REPO = Path(__file__).resolve().parents[2]
TUTORIAL = REPO / "recipes" / "tutorial.yaml"
EXAMPLE_DAYS = 200


def cli_json(cubeforge, *args) -> dict:
    """``cubeforge ARGS --json --quiet`` parsed (fails the test unless it exits 0)."""
    return json.loads(cubeforge.run(*args, "--json", "--quiet").stdout)


def report_of(doc: dict) -> dict:
    """The build report of ``cubeforge build/convert --json`` (``{"plan", "report", "seconds"}``)."""
    return doc["report"]


# --------------------------------------------------------------------------------------------------
# Fixtures: the example store, a CLI-built cube, inputs written by the reference libraries
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("pyapi")


@pytest.fixture(scope="module")
def example_io(cubeforge, work) -> Path:
    """``cubeforge example io --days 200``."""
    path = work / "io.zarr"
    cubeforge.run("example", "io", "--days", str(EXAMPLE_DAYS), path)
    return path


@pytest.fixture(scope="module")
def cli_cube(cubeforge, work, example_io) -> tuple[Path, dict]:
    """The tutorial recipe built by the CLI from the example, and its ``--json`` document."""
    out = work / "cli_cube.zarr"
    doc = cli_json(cubeforge, "build", TUTORIAL, "--input", example_io, "--output", out)
    return out, doc


@pytest.fixture(scope="module")
def inputs(work) -> dict[str, tuple[Path, str]]:
    """case -> (path, reference engine) for inputs written by zarr-python, netCDF4-python and rasterio."""
    d = work / "inputs"
    d.mkdir()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {
            "zarr2": (write_zarr(d / "v2.zarr", 2), "zarr"),
            "zarr3": (write_zarr(d / "v3.zarr", 3), "zarr"),
            "zarr2_noleap": (write_zarr(d / "noleap2.zarr", 2, calendar="noleap"), "zarr"),
            "zarr3_noleap": (write_zarr(d / "noleap3.zarr", 3, calendar="noleap"), "zarr"),
            "nc4_xarray": (write_netcdf_xarray(d / "x4.nc", "NETCDF4"), "netcdf4"),
            "nc3_xarray": (write_netcdf_xarray(d / "x3.nc", "NETCDF3_CLASSIC"), "netcdf4"),
            "nc4_noleap": (write_netcdf_xarray(d / "noleap.nc", "NETCDF4", calendar="noleap"), "netcdf4"),
            "nc3_raw": (write_netcdf_raw(d / "raw3.nc", "NETCDF3_CLASSIC"), "netcdf4"),
            "nc4_raw": (write_netcdf_raw(d / "raw4.nc", "NETCDF4"), "netcdf4"),
            "geotiff": (write_geotiff(d / "bands.tif"), "rasterio"),
        }


INPUT_CASES = [
    "zarr2", "zarr3", "zarr2_noleap", "zarr3_noleap", "nc4_xarray", "nc3_xarray", "nc4_noleap",
    "nc3_raw", "nc4_raw", "geotiff",
]


def open_cf(path, **kwargs) -> xr.Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return cfpy.open_dataset(str(path), **kwargs)


# --------------------------------------------------------------------------------------------------
# 1. Building cubes: the bytes `cubeforge build` / `convert` write
# --------------------------------------------------------------------------------------------------


def test_build_writes_the_cli_bytes_and_reports(work, example_io, cli_cube):
    cli_out, cli_doc = cli_cube
    out = work / "py_cube.zarr"
    report = cfpy.build(str(TUTORIAL), input=str(example_io), output=str(out), progress=False)
    fail_on(store_differences(out, cli_out), "cubeforge.build vs cubeforge build")

    cli_report = report_of(cli_doc)
    assert Path(str(report.output).removeprefix("file://")).resolve() == out.resolve(), report.output
    assert report.chunks_computed == cli_report["chunks_computed"] > 0
    assert isinstance(report.seconds, float) and report.seconds > 0
    plan = report.plan
    if isinstance(plan, dict):
        assert plan["variables"] == cli_report["plan"]["variables"]
        assert plan["dims"] == cli_report["plan"]["dims"]
    else:  # a summary object or text: it must at least name the cube's variables
        text = str(plan)
        assert all(v["name"] in text for v in cli_report["plan"]["variables"]), text


def test_build_recipe_as_yaml_text(cubeforge, work, example_io):
    """YAML text (holding a newline) is the recipe itself: the same bytes as the CLI on that file,
    provenance hash included."""
    text = TUTORIAL.read_text().replace("out/io.zarr", str(example_io))
    text = text.replace("out/cnn_tutorial.zarr", str(work / "text_cli.zarr"))
    recipe = work / "text_recipe.yaml"
    recipe.write_text(text)
    cubeforge.run("build", recipe, "--quiet")
    py_out = work / "text_py.zarr"
    cfpy.build(text, output=str(py_out), progress=False)
    fail_on(store_differences(py_out, work / "text_cli.zarr"), "build(YAML text) vs CLI")


def test_build_recipe_as_dict(work, example_io, cli_cube):
    """A dict recipe builds the same cube; only the provenance hash of the recipe text (which a dict
    has not) and the creation time may differ."""
    recipe = yaml.safe_load(TUTORIAL.read_text())
    recipe["inputs"]["io"]["url"] = str(example_io)
    out = work / "dict_cube.zarr"
    recipe["output"]["url"] = str(out)
    report = cfpy.build(recipe, progress=False)
    assert report.chunks_computed == report_of(cli_cube[1])["chunks_computed"]
    fail_on(
        store_differences(out, cli_cube[0], ("cubeforge_created", "cubeforge_recipe_sha256")),
        "build(dict) vs CLI",
    )


def test_build_dry_run_writes_nothing(work, example_io, cli_cube):
    out = work / "dry.zarr"
    report = cfpy.build(str(TUTORIAL), input=str(example_io), output=str(out), dry_run=True, progress=False)
    assert not out.exists(), f"dry run wrote {store_files(out) if out.is_dir() else out}"
    assert report.chunks_computed == 0
    assert report.plan, "a dry run reports its plan"


def test_build_overwrite(work, example_io, cli_cube):
    """``overwrite=True`` replaces an existing cube (the same bytes again); without it the call fails."""
    out = work / "again.zarr"
    shutil.copytree(cli_cube[0], out)
    with pytest.raises(cfpy.DestinationNotEmptyError):
        cfpy.build(str(TUTORIAL), input=str(example_io), output=str(out), progress=False)
    cfpy.build(str(TUTORIAL), input=str(example_io), output=str(out), overwrite=True, progress=False,
               jobs=1, memory_limit="64M")
    fail_on(store_differences(out, cli_cube[0]), "overwrite=True rebuild vs CLI")


@pytest.mark.parametrize(
    "zarr_format,chunks", [(2, None), (3, {"time": 4})], ids=["v2", "v3-chunks"]
)
def test_convert_writes_the_cli_bytes(cubeforge, work, zarr_format, chunks):
    """The destination is part of the recipe the flags stand for (its hash is in the cube), so both
    write to the same path, the CLI's cube moved aside first."""
    files = write_time_series_files(work / f"series_{zarr_format}")
    py_out, cli_out = work / f"conv_{zarr_format}.zarr", work / f"conv_{zarr_format}_cli.zarr"
    args = [*files, py_out, "--concat", "time", "--zarr-format", str(zarr_format)]
    if chunks:
        args += ["--chunks", ",".join(f"{k}={v}" for k, v in chunks.items())]
    cli_doc = cli_json(cubeforge, "convert", *args)
    py_out.rename(cli_out)
    report = cfpy.convert([str(f) for f in files], str(py_out), concat="time", chunks=chunks,
                          zarr_format=zarr_format, progress=False)
    fail_on(store_differences(py_out, cli_out), "cubeforge.convert vs cubeforge convert")
    assert report.chunks_computed == report_of(cli_doc)["chunks_computed"] > 0


# --------------------------------------------------------------------------------------------------
# 2. Opening data: what xarray's reference engine gives
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", INPUT_CASES)
def test_open_dataset_is_the_reference_dataset(inputs, case):
    path, engine = inputs[case]
    want = reference(path, engine)
    got = open_cf(path).load()
    fail_on(identical_mismatches(got, want), f"open_dataset({path.name}) vs engine={engine}")


@pytest.mark.parametrize("case", INPUT_CASES)
def test_open_dataset_cf_encoding(inputs, case):
    """``dtype``, ``_FillValue``, ``scale_factor``, ``add_offset``, ``units``, ``calendar``."""
    path, engine = inputs[case]
    want = reference(path, engine)
    got = open_cf(path)
    fail_on(encoding_mismatches(got, want, CF_ENCODING_KEYS), f"encoding of {path.name} vs engine={engine}")


@pytest.mark.parametrize("case", INPUT_CASES)
def test_open_dataset_chunk_encoding(inputs, case):
    """``chunks`` / ``preferred_chunks``, and how the file stores each variable (netcdf4:
    ``chunksizes``, ``contiguous``, the filters, ``original_shape``, ``source``; rasterio:
    ``rasterio_dtype``, ``source``), exactly where the reference engine sets them."""
    path, engine = inputs[case]
    want = reference(path, engine)
    got = open_cf(path)
    problems = encoding_mismatches(got, want, CHUNK_ENCODING_KEYS + STORAGE_ENCODING_KEYS)
    problems += dataset_encoding_mismatches(got, want)
    fail_on(problems, f"storage encoding of {path.name} vs engine={engine}")


@pytest.mark.parametrize(
    "case,kwargs",
    [
        ("zarr2", {"mask_and_scale": False}),
        ("zarr3", {"decode_times": False}),
        ("nc4_raw", {"mask_and_scale": False, "decode_times": False}),
        ("nc3_raw", {"mask_and_scale": False}),
        ("zarr3_noleap", {"decode_times": False}),
        ("geotiff", {"mask_and_scale": False}),
    ],
)
def test_open_dataset_decoding_options(inputs, case, kwargs):
    path, engine = inputs[case]
    want = reference(path, engine, **kwargs)
    got = open_cf(path, **kwargs).load()
    fail_on(identical_mismatches(got, want), f"open_dataset({path.name}, {kwargs}) vs engine={engine}")


@pytest.mark.parametrize("case", ["zarr3", "nc4_xarray", "geotiff"])
def test_open_dataset_with_dask_chunks(inputs, case):
    path, engine = inputs[case]
    got = open_cf(path, chunks={})
    assert any(v.chunks is not None for v in got.data_vars.values()), "chunks={} gives dask arrays"
    fail_on(identical_mismatches(got.load(), reference(path, engine)), f"open_dataset({path.name}, chunks={{}})")


@pytest.mark.parametrize("case", ["zarr2", "zarr3_noleap", "nc4_raw", "nc3_xarray", "geotiff"])
def test_xarray_backend_entry_point(inputs, case):
    path, _ = inputs[case]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        via_xarray = xr.open_dataset(path, engine="cubeforge")
    direct = open_cf(path)
    keys = CF_ENCODING_KEYS + CHUNK_ENCODING_KEYS
    fail_on(encoding_mismatches(via_xarray, direct, keys), f"engine='cubeforge' encoding of {path.name}")
    xr.testing.assert_identical(via_xarray.load(), direct.load())


def test_indexing_reads_only_the_chunks_it_needs(cli_cube, work):
    """After opening, every ``sst`` chunk but the first is overwritten with garbage: one element of
    the first chunk still reads (no other chunk was needed), and one of the last chunk fails with
    CorruptChunkError (nothing was read ahead at open time)."""
    store = work / "lazy.zarr"
    shutil.copytree(cli_cube[0], store)
    want = reference(store, "zarr")
    ds = open_cf(store)
    chunks = sorted(p for p in (store / "sst").iterdir() if not p.name.startswith("."))
    assert len(chunks) > 4 and chunks[0].name == "0.0.0", [p.name for p in chunks]
    for p in chunks[1:]:
        p.write_bytes(b"\x00garbage, not a blosc frame" * 7)
    np.testing.assert_array_equal(ds["sst"][0, 0, 0].values, want["sst"][0, 0, 0].values)
    np.testing.assert_array_equal(ds["sst"][:3, 5:9, 7].values, want["sst"][:3, 5:9, 7].values)
    with pytest.raises(cfpy.CorruptChunkError):
        ds["sst"][-1, -1, -1].values


def test_glob_joined_along_time_is_open_mfdataset(work):
    folder = work / "mf"
    files = write_time_series_files(folder, n=4, days=3)
    got = open_cf(folder / "*.nc", concat="time").load()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = xr.open_mfdataset(
            sorted(map(str, files)), combine="nested", concat_dim="time", engine="netcdf4",
            data_vars="minimal", coords="minimal", compat="override",
        ).load()
    xr.testing.assert_equal(got, want)
    assert {n: v.dtype for n, v in got.variables.items()} == {n: v.dtype for n, v in want.variables.items()}


#: Corpus files (MANIFEST.md) that xarray opens, with their reference engine.
CORPUS = [
    ("kerchunk/air.nc", "netcdf4"),
    ("rioxarray/PLANET_SCOPE_3D.nc", "netcdf4"),
    # Packed int16 coordinates (x/y with float32 scale_factor and add_offset).
    ("netcdf4-python/20171025_2056.Cloud_Top_Height.nc", "netcdf4"),
    ("georust-netcdf/pres_temp_4D.nc", "netcdf4"),
    ("netcdf4-python/ubyte.nc", "netcdf4"),
    ("rasterio/byte.tif", "rasterio"),
    ("georust-gdal/labels.tif", "rasterio"),
    ("rasterio/RGB.byte.tif", "rasterio"),
    # Scalar times with calendar "NOLEAP" and units without a time of day, which are not
    # dimension coordinates: decoded in their own calendar, units and calendar kept as written.
    ("netcdf-c/ref_null_byte_padding_test.nc", "netcdf4"),
    # An unlimited dimension of length 0, and a character array stacked along maxStrlen64.
    ("netcdf4-python/netcdf_dummy_file.nc", "netcdf4"),
    # Classic files with a record dimension and character arrays.
    ("netcdf-c/ref_nctest_classic.nc", "netcdf4"),
    ("netcdf-c/nctest_netcdf4_classic.nc", "netcdf4"),
    # Chunked and compressed NetCDF-4.
    ("georust-netcdf/simple_nc4.nc", "netcdf4"),
    # A scale and offset on uint8 (decoded to float32; the encoding has Python floats).
    ("georust-gdal/offset_scaled_tinymarble.tif", "rasterio"),
    # Rotated grids: xc and yc are float64 coordinates.
    ("rioxarray/2d_test.tif", "rasterio"),
    ("odc-geo/au-3577-rotated.tif", "rasterio"),
    ("odc-geo/au-3577.tif", "rasterio"),
]


@pytest.mark.skipif(not REAL_DATA.is_dir(), reason=f"real third-party data not found at {REAL_DATA}")
@pytest.mark.parametrize("rel,engine", CORPUS,
                         ids=[(c.values if hasattr(c, "values") else c)[0] for c in CORPUS])
def test_open_dataset_corpus_files(rel, engine):
    path = REAL_DATA / rel
    want = reference(path, engine)
    got = open_cf(path)
    problems = encoding_mismatches(got, want, CF_ENCODING_KEYS)
    problems += encoding_mismatches(got, want, CHUNK_ENCODING_KEYS + STORAGE_ENCODING_KEYS)
    problems += dtype_mismatches(got, want)
    problems += dataset_encoding_mismatches(got, want)
    problems += identical_mismatches(got.load(), want)
    fail_on(problems, f"open_dataset({rel}) vs engine={engine}")


# --------------------------------------------------------------------------------------------------
# 3. Errors: one class per kind, each with .location and .message
# --------------------------------------------------------------------------------------------------


def check_error(err: BaseException, cls: type, builtin: type) -> None:
    assert isinstance(err, cls), f"{type(err).__name__} is not {cls.__name__}: {err}"
    assert isinstance(err, builtin), f"{type(err).__name__} does not derive from {builtin.__name__}"
    assert isinstance(err, cfpy.CubeforgeError)
    assert isinstance(err.location, str) and isinstance(err.message, str) and err.message, (
        f"location={err.location!r} message={err.message!r}"
    )


def test_error_classes_derive_from_builtins():
    table = {
        "NotFoundError": FileNotFoundError, "NotZarrError": ValueError, "InvalidUrlError": ValueError,
        "InvalidMetadataError": ValueError, "UnsupportedError": NotImplementedError,
        "CorruptChunkError": OSError, "StorageError": OSError, "MissingError": KeyError,
        "DestinationNotEmptyError": FileExistsError, "RecipeError": ValueError,
        "FileSystemError": OSError, "CredentialsError": PermissionError, "RefusedError": PermissionError,
        "CombineError": ValueError, "LockedError": BlockingIOError, "TransferError": OSError,
        "BatchError": ValueError,
    }
    for name, base in table.items():
        cls = getattr(cfpy, name)
        assert issubclass(cls, cfpy.CubeforgeError) and issubclass(cls, base), name
    assert issubclass(cfpy.CubeforgeError, Exception)


@pytest.mark.parametrize("kw, words", [
    ({"jobs": -1}, "jobs: -1 is not a number of threads"),
    ({"jobs": 1.5}, "jobs: 1.5 is not a number of threads"),
    ({"memory_limit": "lots"}, "memory_limit: 'lots' is not a size"),
    ({"memory_limit": -5}, "memory_limit: -5 is not a positive number of bytes"),
])
def test_bad_run_options_are_value_errors(work, kw, words):
    """Run options Python checks before any work: ValueError naming the option, nothing written."""
    dest = work / f"never-written-{abs(hash(str(kw)))}.zarr"
    with pytest.raises(ValueError) as exc:
        cfpy.build(BAD_FIELD_RECIPE.format(input=work / "x.zarr", output=dest), progress=False, **kw)
    assert words in str(exc.value)
    assert not dest.exists()


@pytest.mark.parametrize("call", ["open_dataset", "info"])
def test_missing_path_is_not_found(work, call):
    path = work / "nothing-here.zarr"
    with pytest.raises(cfpy.NotFoundError) as exc:
        getattr(cfpy, call)(str(path))
    check_error(exc.value, cfpy.NotFoundError, FileNotFoundError)
    assert "nothing-here.zarr" in exc.value.location


@pytest.mark.parametrize("call", ["open_dataset", "info"])
def test_directory_without_zarr_metadata_is_not_zarr(cubeforge, work, call):
    folder = work / f"plain_folder_{call}"
    folder.mkdir()
    (folder / "notes.txt").write_text("not a store\n")
    assert "not a Zarr store" in cubeforge.run_failing("info", folder)
    with pytest.raises(cfpy.NotZarrError) as exc:
        getattr(cfpy, call)(str(folder))
    check_error(exc.value, cfpy.NotZarrError, ValueError)
    assert folder.name in exc.value.location


def test_empty_directory(cubeforge, work):
    """The CLI calls an empty directory "not a Zarr store"; NotFoundError ("nothing at the location")
    would be defensible too, but nothing else."""
    folder = work / "empty_folder"
    folder.mkdir()
    assert "not a Zarr store" in cubeforge.run_failing("info", folder)
    with pytest.raises((cfpy.NotZarrError, cfpy.NotFoundError)) as exc:
        cfpy.open_dataset(str(folder))
    check_error(exc.value, type(exc.value), (ValueError, FileNotFoundError))


BAD_FIELD_RECIPE = """version: 1
inputs:
  io:
    url: {input}
output:
  url: {output}
  zarr_format: 2
  chunkz: {{time: 100}}
operations:
  - keep: [sst]
"""

MISSING_VARIABLE_RECIPE = """version: 1
inputs:
  io:
    url: {input}
output:
  url: {output}
operations:
  - rename: {{sst: sea_surface_temperature}}
  - keep: [so, nosuchvar]
"""


def test_recipe_with_a_bad_field(cubeforge, work, example_io):
    recipe = work / "bad_field.yaml"
    out = work / "bad_field.zarr"
    recipe.write_text(BAD_FIELD_RECIPE.format(input=example_io, output=out))
    assert "bad_field.yaml:8" in cubeforge.run_failing("build", recipe)
    with pytest.raises(cfpy.RecipeError) as exc:
        cfpy.build(str(recipe), progress=False)
    check_error(exc.value, cfpy.RecipeError, ValueError)
    assert exc.value.location.endswith("bad_field.yaml:8"), exc.value.location
    assert exc.value.line == 8
    assert "chunkz" in exc.value.message
    assert not out.exists()


def test_recipe_keeping_an_unknown_variable(cubeforge, work, example_io):
    recipe = work / "missing_var.yaml"
    out = work / "missing_var.zarr"
    recipe.write_text(MISSING_VARIABLE_RECIPE.format(input=example_io, output=out))
    line = cubeforge.run_failing("build", recipe)
    assert "missing_var.yaml:9" in line and "nosuchvar" in line, line
    with pytest.raises((cfpy.RecipeError, cfpy.MissingError)) as exc:
        cfpy.build(str(recipe), progress=False)
    err = exc.value
    check_error(err, type(err), (ValueError, KeyError))
    assert "nosuchvar" in err.location + err.message
    if isinstance(err, cfpy.RecipeError):
        assert err.location.endswith("missing_var.yaml:9") and err.line == 9, err.location
    assert not out.exists()


def test_corrupt_chunk(cli_cube, work):
    store = work / "corrupt.zarr"
    shutil.copytree(cli_cube[0], store)
    (store / "so" / "0.1.1").write_bytes(os.urandom(64))
    ds = open_cf(store)
    with pytest.raises(cfpy.CorruptChunkError) as exc:
        ds.load()
    check_error(exc.value, cfpy.CorruptChunkError, OSError)
    assert "so" in exc.value.location and "0.1.1" in str(exc.value), (exc.value.location, str(exc.value))


def test_destination_not_empty(work, example_io):
    out = work / "occupied"
    out.mkdir()
    (out / "precious.txt").write_text("keep me\n")
    with pytest.raises(cfpy.DestinationNotEmptyError) as exc:
        cfpy.build(str(TUTORIAL), input=str(example_io), output=str(out), progress=False)
    check_error(exc.value, cfpy.DestinationNotEmptyError, FileExistsError)
    assert "occupied" in exc.value.location
    assert store_files(out) == ["precious.txt"] and (out / "precious.txt").read_text() == "keep me\n"


@pytest.mark.parametrize("keep", [30, 3000], ids=["header", "data"])
def test_truncated_netcdf(cubeforge, work, keep):
    """A NetCDF-4 file cut short in its header (open fails) or in its data (reading fails)."""
    full = write_netcdf_xarray(work / f"full_{keep}.nc", "NETCDF4")
    cut = work / f"truncated_{keep}.nc"
    cut.write_bytes(full.read_bytes()[:keep])
    cubeforge.run_failing("convert", cut, work / f"truncated_{keep}.zarr", "--quiet")
    with pytest.raises(cfpy.CubeforgeError) as exc:
        open_cf(cut).load()
    err = exc.value
    check_error(err, type(err), Exception)
    assert type(err) is not cfpy.CubeforgeError, "a subclass names the kind of failure"
    assert cut.name in str(err) and cut.name in err.location + err.message, str(err)


# --------------------------------------------------------------------------------------------------
# 4. Inspecting and moving data: the commands' JSON reports
# --------------------------------------------------------------------------------------------------


def test_info_is_the_cli_json(cubeforge, inputs, cli_cube, work):
    for path in (cli_cube[0], inputs["zarr3"][0], inputs["nc4_raw"][0], inputs["geotiff"][0]):
        assert cfpy.info(str(path)) == json.loads(cubeforge.run("info", path, "--json").stdout), path
    verified = json.loads(cubeforge.run("info", cli_cube[0], "--verify", "--json").stdout)
    assert cfpy.info(str(cli_cube[0]), verify=True) == verified
    files = write_time_series_files(work / "info_series")
    pattern = str(files[0].parent / "*.nc")
    want = json.loads(cubeforge.run("info", pattern, "--concat", "time", "--json").stdout)
    assert cfpy.info(pattern, concat="time") == want


def test_ls_and_du_are_the_cli_json(cubeforge, work, cli_cube):
    root = work / "listing"
    root.mkdir()
    shutil.copytree(cli_cube[0], root / "cube.zarr")
    (root / "sub").mkdir()
    (root / "sub" / "a.bin").write_bytes(b"x" * 100)
    (root / "top.txt").write_text("hello\n")
    assert cfpy.ls(str(root)) == cli_json(cubeforge, "ls", root)["entries"]
    assert cfpy.ls(str(root), long=True) == cli_json(cubeforge, "ls", "--long", root)["entries"]
    assert cfpy.ls(str(root), recursive=True) == cli_json(cubeforge, "ls", "--recursive", root)["entries"]
    assert cfpy.du(str(root / "cube.zarr")) == cli_json(cubeforge, "du", root / "cube.zarr")
    assert cfpy.du(str(root)) == cli_json(cubeforge, "du", root)


def test_cp_copies_a_store(cubeforge, work, cli_cube):
    src = cli_cube[0]
    dry = work / "cp_dry.zarr"
    report = cfpy.cp(str(src), str(dry), dry_run=True)
    assert not dry.exists() and report["dry_run"] is True
    dst, cli_dst = work / "cp_py.zarr", work / "cp_cli.zarr"
    report = cfpy.cp(str(src), str(dst))
    assert {p: (dst / p).read_bytes() for p in store_files(dst)} == {p: (src / p).read_bytes() for p in store_files(src)}
    cli = cli_json(cubeforge, "cp", src, cli_dst)
    assert report["destination"] == str(dst)
    drop = ("seconds", "destination")
    assert {k: v for k, v in report.items() if k not in drop} == {k: v for k, v in cli.items() if k not in drop}


def _diverged_copy(src: Path, dst: Path) -> None:
    """A copy of ``src`` with one chunk changed (another size), one removed and one extra object."""
    shutil.copytree(src, dst)
    (dst / "sst" / "0.0.0").write_bytes(b"stale")
    (dst / "so" / "0.0.1").unlink()
    (dst / "extra.bin").write_bytes(b"not in the source")


def test_sync_with_delete(cubeforge, work, cli_cube):
    src = cli_cube[0]
    dst, cli_dst = work / "sync_py.zarr", work / "sync_cli.zarr"
    _diverged_copy(src, dst)
    _diverged_copy(src, cli_dst)
    report = cfpy.sync(str(src), str(dst), delete=True)
    assert {p: (dst / p).read_bytes() for p in store_files(dst)} == {p: (src / p).read_bytes() for p in store_files(src)}
    assert report["deleted"] == 1 and {"sst/0.0.0", "so/0.0.1"} <= set(report["copied_keys"]), report
    cli = cli_json(cubeforge, "sync", "--delete", src, cli_dst)
    drop = ("seconds", "destination")
    assert {k: v for k, v in report.items() if k not in drop} == {k: v for k, v in cli.items() if k not in drop}


def test_rm_removes_a_store(cubeforge, work, cli_cube):
    victim, cli_victim = work / "rm_py.zarr", work / "rm_cli.zarr"
    shutil.copytree(cli_cube[0], victim)
    shutil.copytree(cli_cube[0], cli_victim)
    before = store_files(victim)
    dry = cfpy.rm(str(victim), recursive=True, dry_run=True)
    assert store_files(victim) == before and dry["dry_run"] is True
    report = cfpy.rm(str(victim), recursive=True)
    assert not victim.exists() or not store_files(victim), store_files(victim)
    cli = cli_json(cubeforge, "rm", "--recursive", "--yes", cli_victim)
    assert {k: v for k, v in report.items() if k != "location"} == {k: v for k, v in cli.items() if k != "location"}
    assert report["deleted"] == len(before)


def test_rm_of_a_bucket_root_needs_force_root(cubeforge, s3_server, monkeypatch):
    bucket = f"pyapi-{uuid.uuid4().hex[:12]}"
    client = s3_server.client()
    client.create_bucket(Bucket=bucket)
    for key in ("a.txt", "store.zarr/.zgroup"):
        client.put_object(Bucket=bucket, Key=key, Body=b"{}")
    env = s3_server.env()
    for key in [k for k in os.environ if k.startswith("AWS_")]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        if key.startswith("AWS_"):
            monkeypatch.setenv(key, value)
    from cli_support import cf

    proc = cf(cubeforge, env, "rm", "--recursive", "--yes", f"s3://{bucket}", check=False)
    assert proc.returncode == 2 and "force-root" in proc.stderr, proc.stderr
    with pytest.raises(cfpy.RefusedError) as exc:
        cfpy.rm(f"s3://{bucket}", recursive=True)
    check_error(exc.value, cfpy.RefusedError, PermissionError)
    listed = client.list_objects_v2(Bucket=bucket).get("Contents", [])
    assert sorted(o["Key"] for o in listed) == ["a.txt", "store.zarr/.zgroup"]
    report = cfpy.rm(f"s3://{bucket}", recursive=True, force_root=True)
    assert report["deleted"] == 2
    assert client.list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0


# --------------------------------------------------------------------------------------------------
# 5. Type information and documentation
# --------------------------------------------------------------------------------------------------


def test_type_information_ships():
    package = Path(cfpy.__file__).parent
    shipped = (package / "py.typed").is_file() or (package / "__init__.pyi").is_file()
    in_tree = (REPO / "python" / "cubeforge" / "__init__.pyi").is_file()
    assert shipped or in_tree, f"no py.typed or __init__.pyi in the installed package {package}, no stubs in python/"


def test_signatures_and_docstrings():
    expected = {
        "build": ["recipe", "input", "output", "overwrite", "resume", "jobs", "memory_limit", "progress",
                  "dry_run", "break_lock"],
        "convert": ["sources", "dest", "concat", "time_from", "variables", "chunks", "zarr_format", "bands",
                    "group"],
        "info": ["url", "group", "concat", "verify"],
        "ls": ["url", "long", "recursive"],
        "du": ["url"],
        "cp": ["src", "dst", "dry_run", "concurrency", "break_lock"],
        "sync": ["src", "dst", "checksum", "delete"],
        "rm": ["url", "recursive", "force_root", "dry_run"],
    }
    for name, params in expected.items():
        fn = getattr(cfpy, name)
        got = list(inspect.signature(fn).parameters)
        assert got[: len(params)] == params or set(params) <= set(got), f"{name}{inspect.signature(fn)}"
        assert fn.__doc__ and fn.__doc__.strip(), f"{name} has no docstring"
    text = pydoc.render_doc(cfpy.build)
    assert "recipe" in text and "overwrite" in text
    assert "recipe" in cfpy.build.__doc__ and "overwrite" in cfpy.build.__doc__
    assert cfpy.open_dataset.__doc__
