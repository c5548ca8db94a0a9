"""Features and model move together (kserve#1669): the transformer stamps the request it forwards
with its model version; a predictor of another version refuses it with 409 naming both."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from serving.process import ServerProcess, all_ready, free_port, launch_server, start_server

V1_BODY = {"instances": [{"user_id": 1, "item_ids": [1, 2, 3, 4, 5]}]}  # in sqlite_feast_repo


@pytest.fixture(scope="module")
def transformers(
    sqlite_feast_repo, tiny_artifact, predictor_server, tmp_path_factory
) -> Iterator[dict[str, ServerProcess]]:
    """Transformers in front of ``predictor_server`` (tiny-1): one for the artifact it serves,
    one stamped with another version."""
    logs = tmp_path_factory.mktemp("version-pin")
    backend = predictor_server.url.removeprefix("http://")
    servers = {
        "same": launch_server(
            logs / "same.log",
            feature_repo=sqlite_feast_repo,
            transformer_for=backend,
            artifact_dir=tiny_artifact,
        ),
        "other": launch_server(
            logs / "other.log",
            feature_repo=sqlite_feast_repo,
            transformer_for=backend,
            extra_args=["--model-version", "tiny-2"],
        ),
    }
    with all_ready(servers):
        yield servers


def predict_v1(url: str, body: dict) -> httpx.Response:
    return httpx.post(f"{url}/v1/models/ranker:predict", json=body, timeout=30)


def test_a_transformer_of_the_served_version_is_answered(transformers):
    reply = predict_v1(transformers["same"].url, V1_BODY)
    assert reply.status_code == 200, reply.text
    assert reply.json()["predictions"][0]["model_version"] == "tiny-1"


def test_a_transformer_of_another_version_gets_409_naming_both_versions(transformers):
    reply = predict_v1(transformers["other"].url, V1_BODY)
    assert reply.status_code == 409
    error = reply.json()["error"]
    assert "feature_version" in error and "'tiny-2'" in error and "'tiny-1'" in error


def test_predictor_refuses_v1_features_for_another_version(predictor_server):
    reply = predict_v1(predictor_server.url, {**V1_BODY, "feature_version": "tiny-0"})
    assert reply.status_code == 409 and "'tiny-0'" in reply.json()["error"]


def test_predictor_refuses_v2_features_for_another_version(predictor_server):
    inputs = [
        {"name": "user_id", "shape": [1], "datatype": "INT64", "data": [1]},
        {"name": "item_ids", "shape": [2], "datatype": "INT64", "data": [1, 2]},
    ]
    body = {"inputs": inputs, "parameters": {"feature_version": "tiny-0"}}
    reply = httpx.post(f"{predictor_server.url}/v2/models/ranker/infer", json=body, timeout=30)
    assert reply.status_code == 409 and "'tiny-1'" in reply.json()["error"]


def test_predictor_answers_features_for_its_own_version(predictor_server):
    reply = predict_v1(predictor_server.url, {**V1_BODY, "feature_version": "tiny-1"})
    assert reply.status_code == 200


def test_a_malformed_feature_version_is_400_naming_the_field(predictor_server):
    reply = predict_v1(predictor_server.url, {**V1_BODY, "feature_version": 3})
    assert reply.status_code == 400 and reply.json()["error"].startswith("feature_version:")


def test_a_refused_version_is_counted_as_rejected(predictor_server):
    predict_v1(predictor_server.url, {**V1_BODY, "feature_version": "tiny-0"})
    metrics = httpx.get(f"{predictor_server.url}/metrics", timeout=30).text
    line = next(
        line
        for line in metrics.splitlines()
        if line.startswith("recforge_requests_total") and 'status="rejected"' in line
    )
    assert float(line.rsplit(" ", 1)[1]) >= 1


def test_a_transformer_whose_predictor_is_unreachable_answers_503_for_the_router_to_retry(
    sqlite_feast_repo, tiny_artifact, tmp_path
):
    nobody = f"127.0.0.1:{free_port()}"
    with start_server(
        tmp_path / "orphan.log", feature_repo=sqlite_feast_repo, transformer_for=nobody,
        artifact_dir=tiny_artifact,
    ) as orphan:
        reply = predict_v1(orphan.url, V1_BODY)
    assert reply.status_code == 503
    assert "predictor unreachable" in reply.json()["error"]
