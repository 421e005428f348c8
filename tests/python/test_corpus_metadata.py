"""Corpus, category "metadata": broken, lying or inconsistent Zarr metadata, bad group paths, files
of other formats given as a store, unreadable directories and sizes no machine holds.

Every case starts from a copy of ``cubeforge example io --days 20 --seed 0`` (Zarr v2,
consolidated) or of a small Zarr v3 store written by zarr-python, breaks one thing, and checks
through :func:`corpus.refused` that cubeforge refuses it in one line naming what and where.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
import zarr

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
{operations}
"""


@pytest.fixture(scope="module")
def io_store(cubeforge, tmp_path_factory) -> Path:
    """The example store every v2 case copies (20 days, seed 0)."""
    out = tmp_path_factory.mktemp("corpus-metadata") / "io.zarr"
    cubeforge.example_io(out, days=20, seed=0)
    return out


@pytest.fixture(scope="module")
def v3_store(tmp_path_factory) -> Path:
    """A small consolidated Zarr v3 store: coordinate ``t`` and variable ``v (t, x)``."""
    out = tmp_path_factory.mktemp("corpus-metadata-v3") / "v3.zarr"
    root = zarr.open_group(out, mode="w", zarr_format=3)
    t = root.create_array("t", shape=(4,), chunks=(2,), dtype="f8", dimension_names=["t"])
    t[:] = np.arange(4.0)
    v = root.create_array("v", shape=(4, 3), chunks=(2, 3), dtype="f4", dimension_names=["t", "x"])
    v[:] = np.ones((4, 3), dtype="f4")
    zarr.consolidate_metadata(out)
    return out


def load(path: Path):
    return json.loads(path.read_text())


def dump(path: Path, doc) -> None:
    path.write_text(json.dumps(doc))


def edit_consolidated(store: Path, key: str, change) -> None:
    """Apply ``change`` to entry ``key`` of ``.zmetadata`` and to the file of that name."""
    zmeta = load(store / ".zmetadata")
    change(zmeta["metadata"][key])
    dump(store / ".zmetadata", zmeta)
    doc = load(store / key)
    change(doc)
    dump(store / key, doc)


def unconsolidated(store: Path) -> None:
    (store / ".zmetadata").unlink()


def v3_edit(store: Path, key: str, change) -> None:
    """Apply ``change`` to ``key`` (a zarr.json) and to its copy in the root's consolidated metadata."""
    doc = load(store / key)
    change(doc)
    dump(store / key, doc)
    if key != "zarr.json":
        root = load(store / "zarr.json")
        name = key.removesuffix("/zarr.json")
        change(root["consolidated_metadata"]["metadata"][name])
        dump(store / "zarr.json", root)


def set_key(key, value):
    def change(doc):
        doc[key] = value

    return change


def del_key(key):
    def change(doc):
        doc.pop(key, None)

    return change


def one_dim_store(path: Path, shape: int, chunks: int, dtype: str = "<f8") -> None:
    """A v2 store holding only the coordinate ``x (x)`` of ``shape`` values; no chunk written."""
    (path / "x").mkdir(parents=True)
    dump(path / ".zgroup", {"zarr_format": 2})
    zarray = {
        "zarr_format": 2,
        "shape": [shape],
        "chunks": [chunks],
        "dtype": dtype,
        "compressor": None,
        "fill_value": "NaN",
        "order": "C",
        "filters": None,
    }
    dump(path / "x" / ".zarray", zarray)
    dump(path / "x" / ".zattrs", {"_ARRAY_DIMENSIONS": ["x"]})


