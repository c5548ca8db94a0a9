"""The canary rule: promote or roll back a candidate model from the two arms' statistics.

Rule (applied to the canary arm against the primary arm, users split sticky by the router):

1. **Guardrails** — roll back if any breaks:
   - each arm served at least ``min_requests_per_arm`` requests (else there is no evidence);
   - canary error rate ``errors / requests`` ≤ ``max_error_rate``;
   - canary p99 latency ≤ ``max_p99_ms``.
2. **CTR** (clicks / impressions) — roll back if the canary is significantly worse: a one-sided
   two-proportion z-test of H0 ``CTR_c ≥ m · CTR_p`` against H1 ``CTR_c < m · CTR_p`` with
   ``m = min_relative_ctr`` (1.0: any significant drop counts; 0.95: a drop of up to 5 % is
   tolerated) rejects H0 at level ``alpha``. ``z = (CTR_c − m·CTR_p) / se`` with the unpooled
   standard error ``se² = CTR_c(1−CTR_c)/I_c + m²·CTR_p(1−CTR_p)/I_p``; p-value ``Φ(z)``.
3. **CVR** (conversions / clicks) — the same test with ``m = min_relative_cvr`` and clicks as the
   sample sizes.
4. Otherwise **promote**: guardrails hold and neither CTR nor CVR is significantly worse.

The test counts impressions (clicks) as independent trials. Users see several impressions, so this
understates the variance; a user-level (delta-method) and sequential analysis replaces it later.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

from serving.metrics import ArmStats

Decision = Literal["promote", "rollback"]


def _require(condition: bool, name: str, message: str) -> None:
    if not condition:
        raise ValueError(f"canary.{name}: {message}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class CanaryConfig:
    """One local canary: traffic, the simulated users' slates, guardrails and the test."""

    canary_percent: int = 50
    num_requests: int = 2000
    candidates_per_request: int = 50
    slate_size: int = 10
    max_error_rate: float = 0.01
    max_p99_ms: float = 250.0
    alpha: float = 0.05
    min_relative_ctr: float = 1.0
    min_relative_cvr: float = 1.0
    min_requests_per_arm: int = 50
    # Requests in flight at once. The driver is a closed loop: on this 2-core box the servers are
    # CPU-bound, so more concurrency only queues (p50 42 / 70 / 130 ms at 2 / 4 / 8 with Feast).
    concurrency: int = 2
    seed: int = 0
    salt: str = "recforge-canary"
    server_start_timeout_s: float = 180.0

    def __post_init__(self) -> None:
        _require(
            _is_int(self.canary_percent) and 1 <= self.canary_percent <= 99,
            "canary_percent",
            f"expected an integer 1-99 (share of users on the canary), got {self.canary_percent!r}",
        )
        for name in ("num_requests", "candidates_per_request", "slate_size", "concurrency"):
            value = getattr(self, name)
            _require(_is_int(value) and value >= 1, name, f"expected an integer >= 1, got {value!r}")
        _require(
            self.candidates_per_request <= 500,
            "candidates_per_request",
            f"at most 500 (the server's max_items), got {self.candidates_per_request}",
        )
        _require(
            self.slate_size <= self.candidates_per_request,
            "slate_size",
            f"must be <= candidates_per_request ({self.candidates_per_request}), got {self.slate_size}",
        )
        _require(
            _is_int(self.min_requests_per_arm) and self.min_requests_per_arm >= 0,
            "min_requests_per_arm",
            f"expected an integer >= 0, got {self.min_requests_per_arm!r}",
        )
        _require(
            _is_number(self.max_error_rate) and 0.0 <= self.max_error_rate <= 1.0,
            "max_error_rate",
            f"expected a fraction in [0, 1], got {self.max_error_rate!r}",
        )
        for name in ("max_p99_ms", "server_start_timeout_s"):
            value = getattr(self, name)
            _require(_is_number(value) and value > 0, name, f"expected a number > 0, got {value!r}")
        _require(
            _is_number(self.alpha) and 0.0 < self.alpha < 0.5,
            "alpha",
            f"expected a significance level in (0, 0.5), e.g. 0.05; got {self.alpha!r}",
        )
        for name in ("min_relative_ctr", "min_relative_cvr"):
            value = getattr(self, name)
            _require(
                _is_number(value) and 0.0 < value <= 1.0,
                name,
                f"expected a ratio in (0, 1] (1.0 = no tolerated drop), got {value!r}",
            )
        _require(
            _is_int(self.seed) and self.seed >= 0, "seed", f"expected an integer >= 0, got {self.seed!r}"
        )
        _require(
            isinstance(self.salt, str) and bool(self.salt),
            "salt",
            "expected a non-empty experiment name",
        )

    @property
    def canary_weight(self) -> float:
        return self.canary_percent / 100.0

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class CanaryDecision:
    """``promote`` or ``rollback``, why, and the numbers behind it (JSON-able)."""

    decision: Decision
    reasons: tuple[str, ...]
    evidence: dict

    def to_dict(self) -> dict:
        return {"decision": self.decision, "reasons": list(self.reasons), "evidence": self.evidence}


