"""Controller fixtures: the chart's canary InferenceService in a loopback API server stand-in."""

from __future__ import annotations

import numpy as np
import pytest
from controller_standins import ApiServerStandIn, PrometheusQueryStandIn, user_rows

from serving.controller import RolloutConfig, RolloutController, cluster_policy
from serving.k8s_inference_service import InferenceServiceClient
from serving.prometheus_source import PrometheusSource

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


@pytest.fixture(scope="session")
def chart_canary_isvc() -> dict:
    """The InferenceService the chart renders for a canary of v2 at 10 % against v1."""
    pytest.importorskip("helm_python", reason="helm-python-sdk renders the chart's InferenceService")
    from pipelines.k8s_check_chart import CHART_DIR_IN_SOURCE, render, value_sets

    (canary,) = [v for v in value_sets(CHART_DIR_IN_SOURCE) if v.name == "canary-10"]
    (isvc,) = [o.manifest for o in render(CHART_DIR_IN_SOURCE, canary.values) if o.kind == "InferenceService"]
    return isvc


@pytest.fixture
def api_server(chart_canary_isvc):
    with ApiServerStandIn() as server:
        server.put(chart_canary_isvc)
        yield server


@pytest.fixture
def prometheus():
    """The chart's canary at 10 %: 5,400 primary and 600 canary users alike, requests 90 / 10."""
    with PrometheusQueryStandIn() as stand_in:
        stand_in.arms = {"v1": arm(5400, 9000, seed=1), "v2": arm(600, 1000, seed=2)}
        yield stand_in


@pytest.fixture
def controller(api_server, prometheus) -> RolloutController:
    client = InferenceServiceClient(api_server.api_client())
    return RolloutController(
        CONFIG,
        client,
        PrometheusSource(prometheus.url, 'namespace="recforge"'),
        clock=lambda: NOW_S,
    )
