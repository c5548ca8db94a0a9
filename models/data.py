"""Training and evaluation rows in model-ready arrays, and mini-batches drawn from them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import torch

from models.feature_spec import EncodedFrame, FeatureSpec
from models.tasks import TASK_TYPES


@dataclass(frozen=True)
class TrainingData:
    """Encoded rows plus labels [N, tasks]; text vectors are gathered per batch from a per-item table.

    `users` groups rows for GAUC, `lists` for NDCG (a request's slate, else the user's rows) and
    `scenarios` for per-scenario metrics; each is None when the data has no such column.
    `targets`, when set, replace the labels as training targets (distillation's soft labels).
    """

    encoded: EncodedFrame
    labels: np.ndarray
    users: np.ndarray | None = None
    text_index: np.ndarray | None = None
    text_table: np.ndarray | None = None
    lists: np.ndarray | None = None
    scenarios: np.ndarray | None = None
    targets: np.ndarray | None = None

    @classmethod
    def from_frame(
        cls,
        frame: pd.DataFrame,
        spec: FeatureSpec,
        tasks: Sequence[str],
        text_keys: np.ndarray | None = None,
        text_matrix: np.ndarray | None = None,
        *,
        task_types: Mapping[str, str] | None = None,
        key_column: str = "item_id",
        user_column: str | None = "user_id",
        list_column: str | None = "request_id",
        scenario_column: str | None = None,
    ) -> TrainingData:
        """`task_types` (task → type, default binary) checks each label column's values.

        `list_column` falls back to `user_column` when the frame lacks it."""
        missing = [task for task in tasks if task not in frame.columns]
        if missing:
            raise KeyError(
                f"the data lacks label column(s) {missing}; columns: {sorted(frame.columns)}"
            )
        labels = frame[list(tasks)].to_numpy(dtype=np.float32)
        for t, task in enumerate(tasks):
            TASK_TYPES[(task_types or {}).get(task, "binary")].check_labels(task, labels[:, t])
        text_index = text_table = None
        if spec.text is not None:
            if text_keys is None or text_matrix is None:
                raise ValueError("the feature spec has a text feature: pass text_keys and text_matrix")
            text_index = pd.Index(text_keys).get_indexer(_column(frame, key_column)) + 1
            text_table = np.vstack(
                [np.zeros((1, spec.text.dim), np.float32), np.asarray(text_matrix, np.float32)]
            )
        users = _column(frame, user_column) if user_column else None
        lists = frame[list_column].to_numpy() if list_column in frame.columns else users
        scenarios = _column(frame, scenario_column) if scenario_column else None
        encoded = spec.encode(frame, with_text=False)
        return cls(encoded, labels, users, text_index, text_table, lists, scenarios)

    def __len__(self) -> int:
        return len(self.labels)

    def with_targets(self, targets: np.ndarray) -> TrainingData:
        if targets.shape != self.labels.shape:
            raise ValueError(f"targets {targets.shape} must match labels {self.labels.shape}")
        return replace(self, targets=targets.astype(np.float32))

    def subset(self, rows: np.ndarray) -> TrainingData:
        """The given rows (indices or a boolean mask), e.g. one scenario's."""
        def pick(values):
            return None if values is None else values[rows]

        return TrainingData(
            EncodedFrame(
                self.encoded.categorical[rows],
                self.encoded.numeric[rows],
                pick(self.encoded.text),
            ),
            self.labels[rows],
            pick(self.users),
            pick(self.text_index),
            self.text_table,
            pick(self.lists),
            pick(self.scenarios),
            pick(self.targets),
        )

    def batch(self, rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        text = None
        if self.text_table is not None:
            text = torch.from_numpy(self.text_table[self.text_index[rows]])
        return (
            torch.from_numpy(self.encoded.categorical[rows]),
            torch.from_numpy(self.encoded.numeric[rows]),
            text,
        )

    def batch_targets(self, rows: np.ndarray) -> torch.Tensor:
        return torch.from_numpy((self.labels if self.targets is None else self.targets)[rows])


def _column(frame: pd.DataFrame, name: str) -> np.ndarray:
    if name not in frame.columns:
        raise KeyError(f"the data has no column {name!r}; columns: {sorted(frame.columns)}")
    return frame[name].to_numpy()
