"""Issue 19 acceptance: a target ``grid:`` and ``regrid`` with GDAL's (``gdalwarp -r``) semantics.

Sources like seed 002's (regrid_refs.py writes them; every one small) are built into cubes with
``cubeforge build RECIPE --output DST`` and compared with GDAL (``rasterio.warp.reproject``, one time
step and one variable at a time, on xarray-decoded values; see regrid_refs.py for the reference's
conventions and docs/designs/regrid.md section 6 for the tolerances):

- same-CRS sources: identical NaN masks; ``nearest``/``mode``/``min``/``max``/``median``/``q1``/``q3``
  exact; ``bilinear``/``cubic``/``average`` within 2 float32 ulp (1e-6 relative for float64);
- the reprojected UTM DEM: masks identical except within 0.125 px of the source's edge or nodata,
  >= 99% of pixels within 1e-6 relative, the rest within 0.13 x the local range of the source;
- no pixel shift: the same comparison against the reference displaced by one and by half a pixel
  fails;
- bit-identical values whatever the output chunks and ``--jobs``;
- the grid reads back in rioxarray, odc-geo and GDAL's Zarr driver;
- ``expand`` and ``output.batch``; bad input refused (exit 2, one ``error:`` line naming the field and
  the recipe line, nothing written); ``cubeforge grid RECIPE --json`` against odc-geo.

The recipe shapes these tests use are the issue's (item 7) and the design's (section 4.3).
"""

from __future__ import annotations

import json
import re
import warnings
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import regrid_refs as R
from corpus import refused
from sources_compare import open_cube

GRID_BLOCK = """\
grid:
  crs: EPSG:4326
  bbox: {left: 60, bottom: 0, right: 80, top: 20}
  resolution: 0.25
"""

SEED002_VARS = ("chl", "sst", "sla", "t2m", "elevation", "landcover")


# --------------------------------------------------------------------------------------------------
# Recipes
# --------------------------------------------------------------------------------------------------


def oc_input(src: dict, regrid: str = "{method: {chl: bilinear, sst: average}}") -> str:
    folder = Path(src["oc"][0]).parent
    return f"""\
  oc:
    url: "{folder}/oc_*.nc"
    concat: time
    operations:
      - regrid: {regrid}
"""


def sla_input(src: dict, method: str = "cubic") -> str:
    return f"""\
  sla:
    url: "{src['sla']}"
    operations:
      - regrid: {{method: {method}}}
"""


def era_input(src: dict, method: str = "bilinear") -> str:
    return f"""\
  era:
    url: "{src['era']}"
    operations:
      - rename_dims: {{valid_time: time, latitude: lat, longitude: lon}}
      - resample: {{dim: time, freq: 1D, how: mean}}
      - regrid: {{method: {method}}}
"""


def dem_input(src: dict, method: str = "bilinear") -> str:
    return f"""\
  dem:
    url: "{src['dem']}"
    bands: [elevation]
    operations: [{{regrid: {{method: {method}}}}}]
"""


def lc_input(src: dict, regrid: str = "{method: mode}") -> str:
    return f"""\
  lc:
    url: "{src['lc']}"
    bands: [landcover]
    operations:
      - regrid: {regrid}
"""


def recipe(inputs: list[str], operations: list[str] = (), chunks: str = "{time: 10, lat: 32, lon: 32}",
           batch: str | None = None, grid: str = GRID_BLOCK) -> str:
    text = "version: 1\n" + grid + "inputs:\n" + "".join(inputs)
    if operations:
        text += "operations:\n" + "".join(f"  - {op}\n" for op in operations)
    text += f"output:\n  chunks: {chunks}\n"
    if batch:
        text += f"  batch: {batch}\n"
    return text


def seed002_recipe(src: dict, chunks: str = "{time: 10, lat: 32, lon: 32}",
                   batch: str | None = "{time: 10, lat: 32, lon: 32}") -> str:
    """Every source of seed 002 onto the 80 x 80 grid: oc (chl bilinear, sst average), sla (cubic,
    ascending latitudes), era (hourly 0..360, daily mean, bilinear), dem (UTM, bilinear, expanded
    along time like chl), lc (mode)."""
    return recipe(
        [oc_input(src), sla_input(src), era_input(src), dem_input(src), lc_input(src)],
        operations=["expand: {variables: [elevation], along: time, like: chl}"],
        chunks=chunks,
        batch=batch,
    )


