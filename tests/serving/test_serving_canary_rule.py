"""The canary rule: guardrails, CTR and CVR tests, and the config's validation."""

from __future__ import annotations

import json

import numpy as np
import pytest

from serving.canary import CanaryConfig, decide
from serving.metrics import ArmRecorder, ArmStats

CONFIG = CanaryConfig(min_requests_per_arm=100, max_error_rate=0.01, max_p99_ms=250.0)


def arm(
    *,
    requests: int = 1000,
    errors: int = 0,
    p99_ms: float | None = 40.0,
    impressions: int = 10_000,
    clicks: int = 600,
    conversions: int = 60,
) -> ArmStats:
    return ArmStats(
        requests=requests,
        errors=errors,
        rejected=0,
        p50_ms=None if p99_ms is None else p99_ms / 4,
        p99_ms=p99_ms,
        impressions=impressions,
        clicks=clicks,
        conversions=conversions,
        users=300,
    )


def test_equal_arms_are_promoted():
    result = decide({"primary": arm(), "canary": arm()}, CONFIG)
    assert result.decision == "promote"


def test_a_better_canary_is_promoted():
    result = decide({"primary": arm(), "canary": arm(clicks=700, conversions=80)}, CONFIG)
    assert result.decision == "promote"


def test_canary_error_rate_above_the_limit_rolls_back():
    result = decide({"primary": arm(), "canary": arm(errors=20)}, CONFIG)
    assert result.decision == "rollback"
    assert result.evidence["guardrails"]["error_rate"]["ok"] is False


def test_canary_p99_above_the_limit_rolls_back():
    result = decide({"primary": arm(), "canary": arm(p99_ms=400.0)}, CONFIG)
    assert result.decision == "rollback"
    assert result.evidence["guardrails"]["p99_ms"]["ok"] is False


def test_too_few_requests_roll_back_for_lack_of_evidence():
    result = decide({"primary": arm(), "canary": arm(requests=20)}, CONFIG)
    assert result.decision == "rollback"
    assert result.evidence["guardrails"]["min_requests_per_arm"]["ok"] is False


def test_a_canary_that_never_answered_rolls_back():
    result = decide({"primary": arm(), "canary": arm(requests=0, p99_ms=None)}, CONFIG)
    assert result.decision == "rollback"


def test_significantly_lower_ctr_rolls_back():
    result = decide({"primary": arm(clicks=600), "canary": arm(clicks=480)}, CONFIG)
    assert result.decision == "rollback"
    assert result.evidence["ctr"]["significantly_worse"] is True
    assert result.evidence["ctr"]["p_value"] < CONFIG.alpha


def test_a_small_ctr_dip_within_noise_is_promoted():
    result = decide({"primary": arm(clicks=600), "canary": arm(clicks=590)}, CONFIG)
    assert result.decision == "promote"
    assert result.evidence["ctr"]["p_value"] > CONFIG.alpha


def test_significantly_lower_cvr_rolls_back():
    result = decide(
        {"primary": arm(clicks=3000, conversions=600), "canary": arm(clicks=3000, conversions=450)},
        CONFIG,
    )
    assert result.decision == "rollback"
    assert result.evidence["cvr"]["significantly_worse"] is True


def test_a_tolerance_margin_accepts_a_small_significant_drop():
    primary, canary = arm(impressions=200_000, clicks=12_000), arm(impressions=200_000, clicks=11_700)
    strict = decide({"primary": primary, "canary": canary}, CONFIG)
    tolerant = decide(
        {"primary": primary, "canary": canary},
        CanaryConfig(min_requests_per_arm=100, min_relative_ctr=0.95),
    )
    assert (strict.decision, tolerant.decision) == ("rollback", "promote")


def test_decision_and_evidence_are_json_serialisable():
    result = decide({"primary": arm(), "canary": arm(clicks=480)}, CONFIG)
    assert json.loads(json.dumps(result.to_dict()))["decision"] == "rollback"


def test_missing_arm_is_an_error_naming_it():
    with pytest.raises(ValueError, match="canary"):
        decide({"primary": arm()}, CONFIG)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("canary_percent", 0),
        ("canary_percent", 100),
        ("canary_percent", 12.5),
        ("num_requests", 0),
        ("slate_size", 60),
        ("candidates_per_request", 501),
        ("max_error_rate", 1.5),
        ("max_p99_ms", 0),
        ("alpha", 0.7),
        ("min_relative_ctr", 1.2),
        ("min_relative_cvr", 0.0),
        ("concurrency", True),
        ("salt", ""),
    ],
)
def test_invalid_config_names_the_field(field, value):
    with pytest.raises(ValueError, match=f"canary.{field}"):
        CanaryConfig(**{field: value})


def test_recorder_aggregates_outcomes_per_user():
    recorder = ArmRecorder()
    recorder.record_request(10.0)
    recorder.record_request(30.0, error=True)
    recorder.record_outcome(7, impressions=10, clicks=2, conversions=1)
    recorder.record_outcome(7, impressions=10, clicks=1, conversions=0)
    recorder.record_outcome(9, impressions=10, clicks=0, conversions=0)
    stats = recorder.snapshot()
    assert (stats.requests, stats.errors, stats.users) == (2, 1, 2)
    assert (stats.impressions, stats.clicks, stats.conversions) == (30, 3, 1)
    assert sorted(stats.per_user.tolist()) == [[10, 0, 0], [20, 3, 1]]
    assert stats.ctr == pytest.approx(0.1) and stats.cvr == pytest.approx(1 / 3)
    assert np.isclose(stats.p50_ms, 20.0)


def test_recorder_rejects_an_impossible_outcome():
    with pytest.raises(ValueError, match="conversions <= clicks"):
        ArmRecorder().record_outcome(1, impressions=5, clicks=1, conversions=2)
