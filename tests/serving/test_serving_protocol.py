"""Request parsing and response formatting of the ranking protocol (V1 and V2), without a server."""

from __future__ import annotations

import base64
from dataclasses import replace

import numpy as np
import orjson
import pytest

from serving._kserve import InferInput, InferRequest, InvalidInput
from serving.protocol import (
    ColumnRule,
    ParsedRequest,
    RankedList,
    RankedResponse,
    RequestLimits,
    format_response,
    forward_body,
    parse_predictions,
    parse_request,
)

LIMITS = RequestLimits(max_items=5)
FEATURES = frozenset({"user_ctr", "text_embedding"})


def v1(**instance):
    base = {"user_id": 42, "item_ids": [1, 2, 3], "context": {"device": "mobile", "hour": 13}}
    base.update(instance)
    return {"instances": [{k: v for k, v in base.items() if v is not ...}]}


def v2(*inputs):
    return InferRequest(model_name="ranker", infer_inputs=list(inputs), request_id="r-1")


def tensor(name, datatype, data, shape=None):
    return InferInput(name=name, shape=shape or [len(data)], datatype=datatype, data=data)


def rejected(payload, *, limits=LIMITS, features=FEATURES) -> str:
    with pytest.raises(InvalidInput) as error:
        parse_request(payload, limits, features)
    return str(error.value)


def test_v1_request_parses_ids_and_context():
    parsed = parse_request(v1(), LIMITS)
    (instance,) = parsed.instances
    assert parsed.protocol == "v1"
    assert instance.user_id == 42
    assert instance.item_ids.dtype == np.int64 and instance.item_ids.tolist() == [1, 2, 3]
    assert dict(instance.context) == {"device": "mobile", "surface": None, "hour": 13}


def test_v1_context_may_be_omitted():
    (instance,) = parse_request(v1(context=...), LIMITS).instances
    assert dict(instance.context) == {"device": None, "surface": None, "hour": None}


def test_unknown_and_negative_ids_are_accepted():
    (instance,) = parse_request(v1(user_id=-7, item_ids=[10**12, -1]), LIMITS).instances
    assert instance.user_id == -7 and instance.item_ids.tolist() == [10**12, -1]


def test_unknown_context_values_are_accepted():
    (instance,) = parse_request(v1(context={"device": "smart-fridge"}), LIMITS).instances
    assert instance.context["device"] == "smart-fridge"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({}, "instances"),
        ({"instances": []}, "instances"),
        ({"instances": "x"}, "instances"),
        ({"instances": [7]}, "instances[0]"),
        (v1(user_id=...), "instances[0].user_id"),
        (v1(user_id="42"), "instances[0].user_id"),
        (v1(user_id=True), "instances[0].user_id"),
        (v1(user_id=4.2), "instances[0].user_id"),
        (v1(user_id=2**63), "instances[0].user_id"),
        (v1(item_ids=...), "instances[0].item_ids"),
        (v1(item_ids=[]), "instances[0].item_ids"),
        (v1(item_ids=5), "instances[0].item_ids"),
        (v1(item_ids=[1, 2, 3, 4, 5, 6]), "instances[0].item_ids"),
        (v1(item_ids=[1, False]), "instances[0].item_ids[1]"),
        (v1(item_ids=[1, 2.5]), "instances[0].item_ids[1]"),
        (v1(item_ids=[1, None]), "instances[0].item_ids[1]"),
        (v1(item_ids=[1, 2, 1]), "instances[0].item_ids"),
        (v1(context="mobile"), "instances[0].context"),
        (v1(context={"hour": -1}), "instances[0].context.hour"),
        (v1(context={"hour": 24}), "instances[0].context.hour"),
        (v1(context={"hour": 13.0}), "instances[0].context.hour"),
        (v1(context={"hour": True}), "instances[0].context.hour"),
        (v1(context={"device": 3}), "instances[0].context.device"),
        (v1(context={"device": ""}), "instances[0].context.device"),
        (v1(context={"surface": "x" * 65}), "instances[0].context.surface"),
        (v1(context={"weather": "rain"}), "instances[0].context.weather"),
        (v1(colour="red"), "instances[0].colour"),
        ({"inputs": []}, "/v2/models"),
    ],
)
def test_malformed_v1_request_is_rejected_naming_the_field(payload, field):
    assert field in rejected(payload)


def test_too_many_candidates_message_names_the_limit_and_the_fix():
    message = rejected(v1(item_ids=list(range(6))))
    assert "at most 5" in message and "send fewer candidates" in message


def test_too_many_instances_are_rejected():
    payload = {"instances": v1()["instances"] * 3}
    assert "instances" in rejected(payload, limits=RequestLimits(max_instances=2))


