"""Shapes and random inputs shared by the ops tests (imported by name: pytest puts this folder
on sys.path)."""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass

import pytest
import torch

from ops import FusedEmbeddingBag


@dataclass(frozen=True)
class Case:
    """T tables with `rows`/`dims`; bag lengths drawn from [0, max_len] unless `lengths` fixes
    them (table-major, T*B entries)."""

    name: str
    rows: tuple[int, ...]
    dims: tuple[int, ...]
    batch_size: int
    max_len: int = 4
    lengths: tuple[int, ...] | None = None


CASES = [
    Case("mixed_dims", rows=(50, 7, 30), dims=(8, 3, 5), batch_size=6, max_len=5),
    Case("one_table", rows=(40,), dims=(16,), batch_size=5),
    Case("large_dim", rows=(5, 9), dims=(1024, 260), batch_size=3, max_len=3),
    Case("dims_not_multiple_of_4", rows=(11, 13, 6), dims=(1, 7, 13), batch_size=4, max_len=6),
    Case("empty_bags", rows=(10, 10), dims=(4, 4), batch_size=3, lengths=(0, 0, 0, 2, 0, 3)),
    Case("heavy_duplicates", rows=(3, 2), dims=(6, 5), batch_size=8, max_len=12),
    # Bags and rows past 32 occurrences (the CUDA kernels load 32 at a time), widths that take
    # the 16-byte packed path.
    Case("hot_rows", rows=(4, 2), dims=(8, 4), batch_size=8, max_len=40),
    Case("no_samples", rows=(10, 4), dims=(4, 2), batch_size=0),
]


def summation_tolerance(case: Case, dtype: torch.dtype) -> dict[str, float]:
    """assert_close's tolerance: its float32 default, except for cases whose rows or bags sum
    dozens of terms, in another order than the reference's (index_add_ on CUDA has none)."""
    if dtype != torch.float32 or case.max_len <= 12:
        return {}
    return {"rtol": 1e-5, "atol": 1e-4}


@dataclass(frozen=True)
class Inputs:
    indices: torch.Tensor
    offsets: torch.Tensor
    per_sample_weights: torch.Tensor | None


def make_inputs(
    case: Case,
    *,
    seed: int = 0,
    index_dtype: torch.dtype = torch.int64,
    weight_dtype: torch.dtype = torch.float32,
    weighted: bool = False,
    device: str = "cpu",
) -> Inputs:
    """Valid random inputs for `case`, reproducible from `seed`."""
    g = torch.Generator().manual_seed(seed)
    T, B = len(case.rows), case.batch_size
    if case.lengths is not None:
        lengths = torch.tensor(case.lengths, dtype=torch.int64)
    else:
        lengths = torch.randint(0, case.max_len + 1, (T * B,), generator=g)
    offsets = torch.cat([torch.zeros(1, dtype=torch.int64), lengths.cumsum(0)])
    parts = [
        torch.randint(0, case.rows[t], (int(lengths[t * B : (t + 1) * B].sum()),), generator=g)
        for t in range(T)
    ]
    indices = torch.cat(parts).to(index_dtype)
    psw = torch.rand(indices.numel(), generator=g, dtype=weight_dtype) + 0.5 if weighted else None
    return Inputs(indices.to(device), offsets.to(device), None if psw is None else psw.to(device))


def make_pair(
    case: Case,
    backend: str,
    *,
    pooling: str = "sum",
    optimizer: str | None = None,
    dtype: torch.dtype = torch.float32,
    device: str = "cpu",
    **kwargs,
) -> tuple[FusedEmbeddingBag, FusedEmbeddingBag]:
    """The same module (same weights) on `backend` and on `reference`."""
    torch.manual_seed(1)
    modules = [
        FusedEmbeddingBag(
            list(case.rows),
            list(case.dims),
            pooling=pooling,
            backend=name,
            optimizer=optimizer,
            dtype=dtype,
            device=device,
            **kwargs,
        )
        for name in (backend, "reference")
    ]
    modules[1].load_state_dict(modules[0].state_dict())
    return modules[0], modules[1]


def interpret_triton(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run ops.triton_kernels in Triton's CPU interpreter for the current test only. The flag is
    read when the kernels are decorated, so the module is (re)imported with it set."""
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    if "ops.triton_kernels" in sys.modules:
        importlib.reload(sys.modules["ops.triton_kernels"])
    else:
        importlib.import_module("ops.triton_kernels")
