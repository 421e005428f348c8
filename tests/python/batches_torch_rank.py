"""One rank of a simulated ``torch.distributed`` job over ``cubeforge.Batches.torch`` (test_batches.py).

Usage: python batches_torch_rank.py RANK WORLD INIT_FILE CONFIG_JSON OUT_JSON

CONFIG_JSON holds ``{"cube": ..., "kwargs": {...}, "split": ..., "epoch": ..., "uid": index of the
uid feature}``. Joins a gloo process group (file:// rendezvous), then iterates
``DataLoader(b.torch(split), batch_size=None, num_workers=w)`` for w in 0 and 2 and writes, per w,
the list of batches, each a list of the uid values of its samples' first elements.
"""

from __future__ import annotations

import json
import sys

import numpy as np
import torch.distributed as dist
from torch.utils.data import DataLoader

import cubeforge


def batch_ids(item, uid: int) -> list[int]:
    x = item[0] if isinstance(item, (tuple, list)) else item
    x = np.asarray(x)
    return [int(v) for v in x[(slice(None), uid) + (0,) * (x.ndim - 2)]]


def main() -> None:
    rank, world, init_file, config_path, out_path = sys.argv[1:6]
    config = json.loads(open(config_path).read())
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=int(rank), world_size=int(world))
    try:
        b = cubeforge.Batches(config["cube"], **config["kwargs"])
        ds = b.torch(config["split"])
        ds.set_epoch(config["epoch"])
        result = {}
        for workers in (0, 2):
            loader = DataLoader(ds, batch_size=None, num_workers=workers, timeout=60 if workers else 0)
            result[str(workers)] = [batch_ids(item, config["uid"]) for item in loader]
        with open(out_path, "w") as f:
            json.dump(result, f)
        dist.barrier()
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
