"""The CUDA backend (ops._cuda): warp-per-bag kernels on raw device pointers, launched on
torch's current stream. Backward groups positions by row with a stable torch sort, so every
row's gradient is summed in position order (deterministic, no atomics)."""

from __future__ import annotations

from types import ModuleType

import torch

from ops.backends.native import make_problem, make_update, ptr, unsupported_dtype
from ops.backends.reference import first_invalid_index
from ops.batch import Batch
from ops.config import OptimizerConfig
from ops.layout import TableLayout


class CudaKernels:
    name = "cuda"

    def __init__(self, extension: ModuleType) -> None:
        self._ext = extension
        self._tables: dict[tuple[TableLayout, torch.device], torch.Tensor] = {}

    def unsupported(self, device: torch.device, dtype: torch.dtype) -> str:
        if device.type != "cuda":
            return f"it runs on CUDA tensors; the weights are on {device}"
        return unsupported_dtype(dtype)

    def _launch(self, batch: Batch, device: torch.device):  # -> ops._cuda.Launch
        layout = batch.layout
        key = (layout, device)
        if key not in self._tables:
            columns = (
                layout.num_embeddings,
                layout.embedding_dims,
                layout.weight_offsets[:-1],
                layout.column_offsets[:-1],
                layout.row_offsets[:-1],
            )
            self._tables[key] = torch.tensor(columns, dtype=torch.int64, device=device)
        stream = torch.cuda.current_stream(device).cuda_stream
        return self._ext.Launch(tables=ptr(self._tables[key]), stream=stream)

    def forward(self, weight: torch.Tensor, batch: Batch) -> torch.Tensor:
        out = weight.new_empty(batch.batch_size, batch.layout.total_dim)
        self._ext.forward(
            make_problem(self._ext, batch, weight.dtype),
            self._launch(batch, weight.device),
            ptr(weight),
            ptr(out),
        )
        return out

    def first_invalid_index(self, batch: Batch) -> int:
        return first_invalid_index(batch)

    def _backward(self, grad_out: torch.Tensor, weight: torch.Tensor, batch: Batch, update) -> None:
        layout, B, n = batch.layout, batch.batch_size, batch.num_indices
        device = weight.device
        tables = torch.tensor(
            (layout.num_embeddings, layout.row_offsets[:-1]), dtype=torch.int64, device=device
        )
        lengths = batch.offsets[1:] - batch.offsets[:-1]
        bag = torch.repeat_interleave(torch.arange(lengths.numel(), device=device), lengths, output_size=n)
        table = bag // max(B, 1)
        indices = batch.indices.long()
        valid = (indices >= 0) & (indices < tables[0, table])
        key = torch.where(valid, tables[1, table] + indices, layout.total_rows)
        sorted_key, positions = torch.sort(key, stable=True)
        rows, counts = torch.unique_consecutive(sorted_key, return_counts=True)
        begin = torch.cat([counts.new_zeros(1), counts.cumsum(0)])
        segments = self._ext.Segments(
            positions=ptr(positions),
            begin=ptr(begin),
            row=ptr(rows),
            bag_of_position=ptr(bag),
            num_segments=rows.numel(),
        )
        self._ext.backward(
            make_problem(self._ext, batch, weight.dtype),
            self._launch(batch, device),
            segments,
            ptr(grad_out),
            update,
        )

    def grad_weight(self, grad_out: torch.Tensor, weight: torch.Tensor, batch: Batch) -> torch.Tensor:
        grad = torch.zeros_like(weight)
        self._backward(grad_out, weight, batch, self._ext.Update(optimizer="gradient", target=ptr(grad)))
        return grad

    def grad_per_sample_weights(
        self, grad_out: torch.Tensor, weight: torch.Tensor, batch: Batch
    ) -> torch.Tensor:
        grad = torch.zeros_like(batch.indices, dtype=weight.dtype)
        self._ext.grad_per_sample_weights(
            make_problem(self._ext, batch, weight.dtype),
            self._launch(batch, weight.device),
            ptr(grad_out),
            ptr(weight),
            ptr(grad),
        )
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
        update = make_update(self._ext, optimizer, weight, state, step)
        self._backward(grad_out, weight, batch, update)
