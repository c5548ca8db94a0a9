"""Per-user aggregation and the delta-method variance of CTR, CVR and CTCVR."""

from __future__ import annotations

import numpy as np
import pytest
from analysis_data import users

from serving.analysis import UserMoments, per_trial_variance, ratio_estimate


def bootstrap_variance(rows: np.ndarray, numerator: int, denominator: int, draws: int = 4000) -> float:
    rng = np.random.default_rng(1)
    weights = rng.multinomial(len(rows), np.full(len(rows), 1 / len(rows)), size=draws)
    ratios = (weights @ rows[:, numerator]) / (weights @ rows[:, denominator])
    return float(ratios.var())


@pytest.mark.parametrize(
    ("metric", "numerator", "denominator"), [("ctr", 1, 0), ("cvr", 2, 1), ("ctcvr", 2, 0)]
)
def test_delta_method_variance_matches_a_user_bootstrap(metric, numerator, denominator):
    rows = users(np.random.default_rng(0), 600, ctr=0.1, cvr=0.3, spread=4.0)
    estimate = ratio_estimate(UserMoments.from_per_user(rows), metric)
    assert float(estimate.value) == pytest.approx(rows[:, numerator].sum() / rows[:, denominator].sum())
    assert float(estimate.variance) == pytest.approx(
        bootstrap_variance(rows, numerator, denominator), rel=0.1
    )


def test_delta_method_variance_follows_the_published_formula():
    rows = users(np.random.default_rng(2), 50)
    x, y = rows[:, 1].astype(float), rows[:, 0].astype(float)
    r = x.sum() / y.sum()
    cov = np.cov(x, y)  # sample (co)variances over users, n - 1
    expected = (cov[0, 0] - 2 * r * cov[0, 1] + r**2 * cov[1, 1]) / (len(rows) * y.mean() ** 2)
    assert float(ratio_estimate(UserMoments.from_per_user(rows), "ctr").variance) == pytest.approx(expected)


def test_with_one_impression_per_user_the_user_variance_is_the_binomial_one():
    rng = np.random.default_rng(3)
    clicks = rng.binomial(1, 0.05, 5000)
    rows = np.stack([np.ones_like(clicks), clicks, np.zeros_like(clicks)], axis=1)
    moments = UserMoments.from_per_user(rows)
    n = len(rows)
    user_level = float(ratio_estimate(moments, "ctr").variance)
    assert user_level == pytest.approx(float(per_trial_variance(moments, "ctr")) * n / (n - 1))


def test_heavy_users_make_the_per_impression_variance_too_small():
    rows = users(np.random.default_rng(4), 2000, mean_impressions=50.0, spread=5.0)
    moments = UserMoments.from_per_user(rows)
    assert float(ratio_estimate(moments, "ctr").variance) > 3 * float(per_trial_variance(moments, "ctr"))


def test_moments_of_disjoint_users_add_up():
    rows = users(np.random.default_rng(5), 300)
    pooled = UserMoments.from_per_user(rows[:100]) + UserMoments.from_per_user(rows[100:])
    whole = UserMoments.from_per_user(rows)
    assert float(pooled.n) == 300
    np.testing.assert_allclose(pooled.sums, whole.sums)
    np.testing.assert_allclose(pooled.products, whole.products)


def test_exported_sums_give_the_same_estimate_as_the_rows():
    rows = users(np.random.default_rng(6), 300)
    values = rows.astype(float)
    exported = UserMoments.from_sums(len(rows), values.sum(axis=0), values.T @ values)
    direct = ratio_estimate(UserMoments.from_per_user(rows), "cvr")
    via_sums = ratio_estimate(exported, "cvr")
    assert (float(via_sums.value), float(via_sums.variance)) == pytest.approx(
        (float(direct.value), float(direct.variance))
    )


def test_a_metric_without_denominator_or_users_has_no_estimate():
    no_clicks = UserMoments.from_per_user(np.array([[10, 0, 0], [5, 0, 0]]))
    assert np.isnan(ratio_estimate(no_clicks, "cvr").value)
    assert np.isnan(ratio_estimate(UserMoments.empty(), "ctr").variance)


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (np.array([[1, 2]]), "shape"),
        (np.array([[10.0, 1.0, 0.0]]), "integer"),
        (np.array([[10, 3, 4]]), "conversions <= clicks"),
        (np.array([[2, 3, 0]]), "clicks <= impressions"),
        (np.array([[-1, 0, 0]]), "0 <= conversions"),
    ],
)
def test_impossible_per_user_rows_are_rejected_naming_the_field(rows, message):
    with pytest.raises(ValueError, match=f"per_user.*{message}|{message}"):
        UserMoments.from_per_user(rows)


def test_malformed_exported_sums_are_rejected():
    with pytest.raises(ValueError, match="sums/products"):
        UserMoments.from_sums(10, [1, 2], np.eye(3))
    with pytest.raises(ValueError, match="users"):
        UserMoments.from_sums(-1, [1, 1, 0], np.eye(3))


def test_unknown_metric_names_the_choices():
    with pytest.raises(ValueError, match="metric: expected one of"):
        ratio_estimate(UserMoments.empty(), "revenue")
