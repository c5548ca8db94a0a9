"""Scoring data with a trained network and measuring each task, overall and per scenario."""

from __future__ import annotations

import numpy as np
import torch

from models.data import TrainingData
from models.network import MultiTaskRanker


def predict(model: MultiTaskRanker, data: TrainingData, batch_size: int = 8192) -> np.ndarray:
    """Per-task predictions [N, num_tasks] in the labels' units (probabilities for binary tasks)."""
    model.eval()
    outputs = []
    with torch.no_grad():
        for start in range(0, len(data), batch_size):
            rows = np.arange(start, min(start + batch_size, len(data)))
            outputs.append(model.predict(*data.batch(rows)).numpy())
    return np.concatenate(outputs) if outputs else np.zeros((0, len(model.config.tasks)), np.float32)


def task_metrics(model: MultiTaskRanker, data: TrainingData, predictions: np.ndarray) -> dict:
    """{task: metrics} for `predictions` of `data` (the task type picks the metrics)."""
    return {
        task: kind.metrics(data.labels[:, t], predictions[:, t], data.users, data.lists)
        for t, (task, kind) in enumerate(zip(model.config.tasks, model.task_types, strict=True))
    }


def evaluate(model: MultiTaskRanker, data: TrainingData) -> dict[str, dict]:
    return task_metrics(model, data, predict(model, data))


def evaluate_by_scenario(model: MultiTaskRanker, data: TrainingData) -> dict[str, dict]:
    """{scenario value: {task: metrics}}; needs `data.scenarios`."""
    if data.scenarios is None:
        raise ValueError("the data has no scenario column; build it with scenario_column=...")
    predictions = predict(model, data)
    result = {}
    for scenario in sorted(set(data.scenarios.tolist()), key=str):
        rows = data.scenarios == scenario
        result[str(scenario)] = task_metrics(model, data.subset(rows), predictions[rows])
    return result


def selection_score(model: MultiTaskRanker, metrics: dict[str, dict]) -> float:
    """Higher is better: the mean of the binary tasks' selection metric (AUC), or, when there
    are none, minus the mean of the others' (RMSE)."""
    kinds = dict(zip(model.config.tasks, model.task_types, strict=True))
    binary = [t for t, k in kinds.items() if k.binary]
    if binary:
        values = [metrics[t][kinds[t].selection_metric] for t in binary]
        return -np.inf if np.all(np.isnan(values)) else float(np.nanmean(values))
    return -float(np.mean([metrics[t][k.selection_metric] for t, k in kinds.items()]))
