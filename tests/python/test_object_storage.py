"""Object storage against a real S3-compatible server (moto in server mode on 127.0.0.1).

- ``cubeforge build`` reads the tutorial input from a bucket and writes the cube to a bucket;
  xarray (through s3fs) opens it and it equals a local build.
- ``cp``, ``sync`` and ``rm -r`` round trips give byte-identical trees (listing + SHA-256).
- A sync of 2,000+ objects killed half-way and rerun transfers only what is missing.
- Through a proxy that fails or drops a fraction of requests, build and sync still finish with
  identical output; a request that always fails ends the command with a clear error.
- Recursive removal refuses bucket roots, empty URLs and ``..`` keys.
- Secrets never appear in the output, even with ``-vvv``; AWS profiles and ``--anon`` work.
"""

from __future__ import annotations

import hashlib
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

from s3_support import ACCESS_KEY, SECRET_KEY, FaultProxy

RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "tutorial.yaml"
DAYS = 150


def new_bucket(s3_server) -> str:
    name = f"cf-{uuid.uuid4().hex[:12]}"
    s3_server.client().create_bucket(Bucket=name)
    return name


def bucket_keys(s3_server, bucket: str, prefix: str) -> dict[str, int]:
    """Key below ``prefix`` (relative) -> size."""
    out = {}
    paginator = s3_server.client().get_paginator("list_objects_v2")
    base = prefix.rstrip("/") + "/" if prefix else ""
    for page in paginator.paginate(Bucket=bucket, Prefix=base):
        for obj in page.get("Contents", []):
            out[obj["Key"][len(base):]] = obj["Size"]
    return out


def bucket_tree(s3_server, bucket: str, prefix: str) -> dict[str, str]:
    """Relative key -> SHA-256 of every object below ``prefix``."""
    client = s3_server.client()
    base = prefix.rstrip("/") + "/" if prefix else ""
    return {
        key: hashlib.sha256(client.get_object(Bucket=bucket, Key=base + key)["Body"].read()).hexdigest()
        for key in bucket_keys(s3_server, bucket, prefix)
    }


@pytest.fixture(scope="module")
def example(cubeforge, tmp_path_factory) -> Path:
    """A small tutorial input store, local."""
    out = tmp_path_factory.mktemp("s3-example") / "io.zarr"
    cubeforge.example_io(out, DAYS)
    return out


@pytest.fixture(scope="module")
def local_cube(cubeforge, example, tmp_path_factory) -> Path:
    """The tutorial recipe built locally, the reference for bucket builds."""
    out = tmp_path_factory.mktemp("s3-local-cube") / "cube.zarr"
    cubeforge.run("build", RECIPE, "--input", example, "--output", out, "--quiet")
    return out


def test_build_from_bucket_into_bucket_opens_in_xarray(cubeforge, s3_server, example, local_cube):
    env = s3_server.env()
    bucket = new_bucket(s3_server)
    cf(cubeforge, env, "cp", example, f"s3://{bucket}/in/io.zarr", "--quiet")
    cf(cubeforge, env, "build", RECIPE, "--input", f"s3://{bucket}/in/io.zarr",
       "--output", f"s3://{bucket}/out/cube.zarr", "--quiet")
    got = bucket_tree(s3_server, bucket, "out/cube.zarr")
    want = local_tree(local_cube)
    assert set(got) == set(want)
    assert chunk_files(got) == chunk_files(want)

    opts = {"endpoint_url": s3_server.url, "key": ACCESS_KEY, "secret": SECRET_KEY}
    remote = xr.open_zarr(f"s3://{bucket}/out/cube.zarr", storage_options=opts).load()
    xr.testing.assert_identical(remote.drop_attrs(), xr.open_zarr(local_cube).load().drop_attrs())
    assert set(remote.data_vars) == {"y", "so", "sst", "topo", "ocean_mask", "sin_time", "cos_time"}

    # Rebuilt over the finished cube (its group metadata withdrawn first, keys that do not exist
    # skipped), resumed or overwritten, the bucket holds the same cube again.
    for flag in ("--resume", "--overwrite"):
        cf(cubeforge, env, "build", RECIPE, "--input", f"s3://{bucket}/in/io.zarr",
           "--output", f"s3://{bucket}/out/cube.zarr", "--quiet", flag)
        got = bucket_tree(s3_server, bucket, "out/cube.zarr")
        assert set(got) == set(want) and chunk_files(got) == chunk_files(want), flag


