"""Corpus, category "chunks": chunk data that is truncated, empty, corrupt, of the wrong size or
codec, or not a file at all.

Every case starts from a copy of ``cubeforge example io --days 20 --seed 0`` (Zarr v2, Blosc lz4),
breaks one chunk, and checks through :func:`corpus.refused` that ``info --verify`` or a build
refuses it in one line naming the chunk.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import struct
from pathlib import Path

import numcodecs
import numpy as np
import pytest

from corpus import as_unprivileged_user, refused

RECIPE = """\
version: 1
inputs:
  io:
    url: {input}
output:
  url: {output}
  chunks: {{time: 10}}
operations:
  - keep: [sst, so]
"""


@pytest.fixture(scope="module")
def io_store(cubeforge, tmp_path_factory) -> Path:
    """The example store every case copies (20 days, seed 0): one chunk per variable."""
    out = tmp_path_factory.mktemp("corpus-chunks") / "io.zarr"
    cubeforge.example_io(out, days=20, seed=0)
    return out


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def empty(path: Path) -> None:
    path.write_bytes(b"")


def garbage(path: Path) -> None:
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())


def blosc_header_field(offset: int, value: int):
    """Overwrite a 32-bit field of the Blosc header (4: decoded bytes, 8: block size, 12: stored bytes)."""

    def change(path: Path) -> None:
        data = bytearray(path.read_bytes())
        data[offset : offset + 4] = struct.pack("<I", value)
        path.write_bytes(bytes(data))

    return change


def blosc_version(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[0] = 0xEE  # a Blosc format version no library writes
    data[3] = 0  # type size 0
    path.write_bytes(bytes(data))


def a_directory(path: Path) -> None:
    path.unlink()
    path.mkdir()
    (path / "inside").write_bytes(b"x")


def symlink_loop(path: Path) -> None:
    path.unlink()
    path.symlink_to(path.name)


def wrong_size(path: Path) -> None:
    """A valid Blosc frame, of 100 values instead of the chunk's 100 x 177 x 241."""
    codec = numcodecs.Blosc(cname="lz4", clevel=5, shuffle=1)
    path.write_bytes(codec.encode(np.zeros(100, dtype="<f4")))


def gzip_instead(path: Path) -> None:
    """A chunk compressed with gzip where the array says Blosc."""
    codec = numcodecs.GZip(level=1)
    path.write_bytes(codec.encode(np.zeros((20, 177, 241), dtype="<f4")))


# (case id, chunk broken, how, command, expected fragments)
CASES = [
    ("truncated-verify", "sst/0.0.0", truncate, "verify", ["sst/0.0.0", "cannot decode chunk"]),
    ("truncated-build", "sst/0.0.0", truncate, "build", ["sst/0.0.0", "cannot decode chunk"]),
    ("zero-bytes-verify", "sst/0.0.0", empty, "verify", ["sst/0.0.0", "cannot decode chunk"]),
    ("zero-bytes-build", "so/0.0.0", empty, "build", ["so/0.0.0", "cannot decode chunk"]),
    ("random-bytes-verify", "sst/0.0.0", garbage, "verify", ["sst/0.0.0", "cannot decode chunk"]),
    ("random-bytes-build", "sst/0.0.0", garbage, "build", ["sst/0.0.0", "cannot decode chunk"]),
    ("blosc-header-huge-size-verify", "sst/0.0.0", blosc_header_field(4, 0x7FFF_FFF0), "verify",
     ["sst/0.0.0", "cannot decode chunk"]),
    ("blosc-header-huge-size-build", "sst/0.0.0", blosc_header_field(4, 0x7FFF_FFF0), "build",
     ["sst/0.0.0", "cannot decode chunk"]),
    ("blosc-header-stored-size-lies", "sst/0.0.0", blosc_header_field(12, 0x7FFF_FFF0), "verify",
     ["sst/0.0.0", "cannot decode chunk"]),
    ("blosc-header-zero-block-size", "so/0.0.0", blosc_header_field(8, 0), "build",
     ["so/0.0.0", "cannot decode chunk"]),
    ("blosc-header-bad-version", "sst/0.0.0", blosc_version, "verify", ["sst/0.0.0", "cannot decode chunk"]),
    ("wrong-decoded-size-verify", "sst/0.0.0", wrong_size, "verify", ["sst/0.0.0", "cannot decode chunk"]),
    ("wrong-decoded-size-build", "sst/0.0.0", wrong_size, "build", ["sst/0.0.0", "cannot decode chunk"]),
    ("other-compressor-bytes", "sst/0.0.0", gzip_instead, "verify", ["sst/0.0.0", "cannot decode chunk"]),
    ("chunk-is-a-directory-verify", "sst/0.0.0", a_directory, "verify", ["sst/0.0.0"]),
    ("chunk-is-a-directory-build", "sst/0.0.0", a_directory, "build", ["sst/0.0.0"]),
    ("chunk-is-a-symlink-loop", "sst/0.0.0", symlink_loop, "verify", ["sst/0.0.0"]),
    ("coordinate-chunk-truncated", "time/0", truncate, "info", ["time/0", "cannot decode chunk"]),
    ("coordinate-chunk-empty-build", "lat/0", empty, "build", ["lat/0", "cannot decode chunk"]),
]


