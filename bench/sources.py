#!/usr/bin/env python3
"""Benchmark: raw NetCDF and GeoTIFF sources into Zarr cubes, ``cubeforge`` vs xarray + dask, side by side.

Three cases (``--cases a b c``), each run ``--repeat`` times in turn (xarray, cubeforge; then
cubeforge, xarray; ...), every run a fresh process whose wall time, CPU time and peak RSS come from
``wait4`` (see tutorial.py's ``measure``); the table shows the run of median wall time and the highest
peak RSS:

a. ``--days`` daily NetCDF-4 files (``--grid`` x ``--grid``, deflate + shuffle, chunks (1, 200, 200),
   float32 ``chl`` and packed int16 ``sst``) into a (100, 64, 64)-chunked Zarr v2 cube:
   ``cubeforge convert "DIR/oc_*.nc" OUT --concat time --chunks time=100,lat=64,lon=64`` against
   ``xr.open_mfdataset(parallel=True)`` + ``.chunk(...)`` + ``to_zarr`` on dask's threaded scheduler;
b. ``cubeforge info "DIR/*.nc" --concat time`` over ``--info-files`` small daily files against
   ``xr.open_mfdataset(parallel=True)`` of the same files (metadata only, printed);
c. one ``--cog-size`` x ``--cog-size`` uint16 COG (DEFLATE, predictor 2, 512 tiles) into a Zarr v2
   cube with 2048 x 2048 chunks: ``cubeforge convert scene.tif OUT --chunks y=2048,x=2048`` against
   ``rioxarray.open_rasterio(chunks=..., mask_and_scale=True)`` + ``to_zarr`` (both sides write the
   decoded float32 band, as xarray's rasterio engine shows it).

Inputs are generated once (numpy, netCDF4, rasterio) and cached under ``--workdir`` (default
``bench/work/sources``, git-ignored) in directories named by their size. After the runs, the two
outputs of each case are compared on a sample (time steps of (a), tiles of (c), dimensions of (b)); a
difference is reported in the ``same`` column. A failing run (e.g. a cubeforge without ``convert``)
shows its error and the benchmark goes on. Usage::

    .venv/bin/python bench/sources.py [--quick] [--cases a b c] [--repeat 1] [--bin PATH] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tutorial import Run, measure  # noqa: E402  (wait4-based measurement of one process)

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_BIN = Path(os.environ.get("CUBEFORGE_BIN", "~/.cache/cubeforge/target/release/cubeforge")).expanduser()
OUT_CHUNKS = {"time": 100, "lat": 64, "lon": 64}
COG_CHUNK = 2048
#: The issue's targets: speed-up (xarray s / cubeforge s) per case, and cubeforge's peak RSS.
TARGET_SPEEDUP = {"a": 5.0, "b": 10.0, "c": 5.0}
TARGET_RSS_MIB = 512
FIRST_DAY = "2010-01-01"
#: xarray's engine for NetCDF-4 here. The netCDF4 engine crashes (SIGSEGV) under
#: ``open_mfdataset(parallel=True)`` on dask threads with netCDF4-python >= 1.6.1 (xarray issue
#: 7079: netCDF-C/HDF5 calls from several threads); h5netcdf (h5py) serialises its HDF5 calls.
XARRAY_ENGINE = "h5netcdf"


# --------------------------------------------------------------------------------------------------
# Inputs (cached)
# --------------------------------------------------------------------------------------------------


def done(path: Path) -> bool:
    return (path / ".complete").is_file()


def mark_done(path: Path) -> None:
    (path / ".complete").write_text(time.strftime("%Y-%m-%dT%H:%M:%S\n"))


def write_daily_files(folder: Path, days: int, grid: int, chunk: int, prefix: str) -> Path:
    """``days`` NetCDF-4 files ``PREFIX_YYYYMMDD.nc``: float32 ``chl`` (NaN fill, a land mask of NaN)
    and int16 ``sst`` (scale 0.001, offset 15), deflate level 4 + shuffle, chunks (1, chunk, chunk)."""
    import netCDF4
    import numpy as np
    import pandas as pd

    if done(folder):
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    lat = np.linspace(60, 20, grid, dtype="f4")
    lon = np.linspace(-40, 0, grid, dtype="f4")
    yy, xx = np.meshgrid(np.linspace(0, 6, grid), np.linspace(0, 6, grid), indexing="ij")
    land = (np.sin(yy) * np.cos(xx)) > 0.6
    rng = np.random.default_rng(0)
    base = pd.Timestamp(FIRST_DAY)
    for k in range(days):
        day = base + pd.Timedelta(days=k)
        season = np.sin(2 * np.pi * k / 365.25)
        with netCDF4.Dataset(folder / f"{prefix}_{day:%Y%m%d}.nc", "w", format="NETCDF4") as nc:
            nc.title = "synthetic daily ocean colour"
            nc.createDimension("time", None)
            nc.createDimension("lat", grid)
            nc.createDimension("lon", grid)
            v = nc.createVariable("lat", "f4", ("lat",))
            v.units, v[:] = "degrees_north", lat
            v = nc.createVariable("lon", "f4", ("lon",))
            v.units, v[:] = "degrees_east", lon
            t = nc.createVariable("time", "i4", ("time",))
            t.units, t.calendar = "days since 1970-01-01", "standard"
            t[:] = [(day - pd.Timestamp("1970-01-01")).days]
            chunks = (1, min(chunk, grid), min(chunk, grid))
            chl = nc.createVariable(
                "chl", "f4", ("time", "lat", "lon"), zlib=True, complevel=4, shuffle=True,
                chunksizes=chunks, fill_value=np.float32(np.nan),
            )
            chl.units = "mg m-3"
            field = np.exp(np.sin(yy + k / 30) + season + 0.3 * rng.standard_normal((grid, grid))).astype("f4")
            field[land] = np.nan
            chl[0] = field
            sst = nc.createVariable(
                "sst", "i2", ("time", "lat", "lon"), zlib=True, complevel=4, shuffle=True,
                chunksizes=chunks, fill_value=np.int16(-32768),
            )
            sst.scale_factor, sst.add_offset, sst.units = np.float32(0.001), np.float32(15.0), "degC"
            sst.set_auto_maskandscale(False)
            raw = (5000 * np.cos(yy - k / 50) + 3000 * season + 200 * rng.standard_normal((grid, grid))).astype("i2")
            raw[land] = -32768
            sst[0] = raw
    mark_done(folder)
    return folder


def write_cog(path: Path, size: int) -> Path:
    """A ``size`` x ``size`` uint16 COG: DEFLATE, predictor 2, 512 x 512 tiles, overviews, EPSG:32633."""
    import numpy as np
    import rasterio
    from rasterio.enums import Resampling
    from rasterio.shutil import copy as rio_copy
    from rasterio.transform import from_origin
    from rasterio.windows import Window

    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.tif")
    profile = dict(
        driver="GTiff", width=size, height=size, count=1, dtype="uint16", crs="EPSG:32633",
        transform=from_origin(399960.0, 5000040.0, 10.0, 10.0), tiled=True, blockxsize=512, blockysize=512,
        compress="DEFLATE", predictor=2, BIGTIFF="IF_SAFER",
    )
    rng = np.random.default_rng(0)
    cols = np.arange(size)
    with rasterio.open(tmp, "w", **profile) as dst:
        for row0 in range(0, size, 512):
            rows = np.arange(row0, min(row0 + 512, size))
            block = 3000 + 1500 * np.sin(rows[:, None] / 700.0) * np.cos(cols[None, :] / 900.0)
            block += rng.normal(0, 120, size=block.shape)
            dst.write(block.clip(0, 65535).astype("uint16")[None], window=Window(0, row0, size, len(rows)))
        dst.build_overviews([2, 4, 8, 16], Resampling.average)
    rio_copy(tmp, path, driver="COG", compress="DEFLATE", predictor=2, blocksize=512, BIGTIFF="IF_SAFER")
    tmp.unlink()
    return path


# --------------------------------------------------------------------------------------------------
# The xarray side (runs in its own process: ``sources.py --xarray-worker CASE SRC DST``)
# --------------------------------------------------------------------------------------------------


def xarray_worker(case: str, src: str, dst: str) -> None:
    import glob
    import warnings

    import dask
    import xarray as xr

    warnings.simplefilter("ignore")
    dask.config.set(scheduler="threads")
    if case in ("a", "b"):
        files = sorted(glob.glob(src))
        ds = xr.open_mfdataset(
            files, parallel=True, engine=XARRAY_ENGINE, combine="nested", concat_dim="time",
            data_vars="minimal", coords="minimal", compat="override",
        )
        if case == "b":
            print(ds)
            print(json.dumps({"dims": {str(k): int(v) for k, v in ds.sizes.items()}}))
            return
        ds = ds.sortby("time").chunk(OUT_CHUNKS)
        for name in ds.variables:  # the NetCDF storage encoding does not apply to Zarr
            for key in ("chunksizes", "zlib", "shuffle", "complevel", "fletcher32", "contiguous", "preferred_chunks"):
                ds[name].encoding.pop(key, None)
        ds.to_zarr(dst, mode="w", zarr_format=2, consolidated=True)
    elif case == "c":
        import rioxarray

        # mask_and_scale as xarray's rasterio engine (and cubeforge) decode: the same float32
        # cube on both sides, nodata as NaN.
        da = rioxarray.open_rasterio(
            src, chunks={"band": 1, "y": COG_CHUNK, "x": COG_CHUNK}, lock=False, mask_and_scale=True
        )
        ds = da.to_dataset(name="band_data")
        for name in ds.variables:
            ds[name].encoding.pop("preferred_chunks", None)
        ds.to_zarr(dst, mode="w", zarr_format=2, consolidated=True)
    else:
        raise SystemExit(f"unknown case {case}")


# --------------------------------------------------------------------------------------------------
# Runs and checks
# --------------------------------------------------------------------------------------------------


@dataclass
class Row:
    case: str
    what: str
    xarray: dict | None = None
    cubeforge: dict | None = None
    same: str = ""


def summary(runs: list[Run]) -> dict:
    """The run of median wall time, and the highest peak RSS of all runs."""
    ok = [r for r in runs if r.ok]
    if not ok:
        return {"ok": False, "error": runs[-1].error_line()}
    median = sorted(ok, key=lambda r: r.wall_s)[len(ok) // 2]
    return {
        "ok": True, "wall_s": median.wall_s, "cpu_s": median.cpu_s,
        "peak_rss_mib": max(r.peak_rss_mb for r in ok), "walls": [r.wall_s for r in ok],
    }


def same_cube_sample(a: Path, b: Path, case: str) -> str:
    """Compare the two cubes on a sample, decoded by xarray: 'yes', or what differs."""
    import warnings

    import numpy as np
    import xarray as xr

    warnings.simplefilter("ignore")
    try:
        x, c = xr.open_zarr(a, consolidated=None), xr.open_zarr(b, consolidated=None)
    except Exception as err:  # a missing or unreadable output
        return f"cannot open: {type(err).__name__}: {err}"[:120]
    if dict(x.sizes) != dict(c.sizes):
        return f"dims {dict(x.sizes)} vs {dict(c.sizes)}"
    close = []  # variables equal only within float32 rounding

    def same(name: str, a, b) -> bool:
        """Exactly equal (NaN-aware), or, as float32, within one part in a million (xarray decodes a
        packed variable it wrote itself to float64, the scale factor having become a JSON double)."""
        a, b = np.asarray(a), np.asarray(b)
        if np.array_equal(a, b, equal_nan=True):
            return True
        if a.dtype.kind == "f" and b.dtype.kind == "f" and np.allclose(
            a.astype("f4"), b.astype("f4"), rtol=1e-6, atol=0, equal_nan=True
        ):
            close.append(name)
            return True
        return False

    if case == "a":
        steps = sorted({0, x.sizes["time"] // 2, x.sizes["time"] - 1})
        if not np.array_equal(x["time"].values, c["time"].values):
            return "time differs"
        for name in ("chl", "sst"):
            for t in steps:
                if not same(name, x[name].isel(time=t).values, c[name].isel(time=t).values):
                    return f"{name} differs at time {t}"
        return "yes" if not close else f"yes ({', '.join(sorted(set(close)))} within 1e-6)"
    rng = np.random.default_rng(1)
    ny, nx = x.sizes["y"], x.sizes["x"]
    for _ in range(8):
        y0, x0 = int(rng.integers(0, max(ny - 512, 1))), int(rng.integers(0, max(nx - 512, 1)))
        window = dict(y=slice(y0, y0 + 512), x=slice(x0, x0 + 512))
        xv = x["band_data"].isel(**window).values.astype("float64")
        cv = c["band_data"].isel(**window).values.astype("float64")
        if not same("band_data", xv, cv):
            return f"band_data differs in the window at y={y0}, x={x0}"
    for coord in ("x", "y"):
        if not np.allclose(x[coord].values, c[coord].values, rtol=0, atol=1e-6):
            return f"{coord} differs"
    return "yes" if not close else f"yes ({', '.join(sorted(set(close)))} within 1e-6)"


def run_case(case: str, args, binary: Path, work: Path) -> Row:
    """Generate (or reuse) the case's input, run both sides ``args.repeat`` times in turn, compare."""
    me = [sys.executable, str(Path(__file__).resolve()), "--xarray-worker", case]
    logs, outs = work / "logs", work / "out"
    if case == "a":
        folder = write_daily_files(work / f"daily-{args.days}d-{args.grid}", args.days, args.grid, 200, "oc")
        src = str(folder / "oc_*.nc")
        what = f"{args.days} daily files {args.grid}x{args.grid} -> (100,64,64) cube"
        chunks = ",".join(f"{k}={v}" for k, v in OUT_CHUNKS.items())
        cf = lambda dst: [binary, "convert", src, dst, "--concat", "time", "--chunks", chunks, "--overwrite", "--quiet"]  # noqa: E731
    elif case == "b":
        folder = write_daily_files(work / f"small-{args.info_files}d", args.info_files, 16, 16, "d")
        src = str(folder / "d_*.nc")
        what = f"info over {args.info_files} small daily files"
        cf = lambda dst: [binary, "info", src, "--concat", "time", "--json"]  # noqa: E731
    else:
        tif = write_cog(work / f"cog-{args.cog_size}.tif", args.cog_size)
        src = str(tif)
        what = f"{args.cog_size}x{args.cog_size} uint16 COG -> (2048,2048) cube"
        cf = lambda dst: [binary, "convert", src, dst, "--chunks", f"y={COG_CHUNK},x={COG_CHUNK}", "--overwrite", "--quiet"]  # noqa: E731
    runs: dict[str, list[Run]] = {"xarray": [], "cubeforge": []}
    last: dict[str, Path] = {}
    for k in range(args.repeat):
        order = ["xarray", "cubeforge"] if k % 2 == 0 else ["cubeforge", "xarray"]
        for tool in order:
            dst = outs / f"{case}-{tool}-{k}.zarr"
            cmd = [*me, src, str(dst)] if tool == "xarray" else cf(str(dst))
            os.sync()
            runs[tool].append(measure([str(c) for c in cmd], logs, f"{case}-{tool}-{k}"))
            last[tool] = dst
            print(f"  {case} {tool} run {k + 1}: {runs[tool][-1].wall_s:.1f} s", file=sys.stderr)
    row = Row(case, what, summary(runs["xarray"]), summary(runs["cubeforge"]))
    if not (row.xarray["ok"] and row.cubeforge["ok"]):
        row.same = "-"
    elif case == "b":
        xdims = json.loads(runs["xarray"][-1].stdout.strip().splitlines()[-1])["dims"]
        try:
            cdims = json.loads(runs["cubeforge"][-1].stdout)["dims"]
        except (json.JSONDecodeError, KeyError) as err:
            cdims = f"unreadable info JSON: {err}"
        row.same = "yes" if cdims == xdims else f"dims {cdims} vs {xdims}"
    else:
        row.same = same_cube_sample(last["xarray"], last["cubeforge"], case)
    return row


