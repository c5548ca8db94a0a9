"""At simulator scale, the per-snapshot query times give exactly Feast's per-event answer."""

import time

import pandas as pd
import pytest

import pipelines.feature_training as feature_training
from pipelines.features import build_feature_tables, create_store, read_events, training_frame
from pipelines.simulator import SimulationConfig, simulate

pytestmark = pytest.mark.slow


def test_training_frame_matches_feast_queried_at_every_event_time(tmp_path, config, monkeypatch):
    world = tmp_path / "world"
    simulate(
        SimulationConfig(num_users=2_000, num_items=500, num_impressions=100_000, days=7),
        world,
        progress=False,
    )
    build_feature_tables(world, tmp_path / "store", config)
    store = create_store(tmp_path / "store", config)
    events = read_events(world)

    started = time.perf_counter()
    fast = training_frame(store, events)
    fast_s = time.perf_counter() - started
    monkeypatch.setattr(feature_training, "_as_of", lambda store, views, ts: ts)
    started = time.perf_counter()
    exact = training_frame(store, events)
    exact_s = time.perf_counter() - started

    pd.testing.assert_frame_equal(fast, exact)
    print(f"training_frame {fast_s:.2f} s vs per-event times {exact_s:.2f} s: {exact_s / fast_s:.1f}x")
