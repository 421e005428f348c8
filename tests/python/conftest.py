"""Shared fixtures for checking cubeforge against the reference Python tools.

The cubeforge binary under test is taken from the ``CUBEFORGE_BIN`` environment variable, e.g.::

    CUBEFORGE_BIN=$HOME/.cache/cubeforge/target/debug/cubeforge .venv/bin/python -m pytest -q tests/python
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

#: Exit status cubeforge uses for every failure.
EXIT_FAILURE = 2

#: Longest a single cubeforge invocation may take before the test fails (seconds).
COMMAND_TIMEOUT_S = 120


class Cubeforge:
    """Runs the cubeforge binary and checks the shape of what it prints."""

    def __init__(self, binary: Path) -> None:
        self.binary = binary

    def _run(self, args: tuple[str | os.PathLike, ...]) -> subprocess.CompletedProcess[str]:
        """Run cubeforge with ``args`` and return the finished process (text mode, output captured)."""
        return subprocess.run(
            [str(self.binary), *map(str, args)],
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT_S,
            check=False,
        )

    def run(self, *args: str | os.PathLike) -> subprocess.CompletedProcess[str]:
        """Run cubeforge and fail the test, showing its stderr, unless it exits with status 0."""
        proc = self._run(args)
        assert proc.returncode == 0, (
            f"cubeforge {' '.join(map(str, args))} exited with {proc.returncode}:\n{proc.stderr}"
        )
        return proc

    def run_failing(self, *args: str | os.PathLike) -> str:
        """Run cubeforge expecting a failure; check exit status 2 and a one-line ``error: ...`` on stderr.

        Returns that error line.
        """
        proc = self._run(args)
        assert proc.returncode == EXIT_FAILURE, (
            f"cubeforge {' '.join(map(str, args))} exited with {proc.returncode}, "
            f"expected {EXIT_FAILURE}; stderr:\n{proc.stderr}"
        )
        lines = proc.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), (
            f"expected one 'error: ...' line on stderr, got:\n{proc.stderr}"
        )
        return lines[0]

    def info(self, store: str | os.PathLike, group: str = "") -> dict:
        """Return the parsed ``cubeforge info --json`` document of ``store`` (sub-group ``group``).

        Where some variables cannot be read, cubeforge still prints the document (their ``error`` field
        says why) but exits with status 2; that document is returned too. Checks the envelope (format
        name and version) before returning it.
        """
        args: tuple[str | os.PathLike, ...] = ("info", store, "--json")
        if group:
            args += ("--group", group)
        proc = self._run(args)
        printed_document = proc.returncode in (0, EXIT_FAILURE) and proc.stdout.strip()
        assert printed_document, (
            f"cubeforge {' '.join(map(str, args))} exited with {proc.returncode}:\n{proc.stderr}"
        )
        doc = json.loads(proc.stdout)
        assert doc["format"] == "cubeforge-info" and doc["version"] == 1, doc
        if proc.returncode == EXIT_FAILURE:
            variables = {**doc["coords"], **doc["data_vars"]}.values()
            assert any(var["error"] for var in variables), (
                f"exit status 2 without a variable error:\n{proc.stderr}"
            )
        return doc

    def example_io(
        self, out: Path, days: int, seed: int = 0, overwrite: bool = False
    ) -> subprocess.CompletedProcess[str]:
        """Write the synthetic NOAA-tutorial store with ``cubeforge example io`` to ``out``."""
        args: tuple[str | os.PathLike, ...] = ("example", "io", "--days", str(days), "--seed", str(seed))
        if overwrite:
            args += ("--overwrite",)
        return self.run(*args, out)


@pytest.fixture(scope="session")
def cubeforge() -> Cubeforge:
    """The cubeforge binary named by ``CUBEFORGE_BIN``; every test using it fails clearly if unusable."""
    value = os.environ.get("CUBEFORGE_BIN")
    if not value:
        pytest.fail(
            "CUBEFORGE_BIN is not set: point it at a built cubeforge binary, e.g. "
            "CUBEFORGE_BIN=$HOME/.cache/cubeforge/target/debug/cubeforge",
            pytrace=False,
        )
    binary = Path(value).expanduser()
    if not (binary.is_file() and os.access(binary, os.X_OK)):
        pytest.fail(f"CUBEFORGE_BIN={value} is not an executable file; build cubeforge first", pytrace=False)
    return Cubeforge(binary)


@pytest.fixture(scope="session")
def s3_server():
    """moto's S3 server on 127.0.0.1 with a free port, started once per session and stopped after."""
    from s3_support import MotoServer

    server = MotoServer()
    yield server
    server.stop()


@pytest.fixture(scope="session", params=["s3", "gcs", "azure"])
def cloud(request, tmp_path_factory):
    """One object-storage service on 127.0.0.1, per parameter: moto (S3, the session's
    ``s3_server``), fake-gcs-server (GCS) or Azurite (Azure Blob Storage); see cloud_support."""
    from cloud_support import AzuriteServer, FakeGcsServer, MotoCloud

    if request.param == "s3":
        yield MotoCloud(request.getfixturevalue("s3_server"))
        return
    workdir = tmp_path_factory.mktemp(f"{request.param}-emulator")
    server = FakeGcsServer(workdir) if request.param == "gcs" else AzuriteServer(workdir)
    yield server
    server.stop()
