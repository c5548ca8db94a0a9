"""The canary router forwarding to real model servers: per-arm stats, fallback, its HTTP app."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from serving.process import free_port
from serving.router import (
    ARM_HEADER,
    CANARY,
    PRIMARY,
    SERVED_BY_HEADER,
    CanaryRouter,
    RetryPolicy,
    create_app,
)


def body(user_id: int, items=(1, 2, 3, 4)) -> dict:
    return {"instances": [{"user_id": user_id, "item_ids": list(items)}]}


def users_in(router: CanaryRouter, arm: str, count: int) -> list[int]:
    return [u for u in range(1, 10_000) if router.arm_for(u) == arm][:count]


def run(coroutine):
    return asyncio.run(coroutine)


async def send_all(router: CanaryRouter, bodies: list[dict]) -> list:
    try:
        return [await router.predict(b) for b in bodies]
    finally:
        await router.aclose()


def test_requests_are_served_by_the_users_arm_and_counted_there(predictor_server):
    router = CanaryRouter(predictor_server.url, predictor_server.url, canary_weight=0.5)
    users = users_in(router, PRIMARY, 3) + users_in(router, CANARY, 2)
    replies = run(send_all(router, [body(u) for u in users]))
    assert [r.arm for r in replies] == [PRIMARY] * 3 + [CANARY] * 2
    assert all(r.ok and r.served_by == r.arm for r in replies)
    stats = router.stats()
    assert (stats[PRIMARY].requests, stats[CANARY].requests) == (3, 2)
    assert stats[CANARY].p99_ms is not None and stats[CANARY].errors == 0


def test_a_failing_canary_is_retried_on_the_primary_and_counted_as_canary_error(
    predictor_server,
):
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    router = CanaryRouter(predictor_server.url, dead, canary_weight=0.5)
    user = users_in(router, CANARY, 1)[0]
    (reply,) = run(send_all(router, [body(user)]))
    assert reply.ok and (reply.arm, reply.served_by) == (CANARY, PRIMARY)
    assert reply.json()["predictions"][0]["model_version"] == "tiny-1"
    stats = router.stats()
    assert (stats[CANARY].requests, stats[CANARY].errors) == (1, 1)
    assert (stats[PRIMARY].requests, stats[PRIMARY].errors) == (1, 0)


def test_when_no_arm_answers_within_the_retry_budget_the_caller_gets_502():
    dead = f"http://127.0.0.1:{free_port()}"
    router = CanaryRouter(dead, dead, canary_weight=0.0, retry=RetryPolicy(budget_s=0.2))
    (reply,) = run(send_all(router, [body(1)]))
    assert reply.status == 502 and "no arm" in reply.json()["error"]
    assert router.stats()[PRIMARY].errors == 1


def test_a_bad_request_is_passed_back_not_retried_nor_counted_as_error(predictor_server):
    router = CanaryRouter(predictor_server.url, predictor_server.url, canary_weight=1.0)
    (reply,) = run(send_all(router, [body(5, items=[])]))
    assert reply.status == 400 and "item_ids" in reply.json()["error"]
    stats = router.stats()
    assert (stats[CANARY].rejected, stats[CANARY].errors, stats[PRIMARY].requests) == (1, 0, 0)


def test_outcomes_are_counted_in_the_users_assigned_arm():
    router = CanaryRouter("http://a", "http://b", canary_weight=0.5)
    user = users_in(router, CANARY, 1)[0]
    router.record_outcome(user, impressions=10, clicks=2, conversions=1)
    stats = router.stats()
    assert (stats[CANARY].impressions, stats[CANARY].clicks, stats[CANARY].users) == (10, 2, 1)
    assert stats[PRIMARY].impressions == 0


@pytest.fixture
def router_client(predictor_server):
    router = CanaryRouter(predictor_server.url, predictor_server.url, canary_weight=0.5)
    transport = httpx.ASGITransport(app=create_app(router))
    return router, httpx.AsyncClient(transport=transport, base_url="http://router")


def test_http_app_routes_v1_and_v2_and_reports_the_arm(router_client):
    router, client = router_client
    user = users_in(router, CANARY, 1)[0]
    v2 = {
        "inputs": [
            {"name": "user_id", "shape": [1], "datatype": "INT64", "data": [user]},
            {"name": "item_ids", "shape": [2], "datatype": "INT64", "data": [1, 2]},
        ]
    }

    async def exchange():
        async with client:
            first = await client.post("/v1/models/ranker:predict", json=body(user))
            second = await client.post("/v2/models/ranker/infer", json=v2)
            return first, second

    first, second = run(exchange())
    assert first.status_code == 200 and first.headers[ARM_HEADER] == CANARY
    assert second.status_code == 200 and second.headers[SERVED_BY_HEADER] == CANARY
    assert router.stats()[CANARY].requests == 2


def test_http_app_records_outcomes_and_reports_stats(router_client):
    router, client = router_client
    user = users_in(router, PRIMARY, 1)[0]
    outcome = {"user_id": user, "impressions": 10, "clicks": 3, "conversions": 1}

    async def exchange():
        async with client:
            recorded = await client.post("/outcomes", json=outcome)
            bad = await client.post("/outcomes", json={**outcome, "clicks": "3"})
            stats = await client.get("/stats")
            return recorded, bad, stats

    recorded, bad, stats = run(exchange())
    assert recorded.status_code == 200
    assert bad.status_code == 400 and "clicks" in bad.json()["error"]
    assert stats.json()["arms"][PRIMARY]["clicks"] == 3
