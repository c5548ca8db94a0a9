"""The default world (1M impressions) is quick to simulate on a 2-core laptop."""

from __future__ import annotations

import pyarrow.parquet as pq

from pipelines.simulator import SimulationConfig, simulate


def test_the_default_million_impressions_simulate_in_well_under_a_minute(tmp_path):
    summary = simulate(SimulationConfig(), tmp_path, progress=False)
    assert summary.seconds < 30
    assert summary.num_events == 1_000_000
    assert [pq.read_metadata(f).num_rows for f in summary.event_files] == [200_000] * 5
