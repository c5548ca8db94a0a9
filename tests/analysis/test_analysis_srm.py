"""Sample-ratio mismatch: caught when the split is broken, quiet under continuous monitoring."""

from __future__ import annotations

import json

import numpy as np
import pytest

from serving.analysis import srm_test
from serving.analysis.srm import log_bayes_factor


def sequential_counts(rng: np.random.Generator, runs: int, users: int, canary_share: float) -> np.ndarray:
    """(runs, users, 2) running user counts per arm as users arrive one by one."""
    canary = np.cumsum(rng.random((runs, users)) < canary_share, axis=1)
    arrived = np.arange(1, users + 1)
    return np.stack([arrived - canary, canary], axis=-1)


def test_a_45_55_split_of_a_50_50_experiment_is_a_mismatch():
    result = srm_test([5500, 4500], [0.5, 0.5])
    assert result.mismatch and result.p_value < 1e-6


def test_a_split_matching_the_weight_is_not_a_mismatch():
    assert not srm_test([9480, 520], [0.95, 0.05]).mismatch


def test_a_broken_45_55_split_is_caught_within_five_thousand_users_in_every_run():
    counts = sequential_counts(np.random.default_rng(0), runs=200, users=5000, canary_share=0.45)
    p_values = np.exp(-log_bayes_factor(counts, [0.5, 0.5]))
    assert np.all(np.any(p_values <= 0.001, axis=1))


def test_checking_after_every_user_keeps_false_alarms_below_alpha():
    counts = sequential_counts(np.random.default_rng(1), runs=500, users=5_000, canary_share=0.1)
    p_values = np.exp(-log_bayes_factor(counts, [0.9, 0.1]))
    ever_flagged = np.mean(np.any(p_values <= 0.05, axis=1))
    assert ever_flagged <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / 500)


def test_result_reports_observed_and_expected_shares_as_json():
    report = json.loads(json.dumps(srm_test([90, 10], [0.9, 0.1]).to_dict()))
    assert report["observed_share"] == [0.9, 0.1] and report["expected_share"] == [0.9, 0.1]


@pytest.mark.parametrize(
    ("counts", "share", "field"),
    [
        ([10], [1.0], "counts/expected_share"),
        ([10, -1], [0.5, 0.5], "counts"),
        ([10, 2.5], [0.5, 0.5], "counts"),
        ([10, 10], [0.6, 0.6], "expected_share"),
        ([10, 10], [1.0, 0.0], "expected_share"),
    ],
)
def test_bad_input_is_rejected_naming_the_field(counts, share, field):
    with pytest.raises(ValueError, match=f"^{field}:"):
        srm_test(counts, share)
