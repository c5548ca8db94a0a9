"""Fitting a multi-task ranker: mini-batches, per-task losses, validation and early stopping."""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm.auto import tqdm

from models.config import TrainConfig
from models.data import TrainingData
from models.evaluation import evaluate, selection_score
from models.network import MultiTaskRanker
from models.weighting import WEIGHTINGS

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    history: list[dict] = field(default_factory=list)
    best_epoch: int = 0
    validation: dict[str, dict] = field(default_factory=dict)
    samples_per_second: float = 0.0


def uses_bfloat16(precision: str, device: torch.device) -> bool:
    """"auto": where the hardware multiplies bfloat16 natively (AVX512-BF16/AMX, recent GPUs)."""
    if precision != "auto":
        return precision == "bfloat16"
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device.type == "cpu" and torch.ops.mkldnn._is_mkldnn_bf16_supported()


class TrainingStep:
    """One optimisation step on a mini-batch, as `train` runs it (the step benchmark times it too).

    The forward runs in bfloat16 autocast when `config.precision` asks for it (weights, losses
    and optimizer state stay float32). Per-task losses become gradients through
    `config.task_weighting`. Dense weights use Adam;
    the embedding tables use `config.embedding_optimizer`, fused into their backward (only the
    rows a batch touches are read and written) unless it is "dense".
    `close()` removes the fused optimizer's state from the model again.
    """

    def __init__(self, model: MultiTaskRanker, config: TrainConfig) -> None:
        self.model = model
        for task in config.task_weights:
            if task not in model.config.tasks:
                raise ValueError(f"train.task_weights.{task}: not one of model.tasks "
                                 f"{list(model.config.tasks)}")
        fused = config.embedding_optimizer != "dense"
        if fused:
            model.set_embedding_optimizer(config.embedding_optimizer, config.embedding_learning_rate)
        self.device_type = model.embeddings.weight.device.type
        self.bfloat16 = uses_bfloat16(config.precision, model.embeddings.weight.device)
        self.weighting = WEIGHTINGS[config.task_weighting](
            torch.tensor([config.task_weights.get(t, 1.0) for t in model.config.tasks]), model
        )
        parameters = [
            p for name, p in model.named_parameters() if not (fused and name.startswith("embeddings."))
        ]
        self.optimizer = torch.optim.Adam(
            parameters + list(self.weighting.parameters()),
            lr=config.learning_rate,
            weight_decay=config.weight_decay,
        )

    def __call__(self, data: TrainingData, rows: np.ndarray) -> float:
        """Trains on `rows` of `data`; returns the batch's loss weighted by `train.task_weights`."""
        targets = data.batch_targets(rows)
        with torch.autocast(self.device_type, dtype=torch.bfloat16, enabled=self.bfloat16):
            outputs = self.model(*data.batch(rows)).float()
        losses = torch.stack([
            kind.loss(outputs[:, t], kind.target(targets[:, t]))
            for t, kind in enumerate(self.model.task_types)
        ])
        self.optimizer.zero_grad(set_to_none=True)
        self.weighting.backward(losses)
        self.optimizer.step()
        return (losses.detach() * self.weighting.weights).sum().item()

    def close(self) -> None:
        self.model.set_embedding_optimizer(None)


def train(
    model: MultiTaskRanker,
    train_data: TrainingData,
    valid_data: TrainingData,
    config: TrainConfig,
    progress: bool = True,
) -> TrainResult:
    """Weighted sum of the per-task losses (`TrainingStep`); keeps the epoch with the best
    validation score (`selection_score`: mean AUC of the binary tasks)."""
    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    model.start_at_the_mean(train_data.labels)
    step = TrainingStep(model, config)
    try:
        return _fit(model, step, train_data, valid_data, config, progress)
    finally:
        step.close()


def _fit(model: MultiTaskRanker, step: TrainingStep, train_data: TrainingData,
         valid_data: TrainingData, config: TrainConfig, progress: bool) -> TrainResult:
    generator = np.random.default_rng(config.seed)
    result = TrainResult()
    best_score, best_state, stale = -np.inf, None, 0
    trained_rows, train_seconds = 0, 0.0
    for epoch in range(1, config.epochs + 1):
        model.train()
        order = generator.permutation(len(train_data))
        batches = range(0, len(order), config.batch_size)
        bar = tqdm(batches, desc=f"epoch {epoch}/{config.epochs}", disable=not progress, unit="batch")
        started, total_loss = time.perf_counter(), 0.0
        for start in bar:
            rows = order[start : start + config.batch_size]
            loss = step(train_data, rows)
            total_loss += loss * len(rows)
            bar.set_postfix(loss=f"{loss:.4f}")
        train_seconds += time.perf_counter() - started
        trained_rows += len(order)
        validation = evaluate(model, valid_data)
        score = selection_score(model, validation)
        result.history.append(
            {"epoch": epoch, "train_loss": total_loss / max(len(order), 1),
             **_history_metrics(model, validation), "seconds": time.perf_counter() - started}
        )
        log.info("epoch %d: train loss %.4f, validation %s", epoch, total_loss / max(len(order), 1),
                 {task: {k: round(v, 4) for k, v in m.items() if k in ("auc", "rmse")}
                  for task, m in validation.items()})
        if score > best_score:
            best_score, best_state, stale = score, copy.deepcopy(model.state_dict()), 0
            result.best_epoch, result.validation = epoch, validation
        else:
            stale += 1
            if stale > config.patience:
                log.info("early stopping after epoch %d (best epoch %d)", epoch, result.best_epoch)
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    result.samples_per_second = trained_rows / max(train_seconds, 1e-9)
    return result


def _history_metrics(model: MultiTaskRanker, validation: dict[str, dict]) -> dict[str, dict]:
    """valid_auc / valid_logloss for binary tasks, valid_rmse for the others (report plots)."""
    history: dict[str, dict] = {"valid_logloss": {}, "valid_auc": {}}
    for task, kind in zip(model.config.tasks, model.task_types, strict=True):
        if kind.binary:
            history["valid_logloss"][task] = validation[task]["logloss"]
            history["valid_auc"][task] = validation[task]["auc"]
        else:
            history.setdefault("valid_rmse", {})[task] = validation[task]["rmse"]
    return history
