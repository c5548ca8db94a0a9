"""The router against real model servers: primary retries across a restart, version pinning."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Callable

import orjson
import pytest

from serving.process import ServerProcess, free_port, launch_server, start_server
from serving.router import CANARY, PRIMARY, CanaryRouter, RetryPolicy


def body(user_id: int, items=(1, 2, 3, 4)) -> dict:
    return {"instances": [{"user_id": user_id, "item_ids": list(items)}]}


def user_in(router: CanaryRouter, arm: str) -> int:
    return next(u for u in range(1, 10_000) if router.arm_for(u) == arm)


def sample(router: CanaryRouter, name: str, **labels: str) -> float:
    return router.metrics.registry.get_sample_value(name, labels)


async def ask(router: CanaryRouter, *bodies: dict) -> list:
    try:
        return [await router.predict(b) for b in bodies]
    finally:
        await router.aclose()


def patient_router(url: str) -> CanaryRouter:
    """All traffic to ``url``, retried for up to two minutes."""
    return CanaryRouter(url, url, canary_weight=0.0, retry=RetryPolicy(budget_s=120.0, max_backoff_s=0.2))


def ask_while_starting(router: CanaryRouter, launch: Callable[[], ServerProcess]) -> list:
    """One request sent before ``launch()`` starts the server it needs (stopped once answered)."""

    async def scenario():
        pending = asyncio.ensure_future(ask(router, body(7)))
        server = launch()
        try:
            return await pending
        finally:
            server.stop()

    return asyncio.run(scenario())


def test_a_request_sent_while_the_primary_restarts_is_answered_after_the_restart(tiny_artifact, tmp_path):
    port = free_port()
    first = start_server(tmp_path / "first.log", artifact_dir=tiny_artifact, port=port, timeout_s=120)
    first.stop()  # the primary is down: connections are refused until the new process listens
    router = patient_router(first.url)

    # the new process needs seconds to listen: the request fails and is retried meanwhile
    (reply,) = ask_while_starting(
        router, lambda: launch_server(tmp_path / "second.log", artifact_dir=tiny_artifact, port=port)
    )
    assert reply.ok and reply.served_by == PRIMARY
    assert sample(router, "recforge_router_retries_total", arm=PRIMARY) >= 1
    assert router.stats()[PRIMARY].errors == 0


def test_primary_retries_stop_at_the_budget():
    dead = f"http://127.0.0.1:{free_port()}"
    router = CanaryRouter(dead, dead, canary_weight=0.0, retry=RetryPolicy(budget_s=0.3, backoff_s=0.05))
    (reply,) = asyncio.run(ask(router, body(1)))
    assert reply.status == 502
    assert 1 <= sample(router, "recforge_router_retries_total", arm=PRIMARY) <= 6
    assert sample(router, "recforge_router_errors_total", arm=PRIMARY, reason="transport") == 1


def test_a_failing_canary_is_not_retried_on_itself():
    dead = f"http://127.0.0.1:{free_port()}"
    router = CanaryRouter(dead, dead, canary_weight=1.0, retry=RetryPolicy(budget_s=0.2))
    asyncio.run(ask(router, body(1)))
    assert sample(router, "recforge_router_retries_total", arm=CANARY) == 0


def test_a_canary_answering_another_version_is_a_canary_error_and_served_by_the_primary(
    predictor_server,
):
    router = CanaryRouter(
        predictor_server.url,
        predictor_server.url,
        canary_weight=0.5,
        versions={PRIMARY: "tiny-1", CANARY: "candidate-2"},
    )
    (reply,) = asyncio.run(ask(router, body(user_in(router, CANARY))))
    assert reply.ok and (reply.arm, reply.served_by, reply.model_version) == (CANARY, PRIMARY, "tiny-1")
    assert router.stats()[CANARY].errors == 1
    assert sample(router, "recforge_router_errors_total", arm=CANARY, reason="version") == 1
    assert router.versions()[CANARY] == {"pinned": "candidate-2", "answered": {"tiny-1": 1}}


def test_a_primary_answering_another_version_is_refused_naming_it(predictor_server):
    router = CanaryRouter(
        predictor_server.url, predictor_server.url, canary_weight=0.0, versions={PRIMARY: "base-9"}
    )
    (reply,) = asyncio.run(ask(router, body(3)))
    assert reply.status == 502 and "'tiny-1'" in reply.json()["error"]
    assert router.stats()[PRIMARY].errors == 1


def test_answers_of_the_pinned_version_are_served_and_counted(predictor_server):
    router = CanaryRouter(
        predictor_server.url,
        predictor_server.url,
        canary_weight=0.5,
        versions={PRIMARY: "tiny-1", CANARY: "tiny-1"},
    )
    replies = asyncio.run(ask(router, body(user_in(router, PRIMARY)), body(user_in(router, CANARY))))
    assert all(r.ok and r.served_by == r.arm and r.model_version == "tiny-1" for r in replies)
    assert router.versions()[PRIMARY]["answered"] == {"tiny-1": 1}


@pytest.mark.parametrize(
    "versions, field",
    [({"shadow": "v1"}, "versions: keys"), ({PRIMARY: ""}, "versions['primary']")],
)
def test_bad_pinned_versions_are_refused_naming_the_field(versions, field):
    with pytest.raises(ValueError, match=field.replace("[", r"\[")):
        CanaryRouter("http://a", "http://b", canary_weight=0.1, versions=versions)


@pytest.mark.parametrize("field", ["budget_s", "backoff_s", "max_backoff_s"])
def test_a_negative_retry_setting_is_refused_naming_it(field):
    with pytest.raises(ValueError, match=f"retry.{field}"):
        RetryPolicy(**{field: -1.0})


@pytest.fixture(scope="module")
def mismatched_transformer(predictor_server, sqlite_feast_repo, tmp_path_factory):
    """A Feast transformer stamping features for version other-7 in front of the tiny-1 predictor."""
    log = tmp_path_factory.mktemp("mismatch") / "transformer.log"
    with start_server(
        log,
        feature_repo=sqlite_feast_repo,
        transformer_for=predictor_server.url.removeprefix("http://"),
        extra_args=["--model-version", "other-7"],
        timeout_s=120,
    ) as server:
        yield server


def test_a_canary_whose_transformer_and_predictor_differ_is_a_canary_error_not_the_callers(
    predictor_server, mismatched_transformer
):
    router = CanaryRouter(predictor_server.url, mismatched_transformer.url, canary_weight=0.5)
    (reply,) = asyncio.run(ask(router, body(user_in(router, CANARY))))
    assert reply.ok and reply.served_by == PRIMARY
    assert sample(router, "recforge_router_errors_total", arm=CANARY, reason="version") == 1
    assert router.stats()[CANARY].rejected == 0


def test_a_v2_answer_of_the_pinned_version_is_served(predictor_server):
    router = CanaryRouter(
        predictor_server.url, predictor_server.url, canary_weight=0.0, versions={PRIMARY: "tiny-1"}
    )
    v2 = {
        "inputs": [
            {"name": "user_id", "shape": [1], "datatype": "INT64", "data": [3]},
            {"name": "item_ids", "shape": [2], "datatype": "INT64", "data": [1, 2]},
        ]
    }

    async def send():
        try:
            return await router.route(3, "/v2/models/ranker/infer", orjson.dumps(v2))
        finally:
            await router.aclose()

    reply = asyncio.run(send())
    assert reply.ok and reply.model_version == "tiny-1"


def test_a_gateway_502_from_the_primary_is_retried_until_the_server_behind_it_is_back(
    tiny_artifact, tmp_path
):
    """The primary is a proxy (here a second router, with no retries of its own) answering 502
    while the predictor behind it is down, as an ingress or transformer would."""
    predictor_port, proxy_port = free_port(), free_port()
    command = [sys.executable, "-m", "serving.router", "--primary", f"http://127.0.0.1:{predictor_port}"]
    command += ["--canary", f"http://127.0.0.1:{predictor_port}", "--canary-percent", "0"]
    command += ["--retry-budget-s", "0", "--port", str(proxy_port)]
    with open(tmp_path / "proxy.log", "wb") as log:
        proxy = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    router = patient_router(f"http://127.0.0.1:{proxy_port}")

    try:
        # connection refused until the proxy listens, then 502 until the predictor listens
        (reply,) = ask_while_starting(
            router,
            lambda: launch_server(
                tmp_path / "predictor.log", artifact_dir=tiny_artifact, port=predictor_port
            ),
        )
    finally:
        proxy.terminate()
        proxy.wait(timeout=30)
    assert reply.ok and reply.model_version == "tiny-1"
    assert sample(router, "recforge_router_retries_total", arm=PRIMARY) >= 1
