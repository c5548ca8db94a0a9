"""Local canary router: a sticky, weighted split of users between a primary and a canary server.

Assignment (:mod:`serving.assignment`): a user's point ``u = H(salt, user_id) ∈ [0, 1)`` is
compared with the canary weight ``w``: canary when ``u < w``, else primary. The same rule decides
both arms, so a user keeps their arm for a fixed weight, and raising ``w`` moves exactly the users
with ``w_old <= u < w_new`` from primary to canary — nobody else.

A canary request that fails (transport error, timeout or 5xx) is counted as a canary error and
retried on the primary, so users do not see the canary's failures. A 4xx is the caller's mistake:
it is passed back unchanged and counted as ``rejected``. Business outcomes are recorded in the arm
the user is assigned to (intention to treat), also for requests the primary answered after a
canary failure.

A primary request that fails in transport (connection refused or reset, timeout) or with a
gateway status (502, 503, 504) is retried with a short, growing backoff within
``RetryPolicy.budget_s``, so a primary restart delays requests instead of losing them.

Each arm may be pinned to a model version (``versions``): a 2xx answer that carries another
``model_version`` is counted as an error of that arm (a canary's is retried on the primary; a
primary's becomes a 502), so features, model and analysis never mix versions. A 409 — an arm's
transformer and predictor are of different versions — is that arm's error too, never the
caller's. The versions that answered are counted per arm in ``/stats``.

With a :class:`serving.shadow.ShadowConfig` a share of the primary's requests is mirrored to a
candidate server that never answers users (:mod:`serving.shadow`); ``/stats`` carries the
comparison. ``/metrics`` exports the router's Prometheus series (:mod:`serving.router_metrics`).

Runs in-process (``await router.predict(body)``) or as an HTTP app on loopback
(``python -m serving.router --primary URL --canary URL --canary-percent 10 --port N``).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from serving.assignment import ARMS, CANARY, PRIMARY, assign_arm, assignment_point, check_weight
from serving.metrics import ArmRecorder, ArmStats
from serving.router_metrics import CONTENT_TYPE, RouterMetrics
from serving.shadow import ShadowConfig, ShadowMirror
from serving.upstream import UpstreamClient, UpstreamError, UpstreamReply

__all__ = [
    "ARMS",
    "CANARY",
    "PRIMARY",
    "CanaryRouter",
    "RetryPolicy",
    "RoutedResponse",
    "assign_arm",
    "assignment_point",
    "create_app",
    "request_user",
]

ARM_HEADER = "x-recforge-arm"
SERVED_BY_HEADER = "x-recforge-served-by"
VERSION_HEADER = "x-recforge-model-version"
# Gateway statuses: the server (or the transformer's predictor) is not reachable right now, so
# another attempt may succeed; any other 5xx is the model's own failure and is not repeated.
RETRY_STATUSES = frozenset({502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """How long the primary is retried after a transport error or a 502/503/504: backoff from
    ``backoff_s`` doubling up to ``max_backoff_s``, no new attempt after ``budget_s``."""

    budget_s: float = 20.0
    backoff_s: float = 0.02
    max_backoff_s: float = 0.5

    def __post_init__(self) -> None:
        for name in ("budget_s", "backoff_s", "max_backoff_s"):
            value = getattr(self, name)
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            if not ok or value < 0 or (name != "budget_s" and value == 0):
                raise ValueError(f"retry.{name}: expected seconds > 0 (budget_s >= 0), got {value!r}")
        if self.max_backoff_s < self.backoff_s:
            raise ValueError(
                f"retry.max_backoff_s: expected >= backoff_s ({self.backoff_s}), got {self.max_backoff_s}"
            )


NO_RETRY = RetryPolicy(budget_s=0.0)


@dataclass(frozen=True)
class RoutedResponse:
    """What the caller gets: the arm the user is in, who answered, the answer and its time."""

    arm: str
    served_by: str
    status: int
    content: bytes
    latency_ms: float
    model_version: str | None = None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def json(self) -> Any:
        return orjson.loads(self.content)


@dataclass(frozen=True)
class _Attempt:
    """One arm's result for a request (after its retries): an answer, or why there is none."""

    status: int | None
    content: bytes
    latency_ms: float
    model_version: str | None = None
    failure: str | None = None  # transport | server | version