def decide(arm_stats: dict[str, ArmStats], config: CanaryConfig) -> CanaryDecision:
    """Apply the module's rule to the ``primary`` and ``canary`` arms."""
    for arm in ("primary", "canary"):
        if arm not in arm_stats:
            raise ValueError(f"arm_stats: missing arm {arm!r}; got {sorted(arm_stats)}")
    primary, canary = arm_stats["primary"], arm_stats["canary"]
    guardrails = _guardrails(primary, canary, config)
    ctr = _not_worse_test(
        canary.clicks,
        canary.impressions,
        primary.clicks,
        primary.impressions,
        config.min_relative_ctr,
        config.alpha,
    )
    cvr = _not_worse_test(
        canary.conversions,
        canary.clicks,
        primary.conversions,
        primary.clicks,
        config.min_relative_cvr,
        config.alpha,
    )
    reasons = [f"guardrail {name} broken" for name, check in guardrails.items() if not check["ok"]]
    if ctr["significantly_worse"]:
        reasons.append(f"canary CTR significantly worse (p={ctr['p_value']:.4g} < {config.alpha})")
    if cvr["significantly_worse"]:
        reasons.append(f"canary CVR significantly worse (p={cvr['p_value']:.4g} < {config.alpha})")
    decision: Decision = "rollback" if reasons else "promote"
    if not reasons:
        reasons.append("guardrails hold; CTR and CVR not significantly worse")
    evidence = {"guardrails": guardrails, "ctr": ctr, "cvr": cvr, "alpha": config.alpha}
    return CanaryDecision(decision, tuple(reasons), evidence)


def _guardrails(primary: ArmStats, canary: ArmStats, config: CanaryConfig) -> dict[str, dict]:
    fewest = min(primary.requests, canary.requests)
    return {
        "min_requests_per_arm": {
            "value": fewest,
            "limit": config.min_requests_per_arm,
            "ok": fewest >= config.min_requests_per_arm,
        },
        "error_rate": {
            "value": canary.error_rate,
            "limit": config.max_error_rate,
            "ok": canary.error_rate <= config.max_error_rate,
        },
        "p99_ms": {
            "value": canary.p99_ms,
            "limit": config.max_p99_ms,
            "ok": canary.p99_ms is not None and canary.p99_ms <= config.max_p99_ms,
        },
    }


def _not_worse_test(
    successes_c: int, trials_c: int, successes_p: int, trials_p: int, margin: float, alpha: float
) -> dict[str, Any]:
    """One-sided z-test of H0: rate_c >= margin * rate_p (see the module docstring)."""
    rate_c = successes_c / trials_c if trials_c else 0.0
    rate_p = successes_p / trials_p if trials_p else 0.0
    result: dict[str, Any] = {
        "primary": rate_p,
        "canary": rate_c,
        "relative": rate_c / rate_p if rate_p else None,
        "margin": margin,
        "n_primary": trials_p,
        "n_canary": trials_c,
        "z": None,
        "p_value": 1.0,
        "significantly_worse": False,
    }
    if not trials_c or not trials_p:
        return result
    difference = rate_c - margin * rate_p
    variance = rate_c * (1 - rate_c) / trials_c + margin**2 * rate_p * (1 - rate_p) / trials_p
    if variance > 0:
        z = difference / math.sqrt(variance)
        p_value = 0.5 * math.erfc(-z / math.sqrt(2.0))
        result["z"] = z
    else:
        p_value = 0.0 if difference < 0 else 1.0
    result["p_value"] = p_value
    result["significantly_worse"] = p_value < alpha
    return result
