"""Compare a Zarr cube that ``cubeforge convert`` / ``build`` wrote from NetCDF, HDF5 or GeoTIFF sources
with what xarray (netCDF4 / h5netcdf engines) and rioxarray read from the same sources.

:func:`dataset_mismatches` returns one human-readable line per disagreement
(``<where>: cubeforge=<value> xarray=<value>``) so that a failing test lists every discrepancy of a
source at once; :func:`georeferencing_mismatches` does the same for a raster's CRS and transform
against rasterio.

Documented differences, and only these, are not compared:

- the attributes in :data:`IGNORED_ATTRS` (bookkeeping of the netCDF-C / HDF5 layer that xarray
  shows for some engines and that has no meaning in a Zarr store), and the cube's provenance
  attributes ``cubeforge_*``;
- the ``crs_wkt`` / ``spatial_ref`` texts of a raster's ``spatial_ref`` coordinate are compared as
  CRSs (``pyproj.CRS(a) == pyproj.CRS(b)``), not as strings (two writers spell one WKT differently),
  its ``GeoTransform`` as six numbers (relative 1e-9), and its other float attributes (CF
  grid-mapping parameters pyproj derives) within a relative 1e-12;
- a variable's ``grid_mapping``, which rioxarray (``decode_coords="all"``) moves into encoding and
  ``xr.open_zarr`` leaves in ``attrs``, is compared with the reference's encoding value (and the CRS
  it names through :func:`georeferencing_mismatches`);
- HDF5 datasets without dimension scales get ``phony_dim_N`` dimensions whose numbering differs
  between netCDF-C and h5netcdf: they are renamed ``phony_dim_<k>`` in order of first use (variables
  sorted by name) on both sides before comparing;
- text attributes holding bytes that are not UTF-8 are compared with those bytes as U+FFFD (what
  netCDF-C gives; h5netcdf gives surrogate escapes);
- text (``|S{n}``, ``<U{n}``, decoded ``str`` objects) is compared exactly: the same dtype and the
  same values of the same kind (bytes are not str);
- variables listed by a test as ``may_be_absent`` (compound types a cube does not hold) may be
  missing from the cube; if present they are compared like any other.
"""

from __future__ import annotations

import math
import subprocess
import warnings
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import xarray as xr

#: The shared corpus of third-party files (see its MANIFEST.md).
REAL_DATA = Path(__file__).resolve().parents[3] / "shared/data/real"

#: Attributes never compared, with the reason.
IGNORED_ATTRS = {
    "coordinates": "CF bookkeeping that xarray moves into encoding on one side and not always on the other",
    "_NCProperties": "netCDF-C provenance of the file, not of the cube",
    "_Netcdf4Dimid": "netCDF-C's internal dimension ids",
    "_Netcdf4Coordinates": "netCDF-C's internal dimension ids",
    "_nc3_strict": "netCDF-C's classic-model flag",
    "DIMENSION_LIST": "HDF5 dimension-scale references",
    "REFERENCE_LIST": "HDF5 dimension-scale references",
    "CLASS": "HDF5 dimension-scale marker",
    "NAME": "HDF5 dimension-scale marker",
}

#: Global attributes starting with this are cubeforge's provenance record (version, recipe hash,
#: inputs, creation time; see docs/recipes.md), which no source has.
PROVENANCE_PREFIX = "cubeforge_"

#: ``spatial_ref`` attributes compared as CRSs, not as text.
WKT_ATTRS = ("crs_wkt", "spatial_ref")

#: Relative tolerance of transform coefficients and GeoTransform numbers.
TRANSFORM_RTOL = 1e-9


