"""The measurements of `recforge bench serving`, each one open-loop run through the canary router.

Every phase builds a fresh :class:`serving.router.CanaryRouter` in front of the same servers
(both arms pinned to their model versions), drives it with :func:`serving.loadgen.open_loop` —
requests start on schedule whether or not earlier ones answered, latency counts from the
scheduled start — and reports what the users got: ``lost = sent - answered`` (answered: a 2xx or
a 4xx) and ``failed`` (5xx, transport errors, timeouts).
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipelines.bench_serving_setup import RedisServer
from serving.assignment import CANARY, PRIMARY
from serving.canary import CanaryConfig, assess
from serving.loadgen import LoadResult, Send, aiohttp_sender, open_loop, saturation
from serving.process import ArmServers, ServerProcess, launch_server
from serving.router import CanaryRouter, RetryPolicy
from serving.shadow import ShadowConfig
from serving.upstream import client_session

PATH = "/v1/models/ranker:predict"
SLATE = 10  # impressions a simulated user sees of each ranked list


@dataclass
class Answers:
    """What came back, beyond the load generator's counts: degraded answers, fallbacks."""

    degraded: int = 0
    served_by_primary_for_canary: int = 0


@dataclass
class Arms:
    """Each arm's servers — its predictor, and the Feast transformer in front of it when
    ``transformer`` — and the model versions they must answer with."""

    entries: dict[str, ArmServers]
    versions: dict[str, str]
    artifacts: dict[str, Path]
    feature_repo: Path
    transformer: bool = False

    def url(self, arm: str) -> str:
        """The arm's entry point: its transformer when there is one, else its predictor."""
        return self.entries[arm].url

    def predictor(self, arm: str) -> ServerProcess:
        return self.entries[arm].predictor

    def restart_predictor(self, arm: str, timeout_s: float) -> None:
        """Stop the arm's predictor (SIGTERM) and start it again on the same port."""
        old = self.entries[arm].predictor
        old.stop()
        new = launch_server(
            old.log_path,
            artifact_dir=self.artifacts[arm],
            feature_repo=None if self.transformer else self.feature_repo,
            port=int(old.url.rsplit(":", 1)[1]),
        )
        self.entries[arm].predictor = new
        new.wait_ready(timeout_s)

    def stop(self) -> None:
        for entry in self.entries.values():
            entry.stop()


def new_router(
    arms: Arms, canary_percent: float, retry_budget_s: float, shadow: ShadowConfig | None = None
) -> CanaryRouter:
    return CanaryRouter(
        arms.url(PRIMARY),
        arms.url(CANARY),
        canary_weight=canary_percent / 100.0,
        versions=arms.versions,
        retry=RetryPolicy(budget_s=retry_budget_s),
        max_connections=256,
        shadow=shadow,
    )


def router_sender(
    router: CanaryRouter, requests: Sequence[tuple[int, bytes]], answers: Answers, seed: int
) -> Send:
    """``send(i)``: route the ``i``-th planned request; a simulated user reacts to each answer
    (clicks ~ 5 % of a 10-item slate, conversions ~ 10 % of clicks) so the canary analysis has
    per-user outcomes in each arm."""
    rng = np.random.default_rng(seed)

    async def send(i: int) -> int:
        user_id, body = requests[i % len(requests)]
        routed = await router.route(user_id, PATH, body)
        if routed.ok:
            answers.degraded += b'"degraded"' in routed.content
            answers.served_by_primary_for_canary += routed.arm == CANARY and routed.served_by == PRIMARY
            clicks = int(rng.binomial(SLATE, 0.05))
            router.record_outcome(user_id, SLATE, clicks, int(rng.binomial(clicks, 0.1)), arm=routed.arm)
        return routed.status

    return send


def load_summary(result: LoadResult, router: CanaryRouter, answers: Answers) -> dict:
    stats = router.stats()
    return {
        **result.to_dict(),
        "answered": result.answered,
        "lost": result.sent - result.answered,
        "failed": result.errors,
        "degraded": answers.degraded,
        "arms": {
            arm: {k: s.to_dict()[k] for k in ("requests", "errors", "p50_ms", "p99_ms")}
            for arm, s in stats.items()
        },
    }


async def load(
    arms: Arms,
    requests: Sequence[tuple[int, bytes]],
    rate: float,
    duration_s: float,
    canary_percent: float,
    shadow_percent: float | None = None,
) -> dict:
    """Open-loop load at ``rate`` req/s through the router to both arms; with
    ``shadow_percent``, that share of the primary's requests is also mirrored to the canary's
    server (shadow mode) and the comparison is reported."""
    shadow = None if shadow_percent is None else ShadowConfig(arms.url(CANARY), shadow_percent)
    router = new_router(arms, canary_percent, retry_budget_s=5.0, shadow=shadow)
    answers = Answers()
    try:
        result = await open_loop(router_sender(router, requests, answers, seed=int(rate)), rate, duration_s)
    finally:
        await router.aclose()
    summary = load_summary(result, router, answers)
    if router.shadow is not None:
        summary["shadow"] = router.shadow.summary()
    return summary


