"""Requests served in batches on the predictor's event loop: the requests that arrive while a
batch is being served form the next one.

A batch's users are read from the online store together (one round trip per feature view) and
its requests against the prepared item table are scored in one forward pass, so the per-pass
costs — a hundred small tensor operations and their Python, a store round trip, the hand-off to
the scoring thread — are paid once per batch instead of once per request (the same scores up to
float rounding). The pass runs in the scoring thread, where its matrix products (which release
the GIL) overlap the event loop's HTTP work on the other core. There is no waiting window: a
request arriving at an idle server is served at once, alone; under load the batches grow with
the queue.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import Executor
from typing import TYPE_CHECKING, Any

from serving.feature_source import FeatureLookup, FeatureSource, assemble_context
from serving.protocol import RankRequest

if TYPE_CHECKING:
    import numpy as np

    from models.artifact import LoadedModel

MAX_BATCH_CANDIDATES = 2000
"""Candidates in one forward pass at most; a larger batch makes several passes."""

MAX_BATCH_REQUESTS = 16
"""Requests in one batch at most; the others wait for the next. A burst (the router's retries
landing on a restarted primary: ~900 requests at once) read as one batch took longer than the
store's timeout and was answered with default user features."""

Scores = dict[str, "np.ndarray"]


class BatchedScoring:
    """Reads features for and scores requests in batches (see the module docstring)."""

    def __init__(
        self,
        model: LoadedModel,
        source: FeatureSource,
        executor: Executor,
        max_candidates: int = MAX_BATCH_CANDIDATES,
        max_requests: int = MAX_BATCH_REQUESTS,
    ) -> None:
        self._model = model
        self._source = source
        self._executor = executor
        self._max_candidates = max_candidates
        self._max_requests = max_requests
        self._waiting: list[tuple[RankRequest, asyncio.Future]] = []
        self._server: asyncio.Task | None = None

    async def score(self, instance: RankRequest) -> tuple[FeatureLookup, Scores | None]:
        """The instance's features and, where they are rows of the prepared item table, its
        per-task scores (None: the caller scores the feature columns). Call on the event loop."""
        future = asyncio.get_running_loop().create_future()
        self._waiting.append((instance, future))
        if self._server is None or self._server.done():
            self._server = asyncio.get_running_loop().create_task(self._serve())
        return await future

    async def _serve(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting[: self._max_requests], self._waiting[self._max_requests :]
            try:
                await self._serve_batch(batch)
            except Exception as error:  # each request gets the error, as if served alone
                _fail([future for _, future in batch], error)

    async def _serve_batch(self, batch: list[tuple[RankRequest, asyncio.Future]]) -> None:
        found = await self._source.lookup_many_async([(i.user_id, i.item_ids) for i, _ in batch])
        prepared = []
        for (instance, future), lookup in zip(batch, found, strict=True):
            if lookup.items is None:
                _settle(future, (lookup, None))
            else:
                prepared.append((instance, lookup, future))
        for group in _passes(prepared, self._max_candidates):
            try:
                scores = await asyncio.get_running_loop().run_in_executor(
                    self._executor,
                    self._model.score_prepared_together,
                    [assemble_context(instance, lookup.user) for instance, lookup, _ in group],
                    group[0][1].items.prepared,
                    [lookup.items.rows for _, lookup, _ in group],
                )
            except Exception as error:
                _fail([future for _, _, future in group], error)
                continue
            for (_, lookup, future), result in zip(group, scores, strict=True):
                _settle(future, (lookup, result))


def _settle(future: asyncio.Future, result: Any) -> None:
    if not future.done():  # not cancelled (its client gone) meanwhile
        future.set_result(result)


def _fail(futures: list[asyncio.Future], error: Exception) -> None:
    for future in futures:
        if not future.done():  # not answered, nor cancelled (its client gone) meanwhile
            future.set_exception(error)


def _passes(prepared: list[tuple[Any, FeatureLookup, Any]], max_candidates: int) -> list[list]:
    """Requests grouped by prepared item table (a refresh may fall between them), each group cut
    into passes of at most ``max_candidates`` candidates (a larger request passes alone)."""
    by_table: dict[int, list] = {}
    for entry in prepared:
        by_table.setdefault(id(entry[1].items.prepared), []).append(entry)
    passes: list[list] = []
    for group in by_table.values():
        current: list = []
        size = 0
        for entry in group:
            n = len(entry[1].items.rows)
            if current and size + n > max_candidates:
                passes.append(current)
                current, size = [], 0
            current.append(entry)
            size += n
        passes.append(current)
    return passes
