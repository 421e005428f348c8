"""Comparisons for test_python_api.py: two Zarr stores file by file, and a dataset that
``cubeforge.open_dataset`` returns against the one xarray's reference engine returns."""

from __future__ import annotations

import json
import math
import re
import warnings
from pathlib import Path

import numpy as np
import xarray as xr

from sources_compare import _same_crs, _same_geotransform

#: Names of Zarr metadata documents (v2 and v3); every other file of a store is a chunk.
METADATA_NAMES = {".zattrs", ".zgroup", ".zarray", ".zmetadata", "zarr.json"}

#: Provenance attributes that carry the time a cube was written.
VOLATILE_ATTRS = ("cubeforge_created",)

#: Encoding keys docs/python.md promises: CF decoding ...
CF_ENCODING_KEYS = ("dtype", "_FillValue", "missing_value", "scale_factor", "add_offset", "units", "calendar", "_Unsigned")
#: ... and chunking.
CHUNK_ENCODING_KEYS = ("chunks", "preferred_chunks")
#: ... and how a file stores a variable, as the netcdf4 and rasterio engines describe it.
STORAGE_ENCODING_KEYS = ("chunksizes", "contiguous", "zlib", "shuffle", "complevel", "fletcher32", "szip",
                         "zstd", "bzip2", "blosc", "original_shape", "source", "char_dim_name", "rasterio_dtype")


def fail_on(problems: list[str], what: str) -> None:
    assert not problems, f"{what}: {len(problems)} problem(s)\n" + "\n".join(problems)


def store_files(root: Path) -> list[str]:
    """Relative paths of every file below ``root``, sorted."""
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def _blank(data: bytes, keys: tuple[str, ...]) -> bytes:
    """``data`` with the string value of every ``"key": "..."`` pair of ``keys`` emptied."""
    for key in keys:
        data = re.sub(rb'("' + re.escape(key.encode()) + rb'"\s*:\s*)"[^"]*"', rb'\1""', data)
    return data


def _drop(doc, keys: tuple[str, ...]):
    if isinstance(doc, dict):
        return {k: _drop(v, keys) for k, v in doc.items() if k not in keys}
    if isinstance(doc, list):
        return [_drop(v, keys) for v in doc]
    return doc


def store_differences(got: Path, want: Path, volatile: tuple[str, ...] = VOLATILE_ATTRS) -> list[str]:
    """Every difference between the store ``got`` (Python) and ``want`` (CLI): files only in one of
    them, chunk files whose bytes differ, and metadata documents whose bytes differ once the values
    of the ``volatile`` keys are emptied on both sides (shown as a JSON difference where possible)."""
    out = []
    a, b = store_files(got), store_files(want)
    for name in sorted(set(a) - set(b)):
        out.append(f"{name}: only in the Python store")
    for name in sorted(set(b) - set(a)):
        out.append(f"{name}: only in the CLI store")
    for name in sorted(set(a) & set(b)):
        ga, wb = (got / name).read_bytes(), (want / name).read_bytes()
        if name.rsplit("/", 1)[-1] in METADATA_NAMES:
            if _blank(ga, volatile) == _blank(wb, volatile):
                continue
            try:
                ja, jb = _drop(json.loads(ga), volatile), _drop(json.loads(wb), volatile)
            except ValueError:
                out.append(f"{name}: metadata bytes differ (not JSON)")
                continue
            if ja == jb:
                out.append(f"{name}: same JSON (without {volatile}) but different bytes")
            else:
                out.append(f"{name}: metadata differs: python={_short(ja)} cli={_short(jb)}")
        elif ga != wb:
            out.append(f"{name}: chunk bytes differ ({len(ga)} vs {len(wb)} bytes)")
    return out


def _short(doc, n: int = 600) -> str:
    text = json.dumps(doc, sort_keys=True)
    return text if len(text) <= n else text[:n] + "..."


def same_encoding_value(key: str, got, want) -> bool:
    """Whether the encoding value ``got`` (cubeforge) equals the reference engine's ``want``: dtypes
    as dtypes, chunks as tuples / dicts, text as text, numbers by value in the reference's dtype
    (NaN equals NaN)."""
    if key == "dtype":
        try:
            return np.dtype(got) == np.dtype(want)
        except TypeError:
            return False
    if key == "chunks":
        return got is not None and tuple(got) == tuple(want)
    if key == "preferred_chunks":
        return isinstance(got, dict) and dict(got) == dict(want)
    if isinstance(want, str) or isinstance(got, str):
        return got == want
    w = np.asarray(want)
    try:
        g = np.asarray(got).astype(w.dtype)
    except (TypeError, ValueError, OverflowError):
        return False
    if g.shape != w.shape:
        return False
    return bool(np.array_equal(g, w, equal_nan=w.dtype.kind in "fc"))