def write_recipe(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "recipe.yaml"
    path.write_text(text)
    return path


def line_of(text: str, fragment: str) -> int:
    """1-based line of the first line of ``text`` containing ``fragment``."""
    for k, line in enumerate(text.splitlines(), start=1):
        if fragment in line:
            return k
    raise AssertionError(f"{fragment!r} not in the recipe")


def build(cubeforge, folder: Path, text: str, *flags: str) -> Path:
    """Write ``text`` as ``folder/recipe.yaml`` and build it into ``folder/cube.zarr``."""
    dst = folder / "cube.zarr"
    cubeforge.run("build", write_recipe(folder, text), "--output", dst, "--quiet", *flags)
    return dst


def open_raw(dst: Path) -> xr.Dataset:
    """The cube with values as stored (no fill-value masking, no unpacking), loaded."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return xr.open_zarr(dst, consolidated=None, mask_and_scale=False).load()


def check(*comparisons: R.Comparison) -> None:
    """Fail listing every comparison (with its tolerance and worst pixel) unless all hold."""
    bad = [c for c in comparisons if not c.ok]
    assert not bad, "\n".join(str(c) for c in comparisons)


# --------------------------------------------------------------------------------------------------
# Sources and references
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def src(tmp_path_factory) -> dict:
    return R.write_all(tmp_path_factory.mktemp("regrid-sources"))


@lru_cache(maxsize=None)
def _oc(folder: str) -> xr.Dataset:
    return R.open_decoded(sorted(Path(folder).glob("oc_*.nc")))


def oc_decoded(src: dict) -> xr.Dataset:
    return _oc(str(Path(src["oc"][0]).parent))


@lru_cache(maxsize=None)
def _reference(key: str, path: str, var: str, method: str) -> np.ndarray:
    if key == "oc":
        return R.warp_dataarray(_oc(path)[var], R.TARGET, method)
    if key == "sla":
        return R.warp_dataarray(R.open_decoded(Path(path))["sla"], R.TARGET, method)
    if key == "era":
        return R.warp_dataarray(R.era_daily(Path(path)), R.TARGET, method)
    if key == "dem":
        return R.dem_reference(method)
    if key == "lc":
        return R.lc_reference(method)
    raise KeyError(key)


def reference(src: dict, var: str, method: str) -> np.ndarray:
    """GDAL's result for ``var`` of the seed-002 sources by ``method`` on the 80 x 80 grid."""
    key = {"chl": "oc", "sst": "oc", "sla": "sla", "t2m": "era", "elevation": "dem", "landcover": "lc"}[var]
    path = str(Path(src["oc"][0]).parent) if key == "oc" else str(src[key])
    return _reference(key, path, var, method)


def as_decoded(exp: np.ndarray) -> np.ndarray:
    """GDAL's uint8 land cover (nodata 0) as xarray's rasterio engine decodes a uint8 band with
    nodata, and so as cubeforge reads and writes it: float32, NaN for nodata."""
    out = exp.astype("f4")
    out[exp == R.LC_NODATA] = np.nan
    return out


def compare_var(cube: xr.Dataset, raw: xr.Dataset, src: dict, var: str, method: str, step: int | None = None) -> R.Comparison:
    """One cube variable against GDAL: categorical rasters as stored (uint8 with nodata), the rest
    decoded; the DEM by the reprojection rule (for every time step it has)."""
    exp = reference(src, var, method)
    name = f"{var} ({method})"
    if var == "landcover":
        return R.compare(name, cube[var].transpose("lat", "lon").values, as_decoded(exp), method)
    da = cube[var]
    if var == "elevation":
        got = da.transpose(..., "lat", "lon").values
        got = got if got.ndim == 2 else got[0 if step is None else step]
        return R.compare_reprojected(name, got, exp, method, R.dem_values(), R.DEM_TRANSFORM, R.DEM_CRS, R.TARGET)
    return R.compare(name, da.transpose("time", "lat", "lon").values, exp, method, encoding=da.encoding)


# --------------------------------------------------------------------------------------------------
# The seed-002 cube
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def seed002(cubeforge, src, tmp_path_factory) -> Path:
    """The whole seed-002 recipe, built once: chunks (10, 32, 32), batch (10, 32, 32)."""
    return build(cubeforge, tmp_path_factory.mktemp("seed002"), seed002_recipe(src))


SEED002_METHODS = {"chl": "bilinear", "sst": "average", "sla": "cubic", "t2m": "bilinear",
                   "elevation": "bilinear", "landcover": "mode"}


@pytest.mark.parametrize("var", SEED002_VARS)
def test_seed002_variable_against_gdal(seed002, src, var):
    cube, raw = open_cube(seed002), open_raw(seed002)
    assert var in cube.data_vars, f"{var} missing from the cube: {sorted(cube.data_vars)}"
    check(compare_var(cube, raw, src, var, SEED002_METHODS[var]))


def test_seed002_grid_and_dims(seed002, src):
    cube = open_cube(seed002)
    y, x = R.TARGET.centres()
    assert np.array_equal(cube["lon"].values, x), "lon: not the grid's centres (odc-geo's formula)"
    assert np.array_equal(cube["lat"].values, y), "lat: not the grid's centres, descending"
    days = oc_decoded(src)["time"].values
    assert np.array_equal(cube["time"].values, days)
    for var in ("chl", "sst", "sla", "t2m", "elevation"):
        assert cube[var].dims == ("time", "lat", "lon"), (var, cube[var].dims)
    assert cube["landcover"].dims == ("lat", "lon")


# --------------------------------------------------------------------------------------------------
# Every method, per variable, on same-CRS grids
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", list(R.GDAL_METHOD))
def test_daily_netcdf_every_method(cubeforge, src, tmp_path, method):
    """chl (float32, NaN holes) and sst (packed int16 with _FillValue) at 0.1 degree, descending
    latitudes, 2.5 source pixels per target pixel (bilinear and cubic stretched, as gdalwarp)."""
    dst = build(cubeforge, tmp_path, recipe([oc_input(src, f"{{method: {method}}}")]))
    cube = open_cube(dst)
    check(*(R.compare(f"{v} ({method})", cube[v].transpose("time", "lat", "lon").values,
                      reference(src, v, method), method, encoding=cube[v].encoding) for v in ("chl", "sst")))


@pytest.mark.parametrize("method", ["nearest", "bilinear", "cubic", "average", "median"])
def test_ascending_latitudes(cubeforge, src, tmp_path, method):
    """sla: float64, latitudes ascending (a south-up source), wider than the target."""
    dst = build(cubeforge, tmp_path, recipe([sla_input(src, method)]))
    cube = open_cube(dst)
    check(R.compare(f"sla ({method})", cube["sla"].transpose("time", "lat", "lon").values,
                    R.warp_dataarray(R.open_decoded(src["sla"])["sla"], R.TARGET, method), method))


@pytest.mark.parametrize("method", ["bilinear", "average", "nearest"])
def test_hourly_0_360_resampled_daily(cubeforge, src, tmp_path, method):
    """t2m: hourly on a global 0..360 grid (ERA5 layout), daily means (xarray), then regridded."""
    dst = build(cubeforge, tmp_path, recipe([era_input(src, method)]))
    cube = open_cube(dst)
    check(R.compare(f"t2m ({method})", cube["t2m"].transpose("time", "lat", "lon").values,
                    reference(src, "t2m", method), method, encoding=cube["t2m"].encoding))


@pytest.mark.parametrize("method", ["mode", "nearest", "min", "max", "median"])
def test_landcover_categorical_exact(cubeforge, src, tmp_path, method):
    """uint8 classes (nodata 0) at 0.04 degree, read as xarray's rasterio engine reads them
    (float32, NaN for nodata): values exact (``mode`` ties as GDAL 3.10.3: the class that reached
    the top count first, row-major), every value one of the classes."""
    dst = build(cubeforge, tmp_path, recipe([lc_input(src, f"{{method: {method}}}")], chunks="{lat: 32, lon: 32}"))
    got = open_cube(dst)["landcover"].values
    assert got.dtype == np.float32, got.dtype
    assert set(np.unique(got[~np.isnan(got)])) <= set(R.LC_CLASSES.astype("f4"))
    check(R.compare(f"landcover ({method})", got, as_decoded(reference(src, "landcover", method)), method))


def test_landcover_bilinear_with_opt_in(cubeforge, src, tmp_path):
    """``interpolate_integers: true`` allows bilinear on uint8: GDAL's value, rounded floor(x + 0.5)
    to a whole number as GDAL stores it in the band's type."""
    text = recipe([lc_input(src, "{method: bilinear, interpolate_integers: true}")], chunks="{lat: 32, lon: 32}")
    got = open_cube(build(cubeforge, tmp_path, text))["landcover"].values
    valid = got[~np.isnan(got)]
    assert valid.size and np.array_equal(valid, np.round(valid)), "values are not whole numbers"
    check(R.compare("landcover (bilinear)", got, as_decoded(R.lc_reference("bilinear")), "bilinear"))


# --------------------------------------------------------------------------------------------------
# Reprojection
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["bilinear", "average"])
def test_utm_dem_downsampled_50x(cubeforge, src, tmp_path, method):
    """A UTM 43N DEM at 550 m (nodata at sea) onto 0.25 degree: ~50 source pixels per target pixel."""
    dst = build(cubeforge, tmp_path, recipe([dem_input(src, method)], chunks="{lat: 32, lon: 32}"))
    cube = open_cube(dst)
    got = cube["elevation"].transpose("lat", "lon").values
    check(R.compare_reprojected(f"elevation ({method})", got, R.dem_reference(method), method, R.dem_values(),
                                R.DEM_TRANSFORM, R.DEM_CRS, R.TARGET))


