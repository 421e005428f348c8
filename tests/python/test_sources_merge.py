"""A recipe with two inputs on one grid, merged: ``cubeforge build`` against the same pipeline in xarray.

- ``oc``: daily NetCDF-4 files ``oc_YYYYMMDD.nc`` (float32 ``chl``, packed int16 ``sst``), written in
  an order that is not their time order, joined along ``time``;
- ``era``: one hourly reanalysis-like file with dimensions ``valid_time, latitude, longitude``,
  renamed to ``time, lat, lon`` and resampled to daily means (NaN skipped).

xarray: ``open_mfdataset(..., combine="nested", concat_dim="time")`` of the files in time order,
``rename``, ``resample(time="1D").mean()``, ``xr.merge(join="exact")``. Everything is compared exactly
(see sources_compare.py) except the daily means, which may differ by 2 float32 ulp (summation
order). The hourly values are chosen so that every daily sum is exact in float32 (multiples of
1/256 or 1/512 of small magnitude), so whether an implementation sums in float32 or float64 only the
final division rounds, and 2 ulp is a bound a correct implementation always meets. Their
attributes are not compared (xarray's ``keep_attrs`` rules for reductions are not part
of the contract). The cube may add ``time_bnds`` (each day's [start, end)), checked on its own.

Two inputs on different grids fail the merge: exit 2, one line naming the dimension and both inputs.
"""

from __future__ import annotations

import textwrap
import warnings
from pathlib import Path

import netCDF4
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from corpus import refused
from sources_compare import dataset_mismatches, open_cube, quiet_open, report

LAT = np.linspace(45.0, 40.0, 11, dtype="f4")  # descending, as in most archives
LON = np.linspace(-10.0, 0.0, 21, dtype="f4")
DAYS = pd.date_range("2022-03-01", periods=9, freq="D")
HOURLY = ("u10", "t2m")


def write_oc_day(path: Path, day: pd.Timestamp, seed: int) -> None:
    """One day of ocean colour: float32 ``chl`` (NaN fill, some NaN) and int16 ``sst`` packed with
    float32 scale/offset and a ``_FillValue``, chunked per day and deflated."""
    r = np.random.default_rng(seed)
    with netCDF4.Dataset(path, "w", format="NETCDF4") as nc:
        nc.title, nc.source = "ocean colour, daily", "test"
        nc.createDimension("time", None)
        nc.createDimension("lat", len(LAT))
        nc.createDimension("lon", len(LON))
        lat = nc.createVariable("lat", "f4", ("lat",))
        lat.units, lat[:] = "degrees_north", LAT
        lon = nc.createVariable("lon", "f4", ("lon",))
        lon.units, lon[:] = "degrees_east", LON
        t = nc.createVariable("time", "i4", ("time",))
        t.units, t.calendar, t.standard_name = "days since 1990-01-01", "standard", "time"
        t[:] = [(day - pd.Timestamp("1990-01-01")).days]
        shape = (1, len(LAT), len(LON))
        chl = nc.createVariable("chl", "f4", ("time", "lat", "lon"), zlib=True, shuffle=True, fill_value=np.float32(np.nan))
        chl.units, chl.long_name = "mg m-3", "chlorophyll-a"
        values = r.lognormal(-1, 1, size=shape).astype("f4")
        values[0, r.integers(0, len(LAT), 5), r.integers(0, len(LON), 5)] = np.nan
        chl[:] = values
        sst = nc.createVariable("sst", "i2", ("time", "lat", "lon"), zlib=True, fill_value=np.int16(-32768))
        sst.scale_factor, sst.add_offset, sst.units = np.float32(0.001), np.float32(12.0), "degC"
        sst.set_auto_maskandscale(False)
        raw = r.integers(-5000, 5000, size=shape).astype("i2")
        raw[0, 0, :4] = -32768
        sst[:] = raw
        nc.createVariable("depth", "f4", ("lat", "lon"))[:] = np.add.outer(LAT, LON)  # static: taken once


