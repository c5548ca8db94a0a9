"""The rollout controller: drives a KServe canary with the local canary's analysis.

Every ``interval_s`` it reads the InferenceService, and while a canary runs (``spec.predictor
.canaryTrafficPercent`` between 1 and 99) it reads both arms from Prometheus
(:class:`serving.prometheus_source.PrometheusSource`) — the canary is the spec's model version
(label ``recforge.io/model-version``), the primary the one in annotation
``recforge.io/primary-model-version`` — and takes one look of :func:`serving.analysis.evaluate`,
the function the local canary calls, with the same metric definitions: guardrails, a sequential
sample-ratio check, anytime-valid confidence sequences of the relative CTR and CVR differences
with user-level variance, and the stepping policy (``RolloutPolicy``: weights, minimum canary
users and time per step, maximum duration). Its decision is applied:

- **continue**: nothing changes;
- **step**: the percent goes to the next weight, annotation ``recforge.io/step-started-at`` = now;
- **promote**: ``canaryTrafficPercent`` is removed (KServe then sends all traffic to the new
  revision) and the canary becomes the primary;
- **rollback** / **inconclusive**: the percent goes to 0 (everything back on the primary).

What the cluster changes about the analysis (the local router is sticky per user; KServe is not):

- KServe splits *requests*, so a user's lists come from both revisions: the split is checked on
  requests (``srm_unit="requests"``). The per-arm user-level variances stay valid; the arms share
  users, which makes their difference's true variance smaller, so the test is conservative.
- The user moments are cumulative since each revision's replica started (they cannot be windowed
  per step: squares of per-user totals do not subtract), so the comparison covers the whole
  rollout — weights change across steps, and a strong time trend could favour the arm with more
  late traffic. Requests (guardrails, the split) are counted per step.
- The evidence is incomplete, and the look only continues (guardrails still roll back; past
  ``max_duration_s`` it is inconclusive), while: an arm runs more than one replica (a user's
  outcomes split over replicas understate the variance; run one replica per revision); an arm's
  replica restarted or vanished since the analysis began (its per-user sums restarted from 0); the
  primary's per-user state began more than ``max_state_skew_s`` before or after the canary's (it
  would compare different periods: restart the primary's pods when starting a canary); or some
  outcome reports are not in the per-user sums (no ``user_id``, or the server's bound on users).

Predictor and transformer move together (one model version: kserve#1669). Each patch is a JSON
merge patch carrying the ``resourceVersion`` read, so a concurrent change is a 409 and the
controller re-reads and decides again. Each decision is logged as one JSON line and recorded as
a Kubernetes Event on the InferenceService.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Literal

from serving.analysis import ArmWindow, RolloutPolicy, evaluate
from serving.analysis import RolloutState as AnalysisState
from serving.analysis._checks import is_number, require
from serving.k8s_inference_service import Conflict, InferenceServiceClient, InferenceServiceMissing
from serving.prometheus_source import ArmReading, PrometheusError, PrometheusSource, common_start

VERSION_LABEL = "recforge.io/model-version"
PRIMARY_ANNOTATION = "recforge.io/primary-model-version"
STEP_ANNOTATION = "recforge.io/step-started-at"
COMPONENTS = ("predictor", "transformer")

Action = Literal["idle", "hold", "continue", "step", "promote", "rollback", "inconclusive", "missing"]
EVENT_REASONS = {
    "hold": "CanaryHold",
    "continue": "CanaryContinue",
    "step": "CanaryStep",
    "promote": "CanaryPromoted",
    "rollback": "CanaryRolledBack",
    "inconclusive": "CanaryInconclusive",
}
WARNINGS = ("rollback", "inconclusive")

log = logging.getLogger("recforge.rollout")


def cluster_policy(**overrides: object) -> RolloutPolicy:
    """The controller's default policy: KServe's 10 / 25 / 50 % steps, split checked on requests."""
    return RolloutPolicy(**{"steps": (0.10, 0.25, 0.50), "srm_unit": "requests", **overrides})


@dataclass(frozen=True)
class RolloutConfig:
    inference_service: str
    namespace: str
    policy: RolloutPolicy = field(default_factory=cluster_policy)
    interval_s: float = 60.0
    max_state_skew_s: float = 300.0
    max_conflict_retries: int = 3

    def __post_init__(self) -> None:
        require(
            all(abs(w * 100 - round(w * 100)) < 1e-9 for w in self.policy.steps),
            "policy.steps",
            "weights in whole percents (KServe's canaryTrafficPercent is an integer), e.g. (0.1, 0.25, 0.5)",
            self.policy.steps,
        )
        require(
            is_number(self.interval_s) and self.interval_s > 0, "interval_s", "seconds > 0", self.interval_s
        )
        require(
            is_number(self.max_state_skew_s) and self.max_state_skew_s >= 0,
            "max_state_skew_s",
            "seconds >= 0",
            self.max_state_skew_s,
        )

    @property
    def percents(self) -> tuple[int, ...]:
        return tuple(round(w * 100) for w in self.policy.steps)


@dataclass(frozen=True)
class ServiceState:
    """What the controller needs from the InferenceService."""

    percent: int | None
    canary_version: str
    primary_version: str
    resource_version: str
    components: tuple[str, ...]
    step_started_at: datetime | None

    @classmethod
    def of(cls, isvc: dict) -> ServiceState:
        metadata, spec = isvc.get("metadata", {}), isvc.get("spec", {})
        started = (metadata.get("annotations") or {}).get(STEP_ANNOTATION)
        return cls(
            percent=spec.get("predictor", {}).get("canaryTrafficPercent"),
            canary_version=(metadata.get("labels") or {}).get(VERSION_LABEL, ""),
            primary_version=(metadata.get("annotations") or {}).get(PRIMARY_ANNOTATION, ""),
            resource_version=metadata.get("resourceVersion", ""),
            components=tuple(c for c in COMPONENTS if c in spec),
            step_started_at=datetime.fromisoformat(started) if started else None,
        )

    @property
    def canary_running(self) -> bool:
        return self.percent is not None and 0 < self.percent < 100

    @property
    def versions(self) -> dict[str, str]:
        return {"primary": self.primary_version, "canary": self.canary_version}


@dataclass(frozen=True)
class RolloutDecision:
    action: Action
    reasons: tuple[str, ...]
    from_percent: int | None = None
    to_percent: int | None = None
    patch: dict | None = None
    evidence: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "action": self.action,
            "reasons": list(self.reasons),
            "from_percent": self.from_percent,
            "to_percent": self.to_percent,
            "patch": self.patch,
            "evidence": self.evidence,
        }


def missing_evidence(readings: dict[str, ArmReading], max_state_skew_s: float) -> tuple[str, ...]:
    """Why the arms' per-user sums cannot be trusted now (see the module docstring); () if they can."""
    problems = []
    for arm, reading in readings.items():
        name = f"{arm} version {reading.version!r}"
        if reading.replicas != 1:
            problems.append(
                f"{name} runs {reading.replicas} replicas; a user's outcomes split over replicas "
                "understate the variance: run one replica per revision during the canary"
            )
        if reading.replicas_seen > reading.replicas or reading.counter_reset:
            problems.append(
                f"{name} restarted or lost a replica since the analysis began: its per-user sums "
                "started again from 0; start the canary again"
            )
        if any(reading.untracked.values()):
            counts = ", ".join(f"{reason}={n}" for reason, n in reading.untracked.items() if n)
            problems.append(f"{name} has outcome reports missing from its per-user sums ({counts})")
    skew = min(readings["primary"].started_s) - min(readings["canary"].started_s)
    if abs(skew) > max_state_skew_s:
        when = "before" if skew < 0 else "after"
        problems.append(
            f"the primary's per-user sums began {abs(skew):.0f} s {when} the canary's "
            f"(max_state_skew_s={max_state_skew_s:g}): the arms would cover different periods; "
            "restart the primary revision's pods when the canary starts"
        )
    return tuple(problems)


