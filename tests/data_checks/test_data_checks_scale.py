"""The checks over the default million impressions finish well under a minute."""

from __future__ import annotations

import pytest

from pipelines.data_checks import DataCheckConfig, run_data_checks
from pipelines.simulator import SimulationConfig, simulate


@pytest.mark.slow
def test_the_default_million_events_are_checked_in_well_under_a_minute(tmp_path):
    simulate(SimulationConfig(), tmp_path / "raw", progress=False)
    result = run_data_checks(tmp_path / "raw", DataCheckConfig(), tmp_path / "docs")
    assert result.success
    assert result.statistics["rows"]["events"] == 1_000_000
    seconds = result.statistics["seconds"]
    assert seconds["load"] + seconds["validate"] < 30
