"""``cubeforge.Batches`` against the contract of docs/python.md ("Training batches"), checked with a
reference computed directly with numpy/xarray (batches_ref.py), not with xbatcher.

The cubes are small Zarr v2 stores written here with xarray: a daily ``time`` coordinate, ``lat``
and ``lon``, float32 features with NaN, a (lat, lon) variable broadcast along time, masks and a
target ``y``; sizes are not multiples of the patches or of the chunks.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import xarray as xr
import pytest

import cubeforge
from batches_ref import CHUNKS, N_LAT, N_LON, N_TIME, SPLITS, Reference, make_cube, overwrite_region

HERE = Path(__file__).resolve().parent
DIMS = ("time", "lat", "lon")
PATCH = {"lat": 8, "lon": 12}


# ---- fixtures and helpers -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def cube(tmp_path_factory) -> Path:
    """The shared read-only cube (tests that change values make their own)."""
    return make_cube(tmp_path_factory.mktemp("batches") / "cube.zarr")


@pytest.fixture(scope="module")
def ref(cube) -> Reference:
    r = Reference(cube)
    assert tuple(r.dims) == DIMS, r.dims
    return r


def batches(cube, **kw) -> cubeforge.Batches:
    """``Batches`` with this file's defaults (unshuffled, unnormalised, no data card) and ``kw``."""
    args = dict(
        features=["uid", "a", "topo"],
        targets=["y"],
        patch=dict(PATCH),
        window={"time": 1},
        batch_size=7,
        splits=dict(SPLITS),
        normalize=False,
        shuffle=False,
        seed=0,
        datacard=False,
    )
    args.update(kw)
    return cubeforge.Batches(cube if isinstance(cube, xr.Dataset) else str(cube), **args)


def lens_of(kw) -> dict[str, int]:
    return {**kw.get("window", {"time": 1}), **kw.get("patch", PATCH)}


def collect(b, split, **kw):
    """Every batch of one epoch: (list of x, list of y); y is None when the items are bare arrays."""
    xs, ys = [], []
    for item in b.epoch(split, **kw):
        if isinstance(item, tuple):
            x, y = item
            ys.append(y)
        else:
            x = item
        xs.append(x)
    return xs, (ys if ys else None)


def check_array(a, shape_tail, name="x"):
    assert isinstance(a, np.ndarray), f"{name} is {type(a)}, not a numpy array"
    assert a.dtype == np.float32, f"{name}.dtype {a.dtype}"
    assert a.flags.c_contiguous, f"{name} is not C-contiguous"
    assert a.flags.writeable, f"{name} is not writeable"
    assert a.shape[1:] == tuple(shape_tail), f"{name}.shape {a.shape}, expected (batch, {shape_tail})"


def assert_same(got, want, what, rtol=1e-5, atol=1e-5):
    """float32 arrays equal (NaN where NaN), reporting the first mismatch by sample."""
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    close = np.isclose(got, want, rtol=rtol, atol=atol, equal_nan=True)
    if not close.all():
        bad = np.argwhere(~close)
        k = tuple(bad[0])
        raise AssertionError(
            f"{what}: {len(bad)} of {got.size} elements differ; first at {k}: got {got[k]!r}, want {want[k]!r}"
        )


def uid_of(start) -> int:
    t, i, j = (int(v) for v in start)
    return t * N_LAT * N_LON + i * N_LON + j


def ids(x, uid_index=0, channels_last=False) -> list[int]:
    """The uid of each sample's first element (its start), from the ``uid`` feature."""
    v = x[..., uid_index][:, 0, 0, 0] if channels_last else x[:, uid_index, 0, 0, 0]
    assert np.all(v == np.round(v))
    return [int(u) for u in v]


def ref_stats(ref, features, split=SPLITS["train"]):
    return {f: ref.stats(f, split) for f in features}


def assert_stats(got, want, rtol=1e-6):
    assert set(want) <= set(got), f"stats for {sorted(got)}, expected {sorted(want)}"
    for f, w in want.items():
        for key in ("mean", "std", "min", "max"):
            assert got[f][key] == pytest.approx(w[key], rel=rtol, abs=1e-9), (f, key, got[f], w)
        assert int(got[f]["count"]) == w["count"], (f, got[f], w)


# ---- 1. unshuffled epochs against the reference ---------------------------------------------------
CONFIGS = {
    # window 2 over time, normalised features including a constant and a broadcast (lat, lon) one
    "window2-normalized": dict(
        features=["a", "c", "topo", "const"], window={"time": 2}, normalize=True, batch_size=16,
        split="val",
    ),
    # overlapping strides along time and lat; the patch dict in a different order than the cube
    "stride-overlap": dict(
        features=["a", "topo", "uid", "topo_t"], window={"time": 3}, patch={"lon": 12, "lat": 8},
        stride={"time": 5, "lat": 4}, batch_size=9, split="train",
    ),
    # no splits: the whole cube is the split "all"; patch = chunk size
    "all": dict(
        features=["c", "topo"], splits=None, window={"time": 10}, patch={"lat": 16, "lon": 16},
        normalize=True, batch_size=5, split="all",
    ),
}


