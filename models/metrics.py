"""Quality metrics per task: ranking (AUC, GAUC, NDCG@k), fit (log loss, RMSE) and calibration."""

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


def calibration(labels: np.ndarray, probabilities: np.ndarray, bins: int = 10) -> dict:
    """Predicted vs observed rate: overall ratio, and the expected calibration error over
    equal-count bins of the prediction (mean |predicted - observed|, weighted by bin size)."""
    p = np.asarray(probabilities, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    order = np.argsort(p, kind="stable")
    gaps = [abs(p[chunk].mean() - y[chunk].mean()) * len(chunk)
            for chunk in np.array_split(order, min(bins, len(p))) if len(chunk)]
    observed = y.mean() if len(y) else float("nan")
    return {
        "calibration": float(p.mean() / observed) if observed > 0 else float("nan"),
        "ece": float(np.sum(gaps) / len(p)) if len(p) else float("nan"),
    }


def ndcg(labels: np.ndarray, scores: np.ndarray, lists: np.ndarray, k: int = 10) -> float:
    """Mean NDCG@k over lists (e.g. a request's slate) with the label as gain; lists without any
    gain are left out. Ties in score keep the data's order."""
    frame = pd.DataFrame({"list": np.asarray(lists), "gain": np.asarray(labels, dtype=np.float64),
                          "score": np.asarray(scores, dtype=np.float64)})
    discount = 1.0 / np.log2(np.arange(k) + 2.0)

    def dcg(ordered: pd.DataFrame) -> pd.Series:
        rank = ordered.groupby("list", sort=False).cumcount().to_numpy()
        top = rank < k
        gains = ordered["gain"].to_numpy()[top] * discount[rank[top]]
        return pd.Series(gains).groupby(ordered["list"].to_numpy()[top]).sum()

    actual = dcg(frame.sort_values(["list", "score"], ascending=[True, False], kind="stable"))
    ideal = dcg(frame.sort_values(["list", "gain"], ascending=[True, False], kind="stable"))
    useful = ideal > 0
    if not useful.any():
        return float("nan")
    return float((actual[useful] / ideal[useful]).mean())


def binary_metrics(
    labels: np.ndarray, probabilities: np.ndarray, users: np.ndarray | None,
    lists: np.ndarray | None,
) -> dict:
    return {
        "auc": auc(labels, probabilities),
        "gauc": gauc(labels, probabilities, users) if users is not None else float("nan"),
        "logloss": logloss(labels, probabilities),
        "positive_rate": float(np.mean(labels)),
        "mean_prediction": float(np.mean(probabilities)),
        **calibration(labels, probabilities),
        "ndcg@10": ndcg(labels, probabilities, lists) if lists is not None else float("nan"),
    }


def regression_metrics(
    labels: np.ndarray, predictions: np.ndarray, users: np.ndarray | None,
    lists: np.ndarray | None,
) -> dict:
    error = np.asarray(predictions, dtype=np.float64) - np.asarray(labels, dtype=np.float64)
    return {
        "rmse": float(np.sqrt(np.mean(error**2))),
        "mae": float(np.mean(np.abs(error))),
        "mean_label": float(np.mean(labels)),
        "mean_prediction": float(np.mean(predictions)),
        "ndcg@10": ndcg(labels, predictions, lists) if lists is not None else float("nan"),
    }
