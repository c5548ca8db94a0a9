"""Canary analysis: user-level ratio metrics, anytime-valid tests, SRM, guardrails, stepping.

Pure functions on per-arm, per-user aggregates; the local router's canary and the cluster
controller call the same code. ``moments`` (per-user sums, CTR / CVR / CTCVR with delta-method
variance) · ``sequential`` (mixture confidence sequence, always-valid p-values) · ``fixed_horizon``
(the z-test baseline) · ``srm`` (sequential sample-ratio check) · ``guardrails`` (hard limits) ·
``policy`` (stepping policy and its decisions) · ``running`` (per-user running totals kept as
exact moment sums, for a server that exports them as counters).
"""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from serving.analysis.fixed_horizon import fixed_horizon_units, z_test_p_value
    from serving.analysis.guardrails import GuardrailCheck, GuardrailLimits, ServingCounters, check_guardrails
    from serving.analysis.moments import (
        FIELDS,
        METRICS,
        STATISTICS,
        RatioEstimate,
        RatioMetric,
        UserMoments,
        per_trial_variance,
        ratio_estimate,
    )
    from serving.analysis.policy import ArmWindow, RolloutDecision, RolloutPolicy, RolloutState, evaluate
    from serving.analysis.sequential import (
        Comparison,
        SequentialTest,
        always_valid_p_value,
        compare,
        half_width,
        mixture_rho,
    )
    from serving.analysis.srm import SrmResult, srm_test

_EXPORTS = {
    "ArmWindow": "policy",
    "Comparison": "sequential",
    "FIELDS": "moments",
    "GuardrailCheck": "guardrails",
    "GuardrailLimits": "guardrails",
    "METRICS": "moments",
    "RatioEstimate": "moments",
    "RatioMetric": "moments",
    "RolloutDecision": "policy",
    "RolloutPolicy": "policy",
    "RolloutState": "policy",
    "STATISTICS": "moments",
    "SequentialTest": "sequential",
    "ServingCounters": "guardrails",
    "SrmResult": "srm",
    "UserMoments": "moments",
    "always_valid_p_value": "sequential",
    "check_guardrails": "guardrails",
    "compare": "sequential",
    "evaluate": "policy",
    "fixed_horizon_units": "fixed_horizon",
    "half_width": "sequential",
    "mixture_rho": "sequential",
    "per_trial_variance": "moments",
    "ratio_estimate": "moments",
    "srm_test": "srm",
    "z_test_p_value": "fixed_horizon",
}
"""Each public name and its module: imported on first use (PEP 562), so a server that needs one
of them does not import them all (``fixed_horizon`` and ``srm`` import SciPy, 1.3 s here)."""


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


__all__ = [
    "FIELDS",
    "METRICS",
    "STATISTICS",
    "ArmWindow",
    "Comparison",
    "GuardrailCheck",
    "GuardrailLimits",
    "RatioEstimate",
    "RatioMetric",
    "RolloutDecision",
    "RolloutPolicy",
    "RolloutState",
    "SequentialTest",
    "ServingCounters",
    "SrmResult",
    "UserMoments",
    "always_valid_p_value",
    "check_guardrails",
    "compare",
    "evaluate",
    "fixed_horizon_units",
    "half_width",
    "mixture_rho",
    "per_trial_variance",
    "ratio_estimate",
    "srm_test",
    "z_test_p_value",
]
