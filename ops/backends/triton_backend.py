"""The Triton backend: ops/triton_kernels.py on CUDA tensors, or on CPU tensors in Triton's
interpreter (TRITON_INTERPRET=1). Backward walks rows grouped by a stable torch sort."""

from __future__ import annotations

import importlib.util
import math
import os

import torch

from ops.backends.device_inputs import layout_tensor, row_segments
from ops.backends.reference import first_invalid_index
from ops.batch import Batch
from ops.config import OptimizerConfig

_FORWARD_BLOCK = 256


def interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET") == "1"


def triton_problem() -> str:
    """Why Triton cannot run here ("" if it can)."""
    if importlib.util.find_spec("triton") is None:
        return "triton is not installed (pip install 'recforge[triton]')"
    if not (interpreting() or torch.cuda.is_available()):
        return "triton needs a CUDA device (or TRITON_INTERPRET=1 for its CPU interpreter)"
    return ""


def _kernels():
    from ops import triton_kernels

    return triton_kernels


def triton_block(dim: int) -> int:
    """The power of two covering `dim` columns."""
    return 1 << max(0, math.ceil(math.log2(dim)))


class TritonKernels:
    name = "triton"

    def unsupported(self, device: torch.device, dtype: torch.dtype) -> str:
        if dtype not in (torch.float32, torch.float64):
            return f"it supports float32 and float64 weights; got {dtype}"
        if device.type == "cuda" or (device.type == "cpu" and interpreting()):
            return ""
        return f"it runs on CUDA tensors (CPU tensors only with TRITON_INTERPRET=1); got {device}"

    def forward(self, weight: torch.Tensor, batch: Batch) -> torch.Tensor:
        layout, B = batch.layout, batch.batch_size
        out = weight.new_empty(B, layout.total_dim)
        if B == 0:
            return out
        block = min(triton_block(max(layout.embedding_dims)), _FORWARD_BLOCK)
        grid = (layout.num_tables * B, math.ceil(max(layout.embedding_dims) / block))
        psw = batch.per_sample_weights
        _kernels().forward_kernel[grid](
            batch.indices,
            batch.offsets,
            weight if psw is None else psw,
            weight,
            out,
            layout_tensor(layout, weight.device),
            layout.num_tables,
            B,
            layout.total_dim,
            batch.num_indices,
            HAS_PSW=psw is not None,
            MEAN=batch.mean,
            BLOCK_D=block,
        )
        return out

    def first_invalid_index(self, batch: Batch) -> int:
        return first_invalid_index(batch)

    def grad_per_sample_weights(
        self, grad_out: torch.Tensor, weight: torch.Tensor, batch: Batch
    ) -> torch.Tensor:
        layout, B = batch.layout, batch.batch_size
        grad = torch.zeros_like(batch.indices, dtype=weight.dtype)
        if B == 0:
            return grad
        _kernels().psw_grad_kernel[(layout.num_tables * B,)](
            batch.indices,
            batch.offsets,
            grad_out,
            weight,
            grad,
            layout_tensor(layout, weight.device),
            layout.num_tables,
            B,
            layout.total_dim,
            batch.num_indices,
            MEAN=batch.mean,
            BLOCK_D=triton_block(max(layout.embedding_dims)),
        )
        return grad

    def _backward(
        self,
        grad_out: torch.Tensor,
        batch: Batch,
        target: torch.Tensor,
        update: str,
        optimizer: OptimizerConfig | None = None,
        state: dict[str, torch.Tensor] | None = None,
        step: int = 0,
    ) -> None:
        layout = batch.layout
        segments = row_segments(batch)
        if segments.num_segments == 0:
            return
        state = state or {}
        lr, eps = (optimizer.lr, optimizer.eps) if optimizer else (0.0, 0.0)
        beta1, beta2 = optimizer.betas if optimizer else (0.0, 0.0)
        psw = batch.per_sample_weights
        kernels = _kernels()
        kernels.backward_kernel[(segments.num_segments,)](
            segments.positions,
            segments.begin,
            segments.row,
            segments.bag_of_position,
            target if psw is None else psw,
            batch.offsets,
            grad_out,
            target,
            state.get("momentum1", target),
            state.get("momentum2", target),
            layout_tensor(layout, target.device),
            layout.num_tables,
            batch.batch_size,
            layout.total_dim,
            layout.total_rows,
            batch.num_indices,
            torch.tensor(
                [lr, eps, beta1, beta2, 1.0 - beta1, 1.0 - beta2, 1.0 - beta1**step, 1.0 - beta2**step],
                dtype=target.dtype,
                device=target.device,
            ),
            HAS_PSW=psw is not None,
            MEAN=batch.mean,
            UPDATE=kernels.UPDATES[update],
            BLOCK_D=triton_block(max(layout.embedding_dims)),
        )

    def grad_weight(self, grad_out: torch.Tensor, weight: torch.Tensor, batch: Batch) -> torch.Tensor:
        grad = torch.zeros_like(weight)
        self._backward(grad_out, batch, grad, "gradient")
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
        self._backward(grad_out, batch, weight, optimizer.name, optimizer, state, step)
