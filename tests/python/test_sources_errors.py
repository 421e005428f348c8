"""Bad NetCDF, HDF5 and GeoTIFF input to ``cubeforge convert``: a test each.

Every case (through corpus.refused): exit status 2, exactly one ``error: ...`` line on stderr that
names the file (and what is wrong where the case says), the inputs unchanged, and nothing a reader
takes for a finished store at the destination (no ``.zgroup`` / ``zarr.json`` at its root).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import netCDF4
import numpy as np
import pandas as pd
import pytest

from corpus import as_unprivileged_user, refused

NLAT, NLON = 6, 8


def write_daily(path: Path, day: str, nlat: int = NLAT, with_days: int = 1) -> Path:
    """``with_days`` days of float32 ``chl`` from ``day`` on a (lat, lon) grid, with a time coordinate."""
    with netCDF4.Dataset(path, "w", format="NETCDF4") as nc:
        nc.createDimension("time", None)
        nc.createDimension("lat", nlat)
        nc.createDimension("lon", NLON)
        nc.createVariable("lat", "f4", ("lat",))[:] = np.linspace(40, 35, nlat)
        nc.createVariable("lon", "f4", ("lon",))[:] = np.linspace(0, 7, NLON)
        t = nc.createVariable("time", "f8", ("time",))
        t.units = "days since 2000-01-01"
        first = (pd.Timestamp(day) - pd.Timestamp("2000-01-01")).days
        t[:] = np.arange(first, first + with_days, dtype="f8")
        chl = nc.createVariable("chl", "f4", ("time", "lat", "lon"), zlib=True, chunksizes=(1, nlat, NLON))
        chl[:] = np.random.default_rng(first).random((with_days, nlat, NLON)).astype("f4")
    return path


def write_classic_records(path: Path, records: int = 20) -> Path:
    """A classic (CDF-1) file with an unlimited record dimension and a float64 record variable."""
    with netCDF4.Dataset(path, "w", format="NETCDF3_CLASSIC") as nc:
        nc.createDimension("time", None)
        nc.createDimension("x", 50)
        nc.createVariable("time", "f8", ("time",))[:] = np.arange(records, dtype="f8")
        nc.createVariable("v", "f8", ("time", "x"))[:] = np.arange(records * 50, dtype="f8").reshape(records, 50)
    return path


def truncate(path: Path, fraction: float) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])


@pytest.fixture
def inputs(tmp_path) -> Path:
    """Where a case writes its input files (the destination goes next to it, in ``tmp_path``)."""
    path = tmp_path / "in"
    path.mkdir()
    return path


def convert_refused(binary, srcs, dst: Path, *flags, expect=(), keep=()) -> str:
    return refused(binary, ["convert", *srcs, dst, *flags, "--quiet"], expect=expect, keep=keep, dest=[dst])


# --------------------------------------------------------------------------------------------------
# Broken files
# --------------------------------------------------------------------------------------------------


def test_truncated_classic_netcdf(cubeforge, tmp_path):
    """The header promises 20 records, the file holds 12 of them. (netCDF-C reads the missing bytes as
    fill values without a word; a cube built from them would hide the loss.)"""
    src = write_classic_records(tmp_path / "records.nc")
    truncate(src, 0.6)  # the header is whole; the last records are cut off
    convert_refused(cubeforge.binary, [src], tmp_path / "cube.zarr", expect=[str(src)], keep=[src])


def test_truncated_netcdf4(cubeforge, tmp_path):
    src = write_daily(tmp_path / "day.nc", "2021-01-01", with_days=10)
    truncate(src, 0.5)
    convert_refused(cubeforge.binary, [src], tmp_path / "cube.zarr", expect=[str(src)], keep=[src])


def test_hdf5_chunk_with_unknown_filter(cubeforge, tmp_path):
    """A chunked dataset whose pipeline names filter 32099, registered by no one (stored with h5py's
    ``allow_unknown_filter`` and ``write_direct_chunk``, so no plugin is needed to write it)."""
    import h5netcdf

    src = tmp_path / "unknown_filter.nc"
    with h5netcdf.File(src, "w") as f:
        f.dimensions = {"x": 8}
        f.create_variable("x", ("x",), "f8", data=np.arange(8.0))
        f.create_variable("v", ("x",), "i4", chunks=(4,), compression=32099, compression_opts=(1,), allow_unknown_filter=True)
        dsid = f._h5file["v"].id
        for start in (0, 4):
            dsid.write_direct_chunk((start,), np.arange(start, start + 4, dtype="i4").tobytes())
    convert_refused(cubeforge.binary, [src], tmp_path / "cube.zarr", expect=[str(src), "32099"], keep=[src])


def tile_extent(path: Path, row: int, col: int) -> tuple[int, int]:
    """Byte offset and size of tile (row, col) of band 1, as GDAL reports them."""
    import rasterio

    with rasterio.open(path) as src:
        offset = src.get_tag_item(f"BLOCK_OFFSET_{col}_{row}", "TIFF", bidx=1)
        size = src.get_tag_item(f"BLOCK_SIZE_{col}_{row}", "TIFF", bidx=1)
    assert offset and size, f"GDAL reports no tile ({row}, {col}) in {path}"
    return int(offset), int(size)


def write_tiled(path: Path, **profile) -> Path:
    import rasterio
    from rasterio.transform import from_origin

    data = np.random.default_rng(0).integers(0, 255, size=(1, 128, 128)).astype("uint8")
    base = dict(
        driver="GTiff", width=128, height=128, count=1, dtype="uint8", crs="EPSG:4326",
        transform=from_origin(0, 10, 0.1, 0.1), tiled=True, blockxsize=64, blockysize=64,
    )
    with rasterio.open(path, "w", **{**base, **profile}) as dst:
        dst.write(data)
    return path


def test_corrupt_tiff_tile(cubeforge, tmp_path):
    src = write_tiled(tmp_path / "scene.tif", compress="DEFLATE")
    offset, size = tile_extent(src, 1, 1)
    with open(src, "r+b") as f:
        f.seek(offset)
        f.write(b"\xff" * size)  # not a zlib stream
    import rasterio

    with rasterio.open(src) as ds, pytest.raises(rasterio.errors.RasterioIOError):
        ds.read(1)  # GDAL too refuses the tile
    convert_refused(cubeforge.binary, [src], tmp_path / "cube.zarr", expect=[str(src)], keep=[src])


def test_tiff_compression_without_decoder(cubeforge, tmp_path):
    """LERC (or, where the GDAL of the wheel lacks it, LZMA): a TIFF codec cubeforge has no decoder for."""
    import rasterio

    for codec in ("LERC", "LZMA"):
        try:
            src = write_tiled(tmp_path / f"{codec.lower()}.tif", compress=codec)
        except rasterio.errors.RasterioError:
            continue
        with rasterio.open(src) as ds:
            if ds.compression is not None and ds.compression.name.upper() == codec:
                break
    else:
        pytest.skip("the GDAL of the rasterio wheel writes neither LERC nor LZMA")
    convert_refused(cubeforge.binary, [src], tmp_path / "cube.zarr", expect=[str(src), codec], keep=[src])


# --------------------------------------------------------------------------------------------------
# Many files
# --------------------------------------------------------------------------------------------------


def test_glob_with_one_mismatched_file(cubeforge, tmp_path, inputs):
    for day in ("2021-01-01", "2021-01-02", "2021-01-04"):
        write_daily(inputs / f"oc_{day}.nc", day)
    odd = write_daily(inputs / "oc_2021-01-03.nc", "2021-01-03", nlat=NLAT + 1)
    convert_refused(
        cubeforge.binary, [inputs / "oc_*.nc"], tmp_path / "cube.zarr", "--concat", "time",
        expect=[odd.name, "lat"], keep=[inputs],
    )


def test_overlapping_time_labels(cubeforge, tmp_path, inputs):
    first = write_daily(inputs / "oc_a.nc", "2021-01-01", with_days=3)  # 1st..3rd
    second = write_daily(inputs / "oc_b.nc", "2021-01-03", with_days=3)  # 3rd..5th
    convert_refused(
        cubeforge.binary, [inputs / "oc_*.nc"], tmp_path / "cube.zarr", "--concat", "time",
        expect=[first.name, second.name], keep=[inputs],
    )


def test_duplicate_time_labels(cubeforge, tmp_path, inputs):
    first = write_daily(inputs / "oc_a.nc", "2021-01-01")
    second = write_daily(inputs / "oc_b.nc", "2021-01-01")
    convert_refused(
        cubeforge.binary, [inputs / "oc_*.nc"], tmp_path / "cube.zarr", "--concat", "time",
        expect=[first.name, second.name], keep=[inputs],
    )


def test_empty_glob(cubeforge, tmp_path, inputs):
    write_daily(inputs / "oc_a.nc", "2021-01-01")
    pattern = inputs / "chl_*.nc"
    convert_refused(
        cubeforge.binary, [pattern], tmp_path / "cube.zarr", "--concat", "time", expect=[str(pattern)], keep=[inputs]
    )


def test_file_without_read_permission(cubeforge, tmp_path):
    """A local input the user may not read (as root: run as ``nobody``, see corpus.as_unprivileged_user)."""
    program, prefix, home = as_unprivileged_user(cubeforge.binary)
    try:
        work = (home or tmp_path) / "work"
        work.mkdir()
        work.chmod(0o777)
        src = write_daily(work / "secret.nc", "2021-01-01")
        src.chmod(0o000)
        dst = work / "cube.zarr"
        refused(program, [*prefix, "convert", src, dst, "--quiet"], expect=[str(src), "permission denied"], dest=[dst])
        assert not dst.exists() or not any(dst.iterdir()), f"convert left files in {dst}"
    finally:
        if home is not None:
            shutil.rmtree(home, ignore_errors=True)
