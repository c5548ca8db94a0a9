"""The run's Feast store: point-in-time training sets, materialization and online lookups."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from features_world import DAY0, TITLES, read_events

from pipelines.features import (
    create_store,
    embed_texts,
    item_text_embeddings,
    materialize,
    online_features,
    open_store,
    training_frame,
)


def _hours(*hours: float) -> list[pd.Timestamp]:
    return [DAY0 + pd.Timedelta(hours=h) for h in hours]


def _rewrite_user_stats(store, rows: list[tuple[int, pd.Timestamp, int]]) -> None:
    """Replace the store's user_stats table with `(user, time, user_impressions)` rows."""
    frame = pd.DataFrame(rows, columns=["user_id", "event_timestamp", "user_impressions"])
    frame["event_timestamp"] = frame["event_timestamp"].astype("datetime64[us, UTC]")
    frame = frame.assign(
        user_clicks=0, user_conversions=0, user_ctr=np.float32(0), user_cvr=np.float32(0),
        created=frame["event_timestamp"],
    )
    frame.to_parquet(Path(store.repo_path) / "user_stats.parquet", index=False)


def test_feature_rows_stamped_after_an_event_never_reach_its_training_row(store, world):
    # Values change at times that do not sit on any snapshot grid, one microsecond either side
    # of events, exactly at an event, and after every event (999 must appear nowhere).
    micro = pd.Timedelta(microseconds=1)
    _rewrite_user_stats(
        store,
        [
            (1, DAY0, 0), (1, _hours(1.0)[0], 100), (1, _hours(23.99)[0] + micro, 200),
            (1, _hours(30)[0], 300), (1, _hours(100)[0], 999),
            (2, DAY0, 0), (2, _hours(5.5)[0] - micro, 7), (2, _hours(71.5)[0] + micro, 999),
            (3, DAY0, 0), (4, DAY0, 0),
        ],
    )
    events = read_events(world)
    frame = training_frame(store, events)

    by_event = dict(zip(frame["event_id"], frame["user_impressions"], strict=True))
    assert [by_event[i] for i in range(10)] == [100, 100, 7, 100, 200, 7, 7, 0, 300, 7]
    assert 999 not in frame["user_impressions"].tolist()


def test_each_training_row_gets_the_latest_value_at_or_before_its_time(store, world):
    rng = np.random.default_rng(7)
    times = DAY0 + pd.to_timedelta(np.sort(rng.uniform(0, 80 * 3600, 40)), unit="s")
    rows = [(u, DAY0, 0) for u in (1, 2, 3, 4)] + [
        (int(rng.integers(1, 5)), t, int(v)) for v, t in enumerate(times, start=1)
    ]
    _rewrite_user_stats(store, rows)
    events = read_events(world)

    frame = training_frame(store, events)

    table = pd.DataFrame(rows, columns=["user_id", "ts", "expected"]).sort_values("ts")
    table["ts"] = table["ts"].astype(events["ts"].dtype)
    expected = pd.merge_asof(
        events.sort_values("ts"), table, on="ts", by="user_id", direction="backward"
    ).set_index("event_id")["expected"]
    actual = frame.set_index("event_id")["user_impressions"]
    pd.testing.assert_series_equal(actual.sort_index(), expected.sort_index(), check_names=False)


def test_training_rows_count_only_events_before_the_last_snapshot(store, world):
    events = read_events(world)
    frame = training_frame(store, events)
    for row in frame.itertuples():
        snapshot = row.ts.floor("24h")
        earlier = events[events["ts"] < snapshot]
        assert row.user_impressions == (earlier["user_id"] == row.user_id).sum()
        assert row.item_impressions == (earlier["item_id"] == row.item_id).sum()
        assert row.user_impressions < ((events["ts"] <= row.ts) & (events["user_id"] == row.user_id)).sum()


