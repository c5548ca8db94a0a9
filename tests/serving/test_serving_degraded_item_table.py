"""Item features held in memory (bounded staleness): the same values as Feast's own lookup, new
items fetched once, a refresh picks up what the store has now."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
from feast import FeatureStore

import feature_repo
from serving.feature_source import FeastOnlineSource, OnlineFeatures, OnlineFeaturesConfig
from serving.server import main

ITEMS = np.array([3, 999_999, 1, 5])  # 999_999 is not in the store


@pytest.fixture(scope="module")
def repo(make_feast_repo, tmp_path_factory):
    """An SQLite-backed repo of this module's own (a test writes to it)."""
    root = tmp_path_factory.mktemp("item-table")
    return make_feast_repo(root, {"type": "sqlite", "path": str(root / "online.db")})


@pytest.fixture
def online(repo) -> Iterator[OnlineFeatures]:
    features = OnlineFeatures(FeastOnlineSource(repo), model_name="item-table-test", preload_items=[1, 2, 3])
    yield features
    features.close()


def plain(values) -> list:
    """A column as plain values, None where missing (NaN, or a zero vector, in memory)."""
    out = []
    for value in list(values):
        if isinstance(value, np.ndarray):
            value = None if not value.any() else value.tolist()
        elif isinstance(value, float) and np.isnan(value):
            value = None
        out.append(value.item() if isinstance(value, np.generic) else value)
    return out


def test_lookup_gives_the_values_of_feasts_own_lookup(repo, online):
    direct = FeastOnlineSource(repo).fetch(2, ITEMS)
    held = online.lookup(2, ITEMS)
    assert held.degraded is None and set(held.columns) == set(direct)
    for name, values in direct.items():
        if name == "text_embedding":
            assert [v is None for v in values] == [v is None for v in plain(held.columns[name])]
            np.testing.assert_allclose(held.columns[name][0], values[0], rtol=1e-6)
        else:
            assert plain(held.columns[name]) == pytest.approx(plain(values)), name


def test_preloaded_items_are_held_in_memory_from_the_start(online):
    assert online.items_held == 3


def test_a_new_item_is_fetched_then_held(online):
    assert plain(online.lookup(1, np.array([5, 4])).columns["category"]) == ["garden", "shoes"]
    assert online.items_held == 5


def test_new_items_move_to_the_main_table_in_batches(online, monkeypatch):
    monkeypatch.setattr(OnlineFeatures, "RECENT_ITEMS", 2)
    online.lookup(1, np.array([4]))
    found = online.lookup(1, np.array([5, 4, 1]))
    assert plain(found.columns["brand"]) == ["d", "a", "a"] and online.items_held == 5


def test_an_item_the_store_does_not_have_gets_defaults_without_degrading(online):
    found = online.lookup(1, np.array([999_999]))
    assert found.degraded is None and plain(found.columns["price"]) == [None]
    assert online.items_held == 3


@pytest.mark.parametrize("background", [False, True], ids=["in-process", "reader-process"])
def test_a_refresh_serves_what_the_store_has_now(repo, online, background):
    before = plain(online.lookup(1, np.array([1])).columns["category"])
    now = pd.Timestamp.now(tz="UTC")
    category = f"hats-{background}"
    frame = pd.DataFrame(
        {"item_id": [1], "category": [category], "brand": ["z"], "price": np.float32([99.0])}
    ).assign(event_timestamp=now, created=now)
    FeatureStore(repo_path=str(repo)).write_to_online_store(feature_repo.ITEM_PROFILE, frame)
    assert plain(online.lookup(1, np.array([1])).columns["category"]) == before  # held: stale
    assert online.refresh_items(background=background)
    assert plain(online.lookup(1, np.array([1])).columns["category"]) == [category]


@pytest.mark.parametrize(
    "field", ["timeout_s", "retry_after_s", "item_refresh_s", "redis_timeout_s", "max_items"]
)
def test_a_bad_setting_names_the_field(field):
    with pytest.raises(ValueError, match=field):
        OnlineFeaturesConfig(**{field: 0})


def test_a_negative_prepared_items_limit_names_the_field():
    with pytest.raises(ValueError, match="max_prepared_items"):
        OnlineFeaturesConfig(max_prepared_items=-1)


@pytest.mark.parametrize("flag", ["--feature-timeout", "--item-refresh", "--prepared-items"])
def test_a_bad_server_flag_names_the_flag(capsys, tiny_artifact, flag):
    with pytest.raises(SystemExit) as stop:
        main(["--artifact", str(tiny_artifact), flag, "-1"])
    assert stop.value.code == 2 and f"{flag}: expected" in capsys.readouterr().err
