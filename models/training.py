"""Fitting a multi-task ranker: mini-batches, per-task losses, validation and early stopping."""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from models.config import TrainConfig
from models.feature_spec import EncodedFrame, FeatureSpec
from models.metrics import task_metrics
from models.network import MultiTaskRanker

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainingData:
    """Encoded rows plus labels; text vectors are gathered per batch from a per-item table."""

    encoded: EncodedFrame
    labels: np.ndarray
    users: np.ndarray
    text_index: np.ndarray | None = None
    text_table: np.ndarray | None = None

    @classmethod
    def from_frame(
        cls,
        frame: pd.DataFrame,
        spec: FeatureSpec,
        tasks: Sequence[str],
        text_keys: np.ndarray | None = None,
        text_matrix: np.ndarray | None = None,
        key_column: str = "item_id",
        user_column: str = "user_id",
    ) -> TrainingData:
        missing = [task for task in tasks if task not in frame.columns]
        if missing:
            raise KeyError(f"training frame lacks label columns {missing}")
        text_index = text_table = None
        if spec.text is not None:
            if text_keys is None or text_matrix is None:
                raise ValueError("the feature spec has a text feature: pass text_keys and text_matrix")
            text_index = pd.Index(text_keys).get_indexer(frame[key_column].to_numpy()) + 1
            text_table = np.vstack(
                [np.zeros((1, spec.text.dim), np.float32), np.asarray(text_matrix, np.float32)]
            )
        encoded = spec.encode(frame, with_text=False)
        labels = frame[list(tasks)].to_numpy(dtype=np.float32)
        return cls(encoded, labels, frame[user_column].to_numpy(), text_index, text_table)

    def __len__(self) -> int:
        return len(self.labels)

    def batch(self, rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        text = None
        if self.text_table is not None:
            text = torch.from_numpy(self.text_table[self.text_index[rows]])
        return (
            torch.from_numpy(self.encoded.categorical[rows]),
            torch.from_numpy(self.encoded.numeric[rows]),
            text,
        )


@dataclass
class TrainResult:
    history: list[dict] = field(default_factory=list)
    best_epoch: int = 0
    validation: dict[str, dict] = field(default_factory=dict)
    samples_per_second: float = 0.0


def predict(model: MultiTaskRanker, data: TrainingData, batch_size: int = 8192) -> np.ndarray:
    """Per-task probabilities [N, num_tasks]."""
    model.eval()
    outputs = []
    with torch.no_grad():
        for start in range(0, len(data), batch_size):
            rows = np.arange(start, min(start + batch_size, len(data)))
            outputs.append(torch.sigmoid(model(*data.batch(rows))).numpy())
    return np.concatenate(outputs) if outputs else np.zeros((0, len(model.config.tasks)), np.float32)


def evaluate(model: MultiTaskRanker, data: TrainingData) -> dict[str, dict]:
    probabilities = predict(model, data)
    return {
        task: task_metrics(data.labels[:, t], probabilities[:, t], data.users)
        for t, task in enumerate(model.config.tasks)
    }


class TrainingStep:
    """One optimisation step on a mini-batch, as `train` runs it (the step benchmark times it too).

    Dense weights use Adam; the embedding tables use `config.embedding_optimizer`, fused into
    their backward (only the rows a batch touches are read and written) unless it is "dense".
    `close()` removes the fused optimizer's state from the model again.
    """

    def __init__(self, model: MultiTaskRanker, config: TrainConfig) -> None:
        self.model = model
        fused = config.embedding_optimizer != "dense"
        if fused:
            model.set_embedding_optimizer(config.embedding_optimizer, config.embedding_learning_rate)
        parameters = [
            p for name, p in model.named_parameters() if not (fused and name.startswith("embeddings."))
        ]
        self.optimizer = torch.optim.Adam(
            parameters, lr=config.learning_rate, weight_decay=config.weight_decay
        )
        self.weights = torch.tensor([config.task_weights.get(t, 1.0) for t in model.config.tasks])
        self.loss_fn = torch.nn.BCEWithLogitsLoss(reduction="none")

    def __call__(self, data: TrainingData, rows: np.ndarray) -> float:
        """Trains on `rows` of `data`; returns the batch's weighted loss."""
        labels = torch.from_numpy(data.labels[rows])
        logits = self.model(*data.batch(rows))
        loss = (self.loss_fn(logits, labels).mean(dim=0) * self.weights).sum()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return loss.item()

    def close(self) -> None:
        self.model.set_embedding_optimizer(None)


def train(
    model: MultiTaskRanker,
    train_data: TrainingData,
    valid_data: TrainingData,
    config: TrainConfig,
    progress: bool = True,
) -> TrainResult:
    """Summed weighted BCE per task (`TrainingStep`); keeps the epoch with the best mean
    validation AUC."""
    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    generator = np.random.default_rng(config.seed)
    tasks = model.config.tasks
    step = TrainingStep(model, config)
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
        score = float(np.nanmean([validation[task]["auc"] for task in tasks]))
        result.history.append(
            {
                "epoch": epoch,
                "train_loss": total_loss / max(len(order), 1),
                "valid_logloss": {task: validation[task]["logloss"] for task in tasks},
                "valid_auc": {task: validation[task]["auc"] for task in tasks},
                "seconds": time.perf_counter() - started,
            }
        )
        log.info("epoch %d: train loss %.4f, valid AUC %s", epoch, total_loss / max(len(order), 1),
                 {task: round(validation[task]["auc"], 4) for task in tasks})
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
    step.close()
    result.samples_per_second = trained_rows / max(train_seconds, 1e-9)
    return result
