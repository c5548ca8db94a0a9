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

Runs in-process (``await router.predict(body)``) or as an HTTP app on loopback
(``python -m serving.router --primary URL --canary URL --canary-percent 10 --port N``).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from serving.assignment import ARMS, CANARY, PRIMARY, assign_arm, assignment_point, check_weight
from serving.metrics import ArmRecorder, ArmStats

__all__ = [
    "ARMS",
    "CANARY",
    "PRIMARY",
    "CanaryRouter",
    "RoutedResponse",
    "assign_arm",
    "assignment_point",
    "create_app",
    "request_user",
]

ARM_HEADER = "x-recforge-arm"
SERVED_BY_HEADER = "x-recforge-served-by"


@dataclass(frozen=True)
class RoutedResponse:
    """What the caller gets: the arm the user is in, who answered, the answer and its time."""

    arm: str
    served_by: str
    status: int
    content: bytes
    latency_ms: float

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def json(self) -> Any:
        return orjson.loads(self.content)


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
    ) -> None:
        if not salt:
            raise ValueError("salt: expected a non-empty experiment name")
        if not timeout_s > 0:
            raise ValueError(f"timeout_s: expected a number of seconds > 0, got {timeout_s!r}")
        self.urls = {PRIMARY: primary_url.rstrip("/"), CANARY: canary_url.rstrip("/")}
        self.salt = salt
        self.model_name = model_name
        self._weight = check_weight(canary_weight)
        self._recorders = {arm: ArmRecorder() for arm in ARMS}
        self._timeout_s = timeout_s
        self._limits = httpx.Limits(max_connections=max_connections)
        self._client: httpx.AsyncClient | None = None

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
        response = await self._attempt(arm, path, content, content_type)
        if response is None and arm == CANARY:
            response = await self._attempt(PRIMARY, path, content, content_type)
        if response is None:
            body = orjson.dumps({"error": f"no arm could answer {path}; see the router's stats"})
            return RoutedResponse(arm, PRIMARY, 502, body, 0.0)
        return RoutedResponse(arm, *response)

    async def _attempt(
        self, arm: str, path: str, content: bytes, content_type: str
    ) -> tuple[str, int, bytes, float] | None:
        recorder = self._recorders[arm]
        start = time.perf_counter()
        try:
            reply = await self._http().post(
                self.urls[arm] + path, content=content, headers={"content-type": content_type}
            )
        except httpx.HTTPError:
            reply = None
        latency_ms = (time.perf_counter() - start) * 1000.0
        if reply is None or reply.status_code >= 500:
            recorder.record_request(latency_ms, error=True)
            return None
        recorder.record_request(latency_ms)
        if reply.status_code >= 400:
            recorder.record_rejected()
        return arm, reply.status_code, reply.content, latency_ms

    def record_outcome(
        self, user_id: int, impressions: int, clicks: int, conversions: int, arm: str | None = None
    ) -> None:
        """What the user did with the shown slate, counted in their (assigned) arm."""
        arm = self.arm_for(user_id) if arm is None else arm
        if arm not in self._recorders:
            raise ValueError(f"arm: expected one of {list(ARMS)}, got {arm!r}")
        self._recorders[arm].record_outcome(user_id, impressions, clicks, conversions)

    def stats(self) -> dict[str, ArmStats]:
        return {arm: recorder.snapshot() for arm, recorder in self._recorders.items()}

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self._timeout_s, limits=self._limits)
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


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
    """The router as a FastAPI app: KServe's V1/V2 inference paths, ``/outcomes``, ``/stats``."""
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
        }

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
        "--canary http://127.0.0.1:8081 --canary-percent 10 --port 8090",
    )
    parser.add_argument("--primary", required=True, help="base URL of the primary server")
    parser.add_argument("--canary", required=True, help="base URL of the canary server")
    parser.add_argument("--canary-percent", type=float, default=10.0, help="0-100")
    parser.add_argument("--salt", default="recforge-canary", help="experiment name")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    args = parser.parse_args(argv)
    if not 0.0 <= args.canary_percent <= 100.0:
        parser.exit(2, f"error: --canary-percent: expected 0-100, got {args.canary_percent}\n")
    try:
        router = CanaryRouter(
            args.primary, args.canary, canary_weight=args.canary_percent / 100.0, salt=args.salt
        )
    except ValueError as error:
        parser.exit(2, f"error: {error}\n")
    uvicorn.run(create_app(router), host=args.host, port=args.port, log_level="warning")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