# --------------------------------------------------------------------------------------------------
# Antimeridian
# --------------------------------------------------------------------------------------------------

ANTIMERIDIAN = {
    # source longitudes, target grid (its bbox), the west edge the reference rolls the source to
    "180-source-onto-170..190": ("global180", R.ACROSS_180, "{left: 170, bottom: -10, right: 190, top: 10}", 0.0),
    "360-source-onto--10..10": ("global360", R.ACROSS_0, "{left: -10, bottom: -10, right: 10, top: 10}", -180.0),
}


@pytest.mark.parametrize("method", ["nearest", "bilinear", "average"])
@pytest.mark.parametrize("case", list(ANTIMERIDIAN))
def test_antimeridian(cubeforge, src, tmp_path, case, method):
    """A global source whose seam falls inside the target: the target keeps monotonic longitudes
    (170.125 .. 189.875), the source wraps. Reference: the source rolled with xarray to be contiguous
    over the target, then warped (GDAL's own wrap blurs bilinear at the seam, see regrid_refs)."""
    key, grid, bbox, west = ANTIMERIDIAN[case]
    grid_block = f"grid:\n  crs: EPSG:4326\n  bbox: {bbox}\n  resolution: 0.25\n"
    text = recipe([f"""\
  wind:
    url: "{src[key]}"
    operations:
      - regrid: {{method: {method}}}
"""], chunks="{time: 1, lat: 32, lon: 32}", grid=grid_block)
    cube = open_cube(build(cubeforge, tmp_path, text))
    y, x = grid.centres()
    assert np.array_equal(cube["lon"].values, x), f"lon {cube['lon'].values[[0, -1]]}, expected {x[[0, -1]]}"
    assert np.array_equal(cube["lat"].values, y)
    exp = R.warp_dataarray(R.roll_to(R.open_decoded(src[key])["u10"], west), grid, method)
    check(R.compare(f"u10 ({method}, {case})", cube["u10"].transpose("time", "lat", "lon").values, exp, method))


PROJECTED_TARGETS = {
    # CRS, bbox in its metres, resolution: grids of 60 x 60 pixels or so
    "EPSG:3031": ("{left: -3000000, bottom: -3000000, right: 3000000, top: 3000000}", 100000, (-3e6, -3e6, 3e6, 3e6)),
    "EPSG:3857": ("{left: 6000000, bottom: 0, right: 9000000, top: 3000000}", 50000, (6e6, 0, 9e6, 3e6)),
}


