"""The run's own Feast store: create it, materialize it, look features up online.

The store lives in the run's feature folder (`create_store(feature_dir)`) and registers the
definitions of `feature_repo/` with tables read from that folder; the user's `feature_repo/`
is never written.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from feast import FeatureStore

import feature_repo
from feature_repo import (
    FEATURES,
    ITEM_PROFILE,
    ITEM_STATS,
    ITEM_TEXT_EMBEDDING,
    USER_PROFILE,
    USER_STATS,
)
from pipelines.feature_config import FeatureConfig

_STORE_MARKER = "# Written by pipelines.features.create_store; rewritten on every call.\n"
_USER_VIEWS = (USER_PROFILE, USER_STATS)
_ITEM_VIEWS = (ITEM_PROFILE, ITEM_STATS, ITEM_TEXT_EMBEDDING)


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


def open_store(feature_dir: Path) -> FeatureStore:
    """The store `create_store(feature_dir, ...)` made, e.g. in a later pipeline step."""
    settings = Path(feature_dir).resolve() / "feature_store.yaml"
    if not settings.is_file() or not settings.read_text().startswith(_STORE_MARKER):
        raise FileNotFoundError(
            f"{settings} is missing or was not written by create_store; "
            "call create_store(feature_dir, config) first"
        )
    return FeatureStore(repo_path=str(settings.parent))


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


def materialize(store: FeatureStore, end: datetime) -> None:
    """Load every feature row stamped up to `end` (inclusive) into the online store."""
    store.materialize_incremental(end_date=require_aware(end, "end"))


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
    values = store.get_online_features(features=feature_refs(views), entity_rows=rows).to_dict()
    return OnlineFeatures(
        user={name: values[name][0] for view in _USER_VIEWS for name in FEATURES[view]},
        items={
            name: values[name] if len(item_ids) else []
            for view in _ITEM_VIEWS
            for name in FEATURES[view]
        },
    )


def feature_refs(views: Sequence[str]) -> list[str]:
    """`view:feature` references of every feature of `views`."""
    return [f"{view}:{name}" for view in views for name in FEATURES[view]]


def _require_int(field: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{field}={value!r} must be an integer id")


def require_aware(moment: datetime, field: str) -> datetime:
    """`moment`, if it carries a timezone; an error naming `field` otherwise."""
    if moment.tzinfo is None:
        raise ValueError(f"{field}={moment!r} must be timezone-aware, e.g. datetime(..., tzinfo=UTC)")
    return moment
