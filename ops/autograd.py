"""The autograd function shared by every backend: forward pools, backward either returns the
flat weight's gradient or (fused mode) updates the touched rows in place and returns none."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch.autograd.function import once_differentiable

from ops.backends.base import Kernels
from ops.batch import Batch

# fused update: (kernels, grad_out, weight, batch) -> None
FusedStep = Callable[[Kernels, torch.Tensor, torch.Tensor, Batch], None]


@dataclass(frozen=True)
class _Call:
    kernels: Kernels
    batch: Batch
    fused_step: FusedStep | None


class _EmbeddingBagFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, weight, per_sample_weights, call: _Call):  # noqa: ARG004
        ctx.call = call
        # Kept by reference, not saved: the fused update changes it in place during backward.
        ctx.weight = weight
        return call.kernels.forward(weight, call.batch)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        call: _Call = ctx.call
        grad_out = grad_out.contiguous()
        weight = ctx.weight
        grad_psw = None
        if ctx.needs_input_grad[1]:
            # Before any fused update: it reads the rows as they were in forward.
            grad_psw = call.kernels.grad_per_sample_weights(grad_out, weight, call.batch)
        grad_weight = None
        if call.fused_step is not None:
            call.fused_step(call.kernels, grad_out, weight, call.batch)
        elif ctx.needs_input_grad[0]:
            grad_weight = call.kernels.grad_weight(grad_out, weight, call.batch)
        return grad_weight, grad_psw, None


def embedding_bag(
    kernels: Kernels, weight: torch.Tensor, batch: Batch, fused_step: FusedStep | None
) -> torch.Tensor:
    """Pooled bags [B, total_dim], differentiable in `weight` and `batch.per_sample_weights`."""
    return _EmbeddingBagFunction.apply(weight, batch.per_sample_weights, _Call(kernels, batch, fused_step))