@pytest.mark.parametrize("crs", list(PROJECTED_TARGETS))
def test_projected_target_grid(cubeforge, src, tmp_path, crs):
    """A global 0.5 degree source (longitudes -180..180) onto a projected grid, Antarctic polar
    stereographic or Web Mercator: dims y/x, the CRS written back, nearest equal to GDAL's per step
    (except where the exact position lies within 0.125 px of a pixel boundary)."""
    import rioxarray  # noqa: F401  (the .rio accessor)

    bbox, res, edges = PROJECTED_TARGETS[crs]
    grid_block = f"grid:\n  crs: {crs}\n  bbox: {bbox}\n  resolution: {res}\n"
    text = recipe([f"""\
  wind:
    url: "{src['global180']}"
    operations:
      - regrid: {{method: nearest}}
"""], chunks="{time: 1, y: 32, x: 32}", grid=grid_block)
    cube = open_cube(build(cubeforge, tmp_path, text))
    grid = R.grid_from_bbox(crs, *edges, res)
    y, x = grid.centres()
    assert np.array_equal(cube["x"].values, x) and np.array_equal(cube["y"].values, y)
    assert cube["u10"].rio.crs.to_epsg() == int(crs.split(":")[1])
    da = R.open_decoded(src["global180"])["u10"]
    src_transform = R.axis_affine(da["lat"].values, da["lon"].values)
    for t in range(da.sizes["time"]):
        exp = R.warp2d(da.isel(time=t).transpose("lat", "lon").values, src_transform, "EPSG:4326", grid, "nearest")
        got = cube["u10"].isel(time=t).transpose("y", "x").values
        check(R.compare_reprojected(f"u10 (nearest onto {crs}, step {t})", got, exp, "nearest",
                                    da.isel(time=t).transpose("lat", "lon").values, src_transform, "EPSG:4326", grid))


# --------------------------------------------------------------------------------------------------
# No pixel shift
# --------------------------------------------------------------------------------------------------

SHIFTS = {"one pixel east": (1.0, 0.0), "half a pixel east": (0.5, 0.0),
          "one pixel south": (0.0, 1.0), "half a pixel south": (0.0, 0.5)}


@pytest.mark.parametrize("shift", list(SHIFTS))
def test_no_pixel_shift_same_crs(seed002, src, shift):
    """chl (bilinear, a gradient field): the comparison that holds against GDAL on the recipe's grid
    must fail against GDAL on the grid moved by one or by half a pixel, and against the reference
    rolled by one pixel (odc-stac#252, half-pixel corner/centre mix-ups)."""
    dx, dy = SHIFTS[shift]
    oc = oc_decoded(src)
    exp = reference(src, "chl", "bilinear")
    moved = R.warp_dataarray(oc["chl"], R.TARGET.shifted(dx, dy), "bilinear")
    # the comparison itself tells the two apart
    assert not R.compare("reference vs moved reference", moved, exp, "bilinear").ok
    got = open_cube(seed002)["chl"].transpose("time", "lat", "lon").values
    check(R.compare("chl (bilinear)", got, exp, "bilinear"))
    against_moved = R.compare(f"chl vs the reference moved {shift}", got, moved, "bilinear")
    assert not against_moved.ok, f"the cube also matches GDAL's result on a grid moved {shift}: {against_moved}"
    # not only the NaN masks: the values alone tell the grids apart too (the field has a gradient)
    values_only = R.compare("chl values vs moved", *R.same_mask(got, moved), "bilinear")
    assert not values_only.ok, f"the cube's values match GDAL's on a grid moved {shift}: {values_only}"
    if dx == 1.0 or dy == 1.0:  # the reference's array rolled by one pixel (east or south)
        rolled = np.roll(exp, 1, axis=2 if dx else 1)
        assert not R.compare("chl vs rolled", got, rolled, "bilinear").ok


@pytest.mark.parametrize("shift", list(SHIFTS))
def test_no_pixel_shift_reprojected(seed002, src, shift):
    """The same on the reprojected DEM (bilinear), with the reprojection tolerance."""
    dx, dy = SHIFTS[shift]
    exp = R.dem_reference("bilinear")
    moved = R.dem_reference("bilinear", R.TARGET.shifted(dx, dy))
    args = (R.dem_values(), R.DEM_TRANSFORM, R.DEM_CRS, R.TARGET)
    assert not R.compare_reprojected("reference vs moved", moved, exp, "bilinear", *args).ok
    got = open_cube(seed002)["elevation"].transpose("time", "lat", "lon").values[0]
    check(R.compare_reprojected("elevation (bilinear)", got, exp, "bilinear", *args))
    against_moved = R.compare_reprojected(f"elevation vs moved {shift}", got, moved, "bilinear", *args)
    assert not against_moved.ok, f"the cube also matches GDAL's result on a grid moved {shift}: {against_moved}"
    values_only = R.compare_reprojected("elevation values vs moved", *R.same_mask(got, moved), "bilinear", *args)
    assert not values_only.ok, f"the cube's values match GDAL's on a grid moved {shift}: {values_only}"


# --------------------------------------------------------------------------------------------------
# Determinism
# --------------------------------------------------------------------------------------------------


def stored_bytes(dst: Path) -> dict[str, bytes]:
    raw = open_raw(dst)
    return {str(k): np.ascontiguousarray(v.values).tobytes() for k, v in raw.variables.items() if v.ndim >= 2}


