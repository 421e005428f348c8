"""The standing corpus of bad input: what every case asserts.

Each ``test_corpus_<category>.py`` file holds cases of one category (recipes, metadata, chunk
data, paths and URLs, storage commands, concurrency, clouds). Every case runs cubeforge on input
that is broken, hostile or careless and checks, through :func:`refused`:

- exit status 2 and exactly one line on stderr, ``error: ...``, that names what is wrong (the
  ``expect`` fragments) — a panic, an abort or a stack overflow fails the case;
- no data lost: every file under the ``keep`` paths has the same bytes afterwards;
- nothing a reader takes for finished: no ``dest`` path holds group metadata (Zarr v2 or v3)
  unless it held the same metadata before (withdrawing it is allowed).

``python3 tests/python/corpus.py`` prints how many cases each category has.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

#: Exit status cubeforge uses for every failure.
EXIT_FAILURE = 2
#: Longest one hostile invocation may take (seconds); a hang fails the case.
TIMEOUT_S = 120
#: Keys whose presence makes a reader take a path for a Zarr store.
GROUP_METADATA = (".zmetadata", ".zgroup", "zarr.json")


def tree(root: Path) -> dict[str, str]:
    """Relative path -> SHA-256 of every file below ``root`` (``root`` itself if it is a file)."""
    root = Path(root)
    if root.is_file():
        return {".": hashlib.sha256(root.read_bytes()).hexdigest()}
    out = {}
    if not root.is_dir():
        return out
    for dirpath, _dirs, files in os.walk(root, followlinks=False):
        for name in files:
            p = Path(dirpath) / name
            if p.is_symlink():
                out[p.relative_to(root).as_posix()] = "-> " + os.readlink(p)
            else:
                out[p.relative_to(root).as_posix()] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def group_metadata(path: Path) -> dict[str, str]:
    """The group metadata keys at ``path`` and their SHA-256."""
    path = Path(path)
    return {k: hashlib.sha256((path / k).read_bytes()).hexdigest() for k in GROUP_METADATA if (path / k).is_file()}


def refused(
    binary: Path | str,
    args: list,
    expect: list[str] | tuple[str, ...] = (),
    keep: list[Path] | tuple[Path, ...] = (),
    dest: list[Path] | tuple[Path, ...] = (),
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    stdin: str | None = None,
) -> str:
    """Run cubeforge with ``args`` expecting a refusal; check every corpus rule; return the error line.

    ``expect`` fragments must all appear in the error line (case-insensitive).
    """
    keep_before = {Path(p): tree(Path(p)) for p in keep}
    dest_before = {Path(p): group_metadata(Path(p)) for p in dest}
    proc = subprocess.run(
        [str(binary), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        cwd=cwd,
        env=env,
        input=stdin,
        check=False,
    )
    shown = f"cubeforge {' '.join(map(str, args))}"
    assert "panicked" not in proc.stderr and "has overflowed its stack" not in proc.stderr, (
        f"{shown} crashed:\n{proc.stderr}"
    )
    assert proc.returncode == EXIT_FAILURE, (
        f"{shown} exited with {proc.returncode}, expected {EXIT_FAILURE}; stderr:\n{proc.stderr}"
    )
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), f"{shown}: expected one 'error: ...' line, got:\n{proc.stderr}"
    line = lines[0]
    for fragment in expect:
        assert fragment.lower() in line.lower(), f"{shown}: {fragment!r} not in {line!r}"
    for path, before in keep_before.items():
        assert tree(path) == before, f"{shown} changed or removed data under {path}"
    for path, before in dest_before.items():
        after = group_metadata(path)
        assert not after or after == before, (
            f"{shown} left group metadata at {path} that a reader takes for a finished store"
        )
    return line


def as_unprivileged_user(binary) -> tuple[str, list[str], Path | None]:
    """How to run cubeforge so that permissions apply: as is, or (as root, who reads every directory)
    a copy of the binary run as ``nobody`` through ``setpriv``, from a directory ``nobody`` can reach."""
    if not (hasattr(os, "geteuid") and os.geteuid() == 0):
        return str(binary), [], None
    if shutil.which("setpriv") is None:
        import pytest

        pytest.skip("running as root without setpriv to drop privileges")
    home = Path(tempfile.mkdtemp(prefix="cf-unprivileged-", dir="/tmp"))
    home.chmod(0o755)
    copy = home / "cubeforge"
    shutil.copy2(binary, copy)
    copy.chmod(0o755)
    return "setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", str(copy)], home


def main() -> None:
    """Print the number of corpus cases per category (collected by pytest)."""
    here = Path(__file__).resolve().parent
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", *sorted(map(str, here.glob("test_corpus_*.py")))],
        capture_output=True,
        text=True,
        cwd=here,
        check=False,
    )
    counts: dict[str, int] = {}
    for line in proc.stdout.splitlines():
        if "::" in line and line.startswith("test_corpus_"):
            category = line.split("::")[0].removeprefix("test_corpus_").removesuffix(".py")
            counts[category] = counts.get(category, 0) + 1
    for category, n in sorted(counts.items()):
        print(f"{category:<12} {n}")
    print(f"{'total':<12} {sum(counts.values())}")


if __name__ == "__main__":
    main()
