#!/usr/bin/env python3
"""Benchmark: regridding onto one grid (issue 19), ``cubeforge build`` vs GDAL warp per step and odc-geo.

Cases (``--cases a b c``), each run ``--repeat`` times in turn (baselines and cubeforge in an order
that rotates from round to round), every run a fresh process whose wall time, CPU time and peak RSS
come from ``wait4`` (tutorial.py's ``measure``: what ``/usr/bin/time -v`` reports); the table shows
the run of median wall time and the highest peak RSS of each tool:

a. ``--days`` (100) daily NetCDF-4 files of ``--grid`` (2000) x 2000 float32 ``chl`` at 0.01 degree
   (lon 60..80, lat 0..20, descending; zlib, chunks (1, 500, 500), NaN land and cloud gaps),
   regridded **bilinear** to ``--target-res`` (0.05 degree: 400 x 400), output chunks (10, 80, 80);
b. the same files regridded **average**;
c. one ``--cog-size`` (10980) square uint16 COG in UTM 43N (EPSG:32643, ``--cog-res`` 10 m, a
   Sentinel-2-like tile from 74.1 E 11.8 N; DEFLATE, predictor 2, 512 tiles, overviews, nodata 0) regridded **average**
   to the same grid, output chunks (80, 80).

Tools:

- ``cubeforge``: ``cubeforge build WORKDIR/recipes/CASE.yaml --output OUT --overwrite --quiet`` (the
  recipe's ``grid:`` and ``regrid`` as in docs/designs/regrid.md 4.3);
- ``rasterio``: GDAL warp per time step, ``rasterio.warp.reproject`` (the tests' reference
  settings: ``src_nodata``/``dst_nodata`` NaN or 0, ``init_dest_nodata``, ``warp_mem_limit=4096``,
  one step at a time), the steps stacked into an xarray Dataset with the grid's
  coordinates and written with ``to_zarr`` in the same chunks;
- ``odc``: odc-geo ``xr_reproject`` on dask chunks (``open_mfdataset(chunks={time: 1})`` /
  ``rioxarray.open_rasterio(chunks=...)``), then ``to_zarr``. Timed, not compared: odc-geo forces
  ``XSCALE=1, YSCALE=1`` (no kernel stretching when downsampling), so its bilinear values differ.

Checks after the runs: cubeforge's output against rasterio's (NaN masks, share of pixels within 1e-6
relative, worst difference), and **chunked == unchunked**: cubeforge once more with output chunks the
whole grid (untimed), every stored byte compared with the timed chunked run. The issue's targets: at
least 3x faster than the faster baseline, peak RSS at most 512 MiB.

Inputs are generated once and cached under ``--workdir`` (default ``bench/work/regrid``, git-ignored)
in directories named by their size. A failing run (e.g. a cubeforge without ``grid:``) shows its error
and the benchmark goes on. Usage::

    .venv/bin/python bench/regrid.py [--small] [--cases a b c] [--repeat 1] [--tools cubeforge rasterio odc] [--bin PATH] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tutorial import Run, measure  # noqa: E402  (wait4-based measurement of one process)

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_BIN = Path(os.environ.get("CUBEFORGE_BIN", "~/.cache/cubeforge/target/release/cubeforge")).expanduser()
#: The grid's extent (degrees) and the first day.
BBOX = {"left": 60.0, "bottom": 0.0, "right": 80.0, "top": 20.0}
FIRST_DAY = "2010-01-01"
TIME_CHUNK, SPACE_CHUNK = 10, 80
METHOD = {"a": "bilinear", "b": "average", "c": "average"}
COG_CRS = "EPSG:32643"
COG_ORIGIN = (399960.0, 1300020.0)  # upper left, metres: about 74.1 E, 11.8 N
COG_RES = 10.0
COG_NODATA = 0
#: The issue's targets: speed-up against the faster baseline, and cubeforge's peak RSS.
TARGET_SPEEDUP = 3.0
TARGET_RSS_MIB = 512
TOOLS = ("rasterio", "odc", "cubeforge")


# --------------------------------------------------------------------------------------------------
# Inputs (cached)
# --------------------------------------------------------------------------------------------------


def done(path: Path) -> bool:
    return (path / ".complete").is_file()


def mark_done(path: Path) -> None:
    (path / ".complete").write_text(time.strftime("%Y-%m-%dT%H:%M:%S\n"))


def source_axes(grid: int):
    """Centre coordinates of the daily grid: ``grid`` pixels over the 20-degree box, lat descending."""
    import numpy as np

    res = (BBOX["right"] - BBOX["left"]) / grid
    lon = BBOX["left"] + res * (np.arange(grid) + 0.5)
    lat = BBOX["top"] - res * (np.arange(grid) + 0.5)
    return lat, lon


def write_daily(folder: Path, days: int, grid: int) -> Path:
    """``days`` NetCDF-4 files ``chl_YYYYMMDD.nc``: float32 ``chl`` (NaN fill, land and moving cloud
    gaps as NaN), zlib level 4 + shuffle, chunks (1, 500, 500), float64 coordinates."""
    import netCDF4
    import numpy as np
    import pandas as pd

    if done(folder):
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    lat, lon = source_axes(grid)
    yy, xx = np.meshgrid(lat, lon, indexing="ij")
    land = (np.sin(yy / 2.1) * np.cos(xx / 1.7)) > 0.7
    rng = np.random.default_rng(0)
    base = pd.Timestamp(FIRST_DAY)
    chunk = min(500, grid)
    for k in range(days):
        day = base + pd.Timedelta(days=k)
        with netCDF4.Dataset(folder / f"chl_{day:%Y%m%d}.nc", "w", format="NETCDF4") as nc:
            nc.title = "synthetic daily ocean colour, 0.01 degree"
            nc.createDimension("time", None)
            nc.createDimension("lat", grid)
            nc.createDimension("lon", grid)
            v = nc.createVariable("lat", "f8", ("lat",))
            v.units, v.standard_name, v[:] = "degrees_north", "latitude", lat
            v = nc.createVariable("lon", "f8", ("lon",))
            v.units, v.standard_name, v[:] = "degrees_east", "longitude", lon
            t = nc.createVariable("time", "i4", ("time",))
            t.units, t.calendar = "days since 1970-01-01", "standard"
            t[:] = [(day - pd.Timestamp("1970-01-01")).days]
            chl = nc.createVariable("chl", "f4", ("time", "lat", "lon"), zlib=True, complevel=4, shuffle=True,
                                    chunksizes=(1, chunk, chunk), fill_value=np.float32(np.nan))
            chl.units = "mg m-3"
            f = np.exp(0.05 * (xx - 60) - 0.04 * yy + 0.5 * np.sin(xx / 2 + k / 9) * np.cos(yy / 3 - k / 13))
            f = (f * (1 + 0.05 * rng.standard_normal(f.shape))).astype("f4")
            f[land] = np.nan
            cloud = (np.sin(xx * 1.3 + k) * np.cos(yy * 1.1 - k / 2)) > 0.8
            f[cloud] = np.nan
            chl[0] = f
        print(f"  wrote day {k + 1}/{days}", file=sys.stderr, end="\r")
    print(file=sys.stderr)
    mark_done(folder)
    return folder


def write_utm_cog(path: Path, size: int, res: float = COG_RES) -> Path:
    """A ``size`` x ``size`` uint16 COG in EPSG:32643 (``res`` m, 10 by default): DEFLATE, predictor 2, 512 x 512 tiles,
    overviews, nodata 0 in a corner (as bench/sources.py's COG, placed inside the grid)."""
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
        driver="GTiff", width=size, height=size, count=1, dtype="uint16", crs=COG_CRS, nodata=COG_NODATA,
        transform=from_origin(*COG_ORIGIN, res, res), tiled=True, blockxsize=512, blockysize=512,
        compress="DEFLATE", predictor=2, BIGTIFF="IF_SAFER",
    )
    rng = np.random.default_rng(0)
    cols = np.arange(size)
    with rasterio.open(tmp, "w", **profile) as dst:
        for row0 in range(0, size, 512):
            rows = np.arange(row0, min(row0 + 512, size))
            block = 3000 + 1500 * np.sin(rows[:, None] / 700.0) * np.cos(cols[None, :] / 900.0)
            block += rng.normal(0, 120, size=block.shape)
            block = block.clip(1, 65535)
            block[(rows[:, None] + cols[None, :]) < size // 8] = COG_NODATA  # a no-data corner
            dst.write(block.astype("uint16")[None], window=Window(0, row0, size, len(rows)))
        dst.build_overviews([2, 4, 8, 16], Resampling.average)
    rio_copy(tmp, path, driver="COG", compress="DEFLATE", predictor=2, blocksize=512, BIGTIFF="IF_SAFER")
    tmp.unlink()
    return path


# --------------------------------------------------------------------------------------------------
# The target grid and the recipes
# --------------------------------------------------------------------------------------------------


def target(res: float) -> dict:
    """The target grid as a JSON-able spec: affine, shape, centres (odc-geo's formula)."""
    nx = round((BBOX["right"] - BBOX["left"]) / res)
    ny = round((BBOX["top"] - BBOX["bottom"]) / res)
    return {"res": res, "nx": nx, "ny": ny, "affine": [res, 0.0, BBOX["left"], 0.0, -res, BBOX["top"]]}


def recipe_text(case: str, src: str, res: float, chunks: dict) -> str:
    grid = (
        "grid:\n  crs: EPSG:4326\n"
        f"  bbox: {{left: {BBOX['left']}, bottom: {BBOX['bottom']}, right: {BBOX['right']}, top: {BBOX['top']}}}\n"
        f"  resolution: {res}\n"
    )
    chunk_text = "{" + ", ".join(f"{k}: {v}" for k, v in chunks.items()) + "}"
    if case in ("a", "b"):
        inp = f'  chl:\n    url: "{src}"\n    concat: time\n    operations:\n      - regrid: {{method: {METHOD[case]}}}\n'
    else:
        inp = (f'  scene:\n    url: "{src}"\n    bands: [reflectance]\n    operations:\n'
               f"      - regrid: {{method: {METHOD[case]}, interpolate_integers: true}}\n")
    return f"version: 1\n{grid}inputs:\n{inp}output:\n  chunks: {chunk_text}\n"


# --------------------------------------------------------------------------------------------------
# Baselines (each in its own process: ``regrid.py --worker TOOL CASE SRC DST SPEC``)
# --------------------------------------------------------------------------------------------------


def grid_coords(spec: dict):
    import numpy as np

    a, _, c, _, e, f = spec["affine"]
    lon = np.arange(spec["nx"]) * a + (c + a / 2)
    lat = np.arange(spec["ny"]) * e + (f + e / 2)
    return lat, lon


def rasterio_worker(case: str, src: str, dst: str, spec: dict) -> None:
    """GDAL warp one step at a time, stacked into a Dataset, ``to_zarr``."""
    import glob

    import netCDF4
    import numpy as np
    import pandas as pd
    import rasterio
    import xarray as xr
    from affine import Affine
    from rasterio.warp import Resampling, reproject

    dst_transform = Affine(*spec["affine"])
    lat, lon = grid_coords(spec)
    shape = (spec["ny"], spec["nx"])
    method = Resampling[METHOD[case]]
    if case in ("a", "b"):
        files = sorted(glob.glob(src))
        out = np.full((len(files), *shape), np.nan, "f4")
        times = []
        for k, path in enumerate(files):
            with netCDF4.Dataset(path) as nc:
                nc.set_auto_maskandscale(True)
                y, x = nc["lat"][:].data, nc["lon"][:].data
                values = np.ma.filled(nc["chl"][0], np.nan).astype("f4")
                t = nc["time"]
                times.append(netCDF4.num2date(t[0], t.units, t.calendar, only_use_cftime_datetimes=False))
            rx, ry = (x[-1] - x[0]) / (len(x) - 1), (y[-1] - y[0]) / (len(y) - 1)
            src_transform = Affine(rx, 0, x[0] - rx / 2, 0, ry, y[0] - ry / 2)
            reproject(values, out[k], src_transform=src_transform, src_crs="EPSG:4326", dst_transform=dst_transform,
                      dst_crs="EPSG:4326", src_nodata=np.nan, dst_nodata=np.nan, resampling=method,
                      init_dest_nodata=True, warp_mem_limit=4096)
        ds = xr.Dataset({"chl": (("time", "lat", "lon"), out)},
                        coords={"time": pd.to_datetime([str(t) for t in times]), "lat": lat, "lon": lon})
        ds = ds.chunk({"time": TIME_CHUNK, "lat": SPACE_CHUNK, "lon": SPACE_CHUNK})
    else:
        out = np.full(shape, COG_NODATA, "u2")
        with rasterio.open(src) as ds_in:
            reproject(rasterio.band(ds_in, 1), out, dst_transform=dst_transform, dst_crs="EPSG:4326",
                      src_nodata=COG_NODATA, dst_nodata=COG_NODATA, resampling=method, init_dest_nodata=True,
                      warp_mem_limit=4096)
        ds = xr.Dataset({"reflectance": (("lat", "lon"), out)}, coords={"lat": lat, "lon": lon})
        ds["reflectance"].encoding["_FillValue"] = COG_NODATA
        ds = ds.chunk({"lat": SPACE_CHUNK, "lon": SPACE_CHUNK})
    ds.to_zarr(dst, mode="w", zarr_format=2, consolidated=True)


def odc_worker(case: str, src: str, dst: str, spec: dict) -> None:
    """odc-geo ``xr_reproject`` on dask chunks, ``to_zarr`` (odc-geo forces XSCALE=YSCALE=1)."""
    import glob
    import warnings

    import dask
    import odc.geo.xr  # noqa: F401  (registers .odc)
    import xarray as xr
    from affine import Affine
    from odc.geo.geobox import GeoBox
    from odc.geo.xr import xr_reproject

    warnings.simplefilter("ignore")
    dask.config.set(scheduler="threads")
    gbox = GeoBox((spec["ny"], spec["nx"]), Affine(*spec["affine"]), "EPSG:4326")
    if case in ("a", "b"):
        ds = xr.open_mfdataset(sorted(glob.glob(src)), parallel=True, engine="h5netcdf", combine="nested",
                               concat_dim="time", data_vars="minimal", coords="minimal", compat="override",
                               chunks={"time": 1})
        da = ds["chl"].odc.assign_crs("EPSG:4326")
        out = xr_reproject(da, gbox, resampling=METHOD[case], dst_nodata=float("nan"))
        out = out.chunk({"time": TIME_CHUNK, "latitude": SPACE_CHUNK, "longitude": SPACE_CHUNK})
        result = out.to_dataset(name="chl")
    else:
        import rioxarray

        da = rioxarray.open_rasterio(src, chunks={"band": 1, "y": 2048, "x": 2048}, lock=False).squeeze("band", drop=True)
        out = xr_reproject(da, gbox, resampling=METHOD[case], dst_nodata=COG_NODATA)
        result = out.chunk({"latitude": SPACE_CHUNK, "longitude": SPACE_CHUNK}).to_dataset(name="reflectance")
    for name in result.variables:
        for key in ("chunksizes", "zlib", "shuffle", "complevel", "fletcher32", "contiguous", "preferred_chunks", "chunks"):
            result[name].encoding.pop(key, None)
    result.to_zarr(dst, mode="w", zarr_format=2, consolidated=True)


# --------------------------------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------------------------------


def values_of(path: Path, raw: bool = False) -> dict:
    import warnings

    import numpy as np
    import xarray as xr

    warnings.simplefilter("ignore")
    ds = xr.open_zarr(path, consolidated=None, mask_and_scale=not raw)
    return {str(k): np.asarray(v.values) for k, v in ds.data_vars.items()}


def compare_outputs(cf: Path, ref: Path, case: str) -> str:
    """cubeforge's output against rasterio's: masks, share within 1e-6 relative, worst difference."""
    import numpy as np

    try:
        a, b = values_of(cf), values_of(ref)
    except Exception as err:  # a missing or unreadable output
        return f"cannot open: {type(err).__name__}: {err}"[:120]
    name = "chl" if case in ("a", "b") else "reflectance"
    if name not in a:
        return f"no {name} in cubeforge's output"
    x, y = a[name].astype("f8"), b[name].astype("f8")
    if x.shape != y.shape:
        return f"shape {x.shape} vs {y.shape}"
    nx, ny = np.isnan(x), np.isnan(y)
    mask = int((nx != ny).sum())
    both = ~nx & ~ny
    if not both.any():
        return f"no common values; {mask} mask differences"
    err = np.abs(x - y)[both]
    rel = err / np.maximum(np.abs(y[both]), 1e-300)
    worst = float(err.max())
    return f"mask diff {mask}, {float((rel <= 1e-6).mean()):.2%} within 1e-6, max |diff| {worst:.3g}"


def same_bytes(a: Path, b: Path) -> str:
    """Every stored value of two cubeforge outputs, bit for bit: 'yes' or what differs."""
    import numpy as np

    try:
        x, y = values_of(a, raw=True), values_of(b, raw=True)
    except Exception as err:
        return f"cannot open: {type(err).__name__}"[:60]
    for name in x:
        if name not in y or np.ascontiguousarray(x[name]).tobytes() != np.ascontiguousarray(y[name]).tobytes():
            return f"NO ({name})"
    return "yes"


# --------------------------------------------------------------------------------------------------
# Runs
# --------------------------------------------------------------------------------------------------


@dataclass
class Row:
    case: str
    what: str
    results: dict = field(default_factory=dict)
    vs_rasterio: str = "-"
    chunked_eq_unchunked: str = "-"


def summary(runs: list[Run]) -> dict:
    """The run of median wall time, and the highest peak RSS of all runs."""
    ok = [r for r in runs if r.ok]
    if not ok:
        return {"ok": False, "error": runs[-1].error_line()}
    median = sorted(ok, key=lambda r: r.wall_s)[len(ok) // 2]
    return {"ok": True, "wall_s": median.wall_s, "cpu_s": median.cpu_s,
            "peak_rss_mib": max(r.peak_rss_mb for r in ok), "walls": [r.wall_s for r in ok]}


def run_case(case: str, args, binary: Path, work: Path) -> Row:
    logs, outs, recipes = work / "logs", work / "out", work / "recipes"
    recipes.mkdir(parents=True, exist_ok=True)
    spec = target(args.target_res)
    if case in ("a", "b"):
        folder = write_daily(work / f"daily-{args.days}d-{args.grid}", args.days, args.grid)
        src = str(folder / "chl_*.nc")
        what = (f"{args.days} daily {args.grid}x{args.grid} float32 -> {spec['ny']}x{spec['nx']} "
                f"{METHOD[case]}, chunks ({TIME_CHUNK},{SPACE_CHUNK},{SPACE_CHUNK})")
        chunks = {"time": TIME_CHUNK, "lat": SPACE_CHUNK, "lon": SPACE_CHUNK}
        whole = {"time": args.days, "lat": spec["ny"], "lon": spec["nx"]}
    else:
        src = str(write_utm_cog(work / f"utm-cog-{args.cog_size}-{args.cog_res:g}m.tif", args.cog_size, args.cog_res))
        what = f"{args.cog_size}^2 uint16 UTM COG at {args.cog_res:g} m -> {spec['ny']}x{spec['nx']} {METHOD[case]}, chunks ({SPACE_CHUNK},{SPACE_CHUNK})"
        chunks = {"lat": SPACE_CHUNK, "lon": SPACE_CHUNK}
        whole = {"lat": spec["ny"], "lon": spec["nx"]}
    recipe = recipes / f"{case}.yaml"
    recipe.write_text(recipe_text(case, src, args.target_res, chunks))
    recipe_whole = recipes / f"{case}-unchunked.yaml"
    recipe_whole.write_text(recipe_text(case, src, args.target_res, whole))
    me = [sys.executable, str(Path(__file__).resolve()), "--worker"]
    tools = [t for t in TOOLS if t in args.tools]
    runs: dict[str, list[Run]] = {t: [] for t in tools}
    last: dict[str, Path] = {}
    for k in range(args.repeat):
        order = tools[k % len(tools):] + tools[:k % len(tools)]
        for tool in order:
            dst = outs / f"{case}-{tool}-{k}.zarr"
            if tool == "cubeforge":
                cmd = [binary, "build", recipe, "--output", dst, "--overwrite", "--quiet"]
            else:
                cmd = [*me, tool, case, src, dst, json.dumps(spec)]
            os.sync()
            runs[tool].append(measure([str(c) for c in cmd], logs, f"{case}-{tool}-{k}"))
            last[tool] = dst
            r = runs[tool][-1]
            print(f"  {case} {tool} run {k + 1}: {r.wall_s:.1f} s, {r.peak_rss_mb:.0f} MiB"
                  + ("" if r.ok else f" FAILED {r.error_line()}"), file=sys.stderr)
    row = Row(case, what, {t: summary(runs[t]) for t in tools})
    cf_ok = "cubeforge" in tools and row.results["cubeforge"]["ok"]
    if cf_ok and "rasterio" in tools and row.results["rasterio"]["ok"]:
        row.vs_rasterio = compare_outputs(last["cubeforge"], last["rasterio"], case)
    if cf_ok:
        dst = outs / f"{case}-cubeforge-unchunked.zarr"
        run = measure([str(c) for c in (binary, "build", recipe_whole, "--output", dst, "--overwrite", "--quiet")],
                      logs, f"{case}-cubeforge-unchunked")
        row.chunked_eq_unchunked = same_bytes(last["cubeforge"], dst) if run.ok else f"unchunked run failed: {run.error_line()}"
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
        for tool, r in row.results.items():
            if r["ok"]:
                print(f"{'':<4} {tool:<9} {r['wall_s']:>9.2f} {r['cpu_s']:>9.2f} {r['peak_rss_mib']:>9.0f}")
            else:
                print(f"{'':<4} {tool:<9} {'-':>9} {'-':>9} {'-':>9}  {r['error']}")
    print()
    print(f"{'case':<4} {'vs rasterio':>11} {'vs odc':>7} {'target':>7} {'cf MiB':>7} {'<=512':>6}  "
          f"{'chunked==unchunked':<19} cubeforge vs rasterio")
    for row in rows:
        res = row.results
        c = res.get("cubeforge", {"ok": False})
        speed = {t: res[t]["wall_s"] / c["wall_s"] if c["ok"] and res.get(t, {}).get("ok") else None
                 for t in ("rasterio", "odc")}
        best = min((v for v in speed.values() if v is not None), default=None)  # against the faster baseline
        mark = "" if best is None else ("" if best >= TARGET_SPEEDUP else " (below)")
        cf_mib = c["peak_rss_mib"] if c["ok"] else None
        meets = "-" if cf_mib is None else ("yes" if cf_mib <= TARGET_RSS_MIB else "NO")
        print(f"{row.case:<4} {fmt(speed['rasterio']):>10}x {fmt(speed['odc']):>6}x {TARGET_SPEEDUP:>6.0f}x "
              f"{fmt(cf_mib, 0):>7} {meets:>6}  {row.chunked_eq_unchunked:<19} {row.vs_rasterio}{mark}")
    print("\nspeed-up = baseline s / cubeforge s (target: against the faster baseline); peak RSS from wait4; "
          "odc-geo is timed, not compared (it forces XSCALE=1).")


def main(argv: list[str]) -> int:
    if argv[:1] == ["--worker"]:
        tool, case, src, dst, spec = argv[1:6]
        (rasterio_worker if tool == "rasterio" else odc_worker)(case, src, dst, json.loads(spec))
        return 0
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bin", type=Path, default=DEFAULT_BIN, help="the cubeforge binary (default: $CUBEFORGE_BIN or the release build)")
    p.add_argument("--workdir", type=Path, default=ROOT / "bench" / "work" / "regrid")
    p.add_argument("--cases", nargs="+", choices=["a", "b", "c"], default=["a", "b", "c"])
    p.add_argument("--tools", nargs="+", choices=list(TOOLS), default=list(TOOLS))
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--small", action="store_true", help="10 days of 400x400 at 0.05 degree to 0.25 degree, a 2048 px COG at 100 m")
    p.add_argument("--days", type=int, default=100)
    p.add_argument("--grid", type=int, default=2000, help="source pixels per side over the 20-degree box (2000: 0.01 degree)")
    p.add_argument("--target-res", type=float, default=0.05)
    p.add_argument("--cog-size", type=int, default=10980)
    p.add_argument("--cog-res", type=float, default=COG_RES, help="the COG's pixel size in metres")
    p.add_argument("--generate-only", action="store_true", help="write the inputs and recipes, run nothing")
    p.add_argument("--keep-outputs", action="store_true", help="do not delete WORKDIR/out at the end")
    p.add_argument("--json", type=Path, help="also write every measurement here")
    args = p.parse_args(argv)
    if args.small:
        args.days, args.grid, args.target_res, args.cog_size, args.cog_res = 10, 400, 0.25, 2048, 100.0
    binary = args.bin.expanduser()
    work = args.workdir
    if args.generate_only:
        for case in args.cases:
            if case in ("a", "b"):
                write_daily(work / f"daily-{args.days}d-{args.grid}", args.days, args.grid)
            else:
                write_utm_cog(work / f"utm-cog-{args.cog_size}-{args.cog_res:g}m.tif", args.cog_size, args.cog_res)
        print(f"inputs under {work}")
        return 0
    if "cubeforge" in args.tools and not binary.is_file():
        print(f"error: no cubeforge binary at {binary} (--bin or CUBEFORGE_BIN)", file=sys.stderr)
        return 2
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
