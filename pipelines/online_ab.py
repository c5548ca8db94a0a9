"""The local canary: two real KServe model servers, a sticky router, simulated users, a decision.

``run_canary`` starts the primary (served) and the candidate model as two ``python -m
serving.server`` processes on 127.0.0.1, splits ``num_requests`` simulated ranking requests
between them with :class:`serving.router.CanaryRouter` (``canary_percent`` of the users, sticky
per user), lets each user react to the top ``slate_size`` of the ranked candidates through the
simulator's ground truth, and applies :func:`serving.canary.decide`. Both servers are stopped by
their own PID when it ends, also on error.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.sim_world import World, to_micros
from serving.canary import CanaryConfig, CanaryDecision, decide
from serving.metrics import ArmStats
from serving.process import ServerProcess, launch_server
from serving.router import CANARY, PRIMARY, CanaryRouter


@dataclass(frozen=True)
class CanaryReport:
    """Per-arm statistics, the decision and its evidence (``to_dict`` is report.json's
    ``canary``)."""

    arms: dict[str, ArmStats]
    decision: CanaryDecision
    config: CanaryConfig
    wall_s: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "arms": {name: stats.to_dict() for name, stats in self.arms.items()},
            "decision": self.decision.decision,
            "reasons": list(self.decision.reasons),
            "evidence": self.decision.evidence,
            "canary_percent": self.config.canary_percent,
            "config": self.config.to_dict(),
            "wall_s": self.wall_s,
        }


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
) -> CanaryReport:
    """Serve both models, play the simulated users against them, decide promote or roll back.

    ``feature_repo`` is the Feast repo (with a materialized online store) both servers read
    features from, or None to serve on ids and context only. Server logs go to ``workdir``.
    """
    start = time.perf_counter()
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    servers: list[ServerProcess] = []
    try:
        for arm, artifact in ((PRIMARY, primary_artifact), (CANARY, candidate_artifact)):
            servers.append(
                launch_server(
                    workdir / f"{arm}-server.log",
                    artifact_dir=Path(artifact),
                    feature_repo=None if feature_repo is None else Path(feature_repo),
                )
            )
        for server in servers:  # both start in parallel; wait for each
            server.wait_ready(config.server_start_timeout_s)
        arms = asyncio.run(_play(world, config, servers[0].url, servers[1].url))
    finally:
        for server in servers:
            server.stop()
    return CanaryReport(
        arms=arms,
        decision=decide(arms, config),
        config=config,
        wall_s=time.perf_counter() - start,
    )


async def _play(world: World, config: CanaryConfig, primary_url: str, canary_url: str) -> dict[str, ArmStats]:
    router = CanaryRouter(primary_url, canary_url, canary_weight=config.canary_weight, salt=config.salt)
    rng = np.random.default_rng(config.seed)
    plans = [_plan(world, config, rng, index) for index in range(config.num_requests)]
    slots = asyncio.Semaphore(config.concurrency)

    async def play(plan: _PlannedRequest) -> None:
        async with slots:
            response = await router.predict(plan.body)
        if not response.ok:
            return
        slate = response.json()["predictions"][0]["item_ids"][: config.slate_size]
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

    try:
        await asyncio.gather(*(play(plan) for plan in plans))
    finally:
        await router.aclose()
    return router.stats()


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
