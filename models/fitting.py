"""From data frames to a trained model: fit the feature spec, encode, train.

Used by the pipeline's training step (simulator events) and by the tabular loader (any CSV or
Parquet with a declared schema); they differ only in the layout and in which columns group rows.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from models.config import ModelConfig, TrainConfig
from models.data import TrainingData
from models.feature_spec import FeatureLayout, FeatureSpec
from models.network import MultiTaskRanker
from models.training import TrainResult, train

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DataColumns:
    """Columns that are not features: who saw a row (GAUC), which ranked list it belongs to
    (NDCG; falls back to `user`), its scenario (per-scenario metrics), and the key of the text
    table. None where the data has no such column."""

    user: str | None = "user_id"
    list: str | None = "request_id"
    scenario: str | None = None
    text_key: str = "item_id"


SIMULATOR_COLUMNS = DataColumns()


@dataclass(frozen=True)
class TextTable:
    """One text embedding per key (e.g. per item id): keys [K], matrix [K, D]."""

    keys: np.ndarray
    matrix: np.ndarray


def encode(
    frame: pd.DataFrame,
    spec: FeatureSpec,
    config: ModelConfig,
    text: TextTable | None = None,
    columns: DataColumns = SIMULATOR_COLUMNS,
) -> TrainingData:
    return TrainingData.from_frame(
        frame, spec, config.tasks,
        None if text is None else text.keys, None if text is None else text.matrix,
        task_types=config.task_types, key_column=columns.text_key, user_column=columns.user,
        list_column=columns.list, scenario_column=columns.scenario,
    )


@dataclass
class Fitted:
    model: MultiTaskRanker
    result: TrainResult
    train_data: TrainingData
    valid_data: TrainingData


def fit(
    train_frame: pd.DataFrame,
    valid_frame: pd.DataFrame,
    layout: FeatureLayout,
    model_config: ModelConfig,
    train_config: TrainConfig,
    *,
    text: TextTable | None = None,
    columns: DataColumns = SIMULATOR_COLUMNS,
    progress: bool = True,
) -> Fitted:
    """Vocabularies and scales from `train_frame`, then training with validation on
    `valid_frame` (best epoch kept)."""
    torch.manual_seed(train_config.seed)
    spec = FeatureSpec.fit(train_frame, layout)
    model = MultiTaskRanker(spec, model_config)
    train_data, valid_data = (
        encode(frame, spec, model_config, text, columns) for frame in (train_frame, valid_frame)
    )
    log.info("training %s on %d rows, validating on %d", model_config.architecture,
             len(train_data), len(valid_data))
    result = train(model, train_data, valid_data, train_config, progress=progress)
    return Fitted(model, result, train_data, valid_data)
