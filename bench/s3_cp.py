#!/usr/bin/env python3
"""Benchmark (not a test): `cubeforge cp` against `aws s3 cp --recursive` on a local S3 server.

Starts moto's S3 server on 127.0.0.1, writes a Zarr store of about 1 GB with
`cubeforge example io`, then copies it local -> S3 and S3 -> local with both tools, one after
the other on the same machine. Prints wall time, throughput and peak RSS of each run and the
ratios (aws time / cubeforge time: above 1 means cubeforge is faster), and checks that every
copy is complete.

    .venv/bin/python bench/s3_cp.py [--days 2000] [--cubeforge PATH] [--concurrency 32]

Needs the test venv (`scripts/setup-python.sh`: moto[server], awscli) and a release build.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "python"))

from s3_support import MotoServer  # noqa: E402


def run(cmd: list[str], env: dict[str, str]) -> tuple[float, int]:
    """Run ``cmd``; return wall seconds and peak RSS in bytes (from wait4)."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    stderr = proc.stderr.read().decode() if proc.stderr else ""
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        sys.exit(f"{' '.join(cmd)} failed ({code}):\n{stderr}")
    return seconds, usage.ru_maxrss * 1024


def tree_size(root: Path) -> tuple[int, int]:
    files = [p for p in root.rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


def bucket_size(client, bucket: str, prefix: str) -> tuple[int, int]:
    n = size = 0
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            n += 1
            size += obj["Size"]
    return n, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=2000, help="size of the example store (2000 days: about 1.1 GB)")
    parser.add_argument("--cubeforge", default=None, help="cubeforge binary (default: the release build)")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--work", default=str(ROOT / "bench" / "work" / "s3_cp"))
    args = parser.parse_args()

    target = Path(os.environ.get("CARGO_TARGET_DIR", Path.home() / ".cache" / "cubeforge" / "target"))
    binary = args.cubeforge or str(target / "release" / "cubeforge")
    aws = str(Path(sys.executable).with_name("aws"))
    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    src = work / "io.zarr"
    subprocess.run([binary, "example", "io", "--days", str(args.days), "--quiet", str(src)], check=True)
    n_files, n_bytes = tree_size(src)
    print(f"store: {src} ({n_files} objects, {n_bytes / 1e9:.2f} GB)")

    server = MotoServer()
    try:
        env = server.env()
        client = server.client()
        client.create_bucket(Bucket="bench")
        runs = {
            "cubeforge upload": [binary, "cp", str(src), "s3://bench/cf/io.zarr", "--quiet",
                                 "--concurrency", str(args.concurrency)],
            "aws upload": [aws, "s3", "cp", "--recursive", "--only-show-errors", str(src), "s3://bench/aws/io.zarr"],
            "cubeforge download": [binary, "cp", "s3://bench/cf/io.zarr", str(work / "cf.zarr"), "--quiet",
                                   "--concurrency", str(args.concurrency)],
            "aws download": [aws, "s3", "cp", "--recursive", "--only-show-errors", "s3://bench/aws/io.zarr",
                             str(work / "aws.zarr")],
        }
        results = {}
        for name, cmd in runs.items():
            results[name] = run(cmd, env)
            seconds, rss = results[name]
            print(f"{name:20s} {seconds:7.2f} s  {n_bytes / seconds / 1e6:7.1f} MB/s  peak RSS {rss / 2**20:7.1f} MiB")
        for prefix in ("cf/io.zarr/", "aws/io.zarr/"):
            assert bucket_size(client, "bench", prefix) == (n_files, n_bytes), prefix
        for local in ("cf.zarr", "aws.zarr"):
            assert tree_size(work / local) == (n_files, n_bytes), local
    finally:
        server.stop()
    for direction in ("upload", "download"):
        ratio = results[f"aws {direction}"][0] / results[f"cubeforge {direction}"][0]
        print(f"{direction}: aws / cubeforge time = {ratio:.2f} (above 1: cubeforge faster)")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
