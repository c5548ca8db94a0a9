"""The operator as `torch.library` custom ops, so that `torch.compile` traces it as one node.

`recforge::embedding_bag` pools (plain-gradient mode); its autograd formula calls
`recforge::embedding_bag_grad_weight` and `recforge::embedding_bag_grad_per_sample_weights`.
Each has a fake implementation that checks what can be checked without values (types, shapes,
devices, backend) and allocates the output, so tracing fails with the same errors as eager.
Tables are described by plain int lists, which the compiler treats as constants.
"""

from functools import lru_cache

import torch
from torch import Tensor

from ops.backends import resolve
from ops.backends.base import Kernels
from ops.batch import Batch, make_batch
from ops.bounds import check_values
from ops.config import BACKENDS, BOUNDS_CHECKS, POOLINGS, choice
from ops.layout import TableLayout


def prepare(
    weight: Tensor,
    indices: Tensor,
    offsets: Tensor,
    per_sample_weights: Tensor | None,
    num_embeddings: list[int],
    embedding_dims: list[int],
    mean: bool,
    backend: str,
) -> tuple[Kernels, Batch]:
    """The backend to run and the checked batch (types, devices, shapes; not values)."""
    layout = _layout(tuple(num_embeddings), tuple(embedding_dims))
    if weight.dim() != 1 or weight.numel() != layout.num_weights:
        raise ValueError(
            f"weight must be the flat 1-D weight of all tables ({layout.num_weights} values); "
            f"got shape {tuple(weight.shape)}"
        )
    if not weight.is_contiguous():
        raise ValueError("weight must be contiguous; pass weight.contiguous()")
    kernels = resolve(backend, weight.device, weight.dtype)
    return kernels, make_batch(layout, weight, indices, offsets, per_sample_weights, mean)


@lru_cache(maxsize=64)
def _layout(num_embeddings: tuple[int, ...], embedding_dims: tuple[int, ...]) -> TableLayout:
    """Checked once per set of tables, not at every call."""
    return TableLayout(num_embeddings, embedding_dims)


def pooled(
    weight: Tensor,
    indices: Tensor,
    offsets: Tensor,
    per_sample_weights: Tensor | None,
    num_embeddings: list[int],
    embedding_dims: list[int],
    mean: bool,
    backend: str,
    bounds_check: str,
) -> Tensor:
    """The pooled bags: `recforge::embedding_bag`'s forward, callable without the op's dispatch
    where no autograd graph is recorded (inference)."""
    kernels, batch = prepare(
        weight, indices, offsets, per_sample_weights, num_embeddings, embedding_dims, mean, backend
    )
    check_values(kernels, batch, bounds_check)
    return kernels.forward(weight, batch)


embedding_bag_op = torch.library.custom_op("recforge::embedding_bag", mutates_args=())(pooled)


@embedding_bag_op.register_fake
def _(weight, indices, offsets, per_sample_weights, num_embeddings, embedding_dims, mean, backend, _bounds):
    _, batch = prepare(
        weight, indices, offsets, per_sample_weights, num_embeddings, embedding_dims, mean, backend
    )
    return weight.new_empty(batch.batch_size, batch.layout.total_dim)


@torch.library.custom_op("recforge::embedding_bag_grad_weight", mutates_args=())
def grad_weight_op(
    grad_out: Tensor,
    weight: Tensor,
    indices: Tensor,
    offsets: Tensor,
    per_sample_weights: Tensor | None,
    num_embeddings: list[int],
    embedding_dims: list[int],
    mean: bool,
    backend: str,
) -> Tensor:
    kernels, batch = prepare(
        weight, indices, offsets, per_sample_weights, num_embeddings, embedding_dims, mean, backend
    )
    return kernels.grad_weight(grad_out.contiguous(), weight, batch)


@grad_weight_op.register_fake
def _(grad_out, weight, indices, offsets, per_sample_weights, num_embeddings, embedding_dims, mean, backend):
    return torch.empty_like(weight)


@torch.library.custom_op("recforge::embedding_bag_grad_per_sample_weights", mutates_args=())
def grad_per_sample_weights_op(
    grad_out: Tensor,
    weight: Tensor,
    indices: Tensor,
    offsets: Tensor,
    per_sample_weights: Tensor,
    num_embeddings: list[int],
    embedding_dims: list[int],
    mean: bool,
    backend: str,
) -> Tensor:
    kernels, batch = prepare(
        weight, indices, offsets, per_sample_weights, num_embeddings, embedding_dims, mean, backend
    )
    return kernels.grad_per_sample_weights(grad_out.contiguous(), weight, batch)


@grad_per_sample_weights_op.register_fake
def _(grad_out, weight, indices, offsets, per_sample_weights, num_embeddings, embedding_dims, mean, backend):
    return torch.empty_like(per_sample_weights)


def _setup_context(ctx, inputs, output) -> None:  # noqa: ARG001
    weight, indices, offsets, per_sample_weights, *static, _bounds_check = inputs
    ctx.save_for_backward(weight, indices, offsets, per_sample_weights)
    ctx.static = static  # num_embeddings, embedding_dims, mean, backend


def _backward(ctx, grad_out):
    weight, indices, offsets, per_sample_weights = ctx.saved_tensors
    grad_weight = grad_psw = None
    if ctx.needs_input_grad[0]:
        grad_weight = grad_weight_op(grad_out, weight, indices, offsets, per_sample_weights, *ctx.static)
    if ctx.needs_input_grad[3]:
        grad_psw = grad_per_sample_weights_op(
            grad_out, weight, indices, offsets, per_sample_weights, *ctx.static
        )
    return grad_weight, None, None, grad_psw, None, None, None, None, None


embedding_bag_op.register_autograd(_backward, setup_context=_setup_context)


def embedding_bag(
    weight: Tensor,
    indices: Tensor,
    offsets: Tensor,
    per_sample_weights: Tensor | None = None,
    *,
    num_embeddings: list[int],
    embedding_dims: list[int],
    pooling: str = "sum",
    backend: str = "auto",
    bounds_check: str = "raise",
) -> Tensor:
    """The functional form of FusedEmbeddingBag in plain-gradient mode: `weight` is the flat
    weight of all tables (table t row-major after tables 0..t-1), the other arguments as in
    FusedEmbeddingBag. Differentiable in `weight` and `per_sample_weights`."""
    return embedding_bag_op(
        weight,
        indices,
        offsets,
        per_sample_weights,
        list(num_embeddings),
        list(embedding_dims),
        choice("pooling", pooling, POOLINGS) == "mean",
        choice("backend", backend, BACKENDS),
        choice("bounds_check", bounds_check, BOUNDS_CHECKS),
    )
