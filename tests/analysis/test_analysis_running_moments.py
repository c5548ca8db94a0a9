"""Per-user running totals: the incrementally kept moment sums equal the batch computation."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from serving.analysis import STATISTICS, UserMoments
from serving.analysis.running import RunningUserMoments


@st.composite
def outcome(draw) -> tuple[int, tuple[int, int, int]]:
    impressions = draw(st.integers(0, 500))
    clicks = draw(st.integers(0, impressions))
    return draw(st.integers(0, 12)), (impressions, clicks, draw(st.integers(0, clicks)))


def batch(reports) -> UserMoments:
    per_user: dict[int, np.ndarray] = {}
    for user, counts in reports:
        per_user[user] = per_user.get(user, np.zeros(3, np.int64)) + counts
    return UserMoments.from_per_user(np.array(list(per_user.values()), np.int64).reshape(-1, 3))


@settings(max_examples=200, deadline=None)
@given(st.lists(outcome(), max_size=60))
def test_incremental_sums_equal_the_batch_moments_of_the_per_user_totals(reports):
    running = RunningUserMoments()
    for user, counts in reports:
        running.add(user, counts)
    assert running.statistics() == batch(reports).statistics()


@settings(max_examples=100, deadline=None)
@given(st.lists(outcome(), max_size=60))
def test_the_returned_increments_add_up_to_the_sums_and_never_go_negative(reports):
    running = RunningUserMoments()
    exported = dict.fromkeys(STATISTICS, 0)
    for user, counts in reports:
        increments = running.add(user, counts)
        assert min(increments.values()) >= 0  # counters can take them
        for name, value in increments.items():
            exported[name] += value
    assert exported == running.statistics()


def test_a_report_splits_into_pieces_without_changing_the_moments():
    whole, pieces = RunningUserMoments(), RunningUserMoments()
    whole.add("u", (30, 4, 1))
    for counts in ((10, 1, 0), (10, 3, 1), (10, 0, 0)):
        pieces.add("u", counts)
    assert whole.statistics() == pieces.statistics()
    assert whole.statistics()["clicks_x_impressions"] == 120


def test_past_the_bound_new_users_are_refused_and_tracked_users_keep_updating():
    running = RunningUserMoments(max_users=2)
    running.add(1, (5, 1, 0))
    running.add(2, (5, 0, 0))
    assert running.add(3, (5, 5, 5)) is None
    assert running.add(1, (5, 1, 1)) is not None
    assert running.users == 2
    assert running.statistics() == batch([(1, (10, 2, 1)), (2, (5, 0, 0))]).statistics()


def test_the_state_reads_back_as_the_analysis_moments():
    running = RunningUserMoments()
    running.add(7, (20, 3, 1))
    running.add(8, (4, 0, 0))
    moments = running.moments()
    assert float(moments.n) == 2 and moments.sums.tolist() == [24, 3, 1]
    assert moments.products[0, 1] == moments.products[1, 0] == 60


@pytest.mark.parametrize("counts", [(1, 2), (-1, 0, 0)])
def test_impossible_counts_are_refused_naming_them(counts):
    with pytest.raises(ValueError, match="counts: expected 3 counts >= 0"):
        RunningUserMoments().add(1, counts)


def test_a_zero_bound_is_refused_naming_it():
    with pytest.raises(ValueError, match="max_users"):
        RunningUserMoments(max_users=0)
