"""Building cubes, describing data and moving it: the command-line tool's commands as functions.

Each runs in this process with the GIL released; reports are the documents the command-line
tool prints with ``--json``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import warnings
from typing import Any, Mapping, Sequence

from . import _native

PathLike = str | os.PathLike


@dataclasses.dataclass(frozen=True)
class BuildReport:
    """What a build did.

    Attributes:
        output: the cube's location.
        plan: the plan's summary (dimensions, variables with shapes, chunks and dtypes, bytes to
            read and write, passes, estimated peak memory), as ``--dry-run --json`` prints it.
        chunks_computed: output chunks computed and written (0 for a dry run).
        chunks_resumed: output chunks kept from an interrupted build (``resume=True``).
        seconds: wall time.
        report: the whole report of the build (``None`` for a dry run).
    """

    output: str
    plan: dict
    chunks_computed: int
    chunks_resumed: int
    seconds: float
    report: dict | None

    @property
    def dry_run(self) -> bool:
        """Whether nothing was written."""
        return self.report is None


def parse_bytes(value: int | str | None, default: int = 192 << 20) -> int:
    """Bytes from an int or a text with a K, M or G suffix (``"192M"``), as ``--memory-limit``."""
    if value is None:
        return default
    if isinstance(value, int):
        if value <= 0:
            raise ValueError(f"memory_limit: {value} is not a positive number of bytes")
        return value
    m = re.fullmatch(r"\s*(\d+)\s*([KMG]?)(?:i?B)?\s*", str(value), re.IGNORECASE)
    if not m:
        raise ValueError(f"memory_limit: '{value}' is not a size (use K, M or G, e.g. '512M')")
    return int(m.group(1)) << {"": 0, "K": 10, "M": 20, "G": 30}[m.group(2).upper()]


def _recipe_text(recipe: PathLike | Mapping[str, Any]) -> tuple[str, str]:
    if isinstance(recipe, Mapping):
        # JSON is YAML: the recipe reaches the same parser, one field per line for messages.
        return "<recipe>", json.dumps(recipe, indent=2, default=str)
    text = os.fspath(recipe)
    if "\n" in text:
        return "<recipe>", text
    try:
        with open(text, encoding="utf-8") as f:
            return text, f.read()
    except FileNotFoundError:
        from ._errors import NotFoundError

        raise NotFoundError(f"{text}: cannot read the recipe: no such file", text) from None


def _report(doc: dict) -> BuildReport:
    plan = doc.get("plan") or {}
    report = doc.get("report")
    return BuildReport(
        output=plan.get("output", ""),
        plan=plan,
        chunks_computed=(report or {}).get("chunks_computed", 0),
        chunks_resumed=(report or {}).get("chunks_resumed", 0),
        seconds=doc.get("seconds", 0.0),
        report=report,
    )


def build(
    recipe: PathLike | Mapping[str, Any],
    input: str | None = None,
    output: str | None = None,
    overwrite: bool = False,
    resume: bool = False,
    jobs: int | None = None,
    memory_limit: int | str | None = None,
    progress: bool = True,
    dry_run: bool = False,
    break_lock: bool = False,
) -> BuildReport:
    """Build a cube from a recipe, as ``cubeforge build`` does (the same bytes).

    Args:
        recipe: a path to a YAML recipe, the recipe as a ``dict``, or YAML text.
        input: replaces the recipe's input URL (recipes with one input).
        output: replaces the recipe's output URL.
        overwrite: remove an existing cube at the destination first (only a Zarr store is
            ever removed; a destination holding anything else is refused).
        resume: continue an interrupted build, keeping the chunks already written and verified.
        jobs: worker threads (default: one per core).
        memory_limit: bytes of decoded input chunks kept in memory (int, or text such as
            ``"512M"``; default 192 MiB).
        progress: show a progress bar on standard error.
        dry_run: validate and plan only; read no data and write nothing.
        break_lock: replace the destination's lock even if its holder may still run.

    Returns:
        A :class:`BuildReport`.

    Raises:
        RecipeError: the recipe cannot be used (``.location`` is ``file:line``).
        DestinationNotEmptyError: the destination holds data and ``overwrite`` is not set.
        CubeforgeError: any other failure, as a subclass naming its kind.
        KeyboardInterrupt: on Ctrl-C, once the build has stopped: the cube is left unfinished
            (no consolidated metadata; readers do not take it for a cube), and
            ``resume=True`` continues it.
    """
    name, text = _recipe_text(recipe)
    return _run(name, text, input=input, output=output, overwrite=overwrite, resume=resume,
                dry_run=dry_run, break_lock=break_lock, jobs=jobs, memory_limit=memory_limit,
                progress=progress)


def _run(name: str, text: str, jobs: int | None, memory_limit: int | str | None,
         **options: Any) -> BuildReport:
    if jobs is not None and (isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 0):
        raise ValueError(f"jobs: {jobs!r} is not a number of threads (a whole number, 0 or None for one per core)")
    doc = _native.build(name, text, jobs=jobs or 0, memory_limit=parse_bytes(memory_limit),
                        **options)
    return _report(json.loads(doc))


def convert(
    sources: PathLike | Sequence[PathLike],
    dest: PathLike,
    concat: str | None = None,
    time_from: str | None = None,
    variables: Sequence[str] | None = None,
    chunks: Mapping[str, int] | str | None = None,
    zarr_format: int = 2,
    bands: Sequence[str] | None = None,
    group: str = "",
    overwrite: bool = False,
    resume: bool = False,
    jobs: int | None = None,
    memory_limit: int | str | None = None,
    progress: bool = True,
    dry_run: bool = False,
    break_lock: bool = False,
) -> BuildReport:
    """Copy NetCDF, HDF5 or GeoTIFF files (or a Zarr store) into a Zarr cube, as
    ``cubeforge convert SOURCES... DEST`` does.

    Args:
        sources: files, globs or a Zarr store; several are joined along ``concat``.
        dest: the cube to write.
        concat: the dimension to join the sources along, ordered by its coordinate.
        time_from: where a file's position along ``concat`` comes from without a coordinate:
            ``pattern:FORMAT``, ``attribute:NAME``, ``metadata:ITEM`` or ``tag:NAME``.
        variables: variables to keep (coordinates stay).
        chunks: chunk lengths by dimension (``{"time": 100}``); others keep the input's.
        zarr_format: 2 or 3.
        bands: names of a raster's bands, one variable each.
        group: the group of a NetCDF-4/HDF5 file or Zarr store to read.
        overwrite, resume, jobs, memory_limit, progress, dry_run, break_lock: as :func:`build`.
    """
    if isinstance(sources, (str, os.PathLike)):
        sources = [sources]
    if isinstance(chunks, Mapping):
        chunks = ",".join(f"{k}={v}" for k, v in chunks.items())
    text = _native.convert_recipe(
        [os.fspath(s) for s in sources], os.fspath(dest), concat=concat, time_from=time_from,
        variables=list(variables or []), chunks=chunks, zarr_format=zarr_format,
        bands=list(bands or []), group=group,
    )
    return _run("cubeforge convert", text, overwrite=overwrite, resume=resume, dry_run=dry_run,
                break_lock=break_lock, jobs=jobs, memory_limit=memory_limit, progress=progress,
                skip_unreadable=True)


def info(url: PathLike, group: str = "", concat: str | None = None,
         verify: bool = False) -> dict:
    """Describe a Zarr store, a NetCDF/HDF5/GeoTIFF file, or several files joined along
    ``concat``: the JSON document of ``cubeforge info --json`` (docs/info-json.md) as a dict.

    With ``verify``, every chunk is decoded too and the document gains ``verify``. Variables
    that cannot be read are described and named in a warning.
    """
    doc, notes = _native.info(os.fspath(url), group=group, concat=concat, verify=verify)
    for note in notes:
        warnings.warn(f"{url}: {note}", stacklevel=2)
    return json.loads(doc)


def ls(url: PathLike, long: bool = False, recursive: bool = False, anon: bool = False) -> list[dict]:
    """List objects, prefixes and Zarr stores below ``url`` (``cubeforge ls --json``'s entries)."""
    return json.loads(_native.ls(os.fspath(url), long=long, recursive=recursive, anon=anon))


def du(url: PathLike, anon: bool = False) -> dict:
    """Bytes and objects below ``url``, per variable for a Zarr store (``cubeforge du --json``)."""
    return json.loads(_native.du(os.fspath(url), anon=anon))


def cp(src: PathLike, dst: PathLike, dry_run: bool = False, concurrency: int = 32,
       break_lock: bool = False, progress: bool = False, anon: bool = False) -> dict:
    """Copy an object or a whole store (local, bucket, bucket to bucket), as ``cubeforge cp``.

    A store is copied so that a reader never sees it half-written: its metadata lands last.
    Returns the report ``cubeforge cp --json`` prints.
    """
    return json.loads(_native.transfer(
        os.fspath(src), os.fspath(dst), sync=False, dry_run=dry_run, break_lock=break_lock,
        concurrency=concurrency, progress=progress, anon=anon))


def sync(src: PathLike, dst: PathLike, checksum: bool = False, delete: bool = False,
         dry_run: bool = False, concurrency: int = 32, break_lock: bool = False,
         progress: bool = False, anon: bool = False) -> dict:
    """Copy only missing or changed objects (size and time, or ``checksum``), as
    ``cubeforge sync``; ``delete`` also removes destination objects the source lacks."""
    return json.loads(_native.transfer(
        os.fspath(src), os.fspath(dst), sync=True, checksum=checksum, delete=delete,
        dry_run=dry_run, break_lock=break_lock, concurrency=concurrency, progress=progress,
        anon=anon))


def rm(url: PathLike, recursive: bool = False, force_root: bool = False, dry_run: bool = False,
       concurrency: int = 32, anon: bool = False) -> dict:
    """Remove an object, or with ``recursive`` everything below a prefix (a whole store), as
    ``cubeforge rm --yes``: calling it is the confirmation. A bucket, container or file-system
    root is refused unless ``force_root``."""
    return json.loads(_native.rm(os.fspath(url), recursive=recursive, force_root=force_root,
                                 dry_run=dry_run, concurrency=concurrency, anon=anon))


def write_example(out: PathLike, days: int = 3000, seed: int = 0, overwrite: bool = False) -> None:
    """Write the embedded synthetic input of the seed-000 tutorial (``cubeforge example io``):
    Indian Ocean chlorophyll, SST, salinity and bathymetry, daily from 1979-01-01."""
    _native.write_example(os.fspath(out), days=days, seed=seed, overwrite=overwrite)
