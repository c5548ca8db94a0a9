"""Clean data passes; each kind of bad batch fails the named expectation with example rows."""

from __future__ import annotations

import re
import shutil
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.data_checks import DataCheckConfig, DataCheckFailed, enforce, run_data_checks
from pipelines.simulator import EVENT_SCHEMA, ITEM_SCHEMA, USER_SCHEMA

EVENTS = "events/part-00000.parquet"


def _failure(result, expectation: str, column: str, severity: str | None = None) -> dict:
    matches = [
        f
        for f in result.failed_expectations
        if f["expectation"] == expectation and f["column"] == column and severity in (None, f["severity"])
    ]
    assert matches, f"no failure of {expectation} on {column}: {result.failed_expectations}"
    return matches[0]


def _check(path: Path, tmp_path: Path, config: DataCheckConfig | None = None):
    return run_data_checks(path, config or DataCheckConfig(), tmp_path / "docs")


def test_clean_simulated_data_passes_every_expectation(clean_dir, tmp_path):
    result = _check(clean_dir, tmp_path)
    assert result.success
    assert result.failed_expectations == ()
    assert result.statistics["rows"] == {"events": 20_000, "users": 1_000, "items": 300}
    enforce(result)


def test_data_docs_index_opens_and_links_a_validation_page_per_table(clean_dir, tmp_path):
    result = _check(clean_dir, tmp_path)
    index = Path(result.docs_index)
    assert index == tmp_path / "docs" / "index.html"
    html = index.read_text()
    HTMLParser().feed(html)
    for table in ("events", "users", "items"):
        pages = re.findall(rf"validations/{table}/[^'\"\s]+-{table}\.html", html)
        assert pages and (index.parent / pages[0]).is_file()


def _spoil_events(events: pd.DataFrame) -> None:
    """One bad row (or pair) per kind of problem, each at its own rows."""
    events.loc[10, ["click", "conversion", "dwell"]] = [0, 1, 0.0]  # conversion without click
    events.loc[21, "event_id"] = events.loc[20, "event_id"]  # duplicate event id
    events.loc[30, "user_id"] = 999_999  # unknown user
    events.loc[40, "item_id"] = -4  # unknown item
    events.loc[50, "device"] = None  # null in a non-null column
    events.loc[60, "hour"] = 24  # out of range
    events.loc[70, "dwell"] = -1.0  # out of range
    events.loc[80, "click"] = 2  # not a label


@pytest.fixture(scope="module")
def bad_batch(clean_dir, tmp_path_factory):
    """The checks over a copy of the clean data with every kind of bad row in it, run once."""
    root = tmp_path_factory.mktemp("bad-batch")
    raw = root / "raw"
    shutil.copytree(clean_dir, raw)
    events = pd.read_parquet(raw / EVENTS)
    _spoil_events(events)
    pq.write_table(pa.Table.from_pandas(events, schema=EVENT_SCHEMA, preserve_index=False), raw / EVENTS)
    items = pd.read_parquet(raw / "items.parquet")
    items.loc[3, "price"] = 0.0
    pq.write_table(
        pa.Table.from_pandas(items, schema=ITEM_SCHEMA, preserve_index=False), raw / "items.parquet"
    )
    users = pd.read_parquet(raw / "users.parquet")
    users = pd.concat([users, users.iloc[[5]]], ignore_index=True)
    pq.write_table(
        pa.Table.from_pandas(users, schema=USER_SCHEMA, preserve_index=False), raw / "users.parquet"
    )
    clean = pd.read_parquet(clean_dir / EVENTS)
    return run_data_checks(raw, DataCheckConfig(), root / "docs"), clean


@pytest.mark.parametrize(
    ("problem", "expectation", "column", "rows"),
    [
        ("conversion without click", "expect_column_pair_values_a_to_be_greater_than_b",
         "click, conversion", [10]),
        ("duplicate event id", "expect_column_values_to_be_unique", "event_id", [20, 21]),
        ("unknown user id", "expect_column_values_to_be_in_set", "user_id", [30]),
        ("unknown item id", "expect_column_values_to_be_in_set", "item_id", [40]),
        ("null device", "expect_column_values_to_not_be_null", "device", [50]),
        ("hour 24", "expect_column_values_to_be_between", "hour", [60]),
        ("negative dwell", "expect_column_values_to_be_between", "dwell", [70]),
        ("click of 2", "expect_column_values_to_be_in_set", "click", [80]),
    ],
)  # fmt: skip
def test_a_bad_event_batch_fails_the_named_expectation_with_its_rows(
    bad_batch, problem, expectation, column, rows
):
    result, clean = bad_batch
    assert not result.success
    failure = _failure(result, expectation, column)
    assert (failure["suite"], failure["severity"]) == ("events", "critical")
    offending = clean.loc[rows, "request_id"].tolist()
    assert [row["request_id"] for row in failure["examples"]] == offending


