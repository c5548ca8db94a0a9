"""Turn per-task probabilities into a ranked list.

Ranking score of a candidate: ``pCTR + conversion_weight · pCTCVR`` — the expected clicks plus the
expected conversions, a conversion worth ``conversion_weight`` clicks. pCTCVR is the probability of
a conversion per impression: the model's ``conversion`` output when that head predicts conversions
over impressions, ``pCTR · pCVR`` when it predicts conversions given a click. Ties keep the
candidate order of the request.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class RankingConfig:
    """How scores are blended; see the module docstring for the formula."""

    conversion_weight: float = 1.0
    click_task: str = "click"
    conversion_task: str = "conversion"

    def __post_init__(self) -> None:
        weight = self.conversion_weight
        if isinstance(weight, bool) or not isinstance(weight, (int, float)):
            raise ValueError(f"conversion_weight: must be a number >= 0, got {weight!r}")
        if not math.isfinite(weight) or weight < 0:
            raise ValueError(f"conversion_weight: must be a finite number >= 0, got {weight!r}")


DEFAULT_RANKING = RankingConfig()


def ranking_score(
    scores: Mapping[str, np.ndarray], config: RankingConfig, *, conversion_given_click: bool
) -> np.ndarray:
    """The blended score per candidate (higher is better)."""
    if config.click_task not in scores:
        raise ValueError(f"click_task: the model has no task {config.click_task!r}; tasks: {sorted(scores)}")
    p_click = np.asarray(scores[config.click_task], dtype=np.float64)
    if config.conversion_task not in scores or config.conversion_weight == 0:
        return p_click
    p_conversion = np.asarray(scores[config.conversion_task], dtype=np.float64)
    p_ctcvr = p_click * p_conversion if conversion_given_click else p_conversion
    return p_click + config.conversion_weight * p_ctcvr


def rank_order(
    scores: Mapping[str, np.ndarray], config: RankingConfig, *, conversion_given_click: bool
) -> np.ndarray:
    """Indices of the candidates, best first (stable: ties keep request order)."""
    blended = ranking_score(scores, config, conversion_given_click=conversion_given_click)
    return np.argsort(-blended, kind="stable")
