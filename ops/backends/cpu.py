"""The C++ CPU backend (ops._cpu): multithreaded, vectorised kernels on raw pointers."""

from __future__ import annotations

from types import ModuleType

import torch

from ops.backends.native import make_problem, make_update, ptr, unsupported_dtype
from ops.batch import Batch
from ops.config import OptimizerConfig


class CpuKernels:
    name = "cpu"

    def __init__(self, extension: ModuleType) -> None:
        self._ext = extension

    def unsupported(self, device: torch.device, dtype: torch.dtype) -> str:
        if device.type != "cpu":
            return f"it runs on CPU tensors; the weights are on {device}"
        return unsupported_dtype(dtype)

    def forward(self, weight: torch.Tensor, batch: Batch) -> torch.Tensor:
        out = torch.empty(batch.batch_size, batch.layout.total_dim, dtype=weight.dtype)
        problem = make_problem(self._ext, batch, weight.dtype)
        self._ext.forward(problem, ptr(weight), ptr(out), torch.get_num_threads())
        return out

    def first_invalid_index(self, batch: Batch) -> int:
        problem = make_problem(self._ext, batch, torch.float32)  # the check reads no weights
        return self._ext.first_invalid_index(problem, torch.get_num_threads())

    def grad_weight(self, grad_out: torch.Tensor, weight: torch.Tensor, batch: Batch) -> torch.Tensor:
        grad = torch.zeros_like(weight)
        update = self._ext.Update(optimizer="gradient", target=ptr(grad))
        problem = make_problem(self._ext, batch, weight.dtype)
        self._ext.backward(problem, ptr(grad_out), update, torch.get_num_threads())
        return grad

    def grad_per_sample_weights(
        self, grad_out: torch.Tensor, weight: torch.Tensor, batch: Batch
    ) -> torch.Tensor:
        grad = torch.zeros_like(batch.indices, dtype=weight.dtype)
        problem = make_problem(self._ext, batch, weight.dtype)
        self._ext.grad_per_sample_weights(
            problem, ptr(grad_out), ptr(weight), ptr(grad), torch.get_num_threads()
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
        problem = make_problem(self._ext, batch, weight.dtype)
        self._ext.backward(problem, ptr(grad_out), update, torch.get_num_threads())
