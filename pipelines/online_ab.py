"""The local canary: two real KServe model servers, a sticky router, simulated users, a decision.

``run_canary`` starts the primary (served) and the candidate model as two ``python -m
serving.server`` processes on 127.0.0.1, splits ``num_requests`` simulated ranking requests
between them with :class:`serving.router.CanaryRouter` (``canary_percent`` of the users, sticky
per user), lets each user react to the top ``slate_size`` of the ranked candidates through the
simulator's ground truth, and looks at the sequential analysis (:func:`serving.canary.assess`)
after every ``look_every_requests`` requests: a rollback stops the canary at that look, otherwise
:func:`serving.canary.conclude` decides at the end of the budget. Every look is kept in the
report's decision trail. Both servers are stopped by their own PID when it ends, also on error.

Each arm's features and model come from the same version (kserve#1669): the router is pinned to
each artifact's version, so an answer from another version counts as that arm's error; with
``transformer=True`` each arm is a Feast transformer (stamping its artifact's version) in front
of its own predictor, which refuses features meant for another version.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from pipelines.sim_world import World, to_micros
from serving.analysis import RolloutDecision
from serving.canary import CanaryConfig, CanaryDecision, assess, conclude
from serving.metrics import ArmStats
from serving.process import ArmServers, launch_arm
from serving.router import CANARY, PRIMARY, CanaryRouter


@dataclass(frozen=True)
class CanaryReport:
    """Per-arm statistics, the decision, its evidence and the trail of looks (``to_dict`` is
    report.json's ``canary``)."""

    arms: dict[str, ArmStats]
    decision: CanaryDecision
    config: CanaryConfig
    wall_s: float
    trail: tuple[dict, ...] = ()
    versions: dict[str, dict] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "arms": {name: stats.to_dict() for name, stats in self.arms.items()},
            "decision": self.decision.decision,
            "reasons": list(self.decision.reasons),
            "evidence": self.decision.evidence,
            "canary_percent": self.config.canary_percent,
            "config": self.config.to_dict(),
            "wall_s": self.wall_s,
            "versions": self.versions,
            "analysis": {
                "test": _test_name(self.config),
                "alpha": self.config.alpha,
                "planned_users": self.config.planned_users,
                "planned_effect": self.config.planned_effect,
                "look_every_requests": self.config.look_every_requests,
                "trail": list(self.trail),
            },
        }


def _test_name(config: CanaryConfig) -> str:
    mixture = (
        "normal-mixture confidence sequence"
        if config.planned_effect is None
        else f"two-point mixture at +-{config.planned_effect:g} (planned effect)"
    )
    return f"{mixture}, relative difference, user-level delta-method variance (anytime-valid)"


@dataclass(frozen=True)
class _PlannedRequest:
    index: int
    user_id: int
    ts: datetime
    device: str
    surface: str
    body: dict


def run_canary(
    primary_artifact: Path,
    candidate_artifact: Path,
    feature_repo: Path | None,
    world: World,
    config: CanaryConfig,
    workdir: Path,
    *,
    transformer: bool = False,
) -> CanaryReport:
    """Serve both models, play the simulated users against them, decide promote or roll back.

    ``feature_repo`` is the Feast repo (with a materialized online store) both arms read
    features from, or None to serve on ids and context only; ``transformer`` puts a Feast
    transformer in front of each arm's predictor. Server logs go to ``workdir``.
    """
    start = time.perf_counter()
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    artifacts = {PRIMARY: Path(primary_artifact), CANARY: Path(candidate_artifact)}
    repo = None if feature_repo is None else Path(feature_repo)
    arm_servers: dict[str, ArmServers] = {}
    try:
        for arm, artifact in artifacts.items():
            arm_servers[arm] = launch_arm(workdir, arm, artifact, repo, transformer=transformer)
        for servers in arm_servers.values():  # all start in parallel; wait for each
            servers.wait_ready(config.server_start_timeout_s)
        router = CanaryRouter(
            arm_servers[PRIMARY].url,
            arm_servers[CANARY].url,
            canary_weight=config.canary_weight,
            salt=config.salt,
            versions={arm: artifact_version(artifact) for arm, artifact in artifacts.items()},
        )
        arms, trail, last_look = asyncio.run(_play(world, config, router))
    finally:
        for servers in arm_servers.values():
            servers.stop()
    return CanaryReport(
        arms=arms,
        decision=conclude(arms, last_look, config),
        config=config,
        wall_s=time.perf_counter() - start,
        trail=tuple(trail),
        versions=router.versions(),
    )


