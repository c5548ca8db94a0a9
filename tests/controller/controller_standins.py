"""Loopback stand-ins the controller tests talk to through real clients.

- :class:`ApiServerStandIn`: a loopback stand-in for the Kubernetes API server, reached through
  the official ``kubernetes`` client. It serves InferenceServices (GET; PATCH as JSON merge patch
  with ``resourceVersion`` conflicts answered 409, like the API server) and accepts Events.
- :class:`PrometheusQueryStandIn`: answers ``/api/v1/query`` for the controller's query
  families from a table of per-version numbers and per-user rows (the real Prometheus is exercised in
  ``test_controller_prometheus.py``).
"""

from __future__ import annotations

import copy
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import numpy as np

from serving.analysis import UserMoments
from serving.prometheus_source import START_SERIES

ISVC_PATH = re.compile(r"^/apis/serving\.kserve\.io/v1beta1/namespaces/([^/]+)/inferenceservices/([^/]+)$")
EVENTS_PATH = re.compile(r"^/api/v1/namespaces/([^/]+)/events$")


def merge_patch(target, patch):
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


class _Loopback:
    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.owner = self
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}"

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._server.shutdown()
        self._server.server_close()


class _Handler(BaseHTTPRequestHandler):
    def reply(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def body(self) -> dict:
        return json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")

    def log_message(self, *args) -> None:
        pass


def _status(code: int, reason: str, message: str) -> dict:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "reason": reason,
        "code": code,
        "message": message,
    }


class _ApiServerHandler(_Handler):
    def do_GET(self) -> None:
        api = self.server.owner
        match = ISVC_PATH.match(self.path)
        found = match and api.objects.get(match.groups())
        if not found:
            self.reply(
                404, _status(404, "NotFound", f"inferenceservices {self.path.rsplit('/', 1)[-1]!r} not found")
            )
            return
        self.reply(200, found)

    def do_PATCH(self) -> None:
        api = self.server.owner
        match = ISVC_PATH.match(self.path)
        patch = self.body()
        api.patches.append({"content_type": self.headers.get("Content-Type"), "body": patch})
        if not match or match.groups() not in api.objects:
            self.reply(404, _status(404, "NotFound", "inferenceservice not found"))
            return
        if self.headers.get("Content-Type") != "application/merge-patch+json":
            self.reply(415, _status(415, "UnsupportedMediaType", "expected application/merge-patch+json"))
            return
        with api.lock:
            current = api.objects[match.groups()]
            if api.concurrent_writes:
                api.concurrent_writes -= 1
                current = api.bump(match.groups(), {"metadata": {"labels": {"touched-by": "someone-else"}}})
            wanted = patch.get("metadata", {}).get("resourceVersion")
            if wanted and wanted != current["metadata"]["resourceVersion"]:
                self.reply(
                    409,
                    _status(
                        409,
                        "Conflict",
                        "the object has been modified; please apply your "
                        "changes to the latest version and try again",
                    ),
                )
                return
            self.reply(200, api.bump(match.groups(), patch))

    def do_POST(self) -> None:
        api = self.server.owner
        match = EVENTS_PATH.match(self.path)
        if not match:
            self.reply(404, _status(404, "NotFound", self.path))
            return
        event = self.body()
        api.events.append(event)
        self.reply(
            201, {**event, "metadata": {**event.get("metadata", {}), "name": f"event-{len(api.events)}"}}
        )


