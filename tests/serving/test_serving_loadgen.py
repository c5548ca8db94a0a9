"""The open-loop load generator: arrival rate, outcome counts, percentiles, against a real server."""

from __future__ import annotations

import asyncio
import math

import aiohttp
import httpx
import pytest

from serving.loadgen import aiohttp_sender, open_loop, saturation, v1_ranking_bodies


def run(coroutine):
    return asyncio.run(coroutine)


def answering(statuses: dict[int, int]):
    """A send answering ``statuses.get(i, 200)`` at once, raising for status -1."""

    async def send(i: int) -> int:
        status = statuses.get(i, 200)
        if status == -1:
            raise httpx.ConnectError("refused")
        return status

    return send


def test_open_loop_sends_rate_times_duration_requests():
    result = run(open_loop(answering({}), rate_per_s=200, duration_s=0.25))
    assert result.sent == 50 and result.ok == 50 and result.errors == result.rejected == 0


def test_5xx_and_transport_errors_are_errors_and_4xx_are_rejected():
    result = run(open_loop(answering({0: 503, 1: -1, 2: 400, 3: 404}), rate_per_s=1000, duration_s=0.01))
    assert (result.sent, result.ok, result.errors, result.rejected) == (10, 6, 2, 2)


def test_requests_are_sent_without_waiting_for_earlier_answers():
    in_flight, most = 0, 0

    async def slow(i: int) -> int:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        await asyncio.sleep(0.05)
        in_flight -= 1
        return 200

    result = run(open_loop(slow, rate_per_s=400, duration_s=0.1))
    assert most >= 10 and result.ok == 40
    assert result.p50_ms >= 50.0


def test_a_request_past_its_timeout_is_an_error():
    async def hangs(i: int) -> int:
        await asyncio.Event().wait()
        return 200

    result = run(open_loop(hangs, rate_per_s=10, duration_s=0.1, timeout_s=0.05))
    assert result.errors == 1 and result.ok == 0 and math.isnan(result.p99_ms)


@pytest.mark.parametrize(
    ("name", "kwargs"), [("rate_per_s", {"rate_per_s": 0}), ("duration_s", {"duration_s": -1})]
)
def test_bad_settings_name_the_field(name, kwargs):
    settings = {"rate_per_s": 10, "duration_s": 1, **kwargs}
    with pytest.raises(ValueError, match=name):
        run(open_loop(answering({}), **settings))


def test_saturation_keeps_concurrency_requests_in_flight():
    result = run(saturation(answering({}), concurrency=4, duration_s=0.05))
    assert result.ok == result.sent > 0 and result.achieved_rate > 0


def test_open_loop_against_a_real_predictor_has_no_errors(predictor_server):
    url = f"{predictor_server.url}/v1/models/ranker:predict"
    bodies = v1_ranking_bodies(items=20, count=8)

    async def load():
        async with aiohttp.ClientSession() as session:
            return await open_loop(aiohttp_sender(session, url, bodies), rate_per_s=40, duration_s=0.5)

    result = run(load())
    assert (result.sent, result.ok, result.errors) == (20, 20, 0)
    assert 0 < result.p50_ms <= result.p99_ms <= result.max_ms
