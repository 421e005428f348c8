"""Corpus, paths: destinations that are, contain or lie inside an input (through links and ``..``),
``--overwrite`` onto what is not a Zarr store, and recursive removal of roots.

Every case: exit 2, one line naming what and where, the input and its neighbours untouched, no
finished-looking store left behind (see corpus.py).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from corpus import refused

RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "tutorial.yaml"


@pytest.fixture(scope="module")
def small_store(tmp_path_factory, cubeforge) -> Path:
    root = tmp_path_factory.mktemp("paths-input")
    cubeforge.example_io(root / "in.zarr", days=20)
    return root / "in.zarr"


@pytest.fixture
def work(tmp_path, small_store) -> Path:
    """A directory holding a copy of the input (``in.zarr``), a neighbour file and a link to the input."""
    shutil.copytree(small_store, tmp_path / "in.zarr")
    (tmp_path / "notes.txt").write_text("a neighbour of the input\n")
    (tmp_path / "link.zarr").symlink_to(tmp_path / "in.zarr")
    return tmp_path


def build(work: Path, output: str, *flags: str) -> list:
    return ["build", RECIPE, "--input", work / "in.zarr", "--output", output, *flags]


# (name, output relative to the work directory, flags, fragments of the error)
BUILD_OVERLAPS = [
    ("output is the input", "in.zarr", ["--overwrite"], ["is the input"]),
    ("output is the input, resume", "in.zarr", ["--resume"], ["is the input"]),
    ("output is the input, no flags", "in.zarr", [], ["is the input"]),
    ("output is the input's directory", ".", ["--overwrite"], ["contains the input"]),
    ("output is the input's parent", "..", ["--overwrite"], ["contains the input"]),
    ("output inside the input", "in.zarr/out.zarr", [], ["lies inside the input"]),
    ("output inside the input, overwrite", "in.zarr/sst", ["--overwrite"], ["lies inside the input"]),
    ("output through a link to the input", "link.zarr", ["--overwrite"], ["is the input"]),
    ("output inside a link to the input", "link.zarr/x.zarr", [], ["lies inside the input"]),
    ("output with dot-dot back to the input", "in.zarr/sst/../../in.zarr", ["--overwrite"], ["is the input"]),
    ("output with a dot segment", "./in.zarr/.", ["--overwrite"], ["is the input"]),
    ("output through a missing directory and dot-dot", "nowhere/../in.zarr", ["--overwrite"], ["is the input"]),
]


@pytest.mark.parametrize("name,output,flags,expect", BUILD_OVERLAPS, ids=[c[0] for c in BUILD_OVERLAPS])
def test_build_refuses_overlapping_outputs(cubeforge, work, name, output, flags, expect):
    refused(
        cubeforge.binary,
        build(work, output, *flags),
        expect=[*expect, "in.zarr"],
        keep=[work / "in.zarr", work / "notes.txt"],
        dest=[work / "in.zarr"],
        cwd=work,
    )


def test_build_refuses_file_url_to_the_input(cubeforge, work):
    refused(
        cubeforge.binary,
        build(work, (work / "in.zarr").as_uri(), "--overwrite"),
        expect=["is the input"],
        keep=[work],
    )


def test_overwrite_refuses_a_directory_that_is_not_a_zarr_store(cubeforge, work):
    other = work / "photos"
    other.mkdir()
    (other / "a.jpg").write_bytes(b"\xff\xd8 not ours")
    (other / "b.jpg").write_bytes(b"\xff\xd8 not ours either")
    refused(
        cubeforge.binary,
        build(work, str(other), "--overwrite"),
        expect=["photos", "no zarr metadata", "a.jpg"],
        keep=[work],
        dest=[other],
    )


def test_overwrite_refuses_a_plain_file(cubeforge, work):
    refused(
        cubeforge.binary,
        build(work, str(work / "notes.txt"), "--overwrite"),
        expect=["notes.txt", "is a file"],
        keep=[work],
    )


def test_resume_refuses_a_directory_that_is_not_a_zarr_store(cubeforge, work):
    other = work / "docs"
    other.mkdir()
    (other / "thesis.tex").write_text("\\begin{document}")
    refused(
        cubeforge.binary,
        build(work, str(other), "--resume"),
        expect=["docs", "no zarr metadata"],
        keep=[work],
        dest=[other],
    )


def test_build_refuses_a_non_empty_destination_without_flags(cubeforge, work):
    other = work / "taken"
    other.mkdir()
    (other / "x").write_text("x")
    refused(cubeforge.binary, build(work, str(other)), expect=["taken"], keep=[work], dest=[other])


# (name, source, destination) relative to the work directory
COPY_OVERLAPS = [
    ("into itself", "in.zarr", "in.zarr"),
    ("into a directory inside itself", "in.zarr", "in.zarr/copy"),
    ("into its parent", "in.zarr", "."),
    ("into a link to itself", "in.zarr", "link.zarr"),
    ("into a directory inside a link to itself", "in.zarr", "link.zarr/copy"),
    ("from a link into the target", "link.zarr", "in.zarr/copy"),
    ("into itself through dot-dot", "in.zarr", "in.zarr/sst/.."),
]


@pytest.mark.parametrize("verb", ["cp", "sync"])
@pytest.mark.parametrize("name,src,dst", COPY_OVERLAPS, ids=[c[0] for c in COPY_OVERLAPS])
def test_copies_refuse_overlap(cubeforge, work, verb, name, src, dst):
    refused(
        cubeforge.binary,
        [verb, src, dst],
        expect=["refused", "the input"],
        keep=[work / "in.zarr", work / "notes.txt"],
        dest=[work / "in.zarr"],
        cwd=work,
    )


ROOTS = [
    ("the current directory", "."),
    ("the current directory, trailing slash", "./"),
    ("the parent directory", ".."),
    ("the file-system root", "/"),
    ("the current directory by dot-dot", "in.zarr/.."),
    ("the home directory", "HOME"),
    ("a parent of the home directory", "HOME/.."),
]


@pytest.mark.parametrize("name,target", ROOTS, ids=[c[0] for c in ROOTS])
def test_rm_refuses_roots(cubeforge, work, name, target):
    home = work / "home"
    (home / "data").mkdir(parents=True)
    (home / "data" / "keep.txt").write_text("keep")
    env = {**os.environ, "HOME": str(home)}
    target = target.replace("HOME", str(home))
    refused(
        cubeforge.binary,
        ["rm", "-r", target, "--yes"],
        expect=["--force-root"],
        keep=[work],
        cwd=work if not target.startswith(str(home)) else home / "data",
        env=env,
    )
