"""Weights and optimizer state round-trip through safetensors (no pickle)."""

from __future__ import annotations

import pytest
import torch
from embedding_cases import CASES, make_inputs
from safetensors.torch import load_file, save_file

from ops import FusedEmbeddingBag

MIXED = CASES[0]


def _train_step(bag: FusedEmbeddingBag, seed: int) -> None:
    x = make_inputs(MIXED, seed=seed)
    grad_out = torch.randn(MIXED.batch_size, sum(MIXED.dims), generator=torch.Generator().manual_seed(seed))
    (bag(x.indices, x.offsets) * grad_out).sum().backward()


def _bag(optimizer: str | None) -> FusedEmbeddingBag:
    return FusedEmbeddingBag(list(MIXED.rows), list(MIXED.dims), optimizer=optimizer, lr=0.05)


@pytest.mark.parametrize("optimizer", [None, "sgd", "adagrad", "rowwise_adagrad", "adam"])
def test_safetensors_round_trip_restores_weights_and_optimizer_state(tmp_path, optimizer):
    original = _bag(optimizer)
    _train_step(original, seed=0)
    save_file(original.state_dict(), tmp_path / "bag.safetensors")

    restored = _bag(optimizer)
    restored.load_state_dict(load_file(tmp_path / "bag.safetensors"))
    for bag in (original, restored):
        _train_step(bag, seed=1)

    torch.testing.assert_close(restored.state_dict(), original.state_dict(), rtol=0, atol=0)


@pytest.mark.parametrize(
    "optimizer, keys",
    [
        (None, {"weight"}),
        ("sgd", {"weight"}),
        ("adagrad", {"weight", "momentum1"}),
        ("rowwise_adagrad", {"weight", "momentum1"}),
        ("adam", {"weight", "momentum1", "momentum2", "step"}),
    ],
)
def test_state_dict_holds_the_weight_and_the_optimizer_state(optimizer, keys):
    bag = _bag(optimizer)

    assert set(bag.state_dict()) == keys
    if optimizer == "rowwise_adagrad":
        assert bag.momentum1.shape == (sum(MIXED.rows),)
