"""``cubeforge.open_dataset`` against xarray's reference engines on the awkward corners real
archives have: each file is written here by the tool that writes such files in the wild
(netCDF4-python, zarr-python through xarray, rasterio) and compared with
``xr.open_dataset(engine=...)``: values, dtypes, attributes, and the encoding keys named.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import netCDF4
import numpy as np
import pytest
import rasterio
import xarray as xr
from rasterio.transform import from_origin

import cubeforge
from pyapi_compare import (
    CF_ENCODING_KEYS,
    CHUNK_ENCODING_KEYS,
    STORAGE_ENCODING_KEYS,
    dataset_encoding_mismatches,
    encoding_mismatches,
    fail_on,
    identical_mismatches,
    reference,
)


def opened(path: Path, **kwargs) -> xr.Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return cubeforge.open_dataset(str(path), **kwargs).load()


def same_as_reference(path: Path, engine: str, **kwargs) -> None:
    want = reference(path, engine, **kwargs)
    got = opened(path, **kwargs)
    problems = identical_mismatches(got, want)
    problems += encoding_mismatches(got, want, CF_ENCODING_KEYS)
    problems += encoding_mismatches(got, want, CHUNK_ENCODING_KEYS + STORAGE_ENCODING_KEYS)
    problems += dataset_encoding_mismatches(got, want)
    fail_on(problems, f"open_dataset({path.name}, {kwargs}) vs engine={engine}")


def test_time_variables_that_are_not_dimension_coordinates_keep_their_calendar(tmp_path):
    """A second time variable (``valid_time``) in a 360-day calendar, and scalar ones with
    ``calendar="NOLEAP"``: decoded in that calendar (2000-02-30 exists), with ``units`` and
    ``calendar`` as written, and kept as attributes with ``decode_times=False``."""
    path = tmp_path / "calendars.nc"
    with netCDF4.Dataset(path, "w") as nc:
        nc.createDimension("time", 2)
        for name in ("time", "valid_time"):
            t = nc.createVariable(name, "i4", ("time",))
            t.units, t.calendar = "days since 2000-01-01", "360_day"
            t[:] = [0, 59]
        s = nc.createVariable("start", "f8", ())
        s.units, s.calendar = "days since 1673-01-01", "NOLEAP"
        s[...] = 1825.0
    same_as_reference(path, "netcdf4")
    same_as_reference(path, "netcdf4", decode_times=False)
    got = opened(path)
    assert str(got["valid_time"].values[1]) == "2000-02-30 00:00:00"
    assert got["start"].encoding["calendar"] == "NOLEAP"
    assert got["start"].encoding["units"] == "days since 1673-01-01"


def test_compressed_chunked_and_contiguous_netcdf4_encoding(tmp_path):
    """The netcdf4 engine's storage encoding: filters, chunk sizes (preferred chunks only for
    chunked variables), ``contiguous``, ``original_shape`` and ``source``, so that writing
    the dataset back keeps the file's layout."""
    path = tmp_path / "layout.nc"
    with netCDF4.Dataset(path, "w") as nc:
        nc.createDimension("t", None)
        nc.createDimension("x", 5)
        z = nc.createVariable("z", "f4", ("t", "x"), zlib=True, complevel=7, shuffle=True,
                              fletcher32=True, chunksizes=(2, 5))
        z[0:4, :] = np.arange(20, dtype="f4").reshape(4, 5)
        c = nc.createVariable("c", "i2", ("x",), contiguous=True)
        c[:] = np.arange(5)
        s = nc.createVariable("s", "f8", ("t",), zlib=True, complevel=1, chunksizes=(1,))
        s[0:4] = [1.0, 2.0, np.nan, 4.0]
    same_as_reference(path, "netcdf4")
    got = opened(path)
    assert got["z"].encoding["zlib"] and got["z"].encoding["complevel"] == 7
    assert got["z"].encoding["chunksizes"] == (2, 5) and not got["z"].encoding["contiguous"]
    assert got["c"].encoding["contiguous"] and "preferred_chunks" not in got["c"].encoding
    assert got.encoding["unlimited_dims"] == {"t"}


