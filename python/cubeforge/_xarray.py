"""The xarray backend: ``xr.open_dataset(path, engine="cubeforge")`` and
:func:`cubeforge.open_dataset`.

Variables are lazy: indexing one reads only the chunks it needs, fetched and decoded by
cubeforge's readers (Zarr, NetCDF classic and NetCDF-4/HDF5, GeoTIFF) on all cores. The reader
presents stored values with the attributes the reference engine presents, and xarray's own CF
decoding runs on them, so the dataset is the one xarray gives with its reference engine.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from typing import Any, Iterable

import numpy as np
import xarray as xr
from xarray.backends import BackendArray, BackendEntrypoint
from xarray.backends.common import AbstractDataStore
from xarray.backends.store import StoreBackendEntrypoint
from xarray.core import indexing

from . import _native


class UnreadableVariableWarning(UserWarning):
    """A variable of the input that cubeforge cannot read (an unsupported type, codec or time
    encoding) was left out of the dataset; the message names each and why."""


def _number(v: Any) -> float:
    """A number of the description: JSON numbers, and NaN or infinities as Rust writes them
    (``"NaN"``, ``"inf"``, ``"-inf"``), which ``float`` reads."""
    return float(v)


class CubeforgeArray(BackendArray):
    """One variable's stored values, read region by region."""

    def __init__(self, reader: Any, name: str, shape: tuple[int, ...], dtype: np.dtype) -> None:
        self.reader = reader
        self.name = name
        self.shape = shape
        self.dtype = dtype

    def __getitem__(self, key: indexing.ExplicitIndexer) -> np.ndarray:
        return indexing.explicit_indexing_adapter(
            key, self.shape, indexing.IndexingSupport.BASIC, self._getitem
        )

    def _getitem(self, key: tuple) -> np.ndarray:
        start, count, post = [], [], []
        for k, n in zip(key, self.shape):
            if isinstance(k, slice):
                r = range(*k.indices(n))
                if len(r) == 0:
                    start.append(0)
                    count.append(0)
                    post.append(slice(None))
                    continue
                lo, hi = min(r), max(r) + 1
                start.append(lo)
                count.append(hi - lo)
                stop = r[-1] - lo + (1 if r.step > 0 else -1)
                post.append(slice(r[0] - lo, None if stop < 0 else stop, r.step))
            else:
                k = int(k)
                k = k + n if k < 0 else k
                start.append(k)
                count.append(1)
                post.append(0)
        flat = self.reader.read(self.name, start, count)
        out = np.asarray(flat).reshape(count)
        return out[tuple(post)] if post else out


