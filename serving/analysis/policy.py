"""The stepping policy: raise the canary's weight step by step, decide at every look.

A rollout walks through ``steps`` (canary weights, e.g. 5 → 10 → 25 → 50 %). Each step is
analysed on its own window — the users and requests seen since the step began, which the driver
collects afresh after every ``step``. Within a step the weight is constant, so the split is a clean
randomisation: no user changes arm inside the window, a time trend cannot bias the comparison as the
allocation changes (Simpson's paradox of ramp-ups), and the sample-ratio check is a plain
multinomial test. The level ``alpha`` is split evenly over the steps (Bonferroni), so the chance of
any false rollback or false promotion during the whole rollout stays at most ``alpha``.

The split is checked on the unit the router randomises (``srm_unit``): ``users`` where a user
always lands on the same arm (the local router's sticky hash), ``requests`` where each request
is assigned on its own (KServe's canary split) — there a user's requests reach both arms, so user
counts do not follow the weight, while request counts do.

At every look, in order:

1. **rollback** when a guardrail (error rate, invalid answers, p99) breaks a hard limit;
   then, when the driver reports ``missing_evidence`` (e.g. a reset counter), **continue**
   without judging the metrics (or **inconclusive** once ``max_duration_s`` has passed);
2. **rollback** when the split of users does not match the weight (sequential SRM test);
3. **rollback** when a metric's confidence sequence (relative difference) lies below minus the
   drop that metric tolerates (the canary is worse by more than the tolerated drop);
4. at the last step, once its minimum users and time are reached: **promote** when every
   metric's confidence sequence lies above minus its tolerated drop;
5. **inconclusive** (back to the primary, nothing promoted) when ``max_duration_s`` has passed;
6. **continue** until the step's minimum canary users and time are reached, then **step**.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from numbers import Real
from typing import Literal

from serving.analysis._checks import is_number, require, require_int, require_level, require_positive
from serving.analysis.guardrails import GuardrailLimits, ServingCounters, check_guardrails
from serving.analysis.moments import METRICS, UserMoments
from serving.analysis.sequential import Comparison, SequentialTest, compare, require_planned_effect
from serving.analysis.srm import srm_test

Action = Literal["continue", "step", "promote", "rollback", "inconclusive"]
SrmUnit = Literal["users", "requests"]
SRM_UNITS = ("users", "requests")


@dataclass(frozen=True)
class RolloutPolicy:
    """The weights to walk through, what each step needs, the tests and the limits."""

    steps: tuple[float, ...] = (0.05, 0.10, 0.25, 0.50)
    min_canary_users_per_step: int = 500
    min_seconds_per_step: float = 300.0
    max_duration_s: float = 4 * 3600.0  # math.inf: no limit (the driver has its own budget)
    # each decision metric and the relative drop it tolerates (0.02: a 2 % lower CTR is acceptable)
    metrics: tuple[tuple[str, float], ...] = (("ctr", 0.02), ("cvr", 0.02))
    alpha: float = 0.05
    planned_users: int = 20_000  # users of both arms where the final step's test is tightest
    # the smallest relative change worth detecting: set, the test is the two-point mixture at
    # +-planned_effect (decides sooner at that effect, never resolves below half of it)
    planned_effect: float | None = None
    srm_alpha: float = 0.001
    srm_concentration: float = 100.0
    srm_unit: SrmUnit = "users"
    guardrails: GuardrailLimits = field(default_factory=GuardrailLimits)

    def __post_init__(self) -> None:
        steps = tuple(self.steps) if isinstance(self.steps, (tuple, list)) else ()
        require(
            bool(steps)
            and all(is_number(w) and 0 < w < 1 for w in steps)
            and all(a < b for a, b in zip(steps, steps[1:], strict=False)),
            "steps",
            "increasing canary weights in (0, 1), e.g. (0.05, 0.1, 0.25, 0.5)",
            self.steps,
        )
        require_int("min_canary_users_per_step", self.min_canary_users_per_step, 2)
        require(
            is_number(self.min_seconds_per_step) and self.min_seconds_per_step >= 0,
            "min_seconds_per_step",
            "seconds >= 0",
            self.min_seconds_per_step,
        )
        require(
            isinstance(self.max_duration_s, Real)
            and not isinstance(self.max_duration_s, bool)
            and self.max_duration_s > 0,
            "max_duration_s",
            "seconds > 0 (math.inf for no limit)",
            self.max_duration_s,
        )
        require(
            isinstance(self.metrics, (tuple, list))
            and bool(self.metrics)
            and all(
                isinstance(rule, (tuple, list))
                and len(rule) == 2
                and rule[0] in METRICS
                and is_number(rule[1])
                and 0 <= rule[1] < 1
                for rule in self.metrics
            )
            and len({rule[0] for rule in self.metrics}) == len(self.metrics),
            "metrics",
            f"(name, tolerated relative drop in [0, 1)) pairs with names from {sorted(METRICS)}, "
            "e.g. (('ctr', 0.02), ('cvr', 0.02))",
            self.metrics,
        )
        require_level("alpha", self.alpha, 0.5)
        require_int("planned_users", self.planned_users, 2)
        require_planned_effect("planned_effect", self.planned_effect)
        require_level("srm_alpha", self.srm_alpha)
        require_positive("srm_concentration", self.srm_concentration)
        require(self.srm_unit in SRM_UNITS, "srm_unit", " or ".join(map(repr, SRM_UNITS)), self.srm_unit)

    @property
    def test(self) -> SequentialTest:
        """Each step's test, at its share of ``alpha``."""
        return SequentialTest(
            self.alpha / len(self.steps), self.planned_users, "relative", self.planned_effect
        )


