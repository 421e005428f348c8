"""NetCDF and GeoTIFF sources in a bucket (moto's S3 on 127.0.0.1) and over HTTP (a local server
that answers byte ranges, as object stores and CDNs do): ``convert`` of the remote file, and of a
bucket glob joined along time, gives the same cube as ``convert`` of the local files."""

from __future__ import annotations

import os
import threading
import uuid
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from cli_support import cf

REAL = Path(os.environ.get("CUBEFORGE_REAL_DATA", Path(__file__).resolve().parents[3] / "shared" / "data" / "real"))
FILES = ["rioxarray/PLANET_SCOPE_3D.nc", "georust-netcdf/pres_temp_4D.nc", "kerchunk/lcmap_tiny_cog_2019.tif"]


def assert_same_cube(a: Path | str, b: Path) -> None:
    got, want = xr.open_zarr(a).load(), xr.open_zarr(b).load()
    assert set(got.variables) == set(want.variables)
    for name in want.variables:
        assert got[name].dtype == want[name].dtype, name
        np.testing.assert_array_equal(got[name].values, want[name].values, err_msg=name)


def daily_files(root: Path) -> list[Path]:
    root.mkdir()
    out = []
    for day in (3, 1, 2):  # names out of time order
        ds = xr.Dataset(
            {"chl": (("time", "lat"), np.full((1, 4), day, "float32"))},
            coords={"time": [np.datetime64(f"2020-01-0{day}")], "lat": [1.0, 2.0, 3.0, 4.0]},
        )
        path = root / f"d_{day}.nc"
        ds.to_netcdf(path, engine="netcdf4")
        out.append(path)
    return out


@pytest.mark.skipif(not REAL.is_dir(), reason="the shared real-data corpus is not here")
def test_bucket_files_and_globs_equal_local_ones(cubeforge, s3_server, tmp_path):
    env = s3_server.env()
    bucket = f"cf-{uuid.uuid4().hex[:12]}"
    client = s3_server.client()
    client.create_bucket(Bucket=bucket)
    for rel in FILES:
        client.put_object(Bucket=bucket, Key=f"src/{Path(rel).name}", Body=(REAL / rel).read_bytes())
        local, remote = tmp_path / f"local-{Path(rel).stem}.zarr", tmp_path / f"remote-{Path(rel).stem}.zarr"
        cf(cubeforge, env, "convert", REAL / rel, local, "--quiet")
        cf(cubeforge, env, "convert", f"s3://{bucket}/src/{Path(rel).name}", remote, "--quiet")
        assert_same_cube(remote, local)
    for path in daily_files(tmp_path / "daily"):
        client.put_object(Bucket=bucket, Key=f"daily/{path.name}", Body=path.read_bytes())
    cf(cubeforge, env, "convert", str(tmp_path / "daily" / "d_*.nc"), tmp_path / "days-local.zarr",
       "--concat", "time", "--quiet")
    cf(cubeforge, env, "convert", f"s3://{bucket}/daily/d_*.nc", tmp_path / "days-remote.zarr",
       "--concat", "time", "--quiet")
    assert_same_cube(tmp_path / "days-remote.zarr", tmp_path / "days-local.zarr")
    days = xr.open_zarr(tmp_path / "days-remote.zarr")
    assert [str(t)[:10] for t in days["time"].values] == ["2020-01-01", "2020-01-02", "2020-01-03"]


class RangeHandler(SimpleHTTPRequestHandler):
    """Static files with ``Range: bytes=a-b`` answered as 206 Partial Content; counts bytes sent."""

    sent = 0

    def log_message(self, *args):  # quiet
        pass

    def do_GET(self):  # noqa: N802
        rng = self.headers.get("Range")
        path = Path(self.translate_path(self.path))
        if not rng or not path.is_file():
            return super().do_GET()
        data = path.read_bytes()
        start, _, end = rng.removeprefix("bytes=").partition("-")
        start, end = int(start), (int(end) if end else len(data) - 1)
        body = data[start : end + 1]
        self.send_response(206)
        self.send_header("Content-Range", f"bytes {start}-{start + len(body) - 1}/{len(data)}")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        self.wfile.write(body)
        type(self).sent += len(body)


def write_large_cog(path: Path) -> Path:
    import rasterio
    from rasterio.transform import from_origin

    data = np.random.default_rng(3).integers(0, 10000, (1, 2048, 2048), dtype="uint16")
    profile = dict(driver="GTiff", width=2048, height=2048, count=1, dtype="uint16", tiled=True,
                   blockxsize=256, blockysize=256, compress="DEFLATE", predictor=2, crs="EPSG:32633",
                   transform=from_origin(500000, 5000000, 10, 10))
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
    return path


@pytest.mark.skipif(not REAL.is_dir(), reason="the shared real-data corpus is not here")
def test_http_files_equal_local_ones(cubeforge, tmp_path):
    served = tmp_path / "served"
    for rel in FILES:
        (served / rel).parent.mkdir(parents=True, exist_ok=True)
        (served / rel).write_bytes((REAL / rel).read_bytes())
    big = write_large_cog(served / "big.tif")
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(RangeHandler, directory=str(served)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        for rel in FILES:
            url = f"http://127.0.0.1:{server.server_port}/{rel}"
            local, remote = tmp_path / f"l-{Path(rel).stem}.zarr", tmp_path / f"r-{Path(rel).stem}.zarr"
            cf(cubeforge, dict(os.environ), "convert", REAL / rel, local, "--quiet")
            cf(cubeforge, dict(os.environ), "convert", url, remote, "--quiet")
            assert_same_cube(remote, local)
        # info reads metadata only: the header and directories, not the tiles (of ~8 MB).
        RangeHandler.sent = 0
        cf(cubeforge, dict(os.environ), "info", f"http://127.0.0.1:{server.server_port}/big.tif")
        assert 0 < RangeHandler.sent < big.stat().st_size // 20, (RangeHandler.sent, big.stat().st_size)
    finally:
        server.shutdown()