def test_chunking_and_jobs_do_not_change_a_bit(cubeforge, src, tmp_path):
    """The seed-002 recipe (no batch) with chunks (10, 32, 32) and (20, 80, 80), --jobs 1 and 2:
    every stored value bit-identical (including the reprojected and the 0..360 sources)."""
    builds = {
        "(10,32,32) jobs 2": ("{time: 10, lat: 32, lon: 32}", "2"),
        "(20,80,80) jobs 2": ("{time: 20, lat: 80, lon: 80}", "2"),
        "(10,32,32) jobs 1": ("{time: 10, lat: 32, lon: 32}", "1"),
        "(20,80,80) jobs 1": ("{time: 20, lat: 80, lon: 80}", "1"),
    }
    stored = {}
    for k, (label, (chunks, jobs)) in enumerate(builds.items()):
        dst = build(cubeforge, tmp_path / f"b{k}", seed002_recipe(src, chunks=chunks, batch=None), "--jobs", jobs)
        stored[label] = stored_bytes(dst)
    first, *rest = stored
    assert set(stored[first]) >= set(SEED002_VARS), sorted(stored[first])
    diffs = [f"{label}: {name} differs from {first}" for label in rest for name in stored[first]
             if stored[label].get(name) != stored[first][name]]
    assert not diffs, "\n".join(diffs)


def test_grid_like_an_input(cubeforge, src, tmp_path):
    """``grid: {like: oc}``: the daily files' own 0.1 degree grid (201 x 201, descending latitudes);
    the UTM DEM (nearest) onto it equals GDAL's warp onto that grid, and merges with ``oc``'s
    variables on their own coordinates (not regridded). Nearest, because GDAL 3.10 warps this
    pair in five chunks whatever ``warp_mem_limit`` (its source window is large against the
    target), each with its own scale, where cubeforge uses the whole grid's (docs/recipes.md)."""
    folder = Path(src["oc"][0]).parent
    text = ("version: 1\ngrid:\n  like: oc\ninputs:\n"
            f"  oc:\n    url: \"{folder}/oc_*.nc\"\n    concat: time\n" + dem_input(src, "nearest")
            + "output:\n  chunks: {time: 10, lat: 67, lon: 67}\n")
    cube = open_cube(build(cubeforge, tmp_path, text))
    oc = xr.open_dataset(src["oc"][0])
    assert np.array_equal(cube.lon.values, oc.lon.values) and np.array_equal(cube.lat.values, oc.lat.values)
    grid = R.Grid("EPSG:4326", R.axis_affine(oc.lat.values, oc.lon.values), oc.lon.size, oc.lat.size)
    got = cube["elevation"].transpose("lat", "lon").values
    check(R.compare_reprojected("elevation (nearest, like oc)", got, R.dem_reference("nearest", grid), "nearest",
                                R.dem_values(), R.DEM_TRANSFORM, R.DEM_CRS, grid))


@pytest.mark.parametrize("method", ["bilinear", "average"])
def test_windows_split_to_fit_memory_change_no_bit(cubeforge, src, tmp_path, method):
    """With a tiny --memory-limit the UTM DEM's source windows are read in bands of target rows
    (``WindowOp::split``): every stored value as with the default limit, and as GDAL's."""
    text = recipe([dem_input(src, method)], chunks="{lat: 80, lon: 80}")
    whole = stored_bytes(build(cubeforge, tmp_path / "whole", text))
    banded = build(cubeforge, tmp_path / "banded", text, "--memory-limit", "1M")
    assert stored_bytes(banded) == whole
    got = open_cube(banded)["elevation"].transpose("lat", "lon").values
    check(R.compare_reprojected(f"elevation ({method})", got, R.dem_reference(method), method, R.dem_values(),
                                R.DEM_TRANSFORM, R.DEM_CRS, R.TARGET))


# --------------------------------------------------------------------------------------------------
# Reading the grid back
# --------------------------------------------------------------------------------------------------


def test_rioxarray_reads_crs_and_transform(seed002):
    import rioxarray  # noqa: F401  (registers .rio)

    cube = open_cube(seed002)
    for var in ("chl", "elevation", "landcover"):
        da = cube[var]
        assert da.rio.crs is not None and da.rio.crs.to_epsg() == 4326, (var, da.rio.crs)
        assert tuple(da.rio.transform())[:6] == pytest.approx((0.25, 0, 60, 0, -0.25, 20), abs=1e-12), (var, da.rio.transform())
        assert da.rio.shape == (80, 80)


def test_odc_geo_geobox_equals_the_recipe_grid(seed002):
    import odc.geo.xr  # noqa: F401  (registers .odc)
    from odc.geo.geobox import GeoBox

    expected = GeoBox.from_bbox((60, 0, 80, 20), "EPSG:4326", resolution=0.25)
    cube = open_cube(seed002)
    for obj in (cube, cube["chl"]):
        gb = obj.odc.geobox
        assert gb is not None, "odc-geo finds no geobox"
        assert gb.shape == expected.shape and gb.crs == expected.crs, (gb.shape, gb.crs)
        a, e = gb.affine, expected.affine
        for got, want in zip(tuple(a)[:6], tuple(e)[:6]):
            assert abs(got - want) <= 1e-9 * 0.25, (tuple(a)[:6], tuple(e)[:6])  # 1e-9 px
    assert np.array_equal(cube["lon"].values, expected.coords["longitude"].values)
    assert np.array_equal(cube["lat"].values, expected.coords["latitude"].values)


def test_gdal_zarr_driver_reads_crs_and_transform(seed002):
    import rasterio

    for var in ("chl", "landcover"):
        with rasterio.open(f'ZARR:"{seed002}":/{var}') as ds:
            assert ds.crs is not None and ds.crs.to_epsg() == 4326, (var, ds.crs)
            assert tuple(ds.transform)[:6] == pytest.approx((0.25, 0, 60, 0, -0.25, 20), abs=1e-12), (var, ds.transform)
            assert (ds.height, ds.width) == (80, 80)


