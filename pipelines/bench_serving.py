"""`recforge bench serving`: the serving path under load and faults, on 127.0.0.1.

Two real ``python -m serving.server`` predictors (primary and canary, each reading Feast's online
store on a real Redis in-process, each pinned to its model version) behind the canary router,
driven by the open-loop generator :mod:`serving.loadgen` with ``--candidates`` items a request:

1. **load** — 50, 100 and 200 req/s for ``--duration`` s each: p50 / p99, failed, sent vs
   answered (lost), degraded answers; beside the baseline of 50 req/s straight to the primary
   predictor (no router), and 50 req/s with every primary request mirrored to the canary's
   server (shadow mode: its cost to users, and the comparison of the two servers);
2. **worker ceiling** — closed-loop saturation of one predictor worker (no router): req/s;
3. **store outage** — Redis frozen for the middle third of a run: answers stay bounded in time
   (degraded, never failed);
4. **primary restart** — the primary stopped and started again on its port mid-run: the router
   retries, nothing is lost;
5. **canary kill** — the canary's server SIGKILLed just after an analysis look; the canary
   analysis (:func:`serving.canary.assess`, the same code as the local canary) must roll back
   at the next look, and no user request may fail.

Before the servers start, the planned requests are also scored in this process both ways the
predictor can (:mod:`pipelines.bench_serving_scoring`): from full feature rows and against the
item table prepared for the model — their medians and ratio, measured in the same run.

``--entry transformer`` puts a Feast transformer (stamping its artifact's version) in front of
each arm's bare predictor: the router then talks to the transformers, the baseline and the
ceiling go through the primary's transformer, and the faults hit the predictors behind them.

Targets, printed with their ratio: p99 <= 10 ms at 50 req/s; >= 300 req/s per predictor worker;
every answer within 1 s while the store is frozen; rollback at the first look after the kill
(within one analysis interval); 0 failed user requests in the fault phases (load phases report
their errors) and 0 lost requests (sent but never answered) in every phase.
Exit status 0 after a run (1 with ``--strict`` when a target is missed), 2 on bad options.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from pipelines.bench_serving_phases import (
    Arms,
    canary_kill,
    direct,
    load,
    primary_restart,
    store_outage,
    worker_ceiling,
)
from pipelines.bench_serving_scoring import scoring_in_process
from pipelines.bench_serving_setup import RedisServer, ServingSetup, prepare
from pipelines.sim_config import SimulationConfig
from serving.assignment import ARMS, PRIMARY
from serving.canary import CanaryConfig
from serving.process import launch_arm

Say = Callable[[str], None]
ENTRIES = ("predictor", "transformer")


@dataclass(frozen=True)
class ServingBenchConfig:
    """One run of the serving benchmark; defaults are the issue's protocol."""

    rates: tuple[float, ...] = (50.0, 100.0, 200.0)
    duration_s: float = 60.0
    fault_duration_s: float = 30.0
    ceiling_s: float = 15.0
    ceiling_concurrency: int = 8
    candidates: int = 100
    canary_percent: int = 50
    interval_s: float = 1.0
    retry_budget_s: float = 60.0
    max_p99_guardrail_ms: float = 1000.0  # this shared box is noisy; the kill is what must trip it
    num_users: int = 2000
    num_items: int = 1000
    num_impressions: int = 40_000
    planned_requests: int = 1024
    scoring_rounds: int = 2
    server_start_timeout_s: float = 180.0
    entry: str = "predictor"  # or "transformer": a Feast transformer in front of each predictor

    def __post_init__(self) -> None:
        if not self.rates or any(not _positive(r) for r in self.rates):
            raise ValueError(f"rates: expected request rates > 0, e.g. 50,100,200; got {self.rates!r}")
        for name in ("duration_s", "fault_duration_s", "ceiling_s", "interval_s", "retry_budget_s"):
            if not _positive(getattr(self, name)):
                raise ValueError(f"{name}: expected seconds > 0, got {getattr(self, name)!r}")
        for name in ("ceiling_concurrency", "candidates", "num_users", "num_items", "num_impressions",
                     "scoring_rounds"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected an integer >= 1, got {value!r}")
        if self.entry not in ENTRIES:
            raise ValueError(f"entry: expected one of {', '.join(ENTRIES)}, got {self.entry!r}")
        if not 1 <= self.candidates <= 500:
            raise ValueError(f"candidates: expected 1-500 (the server's max_items), got {self.candidates}")
        if self.candidates > self.num_items:
            raise ValueError(f"candidates: at most num_items ({self.num_items}), got {self.candidates}")
        if self.fault_duration_s < 3 * self.interval_s:
            raise ValueError(
                f"fault_duration_s: expected at least 3 analysis intervals ({3 * self.interval_s:g} s), "
                f"got {self.fault_duration_s}"
            )

    @property
    def simulation(self) -> SimulationConfig:
        return SimulationConfig(
            num_users=self.num_users, num_items=self.num_items, num_impressions=self.num_impressions, days=4
        )

    @property
    def analysis(self) -> CanaryConfig:
        return CanaryConfig(
            canary_percent=self.canary_percent, min_requests_per_arm=20, max_p99_ms=self.max_p99_guardrail_ms
        )


QUICK = {
    "duration_s": 3.0,
    "fault_duration_s": 6.0,
    "ceiling_s": 3.0,
    "interval_s": 1.0,
    "retry_budget_s": 60.0,
    "num_users": 500,
    "num_items": 300,
    "num_impressions": 10_000,
    "planned_requests": 256,
    "scoring_rounds": 1,
}

TARGETS = {
    "p99_ms_at_50": 10.0,
    "worker_req_per_s": 300.0,
    "store_frozen_max_ms": 1000.0,  # bounded: the store's timeout is 0.1 s, queueing adds the rest
}


def _positive(value: object) -> bool:
    return (
        isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0
    )


class ServingBench:
    def __init__(self, config: ServingBenchConfig, workdir: Path, say: Say) -> None:
        self.config = config
        self.workdir = Path(workdir)
        self.say = say

    def run(self) -> dict:
        started = time.perf_counter()
        redis = RedisServer(self.workdir)
        try:
            setup = prepare(
                self.workdir,
                redis.address,
                self.config.simulation,
                candidates=self.config.candidates,
                num_requests=self.config.planned_requests,
                say=self.say,
            )
            self.say(
                f"scoring in process: full rows vs the prepared item table, {self.config.scoring_rounds} "
                "pass(es) over the planned requests"
            )
            scoring = scoring_in_process(
                setup.artifacts[PRIMARY],
                setup.feature_dir,
                [body for _, body in setup.requests],
                self.config.scoring_rounds,
            )
            arms = self._start_arms(setup)
            # The router shares this process with the training that just ran: keep the
            # collector's full passes over what is left out of the measured requests.
            gc.collect()
            gc.freeze()
            try:
                results = asyncio.run(self._measure(arms, setup, redis))
            finally:
                gc.unfreeze()
                arms.stop()
        finally:
            redis.stop()
        results["scoring"] = scoring
        results["config"] = asdict(self.config)
        results["targets"] = targets(results, self.config)
        results["wall_s"] = time.perf_counter() - started
        return results

    def _start_arms(self, setup: ServingSetup) -> Arms:
        transformer = self.config.entry == "transformer"
        arms = Arms({}, dict(setup.versions), dict(setup.artifacts), setup.feature_dir, transformer)
        try:
            for arm in ARMS:
                arms.entries[arm] = launch_arm(
                    self.workdir, arm, setup.artifacts[arm], setup.feature_dir, transformer=transformer
                )
            for entry in arms.entries.values():
                entry.wait_ready(self.config.server_start_timeout_s)
        except BaseException:
            arms.stop()
            raise
        return arms

    async def _measure(self, arms: Arms, setup: ServingSetup, redis: RedisServer) -> dict:
        config, requests = self.config, setup.requests
        self.say("warming up (2 s at 20 req/s)")
        await load(arms, requests, 20.0, 2.0, config.canary_percent)
        bodies = [body for _, body in requests]
        results: dict = {"load": []}
        self.say(f"baseline: 50 req/s straight to the primary's {config.entry} for {config.duration_s:g} s")
        results["direct"] = await direct(arms.url(PRIMARY), bodies, 50.0, config.duration_s)
        for rate in config.rates:
            self.say(f"load: {rate:g} req/s for {config.duration_s:g} s")
            results["load"].append(await load(arms, requests, rate, config.duration_s, config.canary_percent))
        self.say("shadow: 50 req/s, every primary request mirrored to the canary's server")
        results["shadow"] = await load(
            arms, requests, 50.0, config.fault_duration_s, config.canary_percent, shadow_percent=100.0
        )
        self.say(f"worker ceiling: closed loop, {config.ceiling_concurrency} senders, {config.ceiling_s:g} s")
        results["worker_ceiling"] = await worker_ceiling(
            arms.url(PRIMARY), bodies, config.ceiling_s, config.ceiling_concurrency
        )
        fault = {"rate": 50.0, "duration_s": config.fault_duration_s, "canary_percent": config.canary_percent}
        self.say("fault: online store (Redis) frozen for a third of the run")
        results["store_outage"] = await store_outage(arms, requests, redis, **fault)
        self.say("fault: primary restarted mid-run")
        results["primary_restart"] = await primary_restart(
            arms,
            requests,
            **fault,
            retry_budget_s=config.retry_budget_s,
            start_timeout_s=config.server_start_timeout_s,
        )
        self.say(f"fault: canary killed; analysis every {config.interval_s:g} s")
        results["canary_kill"] = await canary_kill(
            arms, requests, **fault, interval_s=config.interval_s, analysis=config.analysis
        )
        return results


def targets(results: dict, config: ServingBenchConfig) -> dict[str, dict]:
    """Each target: the measured value, the target, their ratio and whether it is met."""
    at_50 = next((run for run in results["load"] if run["target_rate"] == 50.0), None)
    kill = results["canary_kill"]
    faults = [results["store_outage"], results["primary_restart"], kill]
    checks = {
        "p99_ms_at_50_req_s": (None if at_50 is None else at_50["p99_ms"], TARGETS["p99_ms_at_50"], "<="),
        "req_per_s_per_worker": (
            results["worker_ceiling"]["achieved_rate"],
            TARGETS["worker_req_per_s"],
            ">=",
        ),
        "store_frozen_max_ms": (results["store_outage"]["max_ms"], TARGETS["store_frozen_max_ms"], "<="),
        "analysis_looks_to_rollback": (kill["looks_to_rollback"], 1, "<="),
        "failed_requests_in_faults": (sum(p["failed"] for p in faults), 0, "<="),
        "lost_requests": (sum(p["lost"] for p in [*results["load"], *faults]), 0, "<="),
    }
    out = {}
    for name, (value, target, sense) in checks.items():
        met = value is not None and (value <= target if sense == "<=" else value >= target)
        ratio = None if value is None or not target else value / target
        out[name] = {"value": value, "target": f"{sense} {target:g}", "ratio": ratio, "met": met}
    return out


def report(results: dict, say: Say) -> None:
    """The table of phases, then the targets."""
    say("")
    say(
        f"{'phase':<26}{'sent':>7}{'answered':>9}{'lost':>6}{'failed':>7}{'degraded':>9}"
        f"{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}{'req/s':>8}"
    )
    rows = [("direct 50 req/s (baseline)", results["direct"])]
    rows += [(f"load {run['target_rate']:g} req/s", run) for run in results["load"]]
    rows += [
        ("load 50 + shadow 100 %", results["shadow"]),
        ("worker ceiling (closed)", results["worker_ceiling"]),
        ("store frozen", results["store_outage"]),
        ("primary restart", results["primary_restart"]),
        ("canary killed", results["canary_kill"]),
    ]
    for name, run in rows:
        say(
            f"{name:<26}{run['sent']:>7}{run.get('answered', run['ok'] + run['rejected']):>9}"
            f"{run.get('lost', 0):>6}{run['errors']:>7}{run.get('degraded', 0):>9}"
            f"{run['p50_ms']:>9.1f}{run['p99_ms']:>9.1f}{run['max_ms']:>9.1f}{run['achieved_rate']:>8.1f}"
        )
    kill, restart = results["canary_kill"], results["primary_restart"]
    say("")
    at_50 = next((run for run in results["load"] if run["target_rate"] == 50.0), None)
    if at_50 is not None:
        base = results["direct"]
        say(
            f"router vs straight to the predictor at 50 req/s: p50 {at_50['p50_ms'] / base['p50_ms']:.2f}x, "
            f"p99 {at_50['p99_ms'] / base['p99_ms']:.2f}x"
        )
    scoring = results.get("scoring")
    if scoring is not None:
        say(
            f"scoring in process, one thread, {scoring['requests']} requests: full rows p50 "
            f"{scoring['full_rows_p50_ms']:.2f} ms, prepared item table p50 "
            f"{scoring['prepared_p50_ms']:.2f} ms ({scoring['ratio']:.2f}x); "
            f"largest score difference {scoring['max_abs_difference']:.1e}"
        )
    shadow = results["shadow"]["shadow"]
    scores = "; ".join(
        f"{task} KS D {c['ks_statistic']:.3f}, mean shift {c['mean_shift']:+.4f}"
        for task, c in shadow["scores"].items()
    )
    rank, latency = shadow["rank"], shadow["latency_ms"]
    say(
        f"shadow: {shadow['compared']} compared, {shadow['requests']['dropped']} dropped; {scores}; "
        f"top-{rank['top_k']} overlap {_f(rank['top_k_overlap'])}, Kendall tau {_f(rank['kendall_tau'])}; "
        f"p50/p99 ms primary {_f(latency['primary']['p50'])}/{_f(latency['primary']['p99'])}, "
        f"shadow {_f(latency['shadow']['p50'])}/{_f(latency['shadow']['p99'])}"
    )
    say(
        f"canary killed at {_s(kill['killed_at_s'])}, rolled back at {_s(kill['rollback_at_s'])} "
        f"(analysis every {kill['interval_s']:g} s, {kill['looks_to_rollback']} look(s) after the kill): "
        f"{'; '.join(kill['reasons']) or 'no rollback'}"
    )
    say(
        f"primary down for {restart['downtime_s']:.1f} s; "
        f"store frozen for {results['store_outage']['store_down_s']:.1f} s"
    )
    say("")
    say(f"{'target':<26}{'value':>10}{'target':>12}{'ratio':>8}  met")
    for name, check in results["targets"].items():
        value = "n/a" if check["value"] is None else f"{check['value']:.3g}"
        ratio = "n/a" if check["ratio"] is None else f"{check['ratio']:.2f}"
        say(f"{name:<26}{value:>10}{check['target']:>12}{ratio:>8}  {'yes' if check['met'] else 'NO'}")


def _f(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3g}"


def _s(value: float | None) -> str:
    return "never" if value is None else f"{value:.2f} s"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="recforge bench serving",
        description="Serving under open-loop load and faults: router, two KServe predictors, Feast on Redis.",
        epilog="example: recforge bench serving --duration 60 --json serving.json   (quick: --quick)",
    )
    parser.add_argument(
        "--duration", type=float, default=ServingBenchConfig.duration_s, help="seconds per load rate"
    )
    parser.add_argument("--rates", default="50,100,200", help="comma-separated req/s, e.g. 50,100,200")
    parser.add_argument(
        "--candidates", type=int, default=ServingBenchConfig.candidates, help="items per request"
    )
    parser.add_argument(
        "--fault-duration",
        type=float,
        default=ServingBenchConfig.fault_duration_s,
        help="seconds per fault run",
    )
    parser.add_argument(
        "--interval", type=float, default=ServingBenchConfig.interval_s, help="canary analysis interval"
    )
    parser.add_argument(
        "--entry",
        choices=ENTRIES,
        default="predictor",
        help="each arm: a predictor reading Feast in-process, or a Feast transformer in front of it",
    )
    parser.add_argument(
        "--quick", action="store_true", help="a few seconds per phase on a small world (tests)"
    )
    parser.add_argument("--workdir", type=Path, help="keep the store, models and server logs here")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        rates = tuple(float(r) for r in args.rates.split(",") if r.strip())
    except ValueError:
        parser.exit(
            2, f"recforge bench serving: rates: expected numbers like 50,100,200, got {args.rates!r}\n"
        )
    options = {
        "rates": rates,
        "duration_s": args.duration,
        "fault_duration_s": args.fault_duration,
        "candidates": args.candidates,
        "interval_s": args.interval,
        "entry": args.entry,
    }
    if args.quick:
        options |= QUICK
    try:
        config = ServingBenchConfig(**options)
    except ValueError as error:
        parser.exit(2, f"recforge bench serving: {error}\n")
    say = print
    with tempfile.TemporaryDirectory(prefix="bench-serving-") as scratch:
        workdir = args.workdir or Path(scratch)
        workdir.mkdir(parents=True, exist_ok=True)
        try:
            results = ServingBench(config, workdir, lambda m: say(m, flush=True)).run()
        except RuntimeError as error:  # no redis-server; a server that did not start (its log's tail)
            print(f"recforge bench serving: {error}", file=sys.stderr)
            return 1
    report(results, say)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
        say(f"wrote {args.json}")
    return 1 if args.strict and not all(c["met"] for c in results["targets"].values()) else 0


if __name__ == "__main__":
    sys.exit(main())
