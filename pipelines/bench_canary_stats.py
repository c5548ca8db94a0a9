"""Statistics of many simulated canaries: each run's comparison at every look, false-positive
rates, power, impressions to a decision and the fixed-horizon baseline."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import norm

from pipelines.bench_canary_model import LookSeries
from serving.analysis import SequentialTest, compare, per_trial_variance, ratio_estimate, z_test_p_value


@dataclass(frozen=True)
class Arms:
    """One metric's comparison at every (run, look), from a simulated series."""

    estimate: np.ndarray
    user_variance: np.ndarray
    impression_variance: np.ndarray
    sequential_significant: np.ndarray
    impressions: np.ndarray
    users: np.ndarray


def analyse(series: LookSeries, metric: str, test: SequentialTest) -> Arms:
    """The production comparison plus the naive per-impression variance of the same estimate."""
    result = compare(series.primary, series.canary, metric, test)
    control = ratio_estimate(series.primary, metric).value
    treatment = ratio_estimate(series.canary, metric).value
    with np.errstate(divide="ignore", invalid="ignore"):
        per_impression = (
            per_trial_variance(series.canary, metric) / control**2
            + treatment**2 * per_trial_variance(series.primary, metric) / control**4
        )
    return Arms(
        result.estimate,
        result.variance,
        per_impression,
        result.significant,
        series.impressions,
        series.primary.n + series.canary.n,
    )


def rate(hits: np.ndarray) -> tuple[float, float]:
    """Share of runs and its Monte-Carlo standard error."""
    share = float(np.mean(hits))
    return share, math.sqrt(max(share * (1 - share), 1e-12) / len(hits))


def plan_impressions(
    impressions: np.ndarray, variance: np.ndarray, effect: float, alpha: float, power: float
) -> float:
    """Impressions a fixed-horizon z-test needs for ``power`` at ``effect``, from the A/A runs'
    mean variance per look (log-log extrapolated past the last look)."""
    needed = (norm.isf(alpha / 2) + norm.ppf(power)) ** 2 / effect**2  # 1 / variance needed
    reached = np.flatnonzero(1 / variance >= needed)
    if len(reached):
        return float(impressions[reached[0]])
    tail = slice(len(impressions) // 2, None)
    slope, intercept = np.polyfit(np.log(impressions[tail]), np.log(variance[tail]), 1)
    return float(np.exp((math.log(1 / needed) - intercept) / slope))


def fixed_horizon_size(arms: Arms, effect: float, alpha: float, power: float) -> float | None:
    """Impressions at which the single-look z-test reaches ``power`` in these runs (None if it
    does not within the horizon); linear between looks."""
    p = z_test_p_value(arms.estimate, arms.user_variance)
    curve = np.mean((p < alpha) & (np.sign(arms.estimate) == np.sign(effect)), axis=0)
    impressions = arms.impressions.mean(axis=0)
    above = np.flatnonzero(curve >= power)
    if not len(above):
        return None
    k = above[0]
    if k == 0:
        return float(impressions[0])
    fraction = (power - curve[k - 1]) / (curve[k] - curve[k - 1])
    return float(impressions[k - 1] + fraction * (impressions[k] - impressions[k - 1]))


def until(arms: Arms, impressions: float) -> Arms:
    """The looks of each run up to ``impressions`` (on average over the runs; at least one)."""
    looks = max(1, int(np.sum(arms.impressions.mean(axis=0) <= impressions)))
    return Arms(*(getattr(arms, f.name)[:, :looks] for f in dataclasses.fields(Arms)))


def first_decision(arms: Arms, effect: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per run: detected in the right direction, detected in the wrong one, impressions at the
    decision (the horizon for runs that never decide)."""
    hit = arms.sequential_significant
    decided = hit.any(axis=1)
    first = np.argmax(hit, axis=1)
    rows = np.arange(len(first))
    sign = np.sign(arms.estimate[rows, first])
    impressions = np.where(decided, arms.impressions[rows, first], arms.impressions[:, -1])
    return decided & (sign == np.sign(effect)), decided & (sign != np.sign(effect)), impressions
