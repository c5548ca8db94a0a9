"""Bad arguments and bad inputs get clear errors naming what is wrong; out-of-range indices
raise, warn or are ignored as bounds_check says, identically on every backend."""

from __future__ import annotations

import contextlib
import warnings

import pytest
import torch

from ops import BackendUnavailableError, FusedEmbeddingBag, IndexOutOfRangeError


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"pooling": "max"}, r"pooling must be one of 'sum', 'mean'; got 'max'"),
        ({"backend": "gpu"}, r"backend must be one of 'auto', 'reference', 'cpu', 'cuda', 'triton'"),
        ({"optimizer": "lamb"}, r"optimizer must be None \(plain gradients\) or one of 'sgd'"),
        ({"bounds_check": "clamp"}, r"bounds_check must be one of 'raise', 'warn', 'off'"),
        ({"optimizer": "sgd", "lr": 0.0}, r"lr must be a positive finite float; got 0.0"),
        ({"optimizer": "adagrad", "eps": -1e-8}, r"eps must be a positive finite float"),
        ({"optimizer": "adam", "betas": (0.9, 1.0)}, r"betas must be two floats in \[0, 1\)"),
        ({"dtype": torch.int64}, r"dtype must be a floating-point dtype"),
    ],
)
def test_constructor_rejects_a_bad_option_naming_it(kwargs, message):
    with pytest.raises(ValueError, match=message):
        FusedEmbeddingBag([10, 10], [4, 4], **kwargs)


@pytest.mark.parametrize(
    "num_embeddings, embedding_dims, message",
    [
        ([], [], r"num_embeddings must name at least one table"),
        ([10, 10], [4], r"one entry per table; got 2 and 1"),
        ([10, 0], [4, 4], r"num_embeddings\[1\] must be a positive int; got 0"),
        ([10], [2.5], r"embedding_dims\[0\] must be a positive int; got 2.5"),
    ],
)
def test_constructor_rejects_a_bad_table_layout(num_embeddings, embedding_dims, message):
    with pytest.raises(ValueError, match=message):
        FusedEmbeddingBag(num_embeddings, embedding_dims)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_backend_without_a_gpu_is_refused_with_the_reason():
    with pytest.raises(BackendUnavailableError, match="backend 'cuda' is not available: torch sees"):
        FusedEmbeddingBag([10], [4], backend="cuda")


def test_cpu_backend_refuses_half_precision_weights():
    bag = FusedEmbeddingBag([10], [4], backend="cpu", dtype=torch.float16)

    with pytest.raises(BackendUnavailableError, match="float32 and float64 weights; got torch.float16"):
        bag(torch.tensor([1]), torch.tensor([0, 1]))


def test_auto_falls_back_to_reference_for_dtypes_the_kernels_lack():
    bag = FusedEmbeddingBag([10], [4], backend="auto", dtype=torch.bfloat16)

    assert bag.kernels().name == "reference"
    assert bag(torch.tensor([1]), torch.tensor([0, 1])).dtype == torch.bfloat16


GRAPH_MODES = [
    pytest.param(contextlib.nullcontext, id="autograd"),
    pytest.param(torch.inference_mode, id="inference"),  # no custom-op dispatch: same checks
]


