#!/usr/bin/env python3
"""Benchmark: training batches from the tutorial cube (seed 000), cubeforge.Batches vs xbatcher + torch vs zarr-python.

For each ``--days N`` it writes the example input (``cubeforge example io --days N``) and builds the
tutorial cube from it (``cubeforge build recipes/tutorial.yaml``), both cached in ``--workdir``, then
feeds one epoch of batches of shape (32, 5 features, 1, 64, 64) (x: ``sst, so, topo, sin_time,
cos_time`` normalised per feature; y: ``y``), every 64 x 64 patch of every day, with:

a. ``cubeforge``: ``cubeforge.Batches(cube, features, targets=["y"], patch={lat: 64, lon: 64},
   window={time: 1}, batch_size=32, normalize=True, shuffle=True, seed=0)``, iterating
   ``b.epoch("all", 0)``; its statistics are computed in the run (the data card beside the cube is
   deleted first);
b. ``xbatcher``: xbatcher 0.4.0 the way its documentation uses it with PyTorch: one
   ``BatchGenerator(ds[...], input_dims={lat: 64, lon: 64, time: 1})`` for the features and one for
   the target over ``xr.open_zarr(cube)`` (dask), wrapped in ``xbatcher.loaders.torch.MapDataset``
   with a transform that normalises (mean / std per feature, computed with xarray + dask), in a
   ``torch.utils.data.DataLoader(batch_size=32, shuffle=True)``. It is slow, so it runs
   ``--xbatcher-batches`` batches or ``--xbatcher-seconds``, whichever ends first, and its
   samples/s come from that part of the epoch (the table says so);
c. ``zarr loop``: the floor of the Python stack, a hand-written zarr-python + numpy loop: a statistics
   pass, then one time chunk (100 days) at a time, reads the region the patches cover of each
   variable (every needed chunk decoded once), normalises it and cuts the 64 x 64 patches into
   batches with numpy (no shuffling);
d. ``decode zarr``: read + decode once, with zarr-python, every chunk the patches cover of the six
   variables (slabs of ``--slab-chunks`` time chunks), nothing else: no loader can do less;
e. ``decode cubeforge``: the same reads through ``cubeforge.open_dataset``.

Each runs in its own process (``bench/batches.py --worker NAME``) whose peak RSS comes from GNU time
(tutorial.py's ``measure``); the worker times its setup (opening, statistics), its first batch
(from asking for the epoch to holding the first batch) and the epoch, and prints them as JSON. The
table gives samples/s, first-batch latency and peak RSS per loader, and the ratios: cubeforge
samples/s / xbatcher samples/s (target >= 20x) and cubeforge epoch / decode-once time (target
<= 1.5x). ``--verify`` also sums every x and y (float64, NaN-aware) in the cubeforge and zarr-loop
runs and compares the two epochs and their statistics (the sums are then part of the timed loop).
Usage::

    .venv/bin/python bench/batches.py --days 3000 9000 [--quick] [--repeat 1] [--bin PATH] [--workdir bench/work/batches]
        [--loaders cubeforge xbatcher zarr decode-zarr decode-cubeforge] [--xbatcher-seconds 60]
        [--xbatcher-batches 50] [--verify] [--json results.json]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tutorial import Run, measure  # noqa: E402  (wait4 + GNU time measurement of one process)

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "tutorial.yaml"
DEFAULT_BIN = Path(os.environ.get("CUBEFORGE_BIN", "~/.cache/cubeforge/target/release/cubeforge")).expanduser()

FEATURES = ["sst", "so", "topo", "sin_time", "cos_time"]
TARGETS = ["y"]
PATCH = {"lat": 64, "lon": 64}
WINDOW = {"time": 1}
BATCH_SIZE = 32
LOADERS = ("cubeforge", "xbatcher", "zarr", "decode-zarr", "decode-cubeforge")
#: The issue's targets.
TARGET_VS_XBATCHER = 20.0
TARGET_VS_DECODE = 1.5


# --------------------------------------------------------------------------------------------------
# Workers (each runs in its own process and prints one JSON object as its last stdout line)
# --------------------------------------------------------------------------------------------------


class Sums:
    """Order-independent float64 sums of an epoch's batches (``--verify``)."""

    def __init__(self) -> None:
        self.x_sum = self.x_sq = self.y_sum = 0.0
        self.x_nan = self.y_nan = 0

    def add(self, x, y) -> None:
        import numpy as np

        x64, y64 = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
        self.x_sum += float(np.nansum(x64))
        self.x_sq += float(np.nansum(x64 * x64))
        self.y_sum += float(np.nansum(y64))
        self.x_nan += int(np.isnan(x64).sum())
        self.y_nan += int(np.isnan(y64).sum())

    def as_dict(self) -> dict:
        return dict(vars(self))


