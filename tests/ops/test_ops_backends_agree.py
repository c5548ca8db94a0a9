"""Every fast backend against `reference` (the spec): forward, plain backward and each fused
optimizer, over shapes (edge cases included), pooling, index and weight dtypes, and
per-sample weights. One test family for all backends."""

from __future__ import annotations

import pytest
import torch
from embedding_cases import CASES, interpret_triton, make_inputs, make_pair, summation_tolerance

from ops.backends import get_kernels
from ops.config import OPTIMIZERS

# Triton runs in its interpreter on a machine without a GPU; conftest.py marks all but a small
# subset of its (slow, interpreted) cases `slow`.
BACKENDS = [pytest.param("cpu"), pytest.param("cuda", marks=pytest.mark.gpu), pytest.param("triton")]

pytestmark = [
    pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES]),
    pytest.mark.parametrize("pooling", ["sum", "mean"]),
]

VARIANTS = pytest.mark.parametrize(
    "index_dtype, dtype, weighted",
    [
        (i, d, w)
        for i in (torch.int32, torch.int64)
        for d in (torch.float32, torch.float64)
        for w in (False, True)
    ],
    ids=lambda v: {
        torch.int32: "int32",
        torch.int64: "int64",
        torch.float32: "f32",
        torch.float64: "f64",
        False: "unweighted",
        True: "weighted",
    }[v],
)


@pytest.fixture(params=BACKENDS)
def backend(request, monkeypatch) -> str:
    if request.param == "cuda" and not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    if request.param == "triton":
        pytest.importorskip("triton")
        if not torch.cuda.is_available():
            interpret_triton(monkeypatch)
    get_kernels(request.param)  # a backend that should exist here but does not is a failure
    return request.param


@pytest.fixture
def device(backend) -> str:
    return "cuda" if backend == "cuda" or (backend == "triton" and torch.cuda.is_available()) else "cpu"


@VARIANTS
def test_forward_matches_reference(backend, device, case, pooling, index_dtype, dtype, weighted):
    ours, ref = make_pair(case, backend, pooling=pooling, dtype=dtype, device=device)
    x = make_inputs(case, index_dtype=index_dtype, weight_dtype=dtype, weighted=weighted, device=device)

    out = ours(x.indices, x.offsets, x.per_sample_weights)

    assert out.shape == (case.batch_size, sum(case.dims))
    torch.testing.assert_close(
        out, ref(x.indices, x.offsets, x.per_sample_weights), **summation_tolerance(case, dtype)
    )


@VARIANTS
def test_plain_backward_matches_reference(backend, device, case, pooling, index_dtype, dtype, weighted):
    ours, ref = make_pair(case, backend, pooling=pooling, dtype=dtype, device=device)
    x = make_inputs(case, index_dtype=index_dtype, weight_dtype=dtype, weighted=weighted, device=device)
    grad_out = torch.randn(case.batch_size, sum(case.dims), dtype=dtype).to(device)
    psw_grads = []
    for module in (ours, ref):
        psw = None if x.per_sample_weights is None else x.per_sample_weights.clone().requires_grad_()
        (module(x.indices, x.offsets, psw) * grad_out).sum().backward()
        psw_grads.append(None if psw is None else psw.grad)

    torch.testing.assert_close(ours.weight.grad, ref.weight.grad, **summation_tolerance(case, dtype))
    torch.testing.assert_close(psw_grads[0], psw_grads[1], **summation_tolerance(case, dtype))


@VARIANTS
@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_fused_optimizer_matches_reference_over_steps(
    backend, device, case, pooling, index_dtype, dtype, weighted, optimizer
):
    ours, ref = make_pair(
        case, backend, pooling=pooling, optimizer=optimizer, dtype=dtype, device=device, lr=0.05
    )
    for step in range(3):
        x = make_inputs(
            case, seed=step, index_dtype=index_dtype, weight_dtype=dtype, weighted=weighted, device=device
        )
        grad_out = torch.randn(case.batch_size, sum(case.dims), dtype=dtype).to(device)
        for module in (ours, ref):
            (module(x.indices, x.offsets, x.per_sample_weights) * grad_out).sum().backward()

    assert ours.weight.grad is None
    torch.testing.assert_close(ours.state_dict(), ref.state_dict(), **summation_tolerance(case, dtype))
