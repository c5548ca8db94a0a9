"""A small simulated shop, written once per session (about a second)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from pipelines.simulator import SimulationConfig, SimulationSummary, World, simulate

SMALL = SimulationConfig(num_users=2_000, num_items=500, num_impressions=50_000, chunk_rows=20_000)


@dataclass(frozen=True)
class SmallSim:
    config: SimulationConfig
    path: Path
    summary: SimulationSummary
    world: World
    events: pd.DataFrame
    users: pd.DataFrame
    items: pd.DataFrame


@pytest.fixture(scope="session")
def small_sim(tmp_path_factory: pytest.TempPathFactory) -> SmallSim:
    path = tmp_path_factory.mktemp("small-sim")
    summary = simulate(SMALL, path, progress=False)
    return SmallSim(
        config=SMALL,
        path=path,
        summary=summary,
        world=World.from_config(SMALL),
        events=ds.dataset(path / "events").to_table().to_pandas(),
        users=pq.read_table(path / "users.parquet").to_pandas(),
        items=pq.read_table(path / "items.parquet").to_pandas(),
    )