@pytest.mark.parametrize("name", list(CONFIGS))
def test_unshuffled_epoch_matches_reference(cube, ref, name):
    kw = dict(CONFIGS[name])
    split = kw.pop("split")
    b = batches(cube, **kw)
    lens = lens_of(kw)
    sdims = ref.sample_dims(kw.get("patch", PATCH), kw["window"])
    assert tuple(b.sample_dims) == sdims == DIMS
    assert tuple(b.x_dims) == ("batch", "feature", *DIMS)

    split_range = None if kw.get("splits", SPLITS) is None else SPLITS[split]
    want_starts = ref.samples(sdims, lens, kw.get("stride"), split=split_range)
    assert len(want_starts) > kw["batch_size"]
    got_starts = b.samples(split)
    assert isinstance(got_starts, np.ndarray) and got_starts.dtype == np.int64
    assert got_starts.shape == (len(want_starts), 3)
    np.testing.assert_array_equal(got_starts, want_starts)

    stats = None
    if kw.get("normalize"):
        stats = ref_stats(ref, kw["features"], split=SPLITS["train"] if split_range else None)
        assert_stats(b.stats, stats)
    xs, ys = collect(b, split, epoch=0)
    assert ys is not None and len(xs) == len(ys)
    shape = [lens[d] for d in sdims]
    for x, y in zip(xs, ys):
        check_array(x, [len(kw["features"]), *shape], "x")
        check_array(y, [1, *shape], "y")
        assert x.shape[0] == y.shape[0]
    assert [x.shape[0] for x in xs[:-1]] == [kw["batch_size"]] * (len(xs) - 1)
    x = np.concatenate(xs)
    y = np.concatenate(ys)
    assert_same(x, ref.x(kw["features"], sdims, lens, want_starts, stats), f"{name}: x")
    assert_same(y, ref.y(["y"], sdims, lens, want_starts), f"{name}: y (never normalised)", rtol=0, atol=0)
    assert np.isnan(x).any(), "the features have NaN and fill_nan is not set: NaN must stay"
    # the arrays are the caller's: writing into one batch changes nothing in the next epoch
    xs[0][...] = 123.0
    again, _ = collect(b, split, epoch=0)
    assert_same(np.concatenate(again), ref.x(kw["features"], sdims, lens, want_starts, stats), f"{name}: rerun")


@pytest.mark.parametrize("features", [["topo", "a"], ["topo_t", "uid"], ["uid", "topo_t"], ["c_t", "c"]])
def test_sample_dims_follow_the_cube_order(cube, ref, features):
    """Sample dimensions are in the order of ``xr.open_zarr(cube).dims`` (here time, lat, lon),
    whatever the order of the features' own dimensions (``topo`` is (lat, lon), ``topo_t`` is
    (lon, lat)) or of the patch dict."""
    kw = dict(features=features, window={"time": 2}, patch={"lon": 12, "lat": 8}, batch_size=16)
    b = batches(cube, **kw)
    assert tuple(b.sample_dims) == DIMS
    assert tuple(b.x_dims) == ("batch", "feature", *DIMS)
    lens = lens_of(kw)
    want = ref.samples(DIMS, lens, split=SPLITS["val"])
    np.testing.assert_array_equal(b.samples("val"), want)
    xs, ys = collect(b, "val")
    check_array(xs[0], [2, 2, 8, 12])
    check_array(ys[0], [1, 2, 8, 12], "y")
    assert_same(np.concatenate(xs), ref.x(features, DIMS, lens, want), f"{features}: x")


# ---- statistics -----------------------------------------------------------------------------------
def test_stats_over_train_index_range(cube, ref):
    """Stats cover every value in the training split's index range, whatever the samples keep:
    a window of 7 leaves train days 56..59 uncovered, the patches leave lat 24..29 and lon 36..43
    uncovered, and min_valid drops samples."""
    feats = ["a", "c", "topo", "const", "uid", "c_t", "topo_t"]
    b = batches(cube, features=feats, window={"time": 7}, normalize=True, mask="mask", min_valid=0.5)
    want = ref_stats(ref, feats)
    assert_stats(b.stats, want)
    assert b.stats["const"]["std"] == 0.0
    # const is only centred: every element 0
    xs, _ = collect(b, "train")
    x = np.concatenate(xs)
    assert np.all(x[:, feats.index("const")] == 0.0)
    # topo (lat, lon): statistics of its own values, not repeated over time
    assert want["topo"]["count"] < N_LAT * N_LON


def test_stats_split_option(cube, ref):
    b = batches(cube, features=["a", "topo"], normalize=True, stats_split="val")
    assert_stats(b.stats, ref_stats(ref, ["a", "topo"], split=SPLITS["val"]))
    b = batches(cube, features=["a", "topo"], normalize=True, splits=None)
    assert_stats(b.stats, ref_stats(ref, ["a", "topo"], split=None))


