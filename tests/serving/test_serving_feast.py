"""Online features from a real Feast store: the in-process lookup and the KServe transformer."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from serving.feature_source import FeastOnlineSource, assemble_frame
from serving.process import ServerProcess, all_ready, launch_server
from serving.protocol import RankRequest

ITEMS = [1, 2, 3, 4, 5]  # written online by the sqlite_feast_repo fixture
UNKNOWN_ITEM = 999_999


@pytest.fixture(scope="module")
def feast_repo(sqlite_feast_repo) -> Path:
    """The project's Feast definitions with a few users and items written online (SQLite)."""
    return sqlite_feast_repo


def test_online_source_returns_stored_values_aligned_with_the_items(feast_repo):
    values = FeastOnlineSource(feast_repo).fetch(2, np.array([3, UNKNOWN_ITEM, 1]))
    assert values["category"] == ["toys", None, "shoes"]
    assert values["price"] == [5.0, None, 10.0]
    assert values["region"] == ["south"] * 3  # user features repeated per item
    assert len(values["text_embedding"][0]) == 384 and values["text_embedding"][1] is None
    assert "user_id" not in values and "item_id" not in values


def test_unknown_user_gets_none_features(feast_repo):
    values = FeastOnlineSource(feast_repo).fetch(12345, np.array([1]))
    assert values["age_bucket"] == [None] and values["category"] == ["shoes"]


def test_a_folder_without_feature_store_yaml_is_refused_naming_the_fix(tmp_path):
    with pytest.raises(ValueError, match="feature_repo: .* no feature_store.yaml"):
        FeastOnlineSource(tmp_path)


def test_frame_has_every_model_column_with_ids_context_and_features():
    request = RankRequest(user_id=7, item_ids=np.array([4, 5]), context={"device": "mobile", "hour": None})
    frame = assemble_frame(
        request, {"price": [1.0, None]}, ["user_id", "item_id", "device", "hour", "price", "brand"]
    )
    assert frame["user_id"].tolist() == [7, 7] and frame["item_id"].tolist() == [4, 5]
    assert frame["device"] == ["mobile", "mobile"] and frame["hour"] == [None, None]
    assert frame["price"] == [1.0, None] and frame["brand"] == [None, None]


@pytest.fixture(scope="module")
def feast_servers(
    feast_repo, tiny_artifact, predictor_server, tmp_path_factory
) -> Iterator[dict[str, ServerProcess]]:
    """A predictor reading Feast in-process, and a transformer in front of ``predictor_server``
    (which has no store): both should rank identically."""
    logs = tmp_path_factory.mktemp("feast-servers")
    backend = predictor_server.url.removeprefix("http://")
    servers = {
        "in_process": launch_server(
            logs / "in-process.log", artifact_dir=tiny_artifact, feature_repo=feast_repo
        ),
        "transformer": launch_server(
            logs / "transformer.log", feature_repo=feast_repo, transformer_for=backend
        ),
    }
    with all_ready(servers):
        yield servers


def rank(url: str, user_id: int, items: list[int], protocol: str = "v1") -> dict:
    if protocol == "v1":
        body = {"instances": [{"user_id": user_id, "item_ids": items, "context": {"hour": 9}}]}
        reply = httpx.post(f"{url}/v1/models/ranker:predict", json=body, timeout=30)
        assert reply.status_code == 200, reply.text
        return reply.json()["predictions"][0]
    inputs = [
        {"name": "user_id", "shape": [1], "datatype": "INT64", "data": [user_id]},
        {"name": "item_ids", "shape": [len(items)], "datatype": "INT64", "data": items},
        {"name": "hour", "shape": [1], "datatype": "INT32", "data": [9]},
    ]
    reply = httpx.post(f"{url}/v2/models/ranker/infer", json={"inputs": inputs}, timeout=30)
    assert reply.status_code == 200, reply.text
    outputs = {o["name"]: o["data"] for o in reply.json()["outputs"]}
    return {"item_ids": outputs.pop("ranked_item_ids"), "scores": outputs}


def test_transformer_and_in_process_lookup_rank_identically(feast_servers):
    items = [*ITEMS, UNKNOWN_ITEM]
    in_process = rank(feast_servers["in_process"].url, 2, items)
    transformed = rank(feast_servers["transformer"].url, 2, items)
    assert transformed["item_ids"] == in_process["item_ids"]
    np.testing.assert_allclose(transformed["scores"]["click"], in_process["scores"]["click"], rtol=1e-6)


def test_transformer_answers_v2_in_v2(feast_servers):
    by_v2 = rank(feast_servers["transformer"].url, 1, ITEMS, protocol="v2")
    by_v1 = rank(feast_servers["transformer"].url, 1, ITEMS)
    assert by_v2["item_ids"] == by_v1["item_ids"]


def test_online_features_change_the_scores(feast_servers, predictor_server):
    with_features = rank(feast_servers["in_process"].url, 3, ITEMS)["scores"]["click"]
    defaults_only = rank(predictor_server.url, 3, ITEMS)["scores"]["click"]
    assert not np.allclose(sorted(with_features), sorted(defaults_only))


def test_transformer_rejects_malformed_requests_itself(feast_servers):
    body = {"instances": [{"user_id": 1, "item_ids": [1, 1]}]}
    reply = httpx.post(f"{feast_servers['transformer'].url}/v1/models/ranker:predict", json=body, timeout=30)
    assert reply.status_code == 400 and "instances[0].item_ids" in reply.json()["error"]
