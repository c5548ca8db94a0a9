"""The canary router's Prometheus series, served on its ``/metrics``.

KServe's own ``/metrics`` counts neither errors nor what users did. The router sees both arms,
so it exports, per arm (``primary | canary``):

- ``recforge_router_requests_total{arm, status}``: attempts by ``ok | error | rejected``
  (rejected: the caller's 4xx; error: transport failure, 5xx or a wrong model version);
- ``recforge_router_errors_total{arm, reason}``: errors by ``transport | server | version``;
- ``recforge_router_request_duration_seconds{arm}``: attempt latency, buckets fine from 1 ms to
  250 ms (the serving target is p99 <= 10 ms, the canary guardrail 250 ms);
- ``recforge_router_retries_total{arm}``: attempts repeated after a transport error;
- ``recforge_router_outcomes_total{arm, kind}``: impressions, clicks and conversions;
- ``recforge_router_answers_total{status}``: what callers got, ``ok | rejected | failed``;
- ``recforge_router_shadow_total{status}``: mirrored requests ``sent | ok | error | dropped``.

Every label value exists from the start at 0, so ``increase()`` over an early window is 0, not
an empty result. Each router has its own registry: two routers in one process do not clash.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from serving.assignment import ARMS

STATUSES = ("ok", "error", "rejected")
ERROR_REASONS = ("transport", "server", "version")
OUTCOMES = ("impressions", "clicks", "conversions")
ANSWERS = ("ok", "rejected", "failed")
SHADOW_STATUSES = ("sent", "ok", "error", "dropped")
LATENCY_BUCKETS_S = (
    0.001,
    0.002,
    0.003,
    0.004,
    0.005,
    0.006,
    0.007,
    0.008,
    0.009,
    0.01,
    0.0125,
    0.015,
    0.0175,
    0.02,
    0.025,
    0.03,
    0.04,
    0.05,
    0.075,
    0.1,
    0.15,
    0.2,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
)
CONTENT_TYPE = CONTENT_TYPE_LATEST


class RouterMetrics:
    """One router's series in their own registry; every label is created at 0."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        requests = Counter(
            "recforge_router_requests",
            "Attempts per arm by status",
            ("arm", "status"),
            registry=self.registry,
        )
        errors = Counter(
            "recforge_router_errors",
            "Failed attempts per arm by reason",
            ("arm", "reason"),
            registry=self.registry,
        )
        latency = Histogram(
            "recforge_router_request_duration_seconds",
            "Attempt latency per arm",
            ("arm",),
            buckets=LATENCY_BUCKETS_S,
            registry=self.registry,
        )
        retries = Counter(
            "recforge_router_retries",
            "Attempts repeated after a transport error",
            ("arm",),
            registry=self.registry,
        )
        outcomes = Counter(
            "recforge_router_outcomes",
            "What users did with the ranked lists",
            ("arm", "kind"),
            registry=self.registry,
        )
        answers = Counter("recforge_router_answers", "What callers got", ("status",), registry=self.registry)
        shadow = Counter(
            "recforge_router_shadow", "Mirrored requests by status", ("status",), registry=self.registry
        )
        self._requests = {(a, s): requests.labels(a, s) for a in ARMS for s in STATUSES}
        self._errors = {(a, r): errors.labels(a, r) for a in ARMS for r in ERROR_REASONS}
        self._latency = {a: latency.labels(a) for a in ARMS}
        self._retries = {a: retries.labels(a) for a in ARMS}
        self._outcomes = {(a, k): outcomes.labels(a, k) for a in ARMS for k in OUTCOMES}
        self._answers = {s: answers.labels(s) for s in ANSWERS}
        self._shadow = {s: shadow.labels(s) for s in SHADOW_STATUSES}

    def attempt(self, arm: str, latency_s: float, status: str, reason: str | None = None) -> None:
        """One attempt on ``arm``; ``reason`` (one of ERROR_REASONS) when ``status`` is error."""
        self._requests[arm, status].inc()
        self._latency[arm].observe(latency_s)
        if reason is not None:
            self._errors[arm, reason].inc()

    def retry(self, arm: str) -> None:
        self._retries[arm].inc()

    def outcome(self, arm: str, impressions: int, clicks: int, conversions: int) -> None:
        for kind, value in zip(OUTCOMES, (impressions, clicks, conversions), strict=True):
            self._outcomes[arm, kind].inc(value)

    def answer(self, status: int) -> None:
        """What the caller got: 2xx ok, 4xx rejected, anything else failed."""
        self._answers["ok" if 200 <= status < 300 else "rejected" if 400 <= status < 500 else "failed"].inc()

    def shadow(self, status: str) -> None:
        self._shadow[status].inc()

    def exposition(self) -> bytes:
        """The text format Prometheus scrapes."""
        return generate_latest(self.registry)
