"""``cubeforge convert`` on NetCDF, HDF5 and GeoTIFF files written here by netCDF4-python, h5py /
h5netcdf and rasterio, each compared with what xarray (netCDF4 / h5netcdf engines) and rioxarray read.

The cases are those the corpus does not hold: packed and masked variables, ``_Unsigned``,
non-standard calendars, unlimited record dimensions, 0..360 longitudes and descending latitudes,
HDF5 filters netCDF-C 4.9 writes (zstd, blosc, bzip2), groups, many files joined along time (by
their time coordinate, by a date in their names, by a GDAL metadata item), and GeoTIFF layouts:
a multi-band tiled file with overviews, predictors 2 and 3, BigTIFF, ZSTD / LZW / PackBits,
strips, pixel-is-point, scale/offset and nodata, named bands, and GDAL's masks (internal, ``.msk``,
alpha). See sources_compare.py for what
is compared.
"""

from __future__ import annotations

import bz2
import json
from pathlib import Path

import netCDF4
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from sources_compare import convert, dataset_mismatches, georeferencing_mismatches, open_cube, quiet_open, report

NLAT, NLON = 6, 8


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def check(dst: Path, refs: list[tuple[str, xr.Dataset, dict | None]], tif: Path | None = None, free_attrs=()) -> None:
    """Fail listing every disagreement between the cube at ``dst`` and each ``(label, dataset,
    replacement values)`` reference, and (for a raster) rasterio's CRS and transform of ``tif``."""
    cube = open_cube(dst)
    mismatches = []
    for label, ref, values in refs:
        mismatches += [f"[{label}] {m}" for m in dataset_mismatches(cube, ref, (), values, free_attrs)]
    if tif is not None:
        mismatches += georeferencing_mismatches(cube, tif)
    assert not mismatches, report(f"cube {dst.name}", mismatches)


def netcdf_refs(path: Path, group: str | None = None) -> list[tuple[str, xr.Dataset, None]]:
    """xarray's views of ``path``: netCDF4 engine, and h5netcdf too for a NetCDF-4 (HDF5) file."""
    refs = [("netcdf4", quiet_open(path, engine="netcdf4", group=group), None)]
    with open(path, "rb") as f:
        if f.read(4) == b"\x89HDF":
            refs.append(("h5netcdf", quiet_open(path, engine="h5netcdf", group=group), None))
    return refs


def ns_times(values) -> pd.DatetimeIndex:
    """``values`` as nanosecond times, the resolution xarray decodes CF times to."""
    return pd.DatetimeIndex(pd.to_datetime(values)).as_unit("ns")


def add_grid(nc: netCDF4.Dataset, lat: np.ndarray, lon: np.ndarray) -> None:
    """Dimensions and CF coordinate variables ``lat``, ``lon``."""
    nc.createDimension("lat", len(lat))
    nc.createDimension("lon", len(lon))
    v = nc.createVariable("lat", "f4", ("lat",))
    v.units, v.standard_name = "degrees_north", "latitude"
    v[:] = lat
    v = nc.createVariable("lon", "f4", ("lon",))
    v.units, v.standard_name = "degrees_east", "longitude"
    v[:] = lon


# --------------------------------------------------------------------------------------------------
# NetCDF: CF decoding
# --------------------------------------------------------------------------------------------------


def write_packed_and_masked(path: Path, fmt: str) -> None:
    """int16 ``sst`` packed with float32 scale/offset and ``_FillValue``; float32 ``chl`` with
    ``missing_value`` and ``_FillValue``; byte ``ub`` with ``_Unsigned`` and a fill; double ``depth``
    whose ``missing_value`` differs from its ``_FillValue`` (both masked)."""
    r = rng(1)
    with netCDF4.Dataset(path, "w", format=fmt) as nc:
        nc.title, nc.Conventions = "packed and masked", "CF-1.8"
        add_grid(nc, np.linspace(-2.5, 2.5, NLAT), np.linspace(10, 17, NLON))
        sst = nc.createVariable("sst", "i2", ("lat", "lon"), fill_value=np.int16(-32768))
        sst.scale_factor, sst.add_offset = np.float32(0.01), np.float32(20.0)
        sst.units, sst.long_name = "degC", "sea surface temperature"
        raw = r.integers(-2000, 2000, size=(NLAT, NLON)).astype("i2")
        raw[0, :3] = -32768
        chl = nc.createVariable("chl", "f4", ("lat", "lon"), fill_value=np.float32(-1.0))
        chl.missing_value = np.float32(-999.0)
        values = r.lognormal(0, 1, size=(NLAT, NLON)).astype("f4")
        values[1, 1], values[2, 2] = -999.0, -1.0
        ub = nc.createVariable("ub", "i1", ("lon",), fill_value=np.int8(-1))
        ub._Unsigned = "true"
        depth = nc.createVariable("depth", "f8", ("lat",), fill_value=-1e30)
        depth.missing_value = -9999.0
        for v in (sst, chl, ub, depth):  # raw values as they are, no masking or packing by netCDF4
            v.set_auto_maskandscale(False)
        sst[:] = raw
        chl[:] = values
        ub[:] = np.array([0, 1, 127, -128, -2, -1, 5, 6], dtype="i1")  # 0 1 127 128 254 <fill> 5 6
        depth[:] = np.array([1.0, -9999.0, 3.0, -1e30, 5.0, 6.0])


