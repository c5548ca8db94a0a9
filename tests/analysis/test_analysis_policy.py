"""The stepping policy: every transition, each with its evidence."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from analysis_data import users

from serving.analysis import (
    ArmWindow,
    GuardrailLimits,
    RolloutPolicy,
    RolloutState,
    ServingCounters,
    UserMoments,
    evaluate,
)

POLICY = RolloutPolicy(
    steps=(0.05, 0.10, 0.25, 0.50),
    min_canary_users_per_step=200,
    min_seconds_per_step=60.0,
    max_duration_s=3600.0,
    planned_users=400_000,
    metrics=(("ctr", 0.05), ("cvr", 0.05)),
    guardrails=GuardrailLimits(max_error_rate=0.01, max_p99_ms=250.0, min_requests=20),
)
HEALTHY = ServingCounters(requests=5000, errors=2, invalid=0, p99_ms=60.0)


def window(
    step: int,
    total_users: int,
    *,
    ctr: float = 0.05,
    canary_ctr: float | None = None,
    canary_share: float | None = None,
    serving: ServingCounters = HEALTHY,
    seed: int = 0,
) -> tuple[ArmWindow, ArmWindow]:
    """Primary and canary windows of one step with ``total_users`` users split by its weight."""
    rng = np.random.default_rng(seed)
    share = POLICY.steps[step] if canary_share is None else canary_share
    n_canary = int(round(total_users * share))
    primary = users(rng, total_users - n_canary, ctr=ctr, spread=20.0)
    canary = users(rng, n_canary, ctr=ctr if canary_ctr is None else canary_ctr, spread=20.0)
    return (
        ArmWindow(UserMoments.from_per_user(primary), HEALTHY),
        ArmWindow(UserMoments.from_per_user(canary), serving),
    )


def look(state: RolloutState, now_s: float, **kwargs):
    primary, canary = window(state.step, **kwargs)
    return evaluate(POLICY, state, primary, canary, now_s)


def test_a_step_without_enough_canary_users_continues():
    decision = look(RolloutState.start(0.0), 600.0, total_users=1000)  # 50 canary users at 5 %
    assert decision.action == "continue" and decision.weight == 0.05
    assert decision.evidence["requirements"]["canary_users"] == {"value": 50, "min": 200}


def test_a_step_shorter_than_its_minimum_time_continues():
    assert look(RolloutState.start(0.0), 30.0, total_users=8000).action == "continue"


def test_a_healthy_canary_steps_through_every_weight_then_promotes():
    state, actions, weights = RolloutState.start(0.0), [], []
    for step in range(len(POLICY.steps)):
        now = state.step_started_s + 120.0
        decision = look(state, now, total_users=12_000 if step < 3 else 400_000, seed=step)
        actions.append(decision.action)
        weights.append(decision.weight)
        state = decision.state
    assert actions == ["step", "step", "step", "promote"]
    assert weights == [0.10, 0.25, 0.50, 1.0]


def test_stepping_restarts_the_step_clock():
    decision = look(RolloutState.start(0.0), 120.0, total_users=8000)
    assert decision.action == "step"
    assert (decision.state.step, decision.state.step_started_s, decision.state.started_s) == (1, 120.0, 0.0)


def test_the_last_step_waits_while_the_evidence_is_inconclusive():
    decision = look(RolloutState(3, 0.0, 0.0), 120.0, total_users=2000)
    assert decision.action == "continue" and decision.weight == 0.5


def test_a_canary_error_spike_rolls_back_at_the_first_look():
    dead = ServingCounters(requests=40, errors=40, p99_ms=3.0)
    decision = look(RolloutState.start(0.0), 5.0, total_users=100, serving=dead)
    assert decision.action == "rollback" and decision.weight == 0.0
    assert decision.evidence["guardrails"]["error_rate"]["ok"] is False
    assert "error_rate" in decision.reasons[0]


def test_a_slow_canary_rolls_back():
    slow = ServingCounters(requests=500, errors=0, p99_ms=900.0)
    assert look(RolloutState.start(0.0), 5.0, total_users=100, serving=slow).action == "rollback"


def test_a_broken_split_rolls_back_naming_the_mismatch():
    decision = look(RolloutState(3, 0.0, 0.0), 120.0, total_users=10_000, canary_share=0.45)
    assert decision.action == "rollback"
    assert "sample ratio mismatch" in decision.reasons[0]
    assert decision.evidence["srm"]["mismatch"] is True


def test_a_clearly_worse_ctr_rolls_back_with_its_interval():
    decision = look(RolloutState(3, 0.0, 0.0), 120.0, total_users=40_000, canary_ctr=0.04)
    assert decision.action == "rollback"
    ctr = decision.evidence["metrics"]["ctr"]
    assert ctr["interval"][1] < -0.05 and ctr["p_value"] < POLICY.alpha
    assert "CTR worse" in decision.reasons[0]


def test_a_rollout_past_its_maximum_duration_is_inconclusive():
    decision = look(RolloutState(3, 0.0, 3000.0), 3700.0, total_users=2000)
    assert decision.action == "inconclusive" and decision.weight == 0.0


def test_a_decision_and_its_evidence_are_json():
    decision = look(RolloutState.start(0.0), 120.0, total_users=8000)
    evidence = json.loads(json.dumps(decision.to_dict()))
    assert set(evidence["evidence"]["metrics"]) == {"ctr", "cvr"}
    assert {"estimate", "interval", "p_value", "users"} <= set(evidence["evidence"]["metrics"]["ctr"])


def test_each_metric_is_judged_against_its_own_tolerated_drop():
    strict_cvr = RolloutPolicy(
        steps=POLICY.steps,
        min_canary_users_per_step=200,
        min_seconds_per_step=60.0,
        planned_users=400_000,
        metrics=(("ctr", 0.30), ("cvr", 0.0)),
    )
    primary, canary = window(3, 40_000, canary_ctr=0.04)  # CTR 20 % lower: within 30 %
    decision = evaluate(strict_cvr, RolloutState(3, 0.0, 0.0), primary, canary, 120.0)
    assert decision.action != "rollback"
    assert decision.evidence["tolerated_relative_drop"] == {"ctr": 0.30, "cvr": 0.0}


def test_with_requests_as_the_unit_the_split_is_checked_on_requests_not_users():
    per_request = dataclasses.replace(POLICY, srm_unit="requests")
    primary, canary = window(3, 10_000, canary_share=0.45)  # users off the weight, requests on it
    primary = dataclasses.replace(primary, serving=ServingCounters(requests=5000, errors=0, p99_ms=60.0))
    canary = dataclasses.replace(canary, serving=ServingCounters(requests=5000, errors=0, p99_ms=60.0))
    decision = evaluate(per_request, RolloutState(3, 0.0, 0.0), primary, canary, 120.0)
    srm = decision.evidence["srm"]
    assert (srm["counts"], srm["unit"], srm["mismatch"]) == ([5000, 5000], "requests", False)


def test_missing_evidence_holds_the_step_instead_of_judging_the_metrics():
    primary, canary = window(3, 40_000, canary_ctr=0.04)  # would roll back on CTR
    decision = evaluate(POLICY, RolloutState(3, 0.0, 0.0), primary, canary, 120.0, ("counters were reset",))
    assert (decision.action, decision.weight) == ("continue", 0.5)
    assert decision.reasons == ("evidence incomplete: counters were reset",)
    assert decision.evidence["missing_evidence"] == ["counters were reset"]


def test_missing_evidence_still_rolls_back_a_broken_guardrail():
    dead = ServingCounters(requests=40, errors=40, p99_ms=3.0)
    primary, canary = window(0, 100, serving=dead)
    decision = evaluate(POLICY, RolloutState.start(0.0), primary, canary, 5.0, ("counters were reset",))
    assert decision.action == "rollback" and "error_rate" in decision.reasons[0]


def test_missing_evidence_past_the_maximum_duration_is_inconclusive():
    primary, canary = window(3, 2000)
    decision = evaluate(POLICY, RolloutState(3, 0.0, 0.0), primary, canary, 3700.0, ("counters were reset",))
    assert decision.action == "inconclusive" and decision.reasons[0] == "counters were reset"


def test_each_step_tests_at_its_share_of_alpha():
    assert POLICY.test.alpha == pytest.approx(POLICY.alpha / len(POLICY.steps))


def test_a_planned_effect_makes_every_step_test_for_that_effect():
    planned = dataclasses.replace(POLICY, planned_effect=0.05)
    assert (POLICY.test.planned_effect, planned.test.planned_effect) == (None, 0.05)


def test_a_planned_effect_test_rolls_back_a_canary_worse_by_that_effect():
    planned = dataclasses.replace(POLICY, planned_effect=0.2)
    primary, canary = window(3, total_users=40_000, canary_ctr=0.04)
    decision = evaluate(planned, RolloutState(3, 0.0, 0.0), primary, canary, 120.0)
    assert decision.action == "rollback" and "CTR worse" in decision.reasons[0]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("steps", (0.1, 0.05)),
        ("steps", (0.5, 1.0)),
        ("steps", ()),
        ("steps", 0.5),
        ("min_canary_users_per_step", 1),
        ("max_duration_s", 0),
        ("metrics", (("ctr", 0.02), ("revenue", 0.02))),
        ("metrics", (("ctr", 1.0),)),
        ("metrics", ("ctr", "cvr")),
        ("metrics", "ctr"),
        ("metrics", (("ctr", 0.02), ("ctr", 0.05))),
        ("max_duration_s", float("nan")),
        ("alpha", 0.9),
        ("planned_users", 1),
        ("planned_effect", 0.0),
        ("srm_alpha", 0.0),
        ("srm_unit", "sessions"),
    ],
)
def test_invalid_policy_names_the_field(field, value):
    with pytest.raises(ValueError, match=f"^{field}:"):
        RolloutPolicy(**{field: value})


def test_a_state_beyond_the_last_step_is_rejected():
    primary, canary = window(0, 1000)
    with pytest.raises(ValueError, match="state.step"):
        evaluate(POLICY, RolloutState(4, 0.0, 0.0), primary, canary, 10.0)
