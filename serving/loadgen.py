"""Open-loop load for a model server: fixed arrival rate, latency percentiles, errors.

An open-loop generator starts request ``i`` at ``t0 + i / rate`` whether or not earlier requests
have answered, the way independent users arrive; a slow server then shows up as latency and
errors instead of as a politely lowered rate (the coordinated-omission trap of closed loops).
Latency is measured from the request's *scheduled* start, so a generator that falls behind adds
its lag to the figures instead of hiding it.

``saturation`` is the closed-loop counterpart: ``concurrency`` senders back to back for a while,
the server's throughput ceiling.

Library use (``send(i)`` sends the ``i``-th request and returns its HTTP status; an exception is a
transport error)::

    result = await open_loop(send, rate_per_s=50, duration_s=10)
    print(result.p99_ms, result.errors)

Command line (V1 requests of ``--items`` candidates against a running server)::

    python -m serving.loadgen --url http://127.0.0.1:8080 --rate 50 --duration 10 --items 100
    python -m serving.loadgen --url http://127.0.0.1:8080 --saturate --concurrency 8
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass

import aiohttp
import numpy as np

from serving.analysis._checks import require_int, require_positive
from serving.upstream import client_session

Send = Callable[[int], Awaitable[int]]


@dataclass(frozen=True)
class LoadResult:
    """What one load run did: counts by outcome and latency over every answered request.

    ``errors`` are 5xx answers, transport errors and timeouts (the server's fault); ``rejected``
    are other non-2xx answers (4xx: the caller's). ``achieved_rate`` is answered requests per
    second of wall time, drain included. Percentiles are ``nan`` when nothing was answered.
    """

    sent: int
    ok: int
    errors: int
    rejected: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    achieved_rate: float
    target_rate: float | None = None

    @property
    def answered(self) -> int:
        return self.ok + self.rejected

    def to_dict(self) -> dict:
        return asdict(self)


class _Tally:
    def __init__(self) -> None:
        self.latencies_ms: list[float] = []
        self.ok = self.errors = self.rejected = 0

    async def one(self, send: Send, i: int, scheduled: float, timeout_s: float) -> None:
        try:
            status = await asyncio.wait_for(send(i), timeout_s)
        except Exception:  # transport error, timeout or a failing send: the server did not answer
            self.errors += 1
            return
        if 200 <= status < 300:
            self.ok += 1
        elif status >= 500 or status < 100:
            self.errors += 1
            return
        else:
            self.rejected += 1
        self.latencies_ms.append((time.perf_counter() - scheduled) * 1000.0)

    def result(self, sent: int, elapsed_s: float, target_rate: float | None) -> LoadResult:
        latencies = np.asarray(self.latencies_ms, dtype=np.float64)
        p50, p99, top = (
            (float(np.percentile(latencies, 50)), float(np.percentile(latencies, 99)), float(latencies.max()))
            if latencies.size
            else (math.nan, math.nan, math.nan)
        )
        return LoadResult(
            sent=sent,
            ok=self.ok,
            errors=self.errors,
            rejected=self.rejected,
            p50_ms=p50,
            p99_ms=p99,
            max_ms=top,
            achieved_rate=(self.ok + self.rejected) / elapsed_s if elapsed_s > 0 else 0.0,
            target_rate=target_rate,
        )


async def open_loop(
    send: Send, rate_per_s: float, duration_s: float, *, timeout_s: float = 10.0
) -> LoadResult:
    """Send ``round(rate_per_s * duration_s)`` requests at a fixed rate; wait for all of them
    (each bounded by ``timeout_s``, after which it counts as an error)."""
    for name, value in (("rate_per_s", rate_per_s), ("duration_s", duration_s), ("timeout_s", timeout_s)):
        require_positive(name, value, "a finite number")
    total = max(1, round(rate_per_s * duration_s))
    tally = _Tally()
    tasks: list[asyncio.Task] = []
    start = time.perf_counter()
    for i in range(total):
        scheduled = start + i / rate_per_s
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(tally.one(send, i, scheduled, timeout_s)))
    await asyncio.gather(*tasks)
    return tally.result(total, time.perf_counter() - start, rate_per_s)


async def saturation(
    send: Send, *, concurrency: int = 8, duration_s: float = 5.0, timeout_s: float = 10.0
) -> LoadResult:
    """Closed loop: ``concurrency`` senders, each sending its next request when the last one
    answers, for ``duration_s``; ``achieved_rate`` is the server's throughput ceiling."""
    require_int("concurrency", concurrency, 1)
    for name, value in (("duration_s", duration_s), ("timeout_s", timeout_s)):
        require_positive(name, value, "a finite number")
    tally = _Tally()
    counter = iter(range(1 << 62))
    start = time.perf_counter()
    stop_at = start + duration_s

    async def sender() -> int:
        sent = 0
        while time.perf_counter() < stop_at:
            await tally.one(send, next(counter), time.perf_counter(), timeout_s)
            sent += 1
        return sent

    sent = sum(await asyncio.gather(*(sender() for _ in range(concurrency))))
    return tally.result(sent, time.perf_counter() - start, None)


def v1_ranking_bodies(
    *, items: int = 100, users: int = 1000, item_pool: int = 5000, count: int = 512, seed: int = 0
) -> list[bytes]:
    """Pre-encoded V1 ranking requests: random users, ``items`` distinct candidates each."""
    rng = np.random.default_rng(seed)
    bodies = []
    for _ in range(count):
        candidates = rng.choice(np.arange(1, item_pool + 1), size=min(items, item_pool), replace=False)
        instance = {
            "user_id": int(rng.integers(1, users + 1)),
            "item_ids": candidates.tolist(),
            "context": {"device": "mobile", "surface": "home", "hour": int(rng.integers(0, 24))},
        }
        bodies.append(json.dumps({"instances": [instance]}).encode())
    return bodies


def aiohttp_sender(session: aiohttp.ClientSession, url: str, bodies: Sequence[bytes]) -> Send:
    """A ``send`` that POSTs ``bodies[i % len(bodies)]`` to ``url`` with an ``aiohttp`` session
    (cheaper on the CPU than httpx, see :mod:`serving.upstream`: the generator shares the
    machine with the servers it measures)."""

    async def send(i: int) -> int:
        async with session.post(
            url, data=bodies[i % len(bodies)], headers={"content-type": "application/json"}
        ) as reply:
            await reply.read()
            return reply.status

    return send


async def _main_async(args: argparse.Namespace) -> LoadResult:
    url = f"{args.url.rstrip('/')}/v1/models/{args.model_name}:predict"
    bodies = v1_ranking_bodies(items=args.items, users=args.users, item_pool=args.item_pool)
    async with client_session(max_connections=args.connections, timeout_s=args.timeout) as session:
        send = aiohttp_sender(session, url, bodies)
        await open_loop(send, rate_per_s=min(args.rate, 20.0), duration_s=1.0)  # warm-up
        if args.saturate:
            return await saturation(send, concurrency=args.concurrency, duration_s=args.duration)
        return await open_loop(send, args.rate, args.duration, timeout_s=args.timeout)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m serving.loadgen",
        description="Open-loop (or closed-loop --saturate) V1 ranking load against a model server.",
        epilog="example: python -m serving.loadgen --url http://127.0.0.1:8080 --rate 50 --duration 10",
    )
    parser.add_argument("--url", required=True, help="base URL of the server (or router)")
    parser.add_argument("--model-name", default="ranker")
    parser.add_argument("--rate", type=float, default=50.0, help="requests per second (open loop)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of load")
    parser.add_argument("--items", type=int, default=100, help="candidates per request")
    parser.add_argument("--users", type=int, default=1000, help="user ids drawn from 1..N")
    parser.add_argument("--item-pool", type=int, default=5000, help="item ids drawn from 1..N")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds before a request is an error")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--saturate", action="store_true", help="closed loop: the throughput ceiling")
    parser.add_argument("--concurrency", type=int, default=8, help="senders with --saturate")
    args = parser.parse_args(argv)
    try:
        result = asyncio.run(_main_async(args))
    except ValueError as error:
        parser.exit(2, f"error: {error}\n")
    print(json.dumps(result.to_dict()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