def test_stats_from_training_split_only(tmp_path):
    path = make_cube(tmp_path / "cube.zarr", seed=5)
    ref = Reference(path)
    feats = ["a", "c", "topo"]
    kw = dict(features=feats, normalize=True, window={"time": 3})
    first = batches(path, **kw).stats
    assert_stats(first, ref_stats(ref, feats))
    # values of the val and test splits (and of the days between them) change: stats do not
    overwrite_region(path, "a", {"time": slice(60, N_TIME)}, lambda v: v * 3 + 7)
    overwrite_region(path, "c", {"time": slice(60, N_TIME)}, lambda v: v - 50)
    assert not np.allclose(Reference(path).stats("a", SPLITS["test"])["mean"], ref.stats("a", SPLITS["test"])["mean"])
    second = batches(path, **kw).stats
    assert_stats(second, first, rtol=1e-12)
    # values of the train split change: stats do (so this test can fail)
    overwrite_region(path, "a", {"time": slice(0, 60), "lat": slice(0, 5)}, lambda v: v * 3 + 7)
    third = batches(path, **kw).stats
    assert third["a"]["mean"] != pytest.approx(first["a"]["mean"], rel=1e-3)
    assert_stats(third, ref_stats(Reference(path), feats))


# ---- 2. shuffling: every sample once ----------------------------------------------------------------
@pytest.mark.parametrize("shuffle_blocks", [32, 1, None])
def test_shuffle_every_sample_once(cube, ref, shuffle_blocks):
    kw = dict(window={"time": 2}, shuffle=True, seed=11, batch_size=10, shuffle_blocks=shuffle_blocks)
    b = batches(cube, **kw)
    lens = lens_of(kw)
    for split in ("train", "val"):
        want = ref.samples(DIMS, lens, split=SPLITS[split])
        np.testing.assert_array_equal(b.samples(split), want)
        xs, ys = collect(b, split, epoch=3)
        got = [u for x in xs for u in ids(x)]
        want_ids = [uid_of(s) for s in want]
        dupes = [u for u, n in collections.Counter(got).items() if n > 1]
        assert not dupes, f"{split}: samples more than once: {ref.uid_start(dupes[:5])}"
        assert sorted(got) == sorted(want_ids), f"{split}: {len(got)} samples, expected {len(want_ids)}"
        assert got != want_ids, f"{split}: shuffle=True gave the unshuffled order"
        # the content of each sample is that of its start
        starts = ref.uid_start(np.array(got))
        assert_same(np.concatenate(xs), ref.x(["uid", "a", "topo"], DIMS, lens, starts), f"{split}: x")
        assert_same(np.concatenate(ys), ref.y(["y"], DIMS, lens, starts), f"{split}: y")