def test_cp_round_trips_are_byte_identical(cubeforge, s3_server, example, tmp_path):
    env = s3_server.env()
    a, b = new_bucket(s3_server), new_bucket(s3_server)
    want = local_tree(example)
    up = cf_json(cubeforge, env, "cp", example, f"s3://{a}/io.zarr")
    assert up["copied"] == up["objects"] == len(want)
    assert bucket_tree(s3_server, a, "io.zarr") == want
    # Bucket to bucket, and within one bucket (server-side copy).
    cf(cubeforge, env, "cp", f"s3://{a}/io.zarr", f"s3://{b}/copy.zarr", "--quiet")
    cf(cubeforge, env, "cp", f"s3://{b}/copy.zarr", f"s3://{b}/again.zarr", "--quiet")
    assert bucket_tree(s3_server, b, "again.zarr") == want
    down = tmp_path / "back.zarr"
    cf(cubeforge, env, "cp", f"s3://{b}/again.zarr", down, "--quiet")
    assert local_tree(down) == want
    # One object, into a "directory" and to a name.
    cf(cubeforge, env, "cp", example / ".zmetadata", f"s3://{a}/single/", "--quiet")
    cf(cubeforge, env, "cp", f"s3://{a}/single/.zmetadata", tmp_path / "zm.json", "--quiet")
    assert (tmp_path / "zm.json").read_bytes() == (example / ".zmetadata").read_bytes()


def test_sync_transfers_only_changes_and_deletes_on_request(cubeforge, s3_server, example, tmp_path):
    env = s3_server.env()
    bucket = new_bucket(s3_server)
    src = tmp_path / "src.zarr"
    cf(cubeforge, env, "cp", example, src, "--quiet")
    dst = f"s3://{bucket}/mirror.zarr"
    first = cf_json(cubeforge, env, "sync", src, dst)
    assert first["copied"] == first["objects"] and first["skipped"] == 0
    again = cf_json(cubeforge, env, "sync", src, dst)
    assert again["copied"] == 0 and again["skipped"] == again["objects"]

    changed = src / "sst" / "0.0.0"
    changed.write_bytes(changed.read_bytes()[:-1])
    (src / "sst" / ".zattrs").unlink()
    (src / "new_object").write_bytes(b"new")
    s3_server.client().put_object(Bucket=bucket, Key="mirror.zarr/extra/junk", Body=b"junk")
    dry = cf_json(cubeforge, env, "sync", src, dst, "--delete", "--dry-run")
    # The store's group metadata is withdrawn while it changes, then written again last.
    rewritten = [".zgroup", ".zmetadata"]
    assert sorted(dry["copied_keys"]) == [*rewritten, "new_object", "sst/0.0.0"] and dry["deleted"] == 2
    assert "extra/junk" in bucket_keys(s3_server, bucket, "mirror.zarr"), "--dry-run removed something"
    keep = cf_json(cubeforge, env, "sync", src, dst)
    assert sorted(keep["copied_keys"]) == [*rewritten, "new_object", "sst/0.0.0"] and keep["deleted"] == 0
    assert "extra/junk" in bucket_keys(s3_server, bucket, "mirror.zarr")
    delete = cf_json(cubeforge, env, "sync", src, dst, "--delete")
    # Removing metadata (sst/.zattrs) changes the store: its group metadata is written again.
    assert sorted(delete["copied_keys"]) == rewritten and delete["deleted"] == 2
    assert bucket_tree(s3_server, bucket, "mirror.zarr") == local_tree(src)

    # Same size, other content, and the destination is newer: only --checksum notices.
    s3_server.client().put_object(Bucket=bucket, Key="mirror.zarr/new_object", Body=b"NEW")
    os.utime(src / "new_object", (1_000_000_000, 1_000_000_000))
    assert cf_json(cubeforge, env, "sync", src, dst)["copied"] == 0
    summed = cf_json(cubeforge, env, "sync", src, dst, "--checksum")
    assert summed["copied_keys"] == [*rewritten, "new_object"]
    assert bucket_tree(s3_server, bucket, "mirror.zarr") == local_tree(src)


