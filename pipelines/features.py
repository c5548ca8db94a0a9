"""The feature step: a run's own Feast store, training sets, materialization, online lookups.

The run's store lives in its output folder (`create_store(feature_dir)`) and registers the
definitions of `feature_repo/` with tables read from `feature_dir`; the user's `feature_repo/`
is never written.

Training sets are point-in-time correct: each event row gets, per feature view, the latest
row at or before the event's `ts` (Feast's `get_historical_features`). The item text
embedding is static, so `training_frame` leaves it out of the per-event join (384 floats per
row would dominate the join) and `item_text_embeddings` fetches it through Feast once per item
for the training code to gather by item.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytz
import yaml
from feast import FeatureStore, FileSource

import feature_repo
from feature_repo import (
    EMBEDDING_DIM,
    FEATURES,
    ITEM_PROFILE,
    ITEM_STATS,
    ITEM_TEXT_EMBEDDING,
    TIMESTAMP_FIELD,
    USER_PROFILE,
    USER_STATS,
)
from pipelines.feature_config import FeatureConfig
from pipelines.feature_tables import FeatureTables, build_feature_tables
from pipelines.text_embeddings import embed_texts

__all__ = [
    "FeatureConfig",
    "FeatureTables",
    "OnlineFeatures",
    "build_feature_tables",
    "create_store",
    "embed_texts",
    "item_text_embeddings",
    "materialize",
    "online_features",
    "training_frame",
]

_STORE_MARKER = "# Written by pipelines.features.create_store; rewritten on every call.\n"
_KEYS = ("user_id", "item_id", "ts")
_USER_VIEWS = (USER_PROFILE, USER_STATS)
_ITEM_VIEWS = (ITEM_PROFILE, ITEM_STATS, ITEM_TEXT_EMBEDDING)
# The static text embedding is left out of per-event joins (see the module docstring).
_ENTITY_VIEWS = (("user_id", _USER_VIEWS), ("item_id", (ITEM_PROFILE, ITEM_STATS)))
_AS_OF = "__feature_as_of_us"


def create_store(feature_dir: Path, config: FeatureConfig) -> FeatureStore:
    """Write `feature_dir/feature_store.yaml` and apply feature_repo's definitions to it.

    Registry and SQLite online store live in `feature_dir`, and so do the feature tables.
    """
    feature_dir = Path(feature_dir).resolve()
    settings = feature_dir / "feature_store.yaml"
    if settings.exists() and not settings.read_text().startswith(_STORE_MARKER):
        raise FileExistsError(
            f"{settings} was not written by create_store; refusing to overwrite it. "
            "Pass an empty folder or the run's own feature folder as feature_dir."
        )
    feature_dir.mkdir(parents=True, exist_ok=True)
    settings.write_text(_STORE_MARKER + yaml.safe_dump(_store_settings(feature_dir, config)))
    store = FeatureStore(repo_path=str(feature_dir))
    store.apply(feature_repo.definitions(feature_dir))
    return store


def _store_settings(feature_dir: Path, config: FeatureConfig) -> dict[str, Any]:
    online: dict[str, Any] = (
        {"type": "redis", "connection_string": config.redis_connection_string}
        if config.online_store == "redis"
        else {"type": "sqlite", "path": str(feature_dir / "online_store.db")}
    )
    return {
        "project": "recforge",
        "provider": "local",
        "registry": str(feature_dir / "registry.db"),
        "online_store": online,
        "offline_store": {"type": "file"},
        "entity_key_serialization_version": 3,
    }


def training_frame(store: FeatureStore, events: pd.DataFrame) -> pd.DataFrame:
    """`events` (same rows, same order) with every ranking feature except the text embedding.

    `events` needs `user_id`, `item_id` and a tz-aware `ts`; all its other columns are kept.
    Features are joined as of `ts` by Feast: a feature row stamped after an event never
    reaches it. Rows Feast cannot match keep nulls rather than disappear.
    """
    _require_event_columns(events)
    frame = events.reset_index(drop=True)
    ts = _micros(frame["ts"])
    for entity, views in _ENTITY_VIEWS:
        as_of = _as_of(store, views, ts)
        keys = pd.DataFrame({entity: frame[entity].to_numpy(), _AS_OF: as_of}).drop_duplicates()
        entity_df = pd.DataFrame(
            {entity: keys[entity].to_numpy(), TIMESTAMP_FIELD: _timestamps(keys[_AS_OF])}
        )
        joined = store.get_historical_features(
            entity_df=entity_df, features=_feature_refs(views)
        ).to_df()
        joined[_AS_OF] = _micros(joined.pop(TIMESTAMP_FIELD))
        frame = (
            frame.assign(**{_AS_OF: as_of})
            .merge(joined, on=[entity, _AS_OF], how="left", validate="many_to_one")
            .drop(columns=_AS_OF)
        )
    return frame


def _as_of(store: FeatureStore, views: Sequence[str], ts: np.ndarray) -> np.ndarray:
    """For each event time, the latest time at which any of `views` has a feature row.

    Nothing happens in the views' tables between that time and the event, so Feast's
    point-in-time join gives the same row for both; but the distinct (entity, time) pairs
    shrink from one per event to at most one per entity and snapshot, and Feast's file store
    joins every entity row with all of that entity's feature rows. Falls back to the event
    times themselves when a source is not a file or a TTL is shorter than the history, where
    the shortcut would not be exact.
    """
    stamps = []
    for name in views:
        view = store.get_feature_view(name)
        source = view.batch_source
        if not isinstance(source, FileSource):
            return ts
        path = FileSource.get_uri_for_file_path(store.repo_path, source.path)
        column = pq.read_table(path, columns=[source.timestamp_field]).column(0)
        times = np.unique(_micros(column.to_pandas()))
        ttl_us = view.ttl.total_seconds() * 1e6 if view.ttl else 0
        if len(times) == 0 or (ttl_us and ts.max() - times[0] >= ttl_us):
            return ts
        stamps.append(times)
    times = np.unique(np.concatenate(stamps))
    latest = np.searchsorted(times, ts, side="right") - 1
    return np.where(latest >= 0, times[np.maximum(latest, 0)], ts)


def _micros(timestamps: pd.Series) -> np.ndarray:
    """tz-aware timestamps as int64 microseconds since the epoch (UTC)."""
    return timestamps.dt.tz_convert("UTC").dt.as_unit("us").astype("int64").to_numpy()


def _timestamps(micros: pd.Series) -> pd.DatetimeIndex:
    """Inverse of `_micros`, in pytz's UTC, which keeps Feast off its per-row conversion."""
    return pd.to_datetime(micros.to_numpy(), unit="us").tz_localize(pytz.UTC)