def test_no_event_row_is_dropped_or_reordered(store, world):
    events = read_events(world).sample(frac=1.0, random_state=3)
    frame = training_frame(store, events)
    assert frame["event_id"].tolist() == events["event_id"].tolist()
    assert list(frame.columns[: len(events.columns)]) == list(events.columns)
    # User 4 and item 14 appear only in the events: no profile, but statistics.
    unknown_user = frame[frame["user_id"] == 4].iloc[0]
    assert pd.isna(unknown_user["age_bucket"]) and unknown_user["user_impressions"] == 0
    profiles = ["age_bucket", "gender", "region", "category", "brand", "price"]
    assert frame.drop(columns=profiles).notna().all().all()


def test_training_frame_names_missing_columns(store, world):
    with pytest.raises(ValueError, match="item_id"):
        training_frame(store, read_events(world).drop(columns="item_id"))


def test_training_frame_refuses_events_that_already_carry_a_feature_column(store, world):
    with pytest.raises(ValueError, match="user_ctr"):
        training_frame(store, read_events(world).assign(user_ctr=0.5))


def test_item_text_embeddings_come_once_per_item_with_zeros_for_unknown_items(store, config):
    table = item_text_embeddings(store, [11, 99, 10, 11], as_of=DAY0 + pd.Timedelta(days=3))
    assert table["item_id"].tolist() == [10, 11, 99]
    vectors = np.stack(table["text_embedding"].to_numpy())
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(vectors[:2], embed_texts([TITLES[10], TITLES[11]], config), atol=1e-6)
    assert not vectors[2].any()


def test_item_text_embeddings_default_to_the_latest(store):
    table = item_text_embeddings(store, [12])
    assert np.stack(table["text_embedding"].to_numpy()).any()


def test_open_store_finds_the_store_create_store_made(store):
    reopened = open_store(Path(store.repo_path))
    assert {v.name for v in reopened.list_feature_views()} == {v.name for v in store.list_feature_views()}


def test_open_store_explains_a_missing_store(tmp_path):
    with pytest.raises(FileNotFoundError, match="create_store"):
        open_store(tmp_path)


def test_materialized_online_features_are_the_latest_values(store, tables, config):
    materialize(store, tables.end)
    found = online_features(store, 1, [10, 13])
    assert found.user["user_impressions"] == 5  # all five of user 1's events
    assert found.user["age_bucket"] == "18-24"
    assert found.items["item_impressions"] == [4, 2]
    assert found.items["category"] == ["shoes", "audio"]
    np.testing.assert_allclose(
        np.array(found.items["text_embedding"], dtype=np.float32),
        embed_texts([TITLES[10], TITLES[13]], config),
        atol=1e-6,
    )


def test_unknown_ids_come_back_as_nulls(store, tables):
    materialize(store, tables.end)
    found = online_features(store, 12345, [10, 777])
    assert all(value is None for value in found.user.values())
    assert {name: values[1] for name, values in found.items.items()} == dict.fromkeys(found.items)
    assert found.items["brand"][0] == "Acme"


def test_online_lookup_without_candidates_returns_the_user_only(store, tables):
    materialize(store, tables.end)
    found = online_features(store, 2, [])
    assert found.user["user_impressions"] == 4
    assert all(values == [] for values in found.items.values())


def test_online_lookup_rejects_a_non_integer_id_naming_it(store):
    with pytest.raises(TypeError, match=r"item_ids\[1\]"):
        online_features(store, 1, [10, "11"])


def test_materialize_needs_a_timezone_aware_end(store):
    with pytest.raises(ValueError, match="end"):
        materialize(store, pd.Timestamp("2026-01-04").to_pydatetime())


def test_create_store_never_overwrites_a_feature_store_yaml_it_did_not_write(tmp_path, config):
    user_file = tmp_path / "feature_store.yaml"
    user_file.write_text("project: mine\n")
    with pytest.raises(FileExistsError, match="refusing to overwrite"):
        create_store(tmp_path, config)
    assert user_file.read_text() == "project: mine\n"
