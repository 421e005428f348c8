"""``rename_dims`` + ``resample`` against xarray's ``ds.rename(...).resample(...).HOW()``.

xarray writes an hourly Zarr store with ERA5-like dimension names: ten days from mid-day
2000-01-27 across the start of February, one day (2000-02-02) missing so that daily bins include
an empty one; a float32 variable with NaNs (a whole day NaN at one pixel), an int16 variable
packed with ``scale_factor``/``add_offset`` and a ``_FillValue``, a plain int32 variable, a
float64 series along time alone, a float32 variable whose time axis is its last (NumPy sums
those pairwise) and one over (time, lat) (whose last output chunk is one latitude wide: it must
still be summed as NumPy sums the whole variable), and a variable without time. cubeforge builds the recipe for several
frequencies, sides and reductions; every value, dtype and label must be xarray's: exactly for
``sum``/``min``/``max``/``count``/``first``/``last``, within 2 ulp of the type for
``mean``/``std``/``median``. The ``time_bnds`` variable must hold each bin's edges.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

RENAME = {"valid_time": "time", "latitude": "lat", "longitude": "lon"}

#: (freq, closed, label, hows) built and compared.
CASES = [
    ("1D", "left", "left", ["mean", "sum", "min", "max", "count", "first", "last", "median", "std"]),
    ("6h", "left", "left", ["mean", "count"]),
    ("2D", "right", "right", ["median", "std", "sum"]),
    ("W", "left", "left", ["max", "first", "count"]),
    ("W", "right", "right", ["min", "last"]),
    ("MS", "left", "left", ["mean", "sum"]),
    ("MS", "right", "right", ["mean"]),
    ("YS", "left", "left", ["count"]),
]

EXACT = {"sum", "min", "max", "count", "first", "last"}


@pytest.fixture(scope="module")
def hourly(tmp_path_factory):
    """The hourly input store (written by xarray) and the dataset xarray reads back from it."""
    rng = np.random.default_rng(18)
    times = pd.date_range("2000-01-27T05:00", "2000-02-06T04:00", freq="h")
    times = times[times.normalize() != pd.Timestamp("2000-02-02")]
    nt, ny, nx = len(times), 5, 7
    t2m = (270 + 15 * rng.standard_normal((nt, ny, nx))).astype(np.float32)
    t2m[rng.random((nt, ny, nx)) < 0.1] = np.nan
    t2m[(times.normalize() == pd.Timestamp("2000-01-30")), 2, 3] = np.nan
    sp = 1000 + 30 * rng.standard_normal((nt, ny, nx))
    sp[rng.random((nt, ny, nx)) < 0.05] = np.nan
    ds = xr.Dataset(
        {
            "t2m": (("valid_time", "latitude", "longitude"), t2m, {"units": "K"}),
            "sp": (("valid_time", "latitude", "longitude"), sp, {"units": "hPa"}),
            "n": (("valid_time", "latitude"), rng.integers(-50, 50, (nt, ny)).astype(np.int32)),
            "t1": (("valid_time", "latitude"), t2m[:, :, 0] * np.float32(0.37)),
            "series": (("valid_time",), 1e3 * rng.standard_normal(nt)),
            "tlast": (("latitude", "valid_time"), (5 + rng.standard_normal((ny, nt))).astype(np.float32)),
            "elev": (("latitude", "longitude"), rng.random((ny, nx)).astype(np.float32)),
        },
        coords={
            "valid_time": times,
            "latitude": np.linspace(60, 50, ny),
            "longitude": np.linspace(0, 6, nx),
        },
    )
    ds["tlast"][1, 5:40] = np.nan
    encoding = {
        "sp": {"dtype": "int16", "scale_factor": 0.05, "add_offset": 1000.0, "_FillValue": -32768},
        "valid_time": {"units": "hours since 1970-01-01", "dtype": "int64"},
        "t2m": {"chunks": (48, 5, 4)},
    }
    path = tmp_path_factory.mktemp("resample") / "hourly.zarr"
    ds.to_zarr(path, zarr_format=2, encoding=encoding, consolidated=True)
    return path, xr.open_zarr(path).load()


def recipe(src, out, freq, closed, label, how) -> str:
    return f"""version: 1
inputs:
  era: {{url: "{src}"}}
output:
  url: "{out}"
  chunks: {{time: 3, lat: 2, lon: 4}}
