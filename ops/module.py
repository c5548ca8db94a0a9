"""FusedEmbeddingBag: many embedding tables pooled in one call, optionally with the optimizer
fused into backward (FBGEMM's table-batched embedding, in the issue-3 interface)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from ops.autograd import fused_embedding_bag
from ops.backends import get_kernels, resolve
from ops.backends.base import Kernels
from ops.batch import Batch
from ops.bounds import check_values
from ops.config import BACKENDS, BOUNDS_CHECKS, OPTIMIZERS, POOLINGS, OptimizerConfig, choice
from ops.layout import TableLayout
from ops.library import embedding_bag_op, pooled, prepare


class FusedEmbeddingBag(nn.Module):
    """Tables t = 0..T-1 of shape [num_embeddings[t], embedding_dims[t]] in one flat weight.

    `forward(indices, offsets)` pools bag (t, b) = indices[offsets[t*B+b]:offsets[t*B+b+1]]
    (offsets table-major, T*B+1 entries) and returns [B, sum(embedding_dims)], table t in its
    own block of columns; "mean" divides a bag's (weighted) sum by its length, and an empty
    bag pools to zeros. With `optimizer` set, backward updates the touched rows in place
    (no gradient is stored in `weight.grad`); the optimizer state lives in buffers, so
    `state_dict()` saves and restores it. Out-of-range indices raise (`bounds_check="raise"`),
    warn and contribute zero ("warn"), or silently contribute zero ("off").

    Without an optimizer the module calls the custom op `recforge::embedding_bag`
    (ops/library.py), so `torch.compile(..., fullgraph=True)` traces it; the fused-optimizer
    mode runs eagerly under torch.compile (a graph break).
    """

    def __init__(
        self,
        num_embeddings: Sequence[int],
        embedding_dims: Sequence[int],
        pooling: str = "sum",
        backend: str = "auto",
        optimizer: str | None = None,
        lr: float = 0.01,
        eps: float = 1e-8,
        *,
        betas: tuple[float, float] = (0.9, 0.999),
        bounds_check: str = "raise",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.layout = TableLayout(num_embeddings, embedding_dims)
        self.pooling = choice("pooling", pooling, POOLINGS)
        self.backend = choice("backend", backend, BACKENDS)
        if backend != "auto":
            get_kernels(backend)  # fail now, with the reason, if it is not built here
        if optimizer is not None and optimizer not in OPTIMIZERS:
            allowed = ", ".join(repr(o) for o in OPTIMIZERS)
            raise ValueError(
                f"optimizer must be None (plain gradients) or one of {allowed}; got {optimizer!r}"
            )
        self.optimizer = None if optimizer is None else OptimizerConfig(optimizer, lr, eps, betas)
        self.bounds_check = choice("bounds_check", bounds_check, BOUNDS_CHECKS)
        dtype = torch.get_default_dtype() if dtype is None else dtype
        if not dtype.is_floating_point:
            raise ValueError(f"dtype must be a floating-point dtype; got {dtype}")

        self.weight = nn.Parameter(torch.empty(self.layout.num_weights, device=device, dtype=dtype))
        if self.optimizer is not None:
            sizes = self.optimizer.state_sizes(self.layout.num_weights, self.layout.total_rows)
            for name, size in sizes.items():
                self.register_buffer(name, torch.zeros(size, device=device, dtype=dtype))
            if self.optimizer.name == "adam":
                self.register_buffer("step", torch.zeros(1, device=device, dtype=torch.int64))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Table t ~ U(-sqrt(1/D_t), sqrt(1/D_t)) from torch's RNG, in table order; state zeroed."""
        with torch.no_grad():
            for t, dim in enumerate(self.layout.embedding_dims):
                bound = math.sqrt(1.0 / dim)
                self.table(t).uniform_(-bound, bound)
            for buffer in self.buffers():
                buffer.zero_()

    def table(self, t: int) -> torch.Tensor:
        """The weights of table t: a [num_embeddings[t], embedding_dims[t]] view of `weight`."""
        layout = self.layout
        t = layout.check_table(t)
        a, b = layout.weight_offsets[t], layout.weight_offsets[t + 1]
        return self.weight[a:b].view(layout.num_embeddings[t], layout.embedding_dims[t])

    def kernels(self) -> Kernels:
        """The backend that runs for the weights' current device and dtype."""
        return resolve(self.backend, self.weight.device, self.weight.dtype)

    def forward(
        self,
        indices: torch.Tensor,
        offsets: torch.Tensor,
        per_sample_weights: torch.Tensor | None = None,
    ) -> torch.Tensor:
        static = (
            list(self.layout.num_embeddings),
            list(self.layout.embedding_dims),
            self.pooling == "mean",
            self.backend,
        )
        if self.optimizer is not None:
            return self._fused_forward(indices, offsets, per_sample_weights, static)
        if self._records_no_graph(per_sample_weights):
            # the custom op's dispatch costs more than a serving-sized lookup itself
            return pooled(self.weight, indices, offsets, per_sample_weights, *static, self.bounds_check)
        return embedding_bag_op(
            self.weight, indices, offsets, per_sample_weights, *static, self.bounds_check
        )

    def _records_no_graph(self, per_sample_weights: torch.Tensor | None) -> bool:
        """Whether this call needs no autograd graph and is not being traced by torch.compile."""
        if torch.compiler.is_compiling():
            return False
        if not torch.is_grad_enabled():
            return True
        wants_grad = self.weight.requires_grad or (
            per_sample_weights is not None and per_sample_weights.requires_grad
        )
        return not wants_grad

    # The fused update mutates the weight and the optimizer state in backward: torch.compile
    # runs this part eagerly (one graph break) instead of tracing it.
    @torch.compiler.disable
    def _fused_forward(
        self,
        indices: torch.Tensor,
        offsets: torch.Tensor,
        per_sample_weights: torch.Tensor | None,
        static: tuple[list[int], list[int], bool, str],
    ) -> torch.Tensor:
        kernels, batch = prepare(self.weight, indices, offsets, per_sample_weights, *static)
        check_values(kernels, batch, self.bounds_check)
        return fused_embedding_bag(kernels, self.weight, batch, self._fused_step)

    def _fused_step(
        self, kernels: Kernels, grad_out: torch.Tensor, weight: torch.Tensor, batch: Batch
    ) -> None:
        step = 0
        if self.optimizer.name == "adam":
            self.step += 1
            step = int(self.step)
        state = {name: buffer for name, buffer in self.named_buffers() if name != "step"}
        kernels.fused_update(grad_out, weight, batch, self.optimizer, state, step)

    def extra_repr(self) -> str:
        optimizer = "None" if self.optimizer is None else repr(self.optimizer.name)
        return (
            f"num_embeddings={list(self.layout.num_embeddings)}, "
            f"embedding_dims={list(self.layout.embedding_dims)}, pooling={self.pooling!r}, "
            f"backend={self.backend!r}, optimizer={optimizer}, bounds_check={self.bounds_check!r}"
        )
