"""The predictor's per-version series: user moments exported as counters, every label at 0."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from prometheus_client import REGISTRY

from serving.analysis import STATISTICS, UserMoments
from serving.prometheus_metrics import UNTRACKED_REASONS, OutcomeError, PredictorMetrics

_names = (f"metrics-test-{i}" for i in itertools.count())


def metrics(**kwargs) -> PredictorMetrics:
    return PredictorMetrics(next(_names), "v1", **kwargs)


def exported(m: PredictorMetrics, family: str, label: str, value: str) -> float | None:
    labels = {"model_name": m.model_name, "model_version": m.model_version, label: value}
    return REGISTRY.get_sample_value(f"{family}_total", labels)


def report(m: PredictorMetrics, user, impressions: int, clicks: int, conversions: int) -> None:
    body = {"model_version": "v1", "impressions": impressions, "clicks": clicks, "conversions": conversions}
    m.record_outcome(body if user is None else {**body, "user_id": user})


def test_every_statistic_and_untracked_reason_exists_at_zero_before_any_report():
    m = metrics()
    assert [exported(m, "recforge_user_moments", "statistic", s) for s in STATISTICS] == [0.0] * 10
    assert [exported(m, "recforge_user_moments_untracked", "reason", r) for r in UNTRACKED_REASONS] == [0, 0]
    start = REGISTRY.get_sample_value(
        "recforge_user_moments_start_time_seconds", {"model_name": m.model_name, "model_version": "v1"}
    )
    assert start > 1.6e9


def test_exported_user_moments_equal_the_moments_of_the_per_user_totals():
    m = metrics()
    reports = [(7, 10, 2, 1), ("anna", 10, 0, 0), (7, 10, 1, 0), (9, 5, 5, 2), ("anna", 3, 1, 1)]
    for user, *counts in reports:
        report(m, user, *counts)
    expected = UserMoments.from_per_user(np.array([[20, 3, 1], [13, 1, 1], [5, 5, 2]])).statistics()
    assert {s: exported(m, "recforge_user_moments", "statistic", s) for s in STATISTICS} == expected


def test_a_report_without_a_user_counts_in_the_totals_and_as_untracked():
    m = metrics()
    report(m, None, 10, 1, 0)
    assert exported(m, "recforge_outcomes", "kind", "impressions") == 10
    assert exported(m, "recforge_user_moments", "statistic", "users") == 0
    assert exported(m, "recforge_user_moments_untracked", "reason", "no_user_id") == 1


def test_new_users_past_the_bound_are_counted_as_untracked_for_capacity():
    m = metrics(max_tracked_users=1)
    report(m, 1, 10, 1, 0)
    report(m, 2, 10, 1, 0)
    report(m, 1, 10, 1, 0)
    assert exported(m, "recforge_user_moments", "statistic", "users") == 1
    assert exported(m, "recforge_user_moments", "statistic", "impressions") == 20
    assert exported(m, "recforge_user_moments_untracked", "reason", "capacity") == 1


def test_a_reload_of_the_same_version_continues_the_same_user_state():
    first = metrics()
    report(first, 1, 10, 1, 0)
    again = PredictorMetrics(first.model_name, "v1")
    report(again, 1, 10, 1, 0)
    assert exported(again, "recforge_user_moments", "statistic", "users") == 1
    assert exported(again, "recforge_user_moments", "statistic", "impressions_x_impressions") == 400


@pytest.mark.parametrize("user", [True, 1.5, "", "x" * 257, [1]])
def test_a_malformed_user_id_is_refused_naming_the_field(user):
    with pytest.raises(OutcomeError, match="user_id: expected an integer or a string"):
        report(metrics(), user, 1, 0, 0)