@pytest.mark.parametrize("fmt", ["NETCDF3_CLASSIC", "NETCDF3_64BIT_OFFSET", "NETCDF4", "NETCDF4_CLASSIC"])
def test_packed_masked_and_unsigned(cubeforge, tmp_path, fmt):
    src = tmp_path / "packed.nc"
    write_packed_and_masked(src, fmt)
    refs = netcdf_refs(src)
    sst = refs[0][1]["sst"]
    assert sst.dtype == "float32" and int(sst.isnull().sum()) == 3, "reference: 3 masked float32 sst values"
    assert list(refs[0][1]["ub"].values[:5]) == [0, 1, 127, 128, 254] and refs[0][1]["ub"].dtype == np.float32
    assert int(refs[0][1]["depth"].isnull().sum()) == 2 and int(refs[0][1]["chl"].isnull().sum()) == 2
    convert(cubeforge, src, tmp_path / "cube.zarr")
    check(tmp_path / "cube.zarr", refs)


@pytest.mark.parametrize("calendar", ["noleap", "360_day", "julian", "all_leap", "proleptic_gregorian", "standard"])
def test_calendars_of_the_time_coordinate(cubeforge, tmp_path, calendar):
    src = tmp_path / f"{calendar}.nc"
    with netCDF4.Dataset(src, "w", format="NETCDF4") as nc:
        add_grid(nc, np.arange(NLAT, dtype="f4"), np.arange(NLON, dtype="f4"))
        nc.createDimension("time", None)
        t = nc.createVariable("time", "f8", ("time",))
        t.units, t.calendar, t.standard_name = "days since 1999-12-01 00:00:00", calendar, "time"
        # Across the end of February (29th, 30th) and the turn of the year; half days too.
        t[:] = np.array([0.0, 29.5, 59.0, 89.0, 90.0, 91.0, 364.0, 400.25])
        v = nc.createVariable("tas", "f4", ("time", "lat", "lon"))
        v[:] = rng(2).normal(280, 5, size=(8, NLAT, NLON)).astype("f4")
    refs = netcdf_refs(src)
    expected_kind = "M" if calendar in ("standard", "proleptic_gregorian") else "O"
    assert refs[0][1]["time"].dtype.kind == expected_kind
    convert(cubeforge, src, tmp_path / "cube.zarr")
    check(tmp_path / "cube.zarr", refs)


@pytest.mark.parametrize("fmt", ["NETCDF3_CLASSIC", "NETCDF3_64BIT_OFFSET", "NETCDF3_64BIT_DATA", "NETCDF4"])
def test_unlimited_record_dimension(cubeforge, tmp_path, fmt):
    """Two record variables (interleaved records in the classic formats), a fixed one, 7 records."""
    src = tmp_path / "records.nc"
    r = rng(3)
    with netCDF4.Dataset(src, "w", format=fmt) as nc:
        add_grid(nc, np.arange(NLAT, dtype="f4"), np.arange(NLON, dtype="f4"))
        nc.createDimension("time", None)
        t = nc.createVariable("time", "i4", ("time",))
        t.units = "hours since 2020-01-01"
        a = nc.createVariable("a", "f4", ("time", "lat", "lon"))
        b = nc.createVariable("b", "i2", ("time", "lon"))
        c = nc.createVariable("c", "f8", ("lat", "lon"))
        c[:] = r.random((NLAT, NLON))
        for k in range(7):  # one record at a time, as loggers do
            t[k] = 6 * k
            a[k] = r.random((NLAT, NLON)).astype("f4")
            b[k] = np.arange(NLON, dtype="i2") * k
    refs = netcdf_refs(src)
    assert refs[0][1].sizes["time"] == 7
    convert(cubeforge, src, tmp_path / "cube.zarr")
    check(tmp_path / "cube.zarr", refs)


def test_longitudes_0_360_and_descending_latitudes(cubeforge, tmp_path):
    src = tmp_path / "global.nc"
    lat, lon = np.arange(89.5, -90, -1.0), np.arange(0.5, 360, 1.0)
    with netCDF4.Dataset(src, "w", format="NETCDF4") as nc:
        add_grid(nc, lat, lon)
        v = nc.createVariable("z", "f4", ("lat", "lon"), zlib=True, chunksizes=(45, 90))
        v[:] = (lat[:, None] * 1000 + lon[None, :]).astype("f4")
    refs = netcdf_refs(src)
    assert refs[0][1]["lat"].values[0] == 89.5 and refs[0][1]["lon"].values[-1] == 359.5
    convert(cubeforge, src, tmp_path / "cube.zarr")
    check(tmp_path / "cube.zarr", refs)