def test_shuffle_blocks_keep_reads_local(cube, ref):
    """With shuffle_blocks=1 the blocks (samples whose start lies in one storage chunk) are permuted
    but not mixed: each block's samples come as one consecutive run."""
    b = batches(cube, shuffle=True, seed=4, shuffle_blocks=1, batch_size=13)
    xs, _ = collect(b, "train")
    starts = ref.uid_start(np.array([u for x in xs for u in ids(x)]))
    chunk = np.array([CHUNKS[d] for d in DIMS])
    blocks = [tuple(s) for s in starts // chunk]
    runs = [k for n, k in enumerate(blocks) if n == 0 or blocks[n - 1] != k]
    assert len(runs) == len(set(runs)), "a block's samples are not consecutive with shuffle_blocks=1"
    assert runs != sorted(runs), "the blocks were not permuted"
    assert len(set(runs)) > 4


# ---- 3. splits ---------------------------------------------------------------------------------------
def test_no_sample_crosses_a_split_boundary(cube, ref):
    kw = dict(window={"time": 3}, shuffle=True, seed=2, batch_size=8)
    b = batches(cube, **kw)
    lens = lens_of(kw)
    seen: dict[int, str] = {}
    for split, rng in SPLITS.items():
        i0, i1 = ref.split_range(rng)
        want = ref.samples(DIMS, lens, split=rng)
        np.testing.assert_array_equal(b.samples(split), want)
        xs, _ = collect(b, split)
        got = [u for x in xs for u in ids(x)]
        assert sorted(got) == sorted(uid_of(s) for s in want), split
        times = ref.uid_start(np.array(got))[:, 0]
        assert times.min() >= i0 and (times + 3).max() <= i1, (split, (i0, i1), times.min(), times.max())
        # the time coordinate of every window is inside the split as ds.sel gives it
        sel = ref.ds.time.sel(time=slice(*rng)).values
        window_times = ref.ds.time.values[np.add.outer(times, np.arange(3))]
        assert np.isin(window_times, sel).all(), split
        for u in got:
            assert u not in seen, f"sample {ref.uid_start([u])} in {seen[u]} and {split}"
            seen[u] = split
    # windows 57..59 fit train; 78..80 crosses val/gap, 81..83 is in no split, 99 runs off the cube
    starts = ref.uid_start(np.array(list(seen)))
    assert 57 in starts[:, 0]
    for t in (78, 81):
        assert t not in starts[:, 0], f"a window starting at day {t} (no split holds it whole) was used"
    assert set(starts[:, 0].tolist()) == set(range(0, N_TIME - 2, 3)) - {78, 81}


# ---- 4. order: a function of (seed, epoch) only -----------------------------------------------------
def test_epoch_order_depends_on_seed_and_epoch_only(cube):
    kw = dict(window={"time": 2}, shuffle=True, batch_size=12)

    def order(seed, epoch, **extra):
        xs, ys = collect(batches(cube, seed=seed, **kw, **extra), "train", epoch=epoch)
        return xs, ys, [u for x in xs for u in ids(x)]

    x0, y0, o0 = order(7, 0, jobs=1, prefetch=1)
    x1, y1, o1 = order(7, 0, jobs=2, prefetch=6)
    assert o0 == o1
    assert len(x0) == len(x1)
    for a, c in zip(x0 + y0, x1 + y1):
        np.testing.assert_array_equal(a, c)
    b = batches(cube, seed=7, **kw)
    assert [u for x in collect(b, "train", epoch=0)[0] for u in ids(x)] == o0
    assert [u for x in collect(b, "train", epoch=0)[0] for u in ids(x)] == o0, "a second pass differs"
    _, _, other_seed = order(8, 0)
    _, _, other_epoch = order(7, 1)
    assert sorted(other_seed) == sorted(o0) == sorted(other_epoch)
    assert other_seed != o0, "another seed gave the same order"
    assert other_epoch != o0, "another epoch gave the same order"


# ---- 5. sharding ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("world", [1, 2, 3])
def test_shards_partition_the_epoch(cube, world):
    b = batches(cube, shuffle=True, seed=3, batch_size=11)
    full, full_y = collect(b, "val", epoch=2)
    assert len(full) >= 6
    union = []
    for rank in range(world):
        xs, ys = collect(b, "val", epoch=2, shard=(rank, world))
        want = full[rank::world]
        assert len(xs) == len(want), (rank, world, len(xs), len(want))
        for k, (x, w) in enumerate(zip(xs, want)):
            np.testing.assert_array_equal(x, w, err_msg=f"rank {rank}/{world}: batch {k} is not epoch batch {rank + k * world}")
        for y, w in zip(ys, full_y[rank::world]):
            np.testing.assert_array_equal(y, w)
        union += [u for x in xs for u in ids(x)]
    epoch_ids = [u for x in full for u in ids(x)]
    assert len(union) == len(set(union)), "shards overlap"
    assert sorted(union) == sorted(epoch_ids)


# ---- 6. partial last batch ---------------------------------------------------------------------------
@pytest.mark.parametrize("shuffle", [False, True])
def test_partial_last_batch(cube, ref, shuffle):
    n = len(ref.samples(DIMS, lens_of({}), split=SPLITS["val"]))
    bs = 50
    assert n % bs, n
    xs, ys = collect(batches(cube, batch_size=bs, shuffle=shuffle), "val")
    assert [x.shape[0] for x in xs] == [bs] * (n // bs) + [n % bs]
    assert [y.shape[0] for y in ys] == [bs] * (n // bs) + [n % bs]
    xs, ys = collect(batches(cube, batch_size=bs, shuffle=shuffle, drop_last=True), "val")
    assert [x.shape[0] for x in xs] == [bs] * (n // bs)
    if not shuffle:
        got = [u for x in xs for u in ids(x)]
        assert got == [uid_of(s) for s in ref.samples(DIMS, lens_of({}), split=SPLITS["val"])][: bs * (n // bs)]


# ---- 8. the data card -------------------------------------------------------------------------------
def json_numbers(doc):
    if isinstance(doc, bool):
        return
    if isinstance(doc, (int, float)):
        yield float(doc)
    elif isinstance(doc, dict):
        for v in doc.values():
            yield from json_numbers(v)
    elif isinstance(doc, list):
        for v in doc:
            yield from json_numbers(v)


def test_datacard_written_reused_and_recomputed(tmp_path):
    path = make_cube(tmp_path / "cube.zarr", seed=9)
    card = Path(str(path) + ".datacard.json")
    feats = ["a", "topo"]
    b = cubeforge.Batches(str(path), features=feats, targets=["y"], patch=PATCH, window={"time": 1},
                          splits=SPLITS, normalize=True, shuffle=False)
    assert card.is_file(), f"no data card at {card}: {sorted(p.name for p in tmp_path.iterdir())}"
    want = ref_stats(Reference(path), feats)
    assert_stats(b.stats, want)
    text = card.read_text()
    doc = json.loads(text)
    numbers = list(json_numbers(doc))
    for f in feats:
        assert f'"{f}"' in text, f"feature {f} not in the card"
        for key in ("mean", "std"):
            assert any(v == pytest.approx(want[f][key], rel=1e-9) for v in numbers), (f, key, want[f][key])
    assert '"train"' in text
    assert re.search(r"\b[0-9a-f]{64}\b", text), "no SHA-256 in the card"
    version = getattr(cubeforge, "__version__", None)
    if version:
        assert version in text

    # reuse: change train values in the chunks only (the metadata, hence its hash, stays): the
    # card's statistics are reused, the card is not rewritten
    old = 1_000_000_000 * 1_000_000_000  # 2001-09-09, in ns
    os.utime(card, ns=(old, old))
    overwrite_region(path, "a", {"time": slice(0, 60)}, lambda v: v * 2 + 40)
    stale = cubeforge.Batches(str(path), features=feats, targets=["y"], patch=PATCH, window={"time": 1},
                              splits=SPLITS, normalize=True, shuffle=False)
    assert card.stat().st_mtime_ns == old, "the data card was rewritten although cube, features and split match"
    assert card.read_text() == text
    assert_stats(stale.stats, want)
    fresh_want = ref_stats(Reference(path), feats)
    assert fresh_want["a"]["mean"] != pytest.approx(want["a"]["mean"], rel=1e-3)

    # datacard=False neither reads nor writes it
    nocard = cubeforge.Batches(str(path), features=feats, targets=["y"], patch=PATCH, window={"time": 1},
                               splits=SPLITS, normalize=True, shuffle=False, datacard=False)
    assert_stats(nocard.stats, fresh_want)
    assert card.stat().st_mtime_ns == old and card.read_text() == text

    # another split: recomputed (and the card rewritten)
    splits2 = {**SPLITS, "train": ("2000-01-05", "2000-02-20")}
    b2 = cubeforge.Batches(str(path), features=feats, targets=["y"], patch=PATCH, window={"time": 1},
                           splits=splits2, normalize=True, shuffle=False)
    assert_stats(b2.stats, ref_stats(Reference(path), feats, split=splits2["train"]))
    assert card.read_text() != text and card.stat().st_mtime_ns != old

    # other features: recomputed
    b3 = cubeforge.Batches(str(path), features=["a", "c"], targets=["y"], patch=PATCH, window={"time": 1},
                           splits=SPLITS, normalize=True, shuffle=False)
    assert_stats(b3.stats, ref_stats(Reference(path), ["a", "c"]))


def test_datacard_recomputed_when_metadata_changes(tmp_path):
    import zarr

    path = make_cube(tmp_path / "cube.zarr", seed=10)
    card = tmp_path / "explicit" / "card.json"
    card.parent.mkdir()
    kw = dict(features=["a"], normalize=True, datacard=str(card))
    first = batches(path, **kw).stats
    assert card.is_file(), "datacard=<path> wrote nothing there"
    assert not Path(str(path) + ".datacard.json").exists(), "a card beside the cube although datacard names another"
    assert_stats(first, ref_stats(Reference(path), ["a"]))
    overwrite_region(path, "a", {"time": slice(0, 60)}, lambda v: v + 100)
    assert_stats(batches(path, **kw).stats, first)  # reused: metadata unchanged
    g = zarr.open_group(str(path), mode="r+", zarr_format=2)
    g["a"].attrs["note"] = "changed"
    zarr.consolidate_metadata(str(path))
    assert_stats(batches(path, **kw).stats, ref_stats(Reference(path), ["a"]))


# ---- 9. masks ---------------------------------------------------------------------------------------------
MASK_CASES = {
    # (lat, lon) float mask with 0, 1, 2 and NaN; 0.4375 = 42/96 occurs exactly: kept ("at least")
    "mask2d": dict(mask="mask", min_valid=0.4375, window={"time": 1}),
    # (time, lat, lon) int8 mask over a window of 3
    "mask3d": dict(mask="mask3", min_valid=0.5, window={"time": 3}),
    # no mask: not-NaN in the targets
    "targets": dict(min_valid=0.4375, window={"time": 2}),
    # a mask without min_valid keeps every sample
    "no-min-valid": dict(mask="mask", window={"time": 1}),
}


@pytest.mark.parametrize("name", list(MASK_CASES))
def test_min_valid_filtering(cube, ref, name):
    kw = dict(MASK_CASES[name])
    lens = lens_of(kw)
    b = batches(cube, batch_size=20, **kw)
    for split in ("train", "test"):
        everything = ref.samples(DIMS, lens, split=SPLITS[split])
        want = ref.samples(DIMS, lens, split=SPLITS[split], mask=kw.get("mask"), min_valid=kw.get("min_valid"),
                           targets=["y"])
        if "min_valid" in kw:
            assert 0 < len(want) < len(everything), (name, split, len(want), len(everything))
        else:
            assert len(want) == len(everything)
        np.testing.assert_array_equal(b.samples(split), want, err_msg=f"{name}/{split}")
        xs, ys = collect(b, split)
        assert [u for x in xs for u in ids(x)] == [uid_of(s) for s in want]
        assert_same(np.concatenate(xs), ref.x(["uid", "a", "topo"], DIMS, lens, want), f"{name}/{split}: x")
        assert_same(np.concatenate(ys), ref.y(["y"], DIMS, lens, want), f"{name}/{split}: y")
    if name == "mask2d":
        fr = [ref.valid_fraction(DIMS, lens, s, "mask", ()) for s in ref.samples(DIMS, lens, split=SPLITS["train"])]
        assert 0.4375 in fr, "the boundary case is not in the cube any more"


# ---- 10. fill_nan ------------------------------------------------------------------------------------------
def test_fill_nan(cube, ref):
    feats = ["a", "c", "topo"]
    kw = dict(features=feats, normalize=True, window={"time": 2}, batch_size=32)
    lens = lens_of(kw)
    starts = ref.samples(DIMS, lens, split=SPLITS["val"])
    stats = ref_stats(ref, feats)
    plain = np.concatenate(collect(batches(cube, **kw), "val")[0])
    assert np.isnan(plain).any()
    assert_same(plain, ref.x(feats, DIMS, lens, starts, stats), "fill_nan=None")
    xs, ys = collect(batches(cube, fill_nan=-9.5, **kw), "val")
    x = np.concatenate(xs)
    assert not np.isnan(x).any()
    assert_same(x, ref.x(feats, DIMS, lens, starts, stats, fill_nan=-9.5), "fill_nan=-9.5")
    np.testing.assert_array_equal(x[np.isnan(plain)], np.float32(-9.5))
    # filled after normalisation: a filled element is -9.5 itself
    # and only x is filled: targets keep their NaN
    y = np.concatenate(ys)
    assert np.isnan(y).any()
    assert_same(y, ref.y(["y"], DIMS, lens, starts), "y with fill_nan")


# ---- 11. pad ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("stride", [None, {"lon": 10}])
@pytest.mark.parametrize("fill", [None, 0.0])
def test_pad_covers_the_edges(cube, ref, stride, fill):
    kw = dict(pad=True, stride=stride, batch_size=16, fill_nan=fill)
    lens = lens_of(kw)
    want = ref.samples(DIMS, lens, strides=stride, pad=True, split=SPLITS["val"])
    unpadded = ref.samples(DIMS, lens, strides=stride, pad=False, split=SPLITS["val"])
    assert len(want) > len(unpadded)
    assert want[:, 1].max() + 8 >= N_LAT and want[:, 2].max() + 12 >= N_LON
    b = batches(cube, **kw)
    np.testing.assert_array_equal(b.samples("val"), want)
    xs, ys = collect(b, "val")
    x = np.concatenate(xs)
    want_x = ref.x(["uid", "a", "topo"], DIMS, lens, want, fill_nan=fill)
    assert_same(x, want_x, f"pad stride={stride} fill={fill}")
    edge = np.flatnonzero(want[:, 1] + 8 > N_LAT)
    assert len(edge)
    outside = x[edge][:, :, :, N_LAT - want[edge[0], 1]:, :]
    if fill is None:
        assert np.isnan(outside).all(), "the part of a padded patch outside the cube is not NaN"
    else:
        assert (outside == fill).all()


# ---- 12. channels last ----------------------------------------------------------------------------------
def test_channels_last(cube, ref):
    kw = dict(features=["uid", "a", "topo"], window={"time": 2}, normalize=True, batch_size=10)
    first = batches(cube, **kw)
    last = batches(cube, dims=("time", "lat", "lon", "feature"), **kw)
    assert tuple(last.x_dims) == ("batch", "time", "lat", "lon", "feature")
    xa, ya = collect(first, "val")
    xb, yb = collect(last, "val")
    assert len(xa) == len(xb)
    for a, c, ycf, ycl in zip(xa, xb, ya, yb):
        check_array(c, [2, 8, 12, 3], "channels-last x")
        np.testing.assert_array_equal(c, np.moveaxis(a, 1, -1))
        assert ycl.shape in (ycf.shape, np.moveaxis(ycf, 1, -1).shape)
        np.testing.assert_array_equal(ycl, ycf if ycl.shape == ycf.shape else np.moveaxis(ycf, 1, -1))


# ---- no targets -------------------------------------------------------------------------------------------
def test_without_targets_items_are_x(cube, ref):
    b = cubeforge.Batches(str(cube), features=["uid", "topo"], patch=PATCH, window={"time": 1}, batch_size=64,
                          splits=SPLITS, normalize=False, shuffle=False, datacard=False)
    items = list(b.epoch("test"))
    assert items and all(isinstance(x, np.ndarray) for x in items), [type(x) for x in items[:3]]
    want = ref.samples(DIMS, lens_of({}), split=SPLITS["test"])
    assert [u for x in items for u in ids(x)] == [uid_of(s) for s in want]


# ---- 13. errors ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def lev_cube(tmp_path_factory):
    import xarray as xr

    extra = {"lev_var": xr.DataArray(np.ones((N_TIME, 2, N_LAT, N_LON), "f4"), dims=("time", "lev", "lat", "lon"))}
    return make_cube(tmp_path_factory.mktemp("lev") / "cube.zarr", extra=extra)


def test_error_classes():
    assert issubclass(cubeforge.BatchError, cubeforge.CubeforgeError)
    assert issubclass(cubeforge.BatchError, ValueError)
    assert issubclass(cubeforge.MissingError, cubeforge.CubeforgeError)
    assert issubclass(cubeforge.MissingError, KeyError)


def first_batch(cube, **kw):
    b = batches(cube, **kw)
    return next(iter(b.epoch("train")))


@pytest.mark.parametrize("kw, name", [
    (dict(features=["a", "no_such_variable"]), "no_such_variable"),
    (dict(targets=["no_such_target"]), "no_such_target"),
    (dict(mask="no_such_mask", min_valid=0.5), "no_such_mask"),
    (dict(patch={"lat": 8, "depth": 3}), "depth"),
])
def test_unknown_names(cube, kw, name):
    with pytest.raises((cubeforge.MissingError, cubeforge.BatchError)) as e:
        first_batch(cube, **kw)
    assert name in str(e.value)


def test_patch_larger_than_the_dimension(cube):
    with pytest.raises(cubeforge.BatchError):
        first_batch(cube, patch={"lat": N_LAT + 1, "lon": 12})
    with pytest.raises(cubeforge.BatchError):
        first_batch(cube, window={"time": N_TIME + 1})


@pytest.mark.parametrize("kw", [{"seed": -1}, {"min_valid": 1.5}, {"min_valid": -0.1},
                                {"patch": {"lat": 0, "lon": 12}}, {"stride": {"lat": 0}},
                                {"batch_size": 0}])
def test_bad_settings_are_batch_errors(cube, kw):
    with pytest.raises(cubeforge.BatchError):
        first_batch(cube, **kw)


@pytest.mark.parametrize("kw, words", [
    ({"batch_size": 2.5}, "batch_size must be a whole number"),
    ({"batch_size": None}, "batch_size must be a whole number"),
    ({"jobs": -1}, "jobs must be at least 0"),
    ({"prefetch": 0}, "prefetch must be at least 1"),
    ({"shuffle_blocks": 0}, "shuffle_blocks must be at least 1"),
    ({"patch": {"lat": 8.5, "lon": 12}}, "the length along 'lat' must be a whole number"),
    ({"stride": {"depth": 2}}, "stride along 'depth'"),
    ({"patch": {"time": 2, "lat": 8, "lon": 12}, "window": {"time": 3}}, "'time' is in both patch and window"),
    ({"splits": {"train": ("2000-01-01", "2000-02-10"), "val": ("2000-02-01", "2000-03")}},
     "splits 'train' and 'val' overlap along 'time' (2000-02-01"),
    ({"splits": {"train": ("1990", "1991"), "val": ("2000-03", "2000-03-20")}, "normalize": True},
     "split 'train' is empty"),
])
def test_settings_refused_not_ignored(cube, kw, words):
    """Settings that cannot be meant as given are refused with the setting named, never
    truncated or silently ignored (xbatcher#131 ignores batch_dims it cannot use)."""
    with pytest.warns(UserWarning) if "1990" in str(kw) else contextlib.nullcontext():
        with pytest.raises(cubeforge.BatchError) as e:
            first_batch(cube, **kw)
    assert words in str(e.value), e.value


def test_names_may_be_one_string(cube, ref):
    """A bare string is one variable name (not a sequence of one-letter names)."""
    one = next(iter(batches(cube, features="uid", targets="y").epoch("train")))
    listed = next(iter(batches(cube, features=["uid"], targets=["y"]).epoch("train")))
    for got, want in zip(one, listed):
        np.testing.assert_array_equal(got, want)
    assert one[0].shape[1] == 1


def test_an_empty_split_warns_and_has_no_samples(cube):
    with pytest.warns(UserWarning, match="split 'test' .* selects no 'time'"):
        b = batches(cube, splits={"train": ("2000-01", "2000-02"), "test": ("2001", "2002")})
    assert b.samples("test").shape == (0, 3)
    assert list(b.epoch("test")) == []
    assert len(b.samples("train")) > 0


def test_a_feature_without_values_in_the_training_split_is_refused(tmp_path):
    """Normalising by statistics of nothing would turn every value into NaN: refused, naming
    the feature; without normalisation the feature is served as it is."""
    path = make_cube(tmp_path / "cube.zarr")
    ds = xr.open_zarr(path)
    gap = ds["a"].where(ds["time"] >= np.datetime64("2000-03-01")).astype("f4").rename("late")
    gap.to_dataset().drop_encoding().to_zarr(path, mode="a")
    with pytest.raises(cubeforge.BatchError, match="feature 'late' has no value that is not NaN in split 'train'"):
        batches(path, features=["late", "a"], normalize=True)
    b = batches(path, features=["late", "a"], normalize=True, stats_split="val")
    assert b.stats["late"]["count"] > 0
    x, _ = next(iter(b.epoch("val")))
    assert np.isfinite(x[:, 0]).any()


def test_negative_epoch(cube):
    b = batches(cube)
    with pytest.raises(cubeforge.BatchError):
        next(iter(b.epoch("train", epoch=-1)))


def test_unknown_split(cube):
    b = batches(cube)
    with pytest.raises((cubeforge.BatchError, KeyError)):
        next(iter(b.epoch("no_such_split")))
    with pytest.raises((cubeforge.BatchError, KeyError)):
        b.samples("no_such_split")


def test_variable_with_a_non_sample_dimension(lev_cube):
    """A feature or target with a dimension that is not a sample dimension is refused."""
    with pytest.raises(cubeforge.BatchError) as e:
        first_batch(lev_cube, features=["a", "lev_var"])
    assert "lev" in str(e.value)
    with pytest.raises(cubeforge.BatchError) as e:
        first_batch(lev_cube, targets=["lev_var"])
    assert "lev" in str(e.value)
    # the same cube is fine without it
    x, y = first_batch(lev_cube)
    assert x.shape == (7, 3, 1, 8, 12) and y.shape == (7, 1, 1, 8, 12)


def test_mask_with_a_non_sample_dimension(lev_cube):
    """The mask is a variable too: one with a dimension that is not a sample dimension is refused
    with BatchError ("A variable with a dimension that is not a sample dimension is refused")."""
    with pytest.raises(cubeforge.BatchError) as e:
        first_batch(lev_cube, mask="lev_var", min_valid=0.5)
    assert "lev" in str(e.value)


# ---- 14. torch -------------------------------------------------------------------------------------------
def _torch():
    try:
        import torch  # noqa: F401
        from torch.utils.data import DataLoader
    except Exception as e:  # noqa: BLE001 -- a broken install is skipped like a missing one
        pytest.skip(f"torch is not importable: {e}")
    return DataLoader


def torch_ids(loader, uid=0) -> list[list[int]]:
    out = []
    for item in loader:
        x = item[0] if isinstance(item, (tuple, list)) else item
        out.append(ids(np.asarray(x), uid))
    return out


@pytest.mark.parametrize("workers", [0, 1, 2, 3])
def test_torch_dataloader(cube, ref, workers):
    DataLoader = _torch()
    b = batches(cube, shuffle=True, seed=5, batch_size=9)
    ds = b.torch("val")
    ds.set_epoch(1)
    got = torch_ids(DataLoader(ds, batch_size=None, num_workers=workers, timeout=60 if workers else 0))
    epoch = [ids(x) for x in collect(b, "val", epoch=1)[0]]
    flat = [u for batch in got for u in batch]
    assert len(flat) == len(set(flat)), "a sample came more than once"
    assert sorted(flat) == sorted(uid_of(s) for s in ref.samples(DIMS, lens_of({}), split=SPLITS["val"]))
    if workers == 0:
        assert got == epoch, "without workers the DataLoader must give the epoch's batches in order"
    else:
        assert sorted(map(tuple, got)) == sorted(map(tuple, epoch)), "workers changed the batches"


def test_torch_distributed_ranks(cube, tmp_path):
    _torch()
    kwargs = dict(features=["uid", "a"], targets=["y"], patch=PATCH, window={"time": 1}, batch_size=9,
                  splits=SPLITS, normalize=False, shuffle=True, seed=5, datacard=False)
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"cube": str(cube), "kwargs": kwargs, "split": "val", "epoch": 2, "uid": 0}))
    init = tmp_path / "rendezvous"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    procs = [
        subprocess.Popen(
            [sys.executable, str(HERE / "batches_torch_rank.py"), str(r), "2", str(init), str(config),
             str(tmp_path / f"rank{r}.json")],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        for r in range(2)
    ]
    outs = []
    for p in procs:
        try:
            out, _ = p.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            raise
        outs.append(out)
    assert all(p.returncode == 0 for p in procs), "\n---\n".join(outs)
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    b = cubeforge.Batches(str(cube), **kwargs)
    epoch = [ids(x) for x in collect(b, "val", epoch=2)[0]]
    # no workers: rank r gets batches r, r + 2, ... of the epoch
    for r in range(2):
        assert ranks[r]["0"] == epoch[r::2], f"rank {r} without workers"
    # 2 workers on each rank: the 4 shards are disjoint and together the epoch
    together = ranks[0]["2"] + ranks[1]["2"]
    assert sorted(map(tuple, together)) == sorted(map(tuple, epoch))


def test_tf_dataset_yields_the_epoch(cube):
    """The tf.data adapter yields the epoch's batches (runs where TensorFlow is installed; the
    test venv does not install it)."""
    tf = pytest.importorskip("tensorflow")
    b = batches(cube, shuffle=True, seed=5)
    got = [(x.numpy(), y.numpy()) for x, y in b.tf("train", epoch=2)]
    want = list(b.epoch("train", epoch=2))
    assert len(got) == len(want) > 0
    for (gx, gy), (wx, wy) in zip(got, want):
        np.testing.assert_array_equal(gx, wx)
        np.testing.assert_array_equal(gy, wy)
    assert isinstance(b.tf("train"), tf.data.Dataset)


@pytest.mark.parametrize("blocks", [1, 4, None])
def test_each_unit_decoded_once_and_held_within_the_shuffle_window(cube, blocks):
    """Every storage unit an epoch reads is decoded exactly once, however it is shuffled; with
    shuffle_blocks=1 the units held at once are those of about one block, far fewer than all."""
    b = batches(cube, shuffle=True, seed=1, shuffle_blocks=blocks)
    n = sum(len(x) for x, _ in b.epoch("train", epoch=0))
    assert n == len(b.samples("train"))
    decoded, distinct, held_peak = b.last_counters
    assert decoded == distinct > 0
    b_all = batches(cube, shuffle=True, seed=1, shuffle_blocks=None)
    for _ in b_all.epoch("train", epoch=0):
        pass
    whole = b_all.last_counters[2]
    if blocks == 1:
        assert held_peak < whole / 2, (held_peak, whole)


def test_a_dataset_is_read_through_its_store(cube):
    """A Dataset opened from the cube gives the same batches as the path; a Dataset that is a
    selection of it is refused rather than silently read whole."""
    ds = xr.open_zarr(cube)
    by_path = [x for x, _ in batches(cube).epoch("train")]
    by_ds = [x for x, _ in batches(ds).epoch("train")]
    assert len(by_path) == len(by_ds) > 0
    for a, b in zip(by_path, by_ds):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(cubeforge.BatchError):
        batches(ds.isel(time=slice(0, 10)))
