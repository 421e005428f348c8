"""Training batches from a cube: :class:`Batches`.

The sample index (splits, masks, shuffling, sharding) is NumPy arithmetic on start indices; the
batches themselves are read, decoded, cut, normalised and prefetched by Rust threads
(``_native.Loader``), each storage chunk decoded once per epoch. The contract is in
docs/python.md, "Training batches".
"""

from __future__ import annotations

import datetime
import hashlib
import json
import math
import os
import warnings
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import xarray as xr

from . import _native
from ._errors import BatchError
from ._xarray import CubeforgeBackendEntrypoint

#: Bytes of decoded values read at once when scanning masks and computing statistics.
SCAN_BYTES = 64 << 20


def _cube_url(cube: Any) -> str:
    if isinstance(cube, xr.Dataset):
        source = cube.encoding.get("source")
        if not source:
            raise BatchError(
                "Batches: this Dataset does not say which store it was opened from "
                "(encoding['source']); pass the cube's path or URL instead", "")
        return os.fspath(source)
    return os.fspath(cube)


def _names(value: Any) -> list[str]:
    """A variable name or a sequence of them, as a list (a bare string is one name)."""
    if value is None:
        return []
    if isinstance(value, (str, os.PathLike)):
        return [os.fspath(value)]
    return [str(v) for v in value]


