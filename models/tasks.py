"""Task types, looked up by name: how a task's raw network output is trained and read.

A binary task's output is a logit (BCE, read as a probability); a regression task's output is
the target itself (MSE); "regression_log1p" fits log(1 + y), for skewed non-negative targets
such as dwell time, and reads back exp(output) - 1.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional

from models.metrics import binary_metrics, regression_metrics


@dataclass(frozen=True)
class TaskType:
    name: str
    target: Callable[[torch.Tensor], torch.Tensor]
    """Label → what the raw output is trained towards."""
    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    """(raw outputs [B], targets [B]) → mean loss."""
    predict: Callable[[torch.Tensor], torch.Tensor]
    """Raw output → prediction in the label's units."""
    binary: bool
    metrics: Callable[..., dict]
    """(labels, predictions, users | None, lists | None) → named metrics."""
    selection_metric: str
    """The validation metric that picks the best epoch (AUC up, RMSE down)."""

    def initial_output(self, mean_target: float) -> float:
        """The raw output that predicts the mean target: where the tower's last bias starts."""
        if self.binary:
            rate = min(max(mean_target, 1e-6), 1 - 1e-6)
            return float(np.log(rate / (1 - rate)))
        return mean_target

    def check_labels(self, column: str, labels: np.ndarray) -> None:
        """A ValueError naming the column when its labels do not fit this task type."""
        if not np.all(np.isfinite(labels)):
            raise ValueError(f"label column {column!r} has missing or non-finite values; "
                             "drop or fill those rows")
        if self.binary and not np.isin(labels, (0, 1)).all():
            raise ValueError(
                f"label column {column!r} of a binary task has values other than 0 and 1; "
                f"declare it in model.task_types as one of {sorted(set(TASK_TYPES) - {'binary'})}"
            )
        if self.name == "regression_log1p" and labels.min() < 0:
            raise ValueError(f"label column {column!r} has negative values, which "
                             "regression_log1p cannot fit; use task type 'regression'")


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


TASK_TYPES: dict[str, TaskType] = {
    "binary": TaskType(
        "binary", _identity, functional.binary_cross_entropy_with_logits, torch.sigmoid, True,
        binary_metrics, "auc",
    ),
    "regression": TaskType(
        "regression", _identity, functional.mse_loss, _identity, False, regression_metrics, "rmse"
    ),
    "regression_log1p": TaskType(
        "regression_log1p", torch.log1p, functional.mse_loss,
        lambda x: torch.expm1(x.clamp(min=0.0)), False, regression_metrics, "rmse",
    ),
}