operations:
  - rename_dims: {{valid_time: time, latitude: lat, longitude: lon}}
  - resample: {{dim: time, freq: {freq}, how: {how}, closed: {closed}, label: {label}}}
"""


def ulps(a: np.ndarray, b: np.ndarray) -> int:
    """The largest distance in units in the last place between ``a`` and ``b`` (NaN equals NaN)."""
    assert a.dtype == b.dtype and a.dtype.kind == "f"
    both_nan = np.isnan(a) & np.isnan(b)
    assert np.array_equal(np.isnan(a), np.isnan(b))
    int_t = np.int32 if a.dtype == np.float32 else np.int64

    def ordered(x):
        i = x.view(int_t).astype(np.int64)
        return np.where(i < 0, np.iinfo(int_t).min - i, i)

    d = np.abs(ordered(a) - ordered(b))
    return int(np.max(np.where(both_nan, 0, d), initial=0))


@pytest.mark.parametrize(("freq", "closed", "label", "hows"), CASES)
def test_resample_matches_xarray(cubeforge, hourly, tmp_path, freq, closed, label, hows):
    src, ds = hourly
    renamed = ds.rename(RENAME)
    timed = [v for v in renamed.data_vars if "time" in renamed[v].dims]
    offset = pd.tseries.frequencies.to_offset(freq)
    worst = {}
    for how in hows:
        out = tmp_path / f"{how}.zarr"
        (tmp_path / f"{how}.yaml").write_text(recipe(src, out, freq, closed, label, how))
        cubeforge.run("build", tmp_path / f"{how}.yaml")
        cube = xr.open_zarr(out).load()
        ref = getattr(renamed[timed].resample(time=freq, closed=closed, label=label), how)()

        np.testing.assert_array_equal(cube.time.values, ref.time.values)
        assert cube.time.attrs["bounds"] == "time_bnds"
        # Each bin's edges: the label and the label one period on (or before).
        lo = ref.time.to_index() if label == "left" else ref.time.to_index() - offset
        hi = lo + offset
        np.testing.assert_array_equal(cube.time_bnds.values[:, 0], lo.values)
        np.testing.assert_array_equal(cube.time_bnds.values[:, 1], hi.values)
        assert cube.time_bnds.dims == ("time", "nv")
        for c in ("lat", "lon"):
            np.testing.assert_array_equal(cube[c].values, renamed[c].values)
        # A variable without time passes through.
        np.testing.assert_array_equal(cube.elev.values, renamed.elev.values)
        assert cube.elev.dims == ("lat", "lon")

        for v in timed:
            # cubeforge keeps each variable's dimension order, as xarray's DataArray.resample
            # and Dataset first/last do (Dataset mean, sum, … move time first).
            got, want = cube[v], ref[v]
            assert got.dims == renamed[v].dims, (how, v)
            want = want.transpose(*got.dims)
            assert got.dtype == want.dtype, (freq, how, v, got.dtype, want.dtype)
            assert got.attrs.get("units") == want.attrs.get("units"), (how, v)
            if how in EXACT or got.dtype.kind != "f":
                np.testing.assert_array_equal(got.values, want.values, err_msg=f"{freq} {how} {v}")
            else:
                worst[(how, v)] = ulps(got.values, want.values)
                assert worst[(how, v)] <= 2, (freq, how, v, worst[(how, v)])
    print(f"{freq} {closed}/{label}: ulp differences {worst}")


def test_rename_dims_errors_name_the_line(cubeforge, hourly, tmp_path):
    src, _ = hourly
    cases = {
        "{valid_time: time, depth: z}": "'depth' is not a dimension",
        "{valid_time: latitude}": "dimension 'latitude' exists",
        "{valid_time: t2m}": "variable 't2m' exists",
        "{valid_time: x, latitude: x}": "both renamed to 'x'",
    }
    for mapping, message in cases.items():
        path = tmp_path / "bad.yaml"
        path.write_text(
            f'version: 1\ninputs:\n  era: {{url: "{src}"}}\noutput: {{url: "{tmp_path / "o.zarr"}"}}\n'
            f"operations:\n  - keep: [t2m]\n  - rename_dims: {mapping}\n"
        )
        line = cubeforge.run_failing("build", path)
        assert "bad.yaml:7:" in line and "operations[1].rename_dims" in line and message in line, line
