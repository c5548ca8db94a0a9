"""Sticky, symmetric user assignment of the canary router."""

from __future__ import annotations

import numpy as np
import pytest

from serving.router import CANARY, PRIMARY, CanaryRouter, assign_arm, assignment_point

USERS = range(1, 20_001)


def canary_users(weight: float, salt: str = "exp") -> set[int]:
    return {u for u in USERS if assign_arm(u, salt, weight) == CANARY}


def test_a_user_always_gets_the_same_arm():
    assert [assign_arm(42, "exp", 0.5) for _ in range(10)] == [assign_arm(42, "exp", 0.5)] * 10


def test_assignment_points_are_uniform_on_the_unit_interval():
    points = np.array([assignment_point(u, "exp") for u in USERS])
    assert points.min() >= 0.0 and points.max() < 1.0
    counts, _ = np.histogram(points, bins=10, range=(0, 1))
    assert counts.min() > 1800 and counts.max() < 2200


@pytest.mark.parametrize("weight", [0.05, 0.25, 0.5, 0.9])
def test_canary_share_matches_the_weight(weight):
    assert len(canary_users(weight)) / len(USERS) == pytest.approx(weight, abs=0.015)


def test_raising_the_weight_only_moves_primary_users_to_the_canary():
    before, after = canary_users(0.10), canary_users(0.25)
    assert before <= after
    moved = after - before
    assert len(moved) / len(USERS) == pytest.approx(0.15, abs=0.015)


def test_both_arms_use_the_same_rule():
    # Symmetric: the primary arm is exactly the complement of the canary arm at every weight.
    for weight in (0.1, 0.5):
        primary = {u for u in USERS if assign_arm(u, "exp", weight) == PRIMARY}
        assert primary == set(USERS) - canary_users(weight)


def test_weights_zero_and_one_send_everyone_to_one_arm():
    assert canary_users(0.0) == set() and canary_users(1.0) == set(USERS)


def test_a_different_salt_reshuffles_users():
    overlap = len(canary_users(0.5, "exp-a") & canary_users(0.5, "exp-b")) / len(USERS)
    assert overlap == pytest.approx(0.25, abs=0.02)


def test_router_weight_changes_keep_stickiness():
    router = CanaryRouter("http://127.0.0.1:1", "http://127.0.0.1:2", canary_weight=0.1, salt="exp")
    before = {u for u in USERS if router.arm_for(u) == CANARY}
    router.set_canary_weight(0.3)
    after = {u for u in USERS if router.arm_for(u) == CANARY}
    assert before <= after


@pytest.mark.parametrize("weight", [-0.1, 1.5, float("nan"), "half", True])
def test_invalid_weight_is_rejected_naming_the_field(weight):
    with pytest.raises(ValueError, match="canary_weight"):
        CanaryRouter("http://a", "http://b", canary_weight=weight)