def test_body_that_is_not_an_object_is_rejected():
    assert "request body" in rejected([1, 2, 3])


def test_forwarded_features_are_accepted_when_the_model_has_them():
    payload = v1(features={"user_ctr": [0.1, None, 0.3], "text_embedding": [[0.5, 0.5]] * 3})
    (instance,) = parse_request(payload, LIMITS, FEATURES).instances
    assert instance.features["user_ctr"] == [0.1, None, 0.3]


@pytest.mark.parametrize(
    ("features", "field"),
    [
        ({"colour": [1, 2, 3]}, "features.colour"),
        ({"user_ctr": [0.1, 0.2]}, "features.user_ctr"),
        ({"user_ctr": [0.1, float("nan"), 0.3]}, "features.user_ctr[1]"),
        ({"user_ctr": [0.1, float("inf"), 0.3]}, "features.user_ctr[1]"),
        ({"user_ctr": [0.1, {"a": 1}, 0.3]}, "features.user_ctr[1]"),
        ({"text_embedding": [[0.1], [float("nan")], [0.2]]}, "features.text_embedding[1]"),
        ("fast", "features"),
    ],
)
def test_malformed_forwarded_features_are_rejected_naming_the_field(features, field):
    assert f"instances[0].{field}" in rejected(v1(features=features))


RULES = {"user_ctr": ColumnRule("number"), "text_embedding": ColumnRule("vector", 2)}
PACKED_ROWS = np.array([[0.5, -1.0], [0.0, 0.0], [3.25, 1e-3]], dtype=np.float32)


def packed(matrix) -> dict:
    return {"float32_base64": base64.b64encode(np.asarray(matrix, dtype="<f4").tobytes()).decode()}


def test_a_transformer_packs_vectors_and_the_predictor_reads_back_the_same_matrix():
    (instance,) = parse_request(v1(), LIMITS).instances
    forwarded = ParsedRequest("v1", (replace(instance, features={"text_embedding": PACKED_ROWS}),))
    body = orjson.loads(orjson.dumps(forward_body(forwarded)))
    assert set(body["instances"][0]["features"]["text_embedding"]) == {"float32_base64"}
    (parsed,) = parse_request(body, LIMITS, RULES).instances
    np.testing.assert_array_equal(parsed.features["text_embedding"], PACKED_ROWS)


@pytest.mark.parametrize(
    ("column", "features"),
    [
        ("text_embedding", {"text_embedding": packed(PACKED_ROWS[:2])}),
        ("text_embedding", {"text_embedding": {"float32_base64": "not base64!"}}),
        ("text_embedding", {"text_embedding": packed([[0.0, np.inf]] * 3)}),
        ("text_embedding", {"text_embedding": {**packed(PACKED_ROWS), "shape": [3, 2]}}),
        ("user_ctr", {"user_ctr": packed([[0.1]] * 3)}),
    ],
)
def test_a_malformed_packed_column_is_rejected_naming_it(column, features):
    assert f"instances[0].features.{column}" in rejected(v1(features=features), features=RULES)


def test_features_are_refused_by_a_server_that_looks_them_up_itself():
    message = rejected(v1(features={"user_ctr": [0.1, 0.2, 0.3]}), features=frozenset())
    assert "remove 'features'" in message


def test_v2_request_parses_ids_and_context():
    parsed = parse_request(
        v2(
            tensor("user_id", "INT64", [42]),
            tensor("item_ids", "INT64", [3, 1, 2]),
            tensor("device", "BYTES", ["desktop"]),
            tensor("hour", "INT32", [7]),
        ),
        LIMITS,
    )
    (instance,) = parsed.instances
    assert parsed.protocol == "v2" and parsed.request_id == "r-1"
    assert instance.user_id == 42 and instance.item_ids.tolist() == [3, 1, 2]
    assert dict(instance.context) == {"device": "desktop", "surface": None, "hour": 7}


def test_v2_accepts_nested_data_and_bytes_text():
    parsed = parse_request(
        v2(
            tensor("user_id", "INT64", [[42]], shape=[1, 1]),
            tensor("item_ids", "INT64", [[3, 1]], shape=[1, 2]),
            tensor("surface", "BYTES", [b"search"]),
        ),
        LIMITS,
    )
    assert parsed.instances[0].context["surface"] == "search"