class CanaryRouter:
    """Splits requests between two model servers by user and keeps per-arm statistics."""

    def __init__(
        self,
        primary_url: str,
        canary_url: str,
        *,
        canary_weight: float,
        salt: str = "recforge-canary",
        model_name: str = "ranker",
        timeout_s: float = 10.0,
        max_connections: int = 64,
        versions: Mapping[str, str] | None = None,
        retry: RetryPolicy = RetryPolicy(),
        shadow: ShadowConfig | None = None,
    ) -> None:
        if not salt:
            raise ValueError("salt: expected a non-empty experiment name")
        self.urls = {PRIMARY: primary_url.rstrip("/"), CANARY: canary_url.rstrip("/")}
        self.salt = salt
        self.model_name = model_name
        self.pinned = _check_versions(versions)
        self.retry = retry
        self._weight = check_weight(canary_weight)
        self._recorders = {arm: ArmRecorder() for arm in ARMS}
        self._answered_versions: dict[str, Counter[str]] = {arm: Counter() for arm in ARMS}
        self.metrics = RouterMetrics()
        self.shadow = None if shadow is None else ShadowMirror(shadow, self.metrics.shadow)
        self._upstream = UpstreamClient(timeout_s=timeout_s, max_connections=max_connections)

    @property
    def canary_weight(self) -> float:
        return self._weight

    def set_canary_weight(self, weight: float) -> None:
        """Change the split; only users between the old and the new weight change arm."""
        self._weight = check_weight(weight)

    def arm_for(self, user_id: int) -> str:
        return assign_arm(user_id, self.salt, self._weight)

    async def predict(self, body: Mapping[str, Any]) -> RoutedResponse:
        """Route a V1 ranking request by the user of its first instance."""
        user_id = body["instances"][0]["user_id"]
        path = f"/v1/models/{self.model_name}:predict"
        return await self.route(user_id, path, orjson.dumps(body))

    async def route(
        self,
        user_id: int | None,
        path: str,
        content: bytes,
        content_type: str = "application/json",
    ) -> RoutedResponse:
        """Send ``content`` to the user's arm (primary when the user is unknown), retrying a
        failed canary request on the primary."""
        arm = PRIMARY if user_id is None else self.arm_for(user_id)
        served_by = arm
        attempt = await self._call(arm, path, content, content_type)
        if attempt.failure is not None and arm == CANARY:
            served_by = PRIMARY
            attempt = await self._call(PRIMARY, path, content, content_type)
        if attempt.failure is not None:
            routed = RoutedResponse(arm, PRIMARY, 502, _failure_body(path, attempt), attempt.latency_ms)
        else:
            routed = RoutedResponse(
                arm, served_by, attempt.status, attempt.content, attempt.latency_ms, attempt.model_version
            )
            if self.shadow is not None and served_by == arm == PRIMARY and routed.ok:
                self.shadow.mirror(path, content, content_type, routed.content, routed.latency_ms)
        self.metrics.answer(routed.status)
        return routed

    async def _call(self, arm: str, path: str, content: bytes, content_type: str) -> _Attempt:
        """One arm's answer; the primary is retried on transport errors and gateway statuses
        (RetryPolicy)."""
        start = time.perf_counter()
        deadline = start + (self.retry.budget_s if arm == PRIMARY else 0.0)
        backoff = self.retry.backoff_s
        while True:
            try:
                reply = await self._upstream.post(self.urls[arm] + path, content, content_type)
            except UpstreamError:
                reply = None
            retryable = reply is None or reply.status in RETRY_STATUSES
            if not retryable or time.perf_counter() + backoff > deadline:
                break
            self.metrics.retry(arm)
            await asyncio.sleep(backoff)
            backoff = min(2 * backoff, self.retry.max_backoff_s)
        latency_ms = (time.perf_counter() - start) * 1000.0
        attempt = self._judge(arm, reply, latency_ms)
        error = attempt.failure is not None
        self._recorders[arm].record_request(latency_ms, error=error)
        status = "error" if error else "rejected" if attempt.status >= 400 else "ok"
        if status == "rejected":
            self._recorders[arm].record_rejected()
        self.metrics.attempt(arm, latency_ms / 1000.0, status, attempt.failure)
        return attempt

    def _judge(self, arm: str, reply: UpstreamReply | None, latency_ms: float) -> _Attempt:
        if reply is None:
            return _Attempt(None, b"", latency_ms, failure="transport")
        if reply.status >= 500:
            return _Attempt(reply.status, reply.content, latency_ms, failure="server")
        if reply.status == 409:  # the arm's transformer and predictor are different versions
            return _Attempt(reply.status, reply.content, latency_ms, failure="version")
        if reply.status >= 300:
            return _Attempt(reply.status, reply.content, latency_ms)
        version = answer_version(reply.content)
        self._answered_versions[arm][version or "unknown"] += 1
        pinned = self.pinned.get(arm)
        failure = "version" if pinned is not None and version != pinned else None
        return _Attempt(reply.status, reply.content, latency_ms, version, failure)

    def record_outcome(
        self, user_id: int, impressions: int, clicks: int, conversions: int, arm: str | None = None
    ) -> None:
        """What the user did with the shown slate, counted in their (assigned) arm."""
        arm = self.arm_for(user_id) if arm is None else arm
        if arm not in self._recorders:
            raise ValueError(f"arm: expected one of {list(ARMS)}, got {arm!r}")
        self._recorders[arm].record_outcome(user_id, impressions, clicks, conversions)
        self.metrics.outcome(arm, impressions, clicks, conversions)

    def stats(self) -> dict[str, ArmStats]:
        return {arm: recorder.snapshot() for arm, recorder in self._recorders.items()}

    def versions(self) -> dict[str, dict]:
        """Per arm: the pinned version (None when not pinned) and the versions that answered."""
        return {
            arm: {"pinned": self.pinned.get(arm), "answered": dict(self._answered_versions[arm])}
            for arm in ARMS
        }

    async def aclose(self) -> None:
        if self.shadow is not None:
            await self.shadow.aclose()
        await self._upstream.aclose()


