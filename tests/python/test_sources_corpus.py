"""Every NetCDF, HDF5 and GeoTIFF file of the shared corpus, through ``cubeforge info`` and ``convert``.

For each file (and each group of a NetCDF-4/HDF5 file) of ``shared/data/real`` (see its MANIFEST.md):

- ``cubeforge info FILE --json`` describes it like xarray: dimensions, variables, decoded dtypes,
  the chunk or tile shape of chunked variables and, for a GeoTIFF, its EPSG code (where it has one)
  and its six transform coefficients;
- ``cubeforge convert FILE DST`` writes a cube that ``xr.open_zarr`` decodes to what
  ``xr.open_dataset(FILE)`` gives with the netCDF4 engine and, for HDF5-based files, the h5netcdf
  engine too; GeoTIFFs are compared with the rasterio engine (rioxarray) and their CRS and
  transform with rasterio's. See sources_compare.py for what is compared and the documented
  differences.

The tables below are the whole list of exceptions, each with its reason.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from sources_compare import (
    REAL_DATA,
    dataset_mismatches,
    georeferencing_mismatches,
    open_cube,
    quiet_open,
    report,
)

pytestmark = pytest.mark.skipif(not REAL_DATA.is_dir(), reason=f"real third-party data not found at {REAL_DATA}")

#: Suffixes of the files under test.
SUFFIXES = (".nc", ".h5", ".tif")

#: (file, group) -> (variables a cube may lack, why). Only compound variables.
MAY_BE_ABSENT: dict[tuple[str, str], tuple[set[str], str]] = {
    ("georust-netcdf/simple_nc4.nc", "grp2"): ({"data"}, "compound type {i1: int32, i2: int32}"),
}

#: (file, group) -> the feature named in the one-line error when cubeforge refuses it (exit 2).
#: cubeforge may also read these; then everything is compared as for any other file (JPEG values
#: within JPEG_TOLERANCE).
MAY_BE_REFUSED: dict[tuple[str, str], str] = {
    ("georust-netcdf/simple_nc4.nc", "grp2"): "compound",
    ("rasterio/cogeo.tif", ""): "JPEG",
}

#: Files whose pixels are JPEG-compressed: decoders may differ by rounding (MANIFEST), so values are
#: compared within this many units of the uint8 range, and on average within a tenth of it.
JPEG_FILES = {"rasterio/cogeo.tif"}
JPEG_TOLERANCE = 16  # GDAL's libjpeg-turbo upsamples chroma differently at edges (max 14 seen, mean 0.3)

#: Values no reference reader of the test venv can decode (HDF5 filter plugins that neither the
#: netCDF4 nor the h5py wheel ships), taken from the corpus MANIFEST instead.
MANIFEST_VALUES: dict[str, dict[str, np.ndarray]] = {
    "kerchunk/hdf5_compression_zstd.h5": {"data": np.arange(100, dtype="int64")},
    "kerchunk/hdf5_mini_blosc.h5": {"data": np.arange(6, dtype="int32").reshape(3, 2)},
    "kerchunk/hdf5_mini_shuffle_zstd.h5": {"data": np.arange(6, dtype="int32").reshape(3, 2)},
}


def is_hdf5(path: Path) -> bool:
    """Whether ``path`` is an HDF5 file (NetCDF-4 or plain HDF5), by its signature."""
    with open(path, "rb") as f:
        return f.read(8) == b"\x89HDF\r\n\x1a\n"


def groups_of(path: Path) -> list[str]:
    """All groups of a NetCDF/HDF5 file below the root, as paths without the leading slash."""
    import netCDF4

    def walk(group, prefix: str) -> list[str]:
        out = []
        for name, sub in group.groups.items():
            path_ = f"{prefix}{name}"
            out += [path_, *walk(sub, path_ + "/")]
        return out

    with netCDF4.Dataset(path) as nc:
        return walk(nc, "")


def corpus_cases() -> list[tuple[str, str]]:
    """(file relative to REAL_DATA, group or '') for every file with a suffix in SUFFIXES."""
    if not REAL_DATA.is_dir():
        return []
    cases = []
    for path in sorted(p for p in REAL_DATA.rglob("*") if p.suffix in SUFFIXES and p.is_file()):
        rel = path.relative_to(REAL_DATA).as_posix()
        cases.append((rel, ""))
        if path.suffix != ".tif" and is_hdf5(path):
            cases += [(rel, g) for g in groups_of(path)]
    return cases


CASES = corpus_cases()
IDS = [f"{rel}#{group}" if group else rel for rel, group in CASES]


def engines(path: Path) -> list[str]:
    """The xarray engines that are references for ``path``."""
    if path.suffix == ".tif":
        return ["rasterio"]
    return ["netcdf4", "h5netcdf"] if is_hdf5(path) else ["netcdf4"]


def reference(path: Path, engine: str, group: str):
    """xarray's view of ``path`` (group ``group``) with ``engine``, and the values to compare with.

    Where the engine cannot decode a variable (a filter without plugin), the dataset is opened lazily
    and that variable's values come from MANIFEST_VALUES; a variable neither decodes nor lists fails.
    """
    kwargs = {"engine": engine, "group": group or None}
    rel = path.relative_to(REAL_DATA).as_posix()
    try:
        return quiet_open(path, **kwargs), None
    except (OSError, RuntimeError) as err:
        if rel not in MANIFEST_VALUES:
            raise AssertionError(f"{engine} cannot read {rel} and the test lists no MANIFEST values: {err}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import xarray as xr

        return xr.open_dataset(path, **kwargs), MANIFEST_VALUES[rel]


def refused_line(proc) -> str | None:
    """The one error line of a process that exited with status 2 (``error: ...``, or with ``--json``
    the message of ``{"error": ...}``); None on success; fails on any other failure shape."""
    if proc.returncode == 0:
        return None
    # Warnings (a variable left out) may come first; the error is one last line.
    lines = [line for line in proc.stderr.splitlines() if " WARN " not in f" {line} "][-1:]
    message = None
    if proc.returncode == 2 and len(lines) == 1:
        if lines[0].startswith("error: "):
            message = lines[0]
        else:
            try:
                message = "error: " + json.loads(lines[0])["error"]
            except (ValueError, KeyError, TypeError):
                message = None
    assert message is not None, (
        f"expected success or exit 2 with one error line, got {proc.returncode}:\n{proc.stderr}"
    )
    return message


@pytest.mark.parametrize(("rel", "group"), CASES, ids=IDS)
def test_info_describes_corpus_file(cubeforge, rel, group):
    path = REAL_DATA / rel
    absent, _why = MAY_BE_ABSENT.get((rel, group), (set(), ""))
    feature = MAY_BE_REFUSED.get((rel, group))
    args = ["info", path, "--json"] + (["--group", group] if group else [])
    proc = cubeforge._run(tuple(args))
    if proc.returncode != 0 and not proc.stdout.strip():
        line = refused_line(proc)
        assert feature and feature.lower() in line.lower(), f"info refused {rel}#{group}: {line}"
        return
    doc = cubeforge.info(path, group=group)
    ref, _ = reference(path, engines(path)[0], group)
    variables = {**doc["coords"], **doc["data_vars"]}
    mismatches = []
    for name, var in variables.items():
        if var.get("error"):
            # Left out on purpose: the error names the unsupported feature (the table's reason).
            error = var["error"].lower()
            named = (feature and feature.lower() in error) or (_why and _why.split()[0].lower() in error)
            if not (name in absent and named):
                mismatches.append(f"{name}.error: {var['error']}")
    expected_names = set(map(str, ref.variables)) - absent
    if not expected_names <= set(variables):
        mismatches.append(f"variables: cubeforge lacks {sorted(expected_names - set(variables))}")
    for name in sorted(expected_names & set(variables)):
        var, xvar = variables[name], ref[name].variable
        if var["dims"] != list(xvar.dims) and not any(str(d).startswith("phony_dim_") for d in xvar.dims):
            mismatches.append(f"{name}.dims: cubeforge={var['dims']} xarray={list(xvar.dims)}")
        if var["shape"] != list(xvar.shape):
            mismatches.append(f"{name}.shape: cubeforge={var['shape']} xarray={list(xvar.shape)}")
        if var["dtype"] != str(xvar.dtype):
            mismatches.append(f"{name}.dtype: cubeforge={var['dtype']} xarray={xvar.dtype}")
    mismatches += storage_chunk_mismatches(path, group, variables)
    if path.suffix == ".tif":
        mismatches += georeferencing_shown(path, json.dumps(doc))
    assert not mismatches, report(f"cubeforge info {rel}#{group}", mismatches)


def georeferencing_shown(path: Path, text: str) -> list[str]:
    """The raster's EPSG code (where it has one) and the six transform coefficients appear in the info
    document (as JSON numbers in their shortest round-trip form, as both Python and Rust print them)."""
    import rasterio

    with rasterio.open(path) as src:
        epsg = src.crs.to_epsg() if src.crs else None
        coefficients = list(src.transform)[:6]
    out = []
    if epsg is not None and str(epsg) not in text:
        out.append(f"crs: EPSG:{epsg} not shown by info")
    for field, value in zip("abcdef", coefficients):
        spelled = repr(float(value))
        if spelled not in text and spelled.removesuffix(".0") not in text:
            out.append(f"transform.{field}: {spelled} not shown by info")
    return out


def storage_chunk_mismatches(path: Path, group: str, variables: dict) -> list[str]:
    """The chunk shape info reports against the file's own: a NetCDF-4 variable's HDF5 chunks, or a
    GeoTIFF's tile / strip shape (bands first: one band per chunk, or all bands if pixel-interleaved)."""
    out = []
    if path.suffix == ".tif":
        import rasterio

        with rasterio.open(path) as src:
            rows, cols = src.block_shapes[0]
            allowed = ([1, rows, cols], [src.count, rows, cols])
        var = variables.get("band_data")
        if var is not None and var["chunks"] not in allowed:
            out.append(f"band_data.chunks: cubeforge={var['chunks']} tiff blocks={allowed}")
        return out
    if not is_hdf5(path):
        return out
    import netCDF4

    with netCDF4.Dataset(path) as nc:
        grp = nc[group] if group else nc
        for name, v in grp.variables.items():
            chunking = v.chunking()
            readable = name in variables and not variables[name].get("error")
            if readable and isinstance(chunking, list):
                # A character array xarray stacks into strings has one dimension fewer.
                chunking = chunking[: len(variables[name]["dims"])]
            if readable and isinstance(chunking, list) and variables[name].get("chunks") != chunking:
                out.append(f"{name}.chunks: cubeforge={variables[name].get('chunks')} hdf5={chunking}")
    return out


