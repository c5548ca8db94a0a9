"""Ranking-quality metrics per task: AUC, GAUC and log loss."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import rankdata


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve with ties averaged; NaN when only one class is present."""
    labels = np.asarray(labels).astype(bool)
    positives = int(labels.sum())
    negatives = labels.size - positives
    if positives == 0 or negatives == 0:
        return float("nan")
    ranks = rankdata(np.asarray(scores, dtype=np.float64))
    return float((ranks[labels].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def gauc(labels: np.ndarray, scores: np.ndarray, groups: np.ndarray) -> float:
    """Per-user AUC weighted by the user's impressions; users with one class only are dropped."""
    frame = pd.DataFrame(
        {"group": np.asarray(groups), "label": np.asarray(labels).astype(np.int64),
         "score": np.asarray(scores, dtype=np.float64)}
    )
    frame["rank"] = frame.groupby("group")["score"].rank(method="average")
    frame["positive_rank"] = frame["rank"] * frame["label"]
    per_group = frame.groupby("group").agg(
        n=("label", "size"), positives=("label", "sum"), rank_sum=("positive_rank", "sum")
    )
    negatives = per_group["n"] - per_group["positives"]
    valid = (per_group["positives"] > 0) & (negatives > 0)
    if not valid.any():
        return float("nan")
    per_group = per_group[valid]
    positives = per_group["positives"]
    group_auc = (per_group["rank_sum"] - positives * (positives + 1) / 2) / (
        positives * negatives[valid]
    )
    return float(np.average(group_auc, weights=per_group["n"]))


def logloss(labels: np.ndarray, probabilities: np.ndarray, eps: float = 1e-7) -> float:
    p = np.clip(np.asarray(probabilities, dtype=np.float64), eps, 1 - eps)
    y = np.asarray(labels, dtype=np.float64)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def task_metrics(labels: np.ndarray, probabilities: np.ndarray, users: np.ndarray) -> dict:
    return {
        "auc": auc(labels, probabilities),
        "gauc": gauc(labels, probabilities, users),
        "logloss": logloss(labels, probabilities),
        "positive_rate": float(np.mean(labels)),
        "mean_prediction": float(np.mean(probabilities)),
    }
