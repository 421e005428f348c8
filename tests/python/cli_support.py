"""Running the cubeforge binary from the object-storage tests, and comparing the trees it writes."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

#: Longest one cubeforge invocation of these tests may take (seconds).
TIMEOUT_S = 120


def cf(cubeforge, env, *args, check=True):
    """Run cubeforge with ``env``; with ``check``, fail the test unless it exits with status 0."""
    proc = subprocess.run(
        [str(cubeforge.binary), *map(str, args)], env=env, capture_output=True, text=True, timeout=TIMEOUT_S
    )
    if check:
        assert proc.returncode == 0, f"cubeforge {' '.join(map(str, args))} exited {proc.returncode}:\n{proc.stderr}"
    return proc


def cf_json(cubeforge, env, *args):
    return json.loads(cf(cubeforge, env, "--json", *args).stdout)


def local_tree(root: Path) -> dict[str, str]:
    """Relative path -> SHA-256 of every file below ``root``."""
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def chunk_files(tree: dict[str, str]) -> dict[str, str]:
    """Chunks only: metadata documents carry provenance (times, URLs) that differ between builds."""
    return {k: v for k, v in tree.items() if not k.rsplit("/", 1)[-1].startswith(".")}
