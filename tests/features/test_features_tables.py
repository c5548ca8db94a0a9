"""Feature tables: leak-free statistics snapshots and a row for every entity at the data start."""

from pathlib import Path

import pandas as pd
import pytest
from features_world import DAY0, write_world

from pipelines.features import FeatureConfig, build_feature_tables, read_events


def _rows(tables, view: str, key: str, entity: int) -> pd.DataFrame:
    frame = pd.read_parquet(tables.path(view))
    return frame[frame[key] == entity].sort_values("event_timestamp").reset_index(drop=True)


def test_snapshots_count_only_events_strictly_before_them(tables):
    rows = _rows(tables, "user_stats", "user_id", 1)
    # User 1: three events before hour 24 (one click), one exactly at hour 24 (click and
    # conversion), one at hour 50 (click). The hour-24 event is not in the hour-24 snapshot.
    hours = (0, 24, 48, 72)
    assert rows["event_timestamp"].tolist() == [DAY0 + pd.Timedelta(hours=h) for h in hours]
    assert rows["user_impressions"].tolist() == [0, 3, 4, 5]
    assert rows["user_clicks"].tolist() == [0, 1, 2, 3]
    assert rows["user_conversions"].tolist() == [0, 0, 1, 1]


def test_every_user_and_item_has_a_row_at_the_data_start(tables):
    for view, key, expected in [
        ("user_stats", "user_id", {1, 2, 3, 4}),
        ("item_stats", "item_id", {10, 11, 12, 13, 14}),
        ("user_profile", "user_id", {1, 2, 3}),
        ("item_profile", "item_id", {10, 11, 12, 13}),
        ("item_text_embedding", "item_id", {10, 11, 12, 13}),
    ]:
        frame = pd.read_parquet(tables.path(view))
        first = frame[frame["event_timestamp"] == tables.start]
        assert set(first[key]) == expected, view
        assert frame["event_timestamp"].min() == tables.start, view


def test_data_start_is_at_or_before_the_first_event_and_end_after_the_last(tables):
    assert tables.start == DAY0
    assert tables.end == DAY0 + pd.Timedelta(hours=72)


def test_stats_rows_are_written_only_when_counts_change(tables):
    # User 3 has no events: only the zero row. User 4's first event is at hour 49.
    assert len(_rows(tables, "user_stats", "user_id", 3)) == 1
    rows = _rows(tables, "user_stats", "user_id", 4)
    assert rows["user_impressions"].tolist() == [0, 1]
    assert rows["event_timestamp"].iloc[-1] == DAY0 + pd.Timedelta(hours=72)


def test_rates_are_smoothed_toward_the_global_rate_before_the_snapshot(tables):
    # Before hour 24: 4 impressions, 2 clicks, 1 conversion overall; user 1 has 3, 1, 0.
    row = _rows(tables, "user_stats", "user_id", 1).iloc[1]
    assert row["user_ctr"] == pytest.approx((1 + 20 * 0.5) / (3 + 20), rel=1e-6)
    assert row["user_cvr"] == pytest.approx((0 + 20 * 0.5) / (1 + 20), rel=1e-6)


def test_zero_prior_strength_gives_raw_rates(world, tmp_path, embedding_cache):
    config = FeatureConfig(ctr_prior_strength=0.0, cache_dir=str(embedding_cache))
    tables = build_feature_tables(world, tmp_path, config)
    row = _rows(tables, "user_stats", "user_id", 1).iloc[1]
    assert row["user_ctr"] == pytest.approx(1 / 3, rel=1e-6)
    assert row["user_cvr"] == 0.0


def test_stats_snapshot_interval_is_configurable(world, tmp_path, embedding_cache):
    config = FeatureConfig(stats_interval_hours=12, cache_dir=str(embedding_cache))
    tables = build_feature_tables(world, tmp_path, config)
    rows = _rows(tables, "user_stats", "user_id", 1)
    hours = (0, 12, 24, 36, 60)
    assert rows["event_timestamp"].tolist() == [DAY0 + pd.Timedelta(hours=h) for h in hours]
    assert rows["user_impressions"].tolist() == [0, 2, 3, 4, 5]


def test_missing_event_column_is_named(tmp_path: Path, config):
    world = write_world(tmp_path / "world")
    for part in (world / "events").glob("*.parquet"):
        pd.read_parquet(part).drop(columns="click").to_parquet(part)
    with pytest.raises(ValueError, match="click"):
        build_feature_tables(world, tmp_path / "out", config)


def test_missing_events_folder_names_the_expected_path(tmp_path: Path, config):
    with pytest.raises(FileNotFoundError, match="events"):
        build_feature_tables(tmp_path, tmp_path / "out", config)


def test_read_events_returns_every_column_of_every_chunk(world):
    events = read_events(world)
    assert len(events) == 10 and events["event_id"].tolist() == list(range(10))
    assert "position" in events.columns and str(events["ts"].dtype) == "datetime64[us, UTC]"