def artifact_version(artifact_dir: Path) -> str:
    """The model version an artifact's answers carry (its config; the server verified it)."""
    from models.artifact import CONFIG

    return str(json.loads((Path(artifact_dir) / CONFIG).read_text())["version"])


async def _play(
    world: World, config: CanaryConfig, router: CanaryRouter
) -> tuple[dict[str, ArmStats], list[dict], RolloutDecision]:
    """Play the planned requests a look at a time; stop at the first look that rolls back."""
    rng = np.random.default_rng(config.seed)
    plans = [_plan(world, config, rng, index) for index in range(config.num_requests)]
    slots = asyncio.Semaphore(config.concurrency)
    invalid = {PRIMARY: 0, CANARY: 0}

    async def play(plan: _PlannedRequest) -> None:
        async with slots:
            response = await router.predict(plan.body)
        if not response.ok:
            return
        slate = _slate(response.content, config.slate_size)
        if slate is None:
            invalid[response.served_by] += 1
            return
        outcome = world.respond(
            plan.user_id,
            slate,
            plan.ts,
            plan.device,
            plan.surface,
            # one stream per request: outcomes do not depend on the order responses arrive in
            rng=np.random.default_rng([config.seed, plan.index]),
        )
        router.record_outcome(
            plan.user_id,
            impressions=len(slate),
            clicks=int(outcome.click.sum()),
            conversions=int(outcome.conversion.sum()),
            arm=response.arm,
        )

    trail: list[dict] = []
    try:
        for first in range(0, len(plans), config.look_every_requests):
            await asyncio.gather(*(play(plan) for plan in plans[first : first + config.look_every_requests]))
            stats = router.stats()
            look = assess(stats, config, invalid[CANARY])
            trail.append(_trail_entry(stats, look, invalid))
            if look.action == "rollback":
                break
    finally:
        await router.aclose()
    return stats, trail, look


def _slate(content: bytes, size: int) -> list[int] | None:
    """The top ``size`` item ids of a V1 answer; None when it is empty or malformed."""
    try:
        items = orjson.loads(content)["predictions"][0]["item_ids"][:size]
    except (orjson.JSONDecodeError, KeyError, IndexError, TypeError):
        return None
    valid = bool(items) and all(isinstance(i, int) and not isinstance(i, bool) for i in items)
    return items if valid else None


def _trail_entry(stats: dict[str, ArmStats], look: RolloutDecision, invalid: dict[str, int]) -> dict:
    """One look, for the report: traffic so far, each metric's interval, the action."""
    evidence = look.evidence
    return {
        "requests": sum(arm.requests for arm in stats.values()),
        "users": {name: arm.users for name, arm in stats.items()},
        "invalid": dict(invalid),
        "action": look.action,
        "guardrails_ok": all(check["ok"] for check in evidence["guardrails"].values()),
        "srm_p_value": evidence["srm"]["p_value"],
        "metrics": {
            name: {key: metric[key] for key in ("estimate", "interval", "p_value")}
            for name, metric in evidence["metrics"].items()
        },
    }


def _plan(world: World, config: CanaryConfig, rng: np.random.Generator, index: int) -> _PlannedRequest:
    user_id, ts, device, surface = world.sample_request(rng)
    items = world.candidate_items(user_id, config.candidates_per_request, rng, ts)
    hour = int(world.local_hour(np.array([user_id - 1]), np.array([to_micros(ts)]))[0])
    body = {
        "instances": [
            {
                "user_id": user_id,
                "item_ids": items.tolist(),
                "context": {"device": device, "surface": surface, "hour": hour},
            }
        ]
    }
    return _PlannedRequest(index, user_id, ts, device, surface, body)
