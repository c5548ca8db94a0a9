"""Same config, same bytes; output folders are never overwritten silently."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pyarrow.dataset as ds
import pytest

from pipelines.simulator import SimulationConfig, simulate

TINY_CHANGES = {"num_impressions": 12_000}


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.parquet"))}


@pytest.fixture
def tiny(small_sim):
    return dataclasses.replace(small_sim.config, **TINY_CHANGES)


def test_the_same_config_writes_byte_identical_files(tiny, tmp_path):
    simulate(tiny, tmp_path / "a", progress=False)
    simulate(tiny, tmp_path / "b", progress=False)
    first, second = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert len(first) == 3  # one event chunk, users, items
    assert first == second


def test_another_seed_writes_different_events(tiny, tmp_path):
    simulate(tiny, tmp_path / "a", progress=False)
    simulate(dataclasses.replace(tiny, seed=7), tmp_path / "b", progress=False)
    first, second = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert first["events/part-00000.parquet"] != second["events/part-00000.parquet"]


def test_chunk_size_changes_the_files_but_not_the_events(tiny, tmp_path):
    simulate(tiny, tmp_path / "a", progress=False)
    simulate(dataclasses.replace(tiny, chunk_rows=5_000), tmp_path / "b", progress=False)
    assert len(list((tmp_path / "b" / "events").iterdir())) == 3
    first = ds.dataset(tmp_path / "a" / "events").to_table()
    second = ds.dataset(tmp_path / "b" / "events").to_table()
    assert first.equals(second)


def test_simulating_into_a_folder_with_data_refuses_and_names_the_fix(tiny, tmp_path):
    simulate(tiny, tmp_path, progress=False)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        simulate(tiny, tmp_path, progress=False)


def test_overwrite_replaces_every_previous_event_chunk(tiny, tmp_path):
    simulate(dataclasses.replace(tiny, chunk_rows=2_000), tmp_path, progress=False)
    simulate(tiny, tmp_path, progress=False, overwrite=True)
    assert [p.name for p in (tmp_path / "events").iterdir()] == ["part-00000.parquet"]
    assert ds.dataset(tmp_path / "events").count_rows() == tiny.num_impressions


def test_an_impression_count_that_is_not_a_whole_number_of_slates_cuts_the_last_slate(tiny, tmp_path):
    summary = simulate(dataclasses.replace(tiny, num_impressions=12_345), tmp_path, progress=False)
    events = ds.dataset(tmp_path / "events").to_table().to_pandas()
    assert len(events) == summary.num_events == 12_345
    assert summary.num_requests == 1_235
    assert events.groupby("request_id").size().iloc[-1] == 5


def test_a_catalogue_no_larger_than_the_slate_still_gives_distinct_slates(tmp_path):
    config = SimulationConfig(num_users=50, num_items=10, num_impressions=5_000, cold_start_fraction=0.0)
    simulate(config, tmp_path, progress=False)
    events = ds.dataset(tmp_path / "events").to_table().to_pandas()
    assert (events.groupby("request_id")["item_id"].nunique() == 10).all()
