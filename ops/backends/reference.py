"""Plain PyTorch: the specification of the operator and of its fused optimizers."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from ops.batch import Batch
from ops.config import OptimizerConfig


@dataclass(frozen=True)
class _TableBatch:
    """The bags of one table: position i of the table's slice of `indices` belongs to sample
    `sample[i]`; `coeff[i]` multiplies its row in the pooled sum (0 for an invalid index)."""

    t: int
    start: int
    end: int
    columns: slice
    table: torch.Tensor  # [E_t, D_t] view of the weight
    rows: torch.Tensor  # int64 [end - start], invalid indices replaced by 0
    valid: torch.Tensor  # bool [end - start]
    sample: torch.Tensor  # int64 [end - start]
    weights: torch.Tensor  # per-sample weights (1 where absent), 0 where invalid
    lengths: torch.Tensor  # int64 [B], the bag sizes


def _table_batches(weight: torch.Tensor, batch: Batch) -> Iterator[_TableBatch]:
    layout, B = batch.layout, batch.batch_size
    offsets = batch.offsets.tolist()
    for t in range(layout.num_tables):
        rows, dim = layout.num_embeddings[t], layout.embedding_dims[t]
        start, end = offsets[t * B], offsets[(t + 1) * B]
        bag_offsets = batch.offsets[t * B : (t + 1) * B + 1]
        lengths = bag_offsets[1:] - bag_offsets[:-1]
        indices = batch.indices[start:end].long()
        valid = (indices >= 0) & (indices < rows)
        weights = (
            batch.per_sample_weights[start:end]
            if batch.per_sample_weights is not None
            else torch.ones(end - start, dtype=weight.dtype, device=weight.device)
        )
        a, b = layout.weight_offsets[t], layout.weight_offsets[t + 1]
        yield _TableBatch(
            t=t,
            start=start,
            end=end,
            columns=slice(layout.column_offsets[t], layout.column_offsets[t + 1]),
            table=weight[a:b].view(rows, dim),
            rows=torch.where(valid, indices, 0),
            valid=valid,
            sample=torch.repeat_interleave(
                torch.arange(B, device=weight.device), lengths, output_size=end - start
            ),
            weights=weights * valid,
            lengths=lengths,
        )


def _row_gradients(grad_out: torch.Tensor, tb: _TableBatch, mean: bool) -> torch.Tensor:
    """d loss / d row for every position of the table (0 for invalid indices)."""
    coeff = tb.weights
    if mean:
        coeff = coeff / tb.lengths.clamp(min=1)[tb.sample]
    return grad_out[tb.sample, tb.columns] * coeff[:, None]


def update_rows(
    optimizer: OptimizerConfig,
    w: torch.Tensor,
    g: torch.Tensor,
    m1: torch.Tensor | None,
    m2: torch.Tensor | None,
    step: int,
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """New (rows, momentum1, momentum2) for rows `w` [k, D] with aggregated gradients `g`.
    Row-wise Adagrad keeps one momentum per row: FBGEMM's EXACT_ROWWISE_ADAGRAD."""
    lr, eps = optimizer.lr, optimizer.eps
    if optimizer.name == "sgd":
        return w - lr * g, m1, m2
    if optimizer.name == "adagrad":
        m1 = m1 + g * g
        return w - lr * g / (m1.sqrt() + eps), m1, m2
    if optimizer.name == "rowwise_adagrad":
        m1 = m1 + (g * g).mean(dim=1)
        return w - (lr / (m1.sqrt() + eps))[:, None] * g, m1, m2
    beta1, beta2 = optimizer.betas
    m1 = beta1 * m1 + (1 - beta1) * g
    m2 = beta2 * m2 + (1 - beta2) * g * g
    m_hat = m1 / (1 - math.pow(beta1, step))
    v_hat = m2 / (1 - math.pow(beta2, step))
    return w - lr * m_hat / (v_hat.sqrt() + eps), m1, m2