@pytest.mark.parametrize("zarr_format", ["2", "3"])
def test_coordinates_with_their_own_fill_values(cubeforge, tmp_path, zarr_format):
    """Index coordinates whose stored values include their ``_FillValue`` / ``missing_value``:
    xarray masks them (NaN), and so must a reader of the cube, whatever format it is."""
    src = tmp_path / "masked_coords.nc"
    with netCDF4.Dataset(src, "w", format="NETCDF4") as nc:
        nc.createDimension("z", 4)
        nc.createDimension("depth", 3)
        nc.createDimension("level", 3)
        z = nc.createVariable("z", "f8", ("z",), fill_value=-9999.9)
        z[:] = np.array([-9999.9, 1.5, -9999.9, 3.0])
        z.units = "m"
        d = nc.createVariable("depth", "f4", ("depth",))
        d.missing_value = np.float32(-1)
        d[:] = np.array([-1, 10, 20], dtype="f4")
        lev = nc.createVariable("level", "i2", ("level",), fill_value=np.int16(-32768))
        lev.scale_factor, lev.add_offset = 0.5, 100.0
        lev.set_auto_maskandscale(False)
        lev[:] = np.array([-32768, 2, 4], dtype="i2")
        v = nc.createVariable("v", "f4", ("z", "depth", "level"))
        v[:] = np.arange(36, dtype="f4").reshape(4, 3, 3)
    refs = netcdf_refs(src)
    ref = refs[0][1]
    assert np.isnan(ref["z"].values[[0, 2]]).all() and np.isnan(ref["depth"].values[0])
    assert np.isnan(ref["level"].values[0]) and ref["level"].values[1] == 101.0
    convert(cubeforge, src, tmp_path / "cube.zarr", "--zarr-format", zarr_format)
    check(tmp_path / "cube.zarr", refs)


# --------------------------------------------------------------------------------------------------
# NetCDF-4 / HDF5 storage
# --------------------------------------------------------------------------------------------------


def test_deflate_shuffle_fletcher32_and_contiguous(cubeforge, tmp_path):
    src = tmp_path / "storage.nc"
    r = rng(4)
    with netCDF4.Dataset(src, "w", format="NETCDF4") as nc:
        add_grid(nc, np.arange(NLAT, dtype="f4"), np.arange(NLON, dtype="f4"))
        nc.createDimension("time", 5)
        for name, kwargs in {
            "deflate": {"zlib": True, "complevel": 6, "chunksizes": (2, 4, 3)},
            "shuffled": {"zlib": True, "shuffle": True, "chunksizes": (5, 6, 8)},
            "checked": {"zlib": True, "fletcher32": True, "chunksizes": (1, 3, 8)},
            "contiguous": {"contiguous": True},
            "default_layout": {},
        }.items():
            v = nc.createVariable(name, "f4", ("time", "lat", "lon"), **kwargs)
            v[:] = r.random((5, NLAT, NLON)).astype("f4")
    convert(cubeforge, src, tmp_path / "cube.zarr")
    check(tmp_path / "cube.zarr", netcdf_refs(src))


def test_hdf5_compact_storage(cubeforge, tmp_path):
    """A small variable stored in its object header (HDF5 compact layout), written through h5netcdf."""
    import h5netcdf
    import h5py

    src = tmp_path / "compact.nc"
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_layout(h5py.h5d.COMPACT)
    with h5netcdf.File(src, "w") as f:
        f.dimensions = {"x": 5}
        f.create_variable("x", ("x",), "f8", data=np.linspace(0, 1, 5))
        v = f.create_variable("small", ("x",), "i4", data=np.array([3, 1, 4, 1, 5], dtype="i4"), dcpl=dcpl)
        v.attrs["long_name"] = "compact"
    with h5py.File(src) as f:
        assert f["small"].id.get_create_plist().get_layout() == h5py.h5d.COMPACT
    convert(cubeforge, src, tmp_path / "cube.zarr")
    check(tmp_path / "cube.zarr", netcdf_refs(src))


#: HDF5 filters netCDF-C 4.9 writes: (filter id, client data, encoder of one chunk's bytes).
def _zstd(raw: bytes) -> bytes:
    import numcodecs

    return bytes(numcodecs.Zstd(level=3).encode(raw))


def _blosc(raw: bytes) -> bytes:
    import numcodecs

    return bytes(numcodecs.Blosc(cname="lz4", clevel=5, shuffle=1, typesize=4).encode(raw))


HDF5_FILTERS = {
    "zstd": (32015, (3,), _zstd),
    # 307 is bzip2's registered HDF5 filter id (netCDF-C's H5Z_FILTER_BZIP2); 32013 is ZFP's.
    "bzip2": (307, (9,), lambda raw: bz2.compress(raw, 9)),
    "blosc": (32001, (2, 2, 4, 24, 5, 1, 1), _blosc),
}


@pytest.mark.parametrize("name", sorted(HDF5_FILTERS))
def test_hdf5_filter_plugins(cubeforge, tmp_path, name):
    """A NetCDF-4 file (dimension scales by h5netcdf) whose chunks are compressed by a filter plugin.

    The chunks are encoded here (numcodecs / bz2) and stored with ``write_direct_chunk``, so neither
    HDF5 nor the test venv needs the plugin; the reference values are the array written.
    """
    import h5netcdf

    fid, opts, encode = HDF5_FILTERS[name]
    src = tmp_path / f"{name}.nc"
    data = rng(5).normal(size=(4, 6)).astype("float32")
    with h5netcdf.File(src, "w") as f:
        f.dimensions = {"y": 4, "x": 6}
        f.create_variable("y", ("y",), "f8", data=np.arange(4.0))
        f.create_variable("x", ("x",), "f8", data=np.arange(6.0) * 0.5)
        v = f.create_variable(
            "data", ("y", "x"), "float32", chunks=(2, 3), compression=fid, compression_opts=opts, allow_unknown_filter=True
        )
        v.attrs["units"] = "K"
        dsid = f._h5file["data"].id
        for i in (0, 2):
            for j in (0, 3):
                dsid.write_direct_chunk((i, j), encode(np.ascontiguousarray(data[i : i + 2, j : j + 3]).tobytes()))
    with xr.open_dataset(src, engine="h5netcdf") as lazy:
        ref = lazy.drop_vars("data").load()
        ref["data"] = lazy["data"].variable.to_base_variable().copy(data=data)
        ref["data"].attrs = dict(lazy["data"].attrs)
    convert(cubeforge, src, tmp_path / "cube.zarr")
    check(tmp_path / "cube.zarr", [("h5netcdf structure, written values", ref, None)])