def quiet_open(path: Path | str, **kwargs) -> xr.Dataset:
    """``xr.open_dataset(path, **kwargs)`` loaded into memory, without the readers' warnings."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return xr.open_dataset(path, **kwargs).load()


def open_cube(store: Path | str, group: str | None = None) -> xr.Dataset:
    """The Zarr cube at ``store`` as xarray decodes it, loaded into memory.

    A 0-d text array keeps the width its metadata declares (``|S64``): zarr-python reads a 0-d
    array as a NumPy scalar, which ``np.asarray`` narrows to its value's length (``b''`` becomes
    ``|S1``), and a cube written by xarray's own ``to_zarr`` reads back narrowed the same way."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lazy = xr.open_zarr(store, group=group, consolidated=None)
        declared = {name: v.dtype for name, v in lazy.variables.items()}
        ds = lazy.load()
    for name, v in ds.variables.items():
        want = declared[name]
        if v.ndim == 0 and want.kind in "SU" and v.dtype.kind == want.kind and v.dtype != want:
            ds[name] = v.astype(want)
    return ds


def convert(cubeforge, *args: str | Path) -> subprocess.CompletedProcess[str]:
    """``cubeforge convert ARGS... --quiet``; fails the test, showing stderr, unless it exits with 0."""
    return cubeforge.run("convert", *args, "--quiet")


def canonical_phony_dims(ds: xr.Dataset) -> xr.Dataset:
    """``ds`` with its ``phony_dim_*`` dimensions renamed ``phony_dim_<k>`` in order of first use."""
    order: list[str] = []
    for name in sorted(map(str, ds.variables)):
        for dim in ds[name].dims:
            if str(dim).startswith("phony_dim_") and dim not in order:
                order.append(str(dim))
    order += sorted(str(d) for d in ds.dims if str(d).startswith("phony_dim_") and d not in order)
    mapping = {old: f"cf_phony_{k}" for k, old in enumerate(order)}
    renamed = ds.rename_dims(mapping) if mapping else ds
    return renamed.rename_dims({f"cf_phony_{k}": f"phony_dim_{k}" for k in range(len(order))})


def _as_array(value: Any, dtype: np.dtype | None = None) -> np.ndarray:
    arr = np.asarray(value) if dtype is None else np.asarray(value, dtype=dtype)
    return arr.reshape(-1)


def same_attr(reported: Any, expected: Any, rtol: float = 0.0) -> bool:
    """Whether the cube's attribute value ``reported`` (JSON: int, float, str, list) equals the source's.

    A numpy value on the source side is compared in its own dtype (a float32 ``scale_factor`` read back
    from JSON as a double is cast to float32 first); a one-element array equals its scalar; NaN equals NaN.
    """
    if isinstance(expected, (np.ndarray, np.generic)) and np.asarray(expected).dtype.kind in "biufc":
        exp = _as_array(expected)
        try:
            rep = _as_array(reported, exp.dtype)
        except (TypeError, ValueError, OverflowError):
            return False
        if rep.shape != exp.shape:
            return False
        if exp.dtype.kind in "fc":
            if rtol:
                return bool(np.allclose(rep, exp, rtol=rtol, atol=0.0, equal_nan=True))
            return bool(np.array_equal(rep, exp, equal_nan=True))
        return bool(np.array_equal(rep, exp))
    if isinstance(expected, (bytes, np.bytes_)):
        expected = expected.decode("utf-8", "replace")
    if isinstance(expected, str):
        return isinstance(reported, str) and _utf8(reported) == _utf8(expected)
    if isinstance(expected, (list, tuple)):
        return isinstance(reported, (list, tuple)) and len(reported) == len(expected) and all(
            same_attr(r, e, rtol) for r, e in zip(reported, expected)
        )
    if isinstance(expected, float):
        if math.isnan(expected):
            return isinstance(reported, float) and math.isnan(reported)
        if rtol and isinstance(reported, (int, float)):
            return math.isclose(reported, expected, rel_tol=rtol, abs_tol=0.0)
    if isinstance(expected, np.ndarray) and expected.dtype.kind in "SUO":
        return list(map(str, expected.reshape(-1))) == list(map(str, _as_array(reported)))
    return reported == expected


