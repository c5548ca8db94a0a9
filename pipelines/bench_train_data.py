"""Training sets for the training benchmarks, made by the pipeline's own steps and cached.

A simulated world goes through the same simulate → feature store → point-in-time training set
steps as `recforge run`, so the benchmarks train on exactly the features the pipeline trains on.
The result is cached under a key of the simulation settings; a second run starts in seconds.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pipelines.config import load_config
from pipelines.feature_config import FeatureConfig
from pipelines.training_step import Split, load_text_table, time_split

TRAINING_SET = "training.parquet"
TEXT_TABLE = "text_embeddings.parquet"
DEFAULT_CACHE = Path(".recforge-cache") / "bench-train"


@dataclass(frozen=True)
class SimulatorData:
    """A time split of a simulated training set and the per-item text embeddings."""

    split: Split
    text_keys: np.ndarray
    text_matrix: np.ndarray


def simulator_training_dir(
    simulation: dict, cache_dir: Path = DEFAULT_CACHE
) -> Path:
    """A folder with training.parquet and text_embeddings.parquet for `simulation` (a mapping of
    SimulationConfig fields), built by the pipeline's steps on first use."""
    from pipelines import steps

    # one embedding cache for every step, as `recforge run` resolves it
    text_cache = str(Path(FeatureConfig().cache_dir).resolve())
    config = load_config(
        "default", overrides={"simulation": simulation, "features": {"cache_dir": text_cache}}
    )
    config_json = config.to_json()
    key = hashlib.sha256(json.dumps(simulation, sort_keys=True).encode()).hexdigest()[:16]
    target = Path(cache_dir).resolve() / f"simulator-{key}"
    if (target / TRAINING_SET).is_file() and (target / TEXT_TABLE).is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
        work = Path(scratch)
        steps.simulate(config_json, str(work / "raw"))
        steps.build_feature_store(config_json, str(work / "raw"), str(work / "store"))
        steps.build_training_set(config_json, str(work / "raw"), str(work / "store"),
                                 str(work / "set"))
        if target.exists():
            shutil.rmtree(target)
        shutil.move(str(work / "set"), target)
    return target


def quiet_training_logs() -> None:
    """Benchmarks print their own lines: no per-epoch logs from training or data building."""
    for name in ("models", "pipelines", "feast"):
        logging.getLogger(name).setLevel(logging.WARNING)


def load_simulator_data(training_dir: Path, holdout_days: int = 1) -> SimulatorData:
    """The pipeline's time split (train / one validation day / holdout days) of a training dir."""
    training_dir = Path(training_dir)
    for name in (TRAINING_SET, TEXT_TABLE):
        if not (training_dir / name).is_file():
            raise FileNotFoundError(
                f"{training_dir} has no {name}; pass the build-training-set output folder of a "
                "pipeline run (it holds training.parquet and text_embeddings.parquet)"
            )
    frame = pd.read_parquet(training_dir / TRAINING_SET)
    keys, matrix = load_text_table(training_dir / TEXT_TABLE)
    return SimulatorData(time_split(frame, holdout_days), keys, matrix)