def test_netcdf4_python_compression_options(cubeforge, tmp_path):
    """The filter plugins netCDF-C 4.9 writes, through netCDF4-python 1.7's ``compression=``, where its
    wheel finds the plugin; each one that cannot be written here is left out (skipped if none can:
    test_hdf5_filter_plugins covers the same filters without plugins). szip is not among them: it is
    not a filter the issue asks for."""
    src = tmp_path / "compressed.nc"
    written = []
    with netCDF4.Dataset(src, "w", format="NETCDF4") as nc:
        add_grid(nc, np.arange(NLAT, dtype="f4"), np.arange(NLON, dtype="f4"))
        for method in ("zstd", "bzip2", "blosc_lz4", "blosc_zstd"):
            try:
                v = nc.createVariable(method, "f4", ("lat", "lon"), compression=method, chunksizes=(3, 4))
                v[:] = rng(6).random((NLAT, NLON)).astype("f4")
                nc.sync()
                written.append(method)
            except (RuntimeError, ValueError):
                continue
    if not written:
        pytest.skip("the netCDF4 wheel of the test venv has no zstd, bzip2 or blosc plugin")
    try:
        refs = netcdf_refs(src)
    except (RuntimeError, OSError) as err:
        pytest.skip(f"written with {written} but not readable back without the plugin: {err}")
    convert(cubeforge, src, tmp_path / "cube.zarr")
    check(tmp_path / "cube.zarr", refs)


BIG = 2**62 + 12345  # an odd integer far above 2**53: a float64 cannot hold it


def write_big_integers(path: Path) -> None:
    """int64 / uint64 values above 2**53 (ids, nanosecond times) over (time, station)."""
    with netCDF4.Dataset(path, "w", format="NETCDF4") as nc:
        nc.createDimension("time", 6)
        nc.createDimension("station", 5)
        t = nc.createVariable("time", "i8", ("time",))
        t.units, t.calendar = "nanoseconds since 1970-01-01", "standard"
        t[:] = np.array([5, 3, 1, 4, 2, 0], dtype="i8") * 86_400_000_000_123 + 1_700_000_000_000_000_001
        nc.createVariable("station", "i4", ("station",))[:] = np.arange(5)
        ids = nc.createVariable("ids", "u8", ("time", "station"), chunksizes=(2, 5))
        ids[:] = np.uint64(2**64 - 1) - np.arange(30, dtype="u8").reshape(6, 5) * np.uint64(7)
        ticks = nc.createVariable("ticks", "i8", ("time", "station"), chunksizes=(3, 2))
        ticks[:] = np.int64(BIG) + np.arange(30, dtype="i8").reshape(6, 5) * 3 - 2**63 // 2
        stamp = nc.createVariable("stamp", "i8", ("time",))
        stamp.units = "nanoseconds since 2000-01-01"
        stamp[:] = np.arange(6, dtype="i8") * 1_000_000_007 + BIG // 4


def test_64_bit_integers_are_exact(cubeforge, tmp_path):
    """int64 and uint64 values beyond 2**53 are copied to the last bit, also when rechunked,
    selected, sorted and when they are nanosecond times."""
    src = tmp_path / "big.nc"
    write_big_integers(src)
    refs = netcdf_refs(src)
    assert refs[0][1]["ids"].dtype == np.uint64 and int(refs[0][1]["ids"].values.max()) == 2**64 - 1
    convert(cubeforge, src, tmp_path / "cube.zarr", "--chunks", "time=4,station=3")
    check(tmp_path / "cube.zarr", refs)
    recipe = tmp_path / "select.yaml"
    out = tmp_path / "selected.zarr"
    recipe.write_text(
        "version: 1\n"
        f"inputs: {{nc: {{url: {json.dumps(str(src))}}}}}\n"
        f"output: {{url: {json.dumps(str(out))}, chunks: {{time: 2, station: 2}}}}\n"
        "operations:\n"
        "  - keep: [ids, ticks, stamp]\n"
        "  - isel: {station: {start: 1, stop: 4}}\n"
        "  - sortby: time\n"
    )
    cubeforge.run("build", recipe, "--quiet")
    ref = refs[0][1][["ids", "ticks", "stamp"]].isel(station=slice(1, 4)).sortby("time")
    check(out, [("netcdf4 isel+sortby", ref, None)])
    got = quiet_open(out, engine="zarr")
    for name in ("ids", "ticks"):
        assert np.array_equal(got[name].values, ref[name].values), name
    assert np.array_equal(got["stamp"].values.view("i8"), ref["stamp"].values.view("i8"))