# --------------------------------------------------------------------------------------------------
# Table
# --------------------------------------------------------------------------------------------------


def fmt(value, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def print_table(rows: list[Row]) -> None:
    head = f"{'case':<4} {'tool':<9} {'wall s':>9} {'cpu s':>9} {'peak MiB':>9}  note"
    print(head)
    print("-" * len(head))
    for row in rows:
        print(f"{row.case:<4} {row.what}")
        for tool in ("xarray", "cubeforge"):
            r = getattr(row, tool)
            if r["ok"]:
                print(f"{'':<4} {tool:<9} {r['wall_s']:>9.2f} {r['cpu_s']:>9.2f} {r['peak_rss_mib']:>9.0f}")
            else:
                print(f"{'':<4} {tool:<9} {'-':>9} {'-':>9} {'-':>9}  {r['error']}")
    print()
    print(f"{'case':<4} {'speed-up':>9} {'target':>7} {'RSS ratio':>10} {'cf MiB':>7} {'<=512':>6}  same output")
    for row in rows:
        x, c = row.xarray, row.cubeforge
        speed = x["wall_s"] / c["wall_s"] if x["ok"] and c["ok"] else None
        rss = x["peak_rss_mib"] / c["peak_rss_mib"] if x["ok"] and c["ok"] else None
        cf_mib = c["peak_rss_mib"] if c["ok"] else None
        meets = "-" if cf_mib is None else ("yes" if cf_mib <= TARGET_RSS_MIB else "NO")
        target = TARGET_SPEEDUP[row.case]
        mark = "" if speed is None else ("" if speed >= target else " (below)")
        print(
            f"{row.case:<4} {fmt(speed):>8}x {target:>6.0f}x {fmt(rss):>9}x {fmt(cf_mib, 0):>7} {meets:>6}  {row.same}{mark}"
        )


def main(argv: list[str]) -> int:
    if argv[:1] == ["--xarray-worker"]:
        xarray_worker(*argv[1:4])
        return 0
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bin", type=Path, default=DEFAULT_BIN, help="the cubeforge binary (default: $CUBEFORGE_BIN or the release build)")
    p.add_argument("--workdir", type=Path, default=ROOT / "bench" / "work" / "sources")
    p.add_argument("--cases", nargs="+", choices=["a", "b", "c"], default=["a", "b", "c"])
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--quick", action="store_true", help="small sizes: 30 days of 200x200, 365 info files, a 2048 px COG")
    p.add_argument("--days", type=int, default=365)
    p.add_argument("--grid", type=int, default=400)
    p.add_argument("--info-files", type=int, default=3650)
    p.add_argument("--cog-size", type=int, default=10980)
    p.add_argument("--keep-outputs", action="store_true", help="do not delete WORKDIR/out at the end")
    p.add_argument("--json", type=Path, help="also write every measurement here")
    args = p.parse_args(argv)
    if args.quick:
        args.days, args.grid, args.info_files, args.cog_size = 30, 200, 365, 2048
    binary = args.bin.expanduser()
    if not binary.is_file():
        print(f"error: no cubeforge binary at {binary} (--bin or CUBEFORGE_BIN)", file=sys.stderr)
        return 2
    work = args.workdir
    shutil.rmtree(work / "out", ignore_errors=True)
    rows = []
    for case in args.cases:
        print(f"case {case}: preparing input and running", file=sys.stderr)
        rows.append(run_case(case, args, binary, work))
    print_table(rows)
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in rows], indent=1))
    if not args.keep_outputs:
        shutil.rmtree(work / "out", ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