class Epoch:
    """Counts the batches of one epoch and checks their shapes against (32, 5, 1, 64, 64)."""

    def __init__(self, verify: bool) -> None:
        self.samples = self.batches = 0
        self.bad_shapes: list[str] = []
        self.x_shape = self.y_shape = self.x_dtype = None
        self.sums = Sums() if verify else None

    def add(self, x, y) -> None:
        n = len(x)
        want_x = (n, len(FEATURES), 1, PATCH["lat"], PATCH["lon"])
        want_y = (n, len(TARGETS), 1, PATCH["lat"], PATCH["lon"])
        if self.batches == 0:
            self.x_shape, self.y_shape, self.x_dtype = list(x.shape), list(y.shape), str(x.dtype)
        if (tuple(x.shape), tuple(y.shape)) != (want_x, want_y) or n > BATCH_SIZE:
            if len(self.bad_shapes) < 3:
                self.bad_shapes.append(f"batch {self.batches}: x {tuple(x.shape)}, y {tuple(y.shape)}")
        self.samples += n
        self.batches += 1
        if self.sums is not None:
            self.sums.add(x, y)

    def as_dict(self) -> dict:
        out = {
            "samples": self.samples,
            "batches": self.batches,
            "x_shape": self.x_shape,
            "y_shape": self.y_shape,
            "x_dtype": self.x_dtype,
            "bad_shapes": self.bad_shapes,
        }
        if self.sums is not None:
            out["sums"] = self.sums.as_dict()
        return out



def timed_epoch(make, verify: bool):
    """Iterate the batches ``make()`` returns: the epoch's tally, the seconds to the first batch
    (from asking for the epoch) and the seconds of the whole epoch."""
    epoch = Epoch(verify)
    first = None
    start = time.perf_counter()
    for x, y in make():
        if first is None:
            first = time.perf_counter() - start
        epoch.add(x, y)
    return epoch, first, time.perf_counter() - start

def worker_cubeforge(cube: Path, args) -> dict:
    import cubeforge

    start = time.perf_counter()
    b = cubeforge.Batches(
        str(cube),
        features=FEATURES,
        targets=TARGETS,
        patch=PATCH,
        window=WINDOW,
        batch_size=BATCH_SIZE,
        normalize=True,
        shuffle=True,
        seed=0,
    )
    stats = b.stats  # computed here at the latest: setup, not the epoch
    setup = time.perf_counter() - start
    epoch, first, elapsed = timed_epoch(lambda: b.epoch("all", 0), args.verify)
    return {
        "setup_s": setup,
        "first_batch_s": first,
        "epoch_s": elapsed,
        **epoch.as_dict(),
        "stats": {f: {k: float(stats[f][k]) for k in ("mean", "std")} for f in FEATURES},
    }


class Normalise:
    """xbatcher's ``transform``: a batch Dataset to a (variable, time, lat, lon) float32 tensor,
    ``(x - mean) / std`` per variable (module level, so that DataLoader workers can pickle it)."""

    def __init__(self, names: list[str], mean=None, std=None) -> None:
        import numpy as np

        self.names = names
        self.mean = None if mean is None else np.asarray(mean, dtype=np.float32)[:, None, None, None]
        self.std = None if std is None else np.asarray(std, dtype=np.float32)[:, None, None, None]

    def __call__(self, batch):
        import numpy as np
        import torch

        values = batch[self.names].to_array("variable").transpose("variable", "time", "lat", "lon").values
        values = values.astype(np.float32, copy=False)
        if self.mean is not None:
            values = (values - self.mean) / self.std
        return torch.from_numpy(np.ascontiguousarray(values))


