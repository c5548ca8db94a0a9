"""Online store down or hanging: the predictor and the transformer answer within a bounded time,
ranked with the model's default features, say so in ``degraded`` and count it on /metrics."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from serving.process import ServerProcess, all_ready, launch_server, start_server

pytestmark = pytest.mark.redis

ITEMS = [1, 2, 3, 4, 5, 999]  # 1-5 are in the online store
BOUND_S = 3.0  # far above the 0.2 s feature timeout, far below a hang


def predict(url: str, user_id: int = 1) -> tuple[dict, float]:
    body = {"instances": [{"user_id": user_id, "item_ids": ITEMS}]}
    start = time.perf_counter()
    reply = httpx.post(f"{url}/v1/models/ranker:predict", json=body, timeout=30)
    elapsed = time.perf_counter() - start
    assert reply.status_code == 200, reply.text
    return reply.json()["predictions"][0], elapsed


def degraded_count(url: str, cause: str) -> float:
    metrics = httpx.get(f"{url}/metrics", timeout=30).text
    prefix = "recforge_degraded_answers_total{"
    for line in metrics.splitlines():
        if line.startswith(prefix) and f'cause="{cause}"' in line:
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no {prefix}cause={cause!r}}} series on /metrics")


@pytest.fixture(scope="module")
def redis_stack(
    module_redis_server, make_feast_repo, tiny_artifact, predictor_server, tmp_path_factory
) -> Iterator[dict[str, ServerProcess]]:
    """A predictor reading Redis in-process and a transformer reading Redis in front of
    ``predictor_server``, both with a 0.2 s feature timeout."""
    root = tmp_path_factory.mktemp("degraded")
    repo = make_feast_repo(root / "repo", {"type": "redis", "connection_string": module_redis_server.address})
    timeout = ["--feature-timeout", "0.2"]
    servers = {
        "predictor": launch_server(
            root / "predictor.log", artifact_dir=tiny_artifact, feature_repo=repo, extra_args=timeout
        ),
        "transformer": launch_server(
            root / "transformer.log",
            feature_repo=repo,
            transformer_for=predictor_server.url.removeprefix("http://"),
            extra_args=timeout,
        ),
    }
    with all_ready(servers):
        yield servers


@pytest.fixture
def frozen_store(module_redis_server) -> Iterator[None]:
    """The shared redis-server stopped with SIGSTOP (it accepts connections, answers nothing)."""
    module_redis_server.freeze()
    try:
        yield
    finally:
        module_redis_server.thaw()


@pytest.mark.parametrize("server", ["predictor", "transformer"])
def test_answers_with_the_store_up_are_not_degraded(redis_stack, server):
    prediction, _ = predict(redis_stack[server].url)
    assert "degraded" not in prediction and sorted(prediction["item_ids"]) == sorted(ITEMS)


@pytest.mark.parametrize("server", ["predictor", "transformer"])
def test_a_hanging_store_gives_a_degraded_answer_within_the_bound(redis_stack, frozen_store, server):
    before = degraded_count(redis_stack[server].url, "online_store_timeout")
    prediction, elapsed = predict(redis_stack[server].url, user_id=2)
    assert elapsed < BOUND_S
    assert prediction["degraded"].startswith("online store timeout")
    assert sorted(prediction["item_ids"]) == sorted(ITEMS) and len(prediction["scores"]["click"]) == len(
        ITEMS
    )
    assert degraded_count(redis_stack[server].url, "online_store_timeout") == before + 1


def test_a_v2_answer_says_degraded_in_its_parameters(redis_stack, frozen_store):
    inputs = [
        {"name": "user_id", "shape": [1], "datatype": "INT64", "data": [1]},
        {"name": "item_ids", "shape": [len(ITEMS)], "datatype": "INT64", "data": ITEMS},
    ]
    url = f"{redis_stack['predictor'].url}/v2/models/ranker/infer"
    reply = httpx.post(url, json={"inputs": inputs}, timeout=30)
    assert reply.status_code == 200, reply.text
    assert reply.json()["parameters"]["degraded"].startswith("online store")


def test_answers_are_whole_again_once_the_store_is_back(redis_stack, module_redis_server):
    url = redis_stack["predictor"].url
    module_redis_server.freeze()
    try:
        assert "degraded" in predict(url, user_id=3)[0]
    finally:
        module_redis_server.thaw()
    deadline = time.monotonic() + 30
    while "degraded" in predict(url, user_id=3)[0]:  # the store is asked again after retry_after_s
        assert time.monotonic() < deadline, "still degraded 30 s after the store came back"


def test_a_stopped_store_gives_a_degraded_answer_naming_it(
    redis_server, make_feast_repo, tiny_artifact, tmp_path
):
    repo = make_feast_repo(tmp_path / "repo", {"type": "redis", "connection_string": redis_server.address})
    extra = ["--feature-timeout", "0.2"]
    with start_server(
        tmp_path / "p.log", artifact_dir=tiny_artifact, feature_repo=repo, extra_args=extra
    ) as server:
        assert "degraded" not in predict(server.url)[0]
        redis_server.stop()
        prediction, elapsed = predict(server.url)
        assert elapsed < BOUND_S and prediction["degraded"].startswith("online store")
        again, elapsed = predict(server.url)  # within retry_after_s: the store is not asked
        assert elapsed < BOUND_S and again["degraded"] == prediction["degraded"]
        assert degraded_count(server.url, prediction_cause(prediction)) >= 2


def prediction_cause(prediction: dict) -> str:
    return "online_store_timeout" if "timeout" in prediction["degraded"] else "online_store_error"


@pytest.mark.slow
def test_a_predictor_starts_with_the_store_down_and_answers_degraded(
    redis_server, make_feast_repo, tiny_artifact, tmp_path
):
    repo = make_feast_repo(tmp_path / "repo", {"type": "redis", "connection_string": redis_server.address})
    redis_server.stop()
    with start_server(
        tmp_path / "p.log", artifact_dir=tiny_artifact, feature_repo=repo, timeout_s=120
    ) as server:
        prediction, elapsed = predict(server.url)
    assert elapsed < BOUND_S and prediction["degraded"].startswith("online store")