def _utf8(text: str) -> str:
    """``text`` with undecodable bytes as U+FFFD: netCDF-C replaces them, h5py keeps them as surrogate
    escapes, so the two reference engines spell one attribute of non-UTF-8 bytes differently."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _same_crs(reported: Any, expected: Any) -> bool:
    import pyproj

    try:
        return pyproj.CRS.from_user_input(reported) == pyproj.CRS.from_user_input(expected)
    except pyproj.exceptions.CRSError:
        return False


def _same_geotransform(reported: Any, expected: Any) -> bool:
    try:
        rep = [float(v) for v in str(reported).split()]
        exp = [float(v) for v in str(expected).split()]
    except ValueError:
        return False
    scale = max(abs(v) for v in (exp[1], exp[2], exp[4], exp[5])) if len(exp) == 6 else 1.0
    return len(rep) == len(exp) == 6 and all(
        math.isclose(r, e, rel_tol=TRANSFORM_RTOL, abs_tol=TRANSFORM_RTOL * scale) for r, e in zip(rep, exp)
    )


def attrs_mismatches(where: str, reported: dict, expected: dict, grid_mapping: bool = False) -> list[str]:
    """Disagreements between the cube's attributes ``reported`` and the source's ``expected``."""
    out = []
    rep = {k: v for k, v in reported.items() if k not in IGNORED_ATTRS and not k.startswith(PROVENANCE_PREFIX)}
    exp = {k: v for k, v in expected.items() if k not in IGNORED_ATTRS}
    for key in sorted(set(rep) | set(exp)):
        if key not in rep or key not in exp:
            out.append(f"{where}.attrs[{key!r}]: cubeforge={rep.get(key, '<absent>')!r} xarray={exp.get(key, '<absent>')!r}")
            continue
        if grid_mapping and key in WKT_ATTRS:
            same = _same_crs(rep[key], exp[key])
        elif grid_mapping and key == "GeoTransform":
            same = _same_geotransform(rep[key], exp[key])
        else:
            same = same_attr(rep[key], exp[key], rtol=1e-12 if grid_mapping else 0.0)
        if not same:
            out.append(f"{where}.attrs[{key!r}]: cubeforge={rep[key]!r} xarray={exp[key]!r}")
    return out


def values_mismatch(where: str, reported: np.ndarray, expected: np.ndarray) -> str | None:
    """None if the decoded values are equal (NaN equals NaN, NaT equals NaT), else a one-line summary."""
    if reported.shape != expected.shape:
        return f"{where}.shape: cubeforge={reported.shape} xarray={expected.shape}"
    try:
        if expected.dtype.kind in "SU" or reported.dtype.kind in "SU":
            # Text: the same kind (bytes or str) and the same values, exactly.
            if reported.dtype.kind != expected.dtype.kind or reported.tolist() != expected.tolist():
                return f"{where}.values: cubeforge={reported.reshape(-1)[:5]!r} xarray={expected.reshape(-1)[:5]!r}"
            return None
        if expected.dtype.kind == "O" or reported.dtype.kind == "O":
            # cftime dates (non-standard calendars) and decoded strings: element by element, of the
            # same type (str is not bytes).
            equal = [type(r) is type(e) and r == e for r, e in zip(reported.reshape(-1), expected.reshape(-1))]
            if not all(equal):
                k = equal.index(False)
                return f"{where}.values[{k}]: cubeforge={reported.reshape(-1)[k]!r} xarray={expected.reshape(-1)[k]!r}"
            return None
        np.testing.assert_array_equal(reported, expected, strict=False)
    except AssertionError as err:
        lines = [line.strip() for line in str(err).splitlines() if line.strip()]
        return f"{where}.values: " + " | ".join(lines[1:6])
    return None


def dataset_mismatches(
    cube: xr.Dataset,
    ref: xr.Dataset,
    may_be_absent: Iterable[str] = (),
    ref_values: dict[str, np.ndarray] | None = None,
    free_attrs: Iterable[str] = (),
) -> list[str]:
    """Disagreements between the cube and xarray's view ``ref`` of the source: dims, the split into
    coordinates and data variables, global attributes and, per variable, dims, decoded dtype,
    attributes and decoded values.

    ``ref_values`` replaces xarray's values of some variables (where no reference reader in the test
    venv can decode them, e.g. an HDF5 filter without its plugin: then the MANIFEST's values or the
    array the test wrote). ``free_attrs`` names variables whose attributes have no xarray counterpart
    (a concat coordinate made from file names or tags): their attributes are not compared.
    """
    out: list[str] = []
    cube, ref = canonical_phony_dims(cube), canonical_phony_dims(ref)
    absent_ok = set(may_be_absent)
    ref_names = set(map(str, ref.variables))
    cube_names = set(map(str, cube.variables))
    for name in sorted(ref_names - cube_names - absent_ok):
        out.append(f"{name}: missing from the cube (xarray has it as {ref[name].dtype} {ref[name].dims})")
    for name in sorted(cube_names - ref_names):
        out.append(f"{name}: in the cube ({cube[name].dtype} {cube[name].dims}) but not in the source")
    kept = ref_names - (absent_ok - cube_names)
    used_dims = {d for name in kept for d in ref[name].dims} | (
        set(ref.dims) - {d for name in absent_ok for d in ref[name].dims if name in ref_names}
    )
    expected_sizes = {str(d): n for d, n in ref.sizes.items() if d in used_dims}
    if dict(cube.sizes) != expected_sizes:
        out.append(f"dims: cubeforge={dict(cube.sizes)} xarray={expected_sizes}")
    coords_ref = sorted(n for n in map(str, ref.coords) if n in kept)
    if sorted(map(str, cube.coords)) != coords_ref:
        out.append(f"coords: cubeforge={sorted(map(str, cube.coords))} xarray={coords_ref}")
    out += attrs_mismatches("<global>", cube.attrs, ref.attrs)
    for name in sorted(kept & cube_names):
        got, exp = cube[name].variable, ref[name].variable
        if got.dims != exp.dims:
            out.append(f"{name}.dims: cubeforge={got.dims} xarray={exp.dims}")
        if got.dtype != exp.dtype:
            out.append(f"{name}.dtype: cubeforge={got.dtype} xarray={exp.dtype}")
        if name not in free_attrs:
            expected_attrs = dict(exp.attrs)
            # The rasterio engine moves ``grid_mapping`` into encoding; xr.open_zarr leaves it an attribute.
            if "grid_mapping" not in expected_attrs and ref[name].encoding.get("grid_mapping") is not None:
                expected_attrs["grid_mapping"] = ref[name].encoding["grid_mapping"]
            out += attrs_mismatches(name, got.attrs, expected_attrs, grid_mapping=name == "spatial_ref")
        expected = np.asarray(ref_values[name]) if ref_values and name in ref_values else exp.values
        if (problem := values_mismatch(name, got.values, expected)) is not None:
            out.append(problem)
    return out


def georeferencing_mismatches(cube: xr.Dataset, tif: Path) -> list[str]:
    """The cube's CRS (``spatial_ref``'s ``crs_wkt``) and affine transform against rasterio's for ``tif``."""
    import pyproj
    import rasterio
    import rioxarray  # noqa: F401  (the ``.rio`` accessor)

    out: list[str] = []
    with rasterio.open(tif) as src:
        crs, transform = src.crs, src.transform
    wkt = cube["spatial_ref"].attrs.get("crs_wkt") if "spatial_ref" in cube.variables else None
    if crs is None:
        if wkt:
            out.append(f"crs: cubeforge={wkt!r} rasterio=None")
    elif not wkt or pyproj.CRS.from_wkt(wkt) != pyproj.CRS.from_wkt(crs.to_wkt()):
        out.append(f"crs: cubeforge={wkt!r} rasterio={crs.to_wkt()!r}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = cube.rio.transform()
    scale = max(abs(transform.a), abs(transform.b), abs(transform.d), abs(transform.e))
    for field, g, e in zip("abcdef", got[:6], transform[:6]):
        if not math.isclose(g, e, rel_tol=TRANSFORM_RTOL, abs_tol=TRANSFORM_RTOL * scale):
            out.append(f"transform.{field}: cubeforge={g!r} rasterio={e!r}")
    return out


def report(what: str, mismatches: list[str]) -> str:
    """The assertion message listing every mismatch of ``what``."""
    return f"{what}: {len(mismatches)} disagreement(s)\n" + "\n".join(mismatches)
