"""Controller fixtures: the chart's canary InferenceService in a loopback API server stand-in."""

from __future__ import annotations

import pytest
from controller_setup import CONFIG, NOW_S, arm
from controller_standins import ApiServerStandIn, PrometheusQueryStandIn

from serving.controller import RolloutController
from serving.k8s_inference_service import InferenceServiceClient
from serving.prometheus_source import PrometheusSource


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
