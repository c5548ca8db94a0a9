"""Assignment through a stepped rollout: each step moves only the users it must."""

from __future__ import annotations

import numpy as np
import pytest

from serving.assignment import CANARY, PRIMARY, assign_arm, assignment_point, check_weight

USERS = np.arange(1, 20_001)
SALT = "ranker-v7"
POINTS = np.array([assignment_point(int(u), SALT) for u in USERS])
STEPS = (0.05, 0.10, 0.25, 0.50)


def canary_set(weight: float) -> set[int]:
    return {int(u) for u in USERS if assign_arm(int(u), SALT, weight) == CANARY}


def test_each_step_moves_exactly_the_users_between_the_old_and_the_new_weight():
    previous, weights = canary_set(0.0), (0.0, *STEPS)
    for low, high in zip(weights, weights[1:], strict=False):
        current = canary_set(high)
        assert previous <= current
        assert current - previous == set(USERS[(low <= POINTS) & (high > POINTS)].tolist())
        previous = current


def test_each_step_moves_its_share_of_users_and_no_user_moves_twice():
    arms_per_step = np.array([[assign_arm(int(u), SALT, w) == CANARY for u in USERS[:5000]] for w in STEPS])
    switches = np.diff(arms_per_step.astype(int), axis=0)
    assert switches.min() >= 0  # nobody goes back to the primary while the weight rises
    assert np.all(switches.sum(axis=0) <= 1)
    moved = switches.mean(axis=1)
    assert moved == pytest.approx(np.diff(STEPS), abs=0.015)


def test_the_arm_depends_only_on_the_point_and_the_weight():
    for weight in STEPS:
        expected = np.where(POINTS[:2000] < weight, CANARY, PRIMARY)
        assert [assign_arm(int(u), SALT, weight) for u in USERS[:2000]] == expected.tolist()


def test_rolling_back_to_weight_zero_returns_every_user_to_the_primary():
    assert canary_set(0.0) == set()


@pytest.mark.parametrize("weight", [-0.01, 1.01, float("inf"), None])
def test_a_weight_outside_zero_to_one_is_rejected_naming_the_field(weight):
    with pytest.raises(ValueError, match="canary_weight"):
        check_weight(weight)
