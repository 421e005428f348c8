#!/usr/bin/env python3
"""Benchmark: the NOAA CNN tutorial (seed 000) with xarray + dask vs ``cubeforge build``, and a codec floor.

For each ``--days N``:

1. writes the synthetic input with ``cubeforge example io --days N`` once, cached in ``--workdir``;
2. runs ``--repeat`` times (default 3), taking turns in a rotating order, each in a fresh process whose wall time, CPU time and
   peak RSS are taken from ``wait4`` (the same numbers ``/usr/bin/time -v`` prints), and reports
   the run of median wall time (peak RSS: the highest of the runs):

   a. the tutorial's xarray + dask code, ``tests/python/tutorial_reference.py SRC DST``;
   b. ``cubeforge build recipes/tutorial.yaml --input SRC --output DST --overwrite --quiet``;
   c. the floor: one Python process that decodes once every input chunk the pipeline needs
      (all of ``CHL_cmes-gapfree``, the ``sst`` and ``so`` chunks holding kept days, ``topo`` and
      ``CHL_cmes-land``), encodes once every output chunk with Blosc(lz4, 5, shuffle), using
      numcodecs' C-blosc on one thread, and writes each encoded chunk to its own file, the way
      cubeforge writes it (``O_DIRECT`` for its whole 4 KiB blocks, timed by the CPU time it
      takes) and, separately, with a plain buffered write (the "floor buf" columns). Only the
      codec calls and the file writes are timed, not file reads, NaN tests or array arithmetic:
      no implementation can do less work than this on one core. Half of it is the estimate for
      2 cores.

then prints one table for all sizes. Every run writes to a new directory and the outputs are
deleted only at the end: creating thousands of files right after deleting thousands is slower on
some file systems (ext4 without a journal will not reuse an inode freed in the last 30 s), and
that cost would fall on whichever tool ran next. A failing run (e.g. a cubeforge without
``build``) is shown in its row and the benchmark goes on. Usage::

    .venv/bin/python bench/tutorial.py --days 3000 9000 [--repeat 3] [--bin PATH] [--workdir bench/work] [--json out.json]
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "tests" / "python" / "tutorial_reference.py"
RECIPE = ROOT / "recipes" / "tutorial.yaml"
DEFAULT_BIN = Path(os.environ.get("CUBEFORGE_BIN", "~/.cache/cubeforge/target/release/cubeforge")).expanduser()

#: The tutorial's region, ``.sel(lat=slice(35, -5), lon=slice(45,90))``, and output chunks.
LAT, LON = (35.0, -5.0), (45.0, 90.0)
OUT_CHUNKS = {"time": 100, "lat": 64, "lon": 64}
#: Seconds to wait after deleting old outputs, before the first measured run (see the docstring).
SETTLE_S = 31


# --------------------------------------------------------------------------------------------------
# Measuring a process
# --------------------------------------------------------------------------------------------------


@dataclass
class Run:
    """One measured process."""

    cmd: list[str]
    returncode: int
    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def error_line(self) -> str:
        """The first ``error: …`` line of stderr (cubeforge), else its last non-empty line (a traceback's)."""
        lines = [line.strip() for line in self.stderr.splitlines() if line.strip()]
        errors = [line for line in lines if line.startswith("error")]
        return f"exit {self.returncode}: {(errors or lines or ['(no stderr)'])[-1 if not errors else 0]}"


def measure(cmd: list[str], log_dir: Path, name: str) -> Run:
    """Run ``cmd`` in a fresh process and take its wall time, user+system CPU time and peak RSS.

    The child is reaped with ``os.wait4`` (wall and CPU time: its rusage, with its reaped children);
    its peak RSS comes from GNU time (``/usr/bin/time -f %M``) where installed, which measures the
    tool from a small parent; stdout and stderr go to ``log_dir/name.{out,err}``.
    """
    log_dir.mkdir(parents=True, exist_ok=True)
    out_path, err_path = log_dir / f"{name}.out", log_dir / f"{name}.err"
    # A child's ru_maxrss starts from its parent's RSS at fork (Linux carries the old memory's
    # high-water mark across exec), so a benchmark process holding generated inputs would lend
    # every tool its own size. GNU time, a small process, forks the tool and reports its peak.
    rss_path = log_dir / f"{name}.rss"
    gnu_time = Path("/usr/bin/time")
    wrapped = [str(gnu_time), "-f", "%M", "-o", str(rss_path), *cmd] if gnu_time.exists() else cmd
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(wrapped, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    peak_kb = usage.ru_maxrss  # Linux reports kilobytes
    if wrapped is not cmd and rss_path.exists():
        last = (rss_path.read_text().strip().splitlines() or ["0"])[-1]
        peak_kb = int(last) if last.isdigit() else peak_kb
    return Run(
        cmd=[str(c) for c in cmd],
        returncode=proc.returncode,
        wall_s=wall,
        cpu_s=usage.ru_utime + usage.ru_stime,
        peak_rss_mb=peak_kb / 1024,
        stdout=out_path.read_text(errors="replace"),
        stderr=err_path.read_text(errors="replace"),
    )


# --------------------------------------------------------------------------------------------------
# The codec floor (runs in its own process: ``tutorial.py --floor-worker SRC``)
# --------------------------------------------------------------------------------------------------


DIRECT_MIN_BYTES = 64 * 1024  # as cubeforge's store: smaller objects are written through the page cache
DIRECT_ALIGN = 4096


def write_direct(path: Path, raw: bytes, scratch) -> None:
    """Write ``raw`` to a new file as cubeforge's local store does (``store::write_file``): the
    whole 4 KiB blocks with ``O_DIRECT`` from an aligned buffer, the rest through the page cache.
    Falls back to a plain write where the file system refuses ``O_DIRECT``."""
    head = len(raw) // DIRECT_ALIGN * DIRECT_ALIGN
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    direct = len(raw) >= DIRECT_MIN_BYTES and hasattr(os, "O_DIRECT")
    try:
        fd = os.open(path, flags | (os.O_DIRECT if direct else 0), 0o644)
    except OSError:
        fd, direct = os.open(path, flags, 0o644), False
    try:
        if direct:
            scratch[:head] = memoryview(raw)[:head]
            os.write(fd, memoryview(scratch)[:head])
            import fcntl

            fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_DIRECT)
            os.write(fd, raw[head:])
        else:
            os.write(fd, raw)
    finally:
        os.close(fd)


class CodecClock:
    """Sums the time spent inside codec calls and output file writes only.

    Each encoded chunk is written twice, to two files: the way cubeforge writes it (``O_DIRECT``
    for its whole blocks, see ``write_direct``) and with a plain buffered write, the way xarray's
    stores do. A write is timed by the CPU time of the writing thread: with ``O_DIRECT`` the
    thread then waits for the device, which a pipelined writer overlaps with computing (cubeforge
    writes from background threads), so only the CPU it takes bounds the time from below.
    """

    def __init__(self, out_dir: Path) -> None:
        import mmap

        self.decode_s = self.encode_s = 0.0
        self.write_s = self.write_buffered_s = self.write_wall_s = 0.0
        self.decoded_chunks = self.encoded_chunks = 0
        self.decoded_bytes = self.encoded_bytes = self.written_bytes = 0
        self.out_dir = out_dir
        (out_dir / "buffered").mkdir(parents=True, exist_ok=True)
        self.scratch = mmap.mmap(-1, 64 << 20)  # page-aligned, reused

    def decode(self, codec, raw: bytes, out):
        """Decode into ``out``, a buffer reused from chunk to chunk: a fresh chunk-sized buffer
        each time would add the kernel's page faults to the floor."""
        start = time.perf_counter()
        buf = codec.decode(raw, out=out)
        self.decode_s += time.perf_counter() - start
        self.decoded_chunks += 1
        self.decoded_bytes += out.nbytes
        return buf

    def encode(self, codec, array) -> bytes:
        start = time.perf_counter()
        raw = codec.encode(array)
        self.encode_s += time.perf_counter() - start
        self.encoded_chunks += 1
        self.encoded_bytes += array.nbytes
        return raw

    def write(self, raw: bytes) -> None:
        """Write one encoded chunk to a new file, as a store writes a chunk (both ways, see above)."""
        name = str(self.encoded_chunks)
        wall, cpu = time.perf_counter(), time.thread_time()
        write_direct(self.out_dir / name, raw, self.scratch)
        self.write_s += time.thread_time() - cpu
        self.write_wall_s += time.perf_counter() - wall
        cpu = time.thread_time()
        with open(self.out_dir / "buffered" / name, "wb") as f:
            f.write(raw)
        self.write_buffered_s += time.thread_time() - cpu
        self.written_bytes += len(raw)


def floor_worker(src: Path, out_dir: Path) -> dict:
    """Decode every needed input chunk once, encode every output chunk once and write it to a file
    under ``out_dir``; time the codec calls and the writes."""
    import numpy as np
    import numcodecs
    import numcodecs.blosc
    import pandas as pd

    numcodecs.blosc.use_threads = False  # one core: C-blosc never spawns its threads
    numcodecs.blosc.set_nthreads(1)
    out_codec = numcodecs.Blosc(cname="lz4", clevel=5, shuffle=numcodecs.Blosc.SHUFFLE)
    out_dir.mkdir(parents=True, exist_ok=True)
    clock = CodecClock(out_dir)

    meta = json.loads((src / ".zmetadata").read_text())["metadata"]

    buffers: dict = {}  # (shape, dtype) -> a decode buffer, reused (callers copy what they keep)

    def zarray(name: str) -> dict:
        return meta[f"{name}/.zarray"]

    def chunk(name: str, index: tuple[int, ...]):
        """Chunk ``index`` of array ``name``, decoded (a fill-value block where the chunk is absent)."""
        za = zarray(name)
        shape = tuple(za["chunks"])
        dtype = np.dtype(za["dtype"])
        path = src / name / za.get("dimension_separator", ".").join(map(str, index))
        if not path.is_file():
            fill = za["fill_value"]
            return np.full(shape, np.nan if fill == "NaN" else (fill or 0), dtype=dtype)
        raw = path.read_bytes()  # file I/O is not timed
        codec = numcodecs.get_codec(za["compressor"])
        out = buffers.setdefault((shape, dtype.str), np.empty(shape, dtype=dtype))
        clock.decode(codec, raw, out)
        return out

    def whole(name: str):
        """A small array that is one chunk (coordinates, topo, the land mask), decoded and trimmed."""
        za = zarray(name)
        assert za["shape"] == za["chunks"] or len(za["shape"]) == 1, name
        index = (0,) * len(za["shape"])
        return chunk(name, index)[tuple(slice(0, n) for n in za["shape"])].copy()

    # The region, as .sel(lat=slice(35, -5), lon=slice(45, 90)) picks it (label slices, both ends in).
    lat, lon = whole("lat"), whole("lon")
    lat_idx = np.flatnonzero((lat <= LAT[0]) & (lat >= LAT[1]))
    lon_idx = np.flatnonzero((lon >= LON[0]) & (lon <= LON[1]))
    region = (slice(lat_idx[0], lat_idx[-1] + 1), slice(lon_idx[0], lon_idx[-1] + 1))
    n_time = zarray("CHL_cmes-gapfree")["shape"][0]

    def time_chunks(name: str):
        """(first day, last day + 1, decoded region of the chunk) for every time chunk of ``name``."""
        step = zarray(name)["chunks"][0]
        for i, start in enumerate(range(0, n_time, step)):
            stop = min(start + step, n_time)
            yield start, stop, i

    # y: every chunk; keep the days that are not all-NaN in the region.
    kept_y, keep_days = [], []
    for start, stop, i in time_chunks("CHL_cmes-gapfree"):
        block = chunk("CHL_cmes-gapfree", (i, 0, 0))[: stop - start, region[0], region[1]]
        has_data = ~np.isnan(block).all(axis=(1, 2))
        keep_days.append(np.flatnonzero(has_data) + start)
        kept_y.append(block[has_data].copy())
    days = np.concatenate(keep_days)
    keep = np.zeros(n_time, dtype=bool)
    keep[days] = True
    y = np.concatenate(kept_y)

    # sst: the chunks holding kept days (the ocean mask looks at the kept days only: the tutorial
    # drops the all-NaN days first).
    ever_valid = np.zeros((lat_idx.size, lon_idx.size), dtype=bool)
    kept_sst = []
    for start, stop, i in time_chunks("sst"):
        if not keep[start:stop].any():
            continue
        block = chunk("sst", (i, 0, 0))[: stop - start, region[0], region[1]][keep[start:stop]]
        ever_valid |= ~np.isnan(block).all(axis=0)
        kept_sst.append(block.copy())
    sst = np.concatenate(kept_sst)

    # so: only the chunks holding kept days.
    kept_so = []
    for start, stop, i in time_chunks("so"):
        if keep[start:stop].any():
            block = chunk("so", (i, 0, 0))[: stop - start, region[0], region[1]]
            kept_so.append(block[keep[start:stop]].copy())
    so = np.concatenate(kept_so)

    topo = whole("topo")[region]
    ocean = (whole("CHL_cmes-land")[region] == 0) & ever_valid

    # Output values (untimed arithmetic), computed one output time chunk at a time.
    unit, _, origin = meta["time/.zattrs"]["units"].partition(" since ")
    assert unit == "days", f"time units {unit!r}: only 'days since …' is handled"
    time_values = whole("time")[days]
    day_of_year = pd.to_datetime(time_values, unit="D", origin=pd.Timestamp(origin)).day_of_year.to_numpy()
    day_rad = 2 * np.pi * (day_of_year / 365.25)
    day_sin = np.sin(day_rad).astype(np.float32)
    day_cos = np.cos(day_rad).astype(np.float32)

    def masked(values):
        return np.where(ocean, values, np.float32(np.nan)).astype(np.float32, copy=False)

    def encode_tiles(values, chunk_shape) -> None:
        """Encode every chunk of ``values`` (edge chunks padded with NaN) that is not all NaN."""
        grid = [range(0, n, c) for n, c in zip(values.shape, chunk_shape)]
        for starts in itertools.product(*grid):
            part = values[tuple(slice(s, s + c) for s, c in zip(starts, chunk_shape))]
            if np.isnan(part).all():
                continue  # not written (write_empty_chunks=False)
            if part.shape != tuple(chunk_shape):
                padded = np.full(chunk_shape, np.nan, dtype=np.float32)
                padded[tuple(slice(0, n) for n in part.shape)] = part
                part = padded
            clock.write(clock.encode(out_codec, np.ascontiguousarray(part)))

    step = OUT_CHUNKS["time"]
    tile = (OUT_CHUNKS["lat"], OUT_CHUNKS["lon"])
    n_days = days.size
    spatial = (lat_idx.size, lon_idx.size)
    for start in range(0, n_days, step):
        rows = slice(start, min(start + step, n_days))
        with np.errstate(divide="ignore", invalid="ignore"):
            cube = {
                "sst": masked(sst[rows]),
                "so": masked(so[rows]),
                "y": masked(np.log(y[rows])),
                "sin_time": np.broadcast_to(day_sin[rows, None, None], (rows.stop - rows.start, *spatial)),
                "cos_time": np.broadcast_to(day_cos[rows, None, None], (rows.stop - rows.start, *spatial)),
            }
        for values in cube.values():
            encode_tiles(values, (step, *tile))
    encode_tiles(masked(topo).astype(np.float32), tile)
    encode_tiles(ocean.astype(np.float32), tile)
    for coord in (time_values.astype(np.int64), lat[lat_idx], lon[lon_idx]):
        clock.write(clock.encode(out_codec, np.ascontiguousarray(coord)))

    return {
        "days_in": int(n_time),
        "days_kept": int(n_days),
        "decode_s": clock.decode_s,
        "encode_s": clock.encode_s,
        "write_s": clock.write_s,
        "write_wall_s": clock.write_wall_s,
        "write_buffered_s": clock.write_buffered_s,
        "floor_1core_s": clock.decode_s + clock.encode_s + clock.write_s,
        "floor_buffered_1core_s": clock.decode_s + clock.encode_s + clock.write_buffered_s,
        "decoded_chunks": clock.decoded_chunks,
        "decoded_mb": clock.decoded_bytes / 1e6,
        "encoded_chunks": clock.encoded_chunks,
        "encoded_mb": clock.encoded_bytes / 1e6,
        "written_mb": clock.written_bytes / 1e6,
    }


# --------------------------------------------------------------------------------------------------
# The benchmark
# --------------------------------------------------------------------------------------------------


@dataclass
class Row:
    days: int
    input_path: str
    xarray: dict | None = None
    cubeforge: dict | None = None
    floor: dict | None = None
    errors: dict = field(default_factory=dict)


def example_input(binary: Path, workdir: Path, days: int) -> Path:
    """The ``example io`` store of ``days`` days, written once into ``workdir`` and reused afterwards."""
    path = workdir / f"io-{days}d.zarr"
    if (path / ".zmetadata").is_file():
        return path
    partial = workdir / f"io-{days}d.zarr.partial"
    shutil.rmtree(partial, ignore_errors=True)
    print(f"[{days} days] writing the input with cubeforge example io ...", file=sys.stderr, flush=True)
    subprocess.run(
        [str(binary), "example", "io", "--days", str(days), "--quiet", "--overwrite", str(partial)], check=True
    )
    shutil.rmtree(path, ignore_errors=True)
    partial.rename(path)
    return path


def run_one(binary: Path, recipe: Path, workdir: Path, days: int, tools: list[str], repeat: int) -> Row:
    src = example_input(binary, workdir, days)
    row = Row(days=days, input_path=str(src))
    out_dir, logs = workdir / "out", workdir / "logs"
    out_dir.mkdir(parents=True, exist_ok=True)

    def step(tool: str, rep: int, cmd: list[str]) -> Run:
        # Neither tool pays for flushing what an earlier run wrote: the kernel throttles a writer
        # while other dirty pages are written back.
        os.sync()
        label = f"{tool} (run {rep + 1} of {repeat})"
        print(f"[{days} days] {label} ...", file=sys.stderr, flush=True)
        run = measure(cmd, logs, f"{tool}-{days}d-{rep}")
        status = "ok" if run.ok else run.error_line()
        print(
            f"[{days} days] {label}: {run.wall_s:.2f} s, {run.peak_rss_mb:.0f} MB peak RSS ({status})",
            file=sys.stderr,
            flush=True,
        )
        return run

    runs: dict[str, list[Run]] = {tool: [] for tool in tools}
    floors: list[dict] = []
    # The tools take turns, so that a slow spell of the machine does not fall on one tool only,
    # and the order rotates from one round to the next, so that no tool always runs right after
    # the same other one (after xarray + dask has freed 1.5 GB, a virtual machine's host may take
    # the memory back, and the next process pays for faulting it in again).
    order = [tool for tool in ("xarray", "cubeforge", "floor") if tool in tools]
    for rep in range(repeat):
        shift = rep % len(order)
        for tool in order[shift:] + order[:shift]:
            if tool == "xarray":
                dst = out_dir / f"xarray-{days}d-{rep}.zarr"
                runs["xarray"].append(step("xarray", rep, [sys.executable, str(REFERENCE), str(src), str(dst)]))
            elif tool == "cubeforge":
                dst = out_dir / f"cubeforge-{days}d-{rep}.zarr"
                cmd = [str(binary), "build", str(recipe), "--input", str(src), "--output", str(dst), "--quiet"]
                runs["cubeforge"].append(step("cubeforge", rep, cmd))
            else:
                dst = out_dir / f"floor-{days}d-{rep}"
                cmd = [sys.executable, str(Path(__file__).resolve()), "--floor-worker", str(src), "--floor-out", str(dst)]
                run = step("floor", rep, cmd)
                runs["floor"].append(run)
                if run.ok:
                    floors.append(
                        {**json.loads(run.stdout), "process_wall_s": run.wall_s, "process_peak_rss_mb": run.peak_rss_mb}
                    )
    for tool in ("xarray", "cubeforge"):
        if tool not in tools:
            continue
        failed = [run for run in runs[tool] if not run.ok]
        if failed:
            row.errors[tool] = failed[0].error_line()
            setattr(row, tool, summary(failed[0]))
        else:
            setattr(row, tool, summary_of(runs[tool]))
    if "floor" in tools:
        if floors:
            floors.sort(key=lambda f: f["floor_1core_s"])
            row.floor = {
                **floors[len(floors) // 2],
                "floor_1core_s_all": [f["floor_1core_s"] for f in floors],
                "floor_buffered_1core_s_all": [f["floor_buffered_1core_s"] for f in floors],
            }
        else:
            row.errors["floor"] = runs["floor"][0].error_line()
    return row


def summary_of(runs: list[Run]) -> dict:
    """The run of median wall time, with the highest peak RSS of all runs and every wall time."""
    ordered = sorted(runs, key=lambda r: r.wall_s)
    median = summary(ordered[len(ordered) // 2])
    median["peak_rss_mb"] = max(r.peak_rss_mb for r in runs)
    median["wall_s_all"] = [r.wall_s for r in runs]
    return median


def summary(run: Run) -> dict:
    return {
        "ok": run.ok,
        "returncode": run.returncode,
        "wall_s": run.wall_s,
        "cpu_s": run.cpu_s,
        "peak_rss_mb": run.peak_rss_mb,
        "cmd": run.cmd,
    }


def fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def ok_value(result: dict | None, key: str) -> float | None:
    return result[key] if result and result["ok"] else None


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def print_table(rows: list[Row], cores_estimate: int) -> None:
    header = [
        "days",
        "kept",
        "xarray s",
        "xarray cpu s",
        "xarray RSS MB",
        "cubeforge s",
        "cubeforge cpu s",
        "cubeforge RSS MB",
        "speed-up",
        "RSS ratio",
        "floor 1c s",
        f"floor {cores_estimate}c s",
        f"cf/floor {cores_estimate}c",
        f"floor buf {cores_estimate}c s",
        f"cf/floor buf {cores_estimate}c",
        "note",
    ]
    table = [header]
    for row in rows:
        xs, xr_rss = ok_value(row.xarray, "wall_s"), ok_value(row.xarray, "peak_rss_mb")
        cs, cf_rss = ok_value(row.cubeforge, "wall_s"), ok_value(row.cubeforge, "peak_rss_mb")
        floor1 = row.floor["floor_1core_s"] if row.floor else None
        floor_n = floor1 / cores_estimate if floor1 is not None else None
        floor_buf = row.floor.get("floor_buffered_1core_s") if row.floor else None
        floor_buf_n = floor_buf / cores_estimate if floor_buf is not None else None
        note = "; ".join(f"{tool} failed: {err}" for tool, err in row.errors.items())
        table.append(
            [
                str(row.days),
                str(row.floor["days_kept"]) if row.floor else "-",
                fmt(xs),
                fmt(ok_value(row.xarray, "cpu_s")),
                fmt(xr_rss, 0),
                fmt(cs) if row.cubeforge is None or row.cubeforge["ok"] else "error",
                fmt(ok_value(row.cubeforge, "cpu_s")),
                fmt(cf_rss, 0),
                fmt(ratio(xs, cs), 1) + ("x" if ratio(xs, cs) else ""),
                fmt(ratio(xr_rss, cf_rss), 1) + ("x" if ratio(xr_rss, cf_rss) else ""),
                fmt(floor1),
                fmt(floor_n),
                fmt(ratio(cs, floor_n), 2) + ("x" if ratio(cs, floor_n) else ""),
                fmt(floor_buf_n),
                fmt(ratio(cs, floor_buf_n), 2) + ("x" if ratio(cs, floor_buf_n) else ""),
                note,
            ]
        )
    widths = [max(len(line[i]) for line in table) for i in range(len(header) - 1)]
    for i, line in enumerate(table):
        cells = [cell.rjust(w) for cell, w in zip(line[:-1], widths)] + [line[-1]]
        print("  ".join(cells).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))

    if len(rows) >= 2:
        first, last = rows[0], rows[-1]
        parts = []
        for tool in ("xarray", "cubeforge"):
            a, b = ok_value(getattr(first, tool), "peak_rss_mb"), ok_value(getattr(last, tool), "peak_rss_mb")
            parts.append(f"{tool} {(b / a - 1) * 100:+.0f}%" if a and b else f"{tool} -")
        print(f"\nPeak RSS growth {first.days} -> {last.days} days: " + ", ".join(parts))
    print(
        "\nTimes are medians of the runs, RSS the highest. speed-up = xarray s / cubeforge s; RSS ratio = xarray RSS / "
        "cubeforge RSS; floor = numcodecs C-blosc decode of every needed input chunk + encode of every output chunk "
        f"+ writing each encoded chunk to a file as cubeforge does (O_DIRECT, CPU time), on 1 core, /{cores_estimate} "
        f"for the {cores_estimate}-core estimate; cf/floor = cubeforge s / floor {cores_estimate}c s; floor buf: the "
        "same with plain buffered writes, as xarray's stores write."
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, nargs="+", default=[3000, 9000], help="input sizes in days")
    parser.add_argument("--bin", type=Path, default=DEFAULT_BIN, help="cubeforge binary (default: $CUBEFORGE_BIN or the release build)")
    parser.add_argument("--workdir", type=Path, default=ROOT / "bench" / "work", help="inputs, outputs and logs")
    parser.add_argument("--recipe", type=Path, default=RECIPE)
    parser.add_argument("--tools", nargs="+", choices=["xarray", "cubeforge", "floor"], default=["xarray", "cubeforge", "floor"])
    parser.add_argument("--cores", type=int, default=2, help="core count of the floor estimate (default 2)")
    parser.add_argument("--json", type=Path, help="also write every measurement to this JSON file")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each tool per size; the median is reported (default 3)")
    parser.add_argument("--floor-worker", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--floor-out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.floor_worker:
        print(json.dumps(floor_worker(args.floor_worker, args.floor_out)))
        return 0

    binary = args.bin.expanduser()
    if not (binary.is_file() and os.access(binary, os.X_OK)):
        parser.error(f"--bin {binary} is not an executable file; build cubeforge first")
    args.workdir.mkdir(parents=True, exist_ok=True)
    out_dir = args.workdir / "out"
    if out_dir.exists():
        print(f"deleting {out_dir} and waiting {SETTLE_S} s before the first run ...", file=sys.stderr, flush=True)
        shutil.rmtree(out_dir)
        os.sync()
        time.sleep(SETTLE_S)
    try:
        rows = [
            run_one(binary, args.recipe.resolve(), args.workdir.resolve(), days, args.tools, max(1, args.repeat))
            for days in sorted(args.days)
        ]
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)
    print()
    print_table(rows, args.cores)
    if args.json:
        args.json.write_text(json.dumps([asdict(row) for row in rows], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
