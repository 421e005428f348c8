"""Sources like seed 002's, and GDAL's answer for them, for the ``regrid`` tests (issue 19).

No tests here: generators of small sources (each written in well under a second), the target grids,
GDAL's reference (``rasterio.warp.reproject``, one time step and one variable at a time, on the values
xarray decodes), and the comparisons the tests make, each of which states its tolerance and, on a
mismatch, the worst pixel. See docs/designs/regrid.md sections 2, 3, 4.8 and 6.

Conventions of the references (design 2.4, 2.5):

- one 2-D warp per time step and variable (a multi-band warp unifies the NaN masks of its bands);
- values as xarray decodes them (``scale_factor``/``add_offset`` applied, ``_FillValue`` and a raster's
  nodata as NaN), except integer categorical rasters, warped as integers with their nodata value;
- ``src_nodata`` = ``dst_nodata`` = NaN (or the integer nodata), ``init_dest_nodata=True``,
  ``warp_mem_limit=4096`` (one warp chunk, so GDAL's kernel scale and transformer approximation are
  those of the whole grid);
- a source's affine is taken from its coordinates as the engine does (design 3.3): resolution
  ``(c[n-1] - c[0]) / (n - 1)``, origin ``c[0] - res/2``;
- sources whose seam (the antimeridian, or 0/360) falls inside the target are rolled with xarray
  before warping (design 4.8): GDAL 3.10 wraps global sources itself, but not well at the seam: its
  kernel scale estimate sees unit squares straddling it (bilinear there is blurred over many
  pixels, see :func:`gdal_seam_bilinear_is_blurred`), and the corner footprint of a target pixel
  whose east edge falls on the seam of a 0..360 source spans the whole row (``average`` of a pixel
  [-0.25, 0) takes every source column). The rolled warp is the reference; nearest agrees with
  GDAL's own wrap everywhere, average does for a -180..180 source.

Source pixel grids are chosen so that no target pixel centre and no target pixel corner falls within
0.02 source pixel of a source pixel boundary (on the same-CRS sources): exact comparisons of
``nearest``, ``min``, ``max``, ``mode`` and the quantiles then do not hang on the last bit of a
position.

Run ``python tests/python/regrid_refs.py DIR`` to write every source under DIR and print the shapes of
the references.
"""

from __future__ import annotations

import math
import sys
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import netCDF4
import numpy as np
import pandas as pd
import xarray as xr
from affine import Affine
from rasterio.warp import Resampling, reproject

# --------------------------------------------------------------------------------------------------
# Grids
# --------------------------------------------------------------------------------------------------

#: GDAL's names of the recipe's methods.
GDAL_METHOD = {
    "nearest": Resampling.nearest,
    "bilinear": Resampling.bilinear,
    "cubic": Resampling.cubic,
    "average": Resampling.average,
    "mode": Resampling.mode,
    "min": Resampling.min,
    "max": Resampling.max,
    "median": Resampling.med,
    "q1": Resampling.q1,
    "q3": Resampling.q3,
}
#: Methods whose results are source values (compared exactly on same-CRS grids).
PICKING = ("nearest", "mode", "min", "max", "median", "q1", "q3")
#: Methods that compute new values (compared within a tolerance).
COMPUTING = ("bilinear", "cubic", "average")
#: Area methods (footprint of the four corners); the others sample at the pixel centre.
AREA = ("average", "mode", "min", "max", "median", "q1", "q3")


def maybe_int(x: float, tol: float) -> float:
    """odc-geo's ``maybe_int``: ``x`` rounded when it is within ``tol`` of an integer."""
    r = round(x)
    return float(r) if abs(x - r) < tol else x


@dataclass(frozen=True)
class Grid:
    """A north-up (or south-up) pixel grid: CRS, the affine of pixel edges, and its shape."""

    crs: str
    transform: Affine
    width: int
    height: int

    @property
    def shape(self) -> tuple[int, int]:
        return (self.height, self.width)

    @property
    def dims(self) -> tuple[str, str]:
        return ("lat", "lon") if self.crs in ("EPSG:4326", "OGC:CRS84") else ("y", "x")

    def centres(self) -> tuple[np.ndarray, np.ndarray]:
        """(y, x) centres as odc-geo computes them: ``arange(n) * a + (c + a/2)``."""
        t = self.transform
        x = np.arange(self.width) * t.a + (t.c + t.a / 2)
        y = np.arange(self.height) * t.e + (t.f + t.e / 2)
        return y, x

    def shifted(self, dx_px: float = 0.0, dy_px: float = 0.0) -> "Grid":
        """The same grid with its affine moved by ``dx_px`` columns and ``dy_px`` rows."""
        t = self.transform
        return replace(self, transform=Affine(t.a, t.b, t.c + dx_px * t.a, t.d, t.e, t.f + dy_px * t.e))

    def bbox(self) -> tuple[float, float, float, float]:
        t = self.transform
        xs = (t.c, t.c + self.width * t.a)
        ys = (t.f, t.f + self.height * t.e)
        return (min(xs), min(ys), max(xs), max(ys))