def test_rm_recursive_and_ls_du(cubeforge, s3_server, example):
    env = s3_server.env()
    bucket = new_bucket(s3_server)
    cf(cubeforge, env, "cp", example, f"s3://{bucket}/a/io.zarr", "--quiet")
    cf(cubeforge, env, "cp", example / ".zgroup", f"s3://{bucket}/a/note.txt", "--quiet")
    want = local_tree(example)

    listing = cf_json(cubeforge, env, "ls", "-l", f"s3://{bucket}/a/")["entries"]
    by_name = {e["name"]: e for e in listing}
    assert set(by_name) == {"io.zarr/", "note.txt"}
    store = by_name["io.zarr/"]
    assert store["kind"] == "zarr" and store["zarr_format"] == 2 and store["objects"] == len(want)
    assert {"sst", "so", "CHL", "time"} <= set(store["variables"])
    assert store["size"] == sum(p.stat().st_size for p in example.rglob("*") if p.is_file())
    recursive = cf_json(cubeforge, env, "ls", "-r", f"s3://{bucket}/a/io.zarr")["entries"]
    assert sorted(e["name"] for e in recursive) == sorted(want)

    du = cf_json(cubeforge, env, "du", f"s3://{bucket}/a/io.zarr")
    assert du["objects"] == len(want) and du["zarr_format"] == 2
    sst_files = [p for p in (example / "sst").iterdir()]
    assert du["parts"]["sst"] == {"bytes": sum(p.stat().st_size for p in sst_files), "objects": len(sst_files)}
    assert sum(p["bytes"] for p in du["parts"].values()) == du["bytes"]

    # Not on a terminal: refused without --yes, and nothing removed.
    refused = cf(cubeforge, env, "rm", "-r", f"s3://{bucket}/a/io.zarr", check=False)
    assert refused.returncode == 2 and "--yes" in refused.stderr
    assert len(bucket_keys(s3_server, bucket, "a/io.zarr")) == len(want)
    dry = cf_json(cubeforge, env, "rm", "-r", "--dry-run", f"s3://{bucket}/a/io.zarr")
    assert dry["deleted"] == len(want) and len(bucket_keys(s3_server, bucket, "a/io.zarr")) == len(want)
    # rm without -r refuses a prefix; removes an object.
    single = cf(cubeforge, env, "rm", f"s3://{bucket}/a/io.zarr", check=False)
    assert single.returncode == 2 and "use rm -r" in single.stderr
    cf(cubeforge, env, "rm", f"s3://{bucket}/a/note.txt", "--quiet")
    done = cf_json(cubeforge, env, "rm", "-r", "--yes", f"s3://{bucket}/a/io.zarr")
    assert done["deleted"] == len(want)
    assert bucket_keys(s3_server, bucket, "") == {}
    gone = cf(cubeforge, env, "ls", f"s3://{bucket}/a/io.zarr", check=False)
    assert gone.returncode == 2 and "no such" in gone.stderr


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("s3://{bucket}", "whole bucket"),
        ("s3://{bucket}/", "whole bucket"),
        ("", "empty location"),
        ("s3://{bucket}/keep/../keep", "'..' segment"),
    ],
    ids=["bucket", "bucket-slash", "empty", "dotdot"],
)
def test_rm_refuses_dangerous_urls(cubeforge, s3_server, url, message):
    env = s3_server.env()
    bucket = new_bucket(s3_server)
    s3_server.client().put_object(Bucket=bucket, Key="keep/object", Body=b"x")
    proc = cf(cubeforge, env, "rm", "-r", "--yes", url.format(bucket=bucket), check=False)
    assert proc.returncode == 2
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], proc.stderr
    assert proc.stdout == ""
    assert bucket_keys(s3_server, bucket, "") == {"keep/object": 1}


def test_dotdot_keys_refused_for_copies(cubeforge, s3_server, example, tmp_path):
    env = s3_server.env()
    bucket = new_bucket(s3_server)
    for src, dst in [(example, f"s3://{bucket}/a/../b"), (f"s3://{bucket}/x/%2e%2e/y", tmp_path / "o")]:
        proc = cf(cubeforge, env, "cp", src, dst, check=False)
        assert proc.returncode == 2 and "'..' segment" in proc.stderr, proc.stderr
    assert bucket_keys(s3_server, bucket, "") == {}