def worker_xbatcher(cube: Path, args) -> dict:
    import dask
    import numpy as np
    import torch
    import xarray as xr
    import xbatcher
    from xbatcher.loaders.torch import MapDataset

    start = time.perf_counter()
    ds = xr.open_zarr(cube)
    moments = dask.compute(*[ds[f].mean() for f in FEATURES], *[ds[f].std() for f in FEATURES])
    mean = np.array([float(m) for m in moments[: len(FEATURES)]])
    std = np.array([float(s) for s in moments[len(FEATURES) :]])
    std = np.where(std == 0, 1.0, std)  # a constant feature is only centred, as cubeforge does
    input_dims = {**PATCH, **WINDOW}
    x_gen = xbatcher.BatchGenerator(ds[FEATURES], input_dims=input_dims)
    y_gen = xbatcher.BatchGenerator(ds[TARGETS], input_dims=input_dims)
    dataset = MapDataset(x_gen, y_gen, transform=Normalise(FEATURES, mean, std), target_transform=Normalise(TARGETS))
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=BATCH_SIZE,
        shuffle=True,
        num_workers=args.xbatcher_workers,
        generator=torch.Generator().manual_seed(0),
        # Not fork: the statistics above started zarr's and dask's threads, and a forked worker
        # waits forever on their locks.
        multiprocessing_context="spawn" if args.xbatcher_workers else None,
    )
    setup = time.perf_counter() - start
    epoch = Epoch(False)
    first = None
    start = time.perf_counter()
    stopped = "epoch"
    for x, y in loader:
        if first is None:
            first = time.perf_counter() - start
        epoch.add(x, y)
        if epoch.batches >= args.xbatcher_batches:
            stopped = f"{args.xbatcher_batches} batches"
            break
        if time.perf_counter() - start >= args.xbatcher_seconds:
            stopped = f"{args.xbatcher_seconds:g} s"
            break
    elapsed = time.perf_counter() - start
    return {
        "setup_s": setup,
        "first_batch_s": first,
        "epoch_s": elapsed,
        "epoch_samples": len(dataset),
        "stopped_after": stopped,
        "workers": args.xbatcher_workers,
        **epoch.as_dict(),
        "stats": {f: {"mean": float(m), "std": float(s)} for f, m, s in zip(FEATURES, mean, std)},
    }


def zarr_layout(cube: Path):
    """The zarr group, time length and chunk, and the patch grid (patches that fit whole, tiling)."""
    import zarr

    group = zarr.open_group(str(cube), mode="r")
    n_time, n_lat, n_lon = group["sst"].shape
    return group, n_time, group["sst"].chunks[0], n_lat // PATCH["lat"], n_lon // PATCH["lon"]


def zarr_stats(group, n_time: int, step: int) -> dict:
    """Per feature mean and population std (float64, NaN-aware) over all of it, one time chunk at a time
    (Chan's parallel update of count, mean and M2)."""
    import numpy as np

    stats = {}
    for name in FEATURES:
        array = group[name]
        parts = [array[...]] if array.ndim == 2 else (array[t : t + step] for t in range(0, n_time, step))
        count, mean, m2 = 0, 0.0, 0.0
        for part in parts:
            values = np.asarray(part, dtype=np.float64)
            values = values[~np.isnan(values)]
            n = values.size
            if n == 0:
                continue
            part_mean = float(values.mean())
            part_m2 = float(((values - part_mean) ** 2).sum())
            delta = part_mean - mean
            total = count + n
            mean += delta * n / total
            m2 += part_m2 + delta * delta * count * n / total
            count = total
        std = math.sqrt(m2 / count) if count else float("nan")
        stats[name] = {"mean": mean, "std": std, "count": count}
    return stats