def item_text_embeddings(
    store: FeatureStore, item_ids: Sequence[int], as_of: datetime
) -> np.ndarray:
    """float32 [len(item_ids), 384]: each item's embedding as of `as_of`; zeros if it has none."""
    ids = np.asarray(item_ids, dtype=np.int64)
    keys = pd.DataFrame({"item_id": np.unique(ids)})
    keys[TIMESTAMP_FIELD] = pd.Timestamp(_utc(as_of, "as_of")).tz_convert(pytz.UTC)
    joined = store.get_historical_features(
        entity_df=keys, features=_feature_refs((ITEM_TEXT_EMBEDDING,))
    ).to_df()
    by_item = dict(zip(joined["item_id"], joined["text_embedding"], strict=True))
    out = np.zeros((len(ids), EMBEDDING_DIM), dtype=np.float32)
    for row, item in enumerate(ids):
        vector = by_item.get(item)
        if vector is not None and len(vector) == EMBEDDING_DIM:
            out[row] = vector
    return out


def materialize(store: FeatureStore, end: datetime) -> None:
    """Load every feature row stamped up to `end` (inclusive) into the online store."""
    store.materialize_incremental(end_date=_utc(end, "end"))


@dataclass(frozen=True)
class OnlineFeatures:
    """Online feature values; None where the store has no value (unknown id): serving defaults."""

    user: dict[str, Any]
    """Feature name -> value for the requested user."""
    items: dict[str, list[Any]]
    """Feature name -> values aligned with the requested item ids."""


def online_features(store: FeatureStore, user_id: int, item_ids: Sequence[int]) -> OnlineFeatures:
    """The `ranking` service's features for one user and their candidate items, in one lookup."""
    _require_int("user_id", user_id)
    for position, item_id in enumerate(item_ids):
        _require_int(f"item_ids[{position}]", item_id)
    views = _USER_VIEWS + _ITEM_VIEWS if len(item_ids) else _USER_VIEWS
    rows = {"user_id": [int(user_id)] * max(len(item_ids), 1)}
    if len(item_ids):
        rows["item_id"] = [int(i) for i in item_ids]
    values = store.get_online_features(features=_feature_refs(views), entity_rows=rows).to_dict()
    return OnlineFeatures(
        user={name: values[name][0] for view in _USER_VIEWS for name in FEATURES[view]},
        items={
            name: values[name] if len(item_ids) else []
            for view in _ITEM_VIEWS
            for name in FEATURES[view]
        },
    )


def _feature_refs(views: Sequence[str]) -> list[str]:
    return [f"{view}:{name}" for view in views for name in FEATURES[view]]


def _require_event_columns(events: pd.DataFrame) -> None:
    missing = [c for c in _KEYS if c not in events.columns]
    if missing:
        raise ValueError(
            f"events lack column(s) {', '.join(missing)}; training_frame needs user_id, item_id, ts"
        )
    if getattr(events["ts"].dtype, "tz", None) is None:
        raise ValueError("events.ts must be tz-aware UTC timestamps (timestamp[us, tz=UTC])")


def _require_int(field: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{field}={value!r} must be an integer id")


def _utc(moment: datetime, field: str) -> datetime:
    if moment.tzinfo is None:
        raise ValueError(f"{field}={moment!r} must be timezone-aware, e.g. datetime(..., tzinfo=UTC)")
    return moment
