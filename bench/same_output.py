#!/usr/bin/env python3
"""Check that two cubeforge binaries write the same cubes, byte for byte.

For a change that must not alter any output (a restructuring, a speed-up), build the same recipes
on the same inputs with the binary before the change and the one after it, and compare:

- every file of the two outputs by SHA-256, except the root group documents (``.zattrs``,
  ``.zmetadata``, ``zarr.json``), which carry the build time: those are compared as JSON with
  ``cubeforge_created`` taken out;
- the ``--json`` reports (plan summary, chunks computed and resumed), keys the older binary does
  not print left out, and ``seconds`` ignored. The input chunks decoded and the buffers mapped
  are printed, not compared: workers that decode ahead race each other, so they vary by one or
  two from run to run of the same binary.

Cases: the tutorial recipe on the example input at each ``--days`` (Zarr v2 in and out), on a
Zarr v3 copy of the smallest input (sharded, zstd), the tutorial writing Zarr v3 with shards, and a
recipe using the remaining operations (label and date selections, reductions of every kind,
``clip``, casts to integers) so that each evaluation path is exercised. Usage::

    python3 bench/same_output.py --before OLD_BIN --after NEW_BIN [--days 437 3000] [--workdir DIR]

The binary before is run twice per case: a file the two runs write differently (a binary that
lays out the chunks of a shard in the order its threads finish them) only has to match one of
them, and the table counts such files. Exits 1 when any case differs. Needs nothing beyond the
Python standard library.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TUTORIAL = ROOT / "recipes" / "tutorial.yaml"
GROUP_DOCS = {".zattrs", ".zmetadata", "zarr.json"}

TO_V3 = """version: 1
inputs:
  io: {url: unused}
output:
  url: unused
  zarr_format: 3
  chunks: {time: 50, lat: 90, lon: 121}
  shards: {time: 100, lat: 180, lon: 242}
operations:
  - drop: [CHL, wind_speed, u_wind]
"""

OTHERS = """version: 1
inputs:
  io: {url: unused}
output:
  url: unused
  chunks: {time: 64, lat: 50, lon: 70}
operations:
  - keep: [sst, so, topo, CHL_cmes-gapfree, CHL_cmes-land]
  - sel: {time: {start: "1979-02-10", stop: "1980-03-01"}, lon: {start: 50, stop: 95.5}}
  - isel: {lat: {start: 3, stop: 160}}
  - assign:
      clipped: "clip(sst, 10, so / 2)"
      anomaly: "sst - mean(sst, 'time')"
      spread: "std(so, ['lat', 'lon'])"
      valid: "count(`CHL_cmes-gapfree`, 'time')"
      total: "sum(topo, 'lat')"
      low: "min(sst, 'time') + max(so, 'time')"
      warm: "any(sst > 29, 'lon') | all(isnan(so), 'lon')"
      scaled: "abs(log10(abs(topo) + 1)) * exp(-1) + sqrt(abs(topo)) - cos(topo) * sin(topo)"
      level: "where(notnull(so), so * 2, -1)"
  - astype: {level: int16, valid: uint8}
  - sortby: time
  - attrs: {anomaly: {units: K}, _global: {title: others}}
