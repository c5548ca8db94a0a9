"""Shadow mode: mirrored requests never touch users' answers; the comparison of the two servers."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time

import httpx
import numpy as np
import orjson
import pytest

from serving.process import free_port
from serving.router import PRIMARY, CanaryRouter, create_app, main
from serving.shadow import RankedAnswer, ShadowComparison, ShadowConfig, read_answer


def answer(items, click, version="v1") -> RankedAnswer:
    return RankedAnswer(np.asarray(items), {"click": np.asarray(click, dtype=float)}, version)


def body(user_id: int) -> dict:
    return {"instances": [{"user_id": user_id, "item_ids": [1, 2, 3, 4, 5]}]}


# --- reading answers and comparing them ---------------------------------------------------------


def test_a_v1_answer_is_read_with_its_ranked_items_scores_and_version():
    content = orjson.dumps(
        {"predictions": [{"item_ids": [3, 1], "scores": {"click": [0.5, 0.2]}, "model_version": "m-2"}]}
    )
    read = read_answer(content)
    assert read.item_ids.tolist() == [3, 1] and read.scores["click"].tolist() == [0.5, 0.2]
    assert read.model_version == "m-2"


def test_a_v2_answer_is_read_from_its_outputs():
    outputs = [
        {"name": "ranked_item_ids", "shape": [2], "datatype": "INT64", "data": [3, 1]},
        {"name": "click", "shape": [2], "datatype": "FP32", "data": [0.5, 0.2]},
    ]
    read = read_answer(orjson.dumps({"model_version": "m-2", "outputs": outputs}))
    assert read.item_ids.tolist() == [3, 1] and read.scores["click"].tolist() == [0.5, 0.2]


@pytest.mark.parametrize(
    "content",
    [
        b"not json",
        b"{}",
        b'{"predictions": []}',
        b'{"predictions": [{"item_ids": [1, 2], "scores": {"click": [1]}}]}',
    ],
)
def test_anything_but_a_ranking_answer_reads_as_none(content):
    assert read_answer(content) is None


def test_identical_answers_agree_fully():
    comparison = ShadowComparison(top_k=2)
    for _ in range(3):
        comparison.add(answer([4, 2, 9], [0.3, 0.2, 0.1]), answer([4, 2, 9], [0.3, 0.2, 0.1]), 5.0, 6.0)
    summary = comparison.summary()
    assert summary["compared"] == 3
    assert summary["scores"]["click"]["ks_statistic"] == 0 and summary["scores"]["click"]["mean_shift"] == 0
    assert summary["rank"] == {"top_k": 2, "top_k_overlap": 1.0, "kendall_tau": 1.0, "spearman_rho": 1.0}
    assert summary["latency_ms"]["shadow"]["p50"] == 6.0


def test_a_reversed_ranking_with_higher_scores_shows_in_every_measure():
    comparison = ShadowComparison(top_k=2)
    comparison.add(
        answer([1, 2, 3, 4], [0.4, 0.3, 0.2, 0.1]), answer([4, 3, 2, 1], [0.9, 0.8, 0.7, 0.6]), 1, 1
    )
    summary = comparison.summary()
    assert summary["rank"]["kendall_tau"] == pytest.approx(-1.0)
    assert summary["rank"]["top_k_overlap"] == 0.0
    assert summary["scores"]["click"]["ks_statistic"] == 1.0
    assert summary["scores"]["click"]["mean_shift"] == pytest.approx(0.5)


def test_rank_agreement_uses_only_the_items_both_answers_contain():
    comparison = ShadowComparison(top_k=3)
    comparison.add(answer([1, 2, 3], [0.3, 0.2, 0.1]), answer([1, 7, 2], [0.3, 0.2, 0.1]), 1, 1)
    rank = comparison.summary()["rank"]
    assert rank["kendall_tau"] == 1.0 and rank["top_k_overlap"] == pytest.approx(2 / 3)


def test_memory_is_bounded_by_max_samples():
    comparison = ShadowComparison(max_samples=4)
    for _ in range(10):
        comparison.add(answer([1, 2, 3], [0.3, 0.2, 0.1]), answer([1, 2, 3], [0.3, 0.2, 0.1]), 1, 1)
    assert comparison.summary()["scores"]["click"]["samples"] == 4


@pytest.mark.parametrize(
    "field, value",
    [("url", "127.0.0.1:8080"), ("percent", 101), ("max_in_flight", 0), ("timeout_s", 0), ("top_k", 0)],
)
def test_bad_shadow_settings_are_refused_naming_the_field(field, value):
    settings = {"url": "http://127.0.0.1:1", field: value}
    with pytest.raises(ValueError, match=f"shadow.{field}"):
        ShadowConfig(**settings)


# --- mirroring through the router ----------------------------------------------------------------


async def route_all(router: CanaryRouter, users: list[int]) -> list:
    try:
        return [await router.predict(body(u)) for u in users]
    finally:
        await router.aclose()


def test_mirrored_requests_are_compared_and_users_get_the_primarys_answers(predictor_server):
    router = CanaryRouter(
        predictor_server.url,
        predictor_server.url,
        canary_weight=0.0,
        shadow=ShadowConfig(predictor_server.url, percent=100.0),
    )
    replies = asyncio.run(route_all(router, [1, 2, 3, 4]))
    assert all(r.ok and r.served_by == PRIMARY for r in replies)
    summary = router.shadow.summary()
    assert summary["requests"] == {"sent": 4, "ok": 4, "error": 0, "dropped": 0}
    assert summary["compared"] == 4 and summary["versions"] == {"tiny-1": 4}
    assert summary["rank"]["kendall_tau"] == pytest.approx(1.0)  # the same model: the same order
    assert summary["scores"]["click"]["ks_statistic"] == 0.0


def test_only_the_configured_share_of_requests_is_mirrored(predictor_server):
    router = CanaryRouter(
        predictor_server.url,
        predictor_server.url,
        canary_weight=0.0,
        shadow=ShadowConfig(f"http://127.0.0.1:{free_port()}", percent=25.0, timeout_s=0.5),
    )
    asyncio.run(route_all(router, list(range(1, 81))))
    assert 8 <= router.shadow.counts["sent"] <= 32


def test_a_dead_shadow_fails_no_user_request(predictor_server):
    router = CanaryRouter(
        predictor_server.url,
        predictor_server.url,
        canary_weight=0.0,
        shadow=ShadowConfig(f"http://127.0.0.1:{free_port()}", percent=100.0),
    )
    replies = asyncio.run(route_all(router, [1, 2, 3]))
    assert all(r.ok for r in replies)
    assert router.shadow.counts["error"] == 3 and router.stats()[PRIMARY].errors == 0


@pytest.fixture
def silent_server():
    """A socket that accepts connections and never answers: a hung candidate."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