# (case id, how the store is broken, command: "info", "verify" or "build", expected fragments)
V2_CASES = [
    ("zarray-not-json", lambda s: (unconsolidated(s), (s / "sst/.zarray").write_text("{not json")), "info",
     ["sst/.zarray", "not valid JSON"]),
    ("zattrs-not-json", lambda s: (unconsolidated(s), (s / "sst/.zattrs").write_text("[1, 2")), "info",
     ["sst/.zattrs", "not valid JSON"]),
    ("zattrs-not-utf8", lambda s: (unconsolidated(s), (s / "sst/.zattrs").write_bytes(b"\xff\xfe{}")), "info",
     ["sst/.zattrs", "UTF-8"]),
    ("zmetadata-not-json", lambda s: (s / ".zmetadata").write_text('{"metadata": '), "info",
     [".zmetadata", "not valid JSON"]),
    ("zmetadata-without-metadata", lambda s: dump(s / ".zmetadata", {"zarr_consolidated_format": 1}), "info",
     [".zmetadata", "'metadata'"]),
    ("zgroup-zarr-format-4", lambda s: (unconsolidated(s), dump(s / ".zgroup", {"zarr_format": 4})), "info",
     [".zgroup", "zarr_format 4"]),
    ("zgroup-zarr-format-string", lambda s: (unconsolidated(s), dump(s / ".zgroup", {"zarr_format": "2"})), "info",
     [".zgroup", "zarr_format"]),
    ("zgroup-a-list", lambda s: (unconsolidated(s), dump(s / ".zgroup", [2])), "info",
     [".zgroup", "JSON object"]),
    ("zarray-zarr-format-3", lambda s: edit_consolidated(s, "sst/.zarray", set_key("zarr_format", 3)), "info",
     ["sst/.zarray", "zarr_format"]),
    ("zarray-a-list", lambda s: (unconsolidated(s), dump(s / "sst/.zarray", [])), "info",
     ["sst/.zarray", "JSON object"]),
    ("zarray-without-shape", lambda s: edit_consolidated(s, "sst/.zarray", del_key("shape")), "info",
     ["sst/.zarray", "'shape'"]),
    ("zarray-negative-shape", lambda s: edit_consolidated(s, "sst/.zarray", set_key("shape", [-20, 177, 241])), "info",
     ["sst/.zarray", "'shape'"]),
    ("zarray-shape-beyond-64-bits",
     lambda s: edit_consolidated(s, "sst/.zarray", set_key("shape", [2**40, 2**40, 2**40])), "info",
     ["sst/.zarray", "64 bits"]),
    ("zarray-chunks-of-other-rank", lambda s: edit_consolidated(s, "sst/.zarray", set_key("chunks", [100, 177])),
     "info", ["sst/.zarray", "'chunks'"]),
    ("zarray-zero-chunk", lambda s: edit_consolidated(s, "sst/.zarray", set_key("chunks", [0, 177, 241])), "info",
     ["sst/.zarray", "chunk shape"]),
    ("array-dimensions-fewer",
     lambda s: edit_consolidated(s, "sst/.zattrs", set_key("_ARRAY_DIMENSIONS", ["time", "lat"])), "info",
     ["sst", "_ARRAY_DIMENSIONS", "has 3"]),
    ("array-dimensions-more",
     lambda s: edit_consolidated(s, "sst/.zattrs", set_key("_ARRAY_DIMENSIONS", ["time", "lat", "lon", "z"])),
     "info", ["sst", "_ARRAY_DIMENSIONS", "has 3"]),
    ("array-dimensions-a-string", lambda s: edit_consolidated(s, "sst/.zattrs", set_key("_ARRAY_DIMENSIONS", "time")),
     "info", ["sst", "_ARRAY_DIMENSIONS"]),
    ("dimension-sizes-disagree", lambda s: edit_consolidated(s, "sst/.zarray", set_key("shape", [21, 177, 241])),
     "info", ["sst", "dimension 'time'"]),
    ("dimension-coordinate-not-over-its-dimension",
     lambda s: edit_consolidated(s, "lat/.zattrs", set_key("_ARRAY_DIMENSIONS", ["latitude"])), "info",
     ["lat", "named like dimension 'lat'"]),
    ("consolidated-lists-a-missing-array", lambda s: shutil.rmtree(s / "sst"), "info",
     [".zmetadata", "'sst'", "not in the store"]),
    ("consolidated-lists-a-missing-array-verify", lambda s: shutil.rmtree(s / "so"), "verify",
     [".zmetadata", "'so'", "not in the store"]),
    ("unknown-dtype-info", lambda s: edit_consolidated(s, "sst/.zarray", set_key("dtype", "<q9")), "info",
     ["sst", "'<q9'"]),
    ("unknown-dtype-build", lambda s: edit_consolidated(s, "sst/.zarray", set_key("dtype", "<q9")), "build",
     ["sst", "'<q9'"]),
    ("string-dtype-build", lambda s: edit_consolidated(s, "sst/.zarray", set_key("dtype", "|S7")), "build",
     ["sst", "'|S7'"]),
    ("unknown-codec-build",
     lambda s: edit_consolidated(s, "so/.zarray", set_key("compressor", {"id": "no-such-codec"})), "build",
     ["so", "no-such-codec"]),
    ("unknown-codec-verify",
     lambda s: edit_consolidated(s, "so/.zarray", set_key("compressor", {"id": "no-such-codec"})), "verify",
     ["so", "no-such-codec"]),
]


@pytest.mark.parametrize("break_it,command,expect", [c[1:] for c in V2_CASES], ids=[c[0] for c in V2_CASES])
def test_broken_v2_metadata(cubeforge, io_store, tmp_path, break_it, command, expect):
    store = tmp_path / "in.zarr"
    shutil.copytree(io_store, store)
    break_it(store)
    out = tmp_path / "out.zarr"
    if command == "build":
        recipe = tmp_path / "recipe.yaml"
        recipe.write_text(RECIPE.format(input=store, output=out, operations="  - attrs: {_global: {title: corpus}}"))
        args = ["build", recipe]
    else:
        args = ["info", store] + (["--verify"] if command == "verify" else [])
    refused(cubeforge.binary, args, expect=expect, keep=[store], dest=[out])