async def direct(url: str, bodies: Sequence[bytes], rate: float, duration_s: float) -> dict:
    """The baseline: the same open-loop load straight to one arm's entry point, no router."""
    async with client_session(max_connections=256, timeout_s=10.0) as session:
        result = await open_loop(aiohttp_sender(session, url + PATH, bodies), rate, duration_s)
    return {**result.to_dict(), "answered": result.answered, "lost": result.sent - result.answered}


async def worker_ceiling(url: str, bodies: Sequence[bytes], duration_s: float, concurrency: int) -> dict:
    """Closed-loop saturation of one arm's entry point (one predictor worker, behind its
    transformer when there is one), straight to it (no router)."""
    async with client_session(max_connections=concurrency, timeout_s=10.0) as session:
        send = aiohttp_sender(session, url + PATH, bodies)
        result = await saturation(send, concurrency=concurrency, duration_s=duration_s)
    return {**result.to_dict(), "concurrency": concurrency}


async def canary_kill(
    arms: Arms,
    requests: Sequence[tuple[int, bytes]],
    *,
    rate: float,
    duration_s: float,
    canary_percent: float,
    interval_s: float,
    analysis: CanaryConfig,
) -> dict:
    """Kill the canary's server (SIGKILL) just after a look; the next look, one interval later,
    must roll back (``looks_to_rollback`` 1), and no user request may fail (the router answers
    canary users from the primary). ``rollback_after_kill_s`` includes the look's own time."""
    router = new_router(arms, canary_percent, retry_budget_s=5.0)
    answers = Answers()
    traffic = asyncio.ensure_future(
        open_loop(router_sender(router, requests, answers, seed=1), rate, duration_s)
    )
    start = time.perf_counter()
    kill_at_look = max(2, int(duration_s / interval_s / 3))
    looks: list[dict] = []
    killed_s = rollback_s = None
    rollback_look = None
    reasons: tuple[str, ...] = ()
    try:
        for look in range(1, int(duration_s / interval_s) + 1):
            await asyncio.sleep(start + look * interval_s - time.perf_counter())
            decision = assess(router.stats(), analysis)
            looks.append(
                {"look": look, "t_s": round(time.perf_counter() - start, 3), "action": decision.action}
            )
            if decision.action == "rollback":
                router.set_canary_weight(0.0)
                rollback_s, rollback_look, reasons = time.perf_counter() - start, look, decision.reasons
                break
            if look == kill_at_look:
                os.kill(arms.predictor(CANARY).pid, signal.SIGKILL)
                killed_s = time.perf_counter() - start
        result = await traffic
    finally:
        traffic.cancel()  # no-op once it finished; on an error, stop the load
        await router.aclose()
        arms.entries[CANARY].stop()
    summary = load_summary(result, router, answers)
    after = None if rollback_s is None or killed_s is None else rollback_s - killed_s
    return {
        **summary,
        "interval_s": interval_s,
        "killed_at_s": killed_s,
        "rollback_at_s": rollback_s,
        "rollback_after_kill_s": after,
        "looks_to_rollback": None
        if killed_s is None or rollback_look is None
        else rollback_look - kill_at_look,
        "rolled_back_before_kill": rollback_s is not None and killed_s is None,
        "reasons": list(reasons),
        "canary_users_answered_by_primary": answers.served_by_primary_for_canary,
        "looks": looks,
    }


async def primary_restart(
    arms: Arms,
    requests: Sequence[tuple[int, bytes]],
    *,
    rate: float,
    duration_s: float,
    canary_percent: float,
    retry_budget_s: float,
    start_timeout_s: float,
) -> dict:
    """Stop the primary (SIGTERM) a third into the run and start it again on the same port;
    requests meanwhile are retried by the router, none may be lost."""
    router = new_router(arms, canary_percent, retry_budget_s=retry_budget_s)
    answers = Answers()
    timeout_s = retry_budget_s + 10.0
    traffic = asyncio.ensure_future(
        open_loop(router_sender(router, requests, answers, seed=2), rate, duration_s, timeout_s=timeout_s)
    )
    try:
        await asyncio.sleep(duration_s / 3)
        down = time.perf_counter()
        await asyncio.to_thread(arms.restart_predictor, PRIMARY, start_timeout_s)
        downtime_s = time.perf_counter() - down
        result = await traffic
    finally:
        traffic.cancel()  # no-op once it finished; on an error, stop the load
        await router.aclose()
    return {**load_summary(result, router, answers), "downtime_s": downtime_s}


async def store_outage(
    arms: Arms,
    requests: Sequence[tuple[int, bytes]],
    redis: RedisServer,
    *,
    rate: float,
    duration_s: float,
    canary_percent: float,
) -> dict:
    """Freeze Redis (SIGSTOP: the online store hangs) for the middle third of the run: answers
    must stay bounded in time, degraded (features defaulted, the reason named), never failed."""
    router = new_router(arms, canary_percent, retry_budget_s=5.0)
    answers = Answers()
    traffic = asyncio.ensure_future(
        open_loop(router_sender(router, requests, answers, seed=3), rate, duration_s)
    )
    try:
        await asyncio.sleep(duration_s / 3)
        redis.freeze()
        try:
            await asyncio.sleep(duration_s / 3)
        finally:
            redis.thaw()
        result = await traffic
    finally:
        traffic.cancel()  # no-op once it finished; on an error, stop the load
        await router.aclose()
    return {**load_summary(result, router, answers), "store_down_s": duration_s / 3}
