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
from typing import Any, Iterable

import numpy as np
import xarray as xr
from xarray.backends import BackendArray, BackendEntrypoint
from xarray.backends.common import AbstractDataStore
from xarray.backends.store import StoreBackendEntrypoint
from xarray.core import indexing

from . import _native


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
    fills = [_number(f) for f in coding["fill_values"]]
    if coding["unsigned"]:
        attrs["_Unsigned"] = "true"
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
        # rioxarray decodes as xarray does with float32 packing attributes: small integers
        # to float32, larger ones to float64.
        float_type = np.float32
    for key in ("scale_factor", "add_offset"):
        if coding[key] is not None:
            value = _number(coding[key])
            attrs[key] = float_type(value) if float_type is np.float32 else value
    if fmt == "geotiff" and coding["kind"] == "numeric" and v["dims"] and v["name"] not in v["dims"]:
        attrs.setdefault("scale_factor", np.float32(1.0))
        attrs.setdefault("add_offset", np.float32(0.0))
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


class CubeforgeStore(AbstractDataStore):
    """An opened input, as xarray's data stores present one."""

    def __init__(self, reader: Any) -> None:
        self.reader = reader
        self.doc = json.loads(reader.describe())

    def get_dimensions(self) -> dict[str, int]:
        return dict(self.doc["dims"])

    def get_attrs(self) -> dict[str, Any]:
        return dict(self.doc["attrs"])

    def get_encoding(self) -> dict[str, Any]:
        return {}

    def get_variables(self) -> dict[str, xr.Variable]:
        out: dict[str, xr.Variable] = {}
        for v in self.doc["variables"]:
            array = CubeforgeArray(self.reader, v["name"], tuple(v["shape"]), np.dtype(v["dtype"]))
            fmt = self.doc["format"]
            attrs = dict(v["attrs"])
            attrs.update(_coding_attrs(v, fmt))
            chunks = tuple(int(c) for c in v["chunks"])
            if fmt == "geotiff":
                # rioxarray reads a raster band by band.
                chunks = tuple(1 if d == "band" else c for d, c in zip(v["dims"], chunks))
            encoding = {"chunks": chunks,
                        "preferred_chunks": dict(zip(v["dims"], chunks))}
            if fmt == "geotiff" and "grid_mapping" in attrs:
                # rioxarray keeps the grid mapping in the encoding, its variable a coordinate.
                encoding["grid_mapping"] = attrs.pop("grid_mapping")
            out[v["name"]] = xr.Variable(
                v["dims"], indexing.LazilyIndexedArray(array), attrs, encoding
            )
        for t in self.doc["texts"]:
            encoding = {"chunks": tuple(t["chunks"])}
            out[t["name"]] = xr.Variable(t["dims"], _text_values(t), dict(t["attrs"]), encoding)
        return out

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
        reader = _native.open(os.fspath(filename_or_obj), concat=concat, group=group or "",
                              bands=bands, time_from=time_from)
        store = CubeforgeStore(reader)
        ds = StoreBackendEntrypoint().open_dataset(
            store, mask_and_scale=mask_and_scale, decode_times=decode_times,
            concat_characters=concat_characters, decode_coords=decode_coords,
            drop_variables=drop_variables, use_cftime=use_cftime,
            decode_timedelta=decode_timedelta,
        )
        coords = [n for n in store.coordinate_names() if n in ds.data_vars]
        if coords:
            ds = ds.set_coords(coords)
        ds.encoding["source"] = store.doc["location"]
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