def grid_from_bbox(crs: str, left: float, bottom: float, right: float, top: float, res: float,
                   anchor: float = 0.0, tol: float = 0.01) -> Grid:
    """odc-geo's ``GeoBox.from_bbox`` for ``resolution: res`` (x = res, y = -res) and an anchor fraction
    (0 edge, 0.5 center), with its 0.01 px tolerance (design 3.1)."""
    def axis(x0: float, x1: float) -> tuple[float, int]:
        off = anchor * res
        lo = math.floor(maybe_int((x0 - off) / res, tol))
        hi = math.ceil(maybe_int((x1 - off) / res, tol))
        return lo * res + off, max(1, hi - lo)

    x0, nx = axis(left, right)
    y0, ny = axis(bottom, top)
    return Grid(crs, Affine(res, 0.0, x0, 0.0, -res, y0 + ny * res), nx, ny)


#: The target grid of the seed-002 cube: 80 x 80 at 0.25 degree.
TARGET = grid_from_bbox("EPSG:4326", 60, 0, 80, 20, 0.25)
TARGET_BBOX = {"left": 60, "bottom": 0, "right": 80, "top": 20}
TARGET_RES = 0.25
#: The antimeridian tests' targets (bbox, the same resolution): across 180 and across 0/360.
ACROSS_180 = grid_from_bbox("EPSG:4326", 170, -10, 190, 10, 0.25)
ACROSS_0 = grid_from_bbox("EPSG:4326", -10, -10, 10, 10, 0.25)


def axis_affine(y: np.ndarray, x: np.ndarray) -> Affine:
    """A source's affine from its centre coordinates, as the engine takes it (design 3.3)."""
    y, x = np.asarray(y, "f8"), np.asarray(x, "f8")
    rx = (x[-1] - x[0]) / (len(x) - 1)
    ry = (y[-1] - y[0]) / (len(y) - 1)
    return Affine(rx, 0.0, x[0] - rx / 2, 0.0, ry, y[0] - ry / 2)


# --------------------------------------------------------------------------------------------------
# GDAL
# --------------------------------------------------------------------------------------------------


def warp2d(src: np.ndarray, src_transform: Affine, src_crs: str, dst: Grid, method: str,
           nodata: float | int = np.nan) -> np.ndarray:
    """One 2-D warp with GDAL (rasterio), as gdalwarp -r METHOD onto ``dst``; the result has ``src``'s dtype."""
    assert src.ndim == 2, "one time step, one variable at a time"
    out = np.full(dst.shape, nodata, dtype=src.dtype)
    reproject(
        source=np.ascontiguousarray(src),
        destination=out,
        src_transform=src_transform,
        src_crs=src_crs,
        dst_transform=dst.transform,
        dst_crs=dst.crs,
        src_nodata=nodata,
        dst_nodata=nodata,
        resampling=GDAL_METHOD[method],
        init_dest_nodata=True,
        warp_mem_limit=4096,
    )
    return out


def warp_steps(values: np.ndarray, src_transform: Affine, src_crs: str, dst: Grid, method: str,
               nodata: float | int = np.nan) -> np.ndarray:
    """``values`` (..., y, x) warped step by step: every leading index on its own."""
    lead = values.shape[:-2]
    flat = values.reshape((-1, *values.shape[-2:]))
    out = np.stack([warp2d(step, src_transform, src_crs, dst, method, nodata) for step in flat])
    return out.reshape((*lead, *dst.shape))


def warp_dataarray(da: xr.DataArray, dst: Grid, method: str, src_crs: str = "EPSG:4326",
                   ydim: str = "lat", xdim: str = "lon", nodata: float | int = np.nan) -> np.ndarray:
    """A decoded DataArray with dims (..., ydim, xdim), warped step by step; affine from its coordinates."""
    da = da.transpose(..., ydim, xdim)
    return warp_steps(da.values, axis_affine(da[ydim].values, da[xdim].values), src_crs, dst, method, nodata)


# --------------------------------------------------------------------------------------------------
# Sources
# --------------------------------------------------------------------------------------------------

#: The days of every daily source (the hourly source covers them too).
DAYS = pd.date_range("2022-03-01", periods=12, freq="D")
TIME_UNITS = "days since 1990-01-01"

