"""Argument packing shared by the compiled backends (ops._cpu, ops._cuda): both take the same
`Problem` and `Update` objects, built from data pointers of already-validated tensors."""

from __future__ import annotations

from types import ModuleType

import torch

from ops.batch import Batch
from ops.config import OptimizerConfig

SCALAR_BITS = {torch.float32: 32, torch.float64: 64}
_INDEX_BITS = {torch.int32: 32, torch.int64: 64}


def ptr(tensor: torch.Tensor | None) -> int:
    return 0 if tensor is None else tensor.data_ptr()


def unsupported_dtype(dtype: torch.dtype) -> str:
    return "" if dtype in SCALAR_BITS else f"it supports float32 and float64 weights; got {dtype}"


def make_problem(ext: ModuleType, batch: Batch, dtype: torch.dtype):  # -> ext.Problem
    layout = batch.layout
    return ext.Problem(
        rows=list(layout.num_embeddings),
        dims=list(layout.embedding_dims),
        batch_size=batch.batch_size,
        indices=ptr(batch.indices),
        index_bits=_INDEX_BITS[batch.indices.dtype],
        num_indices=batch.num_indices,
        offsets=ptr(batch.offsets),
        per_sample_weights=ptr(batch.per_sample_weights),
        mean=batch.mean,
        scalar_bits=SCALAR_BITS[dtype],
    )


def make_update(
    ext: ModuleType,
    optimizer: OptimizerConfig,
    weight: torch.Tensor,
    state: dict[str, torch.Tensor],
    step: int,
):  # -> ext.Update
    return ext.Update(
        optimizer=optimizer.name,
        target=ptr(weight),
        momentum1=ptr(state.get("momentum1")),
        momentum2=ptr(state.get("momentum2")),
        lr=optimizer.lr,
        eps=optimizer.eps,
        beta1=optimizer.betas[0],
        beta2=optimizer.betas[1],
        step=step,
    )
