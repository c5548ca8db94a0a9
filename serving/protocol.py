"""Ranking requests and responses on the wire: V1 (KServe JSON) and V2 (Open Inference Protocol).

Everything here is protocol handling, kept out of the model (STYLE.md #4): a request is parsed and
validated into :class:`RankRequest` values, the ranked answer is written back in the caller's
protocol. A malformed request raises KServe's ``InvalidInput`` (HTTP 400) with a message naming the
field and the fix; ids the model has never seen are valid and are served with defaults.

V1 request::

    {"instances": [{"user_id": 42, "item_ids": [1, 2, 3],
                    "context": {"device": "mobile", "surface": "home", "hour": 13}}]}

V1 response (scores aligned with the ranked ``item_ids``)::

    {"predictions": [{"item_ids": [3, 1, 2], "scores": {"click": [...], "conversion": [...]},
                      "model_version": "..."}]}

V2 inputs: ``user_id`` INT64 [1], ``item_ids`` INT64 [N], optional ``device`` / ``surface``
BYTES [1] and ``hour`` INT32 [1]. V2 outputs, in ranked order: ``ranked_item_ids`` INT64 [N]
and one FP32 [N] tensor per task (``click``, ``conversion``).

An instance may also carry ``features`` (column -> N values): the Feast transformer forwards the
online features it looked up this way, so the predictor behind it needs no feature store. It also
stamps the body with ``feature_version`` (V2: the request parameter of that name), the model version
the features were looked up for; a predictor serving another version refuses the request with
HTTP 409 naming both (:class:`FeatureVersionMismatch`), so features and model move together. A
vector column (the item text embedding) may come packed as ``{"float32_base64": "..."}``: the
N x dim little-endian float32 matrix, base64-encoded, zeros for a missing row — the transformer
sends it so, as 100 x 384 numbers in JSON cost milliseconds to write and read.

A ranked list answered with default features because the online store failed carries
``degraded`` (V1: in the prediction; V2: a response parameter), a sentence naming the cause.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import orjson

from serving._kserve import InferenceError, InferOutput, InferRequest, InferResponse, InvalidInput

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
CONTEXT_FIELDS = ("device", "surface", "hour")
MAX_CONTEXT_TEXT = 64
_V2_INT_TYPES = frozenset({"INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64"})
_V1_INSTANCE_KEYS = frozenset({"user_id", "item_ids", "context", "features"})
_VERSION = re.compile(r"^[A-Za-z0-9][-A-Za-z0-9_.+]{0,127}$")
FEATURE_VERSION = "feature_version"
PACKED_VECTORS = "float32_base64"
DEGRADED = "degraded"

Protocol = Literal["v1", "v2"]
FLOAT32_MAX = float(np.finfo(np.float32).max)


@dataclass(frozen=True)
class ColumnRule:
    """What a forwarded feature column may hold, one value per item, null where missing:
    ``number`` (finite, float32 range), ``category`` (text or an integer id) or ``vector``
    (``dim`` numbers)."""

    kind: Literal["number", "category", "vector"]
    dim: int = 0

    def check(self, values: list, where: str) -> None:
        """Raise ``InvalidInput`` naming the first value this column may not hold."""
        if self.kind == "vector" and _all_finite_numbers(values, self.dim):
            return  # the fast path for machine-written vectors (a transformer's)
        if (
            self.kind == "number"
            and not any(isinstance(v, bool) for v in values)
            and _all_finite_numbers(values, 0)
        ):
            return
        for i, value in enumerate(values):
            if value is None or self._allows(value):
                continue
            if self.kind == "vector" and isinstance(value, list) and len(value) == self.dim:
                j = next(j for j, v in enumerate(value) if not _is_number(v))
                raise InvalidInput(
                    f"{where}[{i}][{j}]: expected a finite number in float32 range, got {_describe(value[j])}"
                )
            raise InvalidInput(f"{where}[{i}]: expected {self._expected()} or null, got {_describe(value)}")

    def _allows(self, value: Any) -> bool:
        if self.kind == "number":
            return _is_number(value)
        if self.kind == "category":
            return isinstance(value, str) or (
                isinstance(value, int) and not isinstance(value, bool) and INT64_MIN <= value <= INT64_MAX
            )
        return isinstance(value, list) and len(value) == self.dim and all(_is_number(v) for v in value)

    def _expected(self) -> str:
        return {
            "number": "a finite number",
            "category": "a string or an integer id",
            "vector": f"a list of {self.dim} finite numbers",
        }[self.kind]


FeatureColumns = Mapping[str, ColumnRule] | frozenset[str]
"""The features a caller may forward: names with their rules (names only: any plain JSON value)."""


class FeatureVersionMismatch(InvalidInput):
    """Features looked up for another model version than the one serving (HTTP 409)."""


class PredictorUnavailable(RuntimeError):
    """The predictor behind a transformer cannot be reached or is not ready (HTTP 503: retry)."""


@dataclass(frozen=True)
class RequestLimits:
    """Bounds on one request; a request outside them is answered with HTTP 400."""

    max_items: int = 500
    max_instances: int = 64

    def __post_init__(self) -> None:
        for name in ("max_items", "max_instances"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: must be an integer >= 1, got {value!r}")


DEFAULT_LIMITS = RequestLimits()


@dataclass(frozen=True)
class RankRequest:
    """One user's candidates to rank, with the request context and optional forwarded features."""

    user_id: int
    item_ids: np.ndarray
    context: Mapping[str, Any]
    features: Mapping[str, Any] | None = None
    degraded: str | None = None

    def __len__(self) -> int:
        return len(self.item_ids)


