"""A real KServe ModelServer on loopback answering V1 and V2 ranking requests."""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np
import pytest

CANDIDATES = [5, 17, 3, 42, 8]


def v1(url: str, body, **kwargs) -> httpx.Response:
    return httpx.post(f"{url}/v1/models/ranker:predict", json=body, timeout=30, **kwargs)


def v2(url: str, inputs: list[dict]) -> httpx.Response:
    return httpx.post(f"{url}/v2/models/ranker/infer", json={"inputs": inputs}, timeout=30)


def v2_inputs(user_id=7, item_ids=CANDIDATES, **context) -> list[dict]:
    inputs = [
        {"name": "user_id", "shape": [1], "datatype": "INT64", "data": [user_id]},
        {"name": "item_ids", "shape": [len(item_ids)], "datatype": "INT64", "data": item_ids},
    ]
    for name, value in context.items():
        datatype = "INT32" if name == "hour" else "BYTES"
        inputs.append({"name": name, "shape": [1], "datatype": datatype, "data": [value]})
    return inputs


def instance(user_id=7, item_ids=CANDIDATES, **context) -> dict:
    return {"instances": [{"user_id": user_id, "item_ids": item_ids, "context": context}]}


def test_v1_ranks_the_candidates_with_scores_aligned_to_the_ranked_ids(predictor_server):
    reply = v1(predictor_server.url, instance(device="mobile", surface="home", hour=13))
    assert reply.status_code == 200
    (prediction,) = reply.json()["predictions"]
    assert sorted(prediction["item_ids"]) == sorted(CANDIDATES)
    assert prediction["model_version"] == "tiny-1"
    click = np.array(prediction["scores"]["click"])
    conversion = np.array(prediction["scores"]["conversion"])
    blended = click + conversion  # default ranking: pCTR + 1.0 * pCTCVR
    assert np.all(np.diff(blended) <= 1e-7)
    assert ((click > 0) & (click < 1)).all() and ((conversion > 0) & (conversion < 1)).all()


def test_v2_returns_ranked_ids_and_per_task_scores(predictor_server):
    reply = v2(predictor_server.url, v2_inputs(device="desktop", hour=9))
    assert reply.status_code == 200
    outputs = {o["name"]: o for o in reply.json()["outputs"]}
    assert outputs["ranked_item_ids"]["datatype"] == "INT64"
    assert sorted(outputs["ranked_item_ids"]["data"]) == sorted(CANDIDATES)
    for task in ("click", "conversion"):
        assert outputs[task]["datatype"] == "FP32" and outputs[task]["shape"] == [5]


def test_v1_and_v2_rank_the_same_request_identically(predictor_server):
    by_v1 = v1(predictor_server.url, instance(device="tablet", hour=22)).json()["predictions"][0]
    by_v2 = v2(predictor_server.url, v2_inputs(device="tablet", hour=22)).json()["outputs"]
    assert {o["name"]: o["data"] for o in by_v2}["ranked_item_ids"] == by_v1["item_ids"]


def test_unknown_user_and_items_are_served(predictor_server):
    reply = v1(predictor_server.url, instance(user_id=10**15, item_ids=[10**12, 10**12 + 1, -4]))
    assert reply.status_code == 200
    assert sorted(reply.json()["predictions"][0]["item_ids"]) == [-4, 10**12, 10**12 + 1]


def test_unknown_context_values_are_served(predictor_server):
    assert v1(predictor_server.url, instance(device="smart-fridge")).status_code == 200


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"instances": [{"item_ids": [1, 2]}]}, "instances[0].user_id"),
        (instance(item_ids=[]), "instances[0].item_ids"),
        (instance(item_ids=list(range(501))), "at most 500"),
        (instance(user_id=True), "instances[0].user_id"),
        (instance(hour=-1), "instances[0].context.hour"),
        (instance(hour=7.5), "instances[0].context.hour"),
    ],
)
def test_malformed_v1_request_gets_400_naming_the_field(predictor_server, body, field):
    reply = v1(predictor_server.url, body)
    assert reply.status_code == 400
    assert field in reply.json()["error"]


@pytest.mark.parametrize("content_type", [None, "text/plain"])
def test_body_that_is_not_json_gets_400(predictor_server, content_type):
    headers = {"content-type": content_type} if content_type else {}
    reply = httpx.post(
        f"{predictor_server.url}/v1/models/ranker:predict",
        content=b"{not json",
        headers=headers,
        timeout=30,
    )
    assert reply.status_code == 400 and reply.json()["error"]


@pytest.mark.parametrize(
    ("inputs", "field"),
    [
        (v2_inputs()[:1], "input 'item_ids'"),
        ([{**v2_inputs()[0], "datatype": "FP32"}, v2_inputs()[1]], "input 'user_id'"),
        (v2_inputs(hour=30), "input 'hour'"),
        ([{"name": "user_id", "shape": [1], "data": [7]}], "datatype"),
    ],
)
def test_malformed_v2_request_gets_400_naming_the_input(predictor_server, inputs, field):
    reply = v2(predictor_server.url, inputs)
    assert reply.status_code == 400
    assert field in reply.json()["error"]


def listening_addresses(pid: int) -> set[str]:
    """host:port of every TCP socket process ``pid`` listens on (Linux /proc)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        target = fd.readlink().as_posix() if fd.is_symlink() else ""
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = set()
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A = LISTEN
                address, port = fields[1].split(":")
                found.add(f"{address}:{int(port, 16)}")
    return found


@pytest.mark.skipif(not Path("/proc/self/net/tcp").exists(), reason="needs Linux /proc")
def test_server_listens_only_on_loopback_http_without_grpc(predictor_server):
    port = int(predictor_server.url.rsplit(":", 1)[1])
    assert listening_addresses(predictor_server.pid) == {f"0100007F:{port}"}
