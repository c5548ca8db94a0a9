"""Feature tables for the Feast repo, computed from the raw events, users and items.

Every entity gets a row at `start` (the first snapshot, at or before the first event), because
Feast's file offline store drops an entity row that has no feature row at or before its
timestamp. Statistics are cumulative counts of events strictly before each snapshot, so a row
never carries information from its own time or later; a snapshot row is written only for the
entities whose counts changed since the previous one.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from feature_repo import (
    CREATED_FIELD,
    EMBEDDING_DIM,
    ITEM_PROFILE,
    ITEM_STATS,
    ITEM_TEXT_EMBEDDING,
    STAT_FEATURES,
    TIMESTAMP_FIELD,
    USER_PROFILE,
    USER_STATS,
    table_path,
)
from pipelines.feature_config import FeatureConfig
from pipelines.text_embeddings import embed_texts

EVENT_COLUMNS = ("ts", "user_id", "item_id", "click", "conversion")
USER_COLUMNS = ("user_id", "age_bucket", "gender", "region")
ITEM_COLUMNS = ("item_id", "category", "brand", "price", "title")


@dataclass(frozen=True)
class FeatureTables:
    """The Parquet tables of one run, one per feature view, in `directory`."""

    directory: Path
    start: datetime
    """First snapshot: every user and item has a row here, at or before the first event."""
    end: datetime
    """Last snapshot, after the last event: materialize up to here to serve every event's effect."""
    rows: dict[str, int]
    """Rows written per feature view."""

    def path(self, view: str) -> Path:
        return table_path(self.directory, view)


def build_feature_tables(data_dir: Path, out_dir: Path, config: FeatureConfig) -> FeatureTables:
    """Read `data_dir/{events/,users.parquet,items.parquet}` and write one table per view."""
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    events = read_events(data_dir, EVENT_COLUMNS)
    users = _read_table(data_dir / "users.parquet", USER_COLUMNS)
    items = _read_table(data_dir / "items.parquet", ITEM_COLUMNS)

    interval = pd.Timedelta(hours=config.stats_interval_hours)
    start = events["ts"].min().floor(interval)
    n_snapshots = int((events["ts"].max() - start) // interval) + 1
    end = start + n_snapshots * interval

    user_ids = np.union1d(users["user_id"].to_numpy(), events["user_id"].to_numpy())
    item_ids = np.union1d(items["item_id"].to_numpy(), events["item_id"].to_numpy())
    tables = {
        USER_PROFILE: _at(users[list(USER_COLUMNS)], start),
        USER_STATS: _stats(events, "user_id", "user", user_ids, start, interval, config),
        ITEM_PROFILE: _at(items[list(ITEM_COLUMNS[:-1])], start),
        ITEM_STATS: _stats(events, "item_id", "item", item_ids, start, interval, config),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    for view, frame in tables.items():
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), table_path(out_dir, view))
    embeddings = embed_texts(items["title"].tolist(), config)
    pq.write_table(
        _embedding_table(items["item_id"].to_numpy(), embeddings, start),
        table_path(out_dir, ITEM_TEXT_EMBEDDING),
    )
    rows = {view: len(frame) for view, frame in tables.items()} | {ITEM_TEXT_EMBEDDING: len(items)}
    return FeatureTables(out_dir, start.to_pydatetime(), end.to_pydatetime(), rows)