def test_groups(cubeforge, tmp_path):
    """``--group`` picks one group, nested ones by path; dimensions come from the group or its parents."""
    src = tmp_path / "groups.nc"
    with netCDF4.Dataset(src, "w", format="NETCDF4") as nc:
        add_grid(nc, np.arange(NLAT, dtype="f4"), np.arange(NLON, dtype="f4"))
        nc.createVariable("root_var", "i4", ("lat",))[:] = np.arange(NLAT)
        obs = nc.createGroup("obs")
        obs.source = "buoys"
        v = obs.createVariable("sst", "f4", ("lat", "lon"), zlib=True)
        v[:] = np.arange(NLAT * NLON, dtype="f4").reshape(NLAT, NLON)
        deep = obs.createGroup("deep")
        deep.createDimension("depth", 3)
        deep.createVariable("depth", "f4", ("depth",))[:] = [5.0, 50.0, 500.0]
        deep.createVariable("temp", "f8", ("depth", "lat"))[:] = np.arange(3 * NLAT).reshape(3, NLAT) / 4
    for group in ("obs", "obs/deep"):
        dst = tmp_path / f"{group.replace('/', '_')}.zarr"
        convert(cubeforge, src, dst, "--group", group)
        check(dst, netcdf_refs(src, group))


# --------------------------------------------------------------------------------------------------
# Many NetCDF files as one dataset
# --------------------------------------------------------------------------------------------------


def write_daily(path: Path, day: pd.Timestamp, with_time: bool, seed: int) -> None:
    """One day of float32 ``chl`` and packed int16 ``sst`` on the shared grid, and a static ``mask``."""
    r = rng(seed)
    with netCDF4.Dataset(path, "w", format="NETCDF4") as nc:
        nc.title = "daily ocean colour"
        add_grid(nc, np.linspace(40, 35, NLAT), np.linspace(0, 7, NLON))
        dims: tuple[str, ...] = ("lat", "lon")
        if with_time:
            nc.createDimension("time", None)
            t = nc.createVariable("time", "f8", ("time",))
            t.units, t.calendar = "days since 2000-01-01", "standard"
            t[:] = [(day - pd.Timestamp("2000-01-01")).days]
            dims = ("time", "lat", "lon")
        shape = (1, NLAT, NLON) if with_time else (NLAT, NLON)
        chl = nc.createVariable("chl", "f4", dims, zlib=True, fill_value=np.float32(np.nan))
        values = r.lognormal(size=shape).astype("f4")
        values.reshape(-1)[seed % values.size] = np.nan
        chl[:] = values
        sst = nc.createVariable("sst", "i2", dims, zlib=True, fill_value=np.int16(-32767))
        sst.scale_factor, sst.add_offset, sst.units = np.float32(0.005), np.float32(15.0), "degC"
        sst.set_auto_maskandscale(False)
        raw = r.integers(-3000, 3000, size=shape).astype("i2")
        raw.reshape(-1)[(seed * 7) % raw.size] = -32767
        sst[:] = raw
        nc.createVariable("mask", "u1", ("lat", "lon"))[:] = (np.arange(NLAT * NLON) % 3 == 0).reshape(NLAT, NLON)


def test_glob_concat_ordered_by_time_not_by_name(cubeforge, tmp_path):
    days = pd.date_range("2021-06-01", periods=6, freq="D")
    names = ["oc_f.nc", "oc_a.nc", "oc_d.nc", "oc_b.nc", "oc_e.nc", "oc_c.nc"]  # not in time order
    for k, (day, name) in enumerate(zip(days, names)):
        write_daily(tmp_path / name, day, with_time=True, seed=k)
    by_time = [tmp_path / name for name in names]  # written in time order above
    with xr.open_mfdataset(
        by_time, combine="nested", concat_dim="time", data_vars="minimal", coords="minimal", compat="override"
    ) as ds:
        ref = ds.load()
    assert list(ref["time"].values) == list(days.values) and ref["mask"].dims == ("lat", "lon")
    info = cubeforge.run("info", tmp_path / "oc_*.nc", "--concat", "time", "--json")
    doc = json.loads(info.stdout)
    assert doc["dims"] == dict(ref.sizes), doc["dims"]
    convert(cubeforge, tmp_path / "oc_*.nc", tmp_path / "cube.zarr", "--concat", "time")
    check(tmp_path / "cube.zarr", [("open_mfdataset", ref, None)])


def test_time_from_file_names(cubeforge, tmp_path):
    """Files without a time dimension, the day only in their names (written out of order)."""
    days = pd.to_datetime(["2022-01-03", "2021-12-30", "2022-01-01", "2021-12-31"])
    for k, day in enumerate(days):
        write_daily(tmp_path / f"day_{day:%Y%m%d}.nc", day, with_time=False, seed=10 + k)
    order = np.argsort(days.values)
    parts = [
        quiet_open(tmp_path / f"day_{days[k]:%Y%m%d}.nc").expand_dims(time=ns_times([days[k]]))
        for k in order
    ]
    ref = xr.concat(parts, dim="time", data_vars="minimal", coords="minimal", compat="override")
    convert(
        cubeforge, tmp_path / "day_*.nc", tmp_path / "cube.zarr", "--concat", "time", "--time-from", "pattern:day_%Y%m%d.nc"
    )
    check(tmp_path / "cube.zarr", [("xarray concat", ref, None)], free_attrs={"time"})


# --------------------------------------------------------------------------------------------------
# GeoTIFF
# --------------------------------------------------------------------------------------------------


def write_tif(path: Path, data: np.ndarray, tags: dict | None = None, descriptions=None, overviews=(), **profile) -> Path:
    """A GeoTIFF of ``data`` (band, y, x) in EPSG:32633 with 10 m pixels, written by rasterio/GDAL."""
    import rasterio
    from rasterio.transform import from_origin

    base = dict(
        driver="GTiff",
        count=data.shape[0],
        height=data.shape[1],
        width=data.shape[2],
        dtype=data.dtype,
        crs="EPSG:32633",
        transform=from_origin(500000.0, 4600020.0, 10.0, 10.0),
    )
    with rasterio.open(path, "w", **{**base, **profile}) as dst:
        dst.write(data)
        if tags:
            dst.update_tags(**tags)
        for k, name in enumerate(descriptions or (), start=1):
            dst.set_band_description(k, name)
    if overviews:
        from rasterio.enums import Resampling

        with rasterio.open(path, "r+") as dst:
            dst.build_overviews(list(overviews), Resampling.average)
    return path


