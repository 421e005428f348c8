#!/usr/bin/env python3
"""Kill loop: SIGKILL ``cubeforge build``, ``cp`` and ``sync`` of a store at random moments, check that
no killed destination opens in xarray, rerun the command (``build --resume``, the same ``cp`` or
``sync``), and check that the result is byte-identical to an uninterrupted run.

    .venv/bin/python scripts/kill_loop.py --runs 50 --backends local s3

For builds, "byte-identical" compares every file, with the creation time (``cubeforge_created``)
taken out of the group attributes; copies are compared with their source exactly. S3 runs use
moto's server on 127.0.0.1 (from the Python test environment). Prints one line per command and
backend, and exits with status 1 when any check failed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "tutorial.yaml"
LOCK = ".cubeforge.lock"
GROUP_KEYS_WITH_TIME = {".zattrs", ".zmetadata", "zarr.json"}


def normalise(key: str, data: bytes) -> bytes:
    """Root group documents without the creation time (which differs between any two builds)."""
    if key not in GROUP_KEYS_WITH_TIME:
        return data
    doc = json.loads(data)
    doc.pop("cubeforge_created", None)
    doc.get("attributes", {}).pop("cubeforge_created", None)
    doc.get("metadata", {}).get(".zattrs", {}).pop("cubeforge_created", None)
    return json.dumps(doc, sort_keys=True).encode()


@dataclass
class Backend:
    """Where destinations live: local directories, or prefixes of a bucket on moto."""

    name: str
    work: Path
    server: object | None = None
    bucket: str = ""

    def url(self, name: str) -> str:
        return str(self.work / name) if self.server is None else f"s3://{self.bucket}/{name}"

    def env(self) -> dict[str, str]:
        return dict(os.environ) if self.server is None else self.server.env()

    def tree(self, name: str) -> dict[str, str]:
        """Key -> SHA-256 (normalised) of everything at ``name``, the lock left out."""
        out = {}
        if self.server is None:
            root = self.work / name
            for p in sorted(root.rglob("*")) if root.is_dir() else []:
                key = p.relative_to(root).as_posix()
                if p.is_file() and key != LOCK:
                    out[key] = hashlib.sha256(normalise(key, p.read_bytes())).hexdigest()
            return out
        client = self.server.client()
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=f"{name}/"):
            for obj in page.get("Contents", []):
                key = obj["Key"][len(name) + 1 :]
                if key != LOCK:
                    body = client.get_object(Bucket=self.bucket, Key=obj["Key"])["Body"].read()
                    out[key] = hashlib.sha256(normalise(key, body)).hexdigest()
        return out

    def remove(self, name: str) -> None:
        if self.server is None:
            shutil.rmtree(self.work / name, ignore_errors=True)
            return
        client = self.server.client()
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=f"{name}/"):
            keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if keys:
                client.delete_objects(Bucket=self.bucket, Delete={"Objects": keys})

    def opens(self, name: str) -> bool:
        """Whether xarray opens the destination as a dataset."""
        import xarray as xr

        opts = {}
        if self.server is not None:
            from s3_support import ACCESS_KEY, SECRET_KEY

            opts = {"storage_options": {"endpoint_url": self.server.url, "key": ACCESS_KEY, "secret": SECRET_KEY}}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                xr.open_zarr(self.url(name), **opts).close()
                return True
            except Exception:  # noqa: BLE001 - any failure to open counts as "not open"
                return False


@dataclass
class Tally:
    runs: int = 0
    killed: int = 0
    finished_first: int = 0
    opened_unfinished: int = 0
    opened_committed: int = 0
    identical: int = 0
    failures: list[str] = field(default_factory=list)


def run(binary: str, args: list, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([binary, *map(str, args)], env=env, capture_output=True, text=True, timeout=600, check=False)


def loop(binary: str, backend: Backend, command: str, source: str, runs: int, rng: random.Random) -> Tally:
    """``runs`` kill-and-rerun rounds of ``command`` from ``source``."""
    env = backend.env()
    ref = f"ref-{command}"

    def args(dest: str, rerun: bool) -> list:
        if command == "build":
            extra = ["--resume"] if rerun else []
            return ["build", RECIPE, "--input", source, "--output", backend.url(dest), "--quiet", *extra]
        return [command, source, backend.url(dest), "--quiet"]

    backend.remove(ref)
    started = time.monotonic()
    done = run(binary, args(ref, False), env)
    full = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    want = backend.tree(ref)
    tally = Tally()
    # Until `runs` commands were killed while they ran (one that finished first is checked too,
    # and does not count as a kill), trying at most three times as often.
    i = 0
    while tally.killed < runs and i < 3 * runs:
        dest = f"{command}-{i}"
        i += 1
        backend.remove(dest)
        tally.runs += 1
        proc = subprocess.Popen([binary, *map(str, args(dest, False))], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(rng.uniform(0.0, full))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            tally.killed += 1
            if backend.opens(dest):
                # Killed after the commit (while it removed its lock): the cube is whole.
                if backend.tree(dest) == want:
                    tally.opened_committed += 1
                else:
                    tally.opened_unfinished += 1
                    tally.failures.append(f"{dest}: opens in xarray after a kill, unfinished")
        else:
            tally.finished_first += 1
        again = run(binary, args(dest, True), env)
        if again.returncode != 0:
            tally.failures.append(f"{dest}: rerun failed: {again.stderr.strip()}")
        elif backend.tree(dest) == want:
            tally.identical += 1
        else:
            tally.failures.append(f"{dest}: differs from an uninterrupted run")
        backend.remove(dest)
    return tally


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=50, help="kills (during the command) per command and backend")
    parser.add_argument("--days", type=int, default=300, help="days of the example input")
    parser.add_argument("--backends", nargs="+", default=["local", "s3"], choices=["local", "s3"])
    parser.add_argument("--commands", nargs="+", default=["build", "cp", "sync"], choices=["build", "cp", "sync"])
    parser.add_argument("--bin", default=os.environ.get("CUBEFORGE_BIN", str(Path.home() / ".cache/cubeforge/target/release/cubeforge")))
    parser.add_argument("--seed", type=int, default=0)
    opts = parser.parse_args()
    rng = random.Random(opts.seed)
    sys.path.insert(0, str(ROOT / "tests" / "python"))
    failed = False
    with tempfile.TemporaryDirectory(prefix="cf-kill-loop-") as tmp:
        work = Path(tmp)
        made = run(opts.bin, ["example", "io", "--days", opts.days, work / "in.zarr", "--quiet"], dict(os.environ))
        assert made.returncode == 0, made.stderr
        print(
            f"{'backend':<8} {'command':<6} {'runs':>5} {'killed':>7} {'done first':>11} "
            f"{'opened, unfinished':>19} {'opened, committed':>18} {'identical':>10}"
        )
        for name in opts.backends:
            server = None
            backend = Backend(name, work)
            source = str(work / "in.zarr")
            if name == "s3":
                from s3_support import MotoServer

                server = MotoServer()
                backend = Backend(name, work, server, f"kill-{uuid.uuid4().hex[:8]}")
                server.client().create_bucket(Bucket=backend.bucket)
                up = run(opts.bin, ["cp", work / "in.zarr", backend.url("in.zarr"), "--quiet"], server.env())
                assert up.returncode == 0, up.stderr
            try:
                for command in opts.commands:
                    src = source if command == "build" else backend.url("in.zarr") if server else source
                    t = loop(opts.bin, backend, command, src, opts.runs, rng)
                    print(
                        f"{name:<8} {command:<6} {t.runs:>5} {t.killed:>7} {t.finished_first:>11} "
                        f"{t.opened_unfinished:>19} {t.opened_committed:>18} {t.identical:>6}/{t.runs}"
                    )
                    for f in t.failures[:5]:
                        print(f"  FAILED {f}")
                    failed |= bool(t.failures)
            finally:
                if server is not None:
                    server.stop()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
