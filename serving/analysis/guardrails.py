"""Hard serving limits on the canary, checked at every look so that a broken model fails fast.

No statistics here: a canary that errors, is slow or answers empty / invalid slates more often
than the limit is rolled back as soon as it has served ``min_requests`` requests.
"""

from __future__ import annotations

from dataclasses import dataclass

from serving.analysis._checks import is_number, require, require_fraction, require_int, require_positive


@dataclass(frozen=True)
class GuardrailLimits:
    max_error_rate: float = 0.01
    max_invalid_rate: float = 0.01
    max_p99_ms: float = 250.0
    min_requests: int = 20

    def __post_init__(self) -> None:
        require_fraction("max_error_rate", self.max_error_rate)
        require_fraction("max_invalid_rate", self.max_invalid_rate)
        require_positive("max_p99_ms", self.max_p99_ms, "milliseconds")
        require_int("min_requests", self.min_requests, 1)


@dataclass(frozen=True)
class ServingCounters:
    """One arm's serving outcome over the analysed window.

    ``errors``: transport failures, timeouts and 5xx; ``invalid``: 2xx answers with an empty or
    malformed slate; ``p99_ms``: None before the first request.
    """

    requests: int
    errors: int
    invalid: int = 0
    p99_ms: float | None = None

    def __post_init__(self) -> None:
        for name in ("requests", "errors", "invalid"):
            require_int(name, getattr(self, name), 0)
        require(
            self.errors + self.invalid <= self.requests,
            "errors + invalid",
            f"at most requests ({self.requests})",
            self.errors + self.invalid,
        )
        ok = self.p99_ms is None or (is_number(self.p99_ms) and self.p99_ms >= 0)
        require(ok, "p99_ms", "None or milliseconds >= 0", self.p99_ms)


@dataclass(frozen=True)
class GuardrailCheck:
    name: str
    value: float | None
    limit: float
    judged: bool  # enough requests to judge
    ok: bool

    def to_dict(self) -> dict:
        return {"value": self.value, "limit": self.limit, "judged": self.judged, "ok": self.ok}


def check_guardrails(canary: ServingCounters, limits: GuardrailLimits) -> tuple[GuardrailCheck, ...]:
    """Each limit on the canary; a limit is only judged once ``min_requests`` were served."""
    judged = canary.requests >= limits.min_requests
    error_rate = canary.errors / canary.requests if canary.requests else None
    invalid_rate = canary.invalid / canary.requests if canary.requests else None
    checks = (
        ("error_rate", error_rate, limits.max_error_rate),
        ("invalid_rate", invalid_rate, limits.max_invalid_rate),
        ("p99_ms", canary.p99_ms, limits.max_p99_ms),
    )
    results = []
    for name, value, limit in checks:
        judgeable = judged and value is not None
        results.append(GuardrailCheck(name, value, limit, judgeable, not (judgeable and value > limit)))
    return tuple(results)