def write_era(path: Path, lat: np.ndarray = LAT) -> None:
    """Hourly ``u10`` (float32, some NaN hours) and packed int16 ``t2m`` over DAYS, on
    ``valid_time, latitude, longitude``, the way the CDS writes ERA5 NetCDF."""
    r = np.random.default_rng(99)
    hours = len(DAYS) * 24
    with netCDF4.Dataset(path, "w", format="NETCDF4") as nc:
        nc.Conventions = "CF-1.7"
        nc.createDimension("valid_time", hours)
        nc.createDimension("latitude", len(lat))
        nc.createDimension("longitude", len(LON))
        t = nc.createVariable("valid_time", "i8", ("valid_time",))
        t.units, t.calendar = "seconds since 1970-01-01", "proleptic_gregorian"
        t[:] = (DAYS[0] - pd.Timestamp("1970-01-01")) // pd.Timedelta("1s") + 3600 * np.arange(hours)
        nc.createVariable("latitude", "f4", ("latitude",))[:] = lat
        nc.createVariable("longitude", "f4", ("longitude",))[:] = LON
        u10 = nc.createVariable("u10", "f4", ("valid_time", "latitude", "longitude"), zlib=True, chunksizes=(24, 6, 11))
        u10.units = "m s**-1"
        # Multiples of 1/256 below 2**6: every sum of a day's values is exact in float32 (see the
        # module docstring), so float32 and float64 accumulation give the same sums.
        values = (np.round(r.normal(3, 4, size=(hours, len(lat), len(LON))) * 256) / 256).astype("f4")
        values[5:9, 2, 3] = np.nan  # some hours missing: skipped by the mean
        values[24:48, 0, 0] = np.nan  # a whole day missing: NaN mean
        u10[:] = values
        t2m = nc.createVariable("t2m", "i2", ("valid_time", "latitude", "longitude"), zlib=True, fill_value=np.int16(-32767))
        # A power-of-two scale: decoded values are exact in float32, and so are their daily sums.
        t2m.scale_factor, t2m.add_offset, t2m.units = np.float32(2.0**-9), np.float32(280.0), "K"
        t2m.set_auto_maskandscale(False)
        t2m[:] = r.integers(-20000, 20000, size=(hours, len(lat), len(LON))).astype("i2")


def write_inputs(root: Path, era_lat: np.ndarray = LAT) -> tuple[list[Path], Path]:
    """The daily files (written in a shuffled order, named by day) and the hourly file."""
    (root / "daily").mkdir(parents=True)
    (root / "era").mkdir()
    order = np.random.default_rng(1).permutation(len(DAYS))
    for k in order:
        write_oc_day(root / "daily" / f"oc_{DAYS[k]:%Y%m%d}.nc", DAYS[k], seed=int(k))
    write_era(root / "era" / "wind.nc", era_lat)
    return [root / "daily" / f"oc_{d:%Y%m%d}.nc" for d in DAYS], root / "era" / "wind.nc"


def write_recipe(root: Path) -> Path:
    recipe = root / "merge.yaml"
    recipe.write_text(
        textwrap.dedent(
            f"""\
            version: 1
            inputs:
              oc:
                url: "{root / 'daily' / 'oc_*.nc'}"
                concat: time
                operations: [{{keep: [chl, sst]}}]
              era:
                url: "{root / 'era' / 'wind.nc'}"
                operations:
                  - rename_dims: {{valid_time: time, latitude: lat, longitude: lon}}
                  - resample: {{dim: time, freq: 1D, how: mean}}
            output:
              chunks: {{time: 4, lat: 6, lon: 8}}
            """
        )
    )
    return recipe