def plan(
    state: ServiceState, readings: dict[str, ArmReading], config: RolloutConfig, now_s: float
) -> RolloutDecision:
    """One look of the analysis and its merge patch for a running canary (pure: no I/O)."""
    started_s = min(common_start({arm: r.started_s for arm, r in readings.items()}), now_s)
    step_started_s = started_s
    if state.step_started_at is not None:
        step_started_s = min(max(state.step_started_at.timestamp(), started_s), now_s)
    look = evaluate(
        config.policy,
        AnalysisState(config.percents.index(state.percent), started_s, step_started_s),
        ArmWindow(readings["primary"].moments, readings["primary"].serving),
        ArmWindow(readings["canary"].moments, readings["canary"].serving),
        now_s,
        missing_evidence(readings, config.max_state_skew_s),
    )
    evidence = {
        "versions": state.versions,
        "arms": {arm: reading.to_dict() for arm, reading in readings.items()},
        "analysis": look.evidence,
    }
    now = datetime.fromtimestamp(now_s, timezone.utc)
    if look.action == "continue":
        return RolloutDecision("continue", look.reasons, state.percent, state.percent, None, evidence)
    if look.action == "step":
        following = round(look.weight * 100)
        patch = _patch(state, following, {STEP_ANNOTATION: now.isoformat()})
        return RolloutDecision("step", look.reasons, state.percent, following, patch, evidence)
    if look.action == "promote":
        promoted = {STEP_ANNOTATION: None, PRIMARY_ANNOTATION: state.canary_version}
        return RolloutDecision(
            "promote", look.reasons, state.percent, None, _patch(state, None, promoted), evidence
        )
    patch = _patch(state, 0, {STEP_ANNOTATION: None})
    return RolloutDecision(look.action, look.reasons, state.percent, 0, patch, evidence)