@dataclass(frozen=True)
class RolloutState:
    """Where a rollout is: the step index and when it and the current step began (seconds)."""

    step: int = 0
    started_s: float = 0.0
    step_started_s: float = 0.0

    @classmethod
    def start(cls, now_s: float) -> RolloutState:
        return cls(0, now_s, now_s)


@dataclass(frozen=True)
class ArmWindow:
    """One arm over the current step: its users' outcomes and its serving counters."""

    users: UserMoments
    serving: ServingCounters


@dataclass(frozen=True)
class RolloutDecision:
    """What to do now, why, and the numbers behind it. ``weight`` is the canary weight to apply
    next (1 after promote, 0 after rollback or inconclusive); ``state`` the state to keep."""

    action: Action
    reasons: tuple[str, ...]
    weight: float
    state: RolloutState
    evidence: dict

    def to_dict(self) -> dict:
        return {
            "action": self.action,
            "reasons": list(self.reasons),
            "weight": self.weight,
            "step": self.state.step,
            "evidence": self.evidence,
        }


def evaluate(
    policy: RolloutPolicy,
    state: RolloutState,
    primary: ArmWindow,
    canary: ArmWindow,
    now_s: float,
    missing_evidence: tuple[str, ...] = (),
) -> RolloutDecision:
    """One look at the current step's window (see the module docstring for the rule).
    ``missing_evidence``: why the driver's data cannot be trusted now, one reason each."""
    if not 0 <= state.step < len(policy.steps):
        raise ValueError(f"state.step: expected 0..{len(policy.steps) - 1}, got {state.step}")
    if now_s < state.step_started_s or state.step_started_s < state.started_s:
        raise ValueError(
            f"now_s: expected started_s <= step_started_s <= now_s, got {state.started_s}, "
            f"{state.step_started_s}, {now_s}"
        )
    weight = policy.steps[state.step]
    last = state.step == len(policy.steps) - 1
    guardrails = check_guardrails(canary.serving, policy.guardrails)
    drops = dict(policy.metrics)
    comparisons = {m: compare(primary.users, canary.users, m, policy.test) for m in drops}
    if policy.srm_unit == "users":
        counts = (int(primary.users.n), int(canary.users.n))
    else:
        counts = (primary.serving.requests, canary.serving.requests)
    srm = srm_test(counts, (1 - weight, weight), policy.srm_alpha, policy.srm_concentration)
    canary_users = int(canary.users.n)
    step_s, elapsed_s = now_s - state.step_started_s, now_s - state.started_s
    ready = canary_users >= policy.min_canary_users_per_step and step_s >= policy.min_seconds_per_step
    evidence = {
        "step": state.step,
        "weight": weight,
        "elapsed_s": elapsed_s,
        "step_elapsed_s": step_s,
        "requirements": {
            "canary_users": {"value": canary_users, "min": policy.min_canary_users_per_step},
            "step_seconds": {"value": step_s, "min": policy.min_seconds_per_step},
            "max_duration_s": policy.max_duration_s,
        },
        "guardrails": {check.name: check.to_dict() for check in guardrails},
        "srm": {**srm.to_dict(), "unit": policy.srm_unit},
        "metrics": {m: c.to_dict() for m, c in comparisons.items()},
        "tolerated_relative_drop": drops,
        "missing_evidence": list(missing_evidence),
    }

    def decision(action: Action, reasons: list[str], next_weight: float, next_state: RolloutState = state):
        return RolloutDecision(action, tuple(reasons), next_weight, next_state, evidence)

    broken = [f"guardrail {c.name}: {c.value:.4g} > limit {c.limit:.4g}" for c in guardrails if not c.ok]
    if broken:
        return decision("rollback", broken, 0.0)
    if missing_evidence:
        if elapsed_s >= policy.max_duration_s:
            return decision("inconclusive", [*missing_evidence, _timed_out(policy, state, weight)], 0.0)
        return decision("continue", [f"evidence incomplete: {reason}" for reason in missing_evidence], weight)
    if srm.mismatch:
        return decision(
            "rollback",
            [
                f"sample ratio mismatch: {counts[1]} of {sum(counts)} {policy.srm_unit} on the canary, "
                f"expected {weight:.0%} (p={srm.p_value:.2g}); the split is broken, so no comparison "
                "can be trusted"
            ],
            0.0,
        )
    worse = [_describe(c, "worse") for m, c in comparisons.items() if float(c.upper) < -drops[m]]
    if worse:
        return decision("rollback", worse, 0.0)
    if last and ready and all(float(c.lower) > -drops[m] for m, c in comparisons.items()):
        return decision("promote", [_describe(c, "not worse") for c in comparisons.values()], 1.0)
    if elapsed_s >= policy.max_duration_s:
        return decision("inconclusive", [_timed_out(policy, state, weight)], 0.0)
    if not ready:
        return decision(
            "continue",
            [
                f"step {state.step} ({weight:.0%}): {canary_users}/{policy.min_canary_users_per_step} "
                f"canary users, {step_s:.0f}/{policy.min_seconds_per_step:g} s"
            ],
            weight,
        )
    if not last:
        following = policy.steps[state.step + 1]
        return decision(
            "step",
            [
                f"step {state.step} ({weight:.0%}) passed: guardrails hold, split matches, "
                f"no metric worse; raise to {following:.0%}"
            ],
            following,
            RolloutState(state.step + 1, state.started_s, now_s),
        )
    return decision("continue", ["last step: evidence not yet conclusive"], weight)


def _timed_out(policy: RolloutPolicy, state: RolloutState, weight: float) -> str:
    return (
        f"no decision within max_duration_s={policy.max_duration_s:g} s "
        f"(step {state.step}, weight {weight:.0%})"
    )


def _describe(c: Comparison, verdict: str) -> str:
    return (
        f"canary {c.metric.upper()} {verdict}: {float(c.estimate):+.2%} relative, "
        f"confidence sequence [{float(c.lower):+.2%}, {float(c.upper):+.2%}], p={float(c.p_value):.3g}"
    )
