"""Judging a candidate model against the served one on the same holdout, and blessing it."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from models.metrics import auc


@dataclass(frozen=True)
class BlessingConfig:
    """Per-task gates: an absolute AUC floor and the largest AUC drop allowed against the baseline."""

    min_auc: dict[str, float] = field(default_factory=lambda: {"click": 0.6, "conversion": 0.6})
    max_auc_drop: dict[str, float] = field(
        default_factory=lambda: {"click": 0.005, "conversion": 0.01}
    )

    def __post_init__(self) -> None:
        for name, gates in (("min_auc", self.min_auc), ("max_auc_drop", self.max_auc_drop)):
            for task, value in gates.items():
                if not 0.0 <= value <= 1.0:
                    raise ValueError(f"blessing.{name}.{task}: must be in [0, 1], got {value}")


@dataclass(frozen=True)
class Blessing:
    blessed: bool
    reasons: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"blessed": self.blessed, "reasons": list(self.reasons)}


def bless(
    candidate: dict[str, dict], baseline: dict[str, dict] | None, config: BlessingConfig
) -> Blessing:
    """Blessed only if every configured gate holds; each failed gate is a reason."""
    reasons = []
    for task, floor in config.min_auc.items():
        value = candidate.get(task, {}).get("auc", math.nan)
        if not value >= floor:
            reasons.append(f"{task}: AUC {value:.4f} is below the floor {floor:.4f}")
    if baseline:
        for task, drop in config.max_auc_drop.items():
            value = candidate.get(task, {}).get("auc", math.nan)
            reference = baseline.get(task, {}).get("auc", math.nan)
            if math.isfinite(reference) and not value >= reference - drop:
                reasons.append(
                    f"{task}: AUC {value:.4f} is more than {drop:.4f} below the served model's "
                    f"{reference:.4f}"
                )
    return Blessing(not reasons, tuple(reasons))


def popularity_auc(train: pd.DataFrame, holdout: pd.DataFrame, tasks: tuple[str, ...]) -> dict:
    """AUC of ranking by each item's smoothed training rate: the floor any model must clear."""
    result = {}
    for task in tasks:
        prior = float(train[task].mean())
        per_item = train.groupby("item_id")[task].agg(["sum", "count"])
        rate = (per_item["sum"] + 20 * prior) / (per_item["count"] + 20)
        scores = holdout["item_id"].map(rate).fillna(prior).to_numpy()
        result[task] = {"auc": auc(holdout[task].to_numpy(), np.asarray(scores))}
    return result
