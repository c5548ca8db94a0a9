"""Item tables prepared for the model: which requests get rows of a prepared table, and that a row
is the candidate's own."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import numpy as np
import orjson
import pytest

from serving.feature_source import (
    ITEM_KEY,
    FeastOnlineSource,
    OnlineFeatures,
    OnlineFeaturesConfig,
)

NOT_IN_STORE = 999_999


@pytest.fixture(scope="module")
def repo(make_feast_repo, tmp_path_factory):
    root = tmp_path_factory.mktemp("prepared-items")
    return make_feast_repo(root, {"type": "sqlite", "path": str(root / "online.db")})


def keep_frame(frame):
    """A stand-in preparation that keeps the table's frame, so a test can read rows back."""
    return {name: np.array(values, copy=True) for name, values in frame.items()}


def online_features(repo, **options) -> OnlineFeatures:
    config = OnlineFeaturesConfig(**options.pop("config", {}))
    options.setdefault("prepare", keep_frame)
    return OnlineFeatures(FeastOnlineSource(repo), model_name="prepared-test", config=config, **options)


@pytest.fixture
def online(repo) -> Iterator[OnlineFeatures]:
    features = online_features(repo, preload_items=[1, 2, 3])
    yield features
    features.close()


def test_candidates_held_by_the_prepared_table_get_their_own_rows(online):
    found = online.lookup(2, np.array([3, 1, 2, 3]))
    assert found.items is not None and not found.columns
    assert found.items.prepared[ITEM_KEY][found.items.rows].tolist() == [3, 1, 2, 3]
    assert found.user, "the user's features come with the rows, one value each"
    assert all(np.ndim(value) == 0 or isinstance(value, list) for value in found.user.values())


def test_the_prepared_rows_hold_the_same_features_as_the_columns(repo, online):
    items = np.array([2, 1, 3])
    found = online.lookup(2, items)
    plain = online_features(repo, preload_items=[1, 2, 3], prepare=None)
    try:
        columns = plain.lookup(2, items).columns
    finally:
        plain.close()
    for name, values in found.items.prepared.items():
        if name != ITEM_KEY:
            np.testing.assert_array_equal(values[found.items.rows], columns[name], err_msg=name)


def test_an_item_the_store_lacks_and_nobody_preloaded_takes_the_defaults_row(online):
    found = online.lookup(2, np.array([1, NOT_IN_STORE]))
    assert found.items is not None
    assert found.items.rows.tolist()[1] == 0 and found.items.prepared[ITEM_KEY][0] is None


def test_a_preloaded_item_the_store_lacks_keeps_its_id_through_columns(repo):
    features = online_features(repo, preload_items=[1, 2, 3, NOT_IN_STORE])
    try:
        found = features.lookup(2, np.array([1, NOT_IN_STORE]))
    finally:
        features.close()
    assert found.items is None and set(found.columns)


def test_a_new_item_is_scored_from_columns_until_the_next_refresh(online):
    assert online.lookup(2, np.array([1, 5])).items is None
    assert online.refresh_items()
    found = online.lookup(2, np.array([1, 5]))
    assert found.items is not None and found.items.prepared[ITEM_KEY][found.items.rows].tolist() == [1, 5]


def test_tables_over_max_prepared_items_are_not_prepared(repo, caplog):
    with caplog.at_level(logging.INFO, logger="serving.feature_source"):
        features = online_features(repo, preload_items=[1, 2, 3], config={"max_prepared_items": 2})
    try:
        assert features.lookup(2, np.array([1, 2])).items is None
    finally:
        features.close()
    assert "over max_prepared_items (2)" in caplog.text


def test_a_preparation_that_fails_is_logged_and_requests_get_columns(repo, caplog):
    def broken(frame):
        raise ValueError("no room")

    with caplog.at_level(logging.WARNING, logger="serving.feature_source"):
        features = online_features(repo, preload_items=[1, 2, 3], prepare=broken)
    try:
        found = features.lookup(2, np.array([1, 2]))
    finally:
        features.close()
    assert found.items is None and set(found.columns)
    assert "not prepared for the model (ValueError: no room)" in caplog.text


def test_the_bench_scores_both_ways_alike(sqlite_feast_repo, tiny_artifact):
    from pipelines.bench_serving_scoring import scoring_in_process

    bodies = [
        orjson.dumps({"instances": [{"user_id": user, "item_ids": [1, 2, 3, 4, 5, NOT_IN_STORE],
                                     "context": {"device": "mobile", "hour": 9}}]})
        for user in (1, 2, 3, 12345)
    ]
    result = scoring_in_process(tiny_artifact, sqlite_feast_repo, bodies, rounds=2)
    assert (result["requests"], result["skipped"], result["rounds"]) == (4, 0, 2)
    assert result["max_abs_difference"] < 1e-5
    assert result["full_rows_p50_ms"] > 0 and result["ratio"] == pytest.approx(
        result["prepared_p50_ms"] / result["full_rows_p50_ms"]
    )
