import math

import numpy as np
from sklearn.metrics import roc_auc_score

from models.metrics import auc, gauc, logloss


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
