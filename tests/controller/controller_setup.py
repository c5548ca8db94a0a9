"""The controller tests' shared setup: the rollout config and the stand-in Prometheus' arms
(a module with its own name: ``from conftest import`` resolves to whichever conftest loaded first)."""

from __future__ import annotations

import numpy as np
from controller_standins import user_rows

from serving.controller import RolloutConfig, cluster_policy

NOW_S = 1_700_000_000.0
POLICY = cluster_policy(
    min_canary_users_per_step=500,
    min_seconds_per_step=300.0,
    metrics=(("ctr", 0.10), ("cvr", 0.10)),
    planned_users=80_000,
)
CONFIG = RolloutConfig(
    inference_service="recforge-ranker", namespace="recforge", policy=POLICY, interval_s=30
)


def arm(users: int, requests: int, *, ctr: float = 0.05, seed: int = 0, **fields) -> dict:
    """One version in the Prometheus stand-in: one replica up for an hour, healthy by default."""
    rows = user_rows(np.random.default_rng(seed), users, ctr=ctr)
    return {"rows": rows, "ok": requests, "error": 0, "rejected": 0, "starts": [NOW_S - 3600], **fields}