def xarray_pipeline(daily: list[Path], era_path: Path) -> xr.Dataset:
    """The same pipeline with xarray, loaded."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        oc = xr.open_mfdataset(
            daily, combine="nested", concat_dim="time", data_vars="minimal", coords="minimal", compat="override"
        )[["chl", "sst"]]
        era = quiet_open(era_path, engine="netcdf4")
        era = era.rename({"valid_time": "time", "latitude": "lat", "longitude": "lon"})
        era = era.resample(time="1D").mean()
        return xr.merge([oc, era], join="exact").load()


def time_bnds_mismatches(cube: xr.Dataset) -> list[str]:
    """``time_bnds`` (if the cube has it): (time, 2), each day's start and the next day's start."""
    if "time_bnds" not in cube.variables:
        return []
    bnds = cube["time_bnds"]
    if bnds.dims[0] != "time" or bnds.shape != (cube.sizes["time"], 2):
        return [f"time_bnds: dims {bnds.dims} shape {bnds.shape}, expected (time, 2)"]
    start, end = bnds.values[:, 0], bnds.values[:, 1]
    days = cube["time"].values
    if not (np.array_equal(start, days) and np.array_equal(end, days + np.timedelta64(1, "D"))):
        return [f"time_bnds: {bnds.values[:2].tolist()}... is not [day, next day)"]
    return []


def test_build_merges_daily_files_and_resampled_hourly_file(cubeforge, tmp_path):
    daily, era_path = write_inputs(tmp_path)
    ref = xarray_pipeline(daily, era_path)
    assert list(ref["time"].values) == list(DAYS.values) and set(ref.data_vars) == {"chl", "sst", *HOURLY}
    assert ref["u10"].dtype == np.float32 and bool(np.isnan(ref["u10"].values[1, 0, 0]))
    assert not np.isnan(ref["u10"].values[0, 2, 3]), "a partly missing day is the mean of the rest"

    dst = tmp_path / "cube.zarr"
    cubeforge.run("build", write_recipe(tmp_path), "--output", dst, "--quiet")
    cube = open_cube(dst)
    mismatches = time_bnds_mismatches(cube)
    if "time_bnds" in cube.variables:
        extra = [d for d in cube["time_bnds"].dims if d != "time"]
        cube = cube.drop_vars("time_bnds").drop_dims(extra, errors="ignore")
        cube["time"].attrs.pop("bounds", None)
    # Daily means: within 2 float32 ulp, NaN where xarray has NaN.
    for name in HOURLY:
        if name not in cube.variables:
            continue
        got, exp = cube[name].values, ref[name].values
        if got.shape != exp.shape or got.dtype != exp.dtype:
            mismatches.append(f"{name}: cubeforge={got.dtype}{got.shape} xarray={exp.dtype}{exp.shape}")
            continue
        nan = np.isnan(exp)
        if not np.array_equal(np.isnan(got), nan):
            mismatches.append(f"{name}: NaN at {np.argwhere(np.isnan(got) != nan)[:3].tolist()}... differ from xarray's")
            continue
        try:
            np.testing.assert_array_max_ulp(got[~nan], exp[~nan], maxulp=2)
        except AssertionError as err:
            mismatches.append(f"{name}: daily means beyond 2 ulp: {str(err).strip().splitlines()[0]}")
            continue
        ref[name] = ref[name].copy(data=got)  # within tolerance: compare the rest exactly below
    mismatches += dataset_mismatches(cube, ref, free_attrs=HOURLY)
    assert not mismatches, report("cubeforge build of the two-input recipe", mismatches)


def test_inputs_on_different_grids_fail_the_merge(cubeforge, tmp_path):
    shifted = LAT + np.float32(0.25)  # same size, other latitudes
    write_inputs(tmp_path, era_lat=shifted)
    dst = tmp_path / "cube.zarr"
    with pytest.raises(ValueError):  # xarray refuses the same merge
        daily = sorted((tmp_path / "daily").glob("oc_*.nc"))
        xarray_pipeline(daily, tmp_path / "era" / "wind.nc")
    refused(
        cubeforge.binary,
        ["build", write_recipe(tmp_path), "--output", dst, "--quiet"],
        expect=["lat", "oc", "era"],
        keep=[tmp_path / "daily", tmp_path / "era"],
        dest=[dst],
    )
