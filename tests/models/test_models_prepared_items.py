"""Scoring against a prepared item table equals scoring the full rows, for every architecture."""

import numpy as np
import pytest
import torch
from test_models_architectures import _model_and_data

from models.architectures import ARCHITECTURES

CASES = [(name, {}) for name in sorted(ARCHITECTURES)] + [
    ("mmoe", {"expert_hidden": (16, 8)}),
    ("ple", {"num_levels": 2, "specific_experts": 2}),
    ("mmoe", {"scenario_feature": "surface"}),
    ("ple", {"scenario_feature": "category"}),
]


def _random_model_and_batch(architecture: str, rows: int, **config) -> tuple:
    """A model in eval mode with random weights everywhere (also the scenario gates that start at
    zero) and a batch of ``rows`` rows: (model, categorical, numeric, text)."""
    model, data, _ = _model_and_data(architecture, **config)
    generator = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.3)
    model.eval()
    return (model, *data.batch(np.arange(rows)))


def _sources(model, kind: str) -> torch.Tensor:
    features = getattr(model.spec, kind)
    return torch.tensor([f.source == "item" for f in features])


@pytest.mark.parametrize(("architecture", "config"), CASES, ids=lambda c: str(c))
def test_prepared_items_score_like_the_full_rows(architecture, config):
    model, categorical, numeric, text = _random_model_and_batch(architecture, 64, **config)
    rows = torch.tensor([5, 0, 63, 5, 17, 40, 2])
    user = 9  # every candidate is seen by the user and in the request of row 9
    item_categorical, item_numeric = _sources(model, "categorical"), _sources(model, "numeric")
    full = (
        torch.where(item_categorical, categorical[rows], categorical[user]),
        torch.where(item_numeric, numeric[rows], numeric[user]),
        text[rows],
    )
    context = (categorical[user : user + 1], numeric[user : user + 1], text[user : user + 1])
    with torch.inference_mode():
        expected = model.predict(*full)
        items = model.prepare_items(categorical, numeric, text)
        first = model.predict_prepared(items, rows, *context)
        again = model.predict_prepared(items, rows, *context)
    assert items.caches[0], "the first layers' outputs are kept with the item table"
    torch.testing.assert_close(first, expected, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(again, first, rtol=0, atol=0)


def test_the_context_rows_item_columns_are_ignored():
    model, categorical, numeric, text = _random_model_and_batch("mmoe", 32)
    rows = torch.arange(32)
    with torch.inference_mode():
        items = model.prepare_items(categorical, numeric, text)
        one = model.predict_prepared(items, rows, categorical[:1], numeric[:1], text[:1])
        other_items = model.predict_prepared(
            items, rows, torch.where(_sources(model, "categorical"), categorical[1], categorical[0])[None],
            torch.where(_sources(model, "numeric"), numeric[1], numeric[0])[None], text[1:2],
        )
    torch.testing.assert_close(one, other_items, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("architecture", "config"), CASES, ids=lambda c: str(c))
def test_requests_scored_together_score_like_each_alone(architecture, config):
    model, categorical, numeric, text = _random_model_and_batch(architecture, 64, **config)
    requests = [(9, torch.tensor([5, 0, 63, 5])), (30, torch.tensor([17])), (2, torch.tensor([40, 2, 7]))]
    users = torch.tensor([user for user, _ in requests])
    lengths = torch.tensor([len(rows) for _, rows in requests])
    with torch.inference_mode():
        items = model.prepare_items(categorical, numeric, text)
        alone = [
            model.predict_prepared(items, rows, categorical[u : u + 1], numeric[u : u + 1], text[u : u + 1])
            for u, rows in requests
        ]
        together = model.predict_prepared(
            items,
            torch.cat([rows for _, rows in requests]),
            categorical[users],
            numeric[users],
            text[users],
            context_rows=torch.repeat_interleave(torch.arange(len(requests)), lengths),
        )
    torch.testing.assert_close(together, torch.cat(alone), rtol=1e-5, atol=1e-6)
