"""Small inputs for test_python_api.py, each written by the reference library of its format:
Zarr v2/v3 by xarray + zarr-python, NetCDF classic / NetCDF-4 by netCDF4-python and xarray, GeoTIFF
by rasterio. Every writer returns the path it wrote."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

NT, NLAT, NLON = 24, 9, 11


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def grid_dataset(seed: int = 0, calendar: str = "standard", nt: int = NT, start: str = "2001-02-25") -> xr.Dataset:
    """A (time, lat, lon) dataset with NaNs, a packed-looking float variable, an integer mask,
    a 2-D static field and attributes (global and per variable)."""
    r = _rng(seed)
    if calendar in ("standard", "proleptic_gregorian", "gregorian"):
        time = pd.date_range(start, periods=nt, freq="D")
    else:
        time = xr.date_range(start, periods=nt, freq="D", calendar=calendar, use_cftime=True)
    lat = np.linspace(40.0, 20.0, NLAT, dtype="float32")  # descending, as many products
    lon = np.linspace(-10.0, 15.0, NLON)
    sst = r.normal(15, 4, size=(nt, NLAT, NLON)).astype("float32")
    sst[0, 0, :4] = np.nan
    sst[min(3, nt - 1)] = np.nan
    chl = r.lognormal(0, 1, size=(nt, NLAT, NLON)).round(2)
    chl[1, 2, 3] = np.nan
    chl[nt - 1, :, 0] = np.nan
    flag = r.integers(0, 4, size=(nt, NLAT, NLON)).astype("uint8")
    topo = r.normal(-3000, 800, size=(NLAT, NLON)).astype("float64")
    ds = xr.Dataset(
        {
            "sst": (("time", "lat", "lon"), sst, {"units": "degC", "long_name": "sea surface temperature"}),
            "chl": (("time", "lat", "lon"), chl, {"units": "mg m-3", "valid_min": 0.0}),
            "flag": (("time", "lat", "lon"), flag, {"flag_values": [0, 1, 2, 3], "comment": "ünïcode ok"}),
            "topo": (("lat", "lon"), topo, {"units": "m", "positive": "up"}),
        },
        coords={
            "time": ("time", time, {"standard_name": "time"}),
            "lat": ("lat", lat, {"units": "degrees_north", "standard_name": "latitude"}),
            "lon": ("lon", lon, {"units": "degrees_east", "standard_name": "longitude"}),
        },
        attrs={"title": "pyapi test grid", "Conventions": "CF-1.8", "version": 3, "ratio": 0.25,
               "history": "made by pyapi_inputs"},
    )
    return ds


def grid_encoding(calendar: str = "standard", zarr: bool = True) -> dict:
    """CF encodings: an int32 time with units/calendar, int16 packing of chl with _FillValue, a
    float32 _FillValue for sst, chunks for Zarr."""
    enc: dict = {
        "time": {"units": "days since 2001-01-01", "calendar": calendar, "dtype": "int32"},
        "chl": {"dtype": "int16", "scale_factor": 0.01, "add_offset": 20.0, "_FillValue": np.int16(-32768)},
        "sst": {"_FillValue": np.float32(-999.0)},
    }
    if zarr:
        enc["sst"]["chunks"] = (8, 5, 6)
        enc["chl"]["chunks"] = (8, 9, 11)
        enc["flag"] = {"chunks": (12, 9, 11)}
    return enc


def write_zarr(path: Path, zarr_format: int, calendar: str = "standard", seed: int = 0) -> Path:
    """The grid dataset written by ``xarray.Dataset.to_zarr`` (zarr-python) in ``zarr_format``."""
    ds = grid_dataset(seed, calendar)
    ds.to_zarr(path, zarr_format=zarr_format, encoding=grid_encoding(calendar), mode="w", consolidated=True)
    return path


def write_netcdf_xarray(path: Path, fmt: str = "NETCDF4", calendar: str = "standard", seed: int = 0,
                        start: str = "2001-02-25", nt: int = NT) -> Path:
    """The grid dataset written by ``xarray.Dataset.to_netcdf`` (netCDF4 engine) in ``fmt``."""
    ds = grid_dataset(seed, calendar, nt=nt, start=start)
    if fmt.startswith("NETCDF3"):
        ds["flag"] = ds["flag"].astype("int8")  # classic files have no unsigned bytes
    enc = grid_encoding(calendar, zarr=False)
    if fmt == "NETCDF4":
        enc["sst"].update(zlib=True, complevel=4, chunksizes=(8, 5, 6))
    ds.to_netcdf(path, format=fmt, engine="netcdf4", encoding=enc)
    return path


def write_netcdf_raw(path: Path, fmt: str) -> Path:
    """A file written with netCDF4-python directly: an unlimited time (hours since, standard
    calendar), an int16 variable packed with float32 scale/offset and _FillValue (raw values written
    without auto-scaling), a float32 variable with ``missing_value``, a scalar and a text attribute."""
    import netCDF4

    r = _rng(7)
    with netCDF4.Dataset(path, "w", format=fmt) as nc:
        nc.title, nc.institution = "raw netCDF4-python file", "nowhere"
        nc.createDimension("time", None)
        nc.createDimension("y", 7)
        nc.createDimension("x", 5)
        t = nc.createVariable("time", "f8", ("time",))
        t.units, t.calendar, t.standard_name = "hours since 1990-01-01 00:00:00", "standard", "time"
        y = nc.createVariable("y", "f4", ("y",))
        y.units = "km"
        y[:] = np.arange(7, dtype="f4") * 2.5
        x = nc.createVariable("x", "f8", ("x",))
        x[:] = np.arange(5) * 1.5 - 3
        tas = nc.createVariable("tas", "i2", ("time", "y", "x"), fill_value=np.int16(-32767))
        tas.scale_factor, tas.add_offset = np.float32(0.05), np.float32(273.15)
        tas.units, tas.long_name = "K", "air temperature"
        pr = nc.createVariable("pr", "f4", ("time", "y", "x"))
        pr.missing_value = np.float32(-1.0)
        pr.units = "mm"
        sc = nc.createVariable("scalar", "f8", ())
        sc.note = "a scalar"
        for v in (tas, pr):
            v.set_auto_maskandscale(False)
        for k in range(6):
            t[k] = 6.0 * k + 0.5
            raw = r.integers(-2000, 2000, size=(7, 5)).astype("i2")
            raw[k % 7, k % 5] = -32767
            tas[k] = raw
            p = r.gamma(1.0, 2.0, size=(7, 5)).astype("f4")
            p[0, k % 5] = -1.0
            pr[k] = p
        sc.assignValue(42.5)
    return path


def write_geotiff(path: Path) -> Path:
    """A tiled, deflate-compressed 3-band uint16 GeoTIFF (EPSG:32633, nodata 0) written by rasterio."""
    import rasterio
    from rasterio.transform import from_origin

    r = _rng(3)
    height, width = 40, 56
    data = r.integers(1, 60000, size=(3, height, width)).astype("uint16")
    data[:, :3, :5] = 0
    data[1, 20:, 40:] = 0
    profile = dict(
        driver="GTiff", width=width, height=height, count=3, dtype="uint16", nodata=0,
        crs="EPSG:32633", transform=from_origin(500000.0, 4650000.0, 30.0, 30.0),
        tiled=True, blockxsize=16, blockysize=16, compress="deflate",
    )
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
        dst.update_tags(AREA_OR_POINT="Area", source="pyapi test")
    return path


def write_time_series_files(folder: Path, n: int = 3, days: int = 5) -> list[Path]:
    """``n`` NetCDF-4 files of consecutive days (``days`` each), same grid, for joining along time."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k in range(n):
        start = (pd.Timestamp("2010-01-01") + pd.Timedelta(days=days * k)).strftime("%Y-%m-%d")
        ds = grid_dataset(seed=10 + k, nt=days, start=start)[["sst", "chl"]]
        p = folder / f"part_{k:02d}.nc"
        enc = {"time": {"units": "days since 2010-01-01", "calendar": "standard", "dtype": "int32"},
               "chl": {"dtype": "int16", "scale_factor": 0.01, "add_offset": 20.0, "_FillValue": np.int16(-32768)}}
        ds.to_netcdf(p, format="NETCDF4", engine="netcdf4", encoding=enc)
        paths.append(p)
    return paths