def make_many_objects(root: Path, count: int) -> None:
    """A Zarr-like tree of ``count`` small objects."""
    rng = random.Random(7)
    (root).mkdir(parents=True)
    (root / ".zgroup").write_text('{"zarr_format": 2}')
    for i in range(count - 1):
        d = root / f"v{i % 8}"
        d.mkdir(exist_ok=True)
        (d / f"{i // 8}.0").write_bytes(rng.randbytes(rng.randint(200, 2000)))


@pytest.mark.parametrize("direction", ["upload", "download"])
def test_killed_sync_resumes_with_only_missing_objects(cubeforge, s3_server, tmp_path, direction):
    count = 2048
    bucket = new_bucket(s3_server)
    src_local = tmp_path / "many.zarr"
    make_many_objects(src_local, count)
    want = local_tree(src_local)
    env = s3_server.env()
    if direction == "upload":
        src, dst = src_local, f"s3://{bucket}/many.zarr"
    else:
        cf(cubeforge, env, "cp", src_local, f"s3://{bucket}/many.zarr", "--quiet")
        src, dst = f"s3://{bucket}/many.zarr", tmp_path / "down.zarr"

    def present() -> int:
        # A killed sync's lock is its own, not data.
        if direction == "upload":
            return len(set(bucket_keys(s3_server, bucket, "many.zarr")) - {".cubeforge.lock"})
        files = Path(dst).rglob("*") if Path(dst).exists() else []
        return sum(1 for p in files if p.is_file() and "#" not in p.name and p.name != ".cubeforge.lock")

    # A little latency per request keeps the transfer slow enough to interrupt half-way.
    proxy = FaultProxy(s3_server.port, delay_s=0.004)
    try:
        slow_env = s3_server.env(proxy.url)
        proc = subprocess.Popen(
            [str(cubeforge.binary), "sync", str(src), str(dst), "--quiet", "--concurrency", "8"],
            env=slow_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None and present() < count // 3:
            time.sleep(0.05)
        assert proc.poll() is None, "the sync finished before it could be interrupted"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        proxy.stop()
    time.sleep(0.5)  # let the server finish requests already received
    before = present()
    assert count // 3 <= before < count, before

    rerun = cf_json(cubeforge, env, "sync", src, dst)
    assert rerun["objects"] == count
    assert rerun["copied"] == count - before and rerun["skipped"] == before, rerun
    if direction == "upload":
        assert bucket_tree(s3_server, bucket, "many.zarr") == want
    else:
        assert local_tree(Path(dst)) == want, "partial or staging files left behind"
    assert cf_json(cubeforge, env, "sync", src, dst)["copied"] == 0


def test_build_and_sync_survive_transient_faults(cubeforge, s3_server, example, local_cube, tmp_path):
    env = s3_server.env()
    bucket = new_bucket(s3_server)
    cf(cubeforge, env, "cp", example, f"s3://{bucket}/in/io.zarr", "--quiet")
    proxy = FaultProxy(s3_server.port, fail_rate=0.15, drop_rate=0.05, seed=11)
    try:
        flaky = s3_server.env(proxy.url)
        cf(cubeforge, flaky, "build", RECIPE, "--input", f"s3://{bucket}/in/io.zarr",
           "--output", f"s3://{bucket}/out/cube.zarr", "--quiet")
        report = cf_json(cubeforge, flaky, "sync", f"s3://{bucket}/out/cube.zarr", tmp_path / "cube.zarr")
        up = cf_json(cubeforge, flaky, "sync", example, f"s3://{bucket}/again/io.zarr")
    finally:
        proxy.stop()
    assert proxy.counts["failed"] > 10 and proxy.counts["dropped"] > 3, proxy.counts
    want = local_tree(local_cube)
    assert report["copied"] == len(want)
    got = local_tree(tmp_path / "cube.zarr")
    assert set(got) == set(want) and chunk_files(got) == chunk_files(want)
    assert up["copied"] == up["objects"]
    assert bucket_tree(s3_server, bucket, "again/io.zarr") == local_tree(example)


def test_request_that_keeps_failing_ends_with_clear_error(cubeforge, s3_server, example, tmp_path):
    env = s3_server.env()
    bucket = new_bucket(s3_server)
    proxy = FaultProxy(s3_server.port, always_fail=r"/io\.zarr/sst/0\.0\.0")
    try:
        flaky = s3_server.env(proxy.url)
        proc = cf(cubeforge, flaky, "--retries", "2", "sync", example, f"s3://{bucket}/io.zarr",
                  "--concurrency", "2", check=False)
        build = cf(cubeforge, flaky, "--retries", "2", "build", RECIPE, "--input", example,
                   "--output", f"s3://{bucket}/io.zarr/sst/0.0.0/cube.zarr", "--quiet", check=False)
    finally:
        proxy.stop()
    assert proxy.counts["always_failed"] >= 3, proxy.counts
    assert proc.returncode == 2 and proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert f"s3://{bucket}/io.zarr/sst/0.0.0" in lines[0] and "500" in lines[0], lines[0]
    reported = int(lines[0].split("(")[-1].split(" of ")[0])
    present = bucket_keys(s3_server, bucket, "io.zarr")
    assert "sst/0.0.0" not in present
    assert reported <= len(present) < len(local_tree(example))
    assert build.returncode == 2 and "500" in build.stderr, build.stderr


def test_secrets_are_never_printed(cubeforge, s3_server, example, tmp_path):
    env = s3_server.env()
    env["AWS_SESSION_TOKEN"] = "cubeforge-session-token-SECRET-91c2"
    bucket = new_bucket(s3_server)
    runs = [
        cf(cubeforge, env, "-vvv", "cp", example, f"s3://{bucket}/io.zarr"),
        cf(cubeforge, env, "-vvv", "ls", "-l", f"s3://{bucket}/"),
        cf(cubeforge, env, "-vvv", "info", f"s3://{bucket}/io.zarr"),
        cf(cubeforge, env, "-vvv", "ls", f"s3://{bucket}/missing", check=False),
    ]
    assert any("DEBUG" in r.stderr or "TRACE" in r.stderr for r in runs), "no debug logging to check"
    for r in runs:
        for secret in (SECRET_KEY, env["AWS_SESSION_TOKEN"]):
            assert secret not in r.stderr and secret not in r.stdout


def test_aws_profile_files_and_anon(cubeforge, s3_server, example, tmp_path):
    bucket = new_bucket(s3_server)
    base = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    creds, config = tmp_path / "credentials", tmp_path / "config"
    creds.write_text(f"[default]\naws_access_key_id = wrong\n\n[work]\naws_access_key_id = {ACCESS_KEY}\n"
                     f"aws_secret_access_key = {SECRET_KEY}\n")
    config.write_text(f"[profile work]\nregion = us-east-1\nendpoint_url = {s3_server.url}\n")
    env = dict(base, AWS_PROFILE="work", AWS_SHARED_CREDENTIALS_FILE=str(creds), AWS_CONFIG_FILE=str(config))
    cf(cubeforge, env, "cp", example / ".zgroup", f"s3://{bucket}/p/.zgroup", "--quiet")
    assert bucket_keys(s3_server, bucket, "p") == {".zgroup": (example / ".zgroup").stat().st_size}
    missing = cf(cubeforge, dict(env, AWS_PROFILE="nope"), "ls", f"s3://{bucket}/", check=False)
    assert missing.returncode == 2 and "profile 'nope'" in missing.stderr, missing.stderr
    # Unsigned requests: no credentials anywhere (moto serves them as a public bucket would).
    anon = dict(base, AWS_ENDPOINT_URL=s3_server.url, AWS_REGION="us-east-1",
                AWS_SHARED_CREDENTIALS_FILE=os.devnull, AWS_CONFIG_FILE=os.devnull)
    listing = json.loads(cf(cubeforge, anon, "--anon", "--json", "ls", "-r", f"s3://{bucket}/p").stdout)
    assert [e["name"] for e in listing["entries"]] == [".zgroup"]
    # http(s) is read-only.
    refused = cf(cubeforge, anon, "cp", example / ".zgroup", f"{s3_server.url}/{bucket}/x", check=False)
    assert refused.returncode == 2 and "read-only" in refused.stderr
