"""Online features for ranking requests, bounded in time, and the model input frame built from them.

:class:`FeastOnlineSource` reads Feast's online store through the ``ranking`` feature service
(``fetch``: every feature for one user and N items, as Feast returns them).

:class:`OnlineFeatures` is what a server uses. Feast's ``get_online_features`` costs 6.5-7.5 ms
for 100 items, most of a request's time, so item features are served from an in-memory table
loaded from the online store at start and refreshed every ``item_refresh_s`` (the bound on their
staleness; every refresh is logged) by a child process (:mod:`serving.item_reader`), so the
refresh's Python work never holds this process's GIL. User features are read from the store
per request, together with any item the table does not hold yet.

Every store call a request makes waits at most ``timeout_s``. When the store fails or does not
answer, the request is answered with the model's default (out-of-vocabulary) values for what is
missing and a ``degraded`` reason naming the cause; for ``retry_after_s`` afterwards requests do
not ask the store at all (so an outage costs no request its timeout), then one tries again.
Degraded answers are counted on ``/metrics`` as ``recforge_degraded_answers_total{model_name,
cause}``. Redis clients get socket timeouts (``redis_timeout_s``) and the Feast registry is
refreshed in the background, never inside a request.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from prometheus_client import Counter

from serving.analysis._checks import require_int, require_positive
from serving.feast_source import (
    ITEM_KEY,
    REDIS_TIMEOUT_S,
    USER_KEY,
    FeastOnlineSource,
    ItemColumn,
    read_items,
)
from serving.item_reader import ItemReaderProcess
from serving.protocol import RankRequest

__all__ = [
    "DEFAULT_ONLINE",
    "ITEM_KEY",
    "USER_KEY",
    "FeastOnlineSource",
    "FeatureLookup",
    "FeatureSource",
    "NoFeatureSource",
    "OnlineFeatures",
    "OnlineFeaturesConfig",
    "PreparedRows",
    "assemble_context",
    "assemble_frame",
]

CAUSES = ("online_store_error", "online_store_timeout", "item_table_full")
DEGRADED_ANSWERS = Counter(
    "recforge_degraded_answers",
    "Ranked lists answered with default features because the online store failed",
    ("model_name", "cause"),
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class OnlineFeaturesConfig:
    """How long a request may wait for the online store and how fresh item features stay."""

    timeout_s: float = 0.1
    retry_after_s: float = 1.0
    item_refresh_s: float = 60.0
    redis_timeout_s: float = REDIS_TIMEOUT_S
    start_timeout_s: float = 10.0
    max_items: int = 2_000_000
    max_prepared_items: int = 100_000
    """Item tables up to this size are prepared for the model (its first layers' outputs kept per
    item: 4 bytes × (input width + first-layer widths), ~3 KB for the default model); larger
    ones are scored row by row."""

    def __post_init__(self) -> None:
        for name in ("timeout_s", "retry_after_s", "item_refresh_s", "redis_timeout_s", "start_timeout_s"):
            require_positive(name, getattr(self, name), "a finite number of seconds")
        require_int("max_items", self.max_items, 1)
        require_int("max_prepared_items", self.max_prepared_items, 0)


DEFAULT_ONLINE = OnlineFeaturesConfig()


@dataclass(frozen=True)
class PreparedRows:
    """Candidates all held by an item table the model has prepared: that preparation (see
    ``OnlineFeatures``' ``prepare``) and each candidate's row in the table."""

    prepared: Any
    rows: np.ndarray


@dataclass(frozen=True)
class FeatureLookup:
    """Feature columns for one request (one value per item) and, if some are defaults because
    the store failed, why (``degraded``, for people) and the metric label (``cause``).

    When every candidate is in a prepared item table, ``items`` says where and ``user`` holds the
    user's features (one value each) instead of ``columns``."""

    columns: Mapping[str, Any] = field(default_factory=dict)
    degraded: str | None = None
    cause: str | None = None
    user: Mapping[str, Any] = field(default_factory=dict)
    items: PreparedRows | None = None


class FeatureSource(Protocol):
    """Looks up a request's features; never raises for store failures (see :class:`FeatureLookup`)."""

    def lookup(self, user_id: int, item_ids: np.ndarray) -> FeatureLookup: ...

    async def lookup_many_async(self, requests: Sequence[tuple[int, np.ndarray]]) -> list[FeatureLookup]: ...


class NoFeatureSource:
    """No feature store: requests carry only ids and context, the model defaults the rest."""

    def lookup(self, user_id: int, item_ids: np.ndarray) -> FeatureLookup:
        return FeatureLookup()

    async def lookup_many_async(self, requests: Sequence[tuple[int, np.ndarray]]) -> list[FeatureLookup]:
        return [FeatureLookup() for _ in requests]


class _ItemTable:
    """An immutable snapshot of item features: an id index and one array per column (row 0 holds
    the defaults). ``prepared``, the model's form of the table, is set before it is published."""

    def __init__(
        self, columns: Mapping[str, ItemColumn], ids: list[int], arrays: Mapping[str, np.ndarray]
    ) -> None:
        self.columns = dict(columns)
        self.ids = list(ids)
        self.index = {item: row for row, item in enumerate(self.ids, start=1)}
        self.arrays = dict(arrays)
        self.loaded_at = time.monotonic()
        self.prepared: Any = None

    @classmethod
    def of(cls, columns: Mapping[str, ItemColumn], ids: list[int], values: Mapping[str, list]) -> _ItemTable:
        """A table of ``ids`` with their values as the store returns them (None where missing)."""
        arrays = {
            name: _column_array(column, values.get(name, []), len(ids)) for name, column in columns.items()
        }
        return cls(columns, ids, arrays)

    def __len__(self) -> int:
        return len(self.ids)

    def rows(self, item_ids: np.ndarray) -> np.ndarray:
        """Each item's row, 0 (the defaults) for items the table does not hold."""
        get = self.index.get
        return np.fromiter((get(item, 0) for item in item_ids.tolist()), dtype=np.int64, count=len(item_ids))

    def gather(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        return {name: array[rows] for name, array in self.arrays.items()}

    def frame(self) -> dict[str, np.ndarray]:
        """Every row with its item id (None in the defaults' row 0) and columns."""
        ids = np.empty(len(self.ids) + 1, dtype=object)
        ids[1:] = self.ids
        return {ITEM_KEY: ids, **self.arrays}

    def merged(self, other: _ItemTable, limit: int) -> _ItemTable:
        """This table with ``other``'s items added (at most ``limit`` items in all)."""
        new = [k for k, item in enumerate(other.ids) if item not in self.index][: max(0, limit - len(self))]
        if not new:
            return self
        rows = np.asarray(new, dtype=np.int64) + 1
        arrays = {
            name: np.concatenate([array, other.arrays[name][rows]]) for name, array in self.arrays.items()
        }
        return _ItemTable(self.columns, self.ids + [other.ids[k] for k in new], arrays)


def _column_array(column: ItemColumn, values: list, n: int) -> np.ndarray:
    values = list(values) + [None] * (n - len(values))
    if column.kind == "number":
        return np.array([math.nan] + [math.nan if v is None else float(v) for v in values], dtype=np.float64)
    if column.kind == "vector":
        matrix = np.zeros((n + 1, column.dim), dtype=np.float32)
        for row, vector in enumerate(values, start=1):
            if vector is not None and len(vector) == column.dim:
                matrix[row] = vector
        return matrix
    array = np.empty(n + 1, dtype=object)
    array[1:] = values
    return array


def _present(values: Mapping[str, list], n: int) -> list[bool]:
    """Whether the store holds anything for each of n fetched entities."""
    present = [False] * n
    for column in values.values():
        for i, value in enumerate(column):
            present[i] = present[i] or value is not None
    return present


_Located = tuple[_ItemTable, _ItemTable, np.ndarray, np.ndarray, np.ndarray]
"""Where a request's candidates are: the two tables, rows in the main one, the positions it does
not hold and their rows in the recent one (see ``OnlineFeatures._locate``)."""


class OnlineFeatures:
    """User features per request, item features from memory, defaults and a reason when the store
    fails (see the module docstring). ``close()`` stops the background refresh.

    Items are held in two tables: the main one, loaded at start and rebuilt at every refresh, and
    a small one of items first seen since (rebuilt when one is added, merged into the main one
    when it reaches ``RECENT_ITEMS``), so a new item costs a copy of the small table only.

    ``prepare`` (the model's ``prepare_items``) is given each main table as it is loaded, off the
    request path; a request whose candidates are all in it gets their rows there
    (:class:`PreparedRows`) instead of their feature columns. Candidates the store has nothing
    for get row 0 (no features, no id) unless they are preloaded: ``preload_items`` must hold
    every item id the model knows.
    """

    RECENT_ITEMS = 10_000

    def __init__(
        self,
        source: FeastOnlineSource,
        *,
        model_name: str,
        config: OnlineFeaturesConfig = DEFAULT_ONLINE,
        preload_items: Iterable[int] = (),
        prepare: Callable[[Mapping[str, np.ndarray]], Any] | None = None,
    ) -> None:
        self._source = source
        self._prepare = prepare
        self._background = source.copy()  # for the first load, see FeastOnlineSource.copy
        self._reader = ItemReaderProcess(source.args)
        self._config = config
        self._counters = {cause: DEGRADED_ANSWERS.labels(model_name, cause) for cause in CAUSES}
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="online-store")
        self._lock = threading.Lock()
        self._down_until = 0.0
        self._down: tuple[str, str] | None = None
        self._absent: set[int] = set()
        empty = _ItemTable.of(source.item_columns, [], {})
        self._tables = (empty, empty)  # (main, recent), swapped as one
        self._stop = threading.Event()
        self._preload = {int(i) for i in preload_items}
        self._start()
        self._refresher = threading.Thread(target=self._refresh_loop, name="item-table-refresh", daemon=True)
        self._refresher.start()

    def start_reader(self) -> None:
        """Start the refresh's reader process now: servers call this once loaded, so its seconds
        of importing Feast pass before traffic instead of during the first refresh."""
        try:
            self._reader.start()
        except OSError as error:  # no process to spare: the first refresh tries again
            logger.warning("item table: reader process not started (%s)", error)

    @property
    def items_held(self) -> int:
        return sum(len(table) for table in self._tables)

    def lookup(self, user_id: int, item_ids: np.ndarray) -> FeatureLookup:
        """The request's features; blocks up to ``timeout_s`` on the store."""
        located = self._locate(item_ids)
        missing = self._missing(item_ids, located)
        answer = self._ask(lambda: self._fetch(user_id, missing))
        return self._answer(item_ids, located, missing, *answer)

    async def lookup_many_async(self, requests: Sequence[tuple[int, np.ndarray]]) -> list[FeatureLookup]:
        """:meth:`lookup` for several requests (user id, candidates), awaited on the server's event
        loop, which serves other requests while the store answers. Where the store has an asyncio
        client (Redis), the users of requests whose candidates are all held are read together,
        without thread hand-offs; the others read their user and new items in the store's threads."""
        located = [self._locate(item_ids) for _, item_ids in requests]
        missing = [
            self._missing(item_ids, where) for (_, item_ids), where in zip(requests, located, strict=True)
        ]
        together = [k for k, m in enumerate(missing) if not m] if self._source.reads_async else []
        answers: list = [None] * len(requests)
        if together:
            users = [requests[k][0] for k in together]
            read, failure = await self._ask_async(lambda: self._source.fetch_users_async(users))
            for j, k in enumerate(together):
                answers[k] = (None if read is None else (read[j], {}), failure)
        alone = [k for k in range(len(requests)) if answers[k] is None]
        fetched = await asyncio.gather(*(self._fetch_async(requests[k][0], missing[k]) for k in alone))
        for k, answer in zip(alone, fetched, strict=True):
            answers[k] = answer
        return [
            self._answer(item_ids, where, m, *answer)
            for (_, item_ids), where, m, answer in zip(requests, located, missing, answers, strict=True)
        ]

    async def _fetch_async(self, user_id: int, missing: list[int]) -> tuple[Any, tuple[str, str] | None]:
        """:meth:`_fetch` in the store's threads, awaited."""
        return await self._ask_async(
            lambda: asyncio.wrap_future(self._pool.submit(self._fetch, user_id, missing))
        )

    def _missing(self, item_ids: np.ndarray, located: _Located) -> list[int]:
        """Candidates neither table holds and the store was not found to lack: read with the user."""
        _, _, _, unknown, recent_rows = located
        return [i for i in item_ids[unknown][recent_rows == 0].tolist() if i not in self._absent]

    def _answer(
        self,
        item_ids: np.ndarray,
        located: _Located,
        missing: list[int],
        answer: tuple[dict[str, Any], dict[str, list]] | None,
        failure: tuple[str, str] | None,
    ) -> FeatureLookup:
        """The lookup from the store's answer (or its failure) and the item tables."""
        user: dict[str, Any] = {}
        if answer is not None:
            user = answer[0]
            if missing:
                self._remember(missing, answer[1])
                located = self._locate(item_ids)
        table, recent, rows, unknown, recent_rows = located
        if failure is None and missing and self.items_held >= self._config.max_items:
            failure = (
                f"item table full ({self._config.max_items} items): new items get default features; "
                "raise max_items",
                "item_table_full",
            )
        degraded, cause = (None, None) if failure is None else failure
        if cause is not None:
            self._counters[cause].inc()
        if table.prepared is not None and self._only_unknown_to_the_model(item_ids[unknown]):
            return FeatureLookup(
                degraded=degraded, cause=cause, user=user, items=PreparedRows(table.prepared, rows)
            )
        columns = table.gather(rows)
        if recent_rows.any():
            for name, values in recent.gather(recent_rows).items():
                columns[name][unknown] = values
        for name, value in user.items():
            columns[name] = _repeat(value, len(item_ids))
        return FeatureLookup(columns, degraded=degraded, cause=cause)

    def _only_unknown_to_the_model(self, ids: np.ndarray) -> bool:
        """Whether the store has nothing for any of these ids and none is preloaded: a prepared
        table's row 0 (no features, no id) stands for them."""
        absent, preload = self._absent, self._preload
        return all(i in absent and i not in preload for i in ids.tolist())

    def _locate(self, item_ids: np.ndarray) -> _Located:
        """The two tables now, each item's row in the main one, the positions it does not hold
        and their rows in the recent one (0: held by neither)."""
        table, recent = self._tables
        rows = table.rows(item_ids)
        unknown = np.flatnonzero(rows == 0)
        return table, recent, rows, unknown, recent.rows(item_ids[unknown])

    def _fetch(self, user_id: int, missing: list[int]) -> tuple[dict[str, Any], dict[str, list]]:
        items = self._source.fetch_items(missing) if missing else {}
        return self._source.fetch_user(user_id), items

    def _ask(self, call: Callable[[], Any]) -> tuple[Any, tuple[str, str] | None]:
        """Run a store call bounded by timeout_s; after a failure skip the store for retry_after_s."""
        if (skipped := self._skipped()) is not None:
            return None, skipped
        try:
            return self._pool.submit(call).result(timeout=self._config.timeout_s), None
        except Exception as error:
            return None, self._failed(error)

    async def _ask_async(self, start: Callable[[], Awaitable]) -> tuple[Any, tuple[str, str] | None]:
        """:meth:`_ask` for an awaitable store call (``start`` makes it, unless the store is skipped)."""
        if (skipped := self._skipped()) is not None:
            return None, skipped
        try:
            return await asyncio.wait_for(start(), self._config.timeout_s), None
        except Exception as error:
            return None, self._failed(error)

    def _skipped(self) -> tuple[str, str] | None:
        """The last failure while requests skip the store after it, else None."""
        down = self._down
        return down if down is not None and time.monotonic() < self._down_until else None

    def _failed(self, error: Exception) -> tuple[str, str]:
        """The degraded reason and cause for a failed store call; skip the store for a while."""
        if isinstance(error, TimeoutError):  # the wait's, not a Redis client's (not a builtin)
            failure = (
                f"online store timeout: no answer within {self._config.timeout_s * 1000:.0f} ms; "
                "ranked with default user and new-item features",
                "online_store_timeout",
            )
        else:
            failure = (
                f"online store unavailable ({type(error).__name__}: {error}); "
                "ranked with default user and new-item features",
                "online_store_error",
            )
        with self._lock:
            if self._down is None or time.monotonic() >= self._down_until:
                logger.warning("%s; asking again in %.1f s", failure[0], self._config.retry_after_s)
            self._down, self._down_until = failure, time.monotonic() + self._config.retry_after_s
        return failure

    def _remember(self, ids: list[int], values: Mapping[str, list]) -> None:
        """Hold newly fetched items; ids the store has nothing for are not asked again until the
        next refresh."""
        present = _present(values, len(ids))
        with self._lock:
            if len(self._absent) > self._config.max_items:  # ids nobody has, e.g. from fuzzing
                self._absent = set()
            self._absent.update(i for i, p in zip(ids, present, strict=True) if not p)
            table, recent = self._tables
            found = [k for k, p in enumerate(present) if p and ids[k] not in recent.index]
            room = self._config.max_items - len(table) - len(recent)
            found = found[: max(0, room)]
            if found:
                added = _ItemTable.of(
                    self._source.item_columns,
                    [ids[k] for k in found],
                    {name: [column[k] for k in found] for name, column in values.items()},
                )
                recent = recent.merged(added, self.RECENT_ITEMS)
                if len(recent) >= self.RECENT_ITEMS:
                    table = table.merged(recent, self._config.max_items)
                    recent = _ItemTable.of(self._source.item_columns, [], {})
                self._tables = (table, recent)

    def refresh_items(self, *, background: bool = False) -> bool:
        """Reload every held item (and the preloaded ids) from the store; logged. On failure the
        old values stay in use (and the log says how old they are). ``background`` (the periodic
        refresh) reads in a child process (:mod:`serving.item_reader`), so requests keep the GIL."""
        ids = sorted(self._preload.union(*(table.ids for table in self._tables)))
        start = time.monotonic()
        try:
            if background:
                values = self._reader.read(ids, timeout_s=self._config.item_refresh_s)
            else:
                values = read_items(self._background, ids)
        except Exception as error:
            logger.warning(
                "item table: refresh failed (%s: %s); serving %d items loaded %.0f s ago",
                type(error).__name__,
                error,
                self.items_held,
                time.monotonic() - self._tables[0].loaded_at,
            )
            return False
        keep = [k for k, p in enumerate(_present(values, len(ids))) if p][: self._config.max_items]
        table = _ItemTable.of(
            self._source.item_columns,
            [ids[k] for k in keep],
            {name: [column[k] for k in keep] for name, column in values.items()},
        )
        table.prepared = self._prepared(table)
        with self._lock:
            self._tables = (table, _ItemTable.of(self._source.item_columns, [], {}))
            self._absent = set()
        logger.info(
            "item table: %d items loaded from the online store in %.2f s",
            len(table),
            time.monotonic() - start,
        )
        return True

    def _prepared(self, table: _ItemTable) -> Any:
        """The model's preparation of a new main table, or None (then requests get columns)."""
        if self._prepare is None or not len(table):
            return None
        if len(table) > self._config.max_prepared_items:
            logger.info(
                "item table: %d items, over max_prepared_items (%d): candidates are scored row by "
                "row", len(table), self._config.max_prepared_items,
            )
            return None
        start = time.monotonic()
        try:
            prepared = self._prepare(table.frame())
        except Exception as error:
            logger.warning(
                "item table: not prepared for the model (%s: %s); candidates are scored row by row",
                type(error).__name__, error,
            )
            return None
        logger.info("item table: prepared for the model in %.3f s", time.monotonic() - start)
        return prepared

    def _start(self) -> None:
        """Load the item table and make Feast's first (100+ ms) call, waiting at most
        start_timeout_s: a store that is down delays the start by no more than that (its client
        retries for longer), and the load goes on in the background."""

        def load_and_warm() -> None:
            if self.refresh_items():
                self._source.warm()

        try:
            self._pool.submit(load_and_warm).result(timeout=self._config.start_timeout_s)
        except TimeoutError:
            logger.warning(
                "online store: no item table within %.0f s of start; serving while it loads",
                self._config.start_timeout_s,
            )
        except Exception as error:
            logger.warning("online store: not answering at start (%s: %s)", type(error).__name__, error)

    def _refresh_loop(self) -> None:
        while not self._stop.wait(self._config.item_refresh_s):
            try:
                self._source.refresh_registry()
                self._background.refresh_registry()
            except Exception as error:
                logger.warning("feature registry: refresh failed (%s: %s)", type(error).__name__, error)
            if not self._stop.is_set():
                self.refresh_items(background=True)

    def close(self) -> None:
        self._stop.set()
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._reader.close()


def assemble_frame(
    request: RankRequest, features: Mapping[str, Any], columns: Iterable[str], *, typed: bool = False
) -> dict[str, Any]:
    """The model's input columns for one request: ids, context, features; ``None`` where unknown.

    ``typed`` writes the context as arrays of each value's own type, which the model looks up
    without pandas (a 100-candidate request scores in 1.2 ms instead of 1.9 ms)."""
    n = len(request)
    frame = _request_columns(request, n, typed) | {ITEM_KEY: request.item_ids}
    for name, values in features.items():
        frame.setdefault(name, values)
    return {name: frame[name] if name in frame else [None] * n for name in columns}


def assemble_context(request: RankRequest, user: Mapping[str, Any]) -> dict[str, Any]:
    """One row of the model's input without the item columns — the user id, the request's
    context, the user's features — scored with every candidate of a prepared item table."""
    frame = _request_columns(request, 1, typed=True)
    for name, value in user.items():
        frame.setdefault(name, _repeat(value, 1))
    return frame


def _request_columns(request: RankRequest, n: int, typed: bool) -> dict[str, Any]:
    frame: dict[str, Any] = {USER_KEY: np.full(n, request.user_id, dtype=np.int64)}
    for name, value in request.context.items():
        frame[name] = np.full(n, value, dtype=object if value is None else None) if typed else [value] * n
    return frame


def _repeat(value: Any, n: int) -> Any:
    """One user feature value as a column of n."""
    return [value] * n if value is None or isinstance(value, (list, bytes)) else np.full(n, value)