class ReferenceKernels:
    name = "reference"

    def unsupported(self, device: torch.device, dtype: torch.dtype) -> str:
        return "" if dtype.is_floating_point else f"weights must be floating point; got {dtype}"

    def forward(self, weight: torch.Tensor, batch: Batch) -> torch.Tensor:
        out = weight.new_zeros(batch.batch_size, batch.layout.total_dim)
        for tb in _table_batches(weight, batch):
            rows = tb.table[tb.rows] * tb.weights[:, None]
            pooled = rows.new_zeros(batch.batch_size, rows.shape[1]).index_add_(0, tb.sample, rows)
            if batch.mean:
                pooled = pooled / tb.lengths.clamp(min=1)[:, None]
            out[:, tb.columns] = pooled
        return out

    def first_invalid_index(self, batch: Batch) -> int:
        return first_invalid_index(batch)

    def grad_weight(self, grad_out: torch.Tensor, weight: torch.Tensor, batch: Batch) -> torch.Tensor:
        grad = torch.zeros_like(weight)
        layout = batch.layout
        for tb in _table_batches(weight, batch):
            a, b = layout.weight_offsets[tb.t], layout.weight_offsets[tb.t + 1]
            grad[a:b].view_as(tb.table).index_add_(0, tb.rows, _row_gradients(grad_out, tb, batch.mean))
        return grad

    def grad_per_sample_weights(
        self, grad_out: torch.Tensor, weight: torch.Tensor, batch: Batch
    ) -> torch.Tensor:
        grad = torch.zeros_like(batch.indices, dtype=weight.dtype)
        for tb in _table_batches(weight, batch):
            dots = (grad_out[tb.sample, tb.columns] * tb.table[tb.rows]).sum(dim=1)
            if batch.mean:
                dots = dots / tb.lengths.clamp(min=1)[tb.sample]
            grad[tb.start : tb.end] = dots * tb.valid
        return grad

    def fused_update(
        self,
        grad_out: torch.Tensor,
        weight: torch.Tensor,
        batch: Batch,
        optimizer: OptimizerConfig,
        state: dict[str, torch.Tensor],
        step: int,
    ) -> None:
        layout = batch.layout
        with torch.no_grad():
            for tb in _table_batches(weight, batch):
                g = torch.zeros_like(tb.table).index_add_(
                    0, tb.rows, _row_gradients(grad_out, tb, batch.mean)
                )
                touched = torch.unique(tb.rows[tb.valid])
                a, b = layout.weight_offsets[tb.t], layout.weight_offsets[tb.t + 1]
                if optimizer.name == "rowwise_adagrad":
                    r0, r1 = layout.row_offsets[tb.t], layout.row_offsets[tb.t + 1]
                    m1 = state["momentum1"][r0:r1]
                else:
                    m1 = state["momentum1"][a:b].view_as(tb.table) if "momentum1" in state else None
                m2 = state["momentum2"][a:b].view_as(tb.table) if "momentum2" in state else None
                w, n1, n2 = update_rows(
                    optimizer,
                    tb.table[touched],
                    g[touched],
                    None if m1 is None else m1[touched],
                    None if m2 is None else m2[touched],
                    step,
                )
                tb.table[touched] = w
                if m1 is not None:
                    m1[touched] = n1
                if m2 is not None:
                    m2[touched] = n2


def first_invalid_index(batch: Batch) -> int:
    """Vectorised bounds check in torch (any device); offsets must already be valid."""
    lengths = batch.offsets[1:] - batch.offsets[:-1]
    bag = torch.repeat_interleave(
        torch.arange(lengths.numel(), device=lengths.device), lengths, output_size=batch.num_indices
    )
    rows = torch.tensor(batch.layout.num_embeddings, device=lengths.device)
    table = bag // max(batch.batch_size, 1)
    indices = batch.indices.long()
    bad = torch.nonzero((indices < 0) | (indices >= rows[table]))
    return int(bad[0, 0]) if bad.numel() else -1
