"""The torch adapter of :class:`cubeforge.Batches` (imported only when asked for)."""

from __future__ import annotations

from typing import Any, Iterator

import torch
from torch.utils.data import IterableDataset, get_worker_info


class BatchesDataset(IterableDataset):
    """An epoch's batches as tensors, sharded across ``DataLoader`` workers and
    ``torch.distributed`` ranks: batch ``k`` goes to shard ``k % (world × workers)``, shard
    ``rank × workers + worker``. With ``DataLoader(ds, batch_size=None)`` and one process, the
    batches come in the epoch's order (the loader takes the workers in turn)."""

    def __init__(self, batches: Any, split: str, epoch: int = 0,
                 rank: int | None = None, world: int | None = None) -> None:
        super().__init__()
        self.batches, self.split, self.epoch = batches, split, epoch
        self.rank, self.world = rank, world

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch the next iteration yields."""
        self.epoch = epoch

    def _ranks(self) -> tuple[int, int]:
        if self.rank is not None and self.world is not None:
            return self.rank, self.world
        dist = torch.distributed
        if dist.is_available() and dist.is_initialized():
            return dist.get_rank(), dist.get_world_size()
        return 0, 1

    def __len__(self) -> int:
        rank, world = self._ranks()
        info = get_worker_info()
        workers, worker = (info.num_workers, info.id) if info else (1, 0)
        return self.batches.num_batches(self.split, (rank * workers + worker, world * workers))

    def __iter__(self) -> Iterator[Any]:
        rank, world = self._ranks()
        info = get_worker_info()
        workers, worker = (info.num_workers, info.id) if info else (1, 0)
        shard = (rank * workers + worker, world * workers)
        for item in self.batches.epoch(self.split, self.epoch, shard=shard):
            if isinstance(item, tuple):
                yield tuple(torch.from_numpy(a) for a in item)
            else:
                yield torch.from_numpy(item)
