"""Synthetic per-user outcomes for the analysis tests: users with their own click propensity."""

from __future__ import annotations

import numpy as np


def users(
    rng: np.random.Generator,
    n: int,
    ctr: float = 0.05,
    cvr: float = 0.1,
    mean_impressions: float = 20.0,
    spread: float = 10.0,
) -> np.ndarray:
    """(n, 3) rows of impressions, clicks, conversions; each user's CTR ~ Beta with mean ``ctr``
    (``spread`` = a + b: smaller, more heterogeneous users)."""
    impressions = 1 + rng.poisson(mean_impressions - 1, n)
    propensity = rng.beta(ctr * spread, (1 - ctr) * spread, n)
    clicks = rng.binomial(impressions, propensity)
    conversions = rng.binomial(clicks, cvr)
    return np.stack([impressions, clicks, conversions], axis=1)
