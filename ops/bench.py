"""Benchmark of the fused embedding bag against torch.nn.EmbeddingBag, one per table.

    python -m ops.bench            # FBGEMM's benchmark defaults: B=512, T=32, D=128, L=20, E=1e5
    python -m ops.bench --small    # a shape that runs in seconds
    python -m ops.bench --threads 1

Prints, for each backend available here, ms (median) and GB/s of the forward and of
forward + backward + row-wise Adagrad, and the ratio ours / baseline, where the baseline is
torch.nn.EmbeddingBag per table with sparse gradients and torch.optim.Adagrad, measured in the
same run.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch

from ops import FusedEmbeddingBag, available_backends


@dataclass(frozen=True)
class Shape:
    batch_size: int
    tables: int
    dim: int
    bag_size: int
    rows: int

    def __str__(self) -> str:
        return f"B={self.batch_size} T={self.tables} D={self.dim} L={self.bag_size} E={self.rows}"

    def forward_bytes(self) -> int:
        """Rows read plus the pooled output written (float32)."""
        T, B = self.tables, self.batch_size
        return 4 * self.dim * (T * B * self.bag_size + T * B)


FBGEMM_DEFAULT = Shape(batch_size=512, tables=32, dim=128, bag_size=20, rows=100_000)
SMALL = Shape(batch_size=256, tables=8, dim=64, bag_size=20, rows=20_000)


def _median_ms(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def _inputs(shape: Shape, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    n = shape.tables * shape.batch_size * shape.bag_size
    indices = torch.randint(0, shape.rows, (n,), device=device)
    offsets = torch.arange(0, n + 1, shape.bag_size, device=device)
    return indices, offsets


def _ours(shape: Shape, backend: str, device: str, repeats: int) -> tuple[float, float]:
    indices, offsets = _inputs(shape, device)
    bag = FusedEmbeddingBag(
        [shape.rows] * shape.tables,
        [shape.dim] * shape.tables,
        backend=backend,
        optimizer="rowwise_adagrad",
        device=device,
    )
    grad = torch.ones(shape.batch_size, shape.tables * shape.dim, device=device)

    def forward() -> None:
        with torch.no_grad():
            bag(indices, offsets)

    def train_step() -> None:
        bag(indices, offsets).backward(grad)

    return _median_ms(forward, repeats), _median_ms(train_step, repeats)


def _baseline(shape: Shape, device: str, repeats: int) -> tuple[float, float]:
    indices, _ = _inputs(shape, device)
    per_table = indices.view(shape.tables, -1)
    offsets = torch.arange(0, shape.batch_size * shape.bag_size, shape.bag_size, device=device)
    tables = [
        torch.nn.EmbeddingBag(shape.rows, shape.dim, mode="sum", sparse=True).to(device)
        for _ in range(shape.tables)
    ]
    optimizer = torch.optim.Adagrad([p for t in tables for p in t.parameters()], lr=0.01)
    grad = torch.ones(shape.batch_size, shape.tables * shape.dim, device=device)

    def pooled() -> torch.Tensor:
        return torch.cat([t(per_table[i], offsets) for i, t in enumerate(tables)], dim=1)

    def forward() -> None:
        with torch.no_grad():
            pooled()

    def train_step() -> None:
        optimizer.zero_grad()
        pooled().backward(grad)
        optimizer.step()

    return _median_ms(forward, repeats), _median_ms(train_step, repeats)


def run(shape: Shape, repeats: int) -> list[str]:
    """The report lines, one per backend plus the baseline."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    gb = shape.forward_bytes() / 1e9
    base_forward, base_step = _baseline(shape, device, repeats)
    lines = [
        f"shape {shape}, device {device}, torch threads {torch.get_num_threads()}",
        f"{'':<34}{'forward ms':>11}{'GB/s':>7}{'ratio':>7}{'fwd+bwd+update ms':>19}{'ratio':>7}",
        f"{'torch.nn.EmbeddingBag + Adagrad':<34}{base_forward:>11.2f}{gb / base_forward * 1e3:>7.1f}"
        f"{1.0:>7.2f}{base_step:>19.2f}{1.0:>7.2f}",
    ]
    for backend in available_backends(device):
        if backend == "reference":
            continue
        forward, step = _ours(shape, backend, device, repeats)
        lines.append(
            f"{'ours: ' + backend + ' + rowwise_adagrad':<34}{forward:>11.2f}"
            f"{gb / forward * 1e3:>7.1f}{forward / base_forward:>7.2f}{step:>19.2f}"
            f"{step / base_step:>7.2f}"
        )
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help=f"use {SMALL} instead of {FBGEMM_DEFAULT}")
    parser.add_argument("--repeats", type=int, default=10, help="timed runs per measurement")
    parser.add_argument("--threads", type=int, help="CPU threads for torch and ours (default: torch's)")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    if args.threads is not None:
        if args.threads < 1:
            parser.error("--threads must be >= 1")
        torch.set_num_threads(args.threads)
    # torch.optim.Adagrad's sparse path warns on every step; the baseline is used as intended.
    warnings.filterwarnings("ignore", message="Sparse invariant checks")
    torch.manual_seed(0)
    for line in run(SMALL if args.small else FBGEMM_DEFAULT, args.repeats):
        print(line)


if __name__ == "__main__":
    main()