def _whole(what: str, value: Any, minimum: int, url: str) -> int:
    """``value`` as an integer of at least ``minimum``; anything else is a BatchError."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer, float, np.floating)) \
            or value != value or (isinstance(value, (float, np.floating)) and not float(value).is_integer()):
        raise BatchError(f"Batches: {what} must be a whole number, not {value!r}", url)
    if int(value) < minimum:
        raise BatchError(f"Batches: {what} must be at least {minimum}, not {value!r}", url)
    return int(value)


def _box_counts(valid: np.ndarray, axis_starts: list[np.ndarray], sizes: list[int]) -> np.ndarray:
    """Sums of ``valid`` over the boxes starting at every combination of ``axis_starts``, of
    ``sizes``, clipped at the far edges."""
    out = valid.astype(np.int64)
    for axis, (starts, size) in enumerate(zip(axis_starts, sizes)):
        n = out.shape[axis]
        cs = np.cumsum(out, axis=axis)
        zero_shape = list(cs.shape)
        zero_shape[axis] = 1
        cs = np.concatenate([np.zeros(zero_shape, np.int64), cs], axis=axis)
        hi = np.minimum(starts + size, n)
        lo = np.minimum(starts, n)
        out = np.take(cs, hi, axis=axis) - np.take(cs, lo, axis=axis)
    return out


class Batches:
    """Batches of patches of a cube for training: features and targets, splits by coordinate
    ranges, statistics from the training split, masks, seeded shuffling, sharding, prefetch.

    Args:
        cube: the cube's path or URL (a Zarr store; any input ``open_dataset`` reads works), or
            a Dataset opened from one.
        features: variables stacked along the feature axis of ``x``.
        targets: variables stacked along the target axis of ``y``.
        patch: sample length per spatial dimension (``{"lat": 64, "lon": 64}``).
        window: sample length per other dimension (``{"time": 8}``).
        stride: step between sample starts per dimension (default: the length, so samples
            tile); smaller overlaps them.
        batch_size: samples per batch.
        splits: ``{name: (start, stop)}`` coordinate ranges on ``split_dim``, inclusive, with
            partial dates, as ``ds.sel({split_dim: slice(start, stop)})``. Default: one split
            ``"all"``.
        split_dim: the dimension of the split ranges (default: the first window dimension,
            else ``time``).
        normalize: normalise features with the training split's mean and std.
        stats_split: the split statistics come from (default ``"train"``, or ``"all"``).
        mask: a variable whose non-zero, non-NaN values mark valid elements.
        min_valid: keep samples whose valid fraction is at least this (by ``mask``, else by
            non-NaN targets). Default: keep every sample.
        fill_nan: replace NaN in features by this after normalisation (default: keep NaN).
        shuffle: shuffle each epoch (deterministically by ``seed`` and the epoch number).
        seed: the shuffling seed.
        drop_last: drop the last batch when it is partial.
        pad: keep samples that do not fit whole at the far edges, NaN outside the cube.
        prefetch: batches assembled ahead of the consumer at most.
        jobs: threads assembling batches (default: one per core).
        dims: the order of ``x``'s and ``y``'s axes after the batch axis: ``"feature"`` and the
            sample dimensions (default ``("feature", *sample_dims)``).
        shuffle_blocks: storage blocks mixed together when shuffling (``None``: the whole
            split uniformly).
        datacard: where the statistics are kept (default ``<cube>.datacard.json`` beside a
            local cube; ``False``: never read or written).
    """

    def __init__(
        self,
        cube: Any,
        features: Sequence[str],
        targets: Sequence[str] = (),
        patch: Mapping[str, int] | None = None,
        window: Mapping[str, int] | None = None,
        stride: Mapping[str, int] | None = None,
        batch_size: int = 32,
        splits: Mapping[str, tuple[Any, Any]] | None = None,
        split_dim: str | None = None,
        normalize: bool = True,
        stats_split: str | None = None,
        mask: str | None = None,
        min_valid: float | None = None,
        fill_nan: float | None = None,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
        pad: bool = False,
        prefetch: int = 4,
        jobs: int | None = None,
        dims: Sequence[str] | None = None,
        shuffle_blocks: int | None = 32,
        datacard: str | os.PathLike | bool | None = None,
    ) -> None:
        self.url = _cube_url(cube)
        given = cube if isinstance(cube, xr.Dataset) else None
        self.features = _names(features)
        self.targets = _names(targets)
        if not self.features:
            raise BatchError("Batches: give at least one feature", self.url)
        self.batch_size = _whole("batch_size", batch_size, 1, self.url)
        seed = _whole("seed", seed, 0, self.url)
        if min_valid is not None and not 0.0 <= float(min_valid) <= 1.0:
            raise BatchError(f"Batches: min_valid is a fraction from 0 to 1, not {min_valid}", self.url)
        self.shuffle, self.seed, self.drop_last, self.pad = bool(shuffle), seed, bool(drop_last), bool(pad)
        self.prefetch = _whole("prefetch", prefetch, 1, self.url)
        self.jobs = 0 if jobs is None else _whole("jobs", jobs, 0, self.url)
        self.shuffle_blocks = None if shuffle_blocks is None else _whole("shuffle_blocks", shuffle_blocks, 1,
                                                                         self.url)
        self.fill_nan = None if fill_nan is None else float(fill_nan)
        self._reader = _native.open(self.url)
        self._doc = json.loads(self._reader.describe())
        self._vars = {v["name"]: v for v in self._doc["variables"]}
        for name in [*self.features, *self.targets, *([mask] if mask else [])]:
            if name not in self._vars:
                raise BatchError(
                    f"{self.url}: variable '{name}' not found; available: "
                    + ", ".join(sorted(self._vars)), self.url)
        self.mask = mask
        self._ds = xr.open_dataset(self.url, engine=CubeforgeBackendEntrypoint)
        if given is not None and dict(given.sizes) != dict(self._ds.sizes):
            # Batches read the store; a selection made on the Dataset would be silently lost.
            raise BatchError(
                f"Batches: this Dataset ({dict(given.sizes)}) is not the store it was opened from "
                f"({dict(self._ds.sizes)}); batches read the store: pass the store and use splits, "
                "or write the selection to a cube first", self.url)
        self._setup_dims(dict(patch or {}), dict(window or {}), dict(stride or {}))
        self.x_dims = ("batch", *(dims or ("feature", *self.sample_dims)))
        self.split_dim = self._pick_split_dim(split_dim, window or {})
        self._splits = self._split_ranges(splits)
        self.min_valid = min_valid
        self._samples = self._all_samples()
        self.stats_split = stats_split or ("train" if splits else "all")
        self.normalize = bool(normalize)
        self.stats: dict[str, dict[str, float]] = {}
        self.datacard_path = self._card_path(datacard)
        if self.normalize:
            if self.stats_split not in self._splits:
                raise BatchError(
                    f"Batches: no split '{self.stats_split}' to compute statistics from; "
                    f"splits: {', '.join(self._splits)}", self.url)
            lo, hi = self._splits[self.stats_split]
            if self.split_dim is not None and hi <= lo:
                raise BatchError(f"Batches: split '{self.stats_split}' is empty, so there is nothing to "
                                 "compute normalisation statistics from", self.url)
            self.stats = self._statistics()
        means = [self.stats[f]["mean"] for f in self.features] if self.normalize else []
        stds = [self.stats[f]["std"] for f in self.features] if self.normalize else []
        self._loader = _native.Loader(
            self._reader, self.features, self.targets, list(self.sample_dims),
            [self.sizes[d] for d in self.sample_dims], means, stds, self.fill_nan,
            list(self.x_dims[1:]))
        self.last_counters: tuple[int, int, int] | None = None

    # -- set-up ---------------------------------------------------------------------------------

    def _setup_dims(self, patch: dict, window: dict, stride: dict) -> None:
        twice = [d for d in window if d in patch]
        if twice:
            raise BatchError(f"Batches: dimension '{twice[0]}' is in both patch and window; give it once",
                             self.url)
        both = {**window, **patch}
        if not both:
            raise BatchError("Batches: give patch and/or window lengths", self.url)
        cube_dims = self._doc["dims"]
        for d, n in both.items():
            if d not in cube_dims:
                raise BatchError(f"{self.url}: dimension '{d}' not found; dimensions: "
                                 + ", ".join(cube_dims), self.url)
            n = both[d] = _whole(f"the length along '{d}'", n, 1, self.url)
            if n > cube_dims[d] and not self.pad:
                raise BatchError(f"Batches: the length {n} along '{d}' is more than the cube's "
                                 f"{cube_dims[d]} (pass pad=True to pad)", self.url)
        # The cube's dimension order, as xarray gives it.
        cube_order = list(self._ds.sizes)
        order = [d for d in cube_order if d in both]
        order += [d for d in both if d not in order]
        for name in [*self.features, *self.targets, *([self.mask] if self.mask else [])]:
            extra = [d for d in self._vars[name]["dims"] if d not in both]
            if extra:
                raise BatchError(
                    f"Batches: variable '{name}' has dimension '{extra[0]}', which is not in "
                    "patch or window; select it first or give its length", self.url)
        self.sample_dims = tuple(order)
        self.sizes = {d: int(both[d]) for d in order}
        stray = [d for d in stride if d not in self.sizes]
        if stray:
            raise BatchError(f"Batches: stride along '{stray[0]}', which is not in patch or window "
                             f"({', '.join(order)})", self.url)
        self.strides = {d: _whole(f"the stride along '{d}'", stride.get(d, self.sizes[d]), 1, self.url)
                        for d in order}

    def _pick_split_dim(self, split_dim: str | None, window: Mapping[str, int]) -> str | None:
        if split_dim is None:
            split_dim = next(iter(window), None) or ("time" if "time" in self.sample_dims else None)
        if split_dim is not None and split_dim not in self.sample_dims:
            raise BatchError(f"Batches: split_dim '{split_dim}' is not a sample dimension "
                             f"({', '.join(self.sample_dims)})", self.url)
        return split_dim

    def _split_ranges(self, splits: Mapping[str, tuple[Any, Any]] | None) -> dict[str, tuple[int, int]]:
        if not splits:
            n = self._doc["dims"][self.split_dim] if self.split_dim else 0
            return {"all": (0, n)}
        if self.split_dim is None:
            raise BatchError("Batches: splits need a split_dim", self.url)
        if self.split_dim not in self._ds.indexes:
            raise BatchError(f"Batches: dimension '{self.split_dim}' has no coordinate to split by", self.url)
        index = self._ds.indexes[self.split_dim]
        out = {}
        for name, rng in splits.items():
            try:
                start, stop = rng
                sl = index.slice_indexer(start, stop)
            except (KeyError, TypeError, ValueError) as e:
                raise BatchError(f"Batches: split '{name}' {rng!r} cannot select "
                                 f"'{self.split_dim}': {e}", self.url) from None
            lo, hi, _ = sl.indices(len(index))
            if hi <= lo:
                # As .sel: an empty selection is not an error, but it is most likely a mistake.
                warnings.warn(f"cubeforge.Batches: split '{name}' {tuple(rng)!r} selects no "
                              f"'{self.split_dim}' of the cube ({index[0]} … {index[-1]}); it has no samples",
                              stacklevel=3)
                hi = lo
            for other, (olo, ohi) in out.items():
                if lo < ohi and olo < hi:
                    raise BatchError(
                        f"Batches: splits '{other}' and '{name}' overlap along '{self.split_dim}' "
                        f"({index[max(lo, olo)]} … {index[min(hi, ohi) - 1]}); a sample must belong "
                        "to one split", self.url)
            out[name] = (lo, hi)
        return out

    def _starts(self, d: str) -> np.ndarray:
        n, size, step = self._doc["dims"][d], self.sizes[d], self.strides[d]
        if not self.pad:
            return np.arange(0, max(n - size, -1) + 1, step, dtype=np.int64)
        starts = []
        s = 0
        while s < n:
            starts.append(s)
            if s + size >= n:
                break
            s += step
        return np.asarray(starts, dtype=np.int64)

    def _all_samples(self) -> np.ndarray:
        """Every sample's start, row-major, with the valid-fraction filter applied."""
        axis_starts = [self._starts(d) for d in self.sample_dims]
        grid = np.meshgrid(*axis_starts, indexing="ij")
        samples = np.stack([g.ravel() for g in grid], axis=-1).astype(np.int64)
        if samples.size == 0:
            samples = samples.reshape(0, len(self.sample_dims))
        if self.min_valid is not None:
            fraction = self._valid_fraction(axis_starts).ravel()
            samples = samples[fraction >= float(self.min_valid)]
        return samples

    def _slabs(self, name: str, lo: int | None = None, hi: int | None = None):
        """Regions of variable ``name`` covering its first axis (or ``lo .. hi`` of it) in
        slabs of at most SCAN_BYTES of decoded values: ``(start, shape)`` pairs."""
        shape = list(self._vars[name]["shape"])
        if not shape:
            yield [], []
            return
        lo = 0 if lo is None else lo
        hi = shape[0] if hi is None else hi
        row = 4 * math.prod(shape[1:])
        step = max(1, SCAN_BYTES // max(row, 1))
        chunk0 = self._vars[name]["chunks"][0] if self._vars[name]["chunks"] else 1
        step = max(chunk0, step - step % max(chunk0, 1))
        for s in range(lo, hi, step):
            yield [s] + [0] * (len(shape) - 1), [min(step, hi - s)] + shape[1:]

    def _read(self, name: str, start: list[int], shape: list[int]) -> np.ndarray:
        return np.asarray(self._reader.read_f32(name, start, shape)).reshape(shape)

    def _valid_fraction(self, axis_starts: list[np.ndarray]) -> np.ndarray:
        names = [self.mask] if self.mask else self.targets
        if not names:
            raise BatchError("Batches: min_valid needs a mask or targets", self.url)
        grid_shape = tuple(len(a) for a in axis_starts)
        counts = np.zeros(grid_shape, np.int64)
        total = 0
        for name in names:
            vdims = self._vars[name]["dims"]
            axes = [self.sample_dims.index(d) for d in vdims]
            sizes = [self.sizes[d] for d in vdims]
            starts = [axis_starts[a] for a in axes]
            parts = []
            if vdims:
                first = starts[0]
                # Samples by slabs of starts along the variable's first axis.
                for slab_start, shape in self._slabs(name):
                    s0 = slab_start[0]
                    sel = (first >= s0) & (first < s0 + shape[0])
                    if not sel.any():
                        continue
                    need_hi = min(int(first[sel].max()) + sizes[0], self._vars[name]["shape"][0])
                    region_shape = [need_hi - s0] + list(shape[1:])
                    values = self._read(name, [s0] + [0] * (len(vdims) - 1), region_shape)
                    valid = ~np.isnan(values)
                    if self.mask:
                        valid &= values != 0
                    local = [first[sel] - s0] + starts[1:]
                    parts.append(_box_counts(valid, local, sizes))
                part = np.concatenate(parts, axis=0) if parts else np.zeros(
                    [0] + [len(s) for s in starts[1:]], np.int64)
            else:
                values = self._read(name, [], [])
                part = np.asarray(int(~np.isnan(values) & ((values != 0) if self.mask else True)))
            # Broadcast over the sample dimensions the variable does not have.
            order = np.argsort(axes) if axes else []
            part = np.transpose(part, order) if axes else part
            shape = [len(axis_starts[a]) if a in axes else 1 for a in range(len(axis_starts))]
            counts = counts + part.reshape(shape)
            total += math.prod(sizes)
        return counts / max(total, 1)

    def _card_path(self, datacard: Any) -> str | None:
        if datacard is False:
            return None
        if datacard not in (None, True):
            return os.fspath(datacard)
        if "://" in self.url and not self.url.startswith("file://"):
            return None
        local = self.url[len("file://"):] if self.url.startswith("file://") else self.url
        return local.rstrip("/") + ".datacard.json"

    def _card_key(self) -> dict:
        lo, hi = self._splits[self.stats_split]
        return {
            "cube_sha256": hashlib.sha256(self._reader.describe().encode()).hexdigest(),
            "features": self.features,
            "split": self.stats_split,
            "split_dim": self.split_dim,
            "index_range": [lo, hi],
        }

    def _statistics(self) -> dict[str, dict[str, float]]:
        key = self._card_key()
        path = self.datacard_path
        if path and os.path.exists(path):
            try:
                with open(path, encoding="utf-8") as f:
                    card = json.load(f)
                if all(card.get(k) == v for k, v in key.items()):
                    return {f: card["stats"][f] for f in self.features}
            except (OSError, ValueError, KeyError):
                pass
        stats = {f: self._feature_stats(f) for f in self.features}
        if path:
            lo, hi = key["index_range"]
            labels = None
            if self.split_dim in self._ds.indexes and hi > lo:
                index = self._ds.indexes[self.split_dim]
                labels = [str(index[lo]), str(index[hi - 1])]
            card = {
                "format": "cubeforge-datacard", "version": 1, "cube": self.url, **key,
                "coordinate_range": labels, "stats": stats, "cubeforge_version": _native.__version__,
                "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            }
            tmp = f"{path}.tmp{os.getpid()}"
            try:
                with open(tmp, "w", encoding="utf-8") as f:
                    json.dump(card, f, indent=2)
                os.replace(tmp, path)
            except OSError:
                try:
                    os.remove(tmp)
                except OSError:
                    pass
        return stats

    def _feature_stats(self, name: str) -> dict[str, float]:
        """Count, mean, population std, min and max of ``name`` over the statistics split, in
        float64, NaN left out: one pass over the storage units (in parallel, in Rust), their
        moments merged pairwise (Chan, Golub and LeVeque)."""
        v = self._vars[name]
        lo = hi = None
        if self.split_dim in v["dims"]:
            axis = v["dims"].index(self.split_dim)
            lo, hi = self._splits[self.stats_split]
        else:
            axis = None
        start = [0] * len(v["dims"])
        shape = list(v["shape"])
        if axis is not None:
            start[axis], shape[axis] = lo, hi - lo
        count, mean, m2, vmin, vmax = self._reader.moments(name, start, shape)
        if count == 0:
            raise BatchError(f"Batches: feature '{name}' has no value that is not NaN in split "
                             f"'{self.stats_split}', so it cannot be normalised; pass normalize=False "
                             "or choose stats_split", self.url)
        return {"mean": mean, "std": math.sqrt(m2 / count), "min": vmin, "max": vmax, "count": count}

    # -- epochs ---------------------------------------------------------------------------------

    @property
    def splits(self) -> dict[str, tuple[int, int]]:
        """Each split's index range ``(start, stop)`` along ``split_dim``."""
        return dict(self._splits)

    def samples(self, split: str = "all") -> np.ndarray:
        """The starts of the split's samples, ``(n, len(sample_dims))``, row-major order."""
        if split not in self._splits:
            raise BatchError(f"Batches: no split '{split}'; splits: {', '.join(self._splits)}", self.url)
        s = self._samples
        if self.split_dim is None:
            return s.copy()
        axis = self.sample_dims.index(self.split_dim)
        lo, hi = self._splits[split]
        n = self._doc["dims"][self.split_dim]
        end = np.minimum(s[:, axis] + self.sizes[self.split_dim], n)
        return s[(s[:, axis] >= lo) & (end <= hi)].copy()

    def _block_of(self, samples: np.ndarray) -> np.ndarray:
        """Per sample, the storage block its start lies in (an integer id)."""
        chunks = []
        for d in self.sample_dims:
            c = next((v["chunks"][v["dims"].index(d)] for name in [*self.features, *self.targets]
                      for v in [self._vars[name]] if d in v["dims"]), self.sizes[d])
            chunks.append(max(1, int(c)))
        blocks = samples // np.asarray(chunks, dtype=np.int64)
        if blocks.size == 0:
            return np.zeros(0, np.int64)
        _, ids = np.unique(blocks, axis=0, return_inverse=True)
        return ids.ravel()

    def order(self, split: str = "all", epoch: int = 0) -> np.ndarray:
        """The split's sample starts in the order of epoch ``epoch``."""
        samples = self.samples(split)
        n = len(samples)
        epoch = _whole("epoch", epoch, 0, self.url)
        if not self.shuffle or n == 0:
            return samples
        rng = np.random.default_rng([self.seed, int(epoch)])
        if self.shuffle_blocks is None:
            return samples[rng.permutation(n)]
        block = self._block_of(samples)
        rank = np.empty(block.max() + 1, np.int64)
        rank[rng.permutation(block.max() + 1)] = np.arange(block.max() + 1)
        group = rank[block] // self.shuffle_blocks
        return samples[np.lexsort((rng.random(n), group))]

    def num_batches(self, split: str = "all", shard: tuple[int, int] | None = None) -> int:
        """Batches in an epoch of ``split`` (of its shard ``(rank, world)``)."""
        n = len(self.samples(split))
        total = n // self.batch_size if self.drop_last else -(-n // self.batch_size)
        if shard is None:
            return total
        rank, world = shard
        return len(range(rank, total, world))

    def _sharded(self, ordered: np.ndarray, shard: tuple[int, int] | None) -> np.ndarray:
        if shard is None:
            return ordered
        try:
            rank, world = (_whole("shard", v, 0, self.url) for v in shard)
        except (TypeError, ValueError):
            rank, world = -1, 0
        if world < 1 or not 0 <= rank < world:
            raise BatchError(f"Batches: shard {shard!r} is not (rank, world) with 0 <= rank < world", self.url)
        bs = self.batch_size
        total = len(ordered) // bs if self.drop_last else -(-len(ordered) // bs)
        rows = [ordered[k * bs:(k + 1) * bs] for k in range(rank, total, world)]
        return np.concatenate(rows) if rows else ordered[:0]

    def epoch(self, split: str = "all", epoch: int = 0,
              shard: tuple[int, int] | None = None) -> Iterator[Any]:
        """The batches of one epoch of ``split``: ``(x, y)`` (``x`` alone without targets).

        ``shard=(rank, world)`` yields batches ``rank, rank + world, …`` of the epoch.
        """
        starts = np.ascontiguousarray(self._sharded(self.order(split, epoch), shard))
        it = self._loader.epoch(starts, self.batch_size, drop_last=self.drop_last,
                                prefetch=self.prefetch, jobs=self.jobs)
        try:
            for x, y in it:
                yield (x, y) if self.targets else x
        finally:
            self.last_counters = it.counters()
            it.close()

    def __iter__(self) -> Iterator[Any]:
        return self.epoch("train" if "train" in self._splits else next(iter(self._splits)))

    # -- adapters -------------------------------------------------------------------------------

    def torch(self, split: str = "train", epoch: int = 0) -> Any:
        """A ``torch.utils.data.IterableDataset`` of the split's batches as tensors, sharded
        across ``DataLoader`` workers and ``torch.distributed`` ranks (batch ``k`` goes to
        shard ``k % (world × workers)``). Use it with ``DataLoader(ds, batch_size=None)``;
        ``ds.set_epoch(e)`` selects the epoch."""
        try:
            from ._torch import BatchesDataset
        except ImportError as e:
            raise ImportError(f"Batches.torch needs torch ({e}); install it with "
                              "pip install 'cubeforge[torch]' or pip install torch") from e
        return BatchesDataset(self, split, epoch)

    def tf(self, split: str = "train", epoch: int = 0) -> Any:
        """A ``tf.data.Dataset`` of the split's batches (from a generator)."""
        try:
            import tensorflow as tf
        except ImportError as e:
            raise ImportError(f"Batches.tf needs TensorFlow ({e}); install it with "
                              "pip install 'cubeforge[tensorflow]' or pip install tensorflow") from e
        x_shape = [None] + [len(self.features) if d == "feature" else self.sizes[d] for d in self.x_dims[1:]]
        y_shape = [None] + [len(self.targets) if d == "feature" else self.sizes[d] for d in self.x_dims[1:]]
        if self.targets:
            sig = (tf.TensorSpec(x_shape, tf.float32), tf.TensorSpec(y_shape, tf.float32))
        else:
            sig = tf.TensorSpec(x_shape, tf.float32)
        return tf.data.Dataset.from_generator(lambda: self.epoch(split, epoch), output_signature=sig)

    def __repr__(self) -> str:
        return (f"<cubeforge.Batches {self.url}: features {self.features}, targets {self.targets}, "
                f"samples {dict(self.sizes)} along {self.sample_dims}, batch {self.batch_size}, "
                f"splits {self._splits}>")