@dataclass(frozen=True)
class ParsedRequest:
    """A validated request: the instances to rank and how the caller spoke to us."""

    protocol: Protocol
    instances: tuple[RankRequest, ...]
    request_id: str | None = None
    requested_outputs: Any = None
    feature_version: str | None = None


@dataclass(frozen=True)
class RankedList:
    """The answer for one instance: item ids best first, per-task scores in the same order."""

    item_ids: np.ndarray
    scores: Mapping[str, np.ndarray]
    model_version: str
    degraded: str | None = None


@dataclass(frozen=True)
class RankedResponse:
    """All answers of one request, with what is needed to write them in the caller's protocol."""

    request: ParsedRequest
    results: tuple[RankedList, ...] = field(default_factory=tuple)


def parse_request(
    payload: Any, limits: RequestLimits, feature_columns: FeatureColumns = frozenset()
) -> ParsedRequest:
    """Validate a decoded request body (V1 dict or V2 ``InferRequest``) into rank requests."""
    if isinstance(payload, InferRequest):
        return _parse_v2(payload, limits)
    if isinstance(payload, (bytes, str)):
        # KServe hands over the raw body when the Content-Type is not JSON (curl's default).
        try:
            payload = orjson.loads(payload)
        except orjson.JSONDecodeError as error:
            raise InvalidInput(f"request body: not valid JSON ({error}); send a JSON object") from error
    if isinstance(payload, Mapping):
        return _parse_v1(payload, limits, feature_columns)
    raise InvalidInput(
        "request body: expected a JSON object with 'instances' (V1) or 'inputs' (V2), "
        f"got {_describe(payload)}"
    )


def format_response(response: RankedResponse, model_name: str) -> dict | InferResponse:
    """Write ranked results in the protocol the request came in."""
    if response.request.protocol == "v2":
        return _format_v2(response, model_name)
    return {"predictions": [_v1_prediction(result) for result in response.results]}


def forward_body(request: ParsedRequest, feature_version: str | None = None) -> dict:
    """The V1 body a transformer sends to the predictor: the instances with their features,
    stamped with the model version the features are for."""
    body: dict[str, Any] = {"instances": [_v1_instance(instance) for instance in request.instances]}
    if feature_version is not None:
        body[FEATURE_VERSION] = feature_version
    return body


