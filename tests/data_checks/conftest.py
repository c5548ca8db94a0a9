"""Clean simulated raw data, and a way to spoil a copy of it."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.simulator import SimulationConfig, simulate

CLEAN = SimulationConfig(num_users=1_000, num_items=300, num_impressions=20_000, days=7)


@pytest.fixture(scope="session")
def clean_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("clean-raw")
    simulate(CLEAN, path, progress=False)
    return path


Spoil = Callable[[str, Callable[[pd.DataFrame], pd.DataFrame | None]], Path]


@pytest.fixture
def spoiled(clean_dir: Path, tmp_path: Path) -> Spoil:
    """``spoiled(file, edit)``: a copy of the clean data whose ``file`` went through ``edit``.

    ``edit`` changes the frame in place (or returns a new one); the file is written with the
    frame's own types, so an edit can also change a column's type.
    """
    copy = tmp_path / "raw"
    shutil.copytree(clean_dir, copy)

    def spoil(file: str, edit: Callable[[pd.DataFrame], pd.DataFrame | None]) -> Path:
        frame = pq.read_table(copy / file).to_pandas()
        edited = edit(frame)
        frame = frame if edited is None else edited
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), copy / file)
        return copy

    return spoil
