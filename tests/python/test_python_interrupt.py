"""Ctrl-C in `cubeforge.build`: KeyboardInterrupt once the build has stopped, nothing a reader
takes for a finished cube, and `resume=True` finishing it with the bytes of an uninterrupted
build."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import xarray as xr

import cubeforge

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable


def chunk_bytes(store: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(store)): p.read_bytes()
        for p in sorted(store.rglob("*"))
        if p.is_file() and not p.name.startswith(".")
    }


@pytest.fixture(scope="module")
def example(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("intr") / "io.zarr"
    cubeforge.write_example(out, days=1500)
    return out


def test_ctrl_c_leaves_an_unfinished_cube_that_resume_completes(example, tmp_path):
    dest = tmp_path / "cube.zarr"
    script = textwrap.dedent(f"""
        import sys, cubeforge
        print("start", flush=True)
        try:
            cubeforge.build({str(ROOT / 'recipes/tutorial.yaml')!r}, input={str(example)!r},
                            output={str(dest)!r}, progress=False, jobs=1, memory_limit="64M")
        except KeyboardInterrupt:
            print("interrupted", flush=True)
            sys.exit(3)
        print("finished", flush=True)
    """)
    proc = subprocess.Popen([PY, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "start"
    # Interrupt once the build is writing chunks.
    for _ in range(400):
        if dest.exists() and any(p.is_file() for p in dest.rglob("*/*")):
            break
        if proc.poll() is not None:
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    if proc.returncode == 0:
        pytest.skip("the build finished before the interrupt arrived")
    assert proc.returncode == 3, out
    assert "interrupted" in out
    # Nothing a reader takes for a finished cube.
    with pytest.raises(Exception):
        xr.open_zarr(dest)
    assert not (dest / ".zmetadata").exists()

    report = cubeforge.build(ROOT / "recipes/tutorial.yaml", input=str(example), output=str(dest),
                             resume=True, progress=False)
    assert report.chunks_resumed > 0
    whole = tmp_path / "whole.zarr"
    cubeforge.build(ROOT / "recipes/tutorial.yaml", input=str(example), output=str(whole), progress=False)
    a, b = chunk_bytes(dest), chunk_bytes(whole)
    assert a.keys() == b.keys()
    assert all(a[k] == b[k] for k in a)
    left, right = xr.open_zarr(dest).load(), xr.open_zarr(whole).load()
    for ds in (left, right):
        ds.attrs.pop("cubeforge_created")
    xr.testing.assert_identical(left, right)
