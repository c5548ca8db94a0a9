"""Controller fixtures: the chart's canary InferenceService in a loopback API server stand-in."""

from __future__ import annotations

import pytest
from controller_standins import ApiServerStandIn, PrometheusQueryStandIn

from serving.canary import CanaryConfig
from serving.controller import RolloutConfig, RolloutController
from serving.k8s_inference_service import InferenceServiceClient
from serving.prometheus_source import PrometheusSource

RULE = CanaryConfig(min_requests_per_arm=100, max_error_rate=0.01, max_p99_ms=250.0, alpha=0.05)
CONFIG = RolloutConfig(
    inference_service="recforge-ranker",
    namespace="recforge",
    steps=(10, 25, 50),
    interval_s=30,
    window_s=1800,
    rule=RULE,
)
GOOD = {"ok": 5000, "error": 0, "rejected": 3, "impressions": 50_000, "clicks": 2500, "conversions": 250}


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
    with PrometheusQueryStandIn() as stand_in:
        stand_in.arms = {"v1": dict(GOOD), "v2": dict(GOOD)}
        yield stand_in


@pytest.fixture
def controller(api_server, prometheus) -> RolloutController:
    client = InferenceServiceClient(api_server.api_client())
    return RolloutController(
        CONFIG,
        client,
        PrometheusSource(prometheus.url, 'namespace="recforge"'),
        clock=lambda: 1_700_000_000.0,
    )
