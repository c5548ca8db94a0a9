"""The simulator's files follow the data contract in notes/common.md exactly."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

TS = pa.timestamp("us", tz="UTC")

EVENT_COLUMNS = [
    ("event_id", pa.int64()),
    ("ts", TS),
    ("request_id", pa.int64()),
    ("user_id", pa.int64()),
    ("item_id", pa.int64()),
    ("position", pa.int16()),
    ("device", pa.string()),
    ("surface", pa.string()),
    ("hour", pa.int8()),
    ("click", pa.int8()),
    ("conversion", pa.int8()),
    ("dwell", pa.float32()),
]
USER_COLUMNS = [
    ("user_id", pa.int64()),
    ("age_bucket", pa.string()),
    ("gender", pa.string()),
    ("region", pa.string()),
    ("signup_ts", TS),
]
ITEM_COLUMNS = [
    ("item_id", pa.int64()),
    ("category", pa.string()),
    ("brand", pa.string()),
    ("price", pa.float32()),
    ("title", pa.string()),
    ("created_ts", TS),
]


def _columns(path) -> list[tuple[str, pa.DataType]]:
    schema = pq.read_schema(path)
    return [(field.name, field.type) for field in schema]


def test_every_event_chunk_has_exactly_the_contract_columns_and_types(small_sim):
    parts = sorted((small_sim.path / "events").glob("part-*.parquet"))
    assert [p.name for p in parts] == ["part-00000.parquet", "part-00001.parquet", "part-00002.parquet"]
    for part in parts:
        assert _columns(part) == EVENT_COLUMNS


def test_users_and_items_have_exactly_the_contract_columns_and_types(small_sim):
    assert _columns(small_sim.path / "users.parquet") == USER_COLUMNS
    assert _columns(small_sim.path / "items.parquet") == ITEM_COLUMNS


def test_event_chunks_hold_at_most_chunk_rows(small_sim):
    sizes = [pq.read_metadata(p).num_rows for p in sorted((small_sim.path / "events").glob("*"))]
    assert sizes == [20_000, 20_000, 10_000]


def test_row_counts_match_the_config(small_sim):
    assert len(small_sim.events) == small_sim.config.num_impressions
    assert len(small_sim.users) == small_sim.config.num_users
    assert len(small_sim.items) == small_sim.config.num_items


def test_event_ids_are_unique_and_events_are_time_ordered(small_sim):
    events = small_sim.events
    assert events["event_id"].is_unique
    assert events["ts"].is_monotonic_increasing


def test_each_request_is_one_slate_shown_at_one_time(small_sim):
    events = small_sim.events
    slates = events.groupby("request_id")
    assert (slates.size() == 10).all()
    assert (events["position"] == slates.cumcount()).all()
    assert (slates["item_id"].nunique() == 10).all()
    assert (slates[["ts", "user_id", "device", "surface"]].nunique() == 1).all().all()


def test_conversion_only_follows_a_click(small_sim):
    events = small_sim.events
    assert not ((events["conversion"] == 1) & (events["click"] == 0)).any()
    assert events["conversion"].sum() > 0


def test_dwell_is_positive_exactly_when_clicked(small_sim):
    events = small_sim.events
    assert ((events["dwell"] > 0) == (events["click"] == 1)).all()


def test_event_ids_refer_to_existing_users_and_items(small_sim):
    assert small_sim.events["user_id"].isin(small_sim.users["user_id"]).all()
    assert small_sim.events["item_id"].isin(small_sim.items["item_id"]).all()


def test_categorical_columns_use_the_contract_values(small_sim):
    events = small_sim.events
    assert set(events["device"]) == {"mobile", "desktop", "tablet"}
    assert set(events["surface"]) == {"home", "search", "product_page"}
    assert events["hour"].between(0, 23).all()
    assert (small_sim.items["price"] > 0).all()


def test_base_rates_are_in_the_realistic_range(small_sim):
    summary = small_sim.summary
    assert 0.04 <= summary.ctr <= 0.08
    assert 0.05 <= summary.cvr <= 0.15
    assert summary.ctr == small_sim.events["click"].mean()


def test_users_signed_up_before_the_simulated_days(small_sim):
    assert (small_sim.users["signup_ts"] < small_sim.events["ts"].min()).all()