def _coding_attrs(v: dict, fmt: str) -> dict:
    """The coding attributes of a described variable, typed as the reference engines type them:
    fill values in the stored type, packing in the decoded float type (rioxarray: Python
    floats, and always a scale and an offset for rasters)."""
    coding = v["coding"]
    stored = np.dtype(v["dtype"])
    attrs: dict[str, Any] = {}
    fills: list[Any] = [_number(f) for f in coding["fill_values"]]
    written = coding.get("written") or {}
    if stored.kind in "iu":
        # Integer fill values as written: 64-bit ones do not survive the trip through float.
        exact = []
        for key in ("_FillValue", "missing_value"):
            w = written.get(key)
            for x in (w if isinstance(w, list) else [w]):
                if isinstance(x, int) and not isinstance(x, bool) and x not in exact:
                    exact.append(x)
        if exact and len(exact) == len(fills):
            fills = exact
    if coding["unsigned"]:
        attrs["_Unsigned"] = "true"
    elif isinstance(written.get("_Unsigned"), str) and stored.kind in "iu":
        attrs["_Unsigned"] = written["_Unsigned"]  # "false": xarray reads unsigned bytes as signed
    if fills and coding.get("missing_value_only"):
        values = np.array(fills).astype(stored)
        attrs["missing_value"] = values[0] if len(values) == 1 else values
    elif fills:
        attrs["_FillValue"] = np.array(fills[0]).astype(stored)[()]
        if len(fills) > 1:
            rest = np.array(fills[1:]).astype(stored)
            attrs["missing_value"] = rest[0] if len(rest) == 1 else rest
    float_type = np.float64
    if coding["kind"] == "numeric" and coding["time"].get("decoded") == "float32":
        float_type = np.float32
    if fmt == "geotiff":
        # rioxarray decodes a band to the stored type promoted with float32 (small integers and
        # float32 to float32, the rest to float64); packing attributes of that type make
        # xarray's decoding choose the same (its encoding then gets Python floats back).
        float_type = np.float32 if np.promote_types(stored, np.float32) == np.float32 else np.float64
    for key in ("scale_factor", "add_offset"):
        if coding[key] is not None:
            value = _number(coding[key])
            attrs[key] = float_type(value) if float_type is np.float32 else value
    if fmt == "geotiff" and coding["kind"] == "numeric" and v["dims"] and v["name"] not in v["dims"]:
        attrs.setdefault("scale_factor", float_type(1.0))
        attrs.setdefault("add_offset", float_type(0.0))
    if coding["kind"] in ("time", "timedelta"):
        t = coding["time"]
        if t.get("units") is not None:
            attrs["units"] = t["units"]
        if t.get("calendar") is not None:
            attrs["calendar"] = t["calendar"]
        if coding["kind"] == "timedelta" and t.get("dtype"):
            attrs.setdefault("dtype", t["dtype"])
    return attrs


def _text_values(t: dict) -> np.ndarray:
    shape = tuple(t["shape"])
    if t["dtype"] == "str":
        return np.array(t["values"], dtype=object).reshape(shape)
    width = int(t["dtype"][2:])
    return np.array([bytes(x) for x in t["values"]], dtype=f"S{width}").reshape(shape)


_NON_FINITE = {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}


def _attr_value(value: Any) -> Any:
    """A NetCDF attribute as the netcdf4 engine gives it: the reader writes non-finite floats
    as the strings ``"NaN"``, ``"Infinity"``, ``"-Infinity"`` (JSON has no such numbers);
    they are floats again here, in lists too."""
    if isinstance(value, str):
        return _NON_FINITE.get(value, value)
    if isinstance(value, list) and any(isinstance(x, str) and x in _NON_FINITE for x in value) \
            and all(isinstance(x, (int, float)) or x in _NON_FINITE for x in value):
        return np.array([_NON_FINITE.get(x, x) if isinstance(x, str) else x for x in value], dtype=float)
    return value


def _attrs(attrs: dict[str, Any], fmt: str) -> dict[str, Any]:
    if fmt not in ("netcdf3", "netcdf4"):
        return dict(attrs)
    return {k: _attr_value(v) for k, v in attrs.items()}


_BLOSC = {"blosclz": "blosc_lz", "lz4": "blosc_lz4", "lz4hc": "blosc_lz4hc", "snappy": "blosc_snappy",
          "zlib": "blosc_zlib", "zstd": "blosc_zstd"}


def _level(text: str, key: str) -> int | None:
    """The integer after ``key=`` in a filter's description (``deflate(level=4)``)."""
    m = re.search(rf"{key}=(\d+)", text)
    return int(m.group(1)) if m else None


def _netcdf4_filters(filters: list[str]) -> dict[str, Any]:
    """``netCDF4.Variable.filters()`` of a variable stored with ``filters`` (as cubeforge names
    them): what the netcdf4 engine puts in a variable's encoding."""
    out: dict[str, Any] = {"zlib": False, "szip": False, "zstd": False, "bzip2": False, "blosc": False,
                           "shuffle": False, "complevel": 0, "fletcher32": False}
    for f in filters:
        name = f.split("(", 1)[0]
        if name == "deflate":
            out["zlib"], out["complevel"] = True, _level(f, "level") or 0
        elif name == "zstd":
            out["zstd"], out["complevel"] = True, _level(f, "level") or 0
        elif name == "bzip2":
            out["bzip2"], out["complevel"] = True, _level(f, "blocksize") or 0
        elif name == "blosc":
            m = re.match(r"blosc\((\w+), clevel=(\d+)(, (bit)?shuffle)?\)", f)
            if m:
                shuffle = 2 if m.group(4) else (1 if m.group(3) else 0)
                out["blosc"] = {"compressor": _BLOSC.get(m.group(1), m.group(1)), "shuffle": shuffle}
                out["complevel"] = int(m.group(2))
        elif name in ("shuffle", "fletcher32", "szip"):
            out[name] = True
    return out


