"""A short run of the kill loop (``scripts/kill_loop.py``): ``build``, ``cp`` and ``sync`` of a store
killed at random moments, locally and on S3 (moto): no killed destination opens unfinished in xarray,
and every rerun gives the bytes of an uninterrupted run. The closing figures come from the full run
(``--runs 50``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "kill_loop.py"


def test_kill_loop_short(cubeforge):
    proc = subprocess.run(
        [sys.executable, SCRIPT, "--runs", "3", "--days", "120", "--backends", "local", "s3", "--seed", "7"],
        env={**os.environ, "CUBEFORGE_BIN": str(cubeforge.binary)},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = [line.split() for line in proc.stdout.splitlines()[1:] if not line.startswith(" ")]
    assert len(rows) == 6, proc.stdout
    for row in rows:
        killed, unfinished, identical = int(row[3]), int(row[5]), row[7]
        runs = row[2]
        assert killed >= 1 and unfinished == 0 and identical == f"{runs}/{runs}", proc.stdout