V3_CASES = [
    ("zarr-json-format-4", lambda s: v3_edit(s, "zarr.json", set_key("zarr_format", 4)),
     ["zarr.json", "zarr_format 4"]),
    ("zarr-json-format-a-string", lambda s: v3_edit(s, "zarr.json", set_key("zarr_format", "three")),
     ["zarr.json", "zarr_format"]),
    ("array-zarr-json-format-2", lambda s: v3_edit(s, "v/zarr.json", set_key("zarr_format", 2)),
     ["v/zarr.json", "zarr_format"]),
    ("unknown-node-type", lambda s: v3_edit(s, "zarr.json", set_key("node_type", "folder")),
     ["zarr.json", "node_type 'folder'"]),
    ("dimension-names-fewer", lambda s: v3_edit(s, "v/zarr.json", set_key("dimension_names", ["t"])),
     ["v/zarr.json", "dimension_names", "has 2"]),
    ("dimension-names-more", lambda s: v3_edit(s, "v/zarr.json", set_key("dimension_names", ["t", "x", "y"])),
     ["v/zarr.json", "dimension_names", "has 2"]),
    ("consolidated-v3-lists-a-missing-array", lambda s: shutil.rmtree(s / "v"),
     ["zarr.json", "'v'", "not in the store"]),
    ("chunk-grid-of-other-rank",
     lambda s: v3_edit(s, "v/zarr.json", set_key("chunk_grid", {"name": "regular", "configuration": {"chunk_shape": [2]}})),
     ["v/zarr.json", "chunk shape"]),
]


@pytest.mark.parametrize("break_it,expect", [c[1:] for c in V3_CASES], ids=[c[0] for c in V3_CASES])
def test_broken_v3_metadata(cubeforge, v3_store, tmp_path, break_it, expect):
    store = tmp_path / "in.zarr"
    shutil.copytree(v3_store, store)
    break_it(store)
    refused(cubeforge.binary, ["info", store], expect=expect, keep=[store])


@pytest.mark.parametrize("group", ["../..", "..", "a/../../b", "./x", "/etc", "x//y"])
def test_group_paths_that_leave_the_store(cubeforge, io_store, tmp_path, group):
    store = tmp_path / "in.zarr"
    shutil.copytree(io_store, store)
    refused(cubeforge.binary, ["info", store, "--group", group], expect=["group", group], keep=[store])


MAGIC = [
    ("netcdf-classic", b"CDF\x01", "NetCDF"),
    ("netcdf-64bit", b"CDF\x02", "NetCDF"),
    ("netcdf4-hdf5", b"\x89HDF\r\n\x1a\n", "HDF5"),
    ("tiff-little-endian", b"II*\x00", "TIFF"),
    ("tiff-big-endian", b"MM\x00*", "TIFF"),
    ("bigtiff", b"II+\x00", "TIFF"),
]


@pytest.mark.parametrize("magic,kind", [m[1:] for m in MAGIC], ids=[m[0] for m in MAGIC])
def test_a_file_of_another_format_given_as_the_store(cubeforge, tmp_path, magic, kind):
    path = tmp_path / "input.dat"
    path.write_bytes(magic + bytes(range(64)))
    # Read as the format its first bytes name (whatever its file name), and refused as a broken
    # file of that format.
    line = refused(cubeforge.binary, ["info", path], expect=[str(path), kind, "not a readable"], keep=[path])
    assert "Not a directory" not in line


def test_a_broken_netcdf_file_as_the_input_of_a_build(cubeforge, tmp_path):
    path = tmp_path / "input.nc"
    path.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(64))
    recipe = tmp_path / "recipe.yaml"
    out = tmp_path / "out.zarr"
    recipe.write_text(RECIPE.format(input=path, output=out, operations="  - attrs: {_global: {title: corpus}}"))
    refused(cubeforge.binary, ["build", recipe], expect=["input.nc", "HDF5", "not a readable"],
            keep=[path], dest=[out])


@pytest.mark.parametrize("locked", ["store", "parent"])
def test_an_unreadable_directory(cubeforge, io_store, locked):
    runner, prefix, home = as_unprivileged_user(cubeforge.binary)
    root = home or Path(tempfile.mkdtemp(prefix="cf-unreadable-"))
    store = root / "parent" / "in.zarr"
    shutil.copytree(io_store, store)
    for p in [store.parent, *store.rglob("*"), store]:
        p.chmod(0o755 if p.is_dir() else 0o644)
    target = store if locked == "store" else store.parent
    target.chmod(0)
    try:
        refused(runner, [*prefix, "info", store], expect=[str(target.name), "permission denied"])
    finally:
        target.chmod(0o755)
        shutil.rmtree(root, ignore_errors=True)