@pytest.mark.parametrize("chunk,break_it,command,expect", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_broken_chunk(cubeforge, io_store, tmp_path, chunk, break_it, command, expect):
    store = tmp_path / "in.zarr"
    shutil.copytree(io_store, store)
    break_it(store / chunk)
    out = tmp_path / "out.zarr"
    if command == "build":
        recipe = tmp_path / "recipe.yaml"
        recipe.write_text(RECIPE.format(input=store, output=out))
        args = ["build", recipe]
    else:
        args = ["info", store] + (["--verify"] if command == "verify" else [])
    refused(cubeforge.binary, args, expect=expect, keep=[store], dest=[out])


def test_compressor_changed_in_metadata(cubeforge, io_store, tmp_path):
    """The metadata says zlib; the chunks are Blosc frames."""
    store = tmp_path / "in.zarr"
    shutil.copytree(io_store, store)
    zmeta = json.loads((store / ".zmetadata").read_text())
    zmeta["metadata"]["sst/.zarray"]["compressor"] = {"id": "zlib", "level": 1}
    (store / ".zmetadata").write_text(json.dumps(zmeta))
    refused(cubeforge.binary, ["info", store, "--verify"], expect=["sst/0.0.0", "cannot decode chunk"], keep=[store])


def test_a_symlink_loop_in_the_store_under_verify(cubeforge, io_store, tmp_path):
    """A directory loop inside the store is not followed: verify finishes and says what it decoded."""
    store = tmp_path / "in.zarr"
    shutil.copytree(io_store, store)
    (store / "sst" / "loop").symlink_to(".")
    (store / "so" / "a").symlink_to("b")
    (store / "so" / "b").symlink_to("a")
    proc = cubeforge.run("info", store, "--verify")
    assert "Verified: 12 chunks decoded, 0 absent" in proc.stdout


def test_verify_lists_a_sparse_array_instead_of_probing_it(cubeforge, tmp_path):
    """10^9 chunk positions, two chunks stored: counted from one listing, in well under a minute."""
    store = tmp_path / "sparse.zarr"
    (store / "x").mkdir(parents=True)
    (store / ".zgroup").write_text(json.dumps({"zarr_format": 2}))
    zarray = {"zarr_format": 2, "shape": [10**10], "chunks": [10], "dtype": "<f4", "compressor": None,
              "fill_value": "NaN", "order": "C", "filters": None}
    (store / "x" / ".zarray").write_text(json.dumps(zarray))
    (store / "x" / ".zattrs").write_text(json.dumps({"_ARRAY_DIMENSIONS": ["x"]}))
    for i in (0, 999_999_999):
        (store / "x" / str(i)).write_bytes(np.arange(10, dtype="<f4").tobytes())
    proc = cubeforge.run("info", store, "--verify")
    assert "Verified: 2 chunks decoded, 999999998 absent" in proc.stdout
    (store / "x" / "5").write_bytes(b"\0" * 7)
    refused(cubeforge.binary, ["info", store, "--verify"], expect=["x/5", "cannot decode chunk"], keep=[store])


def test_an_unreadable_chunk(cubeforge, io_store):
    runner, prefix, home = as_unprivileged_user(cubeforge.binary)
    root = home or Path(tempfile.mkdtemp(prefix="cf-unreadable-"))
    store = root / "in.zarr"
    shutil.copytree(io_store, store)
    for p in [*store.rglob("*"), store]:
        p.chmod(0o755 if p.is_dir() else 0o644)
    (store / "sst" / "0.0.0").chmod(0)
    try:
        refused(runner, [*prefix, "info", store, "--verify"], expect=["sst/0.0.0", "permission denied"])
    finally:
        (store / "sst" / "0.0.0").chmod(0o644)
        shutil.rmtree(root, ignore_errors=True)
