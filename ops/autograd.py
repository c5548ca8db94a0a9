"""Fused-optimizer mode: forward pools, backward updates the touched rows (and the optimizer
state) in place and returns no gradient for the weight. Plain-gradient mode is the custom op of
ops/library.py, which torch.compile traces; this mode mutates module state in backward and runs
eagerly."""

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
    fused_step: FusedStep


class _FusedEmbeddingBagFunction(torch.autograd.Function):
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
        grad_psw = None
        if ctx.needs_input_grad[1]:
            # Before the fused update: it reads the rows as they were in forward.
            grad_psw = call.kernels.grad_per_sample_weights(grad_out, ctx.weight, call.batch)
        call.fused_step(call.kernels, grad_out, ctx.weight, call.batch)
        return None, grad_psw, None


def fused_embedding_bag(
    kernels: Kernels, weight: torch.Tensor, batch: Batch, fused_step: FusedStep
) -> torch.Tensor:
    """Pooled bags [B, total_dim]; backward runs `fused_step` and differentiates only
    `batch.per_sample_weights`."""
    call = _Call(kernels, batch, fused_step)
    return _FusedEmbeddingBagFunction.apply(weight, batch.per_sample_weights, call)
