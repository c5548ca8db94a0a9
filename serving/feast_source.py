"""Feast's online store as serving reads it: the ``ranking`` feature service's user and item
features, with bounded Redis timeouts and a registry that never refreshes inside a request.

Kept apart from :mod:`serving.feature_source` (which imports the request protocol, KServe and
torch) so that the item reader's child process (:mod:`serving.item_reader`) imports only this,
numpy and Feast.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

USER_KEY = "user_id"
ITEM_KEY = "item_id"
REDIS_TIMEOUT_S = 0.1  # socket timeouts of the Redis client
FETCH_CHUNK = 100  # items per store read in a refresh: short GIL holds, no full GC (measured)
_PROMETHEUS_MULTIPROCESS = ("PROMETHEUS_MULTIPROC_DIR", "PROMETHEUS_MULTIPROCESS_DIR")
_FEAST_METRICS_DIR = "feast_metrics_"


def without_feast_metrics_dirs(environment: MutableMapping[str, str]) -> None:
    """Remove the prometheus_client multiprocess variables that ``import feast`` (0.67) points at
    a temporary directory of its own; keep a directory the user chose. A process started with
    them keeps every series in files there, where same-named series of one process share a value
    (two routers' counters add up) — KServe's spawned workers and our server children included."""
    for name in _PROMETHEUS_MULTIPROCESS:
        if Path(environment.get(name, "")).name.startswith(_FEAST_METRICS_DIR):
            del environment[name]


def _forget_feast_metrics_dirs_here() -> None:
    """:func:`without_feast_metrics_dirs` on this process's environment, where that is safe: a
    prometheus_client imported after Feast already keeps this process's series in Feast's
    directory and reads the variable at every new series, so it keeps the directory (and so do
    the workers this process spawns, consistently)."""
    values = sys.modules.get("prometheus_client.values")
    if values is None or values.ValueClass is values.MutexValue:
        without_feast_metrics_dirs(os.environ)


class FeastOnlineSource:
    """Feast's online store read with ``get_online_features`` and the ranking feature service."""

    def __init__(
        self,
        repo_path: str | Path,
        feature_service: str = "ranking",
        *,
        redis_timeout_s: float = REDIS_TIMEOUT_S,
    ) -> None:
        repo = Path(repo_path)
        self.args = (repo, feature_service, redis_timeout_s)
        if not (repo / "feature_store.yaml").is_file():
            raise ValueError(
                f"feature_repo: {repo} has no feature_store.yaml; pass the Feast repo directory "
                "(the one `feast apply` ran in)"
            )
        from feast import FeatureStore

        _forget_feast_metrics_dirs_here()  # before this server spawns any worker
        self._store = FeatureStore(repo_path=str(repo), config=_serving_config(repo, redis_timeout_s))
        try:
            service = self._store.get_feature_service(feature_service)
        except Exception as error:
            raise ValueError(
                f"feature_service: {feature_service!r} is not registered in {repo} ({error}); "
                f"run `feast apply` in {repo}"
            ) from error
        # "view:feature" strings, resolved once: passing the service object costs ~2x per request
        self._refs: dict[str, list[str]] = {USER_KEY: [], ITEM_KEY: []}
        self.item_columns: dict[str, ItemColumn] = {}
        for projection in service.feature_view_projections:
            view = self._store.get_feature_view(projection.name)
            keys = sorted(column.name for column in view.entity_columns)
            if keys not in ([USER_KEY], [ITEM_KEY]):
                raise ValueError(
                    f"feature_service: view {projection.name!r} is keyed by {keys}; serving reads "
                    f"views keyed by {USER_KEY} or {ITEM_KEY} only"
                )
            for feature in projection.features:
                self._refs[keys[0]].append(f"{projection.name_to_use()}:{feature.name}")
                if keys[0] == ITEM_KEY:
                    self.item_columns[feature.name] = _item_column(feature)
        from feast.infra.provider import get_provider

        self._provider = get_provider(self._store.config)
        self._user_views = self._read_user_views()
        self.reads_async = _reads_async(self._provider)

    def fetch(self, user_id: int, item_ids: np.ndarray) -> dict[str, list]:
        """Every feature of the service, one value per item (user features repeated)."""
        rows = {USER_KEY: [int(user_id)] * len(item_ids), ITEM_KEY: item_ids.tolist()}
        return self._read(self._refs[USER_KEY] + self._refs[ITEM_KEY], rows)

    def fetch_user(self, user_id: int) -> dict[str, Any]:
        """The user's features, ``None`` where the store has no value.

        Read view by view with the provider's ``online_read``, the call ``get_online_features``
        makes for each view, without its general-purpose entity bookkeeping around it (one
        user: 0.59 instead of 0.87 ms; the same values, checked for every user in a test)."""
        keys = self._user_keys([user_id])
        read = self._provider.online_read
        rows = [
            read(self._store.config, view, keys(key_type), list(names))
            for view, key_type, names in self._user_views
        ]
        return self._user_features(rows, 1)[0]

    async def fetch_users_async(self, user_ids: list[int]) -> list[dict[str, Any]]:
        """:meth:`fetch_user` for several users at once, with the provider's ``online_read_async``
        (one round trip per view for all of them)."""
        keys = self._user_keys(user_ids)
        read = self._provider.online_read_async
        rows = [
            await read(self._store.config, view, keys(key_type), list(names))
            for view, key_type, names in self._user_views
        ]
        return self._user_features(rows, len(user_ids))

    def _user_keys(self, user_ids: list[int]) -> Callable[[Any], list]:
        """The users' entity keys for a key value type (made once per type; usually one type)."""
        from feast.protos.feast.types.EntityKey_pb2 import EntityKey
        from feast.type_map import python_values_to_proto_values

        made: dict[Any, list] = {}

        def keys(key_type: Any) -> list:
            if key_type not in made:
                values = python_values_to_proto_values([int(u) for u in user_ids], key_type)
                made[key_type] = [EntityKey(join_keys=[USER_KEY], entity_values=[v]) for v in values]
            return made[key_type]

        return keys

    def _user_features(self, per_view: list[list], users: int) -> list[dict[str, Any]]:
        """Each user's features from each view's rows (one per user, in order)."""
        from feast.type_map import feast_value_type_to_python_type

        features: list[dict[str, Any]] = [{} for _ in range(users)]
        for (_, _, names), rows in zip(self._user_views, per_view, strict=True):
            for user, (_, found) in zip(features, rows or [(None, None)] * users, strict=True):
                for name in names:
                    value = None if not found or name not in found else found[name]
                    user[name] = None if value is None else feast_value_type_to_python_type(value)
        return features

    def fetch_items(self, item_ids: list[int]) -> dict[str, list]:
        """The items' features, one value per item, ``None`` where the store has no value."""
        return self._read(self._refs[ITEM_KEY], {ITEM_KEY: list(item_ids)})

    def warm(self) -> None:
        """Make the first user and item reads (100+ ms each, Feast's lazy set-up) now."""
        self.fetch_user(0)
        self.fetch_items([0])

    def refresh_registry(self) -> None:
        self._store.refresh_registry()
        self._user_views = self._read_user_views()

    def _read_user_views(self) -> list[tuple[Any, Any, list[str]]]:
        """(feature view, its key's value type, the features served) of each user view, from
        the registry as last refreshed."""
        feature_service = self.args[1]
        views = []
        for projection in self._store.get_feature_service(feature_service).feature_view_projections:
            view = self._store.get_feature_view(projection.name)
            key_columns = list(view.entity_columns)
            if [column.name for column in key_columns] == [USER_KEY]:
                key_type = key_columns[0].dtype.to_value_type()
                views.append((view, key_type, [feature.name for feature in projection.features]))
        return views

    def copy(self) -> FeastOnlineSource:
        """A source of its own FeatureStore: Feast takes a registry lock on every call, so a
        background reader sharing the store stalls the requests' reads (up to 200 ms measured)."""
        repo, feature_service, redis_timeout_s = self.args
        return FeastOnlineSource(repo, feature_service, redis_timeout_s=redis_timeout_s)

    def _read(self, refs: list[str], rows: dict[str, list]) -> dict[str, list]:
        if not refs:
            return {}
        values = self._store.get_online_features(features=refs, entity_rows=rows).to_dict()
        return {name: column for name, column in values.items() if name not in rows}


def _reads_async(provider: Any) -> bool:
    """Whether the provider's online store has an asyncio read (Feast's base class raises)."""
    from feast.infra.online_stores.online_store import OnlineStore

    store = getattr(provider, "online_store", None)
    return store is not None and type(store).online_read_async is not OnlineStore.online_read_async


def _serving_config(repo: Path, redis_timeout_s: float) -> Any:
    """The repo's config with bounded Redis socket timeouts and the registry cache never expiring
    inside a request (the serving code refreshes it in the background)."""
    from feast.repo_config import load_repo_config

    config = load_repo_config(repo, repo / "feature_store.yaml")
    online = config.online_store
    if getattr(online, "type", None) == "redis":
        connection = online.connection_string
        for option in ("socket_timeout", "socket_connect_timeout"):
            if f"{option}=" not in connection:
                connection += f",{option}={redis_timeout_s}"
        online.connection_string = connection
    config.registry.cache_ttl_seconds = 0
    return config


def _item_column(feature: Any) -> ItemColumn:
    dtype = str(feature.dtype)
    if dtype.startswith("Array"):
        dim = int(getattr(feature, "vector_length", 0) or 0)
        if dim < 1:
            raise ValueError(
                f"feature_service: {feature.name} is an array without vector_length; declare "
                "Field(..., vector_length=N) so serving can hold it in memory"
            )
        return ItemColumn("vector", dim)
    if dtype in ("Float32", "Float64", "Int32", "Int64"):
        return ItemColumn("number")
    return ItemColumn("object")


@dataclass(frozen=True)
class ItemColumn:
    """How an item feature is held in memory: ``number`` (float64, NaN when missing),
    ``vector`` (float32 rows of ``dim``, zeros when missing) or ``object`` (None when missing)."""

    kind: Literal["number", "vector", "object"]
    dim: int = 0


def _compact(column: ItemColumn, values: list) -> list:
    """Vectors as float32 arrays: a Python list of 384 floats is 385 objects, and freeing a
    table's worth of them at once holds the GIL (14 ms measured for 5,000 items)."""
    if column.kind != "vector":
        return values
    return [None if v is None else np.asarray(v, dtype=np.float32) for v in values]


def read_items(source: FeastOnlineSource, ids: list[int]) -> dict[str, list]:
    """Every item feature of ``ids`` (vectors as float32 arrays), read FETCH_CHUNK at a time."""
    values: dict[str, list] = {name: [] for name in source.item_columns}
    for offset in range(0, len(ids), FETCH_CHUNK):
        chunk = ids[offset : offset + FETCH_CHUNK]
        fetched = source.fetch_items(chunk)
        for name, column in values.items():
            column.extend(_compact(source.item_columns[name], fetched.get(name, [None] * len(chunk))))
    return values