# (a) daily ocean colour at 0.1 degree, latitudes descending. Edges at 59.98 + 0.1 i and
# 20.03 - 0.1 j: target centres fall at 0.45 / 0.95 px, corners at 0.2 / 0.7 px of a source pixel.
OC_LON = 59.98 + 0.1 * (np.arange(201) + 0.5)
OC_LAT = 20.03 - 0.1 * (np.arange(201) + 0.5)
# (a') daily sea-level anomaly at 0.2 degree, latitudes ascending, wider than the target.
SLA_LON = 55.03 + 0.2 * (np.arange(150) + 0.5)
SLA_LAT = -4.97 + 0.2 * (np.arange(150) + 0.5)
# (b) hourly reanalysis, global, 1 degree, longitudes 0..359 and latitudes 90..-90 as ERA5 has them.
ERA_LON = np.arange(360, dtype="f8")
ERA_LAT = np.linspace(90.0, -90.0, 181)
# (d) land cover at 0.04 degree, EPSG:4326, edges at 59.996 + 0.04 i and 20.004 - 0.04 j
# (corners at 0.1 / 0.35 / 0.6 / 0.85 px, centres at 0.225 / 0.475 / 0.725 / 0.975 px).
LC_TRANSFORM = Affine(0.04, 0.0, 59.996, 0.0, -0.04, 20.004)
LC_SIZE = 502
LC_NODATA = 0
LC_CLASSES = np.array([10, 20, 30, 40, 50, 60, 70, 80], dtype="u1")
# (c) a DEM in UTM 43N (EPSG:32643, lon 72..78), 550 m pixels (~50x finer than 0.25 degree), over
# about lon 72..78, lat 4..16, with nodata (-9999) at sea.
DEM_CRS = "EPSG:32643"
DEM_TRANSFORM = Affine(550.0, 0.0, 170_000.0, 0.0, -550.0, 1_770_000.0)
DEM_SHAPE = (2418, 1200)
DEM_NODATA = -9999.0
# (e) global sources for the antimeridian tests, 0.5 degree.
GLOBAL_LAT = 89.75 - 0.5 * np.arange(360)
LON_180 = -179.75 + 0.5 * np.arange(720)   # -180..180
LON_360 = 0.25 + 0.5 * np.arange(720)      # 0..360


def smooth(lat: np.ndarray, lon: np.ndarray, k: int) -> np.ndarray:
    """A field with a gradient along both axes and some curvature, different for each step ``k``."""
    yy, xx = np.meshgrid(lat, lon, indexing="ij")
    return 0.08 * (xx - 60) - 0.05 * yy + 0.4 * np.sin(xx / 3.1 + k / 5) * np.cos(yy / 2.3 - k / 7)


def _time_var(nc, dim: str, days) -> None:
    t = nc.createVariable(dim, "i4", (dim,))
    t.units, t.calendar, t.standard_name = TIME_UNITS, "standard", "time"
    t[:] = [(d - pd.Timestamp("1990-01-01")).days for d in days]


def _coord(nc, name: str, values: np.ndarray, units: str, standard_name: str) -> None:
    v = nc.createVariable(name, "f8", (name,))
    v.units, v.standard_name = units, standard_name
    v[:] = values


def write_oc_day(path: Path, day: pd.Timestamp, k: int) -> Path:
    """One day of ocean colour: float32 ``chl`` (NaN fill, a land blob and scattered holes) and int16
    ``sst`` packed with float32 scale/offset and a ``_FillValue`` (some pixels), descending lat."""
    rng = np.random.default_rng(100 + k)
    with netCDF4.Dataset(path, "w", format="NETCDF4") as nc:
        nc.title = "ocean colour, daily (regrid test)"
        nc.createDimension("time", None)
        nc.createDimension("lat", len(OC_LAT))
        nc.createDimension("lon", len(OC_LON))
        _coord(nc, "lat", OC_LAT, "degrees_north", "latitude")
        _coord(nc, "lon", OC_LON, "degrees_east", "longitude")
        _time_var(nc, "time", [day])
        base = smooth(OC_LAT, OC_LON, k)
        yy, xx = np.meshgrid(OC_LAT, OC_LON, indexing="ij")
        land = (xx - 70) ** 2 / 9 + (yy - 12) ** 2 / 16 < 1  # an island
        chl = nc.createVariable("chl", "f4", ("time", "lat", "lon"), zlib=True, fill_value=np.float32(np.nan),
                                chunksizes=(1, 100, 100))
        chl.units, chl.long_name = "mg m-3", "chlorophyll-a"
        values = np.exp(base + 0.05 * rng.standard_normal(base.shape)).astype("f4")
        values[land] = np.nan
        holes = rng.random(base.shape) < 0.03  # cloud gaps, different every day
        values[holes] = np.nan
        values[150:170, 20 + k:40 + k] = np.nan  # a cloud that moves
        chl[0] = values
        sst = nc.createVariable("sst", "i2", ("time", "lat", "lon"), zlib=True, fill_value=np.int16(-32768),
                                chunksizes=(1, 100, 100))
        sst.scale_factor, sst.add_offset, sst.units = np.float32(0.001), np.float32(20.0), "degC"
        sst.set_auto_maskandscale(False)
        raw = np.round(3000 * base + 50 * rng.standard_normal(base.shape)).astype("i2")
        raw[land] = -32768
        raw[rng.random(base.shape) < 0.01] = -32768
        sst[0] = raw
    return path


def write_oc(root: Path, days=DAYS) -> list[Path]:
    """The daily files ``root/daily/oc_YYYYMMDD.nc``, written in a shuffled order."""
    folder = root / "daily"
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"oc_{d:%Y%m%d}.nc" for d in days]
    for k in np.random.default_rng(1).permutation(len(days)):
        write_oc_day(paths[k], days[k], int(k))
    return paths


