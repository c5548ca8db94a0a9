"""The local canary's rule: the user-level sequential analysis of :mod:`serving.analysis`.

:func:`assess` at every look and :func:`conclude` at the end run the same analysis the cluster's
rollout controller runs (:func:`serving.analysis.evaluate`), on the arms' per-user outcomes:
guardrails (error rate, invalid answers, p99), a sequential sample-ratio check on users (the
local router is sticky per user), and anytime-valid confidence sequences for the relative CTR and
CVR differences with user-level (delta-method) variance, so it may be looked at after every batch
of traffic:

- **rollback** at the first look where a guardrail breaks, the split of users does not match
  ``canary_percent``, or CTR (CVR) is significantly lower than ``min_relative_ctr``
  (``min_relative_cvr``) times the primary's;
- at the end of the budget, **rollback** if an arm has fewer than ``min_requests_per_arm``
  requests (no evidence), else **promote**: the candidate was not shown to be worse.

The fixed-horizon test on totals that counted impressions as independent trials is gone: it is
valid for one look only and understates the variance when users see several impressions
(``recforge bench canary`` measures both; ``serving.analysis.fixed_horizon`` keeps it as the
benchmark's baseline).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Literal

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
from serving.analysis._checks import is_int, is_number
from serving.analysis.sequential import require_planned_effect
from serving.metrics import ArmStats

Decision = Literal["promote", "rollback"]


def _require(condition: bool, name: str, message: str) -> None:
    if not condition:
        raise ValueError(f"canary.{name}: {message}")


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
    # set: the two-point mixture at +-planned_effect (relative) instead (see serving.analysis.sequential)
    planned_effect: float | None = None
    max_invalid_rate: float = 0.01
    srm_alpha: float = 0.001

    def __post_init__(self) -> None:
        _require(
            is_int(self.canary_percent) and 1 <= self.canary_percent <= 99,
            "canary_percent",
            f"expected an integer 1-99 (share of users on the canary), got {self.canary_percent!r}",
        )
        for name in (
            "num_requests",
            "candidates_per_request",
            "slate_size",
            "concurrency",
            "look_every_requests",
        ):
            value = getattr(self, name)
            _require(is_int(value) and value >= 1, name, f"expected an integer >= 1, got {value!r}")
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
            is_int(self.min_requests_per_arm) and self.min_requests_per_arm >= 0,
            "min_requests_per_arm",
            f"expected an integer >= 0, got {self.min_requests_per_arm!r}",
        )
        for name in ("max_error_rate", "max_invalid_rate"):
            value = getattr(self, name)
            fraction = is_number(value) and 0.0 <= value <= 1.0
            _require(fraction, name, f"expected a fraction in [0, 1], got {value!r}")
        _require(
            is_int(self.planned_users) and self.planned_users >= 2,
            "planned_users",
            f"expected an integer >= 2 (users of both arms), got {self.planned_users!r}",
        )
        require_planned_effect("canary.planned_effect", self.planned_effect)
        _require(
            is_number(self.srm_alpha) and 0.0 < self.srm_alpha < 1.0,
            "srm_alpha",
            f"expected a level in (0, 1), e.g. 0.001; got {self.srm_alpha!r}",
        )
        for name in ("max_p99_ms", "server_start_timeout_s"):
            value = getattr(self, name)
            _require(is_number(value) and value > 0, name, f"expected a number > 0, got {value!r}")
        _require(
            is_number(self.alpha) and 0.0 < self.alpha < 0.5,
            "alpha",
            f"expected a significance level in (0, 0.5), e.g. 0.05; got {self.alpha!r}",
        )
        for name in ("min_relative_ctr", "min_relative_cvr"):
            value = getattr(self, name)
            _require(
                is_number(value) and 0.0 < value <= 1.0,
                name,
                f"expected a ratio in (0, 1] (1.0 = no tolerated drop), got {value!r}",
            )
        _require(
            is_int(self.seed) and self.seed >= 0, "seed", f"expected an integer >= 0, got {self.seed!r}"
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
            planned_effect=self.planned_effect,
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


def arm_window(stats: ArmStats, invalid: int = 0) -> ArmWindow:
    """An arm's counters as the analysis reads them: per-user moments and serving counters."""
    serving = ServingCounters(stats.requests, stats.errors, invalid, stats.p99_ms)
    return ArmWindow(UserMoments.from_per_user(stats.per_user), serving)


def assess(arm_stats: dict[str, ArmStats], config: CanaryConfig, invalid: int = 0) -> RolloutDecision:
    """One look of the sequential analysis at the arms' counters so far (``rollback`` when the
    canary must stop now). ``invalid``: the canary's answers that were empty or malformed."""
    primary, canary = _arms(arm_stats)
    return evaluate(config.policy, RolloutState(), arm_window(primary), arm_window(canary, invalid), 0.0)


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
