"""The CUDA backend (ops._cuda): warp-per-bag kernels on raw device pointers, launched on
torch's current stream. Backward groups positions by row with a stable torch sort, so every
row's gradient is summed in position order (deterministic, no atomics)."""

from __future__ import annotations

from types import ModuleType

import torch

from ops.backends.device_inputs import layout_tensor, row_segments
from ops.backends.native import make_problem, make_update, ptr, unsupported_dtype
from ops.backends.reference import first_invalid_index
from ops.batch import Batch
from ops.config import OptimizerConfig


class CudaKernels:
    name = "cuda"

    def __init__(self, extension: ModuleType) -> None:
        self._ext = extension

    def unsupported(self, device: torch.device, dtype: torch.dtype) -> str:
        if device.type != "cuda":
            return f"it runs on CUDA tensors; the weights are on {device}"
        return unsupported_dtype(dtype)

    def _launch(self, batch: Batch, device: torch.device):  # -> ops._cuda.Launch
        stream = torch.cuda.current_stream(device).cuda_stream
        return self._ext.Launch(tables=ptr(layout_tensor(batch.layout, device)), stream=stream)

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
        segments = row_segments(batch)
        self._ext.backward(
            make_problem(self._ext, batch, weight.dtype),
            self._launch(batch, weight.device),
            self._ext.Segments(
                positions=ptr(segments.positions),
                begin=ptr(segments.begin),
                row=ptr(segments.row),
                bag_of_position=ptr(segments.bag_of_position),
                num_segments=segments.num_segments,
            ),
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