def _storage_encoding(v: dict, fmt: str, source: str | None) -> dict[str, Any]:
    """The storage part of a variable's encoding, as the reference engine for ``fmt`` sets it:
    chunks (Zarr), chunking and filters (netcdf4), the file (netcdf4, rasterio)."""
    dims = v["dims"]
    chunks = tuple(int(c) for c in v["chunks"])
    if fmt == "geotiff":
        # rioxarray reads a raster band by band and names no "chunks".
        # Its preferred chunks are the file's blocks (a strip's rows, or a tile).
        stored = v.get("stored_chunks") or chunks
        chunks = tuple(1 if d == "band" else int(c) for d, c in zip(dims, stored))
        out: dict[str, Any] = {"preferred_chunks": dict(zip(dims, chunks)), "rasterio_dtype": v["dtype"]}
    elif fmt in ("netcdf3", "netcdf4"):
        out = {}
        if fmt == "netcdf4":
            out.update(_netcdf4_filters(v.get("filters") or []))
            stored = v.get("stored_chunks")
            out["contiguous"] = stored is None
            out["chunksizes"] = None if stored is None else tuple(int(c) for c in stored)
            if stored is not None:
                out["preferred_chunks"] = dict(zip(dims, out["chunksizes"]))
        out["original_shape"] = tuple(v["shape"])
    else:
        out = {"chunks": chunks, "preferred_chunks": dict(zip(dims, chunks))}
    if source is not None and fmt != "zarr":
        out["source"] = source
    return out


def _text_encoding(t: dict, fmt: str, source: str | None) -> dict[str, Any]:
    """A text variable's encoding: as :func:`_storage_encoding` over the variable's dimensions
    in the file (a stacked character dimension included), and for stacked characters the
    ``char_dim_name`` and ``S1`` dtype xarray's character decoding records."""
    if fmt not in ("netcdf3", "netcdf4"):
        return {"chunks": tuple(t["chunks"])}
    dims, shape = list(t["dims"]), list(t["shape"])
    char_dim = t.get("char_dim")
    if char_dim:
        dims.append(char_dim)
        shape.append(int(t["dtype"][2:]) if t["dtype"].startswith("|S") else 1)
    stored = {"dims": dims, "shape": shape, "chunks": t["chunks"], "dtype": t["dtype"],
              "stored_chunks": t.get("stored_chunks"), "filters": t.get("filters") or []}
    out = _storage_encoding(stored, fmt, source)
    if char_dim:
        out["char_dim_name"] = char_dim
        out["dtype"] = np.dtype("S1")
    return out