def zarr_batches(group, n_time: int, step: int, n_lat: int, n_lon: int, stats: dict):
    """Batches of one epoch, in row-major order of the samples' starts (time, lat, lon)."""
    import numpy as np

    h, w = n_lat * PATCH["lat"], n_lon * PATCH["lon"]
    ph, pw = PATCH["lat"], PATCH["lon"]

    def patches(values, out):
        """(t, h, w) -> out[(t, n_lat, n_lon), 64, 64] as a view of the patches."""
        t = values.shape[0]
        out[...] = values.reshape(t, n_lat, ph, n_lon, pw).transpose(0, 1, 3, 2, 4)

    scale = {}
    for name in FEATURES:
        mean, std = stats[name]["mean"], stats[name]["std"]
        scale[name] = (np.float32(mean), np.float32(std if std != 0 else 1.0))
    topo = group["topo"][:h, :w]

    def slabs():
        for t0 in range(0, n_time, step):
            t1 = min(t0 + step, n_time)
            t = t1 - t0
            x = np.empty((t, n_lat, n_lon, len(FEATURES), 1, ph, pw), dtype=np.float32)
            y = np.empty((t, n_lat, n_lon, len(TARGETS), 1, ph, pw), dtype=np.float32)
            for i, name in enumerate(FEATURES):
                values = np.broadcast_to(topo, (t, h, w)) if name == "topo" else group[name][t0:t1, :h, :w]
                mean, std = scale[name]
                patches((values - mean) / std, x[:, :, :, i, 0])
            for i, name in enumerate(TARGETS):
                patches(group[name][t0:t1, :h, :w], y[:, :, :, i, 0])
            n = t * n_lat * n_lon
            yield x.reshape(n, len(FEATURES), 1, ph, pw), y.reshape(n, len(TARGETS), 1, ph, pw)

    carry = None
    for x, y in slabs():
        i = 0
        if carry is not None:
            need = BATCH_SIZE - len(carry[0])
            bx, by = np.concatenate([carry[0], x[:need]]), np.concatenate([carry[1], y[:need]])
            i = min(need, len(x))
            carry = None
            if len(bx) < BATCH_SIZE:
                carry = (bx, by)
                continue
            yield bx, by
        while i + BATCH_SIZE <= len(x):
            yield x[i : i + BATCH_SIZE], y[i : i + BATCH_SIZE]
            i += BATCH_SIZE
        if i < len(x):
            carry = (x[i:].copy(), y[i:].copy())
    if carry is not None:
        yield carry


def worker_zarr(cube: Path, args) -> dict:
    import zarr  # noqa: F401  (imported before the clock starts, as the other workers do)

    start = time.perf_counter()
    group, n_time, step, n_lat, n_lon = zarr_layout(cube)
    stats = zarr_stats(group, n_time, step)
    setup = time.perf_counter() - start
    epoch, first, elapsed = timed_epoch(
        lambda: zarr_batches(group, n_time, step, n_lat, n_lon, stats), args.verify)
    return {
        "setup_s": setup,
        "first_batch_s": first,
        "epoch_s": elapsed,
        **epoch.as_dict(),
        "stats": {f: {"mean": s["mean"], "std": s["std"]} for f, s in stats.items()},
    }


def decode_plan(cube: Path, slab_chunks: int):
    """(variable, time slice or None, region) reads covering every chunk the patches touch, once."""
    _, n_time, step, n_lat, n_lon = zarr_layout(cube)
    h, w = n_lat * PATCH["lat"], n_lon * PATCH["lon"]
    reads = []
    for name in FEATURES + TARGETS:
        if name == "topo":
            reads.append((name, None, h, w))
            continue
        slab = step * slab_chunks
        for t0 in range(0, n_time, slab):
            reads.append((name, slice(t0, min(t0 + slab, n_time)), h, w))
    time_chunks = math.ceil(n_time / step)
    chunks = (len(FEATURES) + len(TARGETS) - 1) * time_chunks * n_lat * n_lon + n_lat * n_lon
    return reads, chunks


def worker_decode(cube: Path, args, engine: str) -> dict:
    import numpy as np

    reads, chunks = decode_plan(cube, args.slab_chunks)
    if engine == "zarr":
        import zarr

        start = time.perf_counter()
        group = zarr.open_group(str(cube), mode="r")
        get = lambda name: group[name]  # noqa: E731
    else:
        import cubeforge

        start = time.perf_counter()
        ds = cubeforge.open_dataset(str(cube))
        get = lambda name: ds[name].variable  # noqa: E731  (positional indexing, lazy until .values)
    setup = time.perf_counter() - start
    start = time.perf_counter()
    nbytes = 0
    for name, t, h, w in reads:
        key = (slice(0, h), slice(0, w)) if t is None else (t, slice(0, h), slice(0, w))
        values = get(name)[key]
        values = np.asarray(values.values if hasattr(values, "values") else values)
        nbytes += values.nbytes
    elapsed = time.perf_counter() - start
    return {"setup_s": setup, "decode_s": elapsed, "epoch_s": elapsed, "chunks": chunks, "decoded_mb": nbytes / 1e6}


