"""DeepCTR-Torch 0.3.0 as the training benchmark's baseline, fed exactly our encoded features.

DeepCTR-Torch is an optional extra (`pip install deepctr-torch==0.3.0 requests`). Its package
`__init__` starts a thread that asks PyPI for the latest version; `import_deepctr` imports it
with that check replaced by a no-op, so the benchmark (and its tests) never touch the network.

The baseline sees the same rows: every categorical feature as a `SparseFeat` over our vocabulary
indices (0 = unknown), every numeric feature scaled as ours as a `DenseFeat`, and the item text
vector as one `DenseFeat` of its width (DeepCTR feeds dense vectors straight into its DNNs, where
ours projects the text first). It is trained as its users do, with its own `fit`: one Adam
over every weight at our dense learning rate (its embeddings start at std 1e-4, so our tables'
low rate would leave them near zero), its default L2 on the embeddings, the same epochs and batch
size; like ours, the epoch with the best validation AUC is the one measured.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import io
import sys
import time
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np
import torch

from models.config import ModelConfig, TrainConfig
from models.data import TrainingData
from models.feature_spec import FeatureSpec

PACKAGE = "deepctr_torch"
VERSION = "0.3.0"


class DeepCTRUnavailable(RuntimeError):
    """DeepCTR-Torch is not installed (or not the benchmarked version)."""


def import_deepctr() -> ModuleType:
    """deepctr_torch, imported without its PyPI version check."""
    if PACKAGE in sys.modules:
        return sys.modules[PACKAGE]
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or spec.loader is None:
        raise DeepCTRUnavailable(
            f"DeepCTR-Torch is not installed: pip install deepctr-torch=={VERSION} requests"
        )
    package = importlib.util.module_from_spec(spec)
    sys.modules[PACKAGE] = package
    try:
        utils = importlib.import_module(f"{PACKAGE}.utils")
        utils.check_version = _no_version_check  # the package __init__ imports it from here
        spec.loader.exec_module(package)
    except BaseException:
        for name in [n for n in sys.modules if n == PACKAGE or n.startswith(PACKAGE + ".")]:
            del sys.modules[name]
        raise
    if package.__version__ != VERSION:
        raise DeepCTRUnavailable(f"the benchmark pins DeepCTR-Torch {VERSION}; found "
                                 f"{package.__version__}: pip install deepctr-torch=={VERSION}")
    return package


def _no_version_check(version: str) -> None:
    """Stands in for deepctr_torch.utils.check_version, which calls PyPI from a thread."""


@dataclass(frozen=True)
class DeepCTRInputs:
    """Our encoded rows as DeepCTR's feature columns and input dict."""

    feature_columns: list
    features: dict[str, np.ndarray]
    labels: np.ndarray


def deepctr_inputs(spec: FeatureSpec, data: TrainingData, embedding_dim: int) -> DeepCTRInputs:
    inputs = import_deepctr().inputs
    columns: list[Any] = [
        inputs.SparseFeat(f.name, vocabulary_size=f.num_embeddings, embedding_dim=embedding_dim)
        for f in spec.categorical
    ]
    columns += [inputs.DenseFeat(f.name, 1) for f in spec.numeric]
    features = {f.name: data.encoded.categorical[:, t] for t, f in enumerate(spec.categorical)}
    features |= {f.name: data.encoded.numeric[:, i] for i, f in enumerate(spec.numeric)}
    if spec.text is not None:
        columns.append(inputs.DenseFeat(spec.text.name, spec.text.dim))
        features[spec.text.name] = data.text_table[data.text_index]
    return DeepCTRInputs(columns, features, data.labels)


def build_deepctr_model(architecture: str, columns: list, config: ModelConfig, seed: int):
    """The DeepCTR model matching our `architecture` and layer sizes (linear gates, as ours)."""
    multitask = import_deepctr().models.multitask
    common = {"task_types": ["binary"] * len(config.tasks), "task_names": list(config.tasks),
              "seed": seed, "device": "cpu"}
    if any(config.type_of(task) != "binary" for task in config.tasks):
        raise ValueError("the DeepCTR baseline is benchmarked on binary tasks only")
    towers = tuple(config.tower_hidden)
    if architecture == "shared_bottom":
        return multitask.SharedBottom(columns, bottom_dnn_hidden_units=config.expert_hidden,
                                      tower_dnn_hidden_units=towers, **common)
    if architecture == "mmoe":
        return multitask.MMOE(columns, num_experts=config.num_experts,
                              expert_dnn_hidden_units=config.expert_hidden,
                              gate_dnn_hidden_units=(), tower_dnn_hidden_units=towers, **common)
    if architecture == "ple":
        return multitask.PLE(columns, shared_expert_num=config.num_experts,
                             specific_expert_num=config.specific_experts,
                             num_levels=config.num_levels,
                             expert_dnn_hidden_units=config.expert_hidden,
                             gate_dnn_hidden_units=(), tower_dnn_hidden_units=towers, **common)
    if architecture == "esmm":
        return multitask.ESMM(columns, tower_dnn_hidden_units=config.expert_hidden + towers,
                              **common)
    raise ValueError(f"DeepCTR-Torch has no counterpart of {architecture!r}")


@dataclass(frozen=True)
class BaselineRun:
    valid_predictions: np.ndarray
    test_predictions: np.ndarray
    samples_per_second: float
    best_epoch: int


def train_deepctr(
    architecture: str,
    spec: FeatureSpec,
    model_config: ModelConfig,
    train_config: TrainConfig,
    train_data: TrainingData,
    valid_data: TrainingData,
    test_data: TrainingData,
    score,
) -> BaselineRun:
    """Train epoch by epoch with DeepCTR's `fit`; keep the predictions of the epoch whose
    validation predictions `score` (higher is better) best. Only `fit` is timed."""
    torch.manual_seed(train_config.seed)
    train_inputs, valid_inputs, test_inputs = (
        deepctr_inputs(spec, data, model_config.embedding_dim)
        for data in (train_data, valid_data, test_data)
    )
    model = build_deepctr_model(architecture, train_inputs.feature_columns, model_config,
                                train_config.seed)
    model.compile(torch.optim.Adam(model.parameters(), lr=train_config.learning_rate),
                  loss=["binary_crossentropy"] * len(model_config.tasks))
    best: BaselineRun | None = None
    seconds = 0.0
    for epoch in range(1, train_config.epochs + 1):
        started = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):  # fit prints its device and row counts
            model.fit(train_inputs.features, train_inputs.labels,
                      batch_size=train_config.batch_size, epochs=1, verbose=0)
        seconds += time.perf_counter() - started
        valid = model.predict(valid_inputs.features, batch_size=8192)
        if best is None or score(valid) > score(best.valid_predictions):
            best = BaselineRun(valid, model.predict(test_inputs.features, batch_size=8192), 0.0, epoch)
    rate = train_config.epochs * len(train_data) / max(seconds, 1e-9)
    return BaselineRun(best.valid_predictions, best.test_predictions, rate, best.best_epoch)
