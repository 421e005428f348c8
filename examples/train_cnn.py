#!/usr/bin/env python3
"""Seed 000, continued: train a small CNN on the tutorial cube with cubeforge.Batches and PyTorch.

The NOAA tutorial ("Preparing a Zarr dataset for our CNN training") ends with a cube of predictors
(``sst``, ``so``, ``topo``, ``sin_time``, ``cos_time``), the response ``y`` (log chlorophyll) and an
``ocean_mask``. This script builds that cube from the embedded synthetic example, then fits a tiny
CNN (5 channels in, 1 out, a masked MSE that ignores NaN targets) for one epoch on 64 x 64 patches,
normalised with the training split's statistics, and reports the validation loss. For every step it
prints the loss, the time spent waiting for the batch and that wait's share of the step: the share
says whether the GPU (or CPU) is starved by the data loader. Run it from the repository root::

    pip install .[torch]                      # or: scripts/test.sh builds it into .venv
    python examples/train_cnn.py --days 3000 [--work out] [--device cuda]

It writes ``WORK/io.zarr`` (the example input, as ``cubeforge example io --days N`` writes it) and
``WORK/cnn_tutorial.zarr`` (the cube, as ``cubeforge build recipes/tutorial.yaml`` builds it).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader

import cubeforge

ROOT = Path(__file__).resolve().parents[1]
# The tutorial's names: predictors, the response, and the seasonal terms it adds.
pred_var = ["sst", "so", "topo"]
resp_var = "y"
season_var = ["sin_time", "cos_time"]


def make_splits(zarr_path: Path) -> dict:
    """The first 80 % of the cube's days for training, the rest for validation (inclusive dates)."""
    days = [str(d) for d in cubeforge.open_dataset(str(zarr_path))["time"].values.astype("datetime64[D]")]
    cut = int(len(days) * 0.8)
    return {"train": (days[0], days[cut - 1]), "val": (days[cut], days[-1])}


class TinyCNN(nn.Module):
    """(batch, 5, 64, 64) -> (batch, 1, 64, 64): three 3 x 3 convolutions and a 1 x 1 head."""

    def __init__(self, channels: int, width: int = 16) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=1), nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=1), nn.ReLU(),
            nn.Conv2d(width, 1, 1),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def masked_mse(pred: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sum of squared errors over the valid (non-NaN) targets, and their count."""
    valid = ~torch.isnan(y)
    err = torch.where(valid, pred - torch.nan_to_num(y), torch.zeros_like(pred))
    return (err * err).sum(), valid.sum()


def to_images(x: torch.Tensor, y: torch.Tensor, device: torch.device):
    """(batch, channel, time=1, lat, lon) -> (batch, channel, lat, lon) on the device."""
    return x[:, :, 0].to(device, non_blocking=True), y[:, :, 0].to(device, non_blocking=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=3000, help="days of example input (default 3000)")
    parser.add_argument("--work", type=Path, default=ROOT / "out", help="where the input and the cube go (default out/)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--lr", type=float, default=1e-3)
    args = parser.parse_args()
    device = torch.device(args.device)
    args.work.mkdir(parents=True, exist_ok=True)

    # The tutorial's cube from the embedded example.
    io_path, zarr_path = args.work / "io.zarr", args.work / "cnn_tutorial.zarr"
    cubeforge.write_example(str(io_path), days=args.days, overwrite=True)  # cubeforge example io --days N
    report = cubeforge.build(str(ROOT / "recipes" / "tutorial.yaml"), input=str(io_path), output=str(zarr_path),
                             overwrite=True, progress=False)  # fmt: skip
    print(f"built {zarr_path} in {report.seconds:.1f} s")

    splits = make_splits(zarr_path)
    batches = cubeforge.Batches(str(zarr_path), features=pred_var + season_var, targets=[resp_var],
                                patch={"lat": 64, "lon": 64}, window={"time": 1}, batch_size=32,
                                splits=splits, normalize=True, fill_nan=0.0, shuffle=True, seed=0)  # fmt: skip
    print(f"splits {splits}; training samples: {len(batches.samples('train'))}, validation: {len(batches.samples('val'))}")
    for name, s in batches.stats.items():
        print(f"  {name:9s} mean {s['mean']:10.4f}  std {s['std']:9.4f}")

    torch.manual_seed(0)
    model = TinyCNN(len(pred_var + season_var)).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    train = DataLoader(batches.torch("train"), batch_size=None)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    model.train()
    waited = total = 0.0
    steps = 0
    step_end = time.perf_counter()
    for step, (x, y) in enumerate(train):
        got = time.perf_counter()  # the wait: from the end of the last step to holding this batch
        x, y = to_images(x, y, device)
        sse, count = masked_mse(model(x), y)
        loss = sse / count.clamp(min=1)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        sync()
        wait, step_s = got - step_end, time.perf_counter() - step_end
        waited, total, steps = waited + wait, total + step_s, steps + 1
        print(f"step {step:4d}  loss {loss.item():8.4f}  wait {wait * 1e3:7.2f} ms  step {step_s * 1e3:7.1f} ms  "
              f"wait share {wait / step_s:6.1%}")  # fmt: skip
        step_end = time.perf_counter()  # the printing is left out of both
    print(f"epoch: {steps} steps in {total:.2f} s on {device}; data-loader wait {waited:.2f} s = {waited / max(total, 1e-9):.1%}")

    model.eval()
    sse_sum, n_valid = 0.0, 0
    with torch.no_grad():
        for x, y in DataLoader(batches.torch("val"), batch_size=None):
            x, y = to_images(x, y, device)
            sse, count = masked_mse(model(x), y)
            sse_sum, n_valid = sse_sum + sse.item(), n_valid + int(count.item())
    print(f"validation loss (masked MSE of log chlorophyll): {sse_sum / max(n_valid, 1):.4f} over {n_valid} pixels")


if __name__ == "__main__":
    main()