def write_sla(path: Path, days=DAYS) -> Path:
    """Daily float64 ``sla`` in one file, latitudes ascending, wider than the target, with NaN."""
    rng = np.random.default_rng(7)
    path.parent.mkdir(parents=True, exist_ok=True)
    with netCDF4.Dataset(path, "w", format="NETCDF4") as nc:
        nc.createDimension("time", len(days))
        nc.createDimension("lat", len(SLA_LAT))
        nc.createDimension("lon", len(SLA_LON))
        _coord(nc, "lat", SLA_LAT, "degrees_north", "latitude")
        _coord(nc, "lon", SLA_LON, "degrees_east", "longitude")
        _time_var(nc, "time", days)
        v = nc.createVariable("sla", "f8", ("time", "lat", "lon"), zlib=True, fill_value=np.nan)
        v.units = "m"
        values = np.stack([0.1 * smooth(SLA_LAT, SLA_LON, k + 3) for k in range(len(days))])
        values += 0.001 * rng.standard_normal(values.shape)
        values[:, 40:55, 60:80] = np.nan  # land, every day
        values[rng.random(values.shape) < 0.02] = np.nan
        v[:] = values
    return path


def write_era(path: Path, days=DAYS) -> Path:
    """Hourly ``t2m`` on a global 0..360 grid at 1 degree (ERA5's layout: ``valid_time, latitude,
    longitude``, latitudes 90..-90), packed int16 with a power-of-two scale so that decoded values and
    their daily sums are exact in float32; some NaN hours, and one pixel without a value for a day."""
    rng = np.random.default_rng(99)
    hours = len(days) * 24
    path.parent.mkdir(parents=True, exist_ok=True)
    with netCDF4.Dataset(path, "w", format="NETCDF4") as nc:
        nc.Conventions = "CF-1.7"
        nc.createDimension("valid_time", hours)
        nc.createDimension("latitude", len(ERA_LAT))
        nc.createDimension("longitude", len(ERA_LON))
        t = nc.createVariable("valid_time", "i8", ("valid_time",))
        t.units, t.calendar = "seconds since 1970-01-01", "proleptic_gregorian"
        t[:] = (days[0] - pd.Timestamp("1970-01-01")) // pd.Timedelta("1s") + 3600 * np.arange(hours)
        _coord(nc, "latitude", ERA_LAT, "degrees_north", "latitude")
        _coord(nc, "longitude", ERA_LON, "degrees_east", "longitude")
        v = nc.createVariable("t2m", "i2", ("valid_time", "latitude", "longitude"), zlib=True,
                              fill_value=np.int16(-32767), chunksizes=(24, 91, 180))
        v.scale_factor, v.add_offset, v.units = np.float32(2.0**-8), np.float32(280.0), "K"
        v.set_auto_maskandscale(False)
        yy, xx = np.meshgrid(ERA_LAT, ERA_LON, indexing="ij")
        field = 20 * np.cos(np.radians(yy)) + 3 * np.sin(np.radians(xx) * 2)
        for h in range(hours):
            hour = field + 2 * np.sin(2 * np.pi * (h % 24) / 24 + np.radians(xx)) + 0.3 * rng.standard_normal(field.shape)
            raw = np.clip(np.round(hour * 256), -32000, 32000).astype("i2")  # |t - 280| < 125 K
            if h % 24 in (5, 6, 7):
                raw[70:72, 65:70] = -32767  # some hours missing: the mean of the rest
            if 24 <= h < 48:
                raw[72, 68] = -32767  # a whole day missing at one pixel: NaN
            v[h] = raw
    return path


def write_dem(path: Path) -> Path:
    """A UTM 43N float32 DEM GeoTIFF (tiled, deflate) with nodata -9999 at sea (west of a wavy coast)."""
    import rasterio

    path.parent.mkdir(parents=True, exist_ok=True)
    ny, nx = DEM_SHAPE
    rows, cols = np.mgrid[0:ny, 0:nx].astype("f8")
    rng = np.random.default_rng(5)
    dem = 200 + 0.6 * cols + 0.3 * rows + 400 * np.sin(cols / 90) * np.cos(rows / 130) + 20 * rng.standard_normal((ny, nx))
    sea = cols < 150 + 60 * np.sin(rows / 200)
    dem[sea] = DEM_NODATA
    with rasterio.open(path, "w", driver="GTiff", width=nx, height=ny, count=1, dtype="float32", crs=DEM_CRS,
                       transform=DEM_TRANSFORM, nodata=DEM_NODATA, tiled=True, blockxsize=256, blockysize=256,
                       compress="DEFLATE") as dst:
        dst.write(dem.astype("f4")[None])
    return path


def dem_values() -> np.ndarray:
    """The DEM as xarray / rioxarray decode it (``mask_and_scale``): float32, nodata as NaN."""
    ny, nx = DEM_SHAPE
    rows, cols = np.mgrid[0:ny, 0:nx].astype("f8")
    rng = np.random.default_rng(5)
    dem = 200 + 0.6 * cols + 0.3 * rows + 400 * np.sin(cols / 90) * np.cos(rows / 130) + 20 * rng.standard_normal((ny, nx))
    dem = dem.astype("f4")
    dem[cols < 150 + 60 * np.sin(rows / 200)] = np.nan
    return dem


