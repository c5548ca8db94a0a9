"""The KServe transformer: looks up online features in Feast and forwards to the predictor."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path
from typing import Any

from serving.base import RankingModelBase
from serving.feature_source import FeastOnlineSource, FeatureSource
from serving.protocol import (
    DEFAULT_LIMITS,
    ParsedRequest,
    RankedResponse,
    RequestLimits,
    forward_body,
    parse_predictions,
)


class FeastTransformer(RankingModelBase):
    """Adds each instance's online features and calls the predictor (KServe's ``predictor_host``).

    Clients speak V1 or V2 to the transformer; it forwards V1 with a ``features`` object per
    instance, so the predictor behind it needs no feature store, and answers in the client's
    protocol.
    """

    def __init__(
        self,
        name: str,
        feature_repo: str | Path,
        *,
        limits: RequestLimits = DEFAULT_LIMITS,
        feature_service: str = "ranking",
    ) -> None:
        super().__init__(name, limits)
        self.feature_repo = Path(feature_repo)
        self.feature_service = feature_service
        self.source: FeatureSource | None = None

    def load(self) -> bool:
        self.source = FeastOnlineSource(self.feature_repo, self.feature_service)
        self.ready = True
        return self.ready

    async def preprocess(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
        request = await super().preprocess(payload, headers)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, self.with_features, request)

    def with_features(self, request: ParsedRequest) -> ParsedRequest:
        """The request with each instance's online features attached."""
        instances = tuple(
            replace(i, features=self.source.fetch(i.user_id, i.item_ids)) for i in request.instances
        )
        return replace(request, instances=instances)

    async def predict(
        self,
        payload: ParsedRequest,
        headers: dict[str, str] | None = None,
        response_headers: dict[str, str] | None = None,
    ) -> RankedResponse:
        answer = await super().predict(forward_body(payload), headers, response_headers)
        return parse_predictions(answer, payload)