class CubeforgeStore(AbstractDataStore):
    """An opened input, as xarray's data stores present one."""

    def __init__(self, reader: Any, source: str | None = None, concat_characters: bool = True) -> None:
        self.reader = reader
        self.doc = json.loads(reader.describe())
        #: The file's path, when one file was opened (the reference engines name it).
        self.source = source
        #: Whether character arrays are presented joined into strings (xarray's option).
        self.concat_characters = concat_characters

    def get_dimensions(self) -> dict[str, int]:
        return dict(self.doc["dims"])

    def get_attrs(self) -> dict[str, Any]:
        return _attrs(self.doc["attrs"], self.doc["format"])

    def get_encoding(self) -> dict[str, Any]:
        # The netcdf4 engine's: a NetCDF file's unlimited dimensions.
        unlimited = self.doc.get("unlimited_dims")
        return {} if unlimited is None else {"unlimited_dims": set(unlimited)}

    def get_variables(self) -> dict[str, xr.Variable]:
        out: dict[str, xr.Variable] = {}
        coords = set(self.coordinate_names())
        for v in self.doc["variables"]:
            array = CubeforgeArray(self.reader, v["name"], tuple(v["shape"]), np.dtype(v["dtype"]))
            fmt = self.doc["format"]
            attrs = _attrs(v["attrs"], fmt)
            if fmt == "geotiff" and v["name"] in coords:
                # rioxarray's coordinates (the rotated grid's xc, yc) are plain float64.
                out[v["name"]] = xr.Variable(v["dims"], indexing.LazilyIndexedArray(array), attrs)
                continue
            attrs.update(_coding_attrs(v, fmt))
            encoding = _storage_encoding(v, fmt, self.source)
            if fmt == "geotiff" and "grid_mapping" in attrs:
                # rioxarray keeps the grid mapping in the encoding, its variable a coordinate.
                encoding["grid_mapping"] = attrs.pop("grid_mapping")
            out[v["name"]] = xr.Variable(
                v["dims"], indexing.LazilyIndexedArray(array), attrs, encoding
            )
        for t in self.doc["texts"]:
            out[t["name"]] = self._text_variable(t)
        return out

    def _text_variable(self, t: dict) -> xr.Variable:
        fmt = self.doc["format"]
        netcdf = fmt in ("netcdf3", "netcdf4")
        dims, values = list(t["dims"]), _text_values(t)
        if t["dtype"] == "str" and netcdf:
            # The netcdf4 engine gives variable-length strings as fixed-width text, and only
            # that type as their encoding.
            values = values.astype(str) if values.size else values.astype("<U1")
            return xr.Variable(dims, values, _attrs(t["attrs"], fmt), {"dtype": values.dtype})
        encoding = _text_encoding(t, fmt, self.source)
        if t.get("char_dim") and not self.concat_characters:
            # As stored: one byte per element along the character dimension.
            width = values.dtype.itemsize
            values = np.frombuffer(values.tobytes(), dtype="S1").reshape(values.shape + (width,))
            dims.append(t["char_dim"])
            encoding.pop("char_dim_name", None)
        return xr.Variable(dims, values, _attrs(t["attrs"], fmt), encoding)

    def coordinate_names(self) -> list[str]:
        """Variables the reference engine makes coordinates: for rasters (rioxarray), the grid
        mapping (``spatial_ref``) named by other variables' ``grid_mapping``."""
        if self.doc["format"] != "geotiff":
            return []
        names = set()
        for v in self.doc["variables"]:
            gm = v["attrs"].get("grid_mapping")
            if isinstance(gm, str):
                names.update(gm.split())
        present = {v["name"] for v in self.doc["variables"]}
        # A rotated or sheared raster's pixel centres, which rioxarray makes coordinates.
        names.update(n for n in ("xc", "yc") if n in present)
        return sorted(n for n in names if n in present)

    def close(self) -> None:
        pass


