"""Canary analysis: user-level ratio metrics, anytime-valid tests, SRM, guardrails, stepping.

Pure functions on per-arm, per-user aggregates; the local router's canary and the cluster
controller call the same code. ``moments`` (per-user sums, CTR / CVR / CTCVR with delta-method
variance) · ``sequential`` (mixture confidence sequence, always-valid p-values) · ``fixed_horizon``
(the z-test baseline) · ``srm`` (sequential sample-ratio check) · ``guardrails`` (hard limits) ·
``policy`` (stepping policy and its decisions) · ``running`` (per-user running totals kept as
exact moment sums, for a server that exports them as counters).
"""

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
