"""Anytime-valid comparison of two arms: the normal-mixture confidence sequence and mSPRT.

With ``N`` users in both arms, an estimated difference ``d`` and its variance ``V`` (delta
method, user level), mixing the likelihood ratio over effects ``θ ~ N(0, ρ² · V · N)`` gives the
mixture martingale (Johari, Pekelis & Walsh; Robbins)::

    Λ = exp(z² · Nρ² / (2 (1 + Nρ²))) / sqrt(1 + Nρ²),    z² = d² / V

``p = min(1, 1/Λ)`` is an always-valid p-value, and the set of nulls it does not reject at level
α is the asymptotic confidence sequence of Waudby-Smith et al. (2023, eq. 9)::

    d ± sqrt(V) · sqrt(2 (1 + Nρ²) / (Nρ²) · log(sqrt(1 + Nρ²) / α))

Both hold simultaneously over all looks, so the analysis may be repeated after every batch of
traffic and stopped at the first look that is conclusive. ``ρ`` is chosen so that the sequence
is tightest at a planned number of users (ibid., eq. 161; gbstats' ``sequential_tuning_parameter``):
``ρ² = (−2 log α + log(1 − 2 log α)) / planned_users``. Looks far from the plan stay valid and
are only a little wider.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from serving.analysis._checks import require, require_int, require_level
from serving.analysis.moments import UserMoments, metric_named, ratio_estimate

Difference = Literal["relative", "absolute"]


def mixture_rho(alpha: float, planned_users: float) -> float:
    """The mixing scale that makes the confidence sequence tightest at ``planned_users``."""
    log_alpha = math.log(alpha)
    return math.sqrt((-2 * log_alpha + math.log(1 - 2 * log_alpha)) / planned_users)


def half_width(variance, users, rho: float, alpha: float) -> np.ndarray:
    """Half-width of the confidence sequence at a look with ``users`` users in both arms."""
    tau = np.asarray(users, dtype=np.float64) * rho**2
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.sqrt(variance) * np.sqrt(2 * (1 + tau) / tau * np.log(np.sqrt(1 + tau) / alpha))


def log_e_value(estimate, variance, users, rho: float, null: float = 0.0) -> np.ndarray:
    """log Λ, the mixture likelihood ratio against ``difference = null`` (0 where undefined)."""
    tau = np.asarray(users, dtype=np.float64) * rho**2
    with np.errstate(divide="ignore", invalid="ignore"):
        z2 = (np.asarray(estimate) - null) ** 2 / variance
        value = z2 * tau / (2 * (1 + tau)) - 0.5 * np.log1p(tau)
    return np.where(np.isfinite(value), value, 0.0)


def always_valid_p_value(estimate, variance, users, rho: float, null: float = 0.0) -> np.ndarray:
    return np.minimum(1.0, np.exp(-log_e_value(estimate, variance, users, rho, null)))


@dataclass(frozen=True)
class SequentialTest:
    """Level, planned size and scale of the anytime-valid comparison."""

    alpha: float = 0.05
    planned_users: int = 20_000
    difference: Difference = "relative"

    def __post_init__(self) -> None:
        require_level("alpha", self.alpha, 0.5)
        require_int("planned_users", self.planned_users, 2)
        choices = ("relative", "absolute")
        require(self.difference in choices, "difference", " or ".join(map(repr, choices)), self.difference)

    @property
    def rho(self) -> float:
        return mixture_rho(self.alpha, self.planned_users)


@dataclass(frozen=True)
class Comparison:
    """Treatment against control on one metric at one look (arrays when batched)."""

    metric: str
    difference: Difference
    alpha: float
    control: np.ndarray
    treatment: np.ndarray
    estimate: np.ndarray
    variance: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    p_value: np.ndarray
    users_control: np.ndarray
    users_treatment: np.ndarray

    @property
    def significant(self) -> np.ndarray:
        """The confidence sequence excludes 0 (equivalently ``p_value <= alpha``)."""
        return self.p_value <= self.alpha

    def to_dict(self) -> dict:
        def number(value) -> float | None:
            value = float(value)
            return value if math.isfinite(value) else None

        return {
            "metric": self.metric,
            "difference": self.difference,
            "control": number(self.control),
            "treatment": number(self.treatment),
            "estimate": number(self.estimate),
            "std_error": number(np.sqrt(self.variance)),
            "interval": [number(self.lower), number(self.upper)],
            "p_value": float(self.p_value),
            "alpha": self.alpha,
            "significant": bool(self.significant),
            "users": {"control": int(self.users_control), "treatment": int(self.users_treatment)},
        }


def difference_estimate(control: UserMoments, treatment: UserMoments, metric: str, difference: Difference):
    """(control value, treatment value, difference, its variance) — relative is ``t/c − 1``."""
    c, t = ratio_estimate(control, metric), ratio_estimate(treatment, metric)
    with np.errstate(divide="ignore", invalid="ignore"):
        if difference == "absolute":
            return c.value, t.value, t.value - c.value, c.variance + t.variance
        estimate = t.value / c.value - 1
        variance = t.variance / c.value**2 + t.value**2 * c.variance / c.value**4
    return c.value, t.value, estimate, variance


def compare(control: UserMoments, treatment: UserMoments, metric: str, test: SequentialTest) -> Comparison:
    """The anytime-valid comparison of ``treatment`` with ``control`` on ``metric``."""
    metric_named(metric)
    c, t, estimate, variance = difference_estimate(control, treatment, metric, test.difference)
    users = control.n + treatment.n
    width = half_width(variance, users, test.rho, test.alpha)
    defined = np.isfinite(estimate) & np.isfinite(width)
    return Comparison(
        metric=metric,
        difference=test.difference,
        alpha=test.alpha,
        control=c,
        treatment=t,
        estimate=estimate,
        variance=variance,
        lower=np.where(defined, estimate - width, -np.inf),
        upper=np.where(defined, estimate + width, np.inf),
        p_value=np.where(defined, always_valid_p_value(estimate, variance, users, test.rho), 1.0),
        users_control=control.n,
        users_treatment=treatment.n,
    )
