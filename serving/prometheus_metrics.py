"""Per-model-version request, error, latency, outcome and user-moment counters on KServe's ``/metrics``.

KServe's own series time each step but count neither requests by outcome nor what users did
with the answers. These are the series the rollout controller reads (``serving.prometheus_source``),
one set per model version, so a canary's two revisions are told apart by ``model_version``:

- ``recforge_requests_total{model_name, model_version, status}``, status ``ok | error | rejected``
  (rejected: the caller's 4xx; error: the server's fault);
- ``recforge_request_duration_seconds{model_name, model_version}``, buckets fine around the
  canary's p99 guardrail (250 ms by default);
- ``recforge_outcomes_total{model_name, model_version, kind}``, kind ``impressions | clicks |
  conversions``, counted from ``POST /v1/models/<name>/outcomes`` with the ``model_version`` the
  ranked list carried;
- ``recforge_user_moments_total{model_name, model_version, statistic}``: the per-user sufficient
  statistics of the user-level analysis (``serving.analysis.STATISTICS``: users, Σ impressions,
  clicks, conversions and Σ of their per-user products), since this process started, kept exact
  from per-user running totals (:class:`serving.analysis.running.RunningUserMoments`);
- ``recforge_user_moments_untracked_total{model_name, model_version, reason}``: outcome reports
  left out of those statistics — ``no_user_id`` (the report named no user) or ``capacity`` (a new
  user after ``max_tracked_users`` users were tracked, 100,000 by default, about 15-20 MB);
- ``recforge_user_moments_start_time_seconds{model_name, model_version}``: when this process's
  per-user state began. The statistics are cumulative; a restart starts them again from 0 with a
  new start time, which is how the controller tells a reset from a quiet arm.

Every label value exists from the start at 0, so ``increase()`` over an early window is 0, not
an empty result — and an increment is never lost in a series' first sample. That is also why a
server counts outcomes only for the version it serves: a series born at its first report would
hide that report from ``increase()``. An outcome for another version is refused (HTTP 409) naming
the version this server has; send it to the revision that served the list.

**A user must be served by one process.** The per-user totals live in this process: a user whose
reports reach two replicas (or two KServe workers) is two "users" in the summed statistics, which
keeps every ratio estimate right but understates its variance (the pieces of one user are
correlated). Nothing in the chart makes KServe sticky — Knative balances requests, not users, over
a revision's replicas — so the rollout controller reports each version's replica count and will
only step or promote while each arm runs one replica (``minReplicas = maxReplicas = 1`` during
the canary). KServe's canary split is per request as well, so a user's lists come from both
revisions: the controller therefore checks the split on requests, not users (see
``serving.controller``).
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Iterator
from typing import Any

import orjson
from fastapi import Request
from fastapi.responses import JSONResponse
from prometheus_client import Counter, Gauge, Histogram

from serving.analysis import STATISTICS
from serving.analysis.running import DEFAULT_MAX_USERS, RunningUserMoments

STATUSES = ("ok", "error", "rejected")
OUTCOMES = ("impressions", "clicks", "conversions")
UNTRACKED_REASONS = ("no_user_id", "capacity")
LATENCY_BUCKETS_S = (
    0.005,
    0.01,
    0.015,
    0.02,
    0.025,
    0.03,
    0.04,
    0.05,
    0.075,
    0.1,
    0.125,
    0.15,
    0.175,
    0.2,
    0.225,
    0.25,
    0.3,
    0.4,
    0.5,
    0.75,
    1.0,
    2.0,
    5.0,
)
_VERSION = re.compile(r"^[A-Za-z0-9][-A-Za-z0-9_.]{0,62}$")
_MAX_USER_ID_CHARS = 256

REQUESTS = Counter(
    "recforge_requests", "Ranking requests by outcome", ("model_name", "model_version", "status")
)
LATENCY = Histogram(
    "recforge_request_duration_seconds",
    "Ranking request latency (parse, score, answer)",
    ("model_name", "model_version"),
    buckets=LATENCY_BUCKETS_S,
)
OUTCOME_COUNTS = Counter(
    "recforge_outcomes", "What users did with ranked lists", ("model_name", "model_version", "kind")
)
USER_MOMENTS = Counter(
    "recforge_user_moments",
    "Per-user sufficient statistics of the outcomes since the process started",
    ("model_name", "model_version", "statistic"),
)
UNTRACKED = Counter(
    "recforge_user_moments_untracked",
    "Outcome reports left out of the per-user statistics",
    ("model_name", "model_version", "reason"),
)
STATE_START = Gauge(
    "recforge_user_moments_start_time_seconds",
    "Unix time at which this process's per-user statistics began",
    ("model_name", "model_version"),
)

_by_model: dict[str, PredictorMetrics] = {}
# One per-user state per (model name, version) and process: counters cannot go back, so a second
# PredictorMetrics for the same version (a reload) continues the same state.
_user_states: dict[tuple[str, str], RunningUserMoments] = {}


class OutcomeError(ValueError):
    """A malformed outcome report; the message names the field."""


class OtherVersion(OutcomeError):
    """An outcome for a model version this server does not serve."""


class PredictorMetrics:
    """The series of one served model version (create after the artifact is loaded)."""

    def __init__(
        self, model_name: str, model_version: str, *, max_tracked_users: int = DEFAULT_MAX_USERS
    ) -> None:
        self.model_name = model_name
        self.model_version = model_version
        labels = (model_name, model_version)
        self._requests = {s: REQUESTS.labels(*labels, s) for s in STATUSES}
        self._latency = LATENCY.labels(*labels)
        self._outcomes = {kind: OUTCOME_COUNTS.labels(*labels, kind) for kind in OUTCOMES}
        self._moments = {name: USER_MOMENTS.labels(*labels, name) for name in STATISTICS}
        self._untracked = {reason: UNTRACKED.labels(*labels, reason) for reason in UNTRACKED_REASONS}
        if labels not in _user_states:
            _user_states[labels] = RunningUserMoments(max_tracked_users)
            STATE_START.labels(*labels).set(time.time())
        self.users = _user_states[labels]
        _by_model[model_name] = self

    @contextlib.contextmanager
    def request(self) -> Iterator[None]:
        """Count and time one request; an ``InvalidInput`` (HTTP 400) is ``rejected``."""
        from serving._kserve import InvalidInput

        start = time.perf_counter()
        status = "error"
        try:
            yield
            status = "ok"
        except InvalidInput:
            status = "rejected"
            raise
        finally:
            self._latency.observe(time.perf_counter() - start)
            self._requests[status].inc()

    def record_outcome(self, report: Any) -> None:
        """Add one user's reaction to a ranked list: ``{"model_version", "user_id", "impressions",
        "clicks", "conversions"}``. ``user_id`` (an integer or a string; not a label) keys the
        per-user totals; a report without one counts in the totals but not in the user moments."""
        if not isinstance(report, dict):
            raise OutcomeError(
                'body: expected {"model_version": str, "impressions": int, "clicks": int, "conversions": int}'
            )
        version = report.get("model_version", self.model_version)
        if not isinstance(version, str) or not _VERSION.match(version):
            raise OutcomeError(f"model_version: expected the version a prediction carried, got {version!r}")
        counts = {kind: report.get(kind, 0) for kind in OUTCOMES}
        for kind, value in counts.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise OutcomeError(f"{kind}: expected an integer >= 0, got {value!r}")
        if not counts["conversions"] <= counts["clicks"] <= counts["impressions"]:
            raise OutcomeError(
                "outcome: need conversions <= clicks <= impressions, got "
                + ", ".join(f"{k}={v}" for k, v in counts.items())
            )
        user = report.get("user_id")
        if user is not None and not _is_user_id(user):
            raise OutcomeError(
                f"user_id: expected an integer or a string of 1-{_MAX_USER_ID_CHARS} characters, got {user!r}"
            )
        if version != self.model_version:
            raise OtherVersion(
                f"model_version: this server serves {self.model_version!r}, not {version!r}; report "
                "outcomes to the revision that ranked the list"
            )
        for kind, value in counts.items():
            self._outcomes[kind].inc(value)
        if user is None:
            self._untracked["no_user_id"].inc()
            return
        increments = self.users.add(user, [counts[kind] for kind in OUTCOMES])
        if increments is None:
            self._untracked["capacity"].inc()
            return
        for name, value in increments.items():
            if value:
                self._moments[name].inc(value)


def _is_user_id(value: Any) -> bool:
    if isinstance(value, str):
        return 1 <= len(value) <= _MAX_USER_ID_CHARS
    return isinstance(value, int) and not isinstance(value, bool)


def install_outcome_route() -> None:
    """``POST /v1/models/{name}/outcomes`` on KServe's app (once per process)."""
    from kserve.model_server import app

    path = "/v1/models/{model_name}/outcomes"
    if any(getattr(route, "path", None) == path for route in app.router.routes):
        return

    async def outcomes(model_name: str, request: Request) -> JSONResponse:
        metrics = _by_model.get(model_name)
        if metrics is None:
            return JSONResponse({"error": f"model {model_name!r} is not served here"}, status_code=404)
        try:
            metrics.record_outcome(orjson.loads(await request.body()))
        except OtherVersion as error:
            return JSONResponse({"error": str(error)}, status_code=409)
        except ValueError as error:  # OutcomeError, or a body that is not JSON
            return JSONResponse({"error": str(error)}, status_code=400)
        return JSONResponse({"recorded": True})

    app.add_api_route(path, outcomes, methods=["POST"])
