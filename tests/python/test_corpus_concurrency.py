"""Corpus, concurrency: a second writer started while a first one runs into the same destination is
refused with the first one's identity, and the first one finishes with the cube it would have
written alone.

Every refused case: exit 2, one line naming the lock and its holder, no data lost (see corpus.py).
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest
import xarray as xr

from corpus import refused

RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "tutorial.yaml"
LOCK = ".cubeforge.lock"
DAYS = 1000


@pytest.fixture(scope="module")
def big(tmp_path_factory, cubeforge) -> Path:
    """An input large enough that a single-threaded build or copy of it runs for a while, and its cube."""
    root = tmp_path_factory.mktemp("concurrency")
    cubeforge.example_io(root / "in.zarr", days=DAYS)
    cubeforge.run("build", RECIPE, "--input", root / "in.zarr", "--output", root / "solo.zarr", "--quiet")
    return root


def start_and_wait_for_lock(cubeforge, args: list, dest: Path) -> subprocess.Popen:
    """Start cubeforge with ``args`` and return once it holds the lock of ``dest``."""
    proc = subprocess.Popen([str(cubeforge.binary), *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not (dest / LOCK).exists():
        assert proc.poll() is None, f"the first writer ended before taking its lock: {proc.communicate()}"
        assert time.monotonic() < deadline, "the first writer never took its lock"
        time.sleep(0.002)
    return proc


def listing(root: Path) -> dict[str, tuple[int, int]]:
    """Relative path -> (size, modification time) of every file below ``root``: cheap enough to take
    while a writer runs (hashing the input here would let the first writer finish first)."""
    return {p.relative_to(root).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()}


def first_build(big: Path, dest: Path) -> list:
    return ["build", RECIPE, "--input", big / "in.zarr", "--output", dest, "--jobs", "1", "--quiet"]


SECOND = [
    ("build --overwrite", lambda big, dest: ["build", RECIPE, "--input", big / "in.zarr", "--output", dest, "--overwrite"]),
    ("build --resume", lambda big, dest: ["build", RECIPE, "--input", big / "in.zarr", "--output", dest, "--resume"]),
    ("cp into it", lambda big, dest: ["cp", big / "solo.zarr", dest]),
    ("sync into it", lambda big, dest: ["sync", big / "solo.zarr", dest]),
    ("sync --delete into it", lambda big, dest: ["sync", big / "solo.zarr", dest, "--delete"]),
]


@pytest.mark.parametrize("name,second", SECOND, ids=[c[0] for c in SECOND])
def test_a_second_writer_during_a_build_is_refused(cubeforge, big, tmp_path, name, second):
    dest = tmp_path / "cube.zarr"
    before = listing(big)
    first = start_and_wait_for_lock(cubeforge, first_build(big, dest), dest)
    try:
        refused(cubeforge.binary, second(big, dest), expect=["locked by", "cubeforge build", "pid"])
    finally:
        out, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    assert listing(big) == before, "the input changed"
    assert not (dest / LOCK).exists(), "the lock outlived its build"
    with xr.open_zarr(dest) as got, xr.open_zarr(big / "solo.zarr") as want:
        got.attrs.pop("cubeforge_created")
        want.attrs.pop("cubeforge_created")
        xr.testing.assert_identical(got.load(), want.load())


@pytest.mark.parametrize("verb", ["cp", "sync"])
def test_a_build_during_a_copy_is_refused(cubeforge, big, tmp_path, verb):
    dest = tmp_path / "copy.zarr"
    first = start_and_wait_for_lock(cubeforge, [verb, big / "in.zarr", dest, "--concurrency", "1", "--quiet"], dest)
    try:
        refused(
            cubeforge.binary,
            ["build", RECIPE, "--input", big / "in.zarr", "--output", dest, "--overwrite"],
            expect=["locked by", f"cubeforge {verb}"],
        )
    finally:
        out, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    with xr.open_zarr(dest) as got, xr.open_zarr(big / "in.zarr") as want:
        xr.testing.assert_identical(got, want)


def test_two_syncs_into_one_store(cubeforge, big, tmp_path):
    dest = tmp_path / "mirror.zarr"
    shutil.copytree(big / "solo.zarr", tmp_path / "src.zarr")
    first = start_and_wait_for_lock(cubeforge, ["sync", big / "in.zarr", dest, "--concurrency", "1", "--quiet"], dest)
    try:
        refused(cubeforge.binary, ["sync", tmp_path / "src.zarr", dest, "--delete"], expect=["locked by", "cubeforge sync"])
    finally:
        out, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
