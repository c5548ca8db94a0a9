"""Per-arm serving and business counters of a canary, and their snapshot.

Business outcomes are kept per user (impressions, clicks, conversions), because users — not
impressions — are what the router randomises: an analysis can aggregate them either way.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class ArmStats:
    """One arm's counters at a point in time. Latency percentiles are None before any request."""

    requests: int
    errors: int
    rejected: int
    p50_ms: float | None
    p99_ms: float | None
    impressions: int
    clicks: int
    conversions: int
    users: int
    per_user: np.ndarray = field(
        default_factory=lambda: np.zeros((0, 3), np.int64), compare=False, repr=False
    )

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    @property
    def ctr(self) -> float:
        """Clicks per impression."""
        return self.clicks / self.impressions if self.impressions else 0.0

    @property
    def cvr(self) -> float:
        """Conversions per click (post-click conversion rate)."""
        return self.conversions / self.clicks if self.clicks else 0.0

    def to_dict(self) -> dict:
        return {
            "requests": self.requests,
            "errors": self.errors,
            "rejected": self.rejected,
            "error_rate": self.error_rate,
            "p50_ms": self.p50_ms,
            "p99_ms": self.p99_ms,
            "impressions": self.impressions,
            "clicks": self.clicks,
            "conversions": self.conversions,
            "users": self.users,
            "ctr": self.ctr,
            "cvr": self.cvr,
        }


class ArmRecorder:
    """Accumulates one arm's requests, latencies and per-user outcomes (not thread-safe: one
    event loop owns it)."""

    def __init__(self) -> None:
        self.requests = 0
        self.errors = 0
        self.rejected = 0
        self._latencies_ms: list[float] = []
        self._per_user: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0])

    def record_request(self, latency_ms: float, *, error: bool = False) -> None:
        self.requests += 1
        self.errors += int(error)
        self._latencies_ms.append(float(latency_ms))

    def record_rejected(self) -> None:
        """A request the arm answered 4xx: the caller's mistake, not the arm's."""
        self.rejected += 1

    def record_outcome(self, user_id: int, impressions: int, clicks: int, conversions: int) -> None:
        if not 0 <= conversions <= clicks <= impressions:
            raise ValueError(
                "outcome: need 0 <= conversions <= clicks <= impressions, got "
                f"impressions={impressions}, clicks={clicks}, conversions={conversions}"
            )
        counts = self._per_user[int(user_id)]
        counts[0] += impressions
        counts[1] += clicks
        counts[2] += conversions

    def snapshot(self) -> ArmStats:
        latencies = np.asarray(self._latencies_ms, dtype=np.float64)
        per_user = np.asarray(list(self._per_user.values()), dtype=np.int64).reshape(-1, 3)
        totals = per_user.sum(axis=0)
        return ArmStats(
            requests=self.requests,
            errors=self.errors,
            rejected=self.rejected,
            p50_ms=_percentile(latencies, 50),
            p99_ms=_percentile(latencies, 99),
            impressions=int(totals[0]),
            clicks=int(totals[1]),
            conversions=int(totals[2]),
            users=len(per_user),
            per_user=per_user,
        )


def _percentile(values: np.ndarray, q: float) -> float | None:
    return float(np.percentile(values, q)) if len(values) else None
