"""Small Zarr cubes with known values and a numpy/xarray reference of the ``cubeforge.Batches``
contract (docs/python.md, "Training batches"), for test_batches.py.

The reference follows the contract's words directly; it does not use xbatcher or cubeforge.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
import zarr

#: Default cube: sizes not multiples of the patches (8 x 12) nor of the chunks (10, 16, 16).
N_TIME, N_LAT, N_LON = 100, 30, 44
CHUNKS = {"time": 10, "lat": 16, "lon": 16}
START_DATE = "2000-01-01"

#: Split ranges with partial dates; 2000 is a leap year. Index ranges (end exclusive):
#: train 0..60 (Jan 1 - Feb 29), val 60..80 (Mar 1 - Mar 20), test 84..100 (Mar 25 - Apr 9);
#: 80..84 belongs to no split.
SPLITS = {
    "train": ("2000-01-01", "2000-02"),
    "val": ("2000-03", "2000-03-20"),
    "test": ("2000-03-25", "2000-04"),
}


def make_cube(path: Path, n_time: int = N_TIME, n_lat: int = N_LAT, n_lon: int = N_LON, seed: int = 0,
              chunks: dict[str, int] | None = None, extra: dict | None = None) -> Path:
    """Write a Zarr v2 cube (time, lat, lon) to ``path`` and return it.

    Variables (the first data variable, ``a``, has dims (time, lat, lon), so
    ``xr.open_zarr(path).dims`` is (time, lat, lon)):

    - ``a``: float32 ~ N(10, 3) with 5 % NaN;
    - ``c``: float32, smooth in time/space, a few NaN;
    - ``c_t``: float32 (lat, lon, time) = c + 1, stored with time last;
    - ``const``: float32 5.0 everywhere (std 0);
    - ``topo``: float32 (lat, lon), some NaN (broadcast along time);
    - ``topo_t``: float32 (lon, lat) = topo.T / 2, stored transposed;
    - ``uid``: float32 (time, lat, lon) = t * n_lat * n_lon + i * n_lon + j, exact in float32;
    - ``mask``: float32 (lat, lon) in {0, 1, 2, NaN}, valid fraction growing with lon;
    - ``mask3``: int8 (time, lat, lon) in {0, 1}, valid fraction growing with lon and time;
    - ``y``: float32 target with NaN whose density grows with lon.
    """
    chunks = dict(CHUNKS if chunks is None else chunks)
    rng = np.random.default_rng(seed)
    shape = (n_time, n_lat, n_lon)
    t = np.arange(n_time)[:, None, None]
    i = np.arange(n_lat)[None, :, None]
    j = np.arange(n_lon)[None, None, :]

    a = rng.normal(10.0, 3.0, shape).astype("f4")
    a[rng.random(shape) < 0.05] = np.nan
    c = (np.sin(t / 7.0) * 4.0 + np.cos(i / 5.0) * 2.0 + j * 0.25 + rng.normal(0, 0.5, shape)).astype("f4")
    c[rng.random(shape) < 0.02] = np.nan
    const = np.full(shape, 5.0, "f4")
    topo = (rng.normal(100.0, 40.0, (n_lat, n_lon))).astype("f4")
    topo[rng.random((n_lat, n_lon)) < 0.08] = np.nan
    uid = (t * n_lat * n_lon + i * n_lon + j).astype("f4")
    assert uid.max() < 2**24
    lonfrac = (np.arange(n_lon) / max(n_lon - 1, 1))[None, :]
    mask = np.where(rng.random((n_lat, n_lon)) < lonfrac, 1.0, 0.0).astype("f4")
    mask[rng.random((n_lat, n_lon)) < 0.05] = 2.0
    mask[rng.random((n_lat, n_lon)) < 0.05] = np.nan
    mask3 = (rng.random(shape) < (0.1 + 0.6 * lonfrac[None] + 0.2 * (t / max(n_time - 1, 1)))).astype("i1")
    y = (a.astype("f8") * 0.5 + c).astype("f4")
    y[rng.random(shape) < np.broadcast_to(lonfrac[None], shape)] = np.nan

    d3 = ("time", "lat", "lon")
    ds = xr.Dataset(
        {
            "a": (d3, a),
            "c": (d3, c),
            "c_t": (("lat", "lon", "time"), np.ascontiguousarray(c.transpose(1, 2, 0)) + np.float32(1)),
            "const": (d3, const),
            "mask": (("lat", "lon"), mask),
            "mask3": (d3, mask3),
            "topo": (("lat", "lon"), topo),
            "topo_t": (("lon", "lat"), np.ascontiguousarray(topo.T) * np.float32(0.5)),
            "uid": (d3, uid),
            "y": (d3, y),
        },
        coords={
            "time": pd.date_range(START_DATE, periods=n_time, freq="D"),
            "lat": np.linspace(-29.5, 29.5, n_lat),
            "lon": np.arange(n_lon) * 1.5,
        },
    )
    if extra:
        for name, var in extra.items():
            ds[name] = var
    encoding = {}
    for name, var in ds.data_vars.items():
        encoding[name] = {"chunks": tuple(min(chunks.get(d, var.sizes[d]), var.sizes[d]) for d in var.dims)}
    ds.to_zarr(path, mode="w", zarr_format=2, encoding=encoding, consolidated=True)
    return Path(path)


def overwrite_region(path: Path, var: str, region: dict[str, slice], fn) -> None:
    """Rewrite ``var[region] = fn(var[region])`` in the store's chunks only (no metadata is written)."""
    arr = zarr.open_array(str(Path(path) / var), mode="r+", zarr_format=2)
    dims = zarr.open_array(str(Path(path) / var), mode="r", zarr_format=2).attrs["_ARRAY_DIMENSIONS"]
    sel = tuple(region.get(d, slice(None)) for d in dims)
    arr[sel] = fn(arr[sel])