@pytest.mark.parametrize(
    "indices, offsets, psw, error, message",
    [
        (torch.tensor([[1]]), torch.tensor([0, 1, 1]), None, ValueError, r"indices must be 1-D"),
        (
            torch.tensor([1.0]),
            torch.tensor([0, 1, 1]),
            None,
            TypeError,
            r"indices must be int32 or int64; got torch.float32",
        ),
        (
            torch.tensor([1]),
            torch.tensor([0, 1]),
            None,
            ValueError,
            r"offsets must have T\*B\+1 entries \(table-major, T=2 tables\); got 2",
        ),
        (torch.tensor([1, 2]), torch.tensor([1, 1, 2]), None, ValueError, r"offsets\[0\] must be 0; got 1"),
        (
            torch.tensor([1, 2]),
            torch.tensor([0, 1, 1]),
            None,
            ValueError,
            r"offsets\[-1\] must equal len\(indices\) = 2; got 1",
        ),
        (
            torch.tensor([1, 2, 3]),
            torch.tensor([0, 2, 1, 3, 3]),
            None,
            ValueError,
            r"offsets must be non-decreasing; offsets\[1\] = 2 > offsets\[2\] = 1 \(bag table 0, "
            r"sample 1\)",
        ),
        (
            torch.tensor([1, 2]),
            torch.tensor([0, 1, 2]),
            torch.ones(3),
            ValueError,
            r"per_sample_weights must have one weight per index \(2\); got 3",
        ),
        (
            torch.tensor([1, 2]),
            torch.tensor([0, 1, 2]),
            torch.ones(2, dtype=torch.float64),
            TypeError,
            r"per_sample_weights must have the embedding weights' dtype torch.float32",
        ),
    ],
)
@pytest.mark.parametrize("backend", ["reference", "cpu"])
@pytest.mark.parametrize("graph", GRAPH_MODES)
def test_malformed_inputs_get_a_clear_error(backend, graph, indices, offsets, psw, error, message):
    bag = FusedEmbeddingBag([10, 10], [4, 4], backend=backend)

    with graph(), pytest.raises(error, match=message):
        bag(indices, offsets, psw)


# Table 1 (5 rows) gets index 7 at position 3: bag (table 1, sample 0), its 2nd position.
BAD_INDICES = torch.tensor([1, 2, 4, 7, 0])
BAD_OFFSETS = torch.tensor([0, 2, 2, 4, 5])


@pytest.mark.parametrize("backend", ["reference", "cpu"])
@pytest.mark.parametrize("index_dtype", [torch.int32, torch.int64])
@pytest.mark.parametrize("graph", GRAPH_MODES)
def test_out_of_range_index_raises_naming_table_sample_and_position(backend, index_dtype, graph):
    bag = FusedEmbeddingBag([10, 5], [4, 3], backend=backend)

    with graph(), pytest.raises(IndexOutOfRangeError) as raised:
        bag(BAD_INDICES.to(index_dtype), BAD_OFFSETS)

    assert str(raised.value).startswith(
        "indices[3] = 7 is out of range for table 1 (num_embeddings=5; valid 0..4), "
        "in bag (table 1, sample 0) at position 1"
    )


@pytest.mark.parametrize("backend", ["reference", "cpu"])
def test_negative_index_is_out_of_range(backend):
    bag = FusedEmbeddingBag([10], [4], backend=backend)

    with pytest.raises(IndexOutOfRangeError, match=r"indices\[1\] = -1 is out of range for table 0"):
        bag(torch.tensor([3, -1]), torch.tensor([0, 2]))


@pytest.mark.parametrize("backend", ["reference", "cpu"])
def test_warn_mode_warns_and_the_bad_index_contributes_zero(backend):
    torch.manual_seed(0)
    bag = FusedEmbeddingBag([10, 5], [4, 3], backend=backend, bounds_check="warn")
    without_bad = bag(torch.tensor([1, 2, 4, 0]), torch.tensor([0, 2, 2, 3, 4]))

    with pytest.warns(RuntimeWarning, match=r"indices\[3\] = 7 .* it contributes zero"):
        out = bag(BAD_INDICES, BAD_OFFSETS)

    torch.testing.assert_close(out, without_bad)


@pytest.mark.parametrize("backend", ["reference", "cpu"])
def test_off_mode_is_silent_and_the_bad_index_contributes_zero(backend):
    torch.manual_seed(0)
    bag = FusedEmbeddingBag([10, 5], [4, 3], backend=backend, bounds_check="off")
    without_bad = bag(torch.tensor([1, 2, 4, 0]), torch.tensor([0, 2, 2, 3, 4]))

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = bag(BAD_INDICES, BAD_OFFSETS)

    torch.testing.assert_close(out, without_bad)


@pytest.mark.parametrize("backend", ["reference", "cpu"])
def test_out_of_range_index_updates_no_row_in_fused_mode(backend):
    bag = FusedEmbeddingBag([10, 5], [4, 3], backend=backend, optimizer="rowwise_adagrad", bounds_check="off")
    before = bag.weight.detach().clone()

    bag(torch.tensor([-1]), torch.tensor([0, 0, 1])).sum().backward()

    torch.testing.assert_close(bag.weight, before, rtol=0, atol=0)
