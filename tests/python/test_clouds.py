"""The same object-storage matrix on S3 (moto), GCS (fake-gcs-server) and Azure (Azurite).

Each service runs on 127.0.0.1 (see cloud_support.py) and cubeforge reaches it the way a user
configures ``object_store`` for it: ``AWS_ENDPOINT_URL`` and keys; a service-account document with
``gcs_base_url`` and ``disable_oauth`` (or ``STORAGE_EMULATOR_HOST``); ``AZURE_STORAGE_USE_EMULATOR``
with ``AZURITE_BLOB_STORAGE_URL`` (or an account, key and ``AZURE_STORAGE_ENDPOINT``).

- ``build`` reads its input from a bucket and writes the cube to another; the cube, synced back,
  has the chunks of a local build and opens in xarray identical to it.
- ``cp`` (local to bucket, bucket to bucket, within a bucket, back), ``sync`` (changes only,
  ``--delete``, ``--checksum``) and ``rm -r`` give byte-identical trees.
- A sync killed with SIGKILL half-way and rerun copies only what is missing.

The failures (wrong or missing credentials, missing bucket, unreachable endpoint) are corpus cases
in test_corpus_clouds.py.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import xarray as xr

from cli_support import cf, cf_json, chunk_files, local_tree

RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "tutorial.yaml"
DAYS = 40


def new_bucket(cloud) -> str:
    name = f"cf-{uuid.uuid4().hex[:12]}"
    cloud.create_bucket(name)
    return name


@pytest.fixture(scope="module")
def example(cubeforge, tmp_path_factory) -> Path:
    """A small tutorial input store, local."""
    out = tmp_path_factory.mktemp("clouds-example") / "io.zarr"
    cubeforge.example_io(out, DAYS)
    return out


@pytest.fixture(scope="module")
def local_cube(cubeforge, example, tmp_path_factory) -> Path:
    """The tutorial recipe built locally, the reference for bucket builds."""
    out = tmp_path_factory.mktemp("clouds-local-cube") / "cube.zarr"
    cubeforge.run("build", RECIPE, "--input", example, "--output", out, "--quiet")
    return out


def test_build_bucket_to_bucket(cubeforge, cloud, example, local_cube, tmp_path):
    env = cloud.env()
    src, dst = new_bucket(cloud), new_bucket(cloud)
    s = cloud.scheme
    cf(cubeforge, env, "cp", example, f"{s}://{src}/in/io.zarr", "--quiet")
    cf(cubeforge, env, "build", RECIPE, "--input", f"{s}://{src}/in/io.zarr",
       "--output", f"{s}://{dst}/out/cube.zarr", "--quiet")
    want = local_tree(local_cube)
    got = cloud.tree(dst, "out/cube.zarr")
    assert set(got) == set(want)
    assert chunk_files(got) == chunk_files(want)
    back = tmp_path / "cube.zarr"
    cf(cubeforge, env, "sync", f"{s}://{dst}/out/cube.zarr", back, "--quiet")
    remote = xr.open_zarr(back).load()
    xr.testing.assert_identical(remote.drop_attrs(), xr.open_zarr(local_cube).load().drop_attrs())
    # `info` reads the cube where it lies.
    info = json.loads(cf(cubeforge, env, "info", "--json", f"{s}://{dst}/out/cube.zarr").stdout)
    assert set(info["data_vars"]) == set(remote.data_vars)
    # Rebuilt with --resume over the finished cube: the same chunks again.
    cf(cubeforge, env, "build", RECIPE, "--input", f"{s}://{src}/in/io.zarr",
       "--output", f"{s}://{dst}/out/cube.zarr", "--quiet", "--resume")
    got = cloud.tree(dst, "out/cube.zarr")
    assert set(got) == set(want) and chunk_files(got) == chunk_files(want)


def test_cp_sync_rm_round_trips(cubeforge, cloud, example, tmp_path):
    env = cloud.env()
    a, b = new_bucket(cloud), new_bucket(cloud)
    s = cloud.scheme
    want = local_tree(example)
    up = cf_json(cubeforge, env, "cp", example, f"{s}://{a}/io.zarr")
    assert up["copied"] == up["objects"] == len(want)
    assert cloud.tree(a, "io.zarr") == want
    # Bucket to bucket, within one bucket (a server-side copy), and back.
    cf(cubeforge, env, "cp", f"{s}://{a}/io.zarr", f"{s}://{b}/copy.zarr", "--quiet")
    cf(cubeforge, env, "cp", f"{s}://{b}/copy.zarr", f"{s}://{b}/again.zarr", "--quiet")
    assert cloud.tree(b, "again.zarr") == want
    down = tmp_path / "back.zarr"
    cf(cubeforge, env, "cp", f"{s}://{b}/again.zarr", down, "--quiet")
    assert local_tree(down) == want

    # sync: a local copy is newer than the bucket's objects, so all go; then nothing; then only
    # a changed object (another size), a new one and (with --delete) a removed one.
    work = tmp_path / "work.zarr"
    # Object stores date objects to the second, and sync compares whole seconds: the local copy
    # is made in a second after the upload's, or on a fast run it would count as no newer.
    now = time.time()
    time.sleep(int(now) + 1 - now + 0.01)
    cf(cubeforge, env, "cp", example, work, "--quiet")
    assert cf_json(cubeforge, env, "sync", work, f"{s}://{a}/io.zarr")["copied"] == len(want)
    assert cf_json(cubeforge, env, "sync", work, f"{s}://{a}/io.zarr")["copied"] == 0
    (work / "sst" / ".zattrs").write_text('{"changed": true, "size": "differs"}')
    (work / "extra").write_bytes(b"new object")
    (work / "topo" / "0.0").unlink()
    report = cf_json(cubeforge, env, "sync", work, f"{s}://{a}/io.zarr", "--delete")
    # The store's group metadata is withdrawn while it changes, then written again last.
    assert sorted(report["copied_keys"]) == [".zgroup", ".zmetadata", "extra", "sst/.zattrs"], report
    assert report["deleted"] == 1, report
    assert cloud.tree(a, "io.zarr") == local_tree(work)
    assert cf_json(cubeforge, env, "sync", work, f"{s}://{a}/io.zarr", "--checksum")["copied"] == 0
    # Bucket to bucket the same way, then back to a local copy.
    cf(cubeforge, env, "sync", f"{s}://{a}/io.zarr", f"{s}://{b}/copy.zarr", "--delete", "--quiet")
    assert cloud.tree(b, "copy.zarr") == local_tree(work)
    report = cf_json(cubeforge, env, "sync", f"{s}://{b}/copy.zarr", down, "--delete")
    assert report["deleted"] == 1, report
    assert local_tree(down) == local_tree(work)

    # rm -r: everything below the prefix, nothing beside it.
    removed = cf_json(cubeforge, env, "rm", "-r", "--yes", f"{s}://{b}/copy.zarr")
    assert removed["deleted"] == len(local_tree(work))
    assert cloud.keys(b, "copy.zarr") == {}
    assert cloud.tree(b, "again.zarr") == want
    listing = cf_json(cubeforge, env, "ls", f"{s}://{b}/")
    assert [e["name"] for e in listing["entries"]] == ["again.zarr/"], listing


def make_many_objects(root: Path, count: int) -> None:
    rng = random.Random(7)
    root.mkdir(parents=True)
    (root / ".zgroup").write_text('{"zarr_format": 2}')
    for i in range(count - 1):
        d = root / f"v{i % 8}"
        d.mkdir(exist_ok=True)
        (d / f"{i // 8}.0").write_bytes(rng.randbytes(rng.randint(200, 2000)))


def test_killed_sync_resumes(cubeforge, cloud, tmp_path):
    count = 300
    bucket = new_bucket(cloud)
    src = tmp_path / "many.zarr"
    make_many_objects(src, count)
    want = local_tree(src)
    dst = f"{cloud.scheme}://{bucket}/many.zarr"

    # A little latency per request keeps the transfer slow enough to interrupt half-way.
    proxy = cloud.slow_proxy(0.02)
    try:
        proc = subprocess.Popen(
            [str(cubeforge.binary), "sync", str(src), dst, "--quiet", "--concurrency", "4"],
            env=cloud.env_via(proxy.url), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None and len(cloud.keys(bucket, "many.zarr")) < count // 3:
            time.sleep(0.05)
        assert proc.poll() is None, "the sync finished before it could be interrupted"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        proxy.stop()
    time.sleep(0.3)  # let the server finish requests already received
    # The killed sync's lock is its own, not data.
    before = len(set(cloud.keys(bucket, "many.zarr")) - {".cubeforge.lock"})
    assert count // 3 <= before < count, before

    env = cloud.env()
    rerun = cf_json(cubeforge, env, "sync", src, dst)
    assert rerun["objects"] == count
    assert rerun["copied"] == count - before and rerun["skipped"] == before, rerun
    assert cloud.tree(bucket, "many.zarr") == want
    assert cf_json(cubeforge, env, "sync", src, dst)["copied"] == 0


def test_other_ways_to_configure_the_emulators(cubeforge, cloud, example):
    """GCS through ``STORAGE_EMULATOR_HOST`` alone; Azure as an account, key and endpoint."""
    if cloud.scheme == "gs":
        env = cloud.env(emulator_host=True)
    elif cloud.scheme == "az":
        env = cloud.env(emulator=False)
    else:
        pytest.skip("S3 has one way: AWS_ENDPOINT_URL (test_object_storage.py covers profiles)")
    bucket = new_bucket(cloud)
    cf(cubeforge, env, "cp", example, f"{cloud.scheme}://{bucket}/io.zarr", "--quiet")
    assert cloud.tree(bucket, "io.zarr") == local_tree(example)


def test_large_object_goes_in_parts(cubeforge, cloud, tmp_path):
    """An object above cubeforge's multipart threshold (32 MiB) is uploaded in parts (S3
    multipart upload, Azure blocks, GCS XML multipart upload) and comes back whole."""
    if cloud.scheme == "gs":
        pytest.skip("fake-gcs-server has no XML multipart upload (POST ?uploads answers 400 invalid uploadType)")
    env = cloud.env()
    bucket = new_bucket(cloud)
    big = tmp_path / "big.bin"
    big.write_bytes(random.Random(3).randbytes((32 << 20) + 12345))
    cf(cubeforge, env, "cp", big, f"{cloud.scheme}://{bucket}/big.bin", "--quiet")
    assert cloud.keys(bucket, "") == {"big.bin": big.stat().st_size}
    cf(cubeforge, env, "cp", f"{cloud.scheme}://{bucket}/big.bin", tmp_path / "back.bin", "--quiet")
    assert (tmp_path / "back.bin").read_bytes() == big.read_bytes()
