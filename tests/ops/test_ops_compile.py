"""The plain-gradient operator is a torch.library custom op: its schema, fake implementation
and autograd registration pass torch's own checks, and torch.compile traces the module in one
graph with the same results as eager."""

from __future__ import annotations

import pytest
import torch
from embedding_cases import CASES, make_inputs

from ops import FusedEmbeddingBag, embedding_bag
from ops.library import embedding_bag_op, grad_per_sample_weights_op, grad_weight_op

MIXED = CASES[0]
BACKENDS = ["reference", "cpu"]
GPU_BACKENDS = [pytest.param(b, marks=pytest.mark.gpu) for b in ("cuda", "triton")]


def _device(backend: str) -> str:
    return "cuda" if backend in ("cuda", "triton") else "cpu"


def _bags(backend: str, **kwargs) -> tuple[FusedEmbeddingBag, FusedEmbeddingBag]:
    torch.manual_seed(0)
    device = _device(backend)
    eager = FusedEmbeddingBag(list(MIXED.rows), list(MIXED.dims), backend=backend, device=device, **kwargs)
    compiled = FusedEmbeddingBag(list(MIXED.rows), list(MIXED.dims), backend=backend, device=device, **kwargs)
    compiled.load_state_dict(eager.state_dict())
    return eager, compiled


def _loss_and_grads(bag, seed: int, compile_kwargs: dict | None = None):
    x = make_inputs(MIXED, seed=seed, weighted=True, device=str(bag.weight.device))
    psw = x.per_sample_weights.requires_grad_()

    def loss(indices, offsets, per_sample_weights):
        return (bag(indices, offsets, per_sample_weights).tanh() ** 2).sum()

    fn = loss if compile_kwargs is None else torch.compile(loss, **compile_kwargs)
    value = fn(x.indices, x.offsets, psw)
    value.backward()
    return value.detach(), bag.weight.grad, psw.grad


def _op_arguments(op, backend: str) -> tuple:
    x = make_inputs(MIXED, weighted=True)
    weight = torch.randn(sum(r * d for r, d in zip(MIXED.rows, MIXED.dims, strict=True)))
    tables = (list(MIXED.rows), list(MIXED.dims), True, backend)  # ..., mean, backend
    if op is embedding_bag_op:
        psw = x.per_sample_weights.requires_grad_()
        return (weight.requires_grad_(), x.indices, x.offsets, psw, *tables, "raise")
    grad_out = torch.randn(MIXED.batch_size, sum(MIXED.dims))
    return (grad_out, weight, x.indices, x.offsets, x.per_sample_weights, *tables)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "op",
    [embedding_bag_op, grad_weight_op, grad_per_sample_weights_op],
    ids=["forward", "grad_weight", "grad_per_sample_weights"],
)
def test_custom_ops_pass_torch_library_opcheck(backend, op):
    torch.library.opcheck(op, _op_arguments(op, backend))


@pytest.mark.parametrize("backend", [*BACKENDS, *GPU_BACKENDS])
def test_compiled_module_traces_in_one_graph_and_matches_eager(backend):
    if _device(backend) == "cuda" and not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    if backend == "triton":
        pytest.importorskip("triton")
    eager, compiled = _bags(backend)

    expected = _loss_and_grads(eager, seed=0)
    got = _loss_and_grads(compiled, seed=0, compile_kwargs={"fullgraph": True, "backend": "aot_eager"})

    torch.testing.assert_close(got, expected)


def test_compiled_module_handles_a_new_batch_shape_without_errors():
    eager, compiled = _bags("cpu")
    kwargs = {"fullgraph": True, "backend": "aot_eager", "dynamic": True}

    for seed in (0, 1, 2):  # bag lengths, hence the number of indices, change with the seed
        compiled.weight.grad = eager.weight.grad = None
        torch.testing.assert_close(_loss_and_grads(compiled, seed, kwargs), _loss_and_grads(eager, seed))


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_inductor_compiled_module_matches_eager(backend):
    eager, compiled = _bags(backend)

    expected = _loss_and_grads(eager, seed=0)
    got = _loss_and_grads(compiled, seed=0, compile_kwargs={"fullgraph": True})

    torch.testing.assert_close(got, expected)


def test_bad_input_fails_tracing_with_the_eager_error_message():
    bag = FusedEmbeddingBag([10, 5], [4, 3], backend="cpu")
    compiled = torch.compile(bag, fullgraph=True, backend="aot_eager")

    with pytest.raises(Exception, match=r"indices must be int32 or int64; got torch.float32"):
        compiled(torch.tensor([1.0, 2.0]), torch.tensor([0, 1, 2]))


def test_out_of_range_index_raises_from_the_compiled_module():
    bag = FusedEmbeddingBag([10, 5], [4, 3], backend="cpu")
    compiled = torch.compile(bag, fullgraph=True, backend="aot_eager")

    with pytest.raises(IndexError, match=r"indices\[1\] = 7 is out of range for table 1"):
        compiled(torch.tensor([1, 7]), torch.tensor([0, 1, 2]))


def test_fused_optimizer_mode_under_compile_runs_eagerly_with_the_same_update():
    eager, compiled = _bags("cpu", optimizer="rowwise_adagrad", lr=0.1)
    x = make_inputs(MIXED)

    eager(x.indices, x.offsets).sum().backward()
    torch.compile(compiled, backend="aot_eager")(x.indices, x.offsets).sum().backward()

    torch.testing.assert_close(compiled.state_dict(), eager.state_dict(), rtol=0, atol=0)


def test_functional_form_equals_the_module():
    bag = FusedEmbeddingBag(list(MIXED.rows), list(MIXED.dims), pooling="mean", backend="cpu")
    x = make_inputs(MIXED, weighted=True)

    out = embedding_bag(
        bag.weight,
        x.indices,
        x.offsets,
        x.per_sample_weights,
        num_embeddings=list(MIXED.rows),
        embedding_dims=list(MIXED.dims),
        pooling="mean",
        backend="cpu",
    )

    torch.testing.assert_close(out, bag(x.indices, x.offsets, x.per_sample_weights), rtol=0, atol=0)


def test_functional_form_rejects_a_flat_weight_of_the_wrong_size():
    with pytest.raises(ValueError, match=r"weight must be the flat 1-D weight of all tables \(55 values\)"):
        embedding_bag(
            torch.zeros(54),
            torch.tensor([1]),
            torch.tensor([0, 1, 1]),
            num_embeddings=[10, 5],
            embedding_dims=[4, 3],
        )
