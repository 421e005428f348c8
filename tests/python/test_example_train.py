"""The README's example: examples/train_cnn.py builds the tutorial cube from the embedded example
and trains the tiny CNN for one epoch on CPU; the loss it reports must be finite and fall."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[2]


def test_example_trains_one_epoch(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples/train_cnn.py"), "--days", "400", "--work", str(tmp_path),
         "--device", "cpu"],
        capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    losses = [float(x) for x in re.findall(r"^step\s+\d+\s+loss\s+([-\d.eE+na]+)", out, re.M)]
    assert len(losses) >= 10, out
    assert all(l == l and l < 1e6 for l in losses), losses  # finite
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5, losses  # it learns
    m = re.search(r"validation loss .*?: ([\d.]+) over (\d+) pixels", out)
    assert m and int(m.group(2)) > 0 and float(m.group(1)) == float(m.group(1)), out
    assert (tmp_path / "cnn_tutorial.zarr" / ".zmetadata").exists()
