"""`cubeforge build` interrupted and resumed, and its output opened by the reference readers.

- A build killed with SIGKILL at random moments leaves nothing xarray will open (unless it had
  committed a whole cube and was exiting); rerun with ``--resume`` it gives chunk files
  identical, byte for byte, to an uninterrupted build.
- The output opens unchanged in xarray, zarr-python and GDAL's Zarr driver (``gdalinfo``).
"""

from __future__ import annotations

import filecmp
import os
import random
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import xarray as xr
import zarr

RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "tutorial.yaml"
DAYS = 437


@pytest.fixture(scope="module")
def source(cubeforge, tmp_path_factory) -> Path:
    """One example input shared by the module's tests."""
    out = tmp_path_factory.mktemp("resume-input") / "io.zarr"
    cubeforge.example_io(out, DAYS)
    return out


@pytest.fixture(scope="module")
def reference_timed(cubeforge, source, tmp_path_factory) -> tuple[Path, float]:
    """An uninterrupted one-worker build of the tutorial recipe, and how long it took."""
    out = tmp_path_factory.mktemp("resume-reference") / "cube.zarr"
    start = time.monotonic()
    cubeforge.run("build", RECIPE, "--input", source, "--output", out, "--quiet", "--jobs", "1")
    return out, time.monotonic() - start


@pytest.fixture(scope="module")
def reference_build(reference_timed) -> Path:
    """An uninterrupted build of the tutorial recipe."""
    return reference_timed[0]


def chunk_files(root: Path) -> list[Path]:
    """Every chunk file under a v2 store (metadata documents and temporary files excluded)."""
    return sorted(
        p.relative_to(root)
        for p in root.rglob("*")
        if p.is_file() and not p.name.startswith(".")
    )


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_killed_build_resumes_to_identical_chunks(cubeforge, source, reference_timed, tmp_path, seed):
    reference_build, seconds = reference_timed
    out = tmp_path / "cube.zarr"
    rng = random.Random(seed)
    args = [str(cubeforge.binary), "build", str(RECIPE), "--input", str(source), "--output", str(out), "--quiet", "--jobs", "1"]
    kills = 0
    finished = []
    # Kill at a random moment of a whole build's time (process start and planning included),
    # whatever the machine's speed; when a build finishes first, start again with shorter delays.
    for round_ in range(6):
        shutil.rmtree(out, ignore_errors=True)
        scale = seconds * 0.5**round_
        for attempt in range(3):
            cmd = args + (["--resume"] if attempt else [])
            proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            time.sleep(rng.uniform(0.02, 0.9) * scale)
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
                kills += 1
                # An interrupted build has no group or consolidated metadata: readers refuse it.
                # The group metadata is written last, after every chunk: a build killed while
                # it exits, after writing it, has left a whole cube.
                if (out / ".zgroup").exists():
                    finished.append(xr.open_zarr(out).load())
                elif out.exists():
                    with pytest.raises(Exception):
                        xr.open_zarr(out).load()
            else:
                assert proc.returncode == 0, proc.stderr.read().decode()
                break
        if kills:
            break
    assert kills >= 1, "the build finished before it could be interrupted"
    done = subprocess.run(args + ["--resume"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr

    leftovers = [p for p in out.rglob("*.partial")]
    assert not leftovers, f"temporary files left after --resume: {leftovers[:5]}"
    want, got = chunk_files(reference_build), chunk_files(out)
    assert got == want, f"chunk files differ: missing {set(want) - set(got)}, extra {set(got) - set(want)}"
    _, mismatch, errors = filecmp.cmpfiles(reference_build, out, [str(p) for p in want], shallow=False)
    assert not mismatch and not errors, f"chunks differ: {mismatch[:5]} unreadable: {errors[:5]}"
    a, b = xr.open_zarr(reference_build).load(), xr.open_zarr(out).load()
    for c in [b, *finished]:
        xr.testing.assert_identical(a.drop_attrs(), c.drop_attrs())


def test_output_opens_in_xarray_and_zarr(reference_build):
    ds = xr.open_zarr(reference_build)
    assert set(ds.data_vars) == {"y", "so", "sst", "topo", "ocean_mask", "sin_time", "cos_time"}
    group = zarr.open_consolidated(str(reference_build), mode="r")
    assert group["sst"].shape == ds["sst"].shape
    assert group["sst"].chunks == (100, 64, 64)


def test_output_opens_in_gdal(reference_build):
    gdalinfo = shutil.which("gdalinfo")
    if gdalinfo is None:
        pytest.skip("gdalinfo not installed (scripts/setup-system.sh installs Debian's gdal-bin)")
    # The multidimensional view lists every array with its dimensions.
    proc = subprocess.run([gdalinfo, "-json", f'ZARR:"{reference_build}"'], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    mdim = subprocess.run(["gdalmdiminfo", str(reference_build)], capture_output=True, text=True)
    assert mdim.returncode == 0, mdim.stderr
    for name in ("sst", "so", "y", "ocean_mask", "time", "lat", "lon"):
        assert f'"{name}"' in mdim.stdout, f"gdalmdiminfo does not list {name}"
    # One 2-D slice of a 3-D array read as a raster, with the right size.
    ds = xr.open_zarr(reference_build)
    sub = subprocess.run(
        [gdalinfo, "-json", f'ZARR:"{reference_build}":/sst:0'], capture_output=True, text=True
    )
    assert sub.returncode == 0, sub.stderr
    assert f'"size":[{ds.sizes["lon"]},{ds.sizes["lat"]}]' in sub.stdout.replace(" ", "").replace("\n", "")


def test_v3_sharded_output_matches_v2(cubeforge, source, reference_build, tmp_path):
    recipe = RECIPE.read_text().replace("zarr_format: 2", "zarr_format: 3").replace(
        "  chunks: {time: 100, lat: 64, lon: 64}",
        "  chunks: {time: 100, lat: 64, lon: 64}\n  shards: {time: 200}",
    )
    path = tmp_path / "v3.yaml"
    path.write_text(recipe)
    out = tmp_path / "cube-v3.zarr"
    cubeforge.run("build", path, "--input", source, "--output", out, "--quiet")
    group = zarr.open_group(str(out), mode="r")
    assert group.metadata.zarr_format == 3
    assert group["sst"].chunks == (100, 64, 64)
    assert group["sst"].shards == (200, 64, 64)
    v3, v2 = xr.open_zarr(out).load(), xr.open_zarr(reference_build).load()
    xr.testing.assert_identical(v3.drop_attrs(), v2.drop_attrs())