def lc_values() -> np.ndarray:
    """Land-cover classes (uint8, nodata 0): patches of 8 classes with noise, so that ``mode`` has
    ties to break, and a block of nodata."""
    rng = np.random.default_rng(11)
    y, x = np.mgrid[0:LC_SIZE, 0:LC_SIZE].astype("f8")
    field = np.sin(x / 23) + np.cos(y / 17) + 0.5 * np.sin((x + y) / 41) + 0.6 * rng.standard_normal(x.shape)
    idx = np.clip(((field + 2.5) / 5 * len(LC_CLASSES)).astype(int), 0, len(LC_CLASSES) - 1)
    lc = LC_CLASSES[idx]
    lc[300:360, 100:180] = LC_NODATA
    lc[rng.random(lc.shape) < 0.02] = LC_NODATA
    return lc


def write_lc(path: Path) -> Path:
    import rasterio

    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(path, "w", driver="GTiff", width=LC_SIZE, height=LC_SIZE, count=1, dtype="uint8",
                       crs="EPSG:4326", transform=LC_TRANSFORM, nodata=LC_NODATA, tiled=True, blockxsize=128,
                       blockysize=128, compress="DEFLATE") as dst:
        dst.write(lc_values()[None])
    return path


def write_global(path: Path, lon: np.ndarray, days=DAYS[:3]) -> Path:
    """A global float32 ``u10`` at 0.5 degree on longitudes ``lon`` (-180..180 or 0..360), smooth
    across the seam (periodic in longitude), with NaN holes, a few days."""
    rng = np.random.default_rng(3)
    path.parent.mkdir(parents=True, exist_ok=True)
    with netCDF4.Dataset(path, "w", format="NETCDF4") as nc:
        nc.createDimension("time", len(days))
        nc.createDimension("lat", len(GLOBAL_LAT))
        nc.createDimension("lon", len(lon))
        _coord(nc, "lat", GLOBAL_LAT, "degrees_north", "latitude")
        _coord(nc, "lon", lon, "degrees_east", "longitude")
        _time_var(nc, "time", days)
        v = nc.createVariable("u10", "f4", ("time", "lat", "lon"), zlib=True, fill_value=np.float32(np.nan))
        yy, xx = np.meshgrid(GLOBAL_LAT, lon, indexing="ij")
        steps = []
        for k in range(len(days)):
            f = 5 * np.sin(np.radians(xx) * 3 + k) + 3 * np.cos(np.radians(yy) * 4) + 0.2 * rng.standard_normal(xx.shape)
            f[rng.random(f.shape) < 0.03] = np.nan
            steps.append(f)
        v[:] = np.stack(steps).astype("f4")
    return path


# --------------------------------------------------------------------------------------------------
# Decoded sources and references
# --------------------------------------------------------------------------------------------------