def test_an_empty_unlimited_dimension(tmp_path):
    for fmt in ("NETCDF3_CLASSIC", "NETCDF4"):
        path = tmp_path / f"empty-{fmt}.nc"
        with netCDF4.Dataset(path, "w", format=fmt) as nc:
            nc.createDimension("time", None)
            nc.createDimension("x", 3)
            nc.createVariable("time", "f8", ("time",)).units = "hours since 2000-01-01"
            nc.createVariable("v", "f4", ("time", "x"))
        same_as_reference(path, "netcdf4")
        assert opened(path).sizes["time"] == 0


def test_non_finite_attributes(tmp_path):
    """NaN and infinite attributes are floats (the reader spells them as strings inside)."""
    path = tmp_path / "nonfinite.nc"
    with netCDF4.Dataset(path, "w") as nc:
        nc.createDimension("x", 2)
        v = nc.createVariable("v", "f4", ("x",))
        v.valid_min = np.float32(np.nan)
        v.actual_range = np.array([np.nan, 1.0])
        v.comment = "text"
        v[:] = [1.0, 2.0]
        nc.lim = -np.inf
    same_as_reference(path, "netcdf4")
    got = opened(path)
    assert np.isnan(got["v"].attrs["valid_min"]) and got.attrs["lim"] == -np.inf


def test_zarr_attributes_with_python_nan_tokens_open(tmp_path):
    """zarr-python writes a NaN attribute as the bare token ``NaN`` (not JSON): the store opens
    and its values are the zarr engine's (the attribute reads as the string ``"NaN"``)."""
    path = tmp_path / "nan-attrs.zarr"
    ds = xr.Dataset({"v": ("x", np.array([1.0, np.nan]))})
    ds["v"].attrs["valid_max"] = np.nan
    ds.to_zarr(path, zarr_format=2, encoding={"v": {"missing_value": np.nan, "_FillValue": None}})
    text = (path / ".zmetadata").read_text()
    assert "NaN" in text.replace('"NaN"', ""), "zarr-python no longer writes bare NaN"
    want = reference(path, "zarr")
    got = opened(path)
    np.testing.assert_array_equal(got["v"].values, want["v"].values)
    assert got["v"].dtype == want["v"].dtype
    assert got["v"].attrs["valid_max"] == "NaN"


def test_float64_geotiff_stays_float64(tmp_path):
    path = tmp_path / "f8.tif"
    with rasterio.open(path, "w", driver="GTiff", width=3, height=2, count=1, dtype="float64",
                       nodata=1e20, crs="EPSG:4326", transform=from_origin(0, 2, 1, 1)) as d:
        d.write(np.array([[[1e20, 1.123456789012345, 2.0], [3.0, 4.0, 1e20]]]))
    same_as_reference(path, "rasterio")
    got = opened(path)
    assert got["band_data"].dtype == np.float64
    assert got["band_data"].values[0, 0, 1] == 1.123456789012345
    assert np.isnan(got["band_data"].values[0, 0, 0])


def test_a_variable_named_like_a_dimension_it_is_not_the_coordinate_of(tmp_path):
    """netCDF-4 stores it as ``_nc4_non_coord_lat``; netCDF-C, and so xarray, call it ``lat``."""
    path = tmp_path / "noncoord.nc"
    with netCDF4.Dataset(path, "w") as nc:
        nc.createDimension("lat", 2)
        nc.createDimension("y", 3)
        nc.createVariable("lat", "f4", ("y", "lat"))[:] = np.arange(6, dtype="f4").reshape(3, 2)
    same_as_reference(path, "netcdf4")
    assert "lat" in opened(path).variables