class CubeforgeBackendEntrypoint(BackendEntrypoint):
    """xarray backend reading Zarr stores, NetCDF/HDF5 and GeoTIFF files with cubeforge."""

    description = "Zarr, NetCDF and GeoTIFF read by cubeforge's Rust readers, chunks decoded on all cores"
    url = "https://github.com/cubeforge/cubeforge/blob/main/docs/python.md"
    open_dataset_parameters = (
        "filename_or_obj", "mask_and_scale", "decode_times", "concat_characters",
        "decode_coords", "drop_variables", "use_cftime", "decode_timedelta",
        "concat", "group", "bands", "time_from",
    )

    def open_dataset(  # type: ignore[override]
        self,
        filename_or_obj: str | os.PathLike,
        *,
        mask_and_scale: bool = True,
        decode_times: bool = True,
        concat_characters: bool = True,
        decode_coords: bool | str = True,
        drop_variables: str | Iterable[str] | None = None,
        use_cftime: bool | None = None,
        decode_timedelta: bool | None = None,
        concat: str | None = None,
        group: str | None = None,
        bands: list[str] | None = None,
        time_from: str | None = None,
    ) -> xr.Dataset:
        path = os.fspath(filename_or_obj)
        reader = _native.open(path, concat=concat, group=group or "", bands=bands, time_from=time_from)
        one_file = concat is None and not any(c in path for c in "*?[")
        store = CubeforgeStore(reader, source=path if one_file else None,
                               concat_characters=concat_characters)
        ds = StoreBackendEntrypoint().open_dataset(
            store, mask_and_scale=mask_and_scale, decode_times=decode_times,
            concat_characters=concat_characters, decode_coords=decode_coords,
            drop_variables=drop_variables, use_cftime=use_cftime,
            decode_timedelta=decode_timedelta,
        )
        coords = [n for n in store.coordinate_names() if n in ds.data_vars]
        if coords:
            ds = ds.set_coords(coords)
        if store.doc["format"] == "geotiff":
            # rioxarray makes the coordinates and the grid mapping itself: no encoding.
            for name in ds.coords:
                ds[name].encoding = {}
            # Its packing attributes are Python floats (float32 ones chose the decoded type).
            for v in store.doc["variables"]:
                enc = ds[v["name"]].encoding if v["name"] in ds.data_vars else {}
                for key, default in (("scale_factor", 1.0), ("add_offset", 0.0)):
                    if key in enc:
                        given = v["coding"][key]
                        enc[key] = default if given is None else _number(given)
        ds.encoding["source"] = store.doc["location"]
        left_out = [(n, why) for n, why in store.doc["unreadable"]
                    if drop_variables is None or n not in ([drop_variables] if isinstance(drop_variables, str)
                                                           else list(drop_variables))]
        if left_out:
            # The reference engine may read these; never leave them out silently.
            warnings.warn(
                f"cubeforge: {len(left_out)} variable(s) of {store.doc['location']} cannot be read and "
                "are left out: " + "; ".join(f"{n} ({why})" for n, why in left_out),
                UnreadableVariableWarning, stacklevel=3)
        return ds

    def guess_can_open(self, filename_or_obj: Any) -> bool:
        try:
            path = os.fspath(filename_or_obj)
        except TypeError:
            return False
        return str(path).rstrip("/").endswith((".zarr", ".nc", ".nc4", ".h5", ".tif", ".tiff"))


def open_dataset(
    url_or_glob: str | os.PathLike,
    concat: str | None = None,
    group: str = "",
    bands: list[str] | None = None,
    time_from: str | None = None,
    chunks: Any = None,
    **kwargs: Any,
) -> xr.Dataset:
    """Open a Zarr store, a NetCDF/HDF5 or GeoTIFF file, or several files joined along
    ``concat``, as an ``xarray.Dataset`` read lazily by cubeforge.

    Args:
        url_or_glob: a path or URL (file://, s3://, gs://, az://, http(s)://), or a glob of files.
        concat: the dimension to join several files along (by its coordinate, or ``time_from``).
        group: the group of a Zarr store or NetCDF-4 file.
        bands: names for a raster's bands, one variable each (default ``band_data``).
        time_from: where a file's position along ``concat`` comes from without a coordinate
            (``pattern:FORMAT``, ``attribute:NAME``, ``metadata:ITEM``, ``tag:NAME``).
        chunks: as ``xarray.open_dataset`` (``{}`` for dask arrays on the stored chunks).
        **kwargs: ``mask_and_scale``, ``decode_times``, ``decode_timedelta``, ``use_cftime``,
            ``concat_characters``, ``decode_coords``, ``drop_variables``, as in xarray.

    The result equals ``xarray.open_dataset`` with the reference engine for the format
    (``zarr``, ``netcdf4``, ``rasterio``): values, dtypes, coordinates, attributes and the
    encoding of times and packed values.
    """
    return xr.open_dataset(
        os.fspath(url_or_glob), engine=CubeforgeBackendEntrypoint, chunks=chunks,
        concat=concat, group=group, bands=bands, time_from=time_from, **kwargs,
    )