def _patch(state: ServiceState, percent: int | None, annotations: dict[str, str | None]) -> dict:
    """A merge patch: ``None`` removes a field (canaryTrafficPercent on promote)."""
    return {
        "metadata": {"resourceVersion": state.resource_version, "annotations": annotations},
        "spec": {component: {"canaryTrafficPercent": percent} for component in state.components},
    }


class RolloutController:
    def __init__(
        self,
        config: RolloutConfig,
        client: InferenceServiceClient,
        source: PrometheusSource,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.client = client
        self.source = source
        self.clock = clock

    def reconcile_once(self) -> RolloutDecision:
        """Read, decide, patch (re-reading on a 409), log and record the decision."""
        name, namespace = self.config.inference_service, self.config.namespace
        for attempt in range(self.config.max_conflict_retries + 1):
            try:
                isvc = self.client.get(namespace, name)
            except InferenceServiceMissing as error:
                return self._report(None, RolloutDecision("missing", (str(error),)))
            decision = self._decide(isvc)
            if decision.patch is None:
                return self._report(isvc, decision)
            try:
                self.client.merge_patch(namespace, name, decision.patch)
            except Conflict as error:
                log.info(
                    json.dumps({"inference_service": name, "conflict": str(error), "attempt": attempt + 1})
                )
                continue
            except InferenceServiceMissing as error:
                return self._report(None, RolloutDecision("missing", (str(error),)))
            return self._report(isvc, decision)
        attempts = self.config.max_conflict_retries + 1
        reason = f"gave up after {attempts} conflicting writes; will retry next interval"
        return self._report(isvc, RolloutDecision("hold", (reason,)))

    def _decide(self, isvc: dict) -> RolloutDecision:
        state = ServiceState.of(isvc)
        if not state.canary_running:
            return RolloutDecision(
                "idle",
                (f"no canary running (canaryTrafficPercent={state.percent})",),
                state.percent,
                state.percent,
            )
        if not state.canary_version or not state.primary_version:
            return RolloutDecision(
                "hold",
                (
                    f"label {VERSION_LABEL} and annotation {PRIMARY_ANNOTATION} must name "
                    "the canary's and the primary's model versions",
                ),
                state.percent,
            )
        if state.percent not in self.config.percents:
            steps = " ".join(map(str, self.config.percents))
            return RolloutDecision(
                "hold",
                (
                    f"canaryTrafficPercent={state.percent} is not one of the steps ({steps}): set it "
                    "to a step, or start the controller with --steps including it",
                ),
                state.percent,
                state.percent,
            )
        now_s = self.clock()
        step_started_s = None if state.step_started_at is None else state.step_started_at.timestamp()
        try:
            readings = self.source.read(self.config.inference_service, state.versions, now_s, step_started_s)
        except PrometheusError as error:
            return RolloutDecision("hold", (str(error),), state.percent, state.percent)
        return plan(state, readings, self.config, now_s)

    def _report(self, isvc: dict | None, decision: RolloutDecision) -> RolloutDecision:
        record = {
            "inference_service": f"{self.config.namespace}/{self.config.inference_service}",
            **decision.to_dict(),
        }
        log.info(json.dumps(record, default=str))
        reason = EVENT_REASONS.get(decision.action)
        if isvc is not None and reason is not None:
            message = f"{decision.action}: {decision.from_percent} -> {decision.to_percent}; " + "; ".join(
                decision.reasons
            )
            event_type = "Warning" if decision.action in WARNINGS else "Normal"
            try:
                self.client.record_event(isvc, reason, message, event_type)
            except Exception as error:  # noqa: BLE001 - an Event is a record; the decision stands
                log.warning(json.dumps({"event_not_recorded": str(error)}))
        return decision
