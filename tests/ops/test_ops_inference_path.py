"""Calls that record no autograd graph skip the custom op's dispatch and pool the same bags."""

from __future__ import annotations

import pytest
import torch

from ops import FusedEmbeddingBag

INDICES = torch.tensor([1, 2, 4, 0, 3, 3, 5])
WEIGHTS = torch.tensor([0.5, 2.0, 1.0, -1.0, 3.0, 0.25, 1.5])


def dispatched_ops(call) -> list[str]:
    with torch.profiler.profile() as profile:
        call()
    return [event.name for event in profile.events() if event.name.startswith("recforge::")]


@pytest.mark.parametrize("backend", ["reference", "cpu"])
@pytest.mark.parametrize("pooling", ["sum", "mean"])
@pytest.mark.parametrize("weighted", [False, True], ids=["plain", "weighted"])
def test_inference_pools_what_the_op_pools(backend, pooling, weighted):
    torch.manual_seed(0)
    bag = FusedEmbeddingBag([10, 6], [4, 3], backend=backend, pooling=pooling)
    offsets = torch.tensor([0, 2, 2, 4, 7])
    psw = WEIGHTS if weighted else None
    by_op = bag(INDICES, offsets, psw)
    assert by_op.requires_grad
    with torch.inference_mode():
        fast = bag(INDICES, offsets, psw)
    with torch.no_grad():
        no_grad = bag(INDICES, offsets, psw)
    torch.testing.assert_close(fast, by_op.detach(), rtol=0, atol=0)
    torch.testing.assert_close(no_grad, by_op.detach(), rtol=0, atol=0)


def test_only_calls_that_record_a_graph_go_through_the_custom_op():
    bag = FusedEmbeddingBag([10, 6], [4, 3], backend="cpu")
    offsets = torch.tensor([0, 2, 2, 4, 7])
    assert dispatched_ops(lambda: bag(INDICES, offsets)) == ["recforge::embedding_bag"]
    with torch.inference_mode():
        assert dispatched_ops(lambda: bag(INDICES, offsets)) == []
    bag.weight.requires_grad_(False)
    psw = WEIGHTS.clone().requires_grad_()
    assert dispatched_ops(lambda: bag(INDICES, offsets, psw)) == ["recforge::embedding_bag"]
    assert dispatched_ops(lambda: bag(INDICES, offsets)) == []