def open_decoded(paths, **kwargs) -> xr.Dataset:
    """xarray's decoded view of one file or of daily files joined along time, loaded."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if isinstance(paths, (list, tuple)):
            ds = xr.open_mfdataset(sorted(paths), combine="nested", concat_dim="time", data_vars="minimal",
                                   coords="minimal", compat="override", engine="netcdf4")
            return ds.sortby("time").load()
        return xr.open_dataset(paths, engine="netcdf4", **kwargs).load()


def era_daily(path: Path) -> xr.DataArray:
    """The hourly ``t2m`` as the recipe makes it before ``regrid``: renamed, daily means (NaN skipped)."""
    ds = open_decoded(path)
    ds = ds.rename({"valid_time": "time", "latitude": "lat", "longitude": "lon"})
    return ds["t2m"].resample(time="1D").mean()


def roll_to(da: xr.DataArray, west: float) -> xr.DataArray:
    """Longitudes brought into ``[west, west + 360)`` and sorted: the source made contiguous over a
    target whose span starts at ``west`` (design 4.8: the reference rolls, the engine wraps)."""
    lon = (da["lon"] - west) % 360 + west
    return da.assign_coords(lon=lon).sortby("lon")


def dem_reference(method: str, dst: Grid = TARGET) -> np.ndarray:
    return warp2d(dem_values(), DEM_TRANSFORM, DEM_CRS, dst, method)


def lc_reference(method: str, dst: Grid = TARGET) -> np.ndarray:
    return warp2d(lc_values(), LC_TRANSFORM, "EPSG:4326", dst, method, nodata=LC_NODATA)


def gdal_seam_bilinear_is_blurred() -> bool:
    """Whether GDAL's own bilinear warp of a global source across its seam differs from the rolled
    warp (GDAL 3.10.3: yes, by up to several source pixels' worth: the XSCALE estimate sees unit
    squares that straddle the seam). Nearest and average agree; see the module docstring."""
    lon = LON_180
    src = np.tile(np.sin(np.radians(lon) * 3).astype("f8"), (len(GLOBAL_LAT), 1))
    wrapped = warp2d(src, axis_affine(GLOBAL_LAT, lon), "EPSG:4326", ACROSS_180, "bilinear")
    da = xr.DataArray(src, dims=("lat", "lon"), coords={"lat": GLOBAL_LAT, "lon": lon})
    rolled = warp_dataarray(roll_to(da, 0.0), ACROSS_180, "bilinear")
    return not np.allclose(wrapped, rolled, rtol=1e-6, atol=1e-9)


# --------------------------------------------------------------------------------------------------
# Comparisons
# --------------------------------------------------------------------------------------------------


@dataclass
class Comparison:
    """The outcome of one comparison: whether it holds, the tolerance it used, and what differs."""

    name: str
    ok: bool
    tolerance: str
    details: str = ""

    def __str__(self) -> str:
        state = "matches" if self.ok else "DIFFERS"
        return f"{self.name}: {state} (tolerance: {self.tolerance}){': ' + self.details if self.details else ''}"


def _where(idx: tuple) -> str:
    return "[" + ", ".join(str(int(i)) for i in idx) + "]"


def _packed_quantum(encoding: dict | None) -> float | None:
    if encoding and "scale_factor" in encoding and np.dtype(encoding.get("dtype", "f8")).kind in "iu":
        return float(encoding["scale_factor"])
    return None


def compare(name: str, got: np.ndarray, exp: np.ndarray, method: str, encoding: dict | None = None,
            ulps: int = 2) -> Comparison:
    """A cube variable ``got`` against GDAL's ``exp`` on a same-CRS grid (design 6 item 2).

    NaN masks must be identical. Picking methods (``nearest``, ``mode``, ``min``, ``max``, the
    quantiles) and integer results must be exact; ``bilinear``/``cubic``/``average`` within ``ulps``
    (2) ulp for float32, 1e-6 relative for float64, one count for integers (``interpolate_integers``). Where the cube stores the variable packed (``encoding``
    with an integer dtype and a ``scale_factor``, as xarray reports it), the reference is packed
    the same way and one packed count is allowed (a value within an ulp of a rounding boundary).
    """
    got, exp = np.asarray(got), np.asarray(exp)
    quantum = _packed_quantum(encoding)
    if exp.dtype.kind == "f":
        if got.dtype.kind != "f":
            return Comparison(name, False, "-", f"dtype {got.dtype}, GDAL's is {exp.dtype}")
        if quantum is None and got.dtype != exp.dtype:
            return Comparison(name, False, "-", f"dtype {got.dtype}, GDAL's is {exp.dtype}")
        got = got.astype(exp.dtype)
    elif got.dtype != exp.dtype:
        return Comparison(name, False, "-", f"dtype {got.dtype}, GDAL's is {exp.dtype}")
    if got.shape != exp.shape:
        return Comparison(name, False, "-", f"shape {got.shape}, GDAL's is {exp.shape}")
    if exp.dtype.kind == "f":
        gnan, enan = np.isnan(got), np.isnan(exp)
        if not np.array_equal(gnan, enan):
            bad = np.argwhere(gnan != enan)
            first = tuple(bad[0])
            return Comparison(name, False, "identical NaN masks",
                              f"{len(bad)} pixels differ in the mask, first at {_where(first)}: "
                              f"cubeforge={got[first]} GDAL={exp[first]}")
        valid = ~enan
    else:
        valid = np.ones(exp.shape, bool)
    if quantum is not None and exp.dtype.kind == "f":
        off = float(encoding.get("add_offset", 0.0))
        exp = (np.round((exp.astype("f8") - off) / quantum) * quantum + off).astype(exp.dtype)
        tol_text = f"packed: within one count ({quantum:g})"
        err = np.where(valid, np.abs(got.astype("f8") - exp.astype("f8")), 0.0)
        limit = np.full(exp.shape, quantum * 1.001)
    elif exp.dtype.kind in "iu" and method in COMPUTING:
        # interpolate_integers: GDAL rounds floor(x + 0.5) once; a sum in another order may land
        # on the other side of a .5 boundary.
        tol_text = "one integer count"
        err = np.abs(got.astype("f8") - exp.astype("f8"))
        limit = np.ones(exp.shape)
    elif method in PICKING or exp.dtype.kind in "iu":
        tol_text = "exact"
        err = np.where(valid, np.abs(got.astype("f8") - exp.astype("f8")), 0.0)
        limit = np.zeros(exp.shape)
    elif exp.dtype == np.float32:
        tol_text = f"{ulps} float32 ulp"
        err = np.where(valid, np.abs(got.astype("f8") - exp.astype("f8")), 0.0)
        limit = ulps * np.spacing(np.abs(exp).astype("f4")).astype("f8")
    else:
        tol_text = "1e-6 relative"
        err = np.where(valid, np.abs(got - exp), 0.0)
        limit = 1e-6 * np.abs(exp)
    over = valid & (err > limit)
    if over.any():
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            score = np.where(over, err / np.maximum(limit, np.finfo("f8").tiny), 0)
        worst = np.unravel_index(np.argmax(score), score.shape)
        return Comparison(name, False, tol_text,
                          f"{int(over.sum())} of {int(valid.sum())} valid pixels beyond it; worst at {_where(worst)}: "
                          f"cubeforge={got[worst]!r} GDAL={exp[worst]!r} |diff|={err[worst]:.3g} (allowed {limit[worst]:.3g})")
    return Comparison(name, True, tol_text)


def same_mask(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``a`` and ``b`` (float) with NaN wherever either has NaN: for comparing values alone."""
    nan = np.isnan(a) | np.isnan(b)
    return np.where(nan, np.nan, a).astype(a.dtype), np.where(nan, np.nan, b).astype(b.dtype)