def test_the_stop_message_names_each_critical_expectation_column_and_example_rows(bad_batch):
    result, clean = bad_batch
    with pytest.raises(DataCheckFailed) as raised:
        enforce(result)
    message = str(raised.value)
    for failure in result.critical_failures:
        assert f"{failure['expectation']} on column {failure['column']!r}" in message
    assert f"'request_id': {clean.loc[10, 'request_id']}, 'user_id'" in message
    assert result.docs_index in message


def test_a_free_item_fails_the_price_range(bad_batch):
    failure = _failure(bad_batch[0], "expect_column_values_to_be_between", "price")
    assert (failure["suite"], failure["severity"]) == ("items", "critical")
    assert [row["item_id"] for row in failure["examples"]] == [4]


def test_a_duplicate_user_fails_uniqueness_of_user_ids(bad_batch):
    failure = _failure(bad_batch[0], "expect_column_values_to_be_unique", "user_id")
    assert [row["user_id"] for row in failure["examples"]] == [6, 6]


def test_stale_events_fail_freshness_and_show_the_newest_rows(clean_dir, tmp_path):
    newest = pd.read_parquet(clean_dir / "events")["ts"].max()
    later = (newest + timedelta(hours=72)).isoformat()
    result = _check(clean_dir, tmp_path, DataCheckConfig(reference_time=later))
    failure = _failure(result, "expect_column_max_to_be_between", "ts")
    assert failure["severity"] == "critical" and not result.success
    assert pd.Timestamp(failure["examples"][0]["ts"]) == newest
    assert "newest event" in failure["details"]


def test_events_within_the_staleness_window_are_fresh(clean_dir, tmp_path):
    newest = pd.read_parquet(clean_dir / "events")["ts"].max()
    soon = (newest + timedelta(hours=47)).isoformat()
    assert _check(clean_dir, tmp_path, DataCheckConfig(reference_time=soon)).success


def test_a_missing_column_is_named_by_the_column_set_expectation(spoiled, tmp_path):
    result = _check(spoiled(EVENTS, lambda events: events.drop(columns="dwell")), tmp_path)
    failure = _failure(result, "expect_table_columns_to_match_set", "dwell", "critical")
    assert "missing" in failure["details"]


def test_an_extra_column_is_only_a_warning(spoiled, tmp_path):
    result = _check(spoiled(EVENTS, lambda events: events.assign(debug=1)), tmp_path)
    failure = _failure(result, "expect_table_columns_to_match_set", "debug")
    assert failure["severity"] == "warning"
    assert result.success
    enforce(result)


def test_a_column_of_the_wrong_type_fails_the_type_expectation(spoiled, tmp_path):
    def widen(events: pd.DataFrame) -> pd.DataFrame:
        return events.astype({"click": "int64"})

    result = _check(spoiled(EVENTS, widen), tmp_path)
    failure = _failure(result, "expect_column_values_to_be_of_type", "click")
    assert "int64" in failure["details"] or failure["examples"]
    assert not result.success


def test_an_implausible_click_rate_is_a_warning_that_does_not_stop_the_pipeline(clean_dir, tmp_path):
    result = _check(clean_dir, tmp_path, DataCheckConfig(ctr_range=(0.5, 0.9)))
    failure = _failure(result, "expect_column_mean_to_be_between", "click")
    assert failure["severity"] == "warning"
    assert result.success
    enforce(result)


def test_null_tolerance_lets_a_few_nulls_through(spoiled, tmp_path):
    path = spoiled(EVENTS, lambda events: events.loc.__setitem__((50, "device"), None))
    assert _check(path, tmp_path, DataCheckConfig(max_null_fraction=0.01)).success
