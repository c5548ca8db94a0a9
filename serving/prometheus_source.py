"""A canary's two arms read back from Prometheus, over the series ``serving.prometheus_metrics``
exports; arms are told apart by ``model_version``.

What the analysis needs, and how each piece is read (instant queries, summed over a version's
replicas):

- **user moments** — ``sum by (model_version, statistic) (recforge_user_moments_total{…})``: the
  cumulative values since each replica's per-user state began, not an ``increase()`` window (the
  sequential test is cumulative, and squares of per-user totals cannot be windowed). They become
  the same :class:`serving.analysis.UserMoments` the local canary builds from per-user rows.
- **requests by status over the current step** — ``sum by (model_version, status)
  (recforge_requests_total{…})`` now minus the same query at the step's start (exact counts; no
  extrapolation).
- **p50 / p99 over the step** — ``histogram_quantile(q, sum by (model_version, le)
  (increase(recforge_request_duration_seconds_bucket{…}[W])))``, a guardrail only.
- **untracked outcome reports** and **replicas** — ``recforge_user_moments_untracked_total`` and
  ``recforge_user_moments_start_time_seconds`` (one series per replica: its state's start), now
  and over the analysis window (``changes() + 1`` per series: a replica's lifetimes), so a replica
  that restarted or vanished shows up as a reset instead of being silently mixed into the sums.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

import httpx

from serving.analysis import STATISTICS, ServingCounters, UserMoments
from serving.prometheus_metrics import STATUSES, UNTRACKED_REASONS

START_SERIES = "recforge_user_moments_start_time_seconds"  # one series per replica ("instance")


class PrometheusError(RuntimeError):
    """Prometheus could not answer, or has no series for an arm; the message says which."""


@dataclass(frozen=True)
class ArmReading:
    """One arm (model version) as Prometheus has it.

    ``moments``: since the replicas' per-user state began; ``requests``: by status since the
    step began; ``started_s``: each current replica's state start (Unix seconds);
    ``replicas_seen``: replica lifetimes (a restart counts again) that exported the version since
    the earliest state start of the arms read;
    ``counter_reset``: a request counter went down during the step (a replica restarted).
    """

    version: str
    moments: UserMoments
    requests: dict[str, int]
    p50_ms: float | None
    p99_ms: float | None
    untracked: dict[str, int]
    started_s: tuple[float, ...]
    replicas_seen: int
    counter_reset: bool

    @property
    def serving(self) -> ServingCounters:
        """Guardrail counters; ``invalid`` is 0 because a predictor cannot judge its own answers."""
        return ServingCounters(sum(self.requests.values()), self.requests["error"], 0, self.p99_ms)

    @property
    def replicas(self) -> int:
        return len(self.started_s)

    def to_dict(self) -> dict:
        return {
            "version": self.version,
            "users": self.moments.to_dict(),
            "requests": dict(self.requests),
            "p50_ms": self.p50_ms,
            "p99_ms": self.p99_ms,
            "untracked_reports": dict(self.untracked),
            "replicas": self.replicas,
            "replicas_seen": self.replicas_seen,
            "state_started_s": list(self.started_s),
            "counter_reset": self.counter_reset,
        }


@dataclass(frozen=True)
class PrometheusSource:
    url: str
    selector: str = ""  # extra label matchers, e.g. 'namespace="recforge"'
    timeout_s: float = 10.0

    def _series(self, name: str, model_name: str) -> str:
        return f'{name}{{model_name="{model_name}"' + (f",{self.selector}" if self.selector else "") + "}"

    def read(
        self, model_name: str, versions: dict[str, str], now_s: float, step_started_s: float | None = None
    ) -> dict[str, ArmReading]:
        """``{arm: ArmReading}`` for ``versions`` = ``{arm: model_version}`` at ``now_s``, with
        requests counted since ``step_started_s`` (Unix seconds; None: since :func:`common_start`,
        the moment every arm's state had begun — the canary's start in a rollout)."""

        def series(name: str) -> str:
            return f'{name}{{model_name="{model_name}"' + (f",{self.selector}" if self.selector else "") + "}"

        starts = self._by_version(series(START_SERIES), "instance")
        for arm, version in versions.items():
            if version not in starts:
                raise PrometheusError(
                    f"no {START_SERIES} series for model {model_name!r} version {version!r} at "
                    f"{self.url}: is Prometheus scraping the {arm} arm's predictor pods (PodMonitor)?"
                )
        started = {arm: tuple(sorted(starts[version].values())) for arm, version in versions.items()}
        if step_started_s is None:
            step_started_s = common_start(started)
        earliest = min(min(times) for times in started.values())
        moments = self._by_version(
            f"sum by (model_version, statistic) ({series('recforge_user_moments_total')})", "statistic"
        )
        untracked = self._by_version(
            f"sum by (model_version, reason) ({series('recforge_user_moments_untracked_total')})", "reason"
        )
        requests_query = f"sum by (model_version, status) ({series('recforge_requests_total')})"
        requests_now = self._by_version(requests_query, "status")
        requests_then = self._by_version(requests_query, "status", at_s=step_started_s)
        lookback = _seconds(now_s - earliest)
        seen = self._by_version(
            f"sum by (model_version) (changes({series(START_SERIES)}[{lookback}s]) + 1)", None
        )
        bucket = series("recforge_request_duration_seconds_bucket")
        buckets = f"sum by (model_version, le) (increase({bucket}[{_seconds(now_s - step_started_s)}s]))"
        p50 = self._by_version(f"histogram_quantile(0.5, {buckets})", None)
        p99 = self._by_version(f"histogram_quantile(0.99, {buckets})", None)
        readings = {}
        for arm, version in versions.items():
            now = {s: _count(requests_now.get(version, {}).get(s)) for s in STATUSES}
            then = {s: _count(requests_then.get(version, {}).get(s)) for s in STATUSES}
            reset = any(now[s] < then[s] for s in STATUSES)
            statistics = {name: moments.get(version, {}).get(name, 0.0) for name in STATISTICS}
            readings[arm] = ArmReading(
                version=version,
                moments=UserMoments.from_statistics(statistics),
                requests=now if reset else {s: now[s] - then[s] for s in STATUSES},
                p50_ms=_milliseconds(p50.get(version, {}).get(None)),
                p99_ms=_milliseconds(p99.get(version, {}).get(None)),
                untracked={r: _count(untracked.get(version, {}).get(r)) for r in UNTRACKED_REASONS},
                started_s=started[arm],
                replicas_seen=_count(seen.get(version, {}).get(None)),
                counter_reset=reset,
            )
        return readings

    def _by_version(
        self, query: str, label: str | None, *, at_s: float | None = None
    ) -> dict[str, dict[str | None, float]]:
        grouped: dict[str, dict[str | None, float]] = defaultdict(dict)
        for sample in self._query(query, at_s):
            metric = sample["metric"]
            grouped[metric.get("model_version", "")][metric.get(label) if label else None] = float(
                sample["value"][1]
            )
        return grouped

    def _query(self, query: str, at_s: float | None = None) -> list[dict]:
        params = {"query": query} if at_s is None else {"query": query, "time": f"{at_s:.3f}"}
        try:
            reply = httpx.get(f"{self.url.rstrip('/')}/api/v1/query", params=params, timeout=self.timeout_s)
        except httpx.HTTPError as error:
            raise PrometheusError(f"Prometheus at {self.url} did not answer: {error}") from None
        try:
            body = reply.json()
        except ValueError:
            body = {}
        if reply.status_code != 200 or body.get("status") != "success":
            raise PrometheusError(
                f"Prometheus at {self.url} refused {query!r}: HTTP {reply.status_code} "
                f"{body.get('error', reply.text[:200])}"
            )
        return body["data"]["result"]


def common_start(started: dict[str, tuple[float, ...]]) -> float:
    """When every arm's per-user state had begun: the latest of the arms' first replica starts."""
    return max(min(times) for times in started.values())


def _seconds(value: float) -> int:
    return max(1, math.ceil(value))


def _count(value: float | None) -> int:
    return 0 if value is None or math.isnan(value) else round(value)


def _milliseconds(seconds: float | None) -> float | None:
    return None if seconds is None or math.isnan(seconds) else seconds * 1000.0