def check_feature_version(request: ParsedRequest, model_version: str) -> None:
    """Refuse a request whose features were looked up for another model version (kserve#1669)."""
    if request.feature_version is not None and request.feature_version != model_version:
        raise FeatureVersionMismatch(
            f"{FEATURE_VERSION}: the request's features are for model version "
            f"{request.feature_version!r} but this predictor serves {model_version!r}; deploy the "
            "transformer and the predictor of one version together"
        )


def parse_predictions(body: Any, request: ParsedRequest) -> RankedResponse:
    """Read a predictor's V1 answer to :func:`forward_body` back into ranked lists."""
    try:
        predictions = body["predictions"]
        if len(predictions) != len(request.instances):
            raise ValueError(f"{len(predictions)} predictions for {len(request.instances)} instances")
        results = tuple(
            RankedList(
                item_ids=np.asarray(p["item_ids"], dtype=np.int64),
                scores={task: np.asarray(s, dtype=np.float32) for task, s in p["scores"].items()},
                model_version=str(p["model_version"]),
                degraded=p.get(DEGRADED),
            )
            for p in predictions
        )
    except (KeyError, TypeError, ValueError) as error:
        raise InferenceError(f"predictor returned an unexpected V1 response: {error}") from error
    return RankedResponse(request=request, results=results)


# --- V1 ---------------------------------------------------------------------------------------


def _parse_v1(payload: Mapping, limits: RequestLimits, feature_columns: FeatureColumns) -> ParsedRequest:
    if "inputs" in payload and "instances" not in payload:
        raise InvalidInput(
            "request body: 'inputs' is the V2 format; POST it to /v2/models/<name>/infer, "
            "or send V1 'instances' to /v1/models/<name>:predict"
        )
    instances = payload.get("instances")
    if not isinstance(instances, list) or not instances:
        raise InvalidInput(
            "instances: required, a non-empty list of "
            '{"user_id": int, "item_ids": [int, ...], "context": {...}}'
        )
    if len(instances) > limits.max_instances:
        raise InvalidInput(
            f"instances: {len(instances)} instances, at most {limits.max_instances} per request; "
            "split the request"
        )
    parsed = tuple(
        _parse_v1_instance(instance, f"instances[{i}]", limits, feature_columns)
        for i, instance in enumerate(instances)
    )
    version = _feature_version(payload.get(FEATURE_VERSION), FEATURE_VERSION)
    return ParsedRequest(protocol="v1", instances=parsed, feature_version=version)


def _parse_v1_instance(
    instance: Any, where: str, limits: RequestLimits, feature_columns: FeatureColumns
) -> RankRequest:
    if not isinstance(instance, Mapping):
        raise InvalidInput(f"{where}: expected an object with user_id and item_ids")
    unknown = sorted(set(instance) - _V1_INSTANCE_KEYS)
    if unknown:
        raise InvalidInput(
            f"{where}.{unknown[0]}: unknown field; allowed fields are {sorted(_V1_INSTANCE_KEYS)}"
        )
    if "user_id" not in instance:
        raise InvalidInput(f"{where}.user_id: required, an integer user id")
    if "item_ids" not in instance:
        raise InvalidInput(f"{where}.item_ids: required, a list of candidate item ids")
    user_id = _as_int64(instance["user_id"], f"{where}.user_id")
    item_ids = _item_ids(instance["item_ids"], f"{where}.item_ids", limits)
    context = _v1_context(instance.get("context"), f"{where}.context")
    features = instance.get("features")
    if features is not None:
        features = _features(features, f"{where}.features", len(item_ids), feature_columns)
    return RankRequest(user_id=user_id, item_ids=item_ids, context=context, features=features)


def _v1_context(context: Any, where: str) -> dict[str, Any]:
    if context is None:
        return dict.fromkeys(CONTEXT_FIELDS)
    if not isinstance(context, Mapping):
        raise InvalidInput(f'{where}: expected an object like {{"device": "mobile", "hour": 13}}')
    unknown = sorted(set(context) - set(CONTEXT_FIELDS))
    if unknown:
        raise InvalidInput(f"{where}.{unknown[0]}: unknown field; allowed fields are {list(CONTEXT_FIELDS)}")
    return {name: _context_value(name, context.get(name), f"{where}.{name}") for name in CONTEXT_FIELDS}