def run_worker(name: str, cube: Path, args) -> dict:
    if name == "cubeforge":
        return worker_cubeforge(cube, args)
    if name == "xbatcher":
        return worker_xbatcher(cube, args)
    if name == "zarr":
        return worker_zarr(cube, args)
    if name == "decode-zarr":
        return worker_decode(cube, args, "zarr")
    if name == "decode-cubeforge":
        return worker_decode(cube, args, "cubeforge")
    raise SystemExit(f"unknown worker {name}")


# --------------------------------------------------------------------------------------------------
# Inputs (cached)
# --------------------------------------------------------------------------------------------------


def prepare_cube(binary: Path, workdir: Path, days: int, rebuild: bool) -> Path:
    """The example input of ``days`` days and the tutorial cube built from it, both cached in ``workdir``."""
    src, cube = workdir / f"io-{days}d.zarr", workdir / f"cube-{days}d.zarr"
    if not (src / ".zmetadata").is_file():
        partial = workdir / f"io-{days}d.zarr.partial"
        shutil.rmtree(partial, ignore_errors=True)
        print(f"[{days} days] writing the input with cubeforge example io ...", file=sys.stderr, flush=True)
        subprocess.run(
            [str(binary), "example", "io", "--days", str(days), "--quiet", "--overwrite", str(partial)], check=True
        )
        shutil.rmtree(src, ignore_errors=True)
        partial.rename(src)
        rebuild = True
    if rebuild or not (cube / ".zmetadata").is_file():
        print(f"[{days} days] building the tutorial cube with cubeforge build ...", file=sys.stderr, flush=True)
        cmd = [str(binary), "build", str(RECIPE), "--input", str(src), "--output", str(cube), "--overwrite", "--quiet"]
        subprocess.run(cmd, check=True)
    return cube


def delete_datacards(cube: Path) -> None:
    """The data card cubeforge may have left beside the cube (``<cube>.datacard.json``), so that every
    cubeforge run computes its statistics."""
    for pattern in (f"{cube.name}*.datacard.json", f"{cube.stem}*.datacard.json"):
        for card in cube.parent.glob(pattern):
            card.unlink(missing_ok=True)


# --------------------------------------------------------------------------------------------------
# The benchmark
# --------------------------------------------------------------------------------------------------


def result_of(run: Run) -> dict:
    if not run.ok:
        return {"ok": False, "error": run.error_line(), "peak_rss_mb": run.peak_rss_mb, "wall_s": run.wall_s}
    lines = [line for line in run.stdout.splitlines() if line.startswith("{")]
    if not lines:
        return {"ok": False, "error": "no JSON on stdout", "peak_rss_mb": run.peak_rss_mb, "wall_s": run.wall_s}
    return {"ok": True, **json.loads(lines[-1]), "peak_rss_mb": run.peak_rss_mb, "wall_s": run.wall_s}


