"""Anytime-valid comparison of two arms: the normal-mixture confidence sequence and mSPRT, or
the two-point mixture at a planned effect.

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

With a ``planned_effect`` μ (the smallest change worth detecting) the mixture puts half its mass
on each of ``null ± μ`` instead: Wald's sequential probability ratio test, made two-sided::

    Λ = cosh(μ (d − null) / V) · exp(−μ² / (2V))

still a nonnegative martingale under the null, so just as valid at every look. At the planned
effect it decides sooner than the normal mixture, and sooner on average than a fixed-horizon
test of the same power; the price is resolution: its confidence sequence never gets narrower
than ``d ± μ/2``, so changes below about half the planned effect are never declared.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from serving.analysis._checks import is_number, require, require_int, require_level
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


def require_planned_effect(name: str, value: object) -> None:
    """``value`` is None (the normal mixture) or a number > 0 (raises naming ``name``)."""
    if value is not None:
        require(
            is_number(value) and value > 0,
            name,
            "a number > 0, the smallest change worth detecting, e.g. 0.05 for 5 % (None: the normal "
            "mixture)",
            value,
        )


def planned_effect_log_e_value(estimate, variance, effect: float, null: float = 0.0) -> np.ndarray:
    """log Λ of the two-point mixture at ``null ± effect`` (0 where undefined)."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        x = effect * (np.asarray(estimate) - null) / variance
        value = np.logaddexp(x, -x) - math.log(2) - effect**2 / (2 * np.asarray(variance))
    return np.where(np.isfinite(value), value, 0.0)


def planned_effect_half_width(variance, effect: float, alpha: float) -> np.ndarray:
    """Half-width of the two-point mixture's confidence sequence: the distance from the
    estimate where Λ reaches 1/α, ``(V/μ) · arccosh(exp(μ²/(2V)) / α)``."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        a = effect**2 / (2 * np.asarray(variance, dtype=np.float64)) - math.log(alpha)
        arccosh_of_exp_a = a + np.log1p(np.sqrt(-np.expm1(-2 * a)))
        return np.asarray(variance) / effect * arccosh_of_exp_a


@dataclass(frozen=True)
class SequentialTest:
    """Level and mixture of the anytime-valid comparison: the normal mixture tightest at
    ``planned_users``, or with ``planned_effect`` (in the units of ``difference``: 0.05 is a 5 %
    relative change) the two-point mixture at that effect (see the module docstring)."""

    alpha: float = 0.05
    planned_users: int = 20_000
    difference: Difference = "relative"
    planned_effect: float | None = None

    def __post_init__(self) -> None:
        require_level("alpha", self.alpha, 0.5)
        require_int("planned_users", self.planned_users, 2)
        choices = ("relative", "absolute")
        require(self.difference in choices, "difference", " or ".join(map(repr, choices)), self.difference)
        require_planned_effect("planned_effect", self.planned_effect)

    @property
    def rho(self) -> float:
        return mixture_rho(self.alpha, self.planned_users)

    def half_width(self, variance, users) -> np.ndarray:
        """Half-width of the confidence sequence at a look with ``users`` users in both arms."""
        if self.planned_effect is None:
            return half_width(variance, users, self.rho, self.alpha)
        return planned_effect_half_width(variance, self.planned_effect, self.alpha)

    def p_value(self, estimate, variance, users) -> np.ndarray:
        """The look's always-valid p-value ``min(1, 1/Λ)`` against no difference."""
        if self.planned_effect is None:
            return always_valid_p_value(estimate, variance, users, self.rho)
        return np.minimum(1.0, np.exp(-planned_effect_log_e_value(estimate, variance, self.planned_effect)))


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
    width = test.half_width(variance, users)
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
        p_value=np.where(defined, test.p_value(estimate, variance, users), 1.0),
        users_control=control.n,
        users_treatment=treatment.n,
    )
