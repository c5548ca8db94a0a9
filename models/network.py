"""The multi-task ranking network: fused embedding lookup + numeric + text → body → task towers."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from models.architectures import ARCHITECTURES, chain_on_first, mlp
from models.config import ModelConfig
from models.factored_input import FactoredInput
from models.feature_spec import FeatureSpec
from models.tasks import TASK_TYPES, TaskType
from ops import FusedEmbeddingBag


@dataclass(frozen=True)
class PreparedItems:
    """Every row of an item table encoded for the network's first layers: one input per copy of
    the encoders with the context columns zeroed, each copy's cache of first-layer outputs (see
    :mod:`models.factored_input`), and the rows' category indices (for a scenario read from an
    item column)."""

    inputs: list[torch.Tensor]
    caches: list[dict]
    categorical: torch.Tensor

    def __len__(self) -> int:
        return len(self.categorical)


class MultiTaskRanker(nn.Module):
    """`forward` gives raw outputs [B, tasks] (logits for binary tasks); `predict` gives them in
    the labels' units (probabilities for binary tasks).

    An architecture with independent inputs gets one copy of the tables and of the text
    projection per task, all in the same fused embedding bag.
    """

    def __init__(self, spec: FeatureSpec, config: ModelConfig) -> None:
        super().__init__()
        self.spec = spec
        self.config = config
        architecture = ARCHITECTURES[config.architecture]
        self.task_types: tuple[TaskType, ...] = tuple(
            TASK_TYPES[config.type_of(task)] for task in config.tasks
        )
        self.chain_tasks = architecture.chain_tasks
        self.copies = len(config.tasks) if architecture.independent_inputs else 1
        self.embeddings = FusedEmbeddingBag(
            num_embeddings=[f.num_embeddings for f in spec.categorical] * self.copies,
            embedding_dims=[config.embedding_dim] * len(spec.categorical) * self.copies,
            pooling="sum",
            backend=config.embedding_backend,
        )
        self.text_projection = (
            nn.Linear(spec.text.dim, config.text_projection_dim * self.copies) if spec.text else None
        )
        input_dim = (
            config.embedding_dim * len(spec.categorical)
            + len(spec.numeric)
            + (config.text_projection_dim if spec.text else 0)
        )
        # not saved with the weights: it follows from the spec and the config
        self.register_buffer("item_columns", self._item_columns(spec, config), persistent=False)
        self.scenario_index = self._scenario_index(spec, config)
        scenarios = (
            {} if self.scenario_index is None
            else {"num_scenarios": spec.categorical[self.scenario_index].num_embeddings}
        )
        self.body = architecture.body(input_dim, len(config.tasks), config, **scenarios)
        self.towers = nn.ModuleList(
            nn.Sequential(
                mlp(self.body.output_dim, config.tower_hidden, config.dropout),
                nn.Linear(
                    config.tower_hidden[-1] if config.tower_hidden else self.body.output_dim, 1
                ),
            )
            for _ in config.tasks
        )

    def start_at_the_mean(self, labels: np.ndarray) -> None:
        """Set each tower's output bias so the untrained model predicts the labels' mean
        (a chained ESMM task: its mean given the first task)."""
        means = []
        for t, kind in enumerate(self.task_types):
            means.append(float(kind.target(torch.from_numpy(labels[:, t])).double().mean()))
        parent = next((t for t, kind in enumerate(self.task_types) if kind.binary), None)
        with torch.no_grad():
            for t, (kind, tower) in enumerate(zip(self.task_types, self.towers, strict=True)):
                mean = means[t]
                if self.chain_tasks and kind.binary and t != parent and means[parent] > 0:
                    mean = means[t] / means[parent]
                tower[-1].bias.fill_(kind.initial_output(mean))

    def set_embedding_optimizer(self, optimizer: str | None, lr: float = 0.01) -> None:
        """Rebuild the tables with `optimizer` fused into their backward (None: plain gradients).

        The weights are kept; optimizer state starts at zero. Training sets it and clears it again,
        so a saved model holds weights only.
        """
        old = self.embeddings
        new = FusedEmbeddingBag(
            num_embeddings=old.layout.num_embeddings,
            embedding_dims=old.layout.embedding_dims,
            pooling=old.pooling,
            backend=old.backend,
            optimizer=optimizer,
            lr=lr,
            device=old.weight.device,
            dtype=old.weight.dtype,
        )
        with torch.no_grad():
            new.weight.copy_(old.weight)
        self.embeddings = new

    def forward(
        self, categorical: torch.Tensor, numeric: torch.Tensor, text: torch.Tensor | None
    ) -> torch.Tensor:
        """Raw outputs [B, num_tasks] from category indices [B, T], numbers [B, F], text [B, D]."""
        scenario = None if self.scenario_index is None else categorical[:, self.scenario_index]
        return self._heads(self.body(self._inputs(categorical, numeric, text), scenario))

    def predict(
        self, categorical: torch.Tensor, numeric: torch.Tensor, text: torch.Tensor | None
    ) -> torch.Tensor:
        """Predictions [B, num_tasks] in the labels' units."""
        return self._in_label_units(self(categorical, numeric, text))

    def prepare_items(
        self, categorical: torch.Tensor, numeric: torch.Tensor, text: torch.Tensor | None
    ) -> PreparedItems:
        """An item table's rows (encoded like `forward`'s inputs; only the item columns are read)
        made ready for :meth:`predict_prepared`."""
        inputs = [x.masked_fill(~self.item_columns, 0.0) for x in self._inputs(categorical, numeric, text)]
        return PreparedItems(inputs, [{} for _ in inputs], categorical)

    def predict_prepared(
        self,
        items: PreparedItems,
        rows: torch.Tensor,
        categorical: torch.Tensor,
        numeric: torch.Tensor,
        text: torch.Tensor | None,
        context_rows: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Predictions [B, num_tasks] for the prepared items at `rows`, all seen in one context:
        category indices [1, T], numbers [1, F], text [1, D] (its item columns are ignored).
        Several requests at once: one context row each ([R, ...]) and `context_rows` [B], each
        row's context. Equal to `predict` on the full rows up to float rounding."""
        contexts = [x.masked_fill(self.item_columns, 0.0) for x in self._inputs(categorical, numeric, text)]
        inputs = [
            FactoredInput(per_item, cache, rows, context, context_rows)
            for per_item, cache, context in zip(items.inputs, items.caches, contexts, strict=True)
        ]
        scenario = None
        if self.scenario_index is not None:
            if self.spec.categorical[self.scenario_index].source == "item":
                scenario = items.categorical[rows, self.scenario_index]
            elif context_rows is None:
                scenario = categorical[0, self.scenario_index].expand(len(rows))
            else:
                scenario = categorical[context_rows, self.scenario_index]
        return self._in_label_units(self._heads(self.body(inputs, scenario)))

    def _heads(self, representations: list[torch.Tensor]) -> torch.Tensor:
        outputs = torch.cat(
            [tower(r) for tower, r in zip(self.towers, representations, strict=True)], dim=1
        )
        if self.chain_tasks:
            outputs = chain_on_first(outputs, [kind.binary for kind in self.task_types])
        return outputs

    def _in_label_units(self, outputs: torch.Tensor) -> torch.Tensor:
        return torch.stack(
            [kind.predict(column) for kind, column in zip(self.task_types, outputs.unbind(1),
                                                          strict=True)],
            dim=1,
        )

    @staticmethod
    def _item_columns(spec: FeatureSpec, config: ModelConfig) -> torch.Tensor:
        """Which columns of an input copy come from item features, bool [width]."""
        flags = [f.source == "item" for f in spec.categorical for _ in range(config.embedding_dim)]
        flags += [f.source == "item" for f in spec.numeric]
        if spec.text is not None:
            flags += [spec.text.source == "item"] * config.text_projection_dim
        return torch.tensor(flags, dtype=torch.bool)

    @staticmethod
    def _scenario_index(spec: FeatureSpec, config: ModelConfig) -> int | None:
        if not config.scenario_feature:
            return None
        names = [f.name for f in spec.categorical]
        if config.scenario_feature not in names:
            raise ValueError(f"model.scenario_feature: {config.scenario_feature!r} is not a "
                             f"categorical feature; choose one of {names}")
        return names.index(config.scenario_feature)

    def _inputs(
        self, categorical: torch.Tensor, numeric: torch.Tensor, text: torch.Tensor | None
    ) -> list[torch.Tensor]:
        """One input [B, width] per copy of the encoders."""
        batch, tables = categorical.shape
        indices = categorical.t().reshape(-1).repeat(self.copies)
        offsets = torch.arange(
            batch * tables * self.copies + 1, dtype=torch.int64, device=categorical.device
        )
        embedded = self.embeddings(indices, offsets).chunk(self.copies, dim=1)
        projected = (
            self.text_projection(text).chunk(self.copies, dim=1)
            if self.text_projection is not None
            else None
        )
        return [
            torch.cat([embedded[c], numeric] + ([projected[c]] if projected else []), dim=1)
            for c in range(self.copies)
        ]