def _check_versions(versions: Mapping[str, str] | None) -> dict[str, str]:
    pinned = dict(versions or {})
    unknown = sorted(set(pinned) - set(ARMS))
    if unknown:
        raise ValueError(f"versions: keys must be arms {list(ARMS)}, got {unknown}")
    for arm, version in pinned.items():
        if not isinstance(version, str) or not version:
            raise ValueError(f"versions[{arm!r}]: expected a model version string, got {version!r}")
    return pinned


def _failure_body(path: str, attempt: _Attempt) -> bytes:
    detail = attempt.content.decode(errors="replace")[:300]
    if attempt.failure == "version" and attempt.status == 409:
        why = f"the primary's transformer and predictor are of different model versions ({detail})"
    elif attempt.failure == "version":
        why = f"the primary answered model version {attempt.model_version!r}, not the pinned one"
    else:
        why = f"no arm could answer {path}"
    return orjson.dumps({"error": f"{why}; see the router's /stats"})


def answer_version(content: bytes) -> str | None:
    """The ``model_version`` a V1 (first prediction) or V2 answer carries, if any."""
    try:
        payload = orjson.loads(content)
        version = (
            payload["predictions"][0].get("model_version")
            if "predictions" in payload
            else payload.get("model_version")
        )
    except (orjson.JSONDecodeError, KeyError, IndexError, TypeError, AttributeError):
        return None
    return version if isinstance(version, str) else None


def request_user(body: bytes) -> int | None:
    """The user a V1 (first instance) or V2 (``user_id`` input) JSON body is about, if readable."""
    try:
        payload = orjson.loads(body)
        if "instances" in payload:
            user = payload["instances"][0]["user_id"]
        else:
            (user,) = (i["data"] for i in payload["inputs"] if i["name"] == "user_id")
            while isinstance(user, list) and len(user) == 1:
                user = user[0]
    except (orjson.JSONDecodeError, KeyError, IndexError, TypeError, ValueError):
        return None
    return user if isinstance(user, int) and not isinstance(user, bool) else None