#: Known differences, each a limitation stated in the issue's closing note (strict: a fix makes the
#: case pass and the entry must go).
KNOWN_DIFFERENCES = {
}


def convert_cases():
    for (rel, group), case_id in zip(CASES, IDS):
        reason = KNOWN_DIFFERENCES.get((rel, group))
        marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
        yield pytest.param(rel, group, id=case_id, marks=marks)


@pytest.mark.parametrize(("rel", "group"), list(convert_cases()))
def test_convert_corpus_file_equals_xarray(cubeforge, tmp_path, rel, group):
    path = REAL_DATA / rel
    dst = tmp_path / "cube.zarr"
    absent, _why = MAY_BE_ABSENT.get((rel, group), (set(), ""))
    args = [path, dst] + (["--group", group] if group else [])
    proc = cubeforge._run(("convert", *args, "--quiet"))
    line = refused_line(proc)
    if line is not None:
        feature = MAY_BE_REFUSED.get((rel, group))
        assert feature and feature.lower() in line.lower(), f"convert refused {rel}#{group}: {line}"
        assert str(path) in line or rel in line, f"the error does not name the file: {line}"
        assert not (dst / ".zgroup").exists() and not (dst / "zarr.json").exists()
        return
    cube = open_cube(dst)
    mismatches = []
    for engine in engines(path):
        ref, ref_values = reference(path, engine, group)
        if rel in JPEG_FILES:
            mismatches += jpeg_value_mismatches(cube, ref)
            cube_cmp, ref = cube.drop_vars("band_data"), ref.drop_vars("band_data")
        else:
            cube_cmp = cube
        mismatches += [f"[{engine}] {m}" for m in dataset_mismatches(cube_cmp, ref, absent, ref_values)]
    if path.suffix == ".tif":
        mismatches += georeferencing_mismatches(cube, path)
    assert not mismatches, report(f"cubeforge convert {rel}#{group}", mismatches)