def source_positions(dst: Grid, src_transform: Affine, src_crs: str, dx: float = 0.5, dy: float = 0.5):
    """Exact (pyproj, no approximation) fractional source pixel/line of the target positions
    (col + dx, row + dy) for every target pixel: arrays of shape ``dst.shape``."""
    from pyproj import Transformer

    rows, cols = np.mgrid[0:dst.height, 0:dst.width].astype("f8")
    t = dst.transform
    x = t.a * (cols + dx) + t.b * (rows + dy) + t.c
    y = t.d * (cols + dx) + t.e * (rows + dy) + t.f
    tr = Transformer.from_crs(dst.crs, src_crs, always_xy=True)
    sx, sy = tr.transform(x, y)
    inv = ~src_transform
    sx, sy = np.asarray(sx), np.asarray(sy)
    return inv.a * sx + inv.b * sy + inv.c, inv.d * sx + inv.e * sy + inv.f


def compare_reprojected(name: str, got: np.ndarray, exp: np.ndarray, method: str, src: np.ndarray,
                        src_transform: Affine, src_crs: str, dst: Grid, approx_px: float = 0.125,
                        share: float = 0.99) -> Comparison:
    """A reprojected variable (2-D) against GDAL's (design 6 item 2).

    GDAL's transformer is approximate (0.125 px), so:

    - NaN masks identical except target pixels whose validity can change when the source position
      moves by ``approx_px`` (point methods: the centre; area methods: the footprint's corners), i.e.
      next to the source's edge or to its nodata;
    - at least ``share`` of the valid pixels within 1e-6 relative;
    - every other valid pixel within ``0.13 x (max - min)`` of the valid source values in the pixel's
      kernel window (its corner footprint grown by one footprint width on each side).
    """
    got, exp = np.asarray(got, "f8"), np.asarray(exp, "f8")
    if got.shape != exp.shape:
        return Comparison(name, False, "-", f"shape {got.shape}, GDAL's is {exp.shape}")
    h, w = src.shape
    valid_src = ~np.isnan(src)
    corners_x, corners_y = source_positions(dst, src_transform, src_crs, 0.0, 0.0)
    # corners of every pixel: the lattice one larger than the grid
    big = Grid(dst.crs, dst.transform, dst.width + 1, dst.height + 1)
    cx, cy = source_positions(big, src_transform, src_crs, 0.0, 0.0)
    quad_x = np.stack([cx[:-1, :-1], cx[:-1, 1:], cx[1:, :-1], cx[1:, 1:]])
    quad_y = np.stack([cy[:-1, :-1], cy[:-1, 1:], cy[1:, :-1], cy[1:, 1:]])
    x0, x1 = quad_x.min(0), quad_x.max(0)
    y0, y1 = quad_y.min(0), quad_y.max(0)
    centre_x, centre_y = source_positions(dst, src_transform, src_crs)

    def any_valid(xa, xb, ya, yb) -> bool:
        i0, i1 = max(int(math.floor(xa)), 0), min(int(math.ceil(xb)), w)
        j0, j1 = max(int(math.floor(ya)), 0), min(int(math.ceil(yb)), h)
        return i0 < i1 and j0 < j1 and bool(valid_src[j0:j1, i0:i1].any())

    def point_valid(x, y) -> bool:
        i, j = int(math.floor(x)), int(math.floor(y))
        return 0 <= i < w and 0 <= j < h and bool(valid_src[j, i])

    e = approx_px
    gnan, enan = np.isnan(got), np.isnan(exp)
    mask_bad = []
    for r, c in np.argwhere(gnan != enan):
        if method in AREA:
            inner = any_valid(x0[r, c] + e, x1[r, c] - e, y0[r, c] + e, y1[r, c] - e)
            outer = any_valid(x0[r, c] - e, x1[r, c] + e, y0[r, c] - e, y1[r, c] + e)
            ambiguous = inner != outer
        else:
            px, py = centre_x[r, c], centre_y[r, c]
            ambiguous = len({point_valid(px + a, py + b) for a in (-e, 0, e) for b in (-e, 0, e)}) > 1
        if not ambiguous:
            mask_bad.append((r, c))
    tol = f"masks identical except within {approx_px} px of the source edge or nodata; >= {share:.0%} within 1e-6 relative, the rest within 0.13 x local range"
    if mask_bad:
        r, c = mask_bad[0]
        return Comparison(name, False, tol, f"{len(mask_bad)} pixels differ in the NaN mask away from any edge, "
                                            f"first at [{r}, {c}]: cubeforge={got[r, c]} GDAL={exp[r, c]}")
    both = ~gnan & ~enan
    n = int(both.sum())
    if n == 0:
        return Comparison(name, False, tol, "no pixel has a value on both sides")
    err = np.abs(got - exp)
    rel = np.where(both, err / np.maximum(np.abs(exp), 1e-300), 0)
    close = both & (rel <= 1e-6)
    frac = close.sum() / n
    worst_score, worst = -1.0, None
    far = []
    for r, c in np.argwhere(both & ~close):
        fw, fh = x1[r, c] - x0[r, c], y1[r, c] - y0[r, c]
        i0, i1 = max(int(math.floor(x0[r, c] - fw - 1)), 0), min(int(math.ceil(x1[r, c] + fw + 1)), w)
        j0, j1 = max(int(math.floor(y0[r, c] - fh - 1)), 0), min(int(math.ceil(y1[r, c] + fh + 1)), h)
        window = src[j0:j1, i0:i1]
        rng = float(np.nanmax(window) - np.nanmin(window)) if np.isfinite(window).any() else 0.0
        limit = 0.13 * rng
        score = err[r, c] / limit if limit > 0 else math.inf
        if score > worst_score:
            worst_score, worst = score, (r, c, limit)
        if err[r, c] > limit:
            far.append((r, c))
    details = f"{frac:.2%} of {n} valid pixels within 1e-6 relative"
    if worst is not None:
        r, c, limit = worst
        details += (f"; worst at [{r}, {c}]: cubeforge={got[r, c]!r} GDAL={exp[r, c]!r} |diff|={err[r, c]:.3g} "
                    f"(0.13 x local range = {limit:.3g})")
    ok = frac >= share and not far
    if far:
        details += f"; {len(far)} pixels beyond 0.13 x local range"
    return Comparison(name, ok, tol, details)