def _v1_instance(instance: RankRequest) -> dict:
    body: dict[str, Any] = {
        "user_id": instance.user_id,
        "item_ids": instance.item_ids.tolist(),
        "context": {k: v for k, v in instance.context.items() if v is not None},
    }
    if instance.features is not None:
        body["features"] = {name: _json_column(values) for name, values in instance.features.items()}
    return body


def _json_column(values: Any) -> list | dict:
    """A feature column as JSON values: NaN (a missing number) becomes null; a matrix of vectors
    is packed (see the module docstring)."""
    if isinstance(values, np.ndarray):
        if values.dtype.kind == "f" and values.ndim == 1:
            return [None if math.isnan(v) else v for v in values.tolist()]
        if values.dtype.kind == "f" and values.ndim == 2:
            packed = np.ascontiguousarray(np.nan_to_num(values, nan=0.0), dtype="<f4").tobytes()
            return {PACKED_VECTORS: base64.b64encode(packed).decode("ascii")}
        return values.tolist()
    return list(values)


def _packed_vectors(values: Mapping, where: str, n: int, rule: ColumnRule | None) -> np.ndarray:
    """The [n, dim] float32 matrix of a packed vector column, checked."""
    if rule is None or rule.kind != "vector":
        raise InvalidInput(f"{where}: only a vector column may be packed; send a list of {n} values")
    if set(values) != {PACKED_VECTORS} or not isinstance(values[PACKED_VECTORS], str):
        raise InvalidInput(f"{where}: a packed column is {{{PACKED_VECTORS!r}: base64 text}}")
    try:
        raw = base64.b64decode(values[PACKED_VECTORS], validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput(f"{where}.{PACKED_VECTORS}: not valid base64") from None
    if len(raw) != n * rule.dim * 4:
        raise InvalidInput(
            f"{where}.{PACKED_VECTORS}: {len(raw)} bytes; expected {n} x {rule.dim} float32 = "
            f"{n * rule.dim * 4} bytes"
        )
    matrix = np.frombuffer(raw, dtype="<f4").reshape(n, rule.dim)
    if not np.isfinite(matrix).all():
        raise InvalidInput(
            f"{where}.{PACKED_VECTORS}: holds NaN or infinite numbers; send zeros for a missing row"
        )
    return matrix


def _v1_prediction(result: RankedList) -> dict:
    prediction = {
        "item_ids": result.item_ids.tolist(),
        "scores": {task: scores.tolist() for task, scores in result.scores.items()},
        "model_version": result.model_version,
    }
    if result.degraded is not None:
        prediction[DEGRADED] = result.degraded
    return prediction


# --- V2 ---------------------------------------------------------------------------------------


def _parse_v2(request: InferRequest, limits: RequestLimits) -> ParsedRequest:
    values: dict[str, list] = {}
    for infer_input in request.inputs:
        name = infer_input.name
        where = f"input '{name}'"
        if name not in ("user_id", "item_ids", *CONTEXT_FIELDS):
            raise InvalidInput(
                f"{where}: unknown input; expected user_id, item_ids and optionally "
                f"{', '.join(CONTEXT_FIELDS)}"
            )
        if name in values:
            raise InvalidInput(f"{where}: given twice; send each input once")
        values[name] = _v2_data(infer_input, where)
    for name in ("user_id", "item_ids"):
        if name not in values:
            kind = "INT64 [1]" if name == "user_id" else "INT64 [N]"
            raise InvalidInput(f"input '{name}': required, {kind}")
    user_id = _as_int64(_single(values["user_id"], "input 'user_id'"), "input 'user_id'")
    item_ids = _item_ids(values["item_ids"], "input 'item_ids'", limits)
    context = {
        name: _context_value(
            name,
            _single(values[name], f"input '{name}'") if name in values else None,
            f"input '{name}'",
        )
        for name in CONTEXT_FIELDS
    }
    instance = RankRequest(user_id=user_id, item_ids=item_ids, context=context)
    parameters = request.parameters if isinstance(request.parameters, Mapping) else {}
    return ParsedRequest(
        protocol="v2",
        instances=(instance,),
        request_id=request.id,
        requested_outputs=request.request_outputs,
        feature_version=_feature_version(parameters.get(FEATURE_VERSION), f"parameters.{FEATURE_VERSION}"),
    )


def _v2_data(infer_input: Any, where: str) -> list:
    datatype = str(infer_input.datatype).upper()
    expected = "BYTES" if infer_input.name in ("device", "surface") else "INT"
    if expected == "BYTES" and datatype != "BYTES":
        raise InvalidInput(f"{where}: datatype {datatype} not allowed; send BYTES")
    if expected == "INT" and datatype not in _V2_INT_TYPES:
        suggestion = "INT32" if infer_input.name == "hour" else "INT64"
        raise InvalidInput(f"{where}: datatype {datatype} not allowed; send {suggestion}")
    data = _flatten(infer_input.data, where)
    shape = infer_input.shape
    if (
        not isinstance(shape, (list, tuple))
        or any(isinstance(d, bool) or not isinstance(d, int) or d < 0 for d in shape)
        or math.prod(shape) != len(data)
    ):
        raise InvalidInput(
            f"{where}: shape {shape!r} does not match its {len(data)} data values; send shape [{len(data)}]"
        )
    if expected == "BYTES":
        return [_as_text(value, where) for value in data]
    return data


def _format_v2(response: RankedResponse, model_name: str) -> InferResponse:
    (result,) = response.results
    outputs = [_v2_output("ranked_item_ids", "INT64", result.item_ids.astype(np.int64))]
    outputs += [
        _v2_output(task, "FP32", np.asarray(scores, dtype=np.float32))
        for task, scores in result.scores.items()
    ]
    return InferResponse(
        response_id=response.request.request_id or str(uuid.uuid4()),
        model_name=model_name,
        model_version=result.model_version,
        infer_outputs=outputs,
        requested_outputs=response.request.requested_outputs,
        parameters=None if result.degraded is None else {DEGRADED: result.degraded},
    )


def _v2_output(name: str, datatype: str, values: np.ndarray) -> InferOutput:
    output = InferOutput(name=name, shape=list(values.shape), datatype=datatype)
    output.set_data_from_numpy(values, binary_data=False)
    return output


# --- shared field rules ------------------------------------------------------------------------


def _as_int64(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InvalidInput(f"{where}: expected an integer id, got {_describe(value)}; send e.g. 42")
    value = int(value)
    if not INT64_MIN <= value <= INT64_MAX:
        raise InvalidInput(f"{where}: {value} does not fit in int64; send an id in int64 range")
    return value


def _feature_version(value: Any, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _VERSION.match(value):
        raise InvalidInput(
            f"{where}: expected a model version like 'v3' (letters, digits, '-', '_', '.', '+'), "
            f"got {_describe(value)}"
        )
    return value


def _item_ids(values: Any, where: str, limits: RequestLimits) -> np.ndarray:
    if not isinstance(values, list) or not values:
        raise InvalidInput(
            f"{where}: expected a non-empty list of integer item ids, got {_describe(values)}; "
            f"send 1 to {limits.max_items} candidates"
        )
    if len(values) > limits.max_items:
        raise InvalidInput(
            f"{where}: {len(values)} candidates, at most {limits.max_items} per request; "
            "send fewer candidates or raise max_items on the server"
        )
    if all(type(v) is int for v in values):  # JSON's ids: one conversion, no per-id checks
        try:
            ids = np.array(values, dtype=np.int64)
        except OverflowError:
            ids = _checked_ids(values, where)
    else:
        ids = _checked_ids(values, where)
    if len(set(values)) != len(values):
        unique, counts = np.unique(ids, return_counts=True)
        raise InvalidInput(
            f"{where}: item id {int(unique[counts > 1][0])} appears more than once; send each candidate once"
        )
    return ids


def _checked_ids(values: list, where: str) -> np.ndarray:
    """The ids one by one, so the first that is not an int64 is named."""
    return np.fromiter(
        (_as_int64(v, f"{where}[{i}]") for i, v in enumerate(values)), dtype=np.int64, count=len(values)
    )


def _context_value(name: str, value: Any, where: str) -> Any:
    if value is None:
        return None
    if name == "hour":
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= value <= 23:
            raise InvalidInput(f"{where}: expected an integer hour 0-23, got {_describe(value)}")
        return int(value)
    if not isinstance(value, str) or not value or len(value) > MAX_CONTEXT_TEXT:
        raise InvalidInput(
            f"{where}: expected a non-empty string of at most {MAX_CONTEXT_TEXT} characters, "
            f'got {_describe(value)}; e.g. "mobile"'
        )
    return value


def _features(features: Any, where: str, n: int, feature_columns: FeatureColumns) -> dict[str, Any]:
    if not feature_columns:
        raise InvalidInput(f"{where}: this server looks features up itself; remove 'features'")
    if not isinstance(features, Mapping):
        raise InvalidInput(f"{where}: expected an object mapping feature column -> {n} values")
    checked = {}
    for name, values in features.items():
        if name not in feature_columns:
            raise InvalidInput(
                f"{where}.{name}: not a feature of this model; known: {sorted(feature_columns)}"
            )
        rule = feature_columns.get(name) if isinstance(feature_columns, Mapping) else None
        if isinstance(values, Mapping):
            checked[name] = _packed_vectors(values, f"{where}.{name}", n, rule)
            continue
        if not isinstance(values, list) or len(values) != n:
            raise InvalidInput(f"{where}.{name}: expected a list of {n} values, one per item id")
        if rule is not None:
            rule.check(values, f"{where}.{name}")
        elif not _all_finite_numbers(values):
            for i, value in enumerate(values):
                _check_feature_value(value, f"{where}.{name}[{i}]")
        checked[name] = values
    return checked


def _all_finite_numbers(values: list, dim: int | None = None) -> bool:
    """Fast path for a column of numbers (or of equal-length number lists): all finite?"""
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError, OverflowError):
        return False
    if dim is not None and array.shape != ((len(values),) if dim == 0 else (len(values), dim)):
        return False
    return bool(np.isfinite(array).all() and (np.abs(array) <= FLOAT32_MAX).all())


def _is_number(value: Any) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and abs(value) <= FLOAT32_MAX
    )


def _check_feature_value(value: Any, where: str) -> None:
    if value is None or isinstance(value, (str, int)):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidInput(f"{where}: {value} is not finite; send null for a missing value")
        return
    if isinstance(value, list) and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value
    ):
        return
    raise InvalidInput(
        f"{where}: expected a number, a string, a list of finite numbers or null, got {_describe(value)}"
    )


def _single(values: list, where: str) -> Any:
    if len(values) != 1:
        raise InvalidInput(f"{where}: expected exactly one value (shape [1]), got {len(values)}")
    return values[0]


def _flatten(data: Any, where: str) -> list:
    if isinstance(data, np.ndarray):
        return data.reshape(-1).tolist()
    if not isinstance(data, (list, tuple)):
        raise InvalidInput(f"{where}: 'data' must be a list, got {_describe(data)}")
    flat: list = []
    for value in data:
        if isinstance(value, (list, tuple)):
            flat.extend(_flatten(value, where))
        else:
            flat.append(value)
    return flat


def _as_text(value: Any, where: str) -> str:
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError as error:
            raise InvalidInput(f"{where}: not valid UTF-8; send text") from error
    if isinstance(value, str):
        return value
    raise InvalidInput(f"{where}: expected text, got {_describe(value)}")


def _describe(value: Any) -> str:
    if isinstance(value, (list, tuple, dict)):
        return f"{type(value).__name__} of {len(value)} values"
    text = repr(value)
    if len(text) > 40:
        text = text[:37] + "..."
    return f"{type(value).__name__} {text}"
