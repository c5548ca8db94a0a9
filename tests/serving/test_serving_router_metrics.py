"""The router's Prometheus ``/metrics``: per-arm requests, errors, latency and outcomes."""

from __future__ import annotations

import asyncio

import httpx
from prometheus_client.parser import text_string_to_metric_families

from serving.process import free_port
from serving.router import CANARY, PRIMARY, CanaryRouter, RetryPolicy, create_app
from serving.router_metrics import ERROR_REASONS, LATENCY_BUCKETS_S, OUTCOMES, STATUSES


def scrape(router: CanaryRouter, *requests: tuple[str, str, dict]) -> dict[tuple, float]:
    """Send ``(method, path, json)`` requests to the router's app, then read its /metrics."""
    transport = httpx.ASGITransport(app=create_app(router))

    async def exchange() -> str:
        async with httpx.AsyncClient(transport=transport, base_url="http://router") as client:
            for method, path, payload in requests:
                await client.request(method, path, json=payload)
            reply = await client.get("/metrics")
        await router.aclose()
        assert reply.status_code == 200 and reply.headers["content-type"].startswith("text/plain")
        return reply.text

    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(asyncio.run(exchange()))
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float:
    return samples[name, tuple(sorted(labels.items()))]


def predict(user_id: int) -> tuple[str, str, dict]:
    return "POST", "/v1/models/ranker:predict", {"instances": [{"user_id": user_id, "item_ids": [1, 2]}]}


def test_every_series_exists_at_zero_before_any_request():
    samples = scrape(CanaryRouter("http://127.0.0.1:1", "http://127.0.0.1:2", canary_weight=0.1))
    for arm in (PRIMARY, CANARY):
        for status in STATUSES:
            assert value(samples, "recforge_router_requests_total", arm=arm, status=status) == 0
        for reason in ERROR_REASONS:
            assert value(samples, "recforge_router_errors_total", arm=arm, reason=reason) == 0
        for kind in OUTCOMES:
            assert value(samples, "recforge_router_outcomes_total", arm=arm, kind=kind) == 0
        assert value(samples, "recforge_router_request_duration_seconds_count", arm=arm) == 0
        assert value(samples, "recforge_router_retries_total", arm=arm) == 0
    assert value(samples, "recforge_router_answers_total", status="failed") == 0


def test_latency_buckets_are_fine_between_10_and_250_ms():
    inside = [b for b in LATENCY_BUCKETS_S if 0.010 <= b <= 0.250]
    assert len(inside) >= 10 and 0.010 in inside and 0.250 in inside


def test_requests_errors_latency_and_outcomes_are_counted_per_arm(predictor_server):
    dead = f"http://127.0.0.1:{free_port()}"
    router = CanaryRouter(predictor_server.url, dead, canary_weight=0.5, retry=RetryPolicy(budget_s=0.0))
    primary_user = next(u for u in range(1, 1000) if router.arm_for(u) == PRIMARY)
    canary_user = next(u for u in range(1, 1000) if router.arm_for(u) == CANARY)
    outcome = {"user_id": canary_user, "impressions": 10, "clicks": 2, "conversions": 1}
    samples = scrape(router, predict(primary_user), predict(canary_user), ("POST", "/outcomes", outcome))
    assert value(samples, "recforge_router_requests_total", arm=PRIMARY, status="ok") == 2
    assert value(samples, "recforge_router_requests_total", arm=CANARY, status="error") == 1
    assert value(samples, "recforge_router_errors_total", arm=CANARY, reason="transport") == 1
    assert value(samples, "recforge_router_request_duration_seconds_count", arm=PRIMARY) == 2
    assert value(samples, "recforge_router_answers_total", status="ok") == 2
    assert value(samples, "recforge_router_outcomes_total", arm=CANARY, kind="clicks") == 2
    assert value(samples, "recforge_router_outcomes_total", arm=PRIMARY, kind="impressions") == 0


def test_a_rejected_request_is_counted_as_rejected_not_as_error(predictor_server):
    router = CanaryRouter(predictor_server.url, predictor_server.url, canary_weight=0.0)
    bad = ("POST", "/v1/models/ranker:predict", {"instances": [{"user_id": 1, "item_ids": []}]})
    samples = scrape(router, bad)
    assert value(samples, "recforge_router_requests_total", arm=PRIMARY, status="rejected") == 1
    assert value(samples, "recforge_router_requests_total", arm=PRIMARY, status="error") == 0
    assert value(samples, "recforge_router_answers_total", status="rejected") == 1
