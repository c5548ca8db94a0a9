"""Simulated e-commerce impression logs, written as Parquet per the data contract.

``simulate(config, output_dir)`` writes

- ``events/part-00000.parquet`` ...: one row per impression, time-ordered, ``chunk_rows`` a file,
- ``users.parquet`` and ``items.parquet``,

from the ground truth in :class:`pipelines.sim_world.World`, which also answers online requests
(``World.respond``) for the A/B test. The same config gives byte-identical files: randomness is
drawn per fixed-size block of requests, so it does not depend on ``chunk_rows`` either.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from tqdm.auto import tqdm

from pipelines.sim_config import SimulationConfig
from pipelines.sim_text import CATEGORIES
from pipelines.sim_world import (
    AGE_BUCKETS,
    DEVICES,
    GENDERS,
    REGIONS,
    STREAM_BLOCKS,
    STREAM_REQUESTS,
    SURFACES,
    Impressions,
    Outcomes,
    SlateOutcome,
    World,
    stream,
)

__all__ = [
    "EVENT_SCHEMA",
    "ITEM_SCHEMA",
    "USER_SCHEMA",
    "SimulationConfig",
    "SimulationSummary",
    "SlateOutcome",
    "World",
    "simulate",
]

_TS = pa.timestamp("us", tz="UTC")
EVENT_SCHEMA = pa.schema(
    [
        ("event_id", pa.int64()),
        ("ts", _TS),
        ("request_id", pa.int64()),
        ("user_id", pa.int64()),
        ("item_id", pa.int64()),
        ("position", pa.int16()),
        ("device", pa.string()),
        ("surface", pa.string()),
        ("hour", pa.int8()),
        ("click", pa.int8()),
        ("conversion", pa.int8()),
        ("dwell", pa.float32()),
    ]
)
USER_SCHEMA = pa.schema(
    [
        ("user_id", pa.int64()),
        ("age_bucket", pa.string()),
        ("gender", pa.string()),
        ("region", pa.string()),
        ("signup_ts", _TS),
    ]
)
ITEM_SCHEMA = pa.schema(
    [
        ("item_id", pa.int64()),
        ("category", pa.string()),
        ("brand", pa.string()),
        ("price", pa.float32()),
        ("title", pa.string()),
        ("created_ts", _TS),
    ]
)

_BLOCK_REQUESTS = 4_096  # randomness granularity; fixed so files do not depend on chunk_rows
_OUTPUT_FILES = ("users.parquet", "items.parquet")


@dataclass(frozen=True)
class SimulationSummary:
    """What ``simulate`` wrote, with the realised base rates."""

    output_dir: str
    num_events: int
    num_requests: int
    num_users: int
    num_items: int
    num_cold_start_items: int  # created after config.start
    event_files: tuple[str, ...]
    first_event: str
    last_event: str
    ctr: float  # clicks per impression
    cvr: float  # conversions per click
    seconds: float

    def to_dict(self) -> dict:
        return asdict(self)


def _strings(values: tuple[str, ...] | list[str], index: np.ndarray) -> pa.Array:
    return pc.take(pa.array(values, pa.string()), pa.array(index))


def users_table(world: World) -> pa.Table:
    n = world.config.num_users
    columns = [
        pa.array(np.arange(1, n + 1, dtype=np.int64)),
        _strings(AGE_BUCKETS, world.age),
        _strings(GENDERS, world.gender),
        _strings(REGIONS, world.region),
        pa.array(world.signup_us, _TS),
    ]
    return pa.Table.from_arrays(columns, schema=USER_SCHEMA)


def items_table(world: World) -> pa.Table:
    m = world.config.num_items
    categories = [c.name for c in CATEGORIES[: world.config.num_categories]]
    columns = [
        pa.array(np.arange(1, m + 1, dtype=np.int64)),
        _strings(categories, world.category),
        _strings(world.brand_names, world.brand),
        pa.array(world.price, pa.float32()),
        pa.array(world.titles, pa.string()),
        pa.array(world.created_us, _TS),
    ]
    return pa.Table.from_arrays(columns, schema=ITEM_SCHEMA)


def _events_table(
    world: World, first_event_id: int, slate_size: int, imp: Impressions, out: Outcomes
) -> pa.Table:
    event_id = np.arange(first_event_id, first_event_id + len(imp), dtype=np.int64)
    columns = [
        pa.array(event_id),
        pa.array(imp.ts_us, _TS),
        pa.array(event_id // slate_size),
        pa.array(imp.user_idx.astype(np.int64) + 1),
        pa.array(imp.item_idx.astype(np.int64) + 1),
        pa.array(imp.position.astype(np.int16)),
        _strings(DEVICES, imp.device),
        _strings(SURFACES, imp.surface),
        pa.array(world.local_hour(imp.user_idx, imp.ts_us).astype(np.int8)),
        pa.array(out.click),
        pa.array(out.conversion),
        pa.array(out.dwell),
    ]
    return pa.Table.from_arrays(columns, schema=EVENT_SCHEMA)


def _event_blocks(world: World) -> Iterator[pa.Table]:
    """Time-ordered event tables, one per block of requests; the last slate may be cut."""
    cfg = world.config
    num_requests = -(-cfg.num_impressions // cfg.slate_size)
    requests = world.sample_requests(num_requests, stream(cfg.seed, STREAM_REQUESTS))
    requests = requests.take(np.argsort(requests.ts_us, kind="stable"))
    for block, first in enumerate(range(0, num_requests, _BLOCK_REQUESTS)):
        rng = stream(cfg.seed, STREAM_BLOCKS, block)
        batch = requests.take(slice(first, first + _BLOCK_REQUESTS))
        imp = world.expand(batch, world.logging_policy_slates(batch.ts_us, rng))
        first_event = first * cfg.slate_size
        keep = min(len(imp), cfg.num_impressions - first_event)
        imp = imp.head(keep)
        yield _events_table(world, first_event, cfg.slate_size, imp, world.draw_outcomes(imp, rng))


def _prepare_output(output_dir: Path, overwrite: bool) -> Path:
    events_dir = output_dir / "events"
    existing = [output_dir / name for name in _OUTPUT_FILES if (output_dir / name).exists()]
    existing += sorted(events_dir.glob("part-*.parquet")) if events_dir.is_dir() else []
    if existing and not overwrite:
        raise FileExistsError(
            f"{output_dir} already holds simulated data ({existing[0].name} and "
            f"{len(existing) - 1} more); choose another output_dir or pass overwrite=True"
        )
    for path in existing:
        path.unlink()
    events_dir.mkdir(parents=True, exist_ok=True)
    return events_dir


def simulate(
    config: SimulationConfig, output_dir: Path, progress: bool = True, overwrite: bool = False
) -> SimulationSummary:
    """Simulate ``config.num_impressions`` impressions and write them with users and items.

    Existing simulator files in ``output_dir`` are replaced only with ``overwrite=True``.
    Memory stays bounded by ``chunk_rows`` plus one block of requests.
    """
    started = time.perf_counter()
    output_dir = Path(output_dir)
    events_dir = _prepare_output(output_dir, overwrite)
    world = World.from_config(config)
    pq.write_table(users_table(world), output_dir / "users.parquet")
    pq.write_table(items_table(world), output_dir / "items.parquet")

    files: list[str] = []
    pending: list[pa.Table] = []
    pending_rows = clicks = conversions = 0
    first_ts = last_ts = None

    def flush(rows: int) -> None:
        nonlocal pending, pending_rows
        table = pa.concat_tables(pending)
        path = events_dir / f"part-{len(files):05d}.parquet"
        pq.write_table(table.slice(0, rows), path, row_group_size=rows)
        files.append(str(path))
        pending = [table.slice(rows)]
        pending_rows -= rows

    with tqdm(total=config.num_impressions, unit="ev", desc="simulate", disable=not progress) as bar:
        for table in _event_blocks(world):
            clicks += pc.sum(table["click"]).as_py() or 0
            conversions += pc.sum(table["conversion"]).as_py() or 0
            first_ts = first_ts or table["ts"][0].as_py()
            last_ts = table["ts"][-1].as_py()
            pending.append(table)
            pending_rows += len(table)
            while pending_rows >= config.chunk_rows:
                flush(config.chunk_rows)
            bar.update(len(table))
        if pending_rows:
            flush(pending_rows)

    return SimulationSummary(
        output_dir=str(output_dir),
        num_events=config.num_impressions,
        num_requests=-(-config.num_impressions // config.slate_size),
        num_users=config.num_users,
        num_items=config.num_items,
        num_cold_start_items=int(np.sum(world.created_us > world.start_us)),
        event_files=tuple(files),
        first_event=first_ts.isoformat(),
        last_event=last_ts.isoformat(),
        ctr=clicks / config.num_impressions,
        cvr=conversions / clicks if clicks else 0.0,
        seconds=time.perf_counter() - started,
    )
