"""A canary's per-arm statistics from Prometheus, over the series ``serving.prometheus_metrics``
exports; arms are told apart by ``model_version``.

One instant query per family, grouped by version, over a window ``[W s]``:

- requests by status: ``sum by (model_version, status) (increase(recforge_requests_total{…}[W]))``
- outcomes by kind:   ``sum by (model_version, kind) (increase(recforge_outcomes_total{…}[W]))``
- p50 / p99 latency:  ``histogram_quantile(q, sum by (model_version, le)
  (increase(recforge_request_duration_seconds_bucket{…}[W])))``

``increase`` extrapolates to the window's edges, so counts are rounded and may exceed the exact
count by about one scrape interval's worth. Prometheus cannot count distinct users: ``users`` is
0 in these statistics (the user-level analysis needs the event log).
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

import httpx

from serving.metrics import ArmStats
from serving.prometheus_metrics import OUTCOMES, STATUSES


class PrometheusError(RuntimeError):
    """Prometheus could not answer, or has no series for an arm; the message says which."""


@dataclass(frozen=True)
class PrometheusSource:
    url: str
    selector: str = ""  # extra label matchers, e.g. 'namespace="recforge"'
    timeout_s: float = 10.0

    def queries(self, model_name: str, window_s: int) -> dict[str, str]:
        matchers = f'model_name="{model_name}"' + (f",{self.selector}" if self.selector else "")

        def increase(series: str) -> str:
            return f"increase({series}{{{matchers}}}[{int(window_s)}s])"

        latency = f"sum by (model_version, le) ({increase('recforge_request_duration_seconds_bucket')})"
        return {
            "requests": f"sum by (model_version, status) ({increase('recforge_requests_total')})",
            "outcomes": f"sum by (model_version, kind) ({increase('recforge_outcomes_total')})",
            "p50": f"histogram_quantile(0.5, {latency})",
            "p99": f"histogram_quantile(0.99, {latency})",
        }

    def arm_stats(self, model_name: str, versions: dict[str, str], window_s: int) -> dict[str, ArmStats]:
        """``{arm: ArmStats}`` for ``versions`` = ``{arm: model_version}`` over the last ``window_s``."""
        queries = self.queries(model_name, window_s)
        requests = self._by_version(queries["requests"], "status")
        outcomes = self._by_version(queries["outcomes"], "kind")
        p50 = self._by_version(queries["p50"], None)
        p99 = self._by_version(queries["p99"], None)
        stats = {}
        for arm, version in versions.items():
            if version not in requests:
                raise PrometheusError(
                    f"no recforge_requests_total series for model {model_name!r} version {version!r} "
                    f"at {self.url}: is Prometheus scraping the {arm} arm's predictor pods (PodMonitor)?"
                )
            counts = {status: _count(requests[version].get(status)) for status in STATUSES}
            business = {kind: _count(outcomes.get(version, {}).get(kind)) for kind in OUTCOMES}
            stats[arm] = ArmStats(
                requests=sum(counts.values()),
                errors=counts["error"],
                rejected=counts["rejected"],
                p50_ms=_milliseconds(p50.get(version, {}).get(None)),
                p99_ms=_milliseconds(p99.get(version, {}).get(None)),
                impressions=business["impressions"],
                clicks=business["clicks"],
                conversions=business["conversions"],
                users=0,
            )
        return stats

    def _by_version(self, query: str, label: str | None) -> dict[str, dict[str | None, float]]:
        grouped: dict[str, dict[str | None, float]] = defaultdict(dict)
        for sample in self._query(query):
            metric = sample["metric"]
            grouped[metric.get("model_version", "")][metric.get(label) if label else None] = float(
                sample["value"][1]
            )
        return grouped

    def _query(self, query: str) -> list[dict]:
        try:
            reply = httpx.get(
                f"{self.url.rstrip('/')}/api/v1/query", params={"query": query}, timeout=self.timeout_s
            )
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


def _count(value: float | None) -> int:
    return 0 if value is None or math.isnan(value) else round(value)


def _milliseconds(seconds: float | None) -> float | None:
    return None if seconds is None or math.isnan(seconds) else seconds * 1000.0
