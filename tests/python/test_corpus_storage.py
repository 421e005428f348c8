"""Corpus, storage commands: ``cp``, ``sync``, ``rm`` and ``build`` on bad locations, locked
destinations and resumes that would keep chunks another build computed.

Every case: exit 2, one line naming what and where, nothing lost, no finished-looking store left
behind (see corpus.py).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
from pathlib import Path

import pytest

from corpus import refused

RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "tutorial.yaml"
LOCK = ".cubeforge.lock"
RECORD = ".cubeforge-build.json"


@pytest.fixture(scope="module")
def stores(tmp_path_factory, cubeforge) -> Path:
    """``in.zarr`` (20 days), ``other.zarr`` (20 days, another seed) and ``cube.zarr`` built from ``in.zarr``."""
    root = tmp_path_factory.mktemp("storage-input")
    cubeforge.example_io(root / "in.zarr", days=20)
    cubeforge.run("example", "io", "--days", "20", "--seed", "1", root / "other.zarr")
    cubeforge.run("build", RECIPE, "--input", root / "in.zarr", "--output", root / "cube.zarr", "--quiet")
    return root


@pytest.fixture
def work(tmp_path, stores) -> Path:
    for name in ("in.zarr", "other.zarr", "cube.zarr"):
        shutil.copytree(stores / name, tmp_path / name)
    return tmp_path


def write_lock(dest: Path, **changes) -> dict:
    """A lock in ``dest`` held by this (running) test process on this host, changed by ``changes``."""
    holder = {
        "owner": "tester",
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "started": "2026-01-01T00:00:00Z",
        "command": "build",
        **changes,
    }
    dest.mkdir(parents=True, exist_ok=True)
    (dest / LOCK).write_text(json.dumps(holder))
    return holder


LOCATIONS = [
    ("missing source", ["cp", "missing.zarr", "out.zarr"], ["missing.zarr"]),
    ("missing source, sync", ["sync", "missing.zarr", "out.zarr"], ["missing.zarr"]),
    ("empty source", ["cp", "", "out.zarr"], ["empty location"]),
    ("empty destination", ["cp", "in.zarr", ""], ["empty location"]),
    ("unknown scheme", ["cp", "in.zarr", "ftp://host/x"], ["unknown scheme"]),
    ("memory destination", ["cp", "in.zarr", "memory://x"], ["memory://"]),
    ("http destination is read-only", ["cp", "in.zarr", "http://127.0.0.1:9/x"], ["read-only"]),
    ("bucket without a name", ["rm", "-r", "s3:///x", "--yes"], ["missing bucket"]),
    ("key climbing out of its prefix", ["rm", "-r", "s3://b/a/../c", "--yes"], [".."]),
    ("rm a prefix without -r", ["rm", "in.zarr"], ["use rm -r"]),
    ("rm -r without --yes off a terminal", ["rm", "-r", "in.zarr"], ["--yes"]),
    ("rm of nothing", ["rm", "nothing-here"], ["nothing-here"]),
    ("build from a missing input", ["build", RECIPE, "--input", "missing.zarr", "--output", "o.zarr"], ["missing.zarr"]),
    ("build into an existing cube without flags", ["build", RECIPE, "--input", "in.zarr", "--output", "cube.zarr"], ["cube.zarr"]),
]


@pytest.mark.parametrize("name,args,expect", LOCATIONS, ids=[c[0] for c in LOCATIONS])
def test_bad_locations(cubeforge, work, name, args, expect):
    refused(
        cubeforge.binary,
        args,
        expect=expect,
        keep=[work / "in.zarr", work / "cube.zarr"],
        dest=[work / "out.zarr"],
        cwd=work,
        stdin="",
    )


LOCKED = [
    ("build --overwrite", ["build", RECIPE, "--input", "in.zarr", "--output", "cube.zarr", "--overwrite"]),
    ("build --resume", ["build", RECIPE, "--input", "in.zarr", "--output", "cube.zarr", "--resume"]),
    ("cp", ["cp", "other.zarr", "cube.zarr"]),
    ("sync", ["sync", "other.zarr", "cube.zarr"]),
    ("sync --delete", ["sync", "other.zarr", "cube.zarr", "--delete"]),
]


@pytest.mark.parametrize("name,args", LOCKED, ids=[c[0] for c in LOCKED])
def test_a_running_writers_lock_is_respected(cubeforge, work, name, args):
    holder = write_lock(work / "cube.zarr")
    refused(
        cubeforge.binary,
        args,
        expect=["locked by", f"pid {holder['pid']}", "--break-lock", "cube.zarr"],
        keep=[work / "cube.zarr", work / "in.zarr"],
        dest=[work / "cube.zarr"],
        cwd=work,
    )


@pytest.mark.parametrize("name,args", LOCKED[:3], ids=[c[0] for c in LOCKED[:3]])
def test_a_lock_from_another_host_is_never_broken_silently(cubeforge, work, name, args):
    write_lock(work / "cube.zarr", host="elsewhere.example", pid=1)
    refused(
        cubeforge.binary,
        args,
        expect=["elsewhere.example", "--break-lock"],
        keep=[work / "cube.zarr"],
        dest=[work / "cube.zarr"],
        cwd=work,
    )


def test_an_unreadable_lock_is_respected(cubeforge, work):
    (work / "cube.zarr" / LOCK).write_text("{not json")
    refused(
        cubeforge.binary,
        ["sync", "other.zarr", "cube.zarr"],
        expect=["unreadable lock"],
        keep=[work / "cube.zarr"],
        cwd=work,
    )


def interrupted_build(cubeforge, work: Path) -> Path:
    """``part.zarr``: a build of ``in.zarr`` whose commit did not happen (its record, no metadata)."""
    dest = work / "part.zarr"
    cubeforge.run("build", RECIPE, "--input", work / "in.zarr", "--output", dest, "--quiet")
    record = {
        "cubeforge_recipe_sha256": json.loads((dest / ".zattrs").read_text())["cubeforge_recipe_sha256"],
        "cubeforge_inputs": json.loads((dest / ".zattrs").read_text())["cubeforge_inputs"],
        "cubeforge_version": json.loads((dest / ".zattrs").read_text())["cubeforge_version"],
    }
    for key in (".zgroup", ".zmetadata"):
        (dest / key).unlink()
    (dest / RECORD).write_text(json.dumps(record))
    return dest


def test_resume_refuses_a_changed_recipe(cubeforge, work):
    dest = interrupted_build(cubeforge, work)
    recipe = work / "changed.yaml"
    recipe.write_text(RECIPE.read_text().replace("time: 100", "time: 50"))
    refused(
        cubeforge.binary,
        ["build", recipe, "--input", "in.zarr", "--output", dest, "--resume"],
        expect=["part.zarr", "recipe changed", "--overwrite"],
        keep=[dest, work / "in.zarr"],
        dest=[dest],
        cwd=work,
    )


def test_resume_refuses_changed_inputs(cubeforge, work):
    dest = interrupted_build(cubeforge, work)
    refused(
        cubeforge.binary,
        ["build", RECIPE, "--input", "other.zarr", "--output", dest, "--resume"],
        expect=["inputs changed", "other.zarr"],
        keep=[dest],
        dest=[dest],
        cwd=work,
    )


def test_resume_refuses_another_version(cubeforge, work):
    dest = interrupted_build(cubeforge, work)
    record = json.loads((dest / RECORD).read_text())
    (dest / RECORD).write_text(json.dumps({**record, "cubeforge_version": "0.0.1"}))
    refused(
        cubeforge.binary,
        ["build", RECIPE, "--input", "in.zarr", "--output", dest, "--resume"],
        expect=["version changed", "0.0.1"],
        keep=[dest],
        dest=[dest],
        cwd=work,
    )


def test_resume_refuses_a_finished_cube_of_another_recipe(cubeforge, work):
    recipe = work / "changed.yaml"
    recipe.write_text(RECIPE.read_text().replace("time: 100", "time: 50"))
    refused(
        cubeforge.binary,
        ["build", recipe, "--input", "in.zarr", "--output", "cube.zarr", "--resume"],
        expect=["cube.zarr", "recipe changed"],
        keep=[work / "cube.zarr"],
        cwd=work,
    )


def test_resume_refuses_a_store_no_build_wrote(cubeforge, work):
    refused(
        cubeforge.binary,
        ["build", RECIPE, "--input", "in.zarr", "--output", "other.zarr", "--resume"],
        expect=["other.zarr", "nothing there records"],
        keep=[work / "other.zarr"],
        cwd=work,
    )