"""


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def without_created(value):
    if isinstance(value, dict):
        return {k: without_created(v) for k, v in value.items() if k != "cubeforge_created"}
    if isinstance(value, list):
        return [without_created(v) for v in value]
    return value


def tree(root: Path) -> dict[str, Path]:
    return {p.relative_to(root).as_posix(): p for p in sorted(root.rglob("*")) if p.is_file()}


def same_file(key: str, a: Path, b: Path) -> bool:
    if key in GROUP_DOCS:
        ja, jb = (without_created(json.loads(p.read_text())) for p in (a, b))
        return ja == jb
    return sha(a) == sha(b)


def compare_trees(befores: list[Path], after: Path) -> tuple[list[str], int]:
    """What differs between the stores written before and the one written after (empty: the
    same), and how many files the runs before wrote differently from one another."""
    tb, ta = [tree(b) for b in befores], tree(after)
    problems = []
    for key in sorted(set(tb[0]) ^ set(ta)):
        problems.append(f"{key}: only in {'before' if key in tb[0] else 'after'}")
    unstable = 0
    for key in sorted(set(tb[0]) & set(ta)):
        matches = [key in t and same_file(key, t[key], ta[key]) for t in tb]
        unstable += any(key not in t or not same_file(key, t[key], tb[0][key]) for t in tb[1:])
        if not any(matches):
            problems.append(f"{key}: bytes differ")
    return problems, unstable


def only_keys_of(before, after):
    """`after` restricted to the keys `before` has (new keys an older binary does not print)."""
    if isinstance(before, dict) and isinstance(after, dict):
        return {k: only_keys_of(before[k], after.get(k)) for k in before}
    return after


def run(cmd: list[str]) -> str:
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"failed ({done.returncode}): {' '.join(cmd)}\n{done.stderr}")
    return done.stdout


#: Report fields that depend on the timing of the workers (see the module's docstring).
TIMED = ("input_chunks_decoded", "decode_buffers_mapped")


def build_report(binary: str, recipe: Path, src: Path, dst: Path, dry: bool) -> dict:
    cmd = [binary, "--json", "build", str(recipe), "--input", str(src), "--output", str(dst)]
    doc = json.loads(run(cmd + (["--dry-run"] if dry else [])))
    doc.pop("seconds", None)
    return without_created(doc)


def timed(report: dict) -> str:
    """The timing-dependent counts of a build report, and take them out of it."""
    counts = [str((report.get("report") or {}).pop(k, "-")) for k in TIMED]
    return "/".join(counts)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--before", required=True, help="cubeforge binary before the change")
    ap.add_argument("--after", required=True, help="cubeforge binary after the change")
    ap.add_argument("--days", type=int, nargs="+", default=[437, 3000])
    ap.add_argument("--workdir", type=Path, default=ROOT / "bench" / "work-same")
    args = ap.parse_args()
    work = args.workdir.resolve()
    out = work / "out"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    for name, text in (("to_v3.yaml", TO_V3), ("others.yaml", OTHERS)):
        (work / name).write_text(text)
    v3_out = TUTORIAL.read_text().replace("zarr_format: 2", "zarr_format: 3\n  shards: {time: 200}")
    (work / "tutorial_v3.yaml").write_text(v3_out)

    inputs = {}
    for days in args.days:
        src = work / f"io-{days}d.zarr"
        if not (src / ".zmetadata").exists():
            shutil.rmtree(src, ignore_errors=True)
            run([args.before, "--quiet", "example", "io", "--days", str(days), str(src)])
        inputs[days] = src
    small = inputs[min(args.days)]
    v3_in = out / "input-v3.zarr"
    run([args.before, "--quiet", "build", str(work / "to_v3.yaml"), "--input", str(small), "--output", str(v3_in)])

    cases = [(f"tutorial, {d} days, v2", TUTORIAL, inputs[d]) for d in args.days]
    cases += [
        (f"tutorial, {min(args.days)} days, v3 sharded input", TUTORIAL, v3_in),
        (f"tutorial, {min(args.days)} days, v3 sharded output", work / "tutorial_v3.yaml", small),
        (f"other operations, {min(args.days)} days", work / "others.yaml", small),
    ]
    failed = False
    print(f"{'case':48} {'files':>6} {'unstable before':>15}  {'decoded/mapped before, after':>29}  result")
    for i, (label, recipe, src) in enumerate(cases):
        # All write to the same path (it is in the reports), then the output is moved aside.
        at = out / f"case{i}.zarr"
        runs = (("before", args.before), ("before2", args.before), ("after", args.after))
        dst = {w: out / f"case{i}-{w}.zarr" for w, _ in runs}
        reports = {}
        for which, binary in runs:
            reports[which] = (
                build_report(binary, recipe, src, at, dry=True),
                build_report(binary, recipe, src, at, dry=False),
            )
            at.rename(dst[which])
        problems, unstable = compare_trees([dst["before"], dst["before2"]], dst["after"])
        decoded = {w: timed(reports[w][1]) for w in ("before", "after")}
        for kind, b, a in zip(("dry run", "report"), reports["before"], reports["after"]):
            if b != only_keys_of(b, a):
                problems.append(f"--json {kind} differs")
        files = len(tree(dst["before"]))
        counts = f"{decoded['before']}, {decoded['after']}"
        verdict = "identical" if not problems else "DIFFERENT"
        print(f"{label:48} {files:6} {unstable:15}  {counts:>29}  {verdict}")
        for p in problems[:10]:
            print(f"    {p}")
        failed |= bool(problems)
    shutil.rmtree(out, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