def test_example_with_absurd_days(cubeforge, tmp_path):
    out = tmp_path / "ex.zarr"
    refused(cubeforge.binary, ["example", "io", "--days", str(10**18), out], expect=["--days", "1000000"], dest=[out])
    assert not out.exists()


def test_a_chunk_of_petabytes_is_described_not_allocated(cubeforge, tmp_path):
    store = tmp_path / "huge.zarr"
    one_dim_store(store, 10**15, 10**15)
    refused(cubeforge.binary, ["info", store], expect=["x/.zarray", "chunk", "8000000000000000 bytes"], keep=[store])


def build_one_dim(cubeforge, tmp_path, shape, chunks, extra=()):
    store = tmp_path / "in.zarr"
    one_dim_store(store, shape, chunks)
    recipe = tmp_path / "recipe.yaml"
    out = tmp_path / "out.zarr"
    recipe.write_text(RECIPE.format(input=store, output=out, operations="  - attrs: {_global: {title: corpus}}").replace(
        "time: 10", "x: 10"))
    return store, out, ["build", recipe, *extra]


def test_a_dimension_too_long_to_index(cubeforge, tmp_path):
    store, out, args = build_one_dim(cubeforge, tmp_path, 10**15, 1000)
    refused(cubeforge.binary, args, expect=["dimension 'x'", "1000000000000000", "2147483648"], keep=[store],
            dest=[out])


def test_a_coordinate_larger_than_the_memory_limit(cubeforge, tmp_path):
    store, out, args = build_one_dim(cubeforge, tmp_path, 10**8, 10**6, ["--memory-limit", "64M"])
    refused(cubeforge.binary, args, expect=["in.zarr/x", "800000000 bytes", "--memory-limit"], keep=[store],
            dest=[out])


def test_an_input_chunk_larger_than_the_memory_limit(cubeforge, io_store, tmp_path):
    store = tmp_path / "in.zarr"
    shutil.copytree(io_store, store)
    recipe = tmp_path / "recipe.yaml"
    out = tmp_path / "out.zarr"
    recipe.write_text(RECIPE.format(input=store, output=out, operations="  - keep: [sst]"))
    refused(cubeforge.binary, ["build", recipe, "--memory-limit", "1M"],
            expect=["in.zarr/sst", "17062800 bytes", "--memory-limit"], keep=[store], dest=[out])


def test_an_unreadable_variable_the_recipe_keeps(cubeforge, io_store, tmp_path):
    store = tmp_path / "in.zarr"
    shutil.copytree(io_store, store)
    edit_consolidated(store, "sst/.zarray", set_key("dtype", "<q9"))
    recipe = tmp_path / "recipe.yaml"
    out = tmp_path / "out.zarr"
    recipe.write_text(RECIPE.format(input=store, output=out, operations="  - keep: [sst, topo]"))
    refused(cubeforge.binary, ["build", recipe], expect=["keep", "'sst' cannot be read", "<q9"], keep=[store],
            dest=[out])


def test_an_unreadable_variable_used_in_an_expression(cubeforge, io_store, tmp_path):
    store = tmp_path / "in.zarr"
    shutil.copytree(io_store, store)
    edit_consolidated(store, "sst/.zarray", set_key("dtype", "<q9"))
    recipe = tmp_path / "recipe.yaml"
    out = tmp_path / "out.zarr"
    recipe.write_text(RECIPE.format(input=store, output=out,
                                    operations='  - assign: {warm: "sst > 20"}\n  - keep: [warm]'))
    refused(cubeforge.binary, ["build", recipe], expect=["assign", "'sst' cannot be read", "<q9"], keep=[store],
            dest=[out])


def test_an_unreadable_variable_the_recipe_drops_is_left_out(cubeforge, io_store, tmp_path):
    """Not a refusal: dropping the unreadable variable is how a recipe builds without it."""
    store = tmp_path / "in.zarr"
    shutil.copytree(io_store, store)
    edit_consolidated(store, "sst/.zarray", set_key("dtype", "<q9"))
    recipe = tmp_path / "recipe.yaml"
    out = tmp_path / "out.zarr"
    recipe.write_text(RECIPE.format(input=store, output=out, operations="  - drop: [sst]\n  - keep: [topo]"))
    cubeforge.run("build", recipe, "--quiet")
    assert "topo" in cubeforge.info(out)["data_vars"]