# --------------------------------------------------------------------------------------------------
# expand and output.batch
# --------------------------------------------------------------------------------------------------


def test_expand_gives_the_dem_chl_time_axis(seed002, src):
    cube = open_cube(seed002)
    elev = cube["elevation"]
    assert elev.dims == ("time", "lat", "lon"), elev.dims
    assert np.array_equal(elev["time"].values, cube["chl"]["time"].values)
    values = elev.values
    for k in range(1, values.shape[0]):
        assert values[k].tobytes() == values[0].tobytes(), f"time step {k} differs from step 0"
    check(compare_var(cube, open_raw(seed002), src, "elevation", "bilinear", step=0))


def test_batch_accepted_with_tiling_chunks(seed002):
    import zarr

    group = zarr.open_group(str(seed002), mode="r")
    for var in ("chl", "sst", "sla", "t2m", "elevation"):
        assert tuple(group[var].chunks) == (10, 32, 32), (var, group[var].chunks)
    assert tuple(group["landcover"].chunks) == (32, 32)


def test_batch_refused_when_chunks_do_not_tile(cubeforge, src, tmp_path):
    """chunks lat: 48 against batch lat: 32 (neither divides the other): refused before any data is
    read, naming the recipe line of ``batch``, a variable, the dim, and fitting chunk lengths
    (design 4.10: ``output.batch: sst has chunks lat: 48, which does not tile batch lat: 32 (neither
    divides the other); use lat: 32 or 64``)."""
    text = recipe([oc_input(src)], chunks="{time: 10, lat: 48, lon: 32}", batch="{time: 10, lat: 32, lon: 32}")
    path = write_recipe(tmp_path, text)
    dst = tmp_path / "cube.zarr"
    line = refused(cubeforge.binary, ["build", path, "--output", dst, "--quiet"],
                   expect=[f"recipe.yaml:{line_of(text, 'batch:')}", "output.batch", "lat", "48"], dest=[dst])
    assert "chl" in line or "sst" in line, f"the error names no variable: {line}"
    assert re.search(r"use\b[^;]*lat: ?(16|32|64|96)\b", line), f"no chunk suggestion (use lat: ...): {line}"
    assert not dst.exists(), "a refused recipe wrote something"


# --------------------------------------------------------------------------------------------------
# Bad input: exit 2, one line naming the field and the recipe line, nothing written
# --------------------------------------------------------------------------------------------------

BAD_GRIDS = {
    "crs-epsg-unknown": (GRID_BLOCK.replace("EPSG:4326", "EPSG:99999999"), "crs:", "grid.crs"),
    "crs-proj-nonsense": (GRID_BLOCK.replace("EPSG:4326", '"+proj=nonsense"'), "crs:", "grid.crs"),
    # UTM 43N (area of use: 72..78 E, 0..84 N) with a bbox in metres south of the equator
    "bbox-outside-area-of-use": (
        "grid:\n  crs: EPSG:32643\n  bbox: {left: 300000, bottom: -2000000, right: 700000, top: -1000000}\n  resolution: 1000\n",
        "bbox:", "grid.bbox"),
    "resolution-zero": (GRID_BLOCK.replace("resolution: 0.25", "resolution: 0"), "resolution:", "grid.resolution"),
    "resolution-negative": (GRID_BLOCK.replace("resolution: 0.25", "resolution: -0.25"), "resolution:", "grid.resolution"),
    "resolution-x-negative": (GRID_BLOCK.replace("resolution: 0.25", "resolution: {x: -0.25, y: -0.25}"), "resolution:", "grid.resolution"),
    "resolution-and-size": (GRID_BLOCK + "  size: {x: 80, y: 80}\n", "size:", "grid"),
    "bbox-left-after-right": (GRID_BLOCK.replace("left: 60", "left: 90"), "bbox:", "grid.bbox"),
}


@pytest.mark.parametrize("case", list(BAD_GRIDS))
def test_bad_grid_refused(cubeforge, src, tmp_path, case):
    grid, key, field = BAD_GRIDS[case]
    text = recipe([oc_input(src)], grid=grid)
    path = write_recipe(tmp_path, text)
    dst = tmp_path / "cube.zarr"
    if case == "resolution-and-size":  # either line will do: the conflict is between two fields
        line = refused(cubeforge.binary, ["build", path, "--output", dst, "--quiet"],
                       expect=[field, "resolution", "size"], dest=[dst])
        lines = {line_of(text, k) for k in ("grid:", "resolution:", "size:")}
        assert any(f"recipe.yaml:{n}:" in line for n in lines), f"no recipe line of grid/resolution/size {sorted(lines)}: {line}"
    else:
        refused(cubeforge.binary, ["build", path, "--output", dst, "--quiet"],
                expect=[f"recipe.yaml:{line_of(text, key)}", field], dest=[dst])
    assert not dst.exists(), "a refused recipe wrote something"


def test_bilinear_on_categorical_integers_refused(cubeforge, src, tmp_path):
    text = recipe([lc_input(src, "{method: bilinear}")], chunks="{lat: 32, lon: 32}")
    path = write_recipe(tmp_path, text)
    dst = tmp_path / "cube.zarr"
    refused(cubeforge.binary, ["build", path, "--output", dst, "--quiet"],
            expect=[f"recipe.yaml:{line_of(text, 'regrid:')}", "regrid", "bilinear", "landcover", "interpolate_integers"],
            dest=[dst], keep=[Path(src["lc"]).parent])
    assert not dst.exists(), "a refused recipe wrote something"


# --------------------------------------------------------------------------------------------------
# cubeforge grid RECIPE --json
# --------------------------------------------------------------------------------------------------

