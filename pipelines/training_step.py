"""Training a ranker from the point-in-time training set: time split, feature spec, fit, artifact."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from models.artifact import save_artifact
from models.config import ModelConfig, TrainConfig
from models.data import TrainingData
from models.evaluation import evaluate, evaluate_by_scenario
from models.feature_spec import FeatureLayout
from models.fitting import DataColumns, TextTable, encode, fit
from models.network import MultiTaskRanker
from models.training import TrainResult

TEXT_DIM = 384
SCENARIO = "surface"
STATS = ("impressions", "clicks", "conversions", "ctr", "cvr")

LAYOUT = FeatureLayout(
    categorical={
        "user_id": "user",
        "item_id": "item",
        "age_bucket": "user",
        "gender": "user",
        "region": "user",
        "category": "item",
        "brand": "item",
        "device": "request",
        "surface": "request",
        "hour": "request",
    },
    numeric={
        **{f"user_{stat}": "user" for stat in STATS},
        **{f"item_{stat}": "item" for stat in STATS},
        "price": "item",
    },
    log1p=frozenset(
        [f"{side}_{stat}" for side in ("user", "item") for stat in STATS[:3]] + ["price"]
    ),
    text=("text_embedding", "item", TEXT_DIM),
)


@dataclass(frozen=True)
class Split:
    train: pd.DataFrame
    valid: pd.DataFrame
    holdout: pd.DataFrame


def time_split(frame: pd.DataFrame, holdout_days: int, train_days: int | None = None) -> Split:
    """Holdout = the last `holdout_days`; valid = the day before; train = the days before that.

    `train_days` keeps only the first that many days for training (an older model's view).
    """
    start = frame["ts"].min().floor("D")
    end = frame["ts"].max().floor("D") + timedelta(days=1)
    holdout_start = end - timedelta(days=holdout_days)
    valid_start = holdout_start - timedelta(days=1)
    if valid_start <= start:
        raise ValueError(
            f"the data spans {(end - start).days} days: too few for holdout_days={holdout_days} "
            "plus one validation day and one training day"
        )
    train_end = valid_start if train_days is None else min(start + timedelta(days=train_days),
                                                           valid_start)
    return Split(
        train=frame[frame["ts"] < train_end],
        valid=frame[(frame["ts"] >= valid_start) & (frame["ts"] < holdout_start)],
        holdout=frame[frame["ts"] >= holdout_start],
    )


def load_text_table(path: Path) -> tuple[np.ndarray, np.ndarray]:
    table = pd.read_parquet(path)
    return table["item_id"].to_numpy(), np.stack(table["text_embedding"].to_numpy()).astype(
        np.float32
    )


def fit_ranker(
    train_frame: pd.DataFrame,
    valid_frame: pd.DataFrame,
    text_keys: np.ndarray,
    text_matrix: np.ndarray,
    model_config: ModelConfig,
    train_config: TrainConfig,
    progress: bool = True,
    layout: FeatureLayout = LAYOUT,
) -> tuple[MultiTaskRanker, TrainResult]:
    fitted = fit(train_frame, valid_frame, layout, model_config, train_config,
                 text=TextTable(text_keys, text_matrix), progress=progress)
    return fitted.model, fitted.result


def holdout_data(model: MultiTaskRanker, holdout: pd.DataFrame, text_keys: np.ndarray,
                 text_matrix: np.ndarray) -> TrainingData:
    """Holdout rows encoded for `model`, with the surface as their scenario."""
    columns = DataColumns(scenario=SCENARIO)
    return encode(holdout, model.spec, model.config, TextTable(text_keys, text_matrix), columns)


def holdout_metrics(
    model: MultiTaskRanker, holdout: pd.DataFrame, text_keys: np.ndarray, text_matrix: np.ndarray
) -> dict[str, dict]:
    return evaluate(model, holdout_data(model, holdout, text_keys, text_matrix))


def holdout_metrics_by_surface(
    model: MultiTaskRanker, holdout: pd.DataFrame, text_keys: np.ndarray, text_matrix: np.ndarray
) -> dict[str, dict]:
    """{surface: {task: metrics}}: the app surfaces are the simulator's scenarios."""
    return evaluate_by_scenario(model, holdout_data(model, holdout, text_keys, text_matrix))


def train_and_save(
    training_set: Path,
    text_table: Path,
    output: Path,
    *,
    model_config: ModelConfig,
    train_config: TrainConfig,
    holdout_days: int,
    train_days: int | None,
    name: str,
    version: str,
    progress: bool = True,
) -> dict:
    """Fit on the time split, save the artifact (with history and metrics), return a summary."""
    frame = pd.read_parquet(training_set)
    split = time_split(frame, holdout_days, train_days)
    text_keys, text_matrix = load_text_table(text_table)
    model, result = fit_ranker(
        split.train, split.valid, text_keys, text_matrix, model_config, train_config, progress
    )
    metrics = {
        "validation": result.validation,
        "holdout": holdout_metrics(model, split.holdout, text_keys, text_matrix),
        "holdout_by_surface": holdout_metrics_by_surface(
            model, split.holdout, text_keys, text_matrix
        ),
        "history": result.history,
        "best_epoch": result.best_epoch,
        "train_rows": len(split.train),
        "samples_per_second": result.samples_per_second,
    }
    save_artifact(model, output, name=name, version=version, metrics=metrics)
    return metrics
