"""The benchmark's problems: FBGEMM's default TBE benchmark shape and a Criteo-like set, their
inputs, and the bytes each operation must move."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

# Cardinalities of the 26 categorical features of the Criteo Kaggle (Display Advertising
# Challenge) data set, as counted by DLRM's preprocessing.
CRITEO_KAGGLE_ROWS = (
    1460, 583, 10131227, 2202608, 305, 24, 12517, 633, 3, 93145, 5683, 8351593, 3194,
    27, 14992, 5461306, 10, 5652, 2173, 4, 7046547, 18, 15, 286181, 105, 142572,
)  # fmt: skip
# Larger tables are capped so that every implementation's copy of the tables plus torch's
# Adagrad state (about 2.6 GiB each) fits a 24 GiB machine together.
CRITEO_ROW_CAP = 1_000_000
ZIPF_EXPONENT = 1.05


@dataclass(frozen=True)
class Problem:
    """T tables (rows[t] x dims[t]) looked up by B samples with `bag_size` indices per bag,
    drawn uniformly or (zipf set) from a Zipf law over a random order of the rows."""

    name: str
    batch_size: int
    rows: tuple[int, ...]
    dims: tuple[int, ...]
    bag_size: int
    zipf: float | None = None

    @property
    def num_tables(self) -> int:
        return len(self.rows)

    @property
    def num_indices(self) -> int:
        return self.num_tables * self.batch_size * self.bag_size

    def describe(self) -> str:
        def span(values: tuple[int, ...]) -> str:
            low, high = min(values), max(values)
            return str(low) if low == high else f"{low}..{high}"

        indices = "uniform" if self.zipf is None else f"Zipf({self.zipf})"
        return (
            f"B={self.batch_size} T={self.num_tables} D={span(self.dims)} L={self.bag_size} "
            f"E={span(self.rows)} {indices} indices"
        )

    def table_bytes(self) -> int:
        return 4 * sum(r * d for r, d in zip(self.rows, self.dims, strict=True))


def fbgemm_default(small: bool = False) -> Problem:
    """FBGEMM's TBE benchmark defaults (B=512, T=32, D=128, L=20, E=1e5)."""
    if small:
        return Problem("fbgemm-default (small)", 256, (20_000,) * 8, (64,) * 8, 20)
    return Problem("fbgemm-default", 512, (100_000,) * 32, (128,) * 32, 20)


def criteo_dim(rows: int) -> int:
    """A power of two near 6 * rows^(1/4), in [16, 128]: bigger tables get wider rows."""
    return min(128, max(16, 2 ** round(math.log2(6 * rows**0.25))))


def criteo_like(small: bool = False) -> Problem:
    """Criteo Kaggle's 26 one-hot features with Zipf-skewed indices. B=4096 keeps the pooled
    output (B x 1600 floats) under glibc's 32 MiB mmap threshold: a bigger one is a fresh
    mapping on every call, and its page faults would dominate every implementation's time."""
    cap, batch_size = (20_000, 1024) if small else (CRITEO_ROW_CAP, 4096)
    rows = tuple(min(r, cap) for r in CRITEO_KAGGLE_ROWS)
    name = "criteo-like (small)" if small else "criteo-like"
    return Problem(name, batch_size, rows, tuple(criteo_dim(r) for r in rows), 1, ZIPF_EXPONENT)


PROBLEMS = {"fbgemm-default": fbgemm_default, "criteo-like": criteo_like}


def zipf_indices(rows: int, n: int, exponent: float, generator: torch.Generator) -> torch.Tensor:
    """n draws of P(rank k) ~ 1 / k^exponent (k = 1..rows), ranks mapped to rows by a random
    permutation so that hot rows are scattered over the table."""
    weights = torch.arange(1, rows + 1, dtype=torch.float64).pow(-exponent)
    cdf = weights.cumsum(0)
    draws = torch.rand(n, generator=generator, dtype=torch.float64) * cdf[-1]
    ranks = torch.searchsorted(cdf, draws).clamp_(max=rows - 1)
    return torch.randperm(rows, generator=generator)[ranks]


@dataclass(frozen=True)
class Inputs:
    indices: torch.Tensor  # int64 [T * B * L], table-major
    offsets: torch.Tensor  # int64 [T * B + 1]
    unique_rows: tuple[int, ...]  # distinct rows touched per table


def make_inputs(problem: Problem, seed: int = 0) -> Inputs:
    """Reproducible CPU inputs for `problem` (move them to the device with .to)."""
    generator = torch.Generator().manual_seed(seed)
    per_table = problem.batch_size * problem.bag_size
    parts = [
        torch.randint(0, rows, (per_table,), generator=generator)
        if problem.zipf is None
        else zipf_indices(rows, per_table, problem.zipf, generator)
        for rows in problem.rows
    ]
    offsets = torch.arange(0, problem.num_indices + 1, problem.bag_size)
    unique = tuple(int(torch.unique(p).numel()) for p in parts)
    return Inputs(torch.cat(parts), offsets, unique)


@dataclass(frozen=True)
class Traffic:
    """Bytes an operation must move at least (float32): the forward reads every looked-up row
    and writes the pooled output (FBGEMM's benchmark convention); backward + row-wise Adagrad
    also reads the output gradient and reads and writes each touched row and its one-value
    state once. Every implementation is credited with the same bytes."""

    forward: int
    backward: int

    @property
    def step(self) -> int:
        return self.forward + self.backward


def traffic(problem: Problem, inputs: Inputs) -> Traffic:
    B, L = problem.batch_size, problem.bag_size
    output = 4 * B * sum(problem.dims)
    rows_read = 4 * B * L * sum(problem.dims)
    updated = sum(u * (2 * 4 * d + 2 * 4) for u, d in zip(inputs.unique_rows, problem.dims, strict=True))
    return Traffic(forward=rows_read + output, backward=output + updated)
