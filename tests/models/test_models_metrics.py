import math

import numpy as np
from sklearn.metrics import roc_auc_score

from models.metrics import auc, calibration, gauc, logloss, ndcg


def test_auc_matches_scikit_learn_with_ties():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 500)
    scores = np.round(rng.random(500), 1)
    assert math.isclose(auc(labels, scores), roc_auc_score(labels, scores), rel_tol=1e-12)


def test_auc_is_nan_for_a_single_class():
    assert math.isnan(auc(np.zeros(5), np.arange(5)))


def test_gauc_weights_users_by_impressions_and_drops_single_class_users():
    labels = np.array([1, 0, 0, 1, 0, 1, 1])
    scores = np.array([0.9, 0.1, 0.2, 0.3, 0.8, 0.5, 0.6])
    users = np.array([1, 1, 1, 2, 2, 3, 3])
    user1 = 1.0
    user2 = 0.0
    expected = (3 * user1 + 2 * user2) / 5
    assert math.isclose(gauc(labels, scores, users), expected)


def test_logloss_of_perfect_predictions_is_near_zero():
    assert logloss(np.array([1, 0]), np.array([1.0, 0.0])) < 1e-6


def test_ndcg_is_one_for_the_ideal_order_and_skips_lists_without_gain():
    labels = np.array([1, 0, 0, 0, 0, 0])
    lists = np.array([1, 1, 1, 2, 2, 2])
    assert ndcg(labels, np.array([0.9, 0.5, 0.1, 0.3, 0.2, 0.1]), lists) == 1.0


def test_ndcg_discounts_a_positive_ranked_third_by_log2_of_four():
    labels = np.array([0, 0, 1])
    assert math.isclose(ndcg(labels, np.array([0.9, 0.5, 0.1]), np.zeros(3)), 1 / math.log2(4))


def test_ndcg_counts_only_the_top_k():
    labels = np.array([0, 0, 1])
    assert ndcg(labels, np.array([0.9, 0.5, 0.1]), np.zeros(3), k=2) == 0.0


def test_calibration_is_the_ratio_of_mean_prediction_to_observed_rate():
    labels = np.array([1, 0, 0, 0])
    result = calibration(labels, np.full(4, 0.5), bins=1)
    assert math.isclose(result["calibration"], 2.0)
    assert math.isclose(result["ece"], 0.25)


def test_perfectly_calibrated_bins_have_zero_expected_calibration_error():
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1] * 10)
    predictions = np.array([0.0] * 4 + [1.0] * 4 + [0.0] * 4 + [1.0] * 4)
    assert calibration(labels[:16], predictions, bins=2)["ece"] == 0.0
