"""The fixed-horizon z-test: the baseline the sequential test is measured against.

Valid only when looked at once, at a sample size fixed in advance; repeating it at every look
inflates the false-positive rate (the benchmark shows how much).
"""

from __future__ import annotations

import numpy as np
from scipy.stats import norm


def z_test_p_value(estimate, variance) -> np.ndarray:
    """Two-sided p-value of ``estimate = 0`` (1 where the variance is undefined)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.abs(np.asarray(estimate)) / np.sqrt(variance)
    return np.where(np.isfinite(z), 2 * norm.sf(z), 1.0)


def fixed_horizon_units(unit_variance: float, effect: float, alpha: float, power: float) -> float:
    """Units (e.g. users or impressions in both arms) a two-sided z-test at ``alpha`` needs to
    detect ``effect`` with ``power``, when the estimate's variance is ``unit_variance / units``."""
    if not 0 < alpha < 1 or not 0 < power < 1:
        raise ValueError(f"alpha and power: expected numbers in (0, 1), got {alpha!r} and {power!r}")
    if effect == 0:
        raise ValueError("effect: expected a non-zero difference to detect")
    return (norm.isf(alpha / 2) + norm.ppf(power)) ** 2 * unit_variance / effect**2
