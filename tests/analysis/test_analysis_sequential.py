"""The anytime-valid comparison: its boundary is gbstats', and repeated looks keep the level."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm

from serving.analysis import SequentialTest, UserMoments, compare, half_width, mixture_rho, z_test_p_value

# Two arms as exported sums over (impressions, clicks, conversions).
CONTROL = UserMoments.from_sums(
    3000,
    [60000.0, 3050.0, 310.0],
    [[1.6e6, 8.1e4, 8.3e3], [8.1e4, 9800.0, 1150.0], [8.3e3, 1150.0, 420.0]],
)
TREATMENT = UserMoments.from_sums(
    2900,
    [58500.0, 3190.0, 300.0],
    [[1.55e6, 8.4e4, 8.0e3], [8.4e4, 10500.0, 1120.0], [8.0e3, 1120.0, 410.0]],
)
# gbstats 0.8.0 SequentialTwoSidedTTest(RatioStatistic...) on the sums above, alpha 0.05,
# sequential_tuning_parameter 5000: (point estimate, interval, p-value).
GBSTATS_0_8_0 = {
    ("absolute", "ctr"): (
        0.003696581196581193,
        (-0.001837828195613179, 0.009230990588775564),
        0.5021352899695528,
    ),
    ("absolute", "cvr"): (-0.007595457114959653, (-0.031043698976035077, 0.01585278474611577), 1.0),
    ("relative", "ctr"): (
        0.07271963009667921,
        (-0.03999743137254545, 0.18543669156590387),
        0.5687401030569105,
    ),
    ("relative", "cvr"): (-0.07472949742137723, (-0.2966608993625941, 0.14720190451983967), 1.0),
}


@pytest.mark.parametrize(("difference", "metric"), sorted(GBSTATS_0_8_0))
def test_confidence_sequence_equals_the_recorded_gbstats_interval(difference, metric):
    result = compare(CONTROL, TREATMENT, metric, SequentialTest(0.05, 5000, difference))
    estimate, (low, high), p_value = GBSTATS_0_8_0[(difference, metric)]
    assert float(result.estimate) == pytest.approx(estimate, rel=1e-9)
    assert (float(result.lower), float(result.upper)) == pytest.approx((low, high), rel=1e-9)
    assert float(result.p_value) == pytest.approx(p_value, rel=1e-9)


def gbstats_ratio(moments: UserMoments, numerator: int, denominator: int):
    statistics = pytest.importorskip(
        "gbstats.models.statistics",
        reason="gbstats is optional: pip install --no-deps gbstats==0.8.0 (it pins numpy<2, pandas<2)",
    )
    n = int(moments.n)

    def mean(i: int):
        return statistics.SampleMeanStatistic(n=n, sum=moments.sums[i], sum_squares=moments.products[i, i])

    return statistics.RatioStatistic(
        n=n,
        m_statistic=mean(numerator),
        d_statistic=mean(denominator),
        m_d_sum_of_products=moments.products[numerator, denominator],
    )


@pytest.mark.parametrize("difference", ["absolute", "relative"])
@pytest.mark.parametrize(("metric", "numerator", "denominator"), [("ctr", 1, 0), ("cvr", 2, 1)])
@pytest.mark.parametrize("planned_users", [1_000, 20_000])
def test_confidence_sequence_equals_the_installed_gbstats_sequential_interval(
    difference, metric, numerator, denominator, planned_users
):
    control, treatment = (
        gbstats_ratio(CONTROL, numerator, denominator),
        gbstats_ratio(TREATMENT, numerator, denominator),
    )
    from gbstats.frequentist.tests import SequentialConfig, SequentialTwoSidedTTest

    reference = SequentialTwoSidedTTest(
        control,
        treatment,
        SequentialConfig(difference_type=difference, alpha=0.05, sequential_tuning_parameter=planned_users),
    )
    ours = compare(CONTROL, TREATMENT, metric, SequentialTest(0.05, planned_users, difference))
    assert (float(ours.lower), float(ours.upper)) == pytest.approx(reference.confidence_interval, rel=1e-9)
    assert float(ours.p_value) == pytest.approx(reference.p_value, rel=1e-9)


def test_p_value_is_below_alpha_exactly_when_the_sequence_excludes_zero():
    rng = np.random.default_rng(0)
    estimates = rng.normal(0, 0.02, 2000)
    variances = rng.uniform(1e-5, 1e-4, 2000)
    users = rng.integers(100, 50_000, 2000)
    rho = mixture_rho(0.05, 10_000)
    width = half_width(variances, users, rho, 0.05)
    from serving.analysis import always_valid_p_value

    p = always_valid_p_value(estimates, variances, users, rho)
    excludes_zero = np.abs(estimates) > width
    assert np.array_equal(p <= 0.05, excludes_zero)


def test_sequence_is_closest_to_the_fixed_horizon_interval_near_the_planned_size():
    planned = 10_000
    users = np.geomspace(100, 1_000_000, 401)
    # same per-user variance at every size: the estimate's variance falls as 1/users
    ratio = half_width(1.0 / users, users, mixture_rho(0.05, planned), 0.05) / (
        norm.isf(0.025) / np.sqrt(users)
    )
    best = users[np.argmin(ratio)]
    assert planned / 1.5 < best < planned * 1.5
    assert ratio.min() < 1.6  # the price of looking at every size: ~55 % wider at the plan


def _aa_looks(runs: int = 600, users: int = 20_000, look: int = 250) -> tuple[UserMoments, UserMoments]:
    """A/A: experiments of one impression per user at CTR 5 %, a look every ``look`` users."""
    rng = np.random.default_rng(7)
    arm = rng.random((runs, users)) < 0.5
    clicks = (rng.random((runs, users)) < 0.05).astype(float)
    per_look = slice(look - 1, None, look)

    def moments(mask: np.ndarray) -> UserMoments:
        n = np.cumsum(mask, axis=1)[:, per_look].astype(float)
        c = np.cumsum(clicks * mask, axis=1)[:, per_look]
        sums = np.stack([n, c, np.zeros_like(n)], axis=-1)
        products = np.zeros(n.shape + (3, 3))
        products[..., 0, 0], products[..., 0, 1], products[..., 1, 0], products[..., 1, 1] = n, c, c, c
        return UserMoments(n, sums, products)

    return moments(~arm), moments(arm)


MONTE_CARLO_ERROR = 3 * np.sqrt(0.05 * 0.95 / 600)


def test_repeated_looks_keep_the_false_positive_rate_at_most_alpha_where_the_z_test_does_not():
    control, treatment = _aa_looks()
    result = compare(control, treatment, "ctr", SequentialTest(0.05, 20_000, "absolute"))
    sequential_fpr = np.mean(np.any(result.significant, axis=1))
    naive_fpr = np.mean(np.any(z_test_p_value(result.estimate, result.variance) < 0.05, axis=1))
    assert sequential_fpr <= 0.05 + MONTE_CARLO_ERROR
    assert naive_fpr > 0.15


def test_the_planned_effect_test_keeps_the_level_over_repeated_looks():
    control, treatment = _aa_looks()
    # 0.005 absolute = 10 % of the 5 % CTR: the A/A runs' own size, where a test errs most
    test = SequentialTest(0.05, difference="absolute", planned_effect=0.005)
    result = compare(control, treatment, "ctr", test)
    assert np.mean(np.any(result.significant, axis=1)) <= 0.05 + MONTE_CARLO_ERROR


def test_planned_effect_p_value_is_below_alpha_exactly_when_its_sequence_excludes_zero():
    rng = np.random.default_rng(1)
    estimates = rng.normal(0, 0.05, 2000)
    variances = rng.uniform(1e-5, 1e-3, 2000)
    test = SequentialTest(0.05, planned_effect=0.05)
    result_p = test.p_value(estimates, variances, users=None)
    excludes_zero = np.abs(estimates) > test.half_width(variances, users=None)
    assert np.array_equal(result_p <= 0.05, excludes_zero)


def test_planned_effect_sequence_never_gets_narrower_than_half_the_effect():
    width = SequentialTest(planned_effect=0.05).half_width(np.geomspace(1e-1, 1e-9, 50), users=None)
    assert np.all(width >= 0.025) and np.all(np.diff(width) < 0)
    assert width[-1] == pytest.approx(0.025, rel=1e-3)


def test_at_the_planned_effect_it_decides_sooner_than_the_normal_mixture_and_a_fixed_horizon():
    # Brownian estimates of an effect of 1 with variance 1/n, a look every 0.1: the fixed-horizon
    # z-test needs n = (z_0.975 + z_0.8)^2 = 7.85 for 80 % power.
    rng = np.random.default_rng(3)
    fixed = (norm.isf(0.025) + norm.ppf(0.8)) ** 2
    n = np.arange(1, 16) * (fixed / 10)  # looks up to 1.5x the fixed horizon
    steps = rng.normal(np.diff(n, prepend=0.0), np.sqrt(np.diff(n, prepend=0.0)), (2000, len(n)))
    estimates, variances = np.cumsum(steps, axis=1) / n, 1 / n

    def mean_to_decision(test: SequentialTest) -> tuple[float, float]:
        decided = test.p_value(estimates, variances, users=n * 10_000 / fixed) <= 0.05
        first = np.where(decided.any(axis=1), decided.argmax(axis=1), len(n) - 1)
        return float(decided.any(axis=1).mean()), float(n[first].mean())

    power, planned = mean_to_decision(SequentialTest(0.05, planned_effect=1.0))
    _, normal = mean_to_decision(SequentialTest(0.05, planned_users=10_000))
    assert power >= 0.8
    assert planned < fixed < normal


@pytest.mark.parametrize("effect", [0, -0.05, float("nan"), "5%", True])
def test_planned_effect_must_be_a_positive_number(effect):
    with pytest.raises(ValueError, match="planned_effect: expected a number > 0"):
        SequentialTest(planned_effect=effect)


def test_planned_users_and_alpha_are_validated_naming_the_field():
    with pytest.raises(ValueError, match="planned_users"):
        SequentialTest(planned_users=1)
    with pytest.raises(ValueError, match="alpha"):
        SequentialTest(alpha=0.7)
    with pytest.raises(ValueError, match="difference"):
        SequentialTest(difference="ratio")


def test_comparison_without_data_is_not_significant_and_serialises():
    result = compare(UserMoments.empty(), UserMoments.empty(), "ctr", SequentialTest())
    assert float(result.p_value) == 1.0 and not bool(result.significant)
    assert result.to_dict()["interval"] == [None, None]
