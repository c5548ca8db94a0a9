"""The ranking blend pCTR + w·pCTCVR."""

from __future__ import annotations

import numpy as np
import pytest

from serving.ranking import RankingConfig, rank_order, ranking_score

SCORES = {"click": np.array([0.10, 0.08, 0.10]), "conversion": np.array([0.00, 0.05, 0.01])}


def test_without_conversion_weight_items_rank_by_click_probability_ties_in_request_order():
    order = rank_order(SCORES, RankingConfig(conversion_weight=0.0), conversion_given_click=False)
    assert order.tolist() == [0, 2, 1]


def test_conversion_weight_lifts_items_that_convert():
    order = rank_order(SCORES, RankingConfig(conversion_weight=1.0), conversion_given_click=False)
    assert order.tolist() == [1, 2, 0]


def test_a_post_click_conversion_head_is_turned_into_ctcvr():
    score = ranking_score(SCORES, RankingConfig(conversion_weight=2.0), conversion_given_click=True)
    assert score == pytest.approx(SCORES["click"] + 2.0 * SCORES["click"] * SCORES["conversion"])


def test_a_model_without_the_click_task_is_an_error_naming_it():
    with pytest.raises(ValueError, match="click_task"):
        ranking_score({"conversion": SCORES["conversion"]}, RankingConfig(), conversion_given_click=False)


@pytest.mark.parametrize("weight", [-1.0, float("inf"), "1"])
def test_invalid_weight_is_rejected_naming_the_field(weight):
    with pytest.raises(ValueError, match="conversion_weight"):
        RankingConfig(conversion_weight=weight)
