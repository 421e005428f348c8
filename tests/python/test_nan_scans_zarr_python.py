"""NaN scans over inputs zarr-python wrote, against xarray.

``drop_all_nan`` and ``all(isnan(..))`` masks read Blosc chunks that nothing else in their pass
reads by their byte planes instead of decoding them (``blosc::Planes``). These inputs come from
zarr-python and numcodecs' own C-Blosc (LZ4, byte shuffle, the library's default split blocks),
in float32 and float64, with chunks of several Blosc blocks, and hold what the top bytes of a
float do not settle: days NaN everywhere with NaNs of several payloads, days NaN but for one
infinity, one largest finite value or one zero. The kept days and the mask must be xarray's.
"""

from __future__ import annotations

from pathlib import Path

import numcodecs
import numpy as np
import pytest
import xarray as xr

RECIPE = """\
version: 1
inputs:
  src:
    url: {src}
output:
  url: {out}
  zarr_format: 2
  chunks: {{time: 7, lat: 40, lon: 50}}
operations:
  - keep: [v]
  - drop_all_nan: {{variable: v, dim: time}}
  - assign: {{never: "all(isnan(v), 'time')"}}
  - astype: {{never: float32}}
{extra}"""


def nan_with_bits(dtype: str, bits: int):
    """A NaN of ``dtype`` with the given bit pattern."""
    width = np.uint32 if dtype == "float32" else np.uint64
    return np.array([bits], dtype=width).view(dtype)[0]


def make_values(dtype: str, nt: int, ny: int, nx: int) -> np.ndarray:
    """Values with ocean and land, and days whose NaN-ness only the low bytes decide."""
    rng = np.random.default_rng(7)
    v = rng.uniform(0.01, 30.0, size=(nt, ny, nx)).astype(dtype)
    v[:, :, :8] = np.nan  # land
    low = nan_with_bits(dtype, 0x7F800001 if dtype == "float32" else 0x7FF0000000000001)
    neg = -np.array(np.nan, dtype=dtype)
    for t in (3, 11, 12, 20):
        day = np.full((ny, nx), np.nan, dtype=dtype)
        day[::3] = low
        day[1::3] = neg
        v[t] = day
    for t, x in ((5, np.inf), (8, np.finfo(dtype).max), (14, 0.0), (17, -np.inf)):
        v[t] = low
        v[t, 30, 40] = x
    # A pixel NaN on every day that is kept.
    v[:, 10, 20] = np.nan
    return v


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("with_values", [True, False], ids=["with-values", "mask-only"])
def test_nan_scans_over_zarr_python_chunks_match_xarray(
    cubeforge, tmp_path: Path, dtype: str, with_values: bool
):
    """With ``v`` written too, the mask's pass decodes ``v`` and scans it in the cache; with the
    mask alone, both scans read byte planes."""
    nt, ny, nx = 53, 60, 70
    values = make_values(dtype, nt, ny, nx)
    ds = xr.Dataset(
        {"v": (("time", "lat", "lon"), values)},
        coords={
            "time": np.arange(nt, dtype="int64"),
            "lat": np.linspace(30, -29, ny),
            "lon": np.linspace(40, 109, nx),
        },
    )
    src = tmp_path / "src.zarr"
    compressor = numcodecs.Blosc(cname="lz4", clevel=5, shuffle=numcodecs.Blosc.SHUFFLE)
    ds.to_zarr(
        src,
        zarr_format=2,
        consolidated=True,
        encoding={"v": {"chunks": (40, ny, nx), "compressors": (compressor,)}},
    )
    # Chunks span several Blosc blocks (numcodecs' C-Blosc makes them 512 KiB here), the last
    # one shorter; rows cross block boundaries.
    header = (src / "v" / "0.0.0").read_bytes()[:16]
    nbytes, blocksize = (int.from_bytes(header[i : i + 4], "little") for i in (4, 8))
    assert header[2] & 0x10 == 0, "blocks not split"
    assert nbytes // blocksize >= 1 and nbytes % blocksize != 0

    out = tmp_path / "out.zarr"
    recipe = tmp_path / "recipe.yaml"
    extra = "" if with_values else "  - keep: [never]\n"
    recipe.write_text(RECIPE.format(src=src, out=out, extra=extra))
    cubeforge.run("build", recipe, "--output", out, "--quiet")

    with xr.open_dataset(src, engine="zarr") as ref:
        kept = ref.sel(time=~np.isnan(ref.v).all(dim=["lat", "lon"]))
        never = np.isnan(kept.v).all(dim="time").astype("float32")
        with xr.open_zarr(out) as got:
            # Days NaN everywhere dropped; those with an infinity, the largest value or a zero kept.
            assert set(kept.time.values.tolist()).isdisjoint({3, 11, 12, 20})
            assert {5, 8, 14, 17} <= set(kept.time.values.tolist())
            if with_values:
                np.testing.assert_array_equal(got.time.values, kept.time.values)
                np.testing.assert_array_equal(got.v.values, kept.v.values)
            else:
                assert "v" not in got
            np.testing.assert_array_equal(got.never.values, never.values)
            assert got.never.values[10, 20] == 1.0