def raster_ref(path: Path) -> list[tuple[str, xr.Dataset, None]]:
    return [("rasterio", quiet_open(path, engine="rasterio"), None)]


def uint16_scene(bands: int = 1, h: int = 300, w: int = 200, seed: int = 7) -> np.ndarray:
    return rng(seed).integers(0, 10000, size=(bands, h, w)).astype("uint16")


TIFF_LAYOUTS = {
    "cog multi-band, overviews": dict(
        data=uint16_scene(4), tiled=True, blockxsize=128, blockysize=128, compress="DEFLATE", predictor=2,
        overviews=(2, 4), descriptions=("blue", "green", "red", "nir"),
    ),
    "predictor 2 lzw": dict(data=uint16_scene(), tiled=True, blockxsize=64, blockysize=64, compress="LZW", predictor=2),
    "predictor 3 float32": dict(
        data=rng(8).normal(size=(1, 300, 200)).astype("float32"), tiled=True, blockxsize=64, blockysize=64,
        compress="DEFLATE", predictor=3,
    ),
    "predictor 3 float64": dict(
        data=rng(9).normal(size=(1, 50, 70)).astype("float64"), tiled=True, blockxsize=32, blockysize=32,
        compress="DEFLATE", predictor=3,
    ),
    "bigtiff zstd": dict(data=uint16_scene(2), tiled=True, blockxsize=128, blockysize=128, compress="ZSTD", BIGTIFF="YES"),
    "packbits strips": dict(data=uint16_scene(1), compress="PACKBITS", tiled=False, blockysize=7),
    "pixel interleaved deflate strips": dict(data=uint16_scene(3), compress="DEFLATE", interleave="pixel"),
    "band interleaved uncompressed": dict(data=uint16_scene(3), interleave="band"),
    "pixel is point": dict(data=uint16_scene(), tiled=True, blockxsize=64, blockysize=64, tags={"AREA_OR_POINT": "Point"}),
    "nodata int16 lzw": dict(
        data=np.where(uint16_scene() % 5 == 0, -9999, uint16_scene()).astype("int16"), compress="LZW", nodata=-9999,
    ),
    "nan nodata float32": dict(
        data=np.where(uint16_scene() % 7 == 0, np.nan, uint16_scene()).astype("float32"), compress="DEFLATE", nodata=np.nan,
    ),
    "int8 partial tiles": dict(
        data=(uint16_scene(1, 100, 70) % 200 - 100).astype("int8"), tiled=True, blockxsize=32, blockysize=48,
    ),
}


@pytest.mark.parametrize("layout", sorted(TIFF_LAYOUTS))
def test_geotiff_layouts(cubeforge, tmp_path, layout):
    spec = dict(TIFF_LAYOUTS[layout])
    src = write_tif(tmp_path / "scene.tif", spec.pop("data"), **spec)
    convert(cubeforge, src, tmp_path / "cube.zarr")
    check(tmp_path / "cube.zarr", raster_ref(src), tif=src)
    if spec.get("overviews"):
        info = cubeforge.run("info", src, "--json").stdout
        assert "overview" in info.lower(), f"info does not list the overviews:\n{info}"


def test_cog_written_by_the_cog_driver(cubeforge, tmp_path):
    """GDAL's COG driver layout: overviews before the full-resolution tiles, ghost area, a mask-free
    3-band DEFLATE file with predictor 2."""
    from rasterio.shutil import copy as rio_copy

    tiled = write_tif(tmp_path / "tiled.tif", uint16_scene(3, 700, 500, seed=12), tiled=True, blockxsize=256, blockysize=256)
    src = tmp_path / "cog.tif"
    rio_copy(tiled, src, driver="COG", compress="DEFLATE", predictor=2, blocksize=256, overview_resampling="average")
    import rasterio

    with rasterio.open(src) as ds:
        assert ds.overviews(1) and ds.block_shapes[0] == (256, 256)
        assert ds.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
    convert(cubeforge, src, tmp_path / "cube.zarr")
    check(tmp_path / "cube.zarr", raster_ref(src), tif=src)


def test_scale_offset_tags(cubeforge, tmp_path):
    import rasterio

    src = write_tif(tmp_path / "scaled.tif", uint16_scene(2), nodata=0, compress="DEFLATE")
    with rasterio.open(src, "r+") as dst:
        dst.scales, dst.offsets = (0.0001, 0.0001), (-0.1, -0.1)
    ref = raster_ref(src)
    assert ref[0][1]["band_data"].encoding["scale_factor"] == 0.0001  # applied by rioxarray
    convert(cubeforge, src, tmp_path / "cube.zarr")
    check(tmp_path / "cube.zarr", ref, tif=src)


