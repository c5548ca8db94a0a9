"""Shadow mode: mirror a share of live requests to a candidate server and compare, never serve.

The router hands a request the primary has answered to :meth:`ShadowMirror.mirror`, which
returns at once: the copy is sent from a background task, so the user's request never waits
for the candidate nor fails because of it. At most ``max_in_flight`` copies are outstanding;
beyond that a copy is dropped (and counted), so a slow candidate cannot pile up work in the
router.

Each answered copy is compared with the primary's answer to the same request:

- **score distributions** per task: the two-sample Kolmogorov-Smirnov statistic ``D`` (the
  largest gap between the empirical CDFs; 0 = same distribution) and the mean shift
  ``mean(candidate) - mean(primary)``, over the last ``max_samples`` scores of each server;
- **rank agreement** per request: the overlap of the two top-``top_k`` lists (1 = same items)
  and Kendall's tau and Spearman's rho between the two rankings of the candidates both
  answers contain (1 = same order);
- **latency**: p50 / p99 of each server.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
from scipy import stats as scipy_stats

from serving.upstream import UpstreamClient, UpstreamError

__all__ = ["RankedAnswer", "ShadowComparison", "ShadowConfig", "ShadowMirror", "read_answer"]


@dataclass(frozen=True)
class ShadowConfig:
    """Where to mirror, how much, and how much comparison to keep."""

    url: str
    percent: float = 10.0
    max_in_flight: int = 8
    timeout_s: float = 2.0
    top_k: int = 10
    max_samples: int = 20_000
    seed: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.url, str) or not self.url.startswith(("http://", "https://")):
            raise ValueError(
                f"shadow.url: expected the candidate's base URL (http://host:port), got {self.url!r}"
            )
        if not _number(self.percent) or not 0.0 <= self.percent <= 100.0:
            raise ValueError(
                f"shadow.percent: expected 0-100 (share of requests mirrored), got {self.percent!r}"
            )
        for name in ("max_in_flight", "top_k", "max_samples"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"shadow.{name}: expected an integer >= 1, got {value!r}")
        if not _number(self.timeout_s) or self.timeout_s <= 0:
            raise ValueError(f"shadow.timeout_s: expected seconds > 0, got {self.timeout_s!r}")


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class RankedAnswer:
    """A ranking server's answer for one request: items in ranked order, their per-task scores."""

    item_ids: np.ndarray
    scores: dict[str, np.ndarray]
    model_version: str | None


def read_answer(content: bytes) -> RankedAnswer | None:
    """The first ranked list of a V1 (``predictions``) or V2 (``outputs``) answer; None when the
    body is not a ranking answer."""
    try:
        payload = orjson.loads(content)
        if "predictions" in payload:
            first = payload["predictions"][0]
            items, scores, version = first["item_ids"], first["scores"], first.get("model_version")
        else:
            outputs = {o["name"]: o["data"] for o in payload["outputs"]}
            items, version = outputs.pop("ranked_item_ids"), payload.get("model_version")
            scores = outputs
        answer = RankedAnswer(
            np.asarray(items, dtype=np.int64),
            {task: np.asarray(values, dtype=np.float64) for task, values in scores.items()},
            version if isinstance(version, str) else None,
        )
    except (orjson.JSONDecodeError, KeyError, IndexError, TypeError, ValueError, AttributeError):
        return None
    if answer.item_ids.ndim != 1 or any(s.shape != answer.item_ids.shape for s in answer.scores.values()):
        return None
    return answer