def encoding_mismatches(got: xr.Dataset, want: xr.Dataset, keys: tuple[str, ...], extra_ok: bool = False) -> list[str]:
    """Disagreements of ``keys`` of every variable's encoding: a key the reference has must be there
    with the same value, and (unless ``extra_ok``) a key the reference does not have must not be there."""
    out = []
    for name in sorted(map(str, want.variables)):
        if name not in got.variables:
            continue
        ge, we = got[name].encoding, want[name].encoding
        for key in keys:
            if key in we and we[key] is not None:
                if key not in ge:
                    out.append(f"{name}.encoding[{key!r}]: cubeforge=<absent> reference={we[key]!r}")
                elif not same_encoding_value(key, ge[key], we[key]):
                    out.append(f"{name}.encoding[{key!r}]: cubeforge={ge[key]!r} reference={we[key]!r}")
            elif key == "dtype" and ge.get(key) is not None and same_encoding_value(key, ge[key], got[name].dtype):
                continue  # xarray's CF decoding records every variable's own dtype: no effect on a write
            elif ge.get(key) is not None and not extra_ok:
                out.append(f"{name}.encoding[{key!r}]: cubeforge={ge[key]!r} reference=<absent>")
    return out


def dataset_encoding_mismatches(got: xr.Dataset, want: xr.Dataset) -> list[str]:
    """``source`` and ``unlimited_dims`` of the datasets' own encoding, where the reference has them."""
    return [
        f"ds.encoding[{key!r}]: cubeforge={got.encoding.get(key, '<absent>')!r} reference={want.encoding[key]!r}"
        for key in ("source", "unlimited_dims")
        if key in want.encoding and got.encoding.get(key) != want.encoding[key]
    ]


def dtype_mismatches(got: xr.Dataset, want: xr.Dataset) -> list[str]:
    return [
        f"{name}.dtype: cubeforge={got[name].dtype} reference={want[name].dtype}"
        for name in sorted(map(str, want.variables))
        if name in got.variables and got[name].dtype != want[name].dtype
    ]


def harmonise_georeferencing(got: xr.Dataset, want: xr.Dataset) -> tuple[xr.Dataset, list[str]]:
    """``got`` with the WKT texts and GeoTransform of its ``spatial_ref`` replaced by the reference's
    where they describe the same CRS / the same six numbers (two writers spell one WKT differently;
    the same convention as sources_compare.py), and the disagreements where they do not."""
    out: list[str] = []
    if "spatial_ref" not in got.variables or "spatial_ref" not in want.variables:
        return got, out
    got = got.copy()
    attrs = dict(got["spatial_ref"].attrs)
    for key, value in want["spatial_ref"].attrs.items():
        if key not in attrs:
            continue
        if key in ("crs_wkt", "spatial_ref"):
            if _same_crs(attrs[key], value):
                attrs[key] = value
            else:
                out.append(f"spatial_ref.attrs[{key!r}]: cubeforge={attrs[key]!r} reference={value!r}")
        elif key == "GeoTransform":
            if _same_geotransform(attrs[key], value):
                attrs[key] = value
            else:
                out.append(f"spatial_ref.attrs['GeoTransform']: cubeforge={attrs[key]!r} reference={value!r}")
        elif isinstance(value, float) and isinstance(attrs[key], float) and attrs[key] != value:
            # CF grid-mapping parameters pyproj derives: within a relative 1e-12 (sources_compare.py)
            if math.isclose(attrs[key], value, rel_tol=1e-12, abs_tol=0.0):
                attrs[key] = value
    got["spatial_ref"].attrs = attrs
    return got, out


def identical_mismatches(got: xr.Dataset, want: xr.Dataset) -> list[str]:
    """``xr.testing.assert_identical`` (values, dims, coords, attributes) plus the dtype of every
    variable, as a list of problems."""
    got, out = harmonise_georeferencing(got, want)
    out += dtype_mismatches(got, want)
    try:
        xr.testing.assert_identical(got, want)
    except AssertionError as err:
        out.append(str(err))
    return out


def reference(path: Path | str, engine: str, **kwargs) -> xr.Dataset:
    """xarray's reference engine on ``path``, loaded."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return xr.open_dataset(path, engine=engine, **kwargs).load()