def test_band_scales_that_differ_apply_per_named_band(cubeforge, tmp_path):
    """Scales that differ between bands cannot pack one band_data variable (one scale_factor per
    variable): named bands each carry their own, and equal rioxarray's per-band unpacking."""
    import rasterio

    src = write_tif(tmp_path / "scaled.tif", uint16_scene(2), nodata=0, compress="DEFLATE")
    with rasterio.open(src, "r+") as dst:
        dst.scales, dst.offsets = (0.0001, 0.0002), (-0.1, 0.5)
    full = quiet_open(src, engine="rasterio")["band_data"]
    convert(cubeforge, src, tmp_path / "cube.zarr", "--bands", "b1,b2")
    cube = open_cube(tmp_path / "cube.zarr")
    for name, k in (("b1", 1), ("b2", 2)):
        expected = full.sel(band=k, drop=True)
        assert cube[name].dtype == expected.dtype, (name, cube[name].dtype, expected.dtype)
        np.testing.assert_array_equal(cube[name].values, expected.values)


def write_masked(path: Path, data: np.ndarray, mask: np.ndarray, internal: bool = True, **profile) -> Path:
    """``data`` written by rasterio with GDAL's mask ``mask`` (0 masked, 255 valid): an internal
    1-bit mask image, or a ``.msk`` file beside the file."""
    import rasterio
    from rasterio.env import Env

    with Env(GDAL_TIFF_INTERNAL_MASK=internal):
        write_tif(path, data, **profile)
        with rasterio.open(path, "r+") as dst:
            dst.write_mask(mask)
    return path