@pytest.mark.parametrize(
    ("inputs", "field"),
    [
        ([tensor("item_ids", "INT64", [1])], "input 'user_id'"),
        ([tensor("user_id", "INT64", [1])], "input 'item_ids'"),
        ([tensor("user_id", "FP32", [1.0]), tensor("item_ids", "INT64", [1])], "input 'user_id'"),
        ([tensor("user_id", "INT64", [1, 2]), tensor("item_ids", "INT64", [1])], "input 'user_id'"),
        ([tensor("user_id", "INT64", [1]), tensor("item_ids", "INT64", [])], "input 'item_ids'"),
        (
            [tensor("user_id", "INT64", [1]), tensor("item_ids", "INT64", [1, 2], shape=[3])],
            "input 'item_ids'",
        ),
        (
            [tensor("user_id", "INT64", [1]), tensor("item_ids", "INT64", list(range(6)))],
            "input 'item_ids'",
        ),
        (
            [tensor("user_id", "INT64", [1]), tensor("item_ids", "INT64", [1, 2.5])],
            "input 'item_ids'[1]",
        ),
        (
            [
                tensor("user_id", "INT64", [1]),
                tensor("item_ids", "INT64", [1]),
                tensor("hour", "INT32", [-3]),
            ],
            "input 'hour'",
        ),
        (
            [
                tensor("user_id", "INT64", [1]),
                tensor("item_ids", "INT64", [1]),
                tensor("hour", "FP32", [float("nan")]),
            ],
            "input 'hour'",
        ),
        (
            [
                tensor("user_id", "INT64", [1]),
                tensor("item_ids", "INT64", [1]),
                tensor("device", "INT32", [1]),
            ],
            "input 'device'",
        ),
        (
            [
                tensor("user_id", "INT64", [1]),
                tensor("item_ids", "INT64", [1]),
                tensor("colour", "BYTES", ["red"]),
            ],
            "input 'colour'",
        ),
        (
            [tensor("user_id", "INT64", [1]), tensor("user_id", "INT64", [2])],
            "input 'user_id'",
        ),
    ],
)
def test_malformed_v2_request_is_rejected_naming_the_input(inputs, field):
    assert field in rejected(v2(*inputs))


def ranked(protocol: str) -> RankedResponse:
    request = ParsedRequest(protocol=protocol, instances=(), request_id="r-9")
    result = RankedList(
        item_ids=np.array([3, 1], dtype=np.int64),
        scores={
            "click": np.array([0.5, 0.25], np.float32),
            "conversion": np.array([0.1, 0.2], np.float32),
        },
        model_version="v7",
    )
    return RankedResponse(request=request, results=(result,))


def test_v1_response_lists_ranked_ids_with_aligned_scores_and_version():
    (prediction,) = format_response(ranked("v1"), "ranker")["predictions"]
    assert prediction["item_ids"] == [3, 1]
    assert prediction["scores"]["click"] == [0.5, 0.25]
    assert prediction["scores"]["conversion"] == pytest.approx([0.1, 0.2])
    assert prediction["model_version"] == "v7"


def test_v2_response_has_ranked_ids_and_one_fp32_output_per_task():
    body, _ = format_response(ranked("v2"), "ranker").to_rest()
    outputs = {o["name"]: o for o in body["outputs"]}
    assert body["id"] == "r-9" and body["model_version"] == "v7"
    assert outputs["ranked_item_ids"] == {
        "name": "ranked_item_ids",
        "shape": [2],
        "datatype": "INT64",
        "data": [3, 1],
    }
    assert outputs["click"]["datatype"] == "FP32" and outputs["click"]["data"] == [0.5, 0.25]
    assert set(outputs) == {"ranked_item_ids", "click", "conversion"}


def test_forwarded_body_round_trips_through_the_parser():
    payload = v1(features={"user_ctr": [0.1, None, 0.3]})
    parsed = parse_request(payload, LIMITS, FEATURES)
    again = parse_request(forward_body(parsed), LIMITS, FEATURES)
    assert again.instances[0].features == {"user_ctr": [0.1, None, 0.3]}
    assert again.instances[0].item_ids.tolist() == [1, 2, 3]


def test_predictor_answer_is_read_back_into_ranked_lists():
    request = parse_request(v1(), LIMITS)
    answer = {
        "predictions": [{"item_ids": [2, 1, 3], "scores": {"click": [0.3, 0.2, 0.1]}, "model_version": "v1"}]
    }
    response = parse_predictions(answer, request)
    assert response.results[0].item_ids.tolist() == [2, 1, 3]


def test_limits_are_validated_naming_the_field():
    with pytest.raises(ValueError, match="max_items"):
        RequestLimits(max_items=0)


def test_a_raw_json_body_is_parsed_whatever_its_content_type():
    parsed = parse_request(b'{"instances": [{"user_id": 1, "item_ids": [2]}]}', LIMITS)
    assert parsed.instances[0].item_ids.tolist() == [2]


def test_a_raw_body_that_is_not_json_is_rejected():
    assert "not valid JSON" in rejected(b"user=1&items=2")