def read_events(data_dir: Path, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """The events in `data_dir/events/*.parquet` (all columns, or `columns`), in file order.

    Needs at least the columns feature tables are computed from (`EVENT_COLUMNS`).
    """
    path = Path(data_dir) / "events"
    files = sorted(path.glob("*.parquet")) if path.is_dir() else []
    if not files:
        raise FileNotFoundError(
            f"no events found: expected Parquet chunks {path}/part-*.parquet "
            "(write them with the simulator or point data_dir at a folder holding events/)"
        )
    schema = pq.read_schema(files[0])
    _require_columns(schema.names, EVENT_COLUMNS, path)
    selected = list(columns) if columns is not None else None
    frame = ds.dataset(files, format="parquet").to_table(columns=selected).to_pandas()
    if frame.empty:
        raise ValueError(f"{path} holds no events; feature tables need at least one")
    if getattr(frame["ts"].dtype, "tz", None) is None:
        raise ValueError(f"{path}: column ts must be a UTC timestamp (timestamp[us, tz=UTC])")
    return frame


def _read_table(path: Path, columns: Sequence[str]) -> pd.DataFrame:
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: expected the simulator's {path.name}")
    _require_columns(pq.read_schema(path).names, columns, path)
    return pq.read_table(path, columns=list(columns)).to_pandas()


def _require_columns(present: Sequence[str], required: Sequence[str], path: Path) -> None:
    missing = [c for c in required if c not in present]
    if missing:
        raise ValueError(f"{path} lacks column(s) {', '.join(missing)} (has: {', '.join(present)})")


def _at(frame: pd.DataFrame, when: pd.Timestamp) -> pd.DataFrame:
    """`frame` with every row stamped at `when` (event and created time)."""
    stamp = pd.Series(when, index=frame.index).astype("datetime64[us, UTC]")
    return frame.assign(**{TIMESTAMP_FIELD: stamp, CREATED_FIELD: stamp})


def _stats(
    events: pd.DataFrame,
    key: str,
    prefix: str,
    entity_ids: np.ndarray,
    start: pd.Timestamp,
    interval: pd.Timedelta,
    config: FeatureConfig,
) -> pd.DataFrame:
    """One zero row per entity at `start`, then one row at the end of each interval with events.

    The row at `start + (b + 1) * interval` counts the entity's events before that time, i.e. in
    intervals 0..b; its rates are smoothed toward the global rates over the same events.
    """
    bucket = ((events["ts"] - start) // interval).to_numpy(np.int64)
    counts = (
        pd.DataFrame(
            {
                key: events[key].to_numpy(),
                "bucket": bucket,
                "impressions": np.ones(len(events), np.int64),
                "clicks": events["click"].to_numpy(np.int64),
                "conversions": events["conversion"].to_numpy(np.int64),
            }
        )
        .groupby([key, "bucket"], sort=True)
        .sum()
    )
    cumulative = counts.groupby(level=key).cumsum().reset_index()

    n_buckets = int(bucket.max()) + 1
    totals = counts.groupby(level="bucket").sum().reindex(range(n_buckets), fill_value=0).cumsum()
    global_ctr = _rate(totals["clicks"].to_numpy(), totals["impressions"].to_numpy(), 0.0, 0.0)
    global_cvr = _rate(totals["conversions"].to_numpy(), totals["clicks"].to_numpy(), 0.0, 0.0)

    m = config.ctr_prior_strength
    b = cumulative["bucket"].to_numpy()
    changed = pd.DataFrame(
        {
            key: cumulative[key].to_numpy(),
            "impressions": cumulative["impressions"].to_numpy(),
            "clicks": cumulative["clicks"].to_numpy(),
            "conversions": cumulative["conversions"].to_numpy(),
            "ctr": _rate(cumulative["clicks"], cumulative["impressions"], global_ctr[b], m),
            "cvr": _rate(cumulative["conversions"], cumulative["clicks"], global_cvr[b], m),
            TIMESTAMP_FIELD: start + pd.to_timedelta((b + 1) * interval.value, unit="ns"),
        }
    )
    # Before the first event there is no global rate to smooth toward: the rates start at 0.
    zero = pd.DataFrame(
        {
            key: entity_ids,
            "impressions": 0,
            "clicks": 0,
            "conversions": 0,
            "ctr": 0.0,
            "cvr": 0.0,
            TIMESTAMP_FIELD: start,
        }
    )
    table = pd.concat([zero, changed], ignore_index=True)
    table[TIMESTAMP_FIELD] = table[TIMESTAMP_FIELD].astype("datetime64[us, UTC]")
    table[CREATED_FIELD] = table[TIMESTAMP_FIELD]
    table = table.astype(
        {"impressions": np.int64, "clicks": np.int64, "conversions": np.int64}
        | {"ctr": np.float32, "cvr": np.float32}
    )
    return table.rename(columns={c: f"{prefix}_{c}" for c in STAT_FEATURES})


def _rate(numerator, denominator, prior, strength: float) -> np.ndarray:
    """(numerator + strength * prior) / (denominator + strength); `prior` where that is 0/0."""
    numerator = np.asarray(numerator, dtype=np.float64)
    denominator = np.asarray(denominator, dtype=np.float64)
    prior = np.broadcast_to(np.asarray(prior, dtype=np.float64), numerator.shape)
    weight = denominator + strength
    safe = np.where(weight > 0, weight, 1.0)
    return np.where(weight > 0, (numerator + strength * prior) / safe, prior)


def _embedding_table(item_ids: np.ndarray, embeddings: np.ndarray, start: pd.Timestamp) -> pa.Table:
    flat = pa.array(embeddings.astype(np.float32).ravel(), type=pa.float32())
    vectors = pa.FixedSizeListArray.from_arrays(flat, EMBEDDING_DIM).cast(pa.list_(pa.float32()))
    stamp = pa.array(np.full(len(item_ids), start.value // 1000), type=pa.timestamp("us", tz="UTC"))
    return pa.table(
        {
            "item_id": pa.array(item_ids, type=pa.int64()),
            "text_embedding": vectors,
            TIMESTAMP_FIELD: stamp,
            CREATED_FIELD: stamp,
        }
    )