def axis_starts(size: int, length: int, stride: int, pad: bool) -> np.ndarray:
    """Starts ``0, s, 2s, ...`` along one dimension: whole patches only, or with ``pad`` until the
    last element is covered."""
    if pad:
        n = 1 + max(0, -(-(size - length) // stride))
    elif length > size:
        n = 0
    else:
        n = 1 + (size - length) // stride
    return np.arange(n, dtype=np.int64) * stride


class Reference:
    """The contract computed with numpy over a cube loaded whole with xarray."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.ds = xr.open_zarr(path).load()
        self.dims = list(self.ds.sizes)  # the cube's dimension order, as the contract defines it
        self.sizes = dict(self.ds.sizes)
        self._arrays: dict[tuple[str, tuple[str, ...]], np.ndarray] = {}

    # ---- geometry -------------------------------------------------------------------------------
    def sample_dims(self, patch: dict, window: dict) -> tuple[str, ...]:
        named = set(patch) | set(window)
        return tuple(d for d in self.dims if d in named)

    def split_range(self, split: tuple[str, str] | None, dim: str = "time") -> tuple[int, int]:
        """Index range ``[i0, i1)`` that ``ds.sel({dim: slice(*split)})`` selects."""
        if split is None:
            return 0, self.sizes[dim]
        sl = self.ds.indexes[dim].slice_indexer(split[0], split[1])
        i0, i1, step = sl.indices(self.sizes[dim])
        assert step == 1
        # cross-check with .sel
        sel = self.ds[dim].sel({dim: slice(*split)})
        assert len(sel) == i1 - i0
        return i0, i1

    def all_starts(self, sample_dims, lens: dict, strides: dict | None = None, pad: bool = False) -> np.ndarray:
        strides = {**lens, **(strides or {})}
        axes = [axis_starts(self.sizes[d], lens[d], strides[d], pad) for d in sample_dims]
        combos = list(itertools.product(*axes))
        return np.array(combos, dtype=np.int64).reshape(len(combos), len(sample_dims))

    def samples(self, sample_dims, lens: dict, strides=None, pad=False, split=None, split_dim="time",
                mask=None, min_valid=None, targets=()) -> np.ndarray:
        """The split's sample starts, row-major, after the split and ``min_valid`` rules."""
        starts = self.all_starts(sample_dims, lens, strides, pad)
        keep = np.ones(len(starts), bool)
        if split is not None:
            i0, i1 = self.split_range(split, split_dim)
            k = sample_dims.index(split_dim)
            keep &= (starts[:, k] >= i0) & (starts[:, k] + lens[split_dim] <= i1)
        if min_valid is not None:
            for n, s in enumerate(starts):
                if keep[n]:
                    keep[n] = self.valid_fraction(sample_dims, lens, s, mask, targets) >= min_valid
        return starts[keep]

    def valid_fraction(self, sample_dims, lens, start, mask, targets) -> float:
        if mask is not None:
            own = [d for d in sample_dims if d in self.ds[mask].dims]
            m = self.window(mask, sample_dims, lens, start, broadcast=False)
            valid = np.isfinite(m) & (m != 0)
            assert valid.size == int(np.prod([lens[d] for d in own]))
            return valid.sum() / valid.size
        vals = np.concatenate([self.window(t, sample_dims, lens, start).ravel() for t in targets])
        return np.isfinite(vals).sum() / vals.size

    # ---- content --------------------------------------------------------------------------------
    def _array(self, var: str, sample_dims) -> np.ndarray:
        """``var`` in float64 with axes in sample-dim order, size 1 where it lacks a sample dim."""
        key = (var, tuple(sample_dims))
        if key not in self._arrays:
            da = self.ds[var]
            extra = set(da.dims) - set(sample_dims)
            assert not extra, f"{var} has non-sample dims {extra}"
            present = [d for d in sample_dims if d in da.dims]
            vals = da.transpose(*present).values.astype("f8")
            shape = [self.sizes[d] if d in da.dims else 1 for d in sample_dims]
            self._arrays[key] = vals.reshape(shape)
        return self._arrays[key]

    def window(self, var, sample_dims, lens, start, broadcast=True) -> np.ndarray:
        """``var`` at one sample, float64, NaN outside the cube; broadcast to the sample's shape
        (or, without ``broadcast``, over the variable's own sample dims only)."""
        arr = self._array(var, sample_dims)
        out_shape, src, dst = [], [], []
        for k, d in enumerate(sample_dims):
            if arr.shape[k] == 1 and d not in self.ds[var].dims:
                out_shape.append(1)
                src.append(slice(0, 1))
                dst.append(slice(0, 1))
                continue
            s, n = int(start[k]), lens[d]
            e = min(s + n, arr.shape[k])
            out_shape.append(n)
            src.append(slice(s, e))
            dst.append(slice(0, e - s))
        out = np.full(out_shape, np.nan)
        out[tuple(dst)] = arr[tuple(src)]
        if broadcast:
            out = np.broadcast_to(out, [lens[d] for d in sample_dims])
        else:
            out = out.reshape([n for d, n in zip(sample_dims, out_shape) if d in self.ds[var].dims])
        return out

    def stats(self, feature: str, split=None, split_dim: str = "time") -> dict:
        """Population, NaN-aware statistics over the feature inside the split's index range."""
        da = self.ds[feature]
        if split_dim in da.dims:
            i0, i1 = self.split_range(split, split_dim)
            da = da.isel({split_dim: slice(i0, i1)})
        v = da.values.astype("f8")
        return {
            "mean": float(np.nanmean(v)),
            "std": float(np.nanstd(v, ddof=0)),
            "min": float(np.nanmin(v)),
            "max": float(np.nanmax(v)),
            "count": int(np.isfinite(v).sum()),
        }

    def x(self, features, sample_dims, lens, starts, stats=None, fill_nan=None) -> np.ndarray:
        """``(n, feature, *sample sizes)`` float32 reference batch for ``starts``."""
        out = np.empty((len(starts), len(features), *[lens[d] for d in sample_dims]), "f8")
        for n, s in enumerate(starts):
            for f, name in enumerate(features):
                w = self.window(name, sample_dims, lens, s)
                if stats is not None:
                    st = stats[name]
                    w = w - st["mean"]
                    if st["std"] != 0:
                        w = w / st["std"]
                out[n, f] = w
        if fill_nan is not None:
            out = np.where(np.isnan(out), fill_nan, out)
        return out.astype("f4")

    def y(self, targets, sample_dims, lens, starts) -> np.ndarray:
        return self.x(targets, sample_dims, lens, starts)

    def uid_start(self, uid_values: np.ndarray) -> np.ndarray:
        """Decode the ``uid`` feature value at a sample's first element into its (t, i, j) start."""
        u = np.asarray(uid_values).astype(np.int64)
        assert np.array_equal(u.astype("f4"), np.asarray(uid_values).astype("f4"))
        nl, nx = self.sizes["lat"], self.sizes["lon"]
        return np.stack([u // (nl * nx), (u // nx) % nl, u % nx], axis=-1)