def run_days(binary: Path, args, days: int) -> dict:
    workdir = args.workdir.resolve()
    cube = prepare_cube(binary, workdir, days, args.rebuild)
    logs = workdir / "logs"
    worker_opts = [
        "--xbatcher-seconds",
        str(args.xbatcher_seconds),
        "--xbatcher-batches",
        str(args.xbatcher_batches),
        "--xbatcher-workers",
        str(args.xbatcher_workers),
        "--slab-chunks",
        str(args.slab_chunks),
    ] + (["--verify"] if args.verify else [])
    runs: dict[str, list[dict]] = {name: [] for name in args.loaders}
    order = [name for name in LOADERS if name in args.loaders]
    for rep in range(args.repeat):
        shift = rep % len(order)
        for name in order[shift:] + order[:shift]:
            if name == "cubeforge":
                delete_datacards(cube)
            os.sync()
            label = f"{name} (run {rep + 1} of {args.repeat})"
            print(f"[{days} days] {label} ...", file=sys.stderr, flush=True)
            cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", name, "--cube", str(cube), *worker_opts]
            result = result_of(measure(cmd, logs, f"{name}-{days}d-{rep}"))
            runs[name].append(result)
            status = "ok" if result["ok"] else result["error"]
            print(
                f"[{days} days] {label}: {result['wall_s']:.2f} s process, {result['peak_rss_mb']:.0f} MB peak RSS ({status})",
                file=sys.stderr,
                flush=True,
            )
    row = {"days": days, "cube": str(cube)}
    for name, results in runs.items():
        good = sorted((r for r in results if r["ok"]), key=lambda r: r["epoch_s"])
        if not good:
            row[name] = results[0]
            continue
        best = dict(good[len(good) // 2])  # median epoch time
        best["peak_rss_mb"] = max(r["peak_rss_mb"] for r in results)
        best["epoch_s_all"] = [r["epoch_s"] for r in good]
        row[name] = best
    return row


def fmt(value, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}"


def rate(result: dict | None) -> float | None:
    if not result or not result.get("ok") or "samples" not in result or not result["epoch_s"]:
        return None
    return result["samples"] / result["epoch_s"]


def verify_row(row: dict) -> str:
    """cubeforge's epoch against the zarr loop's: sample count, NaN counts, sums, statistics."""
    cf, zl = row.get("cubeforge"), row.get("zarr")
    if not (cf and zl and cf.get("ok") and zl.get("ok")):
        return "-"
    problems = []
    if cf["samples"] != zl["samples"]:
        problems.append(f"samples {cf['samples']} != {zl['samples']}")
    for f in FEATURES:
        for k in ("mean", "std"):
            a, b = cf["stats"][f][k], zl["stats"][f][k]
            if not math.isclose(a, b, rel_tol=1e-5, abs_tol=1e-6):
                problems.append(f"{f} {k} {a:.6g} != {b:.6g}")
    if "sums" in cf and "sums" in zl:
        s, t = cf["sums"], zl["sums"]
        for k in ("x_nan", "y_nan"):
            if s[k] != t[k]:
                problems.append(f"{k} {s[k]} != {t[k]}")
        scale = max(1.0, cf["samples"] * len(FEATURES) * PATCH["lat"] * PATCH["lon"] * 1e-5)
        for k in ("x_sum", "x_sq", "y_sum"):
            if abs(s[k] - t[k]) > scale + 1e-5 * abs(t[k]):
                problems.append(f"{k} {s[k]:.6g} != {t[k]:.6g}")
    return "agree" if not problems else "; ".join(problems)


def print_tables(rows: list[dict], args) -> None:
    names = {
        "cubeforge": "cubeforge.Batches",
        "xbatcher": "xbatcher + DataLoader (partial epoch*)",
        "zarr": "zarr-python + numpy loop",
        "decode-zarr": "decode once, zarr-python",
        "decode-cubeforge": "decode once, cubeforge.open_dataset",
    }
    print("| days | loader | samples | setup s | first batch s | epoch s | samples/s | peak RSS MiB | note |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---|")
    for row in rows:
        for name in [n for n in LOADERS if n in row]:
            r = row[name]
            if not r.get("ok"):
                print(f"| {row['days']} | {names[name]} | - | - | - | - | - | {fmt(r.get('peak_rss_mb'), 0)} | failed: {r['error']} |")
                continue
            note = ""
            if name == "xbatcher":
                est = r["epoch_samples"] / rate(r) if rate(r) else None
                note = f"{r['samples']} of {r['epoch_samples']} samples (stopped after {r['stopped_after']}); full epoch ≈ {fmt(est, 0)} s"
                if r.get("workers"):
                    note += f"; {r['workers']} DataLoader workers (spawned; peak RSS of the largest process only)"
            elif name.startswith("decode"):
                note = f"{r['chunks']} chunks, {r['decoded_mb']:.0f} MB decoded"
            if r.get("bad_shapes"):
                note += f" WRONG SHAPES: {r['bad_shapes']}"
            samples = r.get("samples", "-")
            print(
                f"| {row['days']} | {names[name]} | {samples} | {fmt(r['setup_s'])} | {fmt(r.get('first_batch_s'), 3)} | "
                f"{fmt(r['epoch_s'])} | {fmt(rate(r), 0)} | {fmt(r['peak_rss_mb'], 0)} | {note} |"
            )
    print()
    print(
        f"| days | cubeforge / xbatcher samples/s (target ≥ {TARGET_VS_XBATCHER:g}x) | cubeforge epoch / decode once zarr "
        f"(target ≤ {TARGET_VS_DECODE:g}x) | cubeforge epoch / decode once cubeforge | cubeforge epoch / zarr loop epoch | "
        "RSS MiB cubeforge / xbatcher / zarr loop | cubeforge vs zarr loop |"
    )
    print("|---:|---:|---:|---:|---:|---|---|")
    for row in rows:
        cf = row.get("cubeforge") or {}
        cf_s = cf.get("epoch_s") if cf.get("ok") else None

        def ratio(a, b):
            return f"{a / b:.1f}x" if a and b else "-"

        def over(name):
            r = row.get(name) or {}
            return r.get("epoch_s") if r.get("ok") else None

        def rss(name):
            r = row.get(name)
            return fmt(r["peak_rss_mb"], 0) if r and r.get("ok") else "-"

        print(
            f"| {row['days']} | {ratio(rate(cf), rate(row.get('xbatcher')))} | {ratio(cf_s, over('decode-zarr'))} | "
            f"{ratio(cf_s, over('decode-cubeforge'))} | {ratio(cf_s, over('zarr'))} | "
            f"{rss('cubeforge')} / {rss('xbatcher')} / {rss('zarr')} | {verify_row(row)} |"
        )
    print(
        "\nBatches: x (32, 5, 1, 64, 64) [sst, so, topo, sin_time, cos_time], y (32, 1, 1, 64, 64), every whole 64 x 64 "
        "patch of every day once. setup = opening + per-feature statistics; first batch = from asking for the epoch "
        "to holding its first batch; epoch s and samples/s exclude setup. * xbatcher: samples/s measured over the "
        f"first {args.xbatcher_batches} batches or {args.xbatcher_seconds:g} s of its epoch, whichever ended first "
        "(its full epoch is estimated from that rate). decode once = reading and decoding every chunk the patches "
        "cover once, nothing else. Peak RSS: GNU time, each loader in its own process."
        + (
            f" The xbatcher process imports torch, which alone peaks at {args.torch_import_rss_mb:.0f} MiB here."
            if getattr(args, "torch_import_rss_mb", None)
            else ""
        )
        + (" --verify: the epochs' sums were computed inside the timed loops." if args.verify else "")
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, nargs="+", default=[3000, 9000], help="input sizes in days")
    parser.add_argument("--quick", action="store_true", help="a smoke test: 400 days, 10 xbatcher batches, --verify")
    parser.add_argument("--bin", type=Path, default=DEFAULT_BIN, help="cubeforge binary (default: $CUBEFORGE_BIN or the release build)")
    parser.add_argument("--workdir", type=Path, default=ROOT / "bench" / "work" / "batches", help="inputs, cubes and logs")
    parser.add_argument("--loaders", nargs="+", choices=LOADERS, default=list(LOADERS))
    parser.add_argument("--repeat", type=int, default=1, help="runs of each loader per size; the median epoch is reported")
    parser.add_argument("--xbatcher-seconds", type=float, default=60.0, help="time budget of the xbatcher run (default 60)")
    parser.add_argument("--xbatcher-batches", type=int, default=50, help="most batches the xbatcher run takes (default 50)")
    parser.add_argument("--xbatcher-workers", type=int, default=0, help="DataLoader num_workers for xbatcher (default 0)")
    parser.add_argument("--slab-chunks", type=int, default=10, help="time chunks per read in the decode-once runs (default 10)")
    parser.add_argument("--verify", action="store_true", help="sum every batch of the cubeforge and zarr-loop epochs and compare them")
    parser.add_argument("--rebuild", action="store_true", help="rebuild the cached cubes")
    parser.add_argument("--json", type=Path, help="also write every measurement to this JSON file")
    parser.add_argument("--worker", choices=LOADERS, help=argparse.SUPPRESS)
    parser.add_argument("--cube", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        print(json.dumps(run_worker(args.worker, args.cube, args)))
        return 0
    if args.quick:
        args.days, args.verify = [400], True
        args.xbatcher_batches = min(args.xbatcher_batches, 10)
        args.xbatcher_seconds = min(args.xbatcher_seconds, 30.0)

    binary = args.bin.expanduser()
    if not (binary.is_file() and os.access(binary, os.X_OK)):
        parser.error(f"--bin {binary} is not an executable file; build cubeforge first")
    args.workdir.mkdir(parents=True, exist_ok=True)
    rows = [run_days(binary, args, days) for days in sorted(args.days)]
    if "xbatcher" in args.loaders:  # what importing torch alone costs the xbatcher process
        baseline = measure([sys.executable, "-c", "import torch"], args.workdir.resolve() / "logs", "import-torch")
        args.torch_import_rss_mb = baseline.peak_rss_mb if baseline.ok else None
    print()
    print_tables(rows, args)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