def test_a_hung_shadow_adds_no_latency_and_copies_beyond_the_bound_are_dropped(
    predictor_server, silent_server
):
    router = CanaryRouter(
        predictor_server.url,
        predictor_server.url,
        canary_weight=0.0,
        shadow=ShadowConfig(silent_server, percent=100.0, max_in_flight=2, timeout_s=1.0),
    )

    async def scenario():
        try:
            replies = [await router.predict(body(u)) for u in range(1, 6)]
            in_flight = router.shadow.in_flight
            return replies, in_flight
        finally:
            await router.aclose()

    replies, in_flight = asyncio.run(scenario())
    assert all(r.ok and r.latency_ms < 1000.0 for r in replies)
    assert in_flight == 2
    assert router.shadow.counts == {"sent": 2, "ok": 0, "error": 2, "dropped": 3}


def test_the_stats_endpoint_carries_the_comparison(predictor_server):
    router = CanaryRouter(
        predictor_server.url,
        predictor_server.url,
        canary_weight=0.0,
        shadow=ShadowConfig(predictor_server.url, percent=100.0),
    )
    transport = httpx.ASGITransport(app=create_app(router))

    async def exchange():
        async with httpx.AsyncClient(transport=transport, base_url="http://router") as client:
            await client.post("/v1/models/ranker:predict", json=body(1))
            await router.shadow.drain()
            stats = (await client.get("/stats")).json()
            metrics = (await client.get("/metrics")).text
        await router.aclose()
        return stats, metrics

    stats, metrics = asyncio.run(exchange())
    assert stats["shadow"]["compared"] == 1 and stats["shadow"]["url"] == predictor_server.url
    assert 'recforge_router_shadow_total{status="ok"} 1.0' in metrics


def test_the_router_command_refuses_a_bad_shadow_percent(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(
            [
                "--primary",
                "http://a:1",
                "--canary",
                "http://b:1",
                "--shadow",
                "http://c:1",
                "--shadow-percent",
                "150",
            ]
        )
    assert exit_info.value.code == 2
    assert "shadow.percent" in capsys.readouterr().err


def poll(read, done, timeout_s: float = 60.0):
    """``read()`` again until ``done(value)`` (each read is an HTTP round trip), at most ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            value = read()
            if done(value):
                return value
        except httpx.TransportError:
            value = None
        assert time.monotonic() < deadline, f"gave up waiting; last value {value!r}"


def test_the_router_command_mirrors_to_the_shadow_and_serves_the_comparison(predictor_server, tmp_path):
    port, url = free_port(), predictor_server.url
    command = [sys.executable, "-m", "serving.router", "--primary", url, "--canary", url]
    command += ["--canary-percent", "0", "--shadow", url, "--shadow-percent", "100", "--port", str(port)]
    with open(tmp_path / "router.log", "wb") as log:
        router = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            poll(lambda: client.get("/").status_code, lambda status: status == 200)
            for user in (1, 2, 3):
                assert client.post("/v1/models/ranker:predict", json=body(user)).status_code == 200
            stats = poll(lambda: client.get("/stats").json(), lambda s: s["shadow"]["compared"] == 3)
            metrics = client.get("/metrics").text
    finally:
        router.terminate()
        router.wait(timeout=30)
    assert stats["shadow"]["rank"]["top_k_overlap"] == 1.0
    assert stats["versions"]["primary"]["answered"] == {"tiny-1": 3}
    assert 'recforge_router_shadow_total{status="ok"} 3.0' in metrics