def test_variables_cubeforge_cannot_read_are_named_in_a_warning(tmp_path):
    """Left out, but never silently: an enum variable (the others are read)."""
    path = tmp_path / "unreadable.nc"
    with netCDF4.Dataset(path, "w") as nc:
        nc.createDimension("x", 2)
        et = nc.createEnumType("u1", "flag_t", {"clear": 0, "cloudy": 1})
        nc.createVariable("cloud", et, ("x",))[:] = np.array([0, 1], "u1")
        nc.createVariable("ok", "f4", ("x",))[:] = 1.0
    with pytest.warns(cubeforge.UnreadableVariableWarning) as record:
        ds = cubeforge.open_dataset(str(path))
    message = str(record[0].message)
    assert "1 variable(s)" in message and "cloud (enum type" in message, message
    assert list(ds.data_vars) == ["ok"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cubeforge.open_dataset(str(path), drop_variables=["cloud"])


def test_character_arrays_and_strings(tmp_path):
    """Character arrays joined into strings (``char_dim_name`` in the encoding) or, with
    ``concat_characters=False``, one byte per element; variable-length strings as fixed-width
    text, as the netcdf4 engine gives them."""
    path = tmp_path / "text.nc"
    with netCDF4.Dataset(path, "w") as nc:
        nc.createDimension("n", 2)
        nc.createDimension("len", 3)
        nc.createVariable("c", "S1", ("n", "len"))[:] = netCDF4.stringtochar(np.array(["ab", "xyz"], "S3"))
        nc.createVariable("s", str, ("n",))[:] = np.array(["a", "bb"], object)
    same_as_reference(path, "netcdf4")
    same_as_reference(path, "netcdf4", concat_characters=False)
    assert opened(path)["s"].dtype == np.dtype("<U2")
    assert opened(path, concat_characters=False)["c"].dims == ("n", "len")


def test_64_bit_integer_fill_values_and_unsigned_false(tmp_path):
    """netCDF's default int64 and uint64 fills (-2**63 + 2, 2**64 - 2) are not float64 numbers:
    they mask exactly the stored fills, and no neighbour; ``_Unsigned = "false"`` makes unsigned
    bytes signed."""
    path = tmp_path / "ints.nc"
    with netCDF4.Dataset(path, "w") as nc:
        nc.createDimension("x", 3)
        for name, dtype, fill in (("u", "u8", np.uint64(2**64 - 2)), ("i", "i8", np.int64(-2**63 + 2))):
            v = nc.createVariable(name, dtype, ("x",), fill_value=fill)
            v.set_auto_maskandscale(False)
            v[:] = np.array([0, 5, fill], dtype)
        q = nc.createVariable("q", "u1", ("x",))
        q._Unsigned = "false"
        q.set_auto_maskandscale(False)
        q[:] = np.array([1, 255, 128], "u1")
    same_as_reference(path, "netcdf4")
    same_as_reference(path, "netcdf4", mask_and_scale=False)
    got = opened(path)
    np.testing.assert_array_equal(got["u"].values, [0.0, 5.0, np.nan])
    np.testing.assert_array_equal(got["q"].values, np.array([1, -1, -128], "i1"))


def test_times_cubeforge_does_not_decode_are_decoded_by_xarray(tmp_path):
    """Months since a date in a 360-day calendar: cubeforge reads the values as stored, with
    their ``units`` and ``calendar``, and xarray decodes them as its reference engines do (and
    leaves them alone with ``decode_times=False``); in NetCDF and in Zarr."""
    nc_path = tmp_path / "months.nc"
    with netCDF4.Dataset(nc_path, "w") as nc:
        nc.createDimension("time", 3)
        t = nc.createVariable("time", "i4", ("time",))
        t.units, t.calendar = "months since 2000-01-01", "360_day"
        t[:] = [0, 13, 25]
        nc.createVariable("v", "f4", ("time",))[:] = [1.0, 2.0, 3.0]
    zarr_path = tmp_path / "months.zarr"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        xr.open_dataset(nc_path, decode_times=False).to_zarr(zarr_path, zarr_format=2)
    for path, engine in ((nc_path, "netcdf4"), (zarr_path, "zarr")):
        same_as_reference(path, engine)
        same_as_reference(path, engine, decode_times=False)
        assert str(opened(path)["time"].values[1]) == "2001-02-01 00:00:00"