def jpeg_value_mismatches(cube, ref) -> list[str]:
    """JPEG-decoded band values against GDAL's libjpeg: dims, dtype, and values within JPEG_TOLERANCE."""
    got, exp = cube["band_data"], ref["band_data"]
    if got.dims != exp.dims or got.shape != exp.shape or got.dtype != exp.dtype:
        return [f"band_data: cubeforge={got.dtype}{got.dims}{got.shape} xarray={exp.dtype}{exp.dims}{exp.shape}"]
    diff = np.abs(got.values.astype("float64") - exp.values.astype("float64"))
    if np.nanmax(diff) > JPEG_TOLERANCE or np.nanmean(diff) > 0.5:
        return [f"band_data: JPEG values differ by up to {np.nanmax(diff)} (mean {np.nanmean(diff):.3f})"]
    return []


def test_corpus_holds_the_files_the_tables_name():
    """Every exception in the tables names a case that exists, so that no table entry goes stale."""
    cases = set(CASES)
    for key in [*MAY_BE_ABSENT, *MAY_BE_REFUSED, *KNOWN_DIFFERENCES]:
        assert key in cases, f"table entry {key} names no corpus file or group"
    for rel in [*MANIFEST_VALUES, *JPEG_FILES]:
        assert (REAL_DATA / rel).is_file(), rel
    for (rel, group), (names, _why) in MAY_BE_ABSENT.items():
        ds, _ = reference(REAL_DATA / rel, "netcdf4", group)
        for name in names:
            assert name in ds.variables and ds[name].dtype.kind == "V", (
                f"{rel}#{group}: {name} is listed as a compound variable but xarray reads "
                f"{ds[name].dtype if name in ds.variables else 'nothing'}"
            )
