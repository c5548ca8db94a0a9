"""The canary rules: promote or roll back a candidate model from the two arms' statistics.

Two rules share the config. **The user-level sequential analysis** (:func:`assess` at every look,
:func:`conclude` at the end; the local canary uses it) runs :mod:`serving.analysis` on the arms'
per-user outcomes: guardrails (error rate, invalid answers, p99), a sequential sample-ratio check,
and anytime-valid confidence sequences for the relative CTR and CVR differences with user-level
(delta-method) variance, so it may be looked at after every batch of traffic:

- **rollback** at the first look where a guardrail breaks, the split of users does not match
  ``canary_percent``, or CTR (CVR) is significantly lower than ``min_relative_ctr``
  (``min_relative_cvr``) times the primary's;
- at the end of the budget, **rollback** if an arm has fewer than ``min_requests_per_arm``
  requests (no evidence), else **promote**: the candidate was not shown to be worse.

**The fixed-horizon rule on totals** (:func:`decide`) is for drivers that only have per-arm totals
(the cluster controller reading Prometheus counters):

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

That test counts impressions (clicks) as independent trials and is valid for one look only;
users see several impressions, so it understates the variance (``recforge bench canary`` shows
by how much).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

from serving.analysis import (
    ArmWindow,
    GuardrailLimits,
    RolloutDecision,
    RolloutPolicy,
    RolloutState,
    ServingCounters,
    UserMoments,
    evaluate,
)
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
    # The sequential analysis: a look every `look_every_requests` requests, its confidence
    # sequences tightest at `planned_users` users (both arms).
    look_every_requests: int = 100
    planned_users: int = 1000
    max_invalid_rate: float = 0.01
    srm_alpha: float = 0.001

    def __post_init__(self) -> None:
        _require(
            _is_int(self.canary_percent) and 1 <= self.canary_percent <= 99,
            "canary_percent",
            f"expected an integer 1-99 (share of users on the canary), got {self.canary_percent!r}",
        )
        for name in (
            "num_requests", "candidates_per_request", "slate_size", "concurrency", "look_every_requests"
        ):
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
        for name in ("max_error_rate", "max_invalid_rate"):
            value = getattr(self, name)
            fraction = _is_number(value) and 0.0 <= value <= 1.0
            _require(fraction, name, f"expected a fraction in [0, 1], got {value!r}")
        _require(
            _is_int(self.planned_users) and self.planned_users >= 2,
            "planned_users",
            f"expected an integer >= 2 (users of both arms), got {self.planned_users!r}",
        )
        _require(
            _is_number(self.srm_alpha) and 0.0 < self.srm_alpha < 1.0,
            "srm_alpha",
            f"expected a level in (0, 1), e.g. 0.001; got {self.srm_alpha!r}",
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

    @property
    def policy(self) -> RolloutPolicy:
        """The sequential analysis of this fixed-weight canary: one step at ``canary_percent``."""
        return RolloutPolicy(
            steps=(self.canary_weight,),
            min_canary_users_per_step=2,
            min_seconds_per_step=0.0,
            max_duration_s=math.inf,
            metrics=(("ctr", 1.0 - self.min_relative_ctr), ("cvr", 1.0 - self.min_relative_cvr)),
            alpha=self.alpha,
            planned_users=self.planned_users,
            srm_alpha=self.srm_alpha,
            guardrails=GuardrailLimits(
                max_error_rate=self.max_error_rate,
                max_invalid_rate=self.max_invalid_rate,
                max_p99_ms=self.max_p99_ms,
                min_requests=max(1, self.min_requests_per_arm),
            ),
        )


@dataclass(frozen=True)
class CanaryDecision:
    """``promote`` or ``rollback``, why, and the numbers behind it (JSON-able)."""

    decision: Decision
    reasons: tuple[str, ...]
    evidence: dict

    def to_dict(self) -> dict:
        return {"decision": self.decision, "reasons": list(self.reasons), "evidence": self.evidence}


def _arms(arm_stats: dict[str, ArmStats]) -> tuple[ArmStats, ArmStats]:
    for arm in ("primary", "canary"):
        if arm not in arm_stats:
            raise ValueError(f"arm_stats: missing arm {arm!r}; got {sorted(arm_stats)}")
    return arm_stats["primary"], arm_stats["canary"]


def _window(stats: ArmStats, invalid: int) -> ArmWindow:
    serving = ServingCounters(stats.requests, stats.errors, invalid, stats.p99_ms)
    return ArmWindow(UserMoments.from_per_user(stats.per_user), serving)


def assess(arm_stats: dict[str, ArmStats], config: CanaryConfig, invalid: int = 0) -> RolloutDecision:
    """One look of the sequential analysis at the arms' counters so far (``rollback`` when the
    canary must stop now). ``invalid``: the canary's answers that were empty or malformed."""
    primary, canary = _arms(arm_stats)
    return evaluate(config.policy, RolloutState(), _window(primary, 0), _window(canary, invalid), 0.0)


def conclude(
    arm_stats: dict[str, ArmStats], last_look: RolloutDecision, config: CanaryConfig
) -> CanaryDecision:
    """The verdict at the end of the budget, from the last look (see the module docstring)."""
    primary, canary = _arms(arm_stats)
    fewest = min(primary.requests, canary.requests)
    evidence = {
        **last_look.evidence,
        "min_requests_per_arm": {"value": fewest, "limit": config.min_requests_per_arm},
    }
    if last_look.action == "rollback":
        return CanaryDecision("rollback", last_look.reasons, evidence)
    if fewest < config.min_requests_per_arm:
        limit = config.min_requests_per_arm
        return CanaryDecision("rollback", (f"too few requests for evidence: {fewest} < {limit}",), evidence)
    summary = "; ".join(
        f"{name.upper()} {_percent(m['estimate'])} [{_percent(low)}, {_percent(high)}]"
        for name, m in evidence["metrics"].items()
        for low, high in [m["interval"]]
    )
    reason = f"not shown worse (relative difference, confidence sequence): {summary}"
    return CanaryDecision("promote", (reason,), evidence)


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.1%}"


def decide(arm_stats: dict[str, ArmStats], config: CanaryConfig) -> CanaryDecision:
    """Apply the fixed-horizon rule on totals to the ``primary`` and ``canary`` arms."""
    primary, canary = _arms(arm_stats)
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
