"""One request's candidates as a factored input: item rows of a precomputed table plus one context row.

When a user's candidates are scored, every row of the input holds the same user and request
features; only the item columns differ, and those change only when the item table is refreshed.
Row r of the input is ``items[rows[r]] + context``, where ``items`` holds each item's input with the
context columns zeroed and ``context`` the request's input with the item columns zeroed. A linear
layer on it is therefore ``(items·Wᵀ + b)[rows] + context·Wᵀ`` — exact up to float rounding — and
the first factor is computed once per item table and layer. A request's first layers cost a gather
and a one-row product instead of a matrix product over every candidate. Several requests scored
together hold one context row each, and every row says whose it is (``context_rows``).
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import islice

import torch
from torch import nn
from torch.nn import functional


class FactoredInput:
    """Inputs [B, width] of one request or several, stored factored (see the module docstring):
    row r is ``items[rows[r]] + context[context_rows[r]]`` (``context_rows`` None: one context).

    ``cache`` belongs to the item table: it maps the layers read from it to their outputs for
    every item, filled on first use and shared by every request scored against that table.
    """

    def __init__(
        self,
        items: torch.Tensor,
        cache: dict[tuple[int, ...], tuple[torch.Tensor, torch.Tensor]],
        rows: torch.Tensor,
        context: torch.Tensor,
        context_rows: torch.Tensor | None = None,
    ) -> None:
        self.items = items
        self.cache = cache
        self.rows = rows
        self.context = context
        self.context_rows = context_rows

    def __len__(self) -> int:
        return len(self.rows)

    def linear(self, layers: Sequence[nn.Linear]) -> torch.Tensor:
        """The layers' outputs side by side, [B, Σ out_features]."""
        key = tuple(id(layer) for layer in layers)
        cached = self.cache.get(key)
        if cached is None:
            weight, bias = concatenated(layers)
            cached = self.cache[key] = (functional.linear(self.items, weight, bias), weight)
        per_item, weight = cached
        per_context = functional.linear(self.context, weight)
        if self.context_rows is not None:
            per_context = per_context.index_select(0, self.context_rows)
        # index_select, not per_item[rows]: a third of the time for a request's 100 rows
        return per_item.index_select(0, self.rows) + per_context


Input = torch.Tensor | FactoredInput
"""What a body's first layers read: a plain batch, or a factored one at serving time."""


def concatenated(layers: Sequence[nn.Linear]) -> tuple[torch.Tensor, torch.Tensor]:
    """The layers' weights and biases stacked along their outputs."""
    if len(layers) == 1:
        return layers[0].weight, layers[0].bias
    return torch.cat([layer.weight for layer in layers]), torch.cat([layer.bias for layer in layers])


def first_linear(layers: Sequence[nn.Linear], x: Input) -> torch.Tensor:
    """Linear layers that read the same input, outputs side by side (one matrix product)."""
    if isinstance(x, FactoredInput):
        return x.linear(layers)
    weight, bias = concatenated(layers)
    return functional.linear(x, weight, bias)


def run_mlp(net: nn.Sequential, x: Input) -> torch.Tensor:
    """An MLP built by :func:`models.architectures.mlp` (its first module is a Linear) on `x`."""
    if not isinstance(x, FactoredInput):
        return net(x)
    return after_first_layer(net, x.linear([net[0]]))


def after_first_layer(net: nn.Sequential, hidden: torch.Tensor) -> torch.Tensor:
    """The rest of an MLP on its first layer's output."""
    for module in islice(net, 1, None):
        hidden = module(hidden)
    return hidden
