"""Hypothesis strategies for ranking requests gone wrong, and what a good refusal looks like.

Bodies are encoded the way a careless client would: Python's ``json`` with NaN and Infinity
literals allowed, any unicode, integers of any size. A good server answers 200, or a 4xx whose
``error`` names the field that is wrong; a body that is not JSON at all is refused as a whole.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import httpx
from hypothesis import strategies as st

VALID_V1 = {
    "instances": [
        {"user_id": 7, "item_ids": [1, 2, 3], "context": {"device": "mobile", "surface": "home", "hour": 9}}
    ]
}
VALID_V2 = {
    "inputs": [
        {"name": "user_id", "shape": [1], "datatype": "INT64", "data": [7]},
        {"name": "item_ids", "shape": [3], "datatype": "INT64", "data": [1, 2, 3]},
        {"name": "device", "shape": [1], "datatype": "BYTES", "data": ["mobile"]},
        {"name": "hour", "shape": [1], "datatype": "INT32", "data": [9]},
    ]
}
# where a V1 value is replaced -> the text the refusal must contain
V1_FIELDS: dict[tuple, str] = {
    ("instances",): "instances",
    ("instances", 0): "instances[0]",
    ("instances", 0, "user_id"): "instances[0].user_id",
    ("instances", 0, "item_ids"): "instances[0].item_ids",
    ("instances", 0, "item_ids", 1): "instances[0].item_ids",
    ("instances", 0, "context"): "instances[0].context",
    ("instances", 0, "context", "device"): "instances[0].context.device",
    ("instances", 0, "context", "surface"): "instances[0].context.surface",
    ("instances", 0, "context", "hour"): "instances[0].context.hour",
    ("instances", 0, "features"): "instances[0].features",
    ("instances", 0, "features", "price"): "instances[0].features.price",
    ("instances", 0, "features", "category"): "instances[0].features.category",
    ("instances", 0, "features", "text_embedding"): "instances[0].features.text_embedding",
    ("feature_version",): "feature_version",
}
V2_USER_PREFIX = b'{"inputs": [{"name": "user_id", "shape": [1], "datatype": "INT64", "data": ['
NOT_JSON = "Unrecognized request format"  # KServe's refusal of a V1 body it cannot parse

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=100)
    | st.sampled_from([0, -1, 2**63 - 1, -(2**63), 2**63, "", "🙂" * 70, "\u0000", "NaN", "1e309"])
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=6) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=25,
)
numbers = st.integers(min_value=-(2**70), max_value=2**70) | st.floats(allow_nan=True, allow_infinity=True)
feature_values = (
    st.none()
    | st.booleans()
    | numbers
    | st.text(max_size=20)
    | st.lists(numbers | st.none(), max_size=5)
    | st.lists(st.floats(-1, 1) | st.sampled_from([1e39, float("nan"), True]), min_size=384, max_size=384)
)
FEATURE_COLUMNS = ("price", "category", "age_bucket", "user_ctr", "item_impressions", "text_embedding")
huge_lists = st.integers(min_value=501, max_value=20_000).map(lambda n: list(range(n)))


def encode(body: Any) -> bytes:
    """JSON as Python writes it by default: NaN / Infinity literals allowed, ASCII escapes."""
    return json.dumps(body, allow_nan=True).encode()


def _replace(body: dict, path: tuple, value: Any) -> dict:
    body = copy.deepcopy(body)
    target = body
    for key in path[:-1]:
        target = target.setdefault(key, {}) if isinstance(target, dict) else target[key]
    target[path[-1]] = value
    return body


@st.composite
def corrupted_v1(draw: st.DrawFn) -> tuple[bytes, str]:
    """A valid V1 body with one value replaced by anything; and the field the answer must name."""
    path, field = draw(st.sampled_from(sorted(V1_FIELDS.items(), key=str)))
    value = draw(json_values | huge_lists) if path[-1] == "item_ids" else draw(json_values)
    if path[-1] in ("price", "category", "text_embedding"):  # a forwarded feature column
        value = draw(st.lists(json_values, min_size=3, max_size=3) | json_values)
    return encode(_replace(VALID_V1, path, value)), field


@st.composite
def forwarded_features(draw: st.DrawFn) -> tuple[bytes, str]:
    """A V1 body carrying a forwarded feature column of plausible-looking values of any kind."""
    column = draw(st.sampled_from(FEATURE_COLUMNS))
    values = draw(st.lists(feature_values, min_size=3, max_size=3))
    body = _replace(VALID_V1, ("instances", 0, "features"), {column: values})
    return encode(body), f"instances[0].features.{column}"


@st.composite
def corrupted_v2(draw: st.DrawFn) -> tuple[bytes, tuple[str, ...]]:
    """A valid V2 body with one input's key, a whole input or the parameters replaced; and the
    texts of which the answer must name one."""
    body = copy.deepcopy(VALID_V2)
    index = draw(st.integers(0, len(body["inputs"]) - 1))
    name = body["inputs"][index]["name"]
    where = draw(st.sampled_from(["name", "shape", "datatype", "data", "input", "parameters", "inputs"]))
    value = draw(json_values)
    if where == "input":
        body["inputs"][index] = value
    elif where == "parameters":
        body["parameters"] = draw(st.dictionaries(st.just("feature_version"), json_values) | json_values)
    elif where == "inputs":
        body["inputs"] = value
    else:
        body["inputs"][index][where] = value
    named = (f"input '{name}'", "input '", "inputs", "parameters", where)
    # a well-typed feature_version of another model is refused naming it (HTTP 409)
    return encode(body), named + (("feature_version",) if where == "parameters" else ())


malformed_bodies = (
    st.binary(max_size=300)
    | st.text(max_size=300).map(str.encode)
    | st.sampled_from(
        [
            b"",
            b"null",
            b"[]",
            b'"instances"',
            b"[" * 10_000 + b"]" * 10_000,
            b'{"instances": [{"user_id": ' + b"9" * 5000 + b', "item_ids": [1]}]}',
            V2_USER_PREFIX + b"9" * 5000 + b"]}]}",
            b'{"instances": [{"user_id": 1, "item_ids": [1], "context": {"hour": NaN}}]}',
            b'{"inputs": [{"name": "hour", "shape": [1], "datatype": "INT32", "data": [Infinity]}]}',
            b"\xff\xfe\x00",
        ]
    )
)


def post(client: httpx.Client, url: str, body: bytes) -> httpx.Response:
    return client.post(url, content=body, headers={"content-type": "application/json"})


def assert_answered_or_refused(reply: httpx.Response, *fields: str) -> None:
    """200, or a 4xx whose error names one of ``fields`` (or says the body is not JSON)."""
    assert reply.status_code < 500, f"HTTP {reply.status_code}: {reply.text[:300]}"
    if reply.status_code == 200:
        return
    assert 400 <= reply.status_code < 500
    error = reply.json()["error"]
    assert isinstance(error, str) and error
    if fields:
        assert any(field in error for field in (*fields, NOT_JSON)), f"{error!r} names none of {fields}"