#: grid blocks and the odc-geo call each must equal
GRIDS = {
    "80x80": ("  bbox: {left: 60, bottom: 0, right: 80, top: 20}\n  resolution: 0.25\n",
              dict(bbox=(60, 0, 80, 20), resolution=0.25)),
    "anchor-center": ("  bbox: {left: 60, bottom: 0, right: 80, top: 20}\n  resolution: 0.25\n  anchor: center\n",
                      dict(bbox=(60, 0, 80, 20), resolution=0.25, anchor="center")),
    "trap-0..0.3-at-0.1": ("  bbox: {left: 0, bottom: 0, right: 0.3, top: 0.3}\n  resolution: 0.1\n",
                           dict(bbox=(0, 0, 0.3, 0.3), resolution=0.1)),
    "trap-0.1..0.7-at-0.1": ("  bbox: {left: 0.1, bottom: 0.1, right: 0.7, top: 0.7}\n  resolution: 0.1\n",
                             dict(bbox=(0.1, 0.1, 0.7, 0.7), resolution=0.1)),
    "xy-resolution": ("  bbox: {left: 60, bottom: 0, right: 80, top: 20}\n  resolution: {x: 0.25, y: -0.25}\n",
                      dict(bbox=(60, 0, 80, 20), resolution=0.25)),
}

#: The values the design pins (section 3.1): shape (y, x), affine a b c d e f.
PINNED = {
    "80x80": ((80, 80), (0.25, 0, 60, 0, -0.25, 20)),
    "anchor-center": ((81, 81), (0.25, 0, 59.875, 0, -0.25, 20.125)),
    "trap-0..0.3-at-0.1": ((3, 3), (0.1, 0, 0, 0, -0.1, 0.3)),
}


def grid_json(cubeforge, src, tmp_path, block: str) -> dict:
    text = recipe([oc_input(src)], grid="grid:\n  crs: EPSG:4326\n" + block)
    proc = cubeforge.run("grid", write_recipe(tmp_path, text), "--json")
    return json.loads(proc.stdout)


@pytest.mark.parametrize("case", list(GRIDS))
def test_grid_command_matches_odc_geo(cubeforge, src, tmp_path, case):
    """``cubeforge grid RECIPE --json`` prints (design 4.11): ``crs`` {``epsg``, ``name``, ...},
    ``dims`` [y, x], ``shape`` [ny, nx], ``resolution`` {x, y}, ``affine`` [a, b, c, d, e, f],
    ``geo_transform`` [c, a, b, f, d, e] (GDAL order), ``bbox`` {left, bottom, right, top},
    ``coords`` {dim: {first, last, size}} (pixel centres)."""
    from odc.geo.geobox import GeoBox

    block, kwargs = GRIDS[case]
    doc = grid_json(cubeforge, src, tmp_path, block)
    kwargs = dict(kwargs)
    gb = GeoBox.from_bbox(kwargs.pop("bbox"), "EPSG:4326", **kwargs)
    ny, nx = gb.shape.y, gb.shape.x
    aff = tuple(gb.affine)[:6]
    assert doc["crs"]["epsg"] == 4326, doc["crs"]
    assert doc["dims"] == ["lat", "lon"], doc["dims"]
    assert doc["shape"] == [ny, nx], (doc["shape"], (ny, nx))
    assert doc["affine"] == pytest.approx(aff, abs=1e-12), (doc["affine"], aff)
    assert doc["geo_transform"] == pytest.approx([aff[2], aff[0], aff[1], aff[5], aff[3], aff[4]], abs=1e-12)
    assert doc["resolution"] == pytest.approx({"x": aff[0], "y": aff[4]})
    bb = gb.boundingbox
    assert doc["bbox"] == pytest.approx({"left": bb.left, "bottom": bb.bottom, "right": bb.right, "top": bb.top}, abs=1e-12)
    lat, lon = gb.coords["latitude"].values, gb.coords["longitude"].values
    assert doc["coords"]["lat"] == pytest.approx({"first": lat[0], "last": lat[-1], "size": ny}, abs=1e-12)
    assert doc["coords"]["lon"] == pytest.approx({"first": lon[0], "last": lon[-1], "size": nx}, abs=1e-12)
    if case in PINNED:
        shape, affine = PINNED[case]
        assert tuple(doc["shape"]) == shape and doc["affine"] == pytest.approx(affine, abs=1e-12)


def test_grid_command_size_keeps_the_bbox(cubeforge, src, tmp_path):
    """``size`` (xcube gen's output_size): resolution from the bbox, origin at (left, top), no snapping."""
    doc = grid_json(cubeforge, src, tmp_path, "  bbox: {left: 60.01, bottom: 0, right: 80.01, top: 20}\n  size: {x: 80, y: 40}\n")
    assert doc["shape"] == [40, 80]
    assert doc["affine"] == pytest.approx([20 / 80, 0, 60.01, 0, -20 / 40, 20], abs=1e-12)


def test_info_shows_the_grid_of_gridded_inputs(cubeforge, src):
    """``info --json`` of a raster and of a NetCDF file on regular lat/lon coordinates: the same
    grid model as ``cubeforge grid`` (CRS, shape, affine as rasterio reports it)."""
    dem = json.loads(cubeforge.run("--json", "info", src["dem"]).stdout)["grid"]
    assert dem["crs"]["epsg"] == 32643 and dem["dims"] == ["y", "x"]
    assert dem["shape"] == list(R.DEM_SHAPE)
    assert dem["affine"] == list(R.DEM_TRANSFORM)[:6]
    oc = json.loads(cubeforge.run("--json", "info", src["oc"][0]).stdout)["grid"]
    assert oc["crs"]["epsg"] == 4326 and oc["shape"] == [R.OC_LAT.size, R.OC_LON.size]
    assert oc["coords"]["lon"]["first"] == R.OC_LON[0] and oc["coords"]["lat"]["last"] == R.OC_LAT[-1]