# --------------------------------------------------------------------------------------------------
# Self-check
# --------------------------------------------------------------------------------------------------


def write_all(root: Path) -> dict[str, Path | list[Path]]:
    """Every source of the seed-002 cube under ``root``."""
    return {
        "oc": write_oc(root),
        "sla": write_sla(root / "sla" / "sla.nc"),
        "era": write_era(root / "era" / "t2m.nc"),
        "dem": write_dem(root / "static" / "elevation_utm.tif"),
        "lc": write_lc(root / "static" / "landcover.tif"),
        "global180": write_global(root / "global" / "u10_180.nc", LON_180),
        "global360": write_global(root / "global" / "u10_360.nc", LON_360),
    }


def main(argv: list[str]) -> int:
    import time

    root = Path(argv[0]) if argv else Path("/tmp/regrid_refs")
    t0 = time.perf_counter()
    src = write_all(root)
    print(f"sources written under {root} in {time.perf_counter() - t0:.1f} s")
    t0 = time.perf_counter()
    oc = open_decoded(src["oc"])
    for var in ("chl", "sst"):
        for m in GDAL_METHOD:
            ref = warp_dataarray(oc[var], TARGET, m)
            print(f"oc.{var} {m:8s} {ref.dtype} {ref.shape} NaN {np.isnan(ref).mean():.3f}")
    sla = open_decoded(src["sla"])["sla"]
    ref = warp_dataarray(sla, TARGET, "cubic")
    print(f"sla cubic {ref.dtype} {ref.shape} NaN {np.isnan(ref).mean():.3f}")
    era = era_daily(src["era"])
    ref = warp_dataarray(era, TARGET, "bilinear")
    print(f"era.t2m daily bilinear {ref.dtype} {ref.shape} NaN {np.isnan(ref).mean():.3f}")
    for m in ("bilinear", "average"):
        ref = dem_reference(m)
        print(f"dem {m} {ref.dtype} {ref.shape} NaN {np.isnan(ref).mean():.3f}")
    for m in ("nearest", "mode", "min", "max", "median"):
        ref = lc_reference(m)
        print(f"lc {m} {ref.dtype} {ref.shape} nodata {(ref == LC_NODATA).mean():.3f} classes {np.unique(ref).tolist()}")
    for key, west, dst in (("global180", 0.0, ACROSS_180), ("global360", -180.0, ACROSS_0)):
        da = open_decoded(src[key])["u10"]
        for m in ("nearest", "bilinear", "average"):
            rolled = warp_dataarray(roll_to(da, west), dst, m)
            wrapped = warp_dataarray(da, dst, m)
            same = np.array_equal(rolled, wrapped, equal_nan=True)
            print(f"{key} {m} {rolled.shape} rolled == GDAL's own wrap: {same}")
    print(f"GDAL's bilinear across the seam blurred: {gdal_seam_bilinear_is_blurred()}")
    print(f"references in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
