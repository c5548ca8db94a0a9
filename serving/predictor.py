"""The KServe predictor: scores candidates with a model artifact and ranks them."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from serving.base import RankingModelBase
from serving.feature_source import (
    DEFAULT_ONLINE,
    ITEM_KEY,
    USER_KEY,
    FeastOnlineSource,
    FeatureLookup,
    FeatureSource,
    NoFeatureSource,
    OnlineFeatures,
    OnlineFeaturesConfig,
    assemble_context,
    assemble_frame,
)
from serving.prometheus_metrics import PredictorMetrics, install_outcome_route
from serving.protocol import (
    DEFAULT_LIMITS,
    ColumnRule,
    ParsedRequest,
    RankedList,
    RankedResponse,
    RankRequest,
    RequestLimits,
    check_feature_version,
)
from serving.ranking import DEFAULT_RANKING, RankingConfig, rank_order
from serving.scoring_batch import BatchedScoring

if TYPE_CHECKING:  # torch and the model load only when a predictor does
    from models.artifact import LoadedModel

logger = logging.getLogger(__name__)


def online_features_for(
    model: LoadedModel,
    feature_repo: str | Path,
    *,
    model_name: str,
    config: OnlineFeaturesConfig = DEFAULT_ONLINE,
    prepared: bool = True,
) -> OnlineFeatures:
    """The online features a predictor of ``model`` (a loaded artifact) reads: the item table
    preloaded with the model's item vocabulary — so a prepared table's defaults row stands only
    for ids the model does not know — and, with ``prepared``, prepared for the model."""
    items = next((f.vocabulary for f in model.spec.categorical if f.name == ITEM_KEY), ())
    return OnlineFeatures(
        FeastOnlineSource(feature_repo, redis_timeout_s=config.redis_timeout_s),
        model_name=model_name,
        config=config,
        preload_items=items,
        prepare=model.prepare_items if prepared else None,
    )


class RankingPredictor(RankingModelBase):
    """Ranks a user's candidate items with a multi-task model artifact.

    Features come from the request (forwarded by :class:`serving.transformer.FeastTransformer`,
    which stamps it with the model version they are for: another version is refused, HTTP 409),
    else from the Feast online store in-process when ``feature_repo`` is given (item features from
    memory, see :class:`serving.feature_source.OnlineFeatures`), else the model's defaults.
    In-process, the item table is prepared for the model at every refresh (each item's share of
    the first layers computed once, see :mod:`models.factored_input`): a request then costs one
    context row and a gather instead of its candidates' first layers. The table is preloaded
    with the model's item vocabulary, so a candidate given the table's defaults row has an id the
    model does not know.

    Requests are served in batches (:mod:`serving.scoring_batch`): the requests that arrive
    while a batch is served form the next one, whose users are read from the store together and
    whose requests against the prepared table are scored in one forward pass in the server's
    thread pool (so health checks are never blocked). At low load a batch is one request.
    """

    def __init__(
        self,
        name: str,
        artifact_dir: str | Path,
        *,
        feature_repo: str | Path | None = None,
        limits: RequestLimits = DEFAULT_LIMITS,
        ranking: RankingConfig = DEFAULT_RANKING,
        online: OnlineFeaturesConfig = DEFAULT_ONLINE,
        worker_init: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(name, limits)
        self.artifact_dir = Path(artifact_dir)
        self.feature_repo = None if feature_repo is None else Path(feature_repo)
        self.ranking = ranking
        self.online = online
        self.worker_init = worker_init
        # Scoring holds the GIL between torch calls: more threads than cores only queue on it
        # (closed loop, 8 senders: 6 threads answered 212-230 req/s, the cores' count ~290)
        self._scoring = ThreadPoolExecutor(max_workers=os.cpu_count() or 1, thread_name_prefix="scoring")
        self.model: Any = None
        self.source: FeatureSource = NoFeatureSource()

    def load(self) -> bool:
        from models.artifact import load_artifact

        try:
            self.model = load_artifact(self.artifact_dir)
        except ValueError as error:  # ArtifactError: missing, modified or unsupported
            raise ValueError(f"artifact: {error}") from error
        if self.feature_repo is not None:
            self.source = online_features_for(
                self.model, self.feature_repo, model_name=self.name, config=self.online
            )
            self.source.start_reader()
        self._feature_rules = self._forwardable_columns()
        self._batched = BatchedScoring(self.model, self.source, self._scoring)
        self.metrics = PredictorMetrics(self.name, self.model.version)
        install_outcome_route()
        self.ready = True
        return self.ready

    async def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with self.metrics.request():  # per-version request/error/latency series on /metrics
            return await super().__call__(*args, **kwargs)

    def feature_columns(self) -> dict[str, ColumnRule]:
        return self._feature_rules

    def _forwardable_columns(self) -> dict[str, ColumnRule]:
        """The model's user and item feature columns (not the ids) with what each may hold."""
        spec = self.model.spec
        rules = {f.name: ColumnRule("category") for f in spec.categorical}
        rules |= {f.name: ColumnRule("number") for f in spec.numeric}
        if spec.text is not None:
            rules[spec.text.name] = ColumnRule("vector", spec.text.dim)
        sources = self.model.column_sources
        forwardable = (set(sources.get("user", ())) | set(sources.get("item", ()))) - {USER_KEY, ITEM_KEY}
        return {name: rule for name, rule in rules.items() if name in forwardable}

    async def predict(
        self,
        payload: ParsedRequest,
        headers: dict[str, str] | None = None,
        response_headers: dict[str, str] | None = None,
    ) -> RankedResponse:
        check_feature_version(payload, self.model.version)
        results = await asyncio.gather(*(self._rank_async(i) for i in payload.instances))
        return RankedResponse(request=payload, results=tuple(results))

    def rank(self, request: ParsedRequest) -> RankedResponse:
        """Rank every instance of a parsed request (synchronous; for in-process callers too)."""
        check_feature_version(request, self.model.version)
        return RankedResponse(request=request, results=tuple(self._rank(i) for i in request.instances))

    def _rank(self, instance: RankRequest) -> RankedList:
        found = self._forwarded(instance) or self.source.lookup(instance.user_id, instance.item_ids)
        if found.items is None:
            return self._ranked(instance, found, self._full_row_scores(instance, found))
        context = assemble_context(instance, found.user)
        scores = self.model.score_prepared(context, found.items.prepared, found.items.rows)
        return self._ranked(instance, found, scores)

    async def _rank_async(self, instance: RankRequest) -> RankedList:
        """:meth:`_rank` on the event loop, batched with the requests that wait with it."""
        found = self._forwarded(instance)
        scores = None
        if found is None:
            found, scores = await self._batched.score(instance)
        if scores is None:
            loop = asyncio.get_running_loop()
            scores = await loop.run_in_executor(self._scoring, self._full_row_scores, instance, found)
        return self._ranked(instance, found, scores)

    @staticmethod
    def _forwarded(instance: RankRequest) -> FeatureLookup | None:
        """The features the transformer sent with the instance, if it did."""
        if instance.features is None:
            return None
        return FeatureLookup(instance.features, degraded=instance.degraded)

    def _full_row_scores(self, instance: RankRequest, found: FeatureLookup) -> dict[str, np.ndarray]:
        frame = assemble_frame(instance, found.columns, self.model.required_columns, typed=True)
        return self.model.score(frame)

    def _ranked(
        self, instance: RankRequest, found: FeatureLookup, scores: dict[str, np.ndarray]
    ) -> RankedList:
        order = rank_order(scores, self.ranking, conversion_given_click=False)
        return RankedList(
            item_ids=instance.item_ids[order],
            scores={task: scores[task][order] for task in self.model.tasks},
            model_version=self.model.version,
            degraded=found.degraded,
        )

    def get_output_types(self) -> list[dict]:
        outputs = [{"name": "ranked_item_ids", "datatype": "INT64", "shape": [-1]}]
        return outputs + [{"name": t, "datatype": "FP32", "shape": [-1]} for t in self.model.tasks]

    def __getstate__(self) -> dict:
        # Multi-worker servers hand the model to spawned processes by pickling it: send the
        # artifact location instead, and let each worker load (and verify) the artifact itself.
        return {
            "name": self.name,
            "artifact_dir": self.artifact_dir,
            "feature_repo": self.feature_repo,
            "limits": self.limits,
            "ranking": self.ranking,
            "online": self.online,
            "worker_init": self.worker_init,
        }

    def __setstate__(self, state: dict) -> None:
        name = state.pop("name")
        self.__init__(name, **state)
        if self.worker_init is not None:  # the process's set-up, before its app serves
            self.worker_init()
        # A KServe worker must answer its parent's liveness ping within 5 s or be killed and
        # replaced, and it starts answering only once this returns: loading here (importing
        # torch, reading the artifact, the item table) took longer, so workers were replaced
        # forever and the server never became ready. The worker loads in the background and
        # answers "not ready" (503) until it has.
        threading.Thread(target=self._load_in_worker, name="model-load", daemon=True).start()

    def _load_in_worker(self) -> None:
        use_one_intra_op_thread()
        try:
            self.load()
        except Exception:
            logger.exception("worker %d: model not loaded; exiting (the server starts another)", os.getpid())
            os._exit(1)
        gc.collect()
        gc.freeze()  # what loading kept alive, out of the full collections (see serving.server)
        logger.info("worker %d: model %s loaded", os.getpid(), self.model.version)


def use_one_intra_op_thread() -> None:
    """Scoring runs in the server's thread pool already; intra-op threads on top of that only
    contend for the cores (measured on a 2-core box under load: p90 of scoring 50 candidates
    120-190 ms with 2 threads, 13-18 ms with 1)."""
    import torch

    torch.set_num_threads(1)