class ApiServerStandIn(_Loopback):
    """Loopback stand-in for the Kubernetes API server (InferenceServices and Events only)."""

    def __init__(self) -> None:
        super().__init__(_ApiServerHandler)
        self.objects: dict[tuple[str, str], dict] = {}
        self.patches: list[dict] = []
        self.events: list[dict] = []
        self.concurrent_writes = 0  # writes by "someone else" just before our next PATCHes
        self.lock = threading.Lock()

    def put(self, isvc: dict) -> None:
        isvc = copy.deepcopy(isvc)
        isvc["metadata"].setdefault("uid", "uid-1")
        isvc["metadata"]["resourceVersion"] = "1"
        self.objects[(isvc["metadata"]["namespace"], isvc["metadata"]["name"])] = isvc

    def get(self, namespace: str, name: str) -> dict:
        return self.objects[(namespace, name)]

    def bump(self, key: tuple[str, str], patch: dict) -> dict:
        patch = merge_patch(patch, {"metadata": {"resourceVersion": None}})
        updated = merge_patch(self.objects[key], patch)
        updated["metadata"]["resourceVersion"] = str(
            int(self.objects[key]["metadata"]["resourceVersion"]) + 1
        )
        self.objects[key] = updated
        return updated

    def api_client(self):
        from kubernetes import client

        configuration = client.Configuration()
        configuration.host = self.url
        return client.ApiClient(configuration)


class _PrometheusHandler(_Handler):
    def do_GET(self) -> None:
        prometheus = self.server.owner
        params = parse_qs(urlparse(self.path).query)
        query, at = params["query"][0], params.get("time", [None])[0]
        prometheus.queries.append((query, at))
        self.reply(
            200,
            {"status": "success", "data": {"resultType": "vector", "result": prometheus.answer(query, at)}},
        )


def user_rows(rng: np.random.Generator, n: int, ctr: float = 0.05, cvr: float = 0.1) -> np.ndarray:
    """(n, 3) per-user impressions, clicks, conversions; each user has a click propensity."""
    impressions = 1 + rng.poisson(19, n)
    clicks = rng.binomial(impressions, rng.beta(ctr * 20, (1 - ctr) * 20, n))
    return np.stack([impressions, clicks, rng.binomial(clicks, cvr)], axis=1)


class PrometheusQueryStandIn(_Loopback):
    """``/api/v1/query`` answered from ``arms``: version -> a dict of

    ``rows`` (per-user outcomes, exported as user moments), ``ok`` / ``error`` / ``rejected``
    (request counters now), ``at_step_start`` (the same at a query with ``time``; 0 by default),
    ``starts`` (each replica's state start), ``seen`` (replica lifetimes in the analysis window;
    default ``len(starts)``), ``untracked`` ({reason: n}), ``p50_s`` / ``p99_s``.
    """

    def __init__(self) -> None:
        super().__init__(_PrometheusHandler)
        self.arms: dict[str, dict] = {}
        self.queries: list[tuple[str, str | None]] = []

    def answer(self, query: str, at: str | None) -> list[dict]:
        result = []
        for version, arm in self.arms.items():
            if query.startswith("sum by (model_version) (changes("):
                result.append(({"model_version": version}, arm.get("seen", len(arm["starts"]))))
            elif query.startswith(START_SERIES):
                for replica, started in enumerate(arm["starts"]):
                    result.append(({"model_version": version, "instance": f"pod-{replica}"}, started))
            elif "recforge_user_moments_total" in query:
                statistics = UserMoments.from_per_user(arm["rows"]).statistics()
                result += [({"model_version": version, "statistic": k}, v) for k, v in statistics.items()]
            elif "recforge_user_moments_untracked_total" in query:
                for reason in ("no_user_id", "capacity"):
                    result.append(
                        (
                            {"model_version": version, "reason": reason},
                            arm.get("untracked", {}).get(reason, 0),
                        )
                    )
            elif "recforge_requests_total" in query:
                counts = arm.get("at_step_start", {}) if at is not None else arm
                for status in ("ok", "error", "rejected"):
                    result.append(({"model_version": version, "status": status}, counts.get(status, 0)))
            elif query.startswith("histogram_quantile(0.99"):
                result.append(({"model_version": version}, arm.get("p99_s", 0.05)))
            elif query.startswith("histogram_quantile(0.5"):
                result.append(({"model_version": version}, arm.get("p50_s", 0.02)))
        return [{"metric": metric, "value": [0, str(value)]} for metric, value in result]