MODIS_SINU = "+proj=sinu +R=6371007.181 +nadgrids=@null +wktext +units=m"
PROJECTED_SOURCES = {
    # a source CRS, its transform and shape, the target grid (EPSG:4326), and `source_crs` to give
    # when the GeoTIFF's keys cannot say the CRS (GeoKeys have no sinusoidal method)
    "albers-3577": ("EPSG:3577", R.Affine(5000.0, 0.0, 0.0, 0.0, -5000.0, -2000000.0), (240, 300),
                    (130, -30, 140, -20, 0.1), None),
    "modis-sinusoidal": (MODIS_SINU, R.Affine(5000.0, 0.0, 6500000.0, 0.0, -5000.0, 2300000.0), (480, 400),
                         (60, 0, 80, 20, 0.25), MODIS_SINU),
    # the same CRS read from the GeoTIFF's keys (user-defined, CT_Sinusoidal on a sphere)
    "modis-sinusoidal-keys": (MODIS_SINU, R.Affine(5000.0, 0.0, 6500000.0, 0.0, -5000.0, 2300000.0), (480, 400),
                              (60, 0, 80, 20, 0.25), None),
}


@pytest.mark.parametrize("method", ["nearest", "bilinear"])
@pytest.mark.parametrize("case", list(PROJECTED_SOURCES))
def test_projected_sources(cubeforge, tmp_path, case, method):
    """A float32 raster in Australian Albers (EPSG:3577, by its GeoKeys) or in MODIS sinusoidal
    (a PROJ string given as ``source_crs``, or read from the file's GeoKeys) onto an EPSG:4326
    grid, against GDAL's warp of the same array (the reprojection rule of design 6)."""
    import rasterio

    crs, transform, (ny, nx), (left, bottom, right, top, res), source_crs = PROJECTED_SOURCES[case]
    rows, cols = np.mgrid[0:ny, 0:nx].astype("f8")
    values = (100 + 0.5 * cols - 0.3 * rows + 30 * np.sin(cols / 17) * np.cos(rows / 23)).astype("f4")
    values[(cols - nx / 3) ** 2 + (rows - ny / 2) ** 2 < (nx / 10) ** 2] = np.nan
    path = tmp_path / f"{case}.tif"
    with rasterio.open(path, "w", driver="GTiff", width=nx, height=ny, count=1, dtype="float32", crs=crs,
                       transform=transform, nodata=np.nan) as dst:
        dst.write(values[None])
    extra = f", source_crs: \"{source_crs}\"" if source_crs else ""
    grid = R.grid_from_bbox("EPSG:4326", left, bottom, right, top, res)
    text = ("version: 1\ngrid:\n  crs: EPSG:4326\n"
            f"  bbox: {{left: {left}, bottom: {bottom}, right: {right}, top: {top}}}\n  resolution: {res}\n"
            f"inputs:\n  r:\n    url: {path}\n    bands: [v]\n"
            f"    operations: [{{regrid: {{method: {method}{extra}}}}}]\n"
            "output:\n  chunks: {lat: 32, lon: 32}\n")
    got = open_cube(build(cubeforge, tmp_path, text))["v"].transpose("lat", "lon").values
    exp = R.warp2d(values, transform, crs, grid, method)
    assert np.isfinite(exp).sum() > 100, "the reference covers the grid"
    check(R.compare_reprojected(f"v ({method}, {case})", got, exp, method, values, transform, crs, grid))


def test_grid_mapping_without_wkt_is_not_taken_for_lon_lat(cubeforge, tmp_path):
    """A rotated-pole NetCDF (CF ``rotated_latitude_longitude``, coordinates ``rlat``/``rlon`` in
    degrees, no ``crs_wkt``) is refused naming the grid mapping, rather than regridded as if its
    coordinates were longitudes and latitudes; ``source_crs`` is the way to give a CRS."""
    import netCDF4

    path = tmp_path / "rotated.nc"
    with netCDF4.Dataset(path, "w") as nc:
        nc.createDimension("rlat", 20)
        nc.createDimension("rlon", 30)
        for name, n, std in (("rlat", 20, "grid_latitude"), ("rlon", 30, "grid_longitude")):
            v = nc.createVariable(name, "f8", (name,))
            v[:] = np.arange(n) * 0.5 - 5
            v.units, v.standard_name = "degrees", std
        gm = nc.createVariable("rotated_pole", "i4", ())
        gm.grid_mapping_name = "rotated_latitude_longitude"
        gm.grid_north_pole_latitude, gm.grid_north_pole_longitude = 39.25, -162.0
        t = nc.createVariable("tas", "f4", ("rlat", "rlon"))
        t.grid_mapping = "rotated_pole"
        t[:] = np.ones((20, 30), "f4")
    text = (GRID_BLOCK + f"inputs:\n  r:\n    url: {path}\n    operations:\n      - regrid: {{method: nearest}}\n"
            "output:\n  chunks: {lat: 32, lon: 32}\n")
    text = "version: 1\n" + text
    folder = tmp_path / "b"
    recipe_path = write_recipe(folder, text)
    err = cubeforge.run_failing("build", recipe_path, "--output", folder / "cube.zarr")
    assert "rotated_pole" in err and "source_crs" in err, err
    assert not (folder / "cube.zarr").exists()
