"""Sample-ratio mismatch, checked continuously (Lindon & Malek, "Anytime-valid inference for
multinomial count data", NeurIPS 2022).

Under a healthy split each new user lands in arm ``i`` with probability ``θ_i`` (the router's
weights). The Dirichlet-multinomial Bayes factor against that null,

    BF = Γ(K) / Γ(K + n) · Π_i Γ(a_i + x_i) / Γ(a_i) / Π_i θ_i^x_i,    a = K · θ,

is a martingale under the null as users arrive, so ``p = min(1, 1/BF)`` is valid at every look
(Ville's inequality) — unlike a χ² test repeated on growing counts. ``K`` (the prior's
concentration) sets which imbalances it is quickest to see: larger K, smaller imbalances.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.special import gammaln

from serving.analysis._checks import is_int, is_number, require, require_level, require_positive


@dataclass(frozen=True)
class SrmResult:
    counts: tuple[int, ...]
    expected_share: tuple[float, ...]
    log_bayes_factor: float
    p_value: float
    alpha: float

    @property
    def mismatch(self) -> bool:
        return self.p_value <= self.alpha

    def to_dict(self) -> dict:
        total = sum(self.counts)
        return {
            "counts": list(self.counts),
            "expected_share": list(self.expected_share),
            "observed_share": [c / total if total else None for c in self.counts],
            "log_bayes_factor": self.log_bayes_factor,
            "p_value": self.p_value,
            "alpha": self.alpha,
            "mismatch": self.mismatch,
        }


def log_bayes_factor(counts, expected_share, concentration: float = 100.0) -> np.ndarray:
    """log BF of the Dirichlet-multinomial alternative against ``expected_share``;
    ``counts`` may be batched ``(..., k)``."""
    x = np.asarray(counts, dtype=np.float64)
    theta = np.asarray(expected_share, dtype=np.float64)
    prior = concentration * theta
    return (
        gammaln(concentration)
        - gammaln(concentration + x.sum(axis=-1))
        + np.sum(gammaln(prior + x) - gammaln(prior), axis=-1)
        - np.sum(x * np.log(theta), axis=-1)
    )


def srm_test(
    counts: Sequence[int], expected_share: Sequence[float], alpha: float = 0.001, concentration: float = 100.0
) -> SrmResult:
    """Test users per arm (``counts``) against the split the router was told (``expected_share``)."""
    require(
        len(counts) == len(expected_share) >= 2,
        "counts/expected_share",
        "one count and one share per arm (>= 2 arms)",
        (list(counts), list(expected_share)),
    )
    require(all(is_int(c) and c >= 0 for c in counts), "counts", "user counts >= 0", list(counts))
    require(
        all(is_number(s) and 0 < s < 1 for s in expected_share) and math.isclose(sum(expected_share), 1.0),
        "expected_share",
        "shares in (0, 1) summing to 1",
        list(expected_share),
    )
    require_level("alpha", alpha)
    require_positive("concentration", concentration)
    share = np.asarray(expected_share, dtype=np.float64)
    log_bf = float(log_bayes_factor(counts, share, concentration))
    return SrmResult(
        counts=tuple(int(c) for c in counts),
        expected_share=tuple(float(s) for s in share),
        log_bayes_factor=log_bf,
        p_value=min(1.0, math.exp(-log_bf)) if log_bf > -700 else 1.0,
        alpha=alpha,
    )
