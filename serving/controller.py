"""The rollout controller: drives a KServe canary with the same rule as the local canary.

Every ``interval_s`` it reads the InferenceService, and while a canary runs (``spec.predictor
.canaryTrafficPercent`` between 1 and 99) it reads both arms' statistics from Prometheus — the
canary is the spec's model version (label ``recforge.io/model-version``), the primary the one in
annotation ``recforge.io/primary-model-version`` — and decides:

- **hold** while either arm has fewer than ``min_requests_per_arm`` requests in the window
  (the rule's guardrail would call that a rollback; here it only means "not yet");
- otherwise :func:`serving.canary.decide`: **rollback** sets the percent to 0; **promote**
  raises it to the next of ``steps`` or, after the last step, removes the field (KServe then
  sends all traffic to the new revision).

Predictor and transformer move together (one model version: kserve#1669). Each patch is a JSON
merge patch carrying the ``resourceVersion`` read, so a concurrent change is a 409 and the
controller re-reads and decides again. Each decision is logged as one JSON line and recorded as
a Kubernetes Event on the InferenceService. The analysis window is the time since the current
step began (annotation ``recforge.io/step-started-at``), at most ``window_s``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any, Literal

from serving.canary import CanaryConfig, decide
from serving.k8s_inference_service import Conflict, InferenceServiceClient, InferenceServiceMissing
from serving.metrics import ArmStats
from serving.prometheus_source import PrometheusError, PrometheusSource

VERSION_LABEL = "recforge.io/model-version"
PRIMARY_ANNOTATION = "recforge.io/primary-model-version"
STEP_ANNOTATION = "recforge.io/step-started-at"
COMPONENTS = ("predictor", "transformer")

Action = Literal["idle", "hold", "step", "promote", "rollback", "missing"]
EVENT_REASONS = {
    "hold": "CanaryHold",
    "step": "CanaryStep",
    "promote": "CanaryPromoted",
    "rollback": "CanaryRolledBack",
}

log = logging.getLogger("recforge.rollout")


@dataclass(frozen=True)
class RolloutConfig:
    inference_service: str
    namespace: str
    steps: tuple[int, ...] = (10, 25, 50)
    interval_s: float = 60.0
    window_s: int = 3600
    rule: CanaryConfig = field(default_factory=CanaryConfig)
    max_conflict_retries: int = 3

    def __post_init__(self) -> None:
        steps = self.steps
        if not steps or any(isinstance(s, bool) or not isinstance(s, int) or not 1 <= s <= 99 for s in steps):
            raise ValueError(f"steps: expected canary percents 1-99, e.g. 10 25 50; got {list(steps)}")
        if list(steps) != sorted(set(steps)):
            raise ValueError(f"steps: must increase strictly, got {list(steps)}")
        if not self.interval_s > 0:
            raise ValueError(f"interval_s: expected seconds > 0, got {self.interval_s!r}")
        if not self.window_s >= self.interval_s:
            raise ValueError(
                f"window_s: must be at least interval_s ({self.interval_s}), got {self.window_s}"
            )


@dataclass(frozen=True)
class RolloutState:
    """What the controller needs from the InferenceService."""

    percent: int | None
    canary_version: str
    primary_version: str
    resource_version: str
    components: tuple[str, ...]
    step_started_at: datetime | None

    @classmethod
    def of(cls, isvc: dict) -> RolloutState:
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


def plan(
    state: RolloutState,
    stats: dict[str, ArmStats],
    config: RolloutConfig,
    now: datetime,
    decide_fn: Callable[[dict[str, ArmStats], CanaryConfig], Any] = decide,
) -> RolloutDecision:
    """The decision and its merge patch for a running canary (pure: no I/O)."""
    evidence: dict = {
        "arms": {arm: s.to_dict() for arm, s in stats.items()},
        "versions": {"primary": state.primary_version, "canary": state.canary_version},
    }
    fewest = min(s.requests for s in stats.values())
    if fewest < config.rule.min_requests_per_arm:
        return RolloutDecision(
            "hold",
            (f"waiting for evidence: {fewest} < {config.rule.min_requests_per_arm} requests on an arm",),
            state.percent,
            state.percent,
            None,
            evidence,
        )
    verdict = decide_fn(stats, config.rule)
    evidence["rule"] = verdict.evidence
    if verdict.decision == "rollback":
        return RolloutDecision(
            "rollback", verdict.reasons, state.percent, 0, _patch(state, 0, {STEP_ANNOTATION: None}), evidence
        )
    following = [s for s in config.steps if s > state.percent]
    if following:
        step_annotations = {STEP_ANNOTATION: now.isoformat()}
        return RolloutDecision(
            "step",
            verdict.reasons,
            state.percent,
            following[0],
            _patch(state, following[0], step_annotations),
            evidence,
        )
    promoted = {STEP_ANNOTATION: None, PRIMARY_ANNOTATION: state.canary_version}
    return RolloutDecision(
        "promote", verdict.reasons, state.percent, None, _patch(state, None, promoted), evidence
    )


def _patch(state: RolloutState, percent: int | None, annotations: dict[str, str | None]) -> dict:
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
        decide_fn: Callable[[dict[str, ArmStats], CanaryConfig], Any] = decide,
    ) -> None:
        self.config = config
        self.client = client
        self.source = source
        self.clock = clock
        self.decide_fn = decide_fn

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
        state = RolloutState.of(isvc)
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
        now = datetime.fromtimestamp(self.clock(), timezone.utc)
        window = self._window_s(state, now)
        versions = {"primary": state.primary_version, "canary": state.canary_version}
        try:
            stats = self.source.arm_stats(self.config.inference_service, versions, window)
        except PrometheusError as error:
            return RolloutDecision("hold", (str(error),), state.percent, state.percent)
        decision = plan(state, stats, self.config, now, self.decide_fn)
        return replace(decision, evidence={**decision.evidence, "window_s": window})

    def _window_s(self, state: RolloutState, now: datetime) -> int:
        if state.step_started_at is None:
            return self.config.window_s
        elapsed = (now - state.step_started_at).total_seconds()
        return int(min(self.config.window_s, max(self.config.interval_s, elapsed)))

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
            event_type = "Warning" if decision.action == "rollback" else "Normal"
            try:
                self.client.record_event(isvc, reason, message, event_type)
            except Exception as error:  # noqa: BLE001 - an Event is a record; the decision stands
                log.warning(json.dumps({"event_not_recorded": str(error)}))
        return decision