class ShadowComparison:
    """Running comparison of the candidate's answers with the primary's (bounded memory)."""

    def __init__(self, top_k: int = 10, max_samples: int = 20_000) -> None:
        self.top_k = top_k
        self.compared = 0
        self.invalid = 0
        self._scores: dict[str, tuple[deque, deque]] = {}
        self._max_samples = max_samples
        self._overlap: deque[float] = deque(maxlen=max_samples)
        self._kendall: deque[float] = deque(maxlen=max_samples)
        self._spearman: deque[float] = deque(maxlen=max_samples)
        self._latency_ms = {"primary": deque(maxlen=max_samples), "shadow": deque(maxlen=max_samples)}
        self.versions: dict[str, int] = {}

    def add(self, primary: RankedAnswer, shadow: RankedAnswer, primary_ms: float, shadow_ms: float) -> None:
        """Compare one request's two answers."""
        self.compared += 1
        self._latency_ms["primary"].append(primary_ms)
        self._latency_ms["shadow"].append(shadow_ms)
        version = shadow.model_version or "unknown"
        self.versions[version] = self.versions.get(version, 0) + 1
        for task in primary.scores.keys() & shadow.scores.keys():
            kept = self._scores.setdefault(
                task, (deque(maxlen=self._max_samples), deque(maxlen=self._max_samples))
            )
            kept[0].extend(primary.scores[task].tolist())
            kept[1].extend(shadow.scores[task].tolist())
        k = min(self.top_k, len(primary.item_ids), len(shadow.item_ids))
        if k:
            shared_top = np.intersect1d(primary.item_ids[:k], shadow.item_ids[:k])
            self._overlap.append(len(shared_top) / k)
        primary_rank, shadow_rank = _ranks_of_shared(primary.item_ids, shadow.item_ids)
        if len(primary_rank) >= 2:
            self._kendall.append(float(scipy_stats.kendalltau(primary_rank, shadow_rank).statistic))
            self._spearman.append(float(scipy_stats.spearmanr(primary_rank, shadow_rank).statistic))

    def record_invalid(self) -> None:
        """A candidate answer that was not a ranking answer."""
        self.invalid += 1

    def summary(self) -> dict[str, Any]:
        """JSON-able: score distributions per task, rank agreement, latency per server."""
        scores = {}
        for task, (primary, shadow) in sorted(self._scores.items()):
            p, s = np.asarray(primary), np.asarray(shadow)
            ks = scipy_stats.ks_2samp(p, s)
            scores[task] = {
                "ks_statistic": float(ks.statistic),
                "ks_p_value": float(ks.pvalue),
                "mean_primary": float(p.mean()),
                "mean_shadow": float(s.mean()),
                "mean_shift": float(s.mean() - p.mean()),
                "samples": len(p),
            }
        return {
            "compared": self.compared,
            "invalid": self.invalid,
            "versions": dict(self.versions),
            "scores": scores,
            "rank": {
                "top_k": self.top_k,
                "top_k_overlap": _mean(self._overlap),
                "kendall_tau": _mean(self._kendall),
                "spearman_rho": _mean(self._spearman),
            },
            "latency_ms": {
                server: {"p50": _percentile(values, 50), "p99": _percentile(values, 99)}
                for server, values in self._latency_ms.items()
            },
        }


def _ranks_of_shared(primary: np.ndarray, shadow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions in each list of the items both lists contain (in the primary's order)."""
    _, in_primary, in_shadow = np.intersect1d(primary, shadow, assume_unique=True, return_indices=True)
    order = np.argsort(in_primary)
    return in_primary[order], in_shadow[order]


def _mean(values: deque) -> float | None:
    values = [v for v in values if not math.isnan(v)]
    return float(np.mean(values)) if values else None


def _percentile(values: deque, q: float) -> float | None:
    return float(np.percentile(np.asarray(values), q)) if values else None


class ShadowMirror:
    """Sends copies of requests to the candidate from background tasks and compares answers.

    ``on_status`` is told ``sent | ok | error | dropped`` for each copy (the router's metrics).
    """

    def __init__(self, config: ShadowConfig, on_status: Callable[[str], None] = lambda _: None) -> None:
        self.config = config
        self.url = config.url.rstrip("/")
        self.comparison = ShadowComparison(config.top_k, config.max_samples)
        self.counts = {"sent": 0, "ok": 0, "error": 0, "dropped": 0}
        self._on_status = on_status
        self._random = random.Random(config.seed)
        self._tasks: set[asyncio.Task] = set()
        self._upstream = UpstreamClient(timeout_s=config.timeout_s, max_connections=config.max_in_flight)

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    def mirror(self, path: str, content: bytes, content_type: str, primary: bytes, primary_ms: float) -> bool:
        """Maybe send a copy of a request the primary answered with ``primary``; returns at once
        (True when a copy was sent). Call from the event loop."""
        if self._random.random() * 100.0 >= self.config.percent:
            return False
        if len(self._tasks) >= self.config.max_in_flight:
            self._count("dropped")
            return False
        self._count("sent")
        task = asyncio.get_running_loop().create_task(
            self._send(path, content, content_type, primary, primary_ms)
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    async def _send(
        self, path: str, content: bytes, content_type: str, primary: bytes, primary_ms: float
    ) -> None:
        start = time.perf_counter()
        try:
            reply = await self._upstream.post(self.url + path, content, content_type)
        except UpstreamError:
            self._count("error")
            return
        shadow_ms = (time.perf_counter() - start) * 1000.0
        if reply.status != 200:
            self._count("error")
            return
        self._count("ok")
        ours, theirs = read_answer(primary), read_answer(reply.content)
        if ours is None or theirs is None:
            self.comparison.record_invalid()
            return
        self.comparison.add(ours, theirs, primary_ms, shadow_ms)

    def _count(self, status: str) -> None:
        self.counts[status] += 1
        self._on_status(status)

    def summary(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "percent": self.config.percent,
            "in_flight": self.in_flight,
            "requests": dict(self.counts),
            **self.comparison.summary(),
        }

    async def drain(self) -> None:
        """Wait for the copies in flight (each is bounded by ``timeout_s``)."""
        if self._tasks:
            await asyncio.wait(set(self._tasks))

    async def aclose(self) -> None:
        await self.drain()
        await self._upstream.aclose()