def create_app(router: CanaryRouter) -> FastAPI:
    """The router as a FastAPI app: KServe's V1/V2 inference paths, ``/outcomes``, ``/stats``,
    ``/metrics`` (Prometheus)."""
    app = FastAPI(title="RecForge canary router", docs_url=None, redoc_url=None)

    async def forward(request: Request) -> Response:
        content = await request.body()
        routed = await router.route(
            request_user(content),
            request.url.path,
            content,
            request.headers.get("content-type", "application/json"),
        )
        headers = {ARM_HEADER: routed.arm, SERVED_BY_HEADER: routed.served_by}
        if routed.model_version is not None:
            headers[VERSION_HEADER] = routed.model_version
        return Response(routed.content, routed.status, headers=headers, media_type="application/json")

    app.add_api_route("/v1/models/{model_name}:predict", forward, methods=["POST"])
    app.add_api_route("/v2/models/{model_name}/infer", forward, methods=["POST"])

    @app.post("/outcomes")
    async def outcomes(request: Request) -> JSONResponse:
        try:
            body = orjson.loads(await request.body())
            router.record_outcome(
                _count(body, "user_id"),
                _count(body, "impressions"),
                _count(body, "clicks"),
                _count(body, "conversions"),
            )
        except (orjson.JSONDecodeError, TypeError, ValueError) as error:
            message = (
                f"{error}; send {{'user_id': int, 'impressions': int, 'clicks': int, 'conversions': int}}"
            )
            return JSONResponse({"error": message}, status_code=400)
        return JSONResponse({"recorded": True})

    @app.get("/stats")
    async def stats() -> dict:
        return {
            "canary_weight": router.canary_weight,
            "arms": {arm: s.to_dict() for arm, s in router.stats().items()},
            "versions": router.versions(),
            "shadow": None if router.shadow is None else router.shadow.summary(),
        }

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(router.metrics.exposition(), media_type=CONTENT_TYPE)

    @app.get("/")
    async def live() -> dict:
        return {"status": "alive"}

    return app


def _count(body: Any, name: str) -> int:
    if not isinstance(body, dict) or name not in body:
        raise ValueError(f"{name}: required")
    value = body[name]
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name}: expected an integer, got {value!r}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    import uvicorn

    parser = argparse.ArgumentParser(
        prog="python -m serving.router",
        description="Split ranking traffic between two model servers, sticky per user.",
        epilog="example: python -m serving.router --primary http://127.0.0.1:8080 "
        "--canary http://127.0.0.1:8081 --canary-percent 10 --port 8090 "
        "[--shadow http://127.0.0.1:8082 --shadow-percent 5]",
    )
    parser.add_argument("--primary", required=True, help="base URL of the primary server")
    parser.add_argument("--canary", required=True, help="base URL of the canary server")
    parser.add_argument("--canary-percent", type=float, default=10.0, help="0-100")
    parser.add_argument("--salt", default="recforge-canary", help="experiment name")
    parser.add_argument(
        "--primary-version", help="pin the primary: answers of another model version are errors"
    )
    parser.add_argument(
        "--canary-version", help="pin the canary: answers of another model version are errors"
    )
    parser.add_argument("--shadow", help="base URL of a candidate that gets mirrored requests, never users")
    parser.add_argument(
        "--shadow-percent", type=float, default=10.0, help="0-100 of primary requests mirrored"
    )
    parser.add_argument(
        "--retry-budget-s",
        type=float,
        default=RetryPolicy().budget_s,
        help="seconds a primary request is retried after a transport error or 502/503/504",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    args = parser.parse_args(argv)
    if not 0.0 <= args.canary_percent <= 100.0:
        parser.exit(2, f"error: --canary-percent: expected 0-100, got {args.canary_percent}\n")
    versions = {PRIMARY: args.primary_version, CANARY: args.canary_version}
    try:
        router = CanaryRouter(
            args.primary,
            args.canary,
            canary_weight=args.canary_percent / 100.0,
            salt=args.salt,
            versions={arm: v for arm, v in versions.items() if v is not None},
            retry=RetryPolicy(budget_s=args.retry_budget_s),
            shadow=None if args.shadow is None else ShadowConfig(args.shadow, args.shadow_percent),
        )
    except ValueError as error:
        parser.exit(2, f"error: {error}\n")
    uvicorn.run(create_app(router), host=args.host, port=args.port, log_level="warning")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