def edge_mask(h: int, w: int) -> np.ndarray:
    """A scene's valid area: a slanted edge and a hole, as a satellite swath's footprint."""
    yy, xx = np.mgrid[0:h, 0:w]
    valid = (xx > yy // 3) & ~((yy - h // 2) ** 2 + (xx - w // 2) ** 2 < (h // 8) ** 2)
    return np.where(valid, 255, 0).astype("uint8")


GDAL_MASKS = {
    "internal, tiled deflate": dict(tiled=True, blockxsize=64, blockysize=64, compress="DEFLATE"),
    "internal, strips lzw, 3 bands": dict(bands=3, compress="LZW", blockysize=16),
    # GDAL masks by the mask alone then: a valid pixel holding the nodata value is a value.
    "internal, with a nodata value": dict(nodata=3, tiled=True, blockxsize=32, blockysize=32, compress="ZSTD"),
    "internal, band-interleaved uncompressed": dict(bands=2, interleave="band"),
    "external .msk": dict(internal=False, tiled=True, blockxsize=64, blockysize=64, compress="DEFLATE"),
}


@pytest.mark.parametrize("case", sorted(GDAL_MASKS))
def test_gdal_masks_make_masked_pixels_nan(cubeforge, tmp_path, case):
    """A file with GDAL's mask (as GDAL_TIFF_INTERNAL_MASK and gdal_translate -mask write it):
    rioxarray reads through it, so masked pixels are NaN, and so they are in the cube."""
    spec = dict(GDAL_MASKS[case])
    data = uint16_scene(spec.pop("bands", 1), 150, 100, seed=21) % 8
    mask = edge_mask(150, 100)
    src = write_masked(tmp_path / "scene.tif", data, mask, **spec)
    ref = raster_ref(src)
    values = ref[0][1]["band_data"].values
    assert np.isnan(values).sum() == (mask == 0).sum() * data.shape[0], "the reference applies no mask"
    convert(cubeforge, src, tmp_path / "cube.zarr")
    check(tmp_path / "cube.zarr", ref, tif=src)
    ds = cubeforge_open(src)
    np.testing.assert_array_equal(ds["band_data"].values, values)


def test_alpha_band_masks_the_other_bands(cubeforge, tmp_path):
    """RGBA (ExtraSamples unassociated alpha): GDAL's mask of bands 1-3 is the alpha band, which
    is itself valid; grey + alpha likewise. With a nodata value, the nodata value masks instead."""
    rgb = (uint16_scene(3, 90, 60, seed=5) % 256).astype("uint8")
    alpha = edge_mask(90, 60)
    rgba = write_tif(tmp_path / "rgba.tif", np.concatenate([rgb, alpha[None]]), photometric="RGB", alpha="YES",
                     tiled=True, blockxsize=32, blockysize=32, compress="DEFLATE")
    grey = write_tif(tmp_path / "grey.tif", np.stack([rgb[0], alpha]), alpha="YES", compress="LZW")
    rgb[1, 0, :5] = 7
    with_nodata = write_tif(tmp_path / "nodata.tif", np.concatenate([rgb, alpha[None]]), photometric="RGB",
                            alpha="YES", nodata=7)
    for src, masked in ((rgba, 3), (grey, 1), (with_nodata, None)):
        ref = raster_ref(src)
        values = ref[0][1]["band_data"].values
        if masked is not None:
            assert np.isnan(values).sum() == (alpha == 0).sum() * masked, src.name
        dst = tmp_path / f"{src.stem}.zarr"
        convert(cubeforge, src, dst)
        check(dst, ref, tif=src)
    # Not alpha masks for GDAL: a float alpha band; and the alpha of band 4 of a grey file whose
    # colour interpretation (ExtraSamples) says so is one.
    import rasterio
    from rasterio.enums import ColorInterp

    float_alpha = write_tif(tmp_path / "float.tif", np.stack([rgb[0], alpha]).astype("float32"), alpha="YES")
    grey4 = write_tif(tmp_path / "grey4.tif", np.concatenate([rgb, alpha[None]]), photometric="MINISBLACK")
    with rasterio.open(grey4, "r+") as dst:
        dst.colorinterp = [ColorInterp.gray, ColorInterp.undefined, ColorInterp.undefined, ColorInterp.alpha]
    for src, masked in ((float_alpha, 0), (grey4, 3)):
        ref = raster_ref(src)
        assert np.isnan(ref[0][1]["band_data"].values).sum() == (alpha == 0).sum() * masked, src.name
        dst = tmp_path / f"{src.stem}.zarr"
        convert(cubeforge, src, dst)
        check(dst, ref, tif=src)
    # Named bands: each band variable is masked as its band of band_data is.
    convert(cubeforge, rgba, tmp_path / "named.zarr", "--bands", "r,g,b,a")
    cube = open_cube(tmp_path / "named.zarr")
    full = raster_ref(rgba)[0][1]["band_data"]
    for k, name in enumerate("rgba", start=1):
        np.testing.assert_array_equal(cube[name].values, full.sel(band=k).values, err_msg=name)


def test_mask_corners(cubeforge, tmp_path):
    """GDAL's reading of masks at their corners: tiles not stored read as 0 and stay valid under
    the mask (SPARSE_OK); a `.msk` without GDAL's INTERNAL_MASK_FLAGS metadata is no mask."""
    import rasterio
    from rasterio.env import Env
    from rasterio.windows import Window

    sparse = tmp_path / "sparse.tif"
    with Env(GDAL_TIFF_INTERNAL_MASK=True):
        with rasterio.open(sparse, "w", driver="GTiff", height=64, width=64, count=1, dtype="uint8", tiled=True,
                           blockxsize=32, blockysize=32, SPARSE_OK=True) as dst:
            dst.write(np.full((1, 32, 32), 9, np.uint8), window=Window(0, 0, 32, 32))
            mask = np.full((64, 64), 255, np.uint8)
            mask[0, 0] = 0
            dst.write_mask(mask)
    plain = write_tif(tmp_path / "plain.tif", uint16_scene(1, 40, 30, seed=3))
    with rasterio.open(str(plain) + ".msk", "w", driver="GTiff", height=40, width=30, count=1, dtype="uint8") as dst:
        dst.write(edge_mask(40, 30)[None])
    for src, nan in ((sparse, 1), (plain, 0)):
        ref = raster_ref(src)
        values = ref[0][1]["band_data"].values
        assert np.isnan(values).sum() == nan, src.name
        dst = tmp_path / f"{src.stem}.zarr"
        convert(cubeforge, src, dst)
        check(dst, ref, tif=src)


def cubeforge_open(path: Path) -> xr.Dataset:
    """``path`` opened by the Python package, as a user opens it."""
    import cubeforge as cf

    return cf.open_dataset(str(path))


def test_named_bands_become_2d_variables(cubeforge, tmp_path):
    src = write_tif(
        tmp_path / "s2.tif", uint16_scene(4, seed=11), descriptions=("blue", "green", "red", "nir"),
        tiled=True, blockxsize=64, blockysize=64, compress="DEFLATE",
    )
    full = quiet_open(src, engine="rasterio")
    ref = xr.Dataset(
        {name: full["band_data"].sel(band=k, drop=True) for name, k in (("red", 3), ("nir", 4))},
        attrs=full.attrs,
    )
    for name in ("red", "nir"):
        ref[name].attrs = {k: v for k, v in full["band_data"].attrs.items() if k != "long_name"}
    convert(cubeforge, src, tmp_path / "cube.zarr", "--bands", "red,nir")
    cube = open_cube(tmp_path / "cube.zarr")
    assert set(cube.data_vars) == {"red", "nir"} and cube["red"].dims == ("y", "x"), cube
    check(tmp_path / "cube.zarr", [("rasterio, bands selected", ref, None)], tif=src, free_attrs={"red", "nir"})


def test_scenes_ordered_by_acquisition_metadata(cubeforge, tmp_path):
    """File-name order a, b, c is not time order; the GDAL metadata item ACQUISITION_START is."""
    stamps = {"scene_a.tif": "2021-03-05T10:00:00", "scene_b.tif": "2021-01-10T10:00:00", "scene_c.tif": "2021-02-01T10:00:00"}
    for k, (name, stamp) in enumerate(stamps.items()):
        write_tif(
            tmp_path / name, uint16_scene(2, 60, 40, seed=20 + k), tags={"ACQUISITION_START": stamp},
            tiled=True, blockxsize=32, blockysize=32, compress="DEFLATE", predictor=2,
        )
    order = sorted(stamps, key=stamps.get)
    parts = [quiet_open(tmp_path / n, engine="rasterio").expand_dims(time=ns_times([stamps[n]])) for n in order]
    # ACQUISITION_START differs between the files: as open_mfdataset (combine_attrs="override"),
    # the joined cube's attributes are the first file's in time order.
    ref = xr.concat(parts, dim="time", data_vars="minimal", coords="minimal", compat="override", combine_attrs="override")
    assert ref["band_data"].attrs["ACQUISITION_START"] == "2021-01-10T10:00:00"
    assert [str(t)[:10] for t in ref["time"].values] == ["2021-01-10", "2021-02-01", "2021-03-05"]
    convert(
        cubeforge, tmp_path / "scene_*.tif", tmp_path / "cube.zarr",
        "--concat", "time", "--time-from", "metadata:ACQUISITION_START",
    )
    check(tmp_path / "cube.zarr", [("rasterio + concat", ref, None)], tif=tmp_path / "scene_a.tif", free_attrs={"time"})
