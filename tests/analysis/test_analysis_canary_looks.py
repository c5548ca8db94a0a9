"""The local canary's sequential rule: a look at any time, a verdict at the end of the budget."""

from __future__ import annotations

import json

import numpy as np
import pytest
from analysis_data import users

from serving.analysis import UserMoments, per_trial_variance, z_test_p_value
from serving.canary import CanaryConfig, assess, conclude
from serving.metrics import ArmStats

CONFIG = CanaryConfig(canary_percent=50, min_requests_per_arm=100, planned_users=4000, max_p99_ms=250.0)


def arm(rows: np.ndarray, *, requests: int = 1000, errors: int = 0, p99_ms: float | None = 40.0) -> ArmStats:
    totals = rows.sum(axis=0)
    return ArmStats(
        requests=requests,
        errors=errors,
        rejected=0,
        p50_ms=None if p99_ms is None else p99_ms / 4,
        p99_ms=p99_ms,
        impressions=int(totals[0]),
        clicks=int(totals[1]),
        conversions=int(totals[2]),
        users=len(rows),
        per_user=rows,
    )


def arms(
    n_primary: int = 2000, n_canary: int = 2000, canary_ctr: float = 0.05, **canary
) -> dict[str, ArmStats]:
    rng = np.random.default_rng(0)
    return {
        "primary": arm(users(rng, n_primary, ctr=0.05, spread=20.0)),
        "canary": arm(users(rng, n_canary, ctr=canary_ctr, spread=20.0), **canary),
    }


def test_equal_arms_continue_and_are_promoted_at_the_end_as_not_shown_worse():
    stats = arms()
    look = assess(stats, CONFIG)
    assert look.action == "continue"
    verdict = conclude(stats, look, CONFIG)
    assert verdict.decision == "promote" and verdict.reasons[0].startswith("not shown worse")


def test_a_canary_with_clearly_lower_ctr_across_users_is_rolled_back_at_the_look():
    look = assess(arms(canary_ctr=0.035), CONFIG)
    assert look.action == "rollback"
    assert look.evidence["metrics"]["ctr"]["interval"][1] < 0


def test_a_drop_carried_by_a_few_heavy_users_is_noise_to_the_user_level_rule_only():
    # 20 users x 1,000 impressions per arm; half click 2 %, half about 10 %: the canary's CTR is
    # 10 % lower, which 40,000 "independent" impressions call significant and 40 users do not.
    light, heavy = [[1000, 20, 2]] * 10, [[1000, 100, 10]] * 10
    stats = {
        "primary": arm(np.array(light + heavy)),
        "canary": arm(np.array(light + [[1000, 88, 9]] * 10)),
    }
    totals = [UserMoments.from_per_user(stats[arm].per_user) for arm in ("primary", "canary")]
    ctr = [float(m.total("clicks") / m.total("impressions")) for m in totals]
    per_impression = sum(float(per_trial_variance(m, "ctr")) for m in totals)
    assert z_test_p_value(ctr[1] - ctr[0], per_impression) < 0.01
    assert assess(stats, CONFIG).action != "rollback"


def test_an_erroring_canary_is_rolled_back_at_the_first_look():
    look = assess(arms(n_primary=50, n_canary=50, requests=100, errors=30), CONFIG)
    assert look.action == "rollback" and "error_rate" in look.reasons[0]


def test_invalid_answers_above_the_limit_roll_back():
    look = assess(arms(), CONFIG, invalid=50)
    assert look.action == "rollback" and "invalid_rate" in look.reasons[0]


def test_a_user_split_far_from_the_weight_rolls_back():
    look = assess(arms(n_primary=3000, n_canary=2000), CONFIG)
    assert look.action == "rollback" and "sample ratio mismatch" in look.reasons[0]


def test_too_few_requests_at_the_end_roll_back_for_lack_of_evidence():
    stats = arms(n_primary=40, n_canary=40, requests=60)
    verdict = conclude(stats, assess(stats, CONFIG), CONFIG)
    assert verdict.decision == "rollback" and "too few requests" in verdict.reasons[0]


def test_a_rollback_look_is_the_verdict_with_its_reasons():
    stats = arms(canary_ctr=0.035)
    look = assess(stats, CONFIG)
    verdict = conclude(stats, look, CONFIG)
    assert (verdict.decision, verdict.reasons) == ("rollback", look.reasons)
    assert json.loads(json.dumps(verdict.to_dict()))["evidence"]["srm"]["mismatch"] is False


def test_a_tolerated_drop_is_not_a_rollback():
    tolerant = CanaryConfig(min_requests_per_arm=100, planned_users=4000, min_relative_ctr=0.5)
    assert assess(arms(canary_ctr=0.035), tolerant).action != "rollback"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("look_every_requests", 0),
        ("planned_users", 1),
        ("planned_effect", 0.0),
        ("max_invalid_rate", 2.0),
        ("srm_alpha", 1.0),
    ],
)
def test_invalid_analysis_settings_name_the_field(field, value):
    with pytest.raises(ValueError, match=f"canary.{field}"):
        CanaryConfig(**{field: value})
