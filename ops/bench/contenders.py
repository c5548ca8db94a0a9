"""What the benchmark times: our FusedEmbeddingBag per backend, and the baselines
torch.nn.EmbeddingBag (one per table, sparse gradients + torch.optim.Adagrad) and FBGEMM's
table-batched embedding (exact row-wise Adagrad) when fbgemm_gpu is installed. Each is a pair of
closures: a forward, and a forward + backward + optimizer update."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass

import torch

from ops import FusedEmbeddingBag
from ops.bench.problems import Inputs, Problem

LR = 0.01
EPS = 1e-8


@dataclass(frozen=True)
class Contender:
    name: str
    baseline: str | None  # "torch" or "fbgemm" for a baseline, None for ours
    forward: Callable[[], object]
    step: Callable[[], object]


def _grad_out(problem: Problem, device: torch.device) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    return torch.randn(problem.batch_size, sum(problem.dims), generator=g).to(device)


def ours(
    problem: Problem, inputs: Inputs, backend: str, device: torch.device, bounds_check: str = "raise"
) -> Contender:
    bag = FusedEmbeddingBag(
        list(problem.rows),
        list(problem.dims),
        backend=backend,
        optimizer="rowwise_adagrad",
        lr=LR,
        eps=EPS,
        bounds_check=bounds_check,
        device=device,
    )
    indices, offsets = inputs.indices.to(device), inputs.offsets.to(device)
    grad_out = _grad_out(problem, device)

    def forward() -> torch.Tensor:
        with torch.no_grad():
            return bag(indices, offsets)

    def step() -> None:
        bag(indices, offsets).backward(grad_out)

    checks = "" if bounds_check == "raise" else f", bounds {bounds_check}"
    return Contender(f"ours: {backend} + rowwise_adagrad{checks}", None, forward, step)


def torch_embedding_bag(problem: Problem, inputs: Inputs, device: torch.device) -> Contender:
    B, L = problem.batch_size, problem.bag_size
    tables = [
        torch.nn.EmbeddingBag(rows, dim, mode="sum", sparse=True, device=device)
        for rows, dim in zip(problem.rows, problem.dims, strict=True)
    ]
    optimizer = torch.optim.Adagrad([t.weight for t in tables], lr=LR, eps=EPS)
    per_table = inputs.indices.to(device).view(problem.num_tables, B * L)
    offsets = torch.arange(0, B * L, L, device=device)
    grad_out = _grad_out(problem, device)

    def pooled() -> torch.Tensor:
        return torch.cat([table(per_table[t], offsets) for t, table in enumerate(tables)], dim=1)

    def forward() -> torch.Tensor:
        with torch.no_grad():
            return pooled()

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        pooled().backward(grad_out)
        optimizer.step()

    return Contender(f"torch.nn.EmbeddingBag x{problem.num_tables} + Adagrad", "torch", forward, step)


def fbgemm_problem() -> str:
    """Why FBGEMM's TBE cannot be benchmarked here ("" if it can)."""
    if importlib.util.find_spec("fbgemm_gpu") is None:
        return "fbgemm_gpu is not installed (pip install --no-deps fbgemm-gpu-cpu==1.8.0 on CPU)"
    try:
        from fbgemm_gpu import split_table_batched_embeddings_ops_training  # noqa: F401
    except Exception as error:  # a wheel built for another torch fails in many ways
        return f"fbgemm_gpu does not import here: {type(error).__name__}: {error}"
    return ""


def fbgemm_tbe(problem: Problem, inputs: Inputs, device: torch.device) -> Contender:
    from fbgemm_gpu.split_embedding_configs import EmbOptimType, SparseType
    from fbgemm_gpu.split_table_batched_embeddings_ops_common import EmbeddingLocation, PoolingMode
    from fbgemm_gpu.split_table_batched_embeddings_ops_training import (
        ComputeDevice,
        SplitTableBatchedEmbeddingBagsCodegen,
    )

    on_gpu = device.type == "cuda"
    location = EmbeddingLocation.DEVICE if on_gpu else EmbeddingLocation.HOST
    compute = ComputeDevice.CUDA if on_gpu else ComputeDevice.CPU
    tbe = SplitTableBatchedEmbeddingBagsCodegen(
        [(rows, dim, location, compute) for rows, dim in zip(problem.rows, problem.dims, strict=True)],
        optimizer=EmbOptimType.EXACT_ROWWISE_ADAGRAD,
        learning_rate=LR,
        eps=EPS,
        pooling_mode=PoolingMode.SUM,
        weights_precision=SparseType.FP32,
        output_dtype=SparseType.FP32,
        device=device,
    )
    indices, offsets = inputs.indices.to(device), inputs.offsets.to(device)
    grad_out = _grad_out(problem, device)

    def forward() -> torch.Tensor:
        with torch.no_grad():
            return tbe(indices, offsets)

    def step() -> None:
        tbe(indices, offsets).backward(grad_out)

    return Contender("fbgemm TBE + rowwise Adagrad", "fbgemm", forward, step)
