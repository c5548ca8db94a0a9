"""The KServe transformer: looks up online features in Feast and forwards to the predictor."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx

from serving._kserve import InferenceError, InvalidInput
from serving.base import RankingModelBase
from serving.feature_source import (
    DEFAULT_ONLINE,
    FeastOnlineSource,
    FeatureSource,
    OnlineFeatures,
    OnlineFeaturesConfig,
)
from serving.protocol import (
    DEFAULT_LIMITS,
    FeatureVersionMismatch,
    ParsedRequest,
    PredictorUnavailable,
    RankedResponse,
    RequestLimits,
    forward_body,
    parse_predictions,
)


class FeastTransformer(RankingModelBase):
    """Adds each instance's online features and calls the predictor (KServe's ``predictor_host``).

    Clients speak V1 or V2 to the transformer; it forwards V1 with a ``features`` object per
    instance, so the predictor behind it needs no feature store, and answers in the client's
    protocol. With a ``model_version`` the forwarded body is stamped ``feature_version``: a
    predictor of another version refuses it (HTTP 409), and so does the transformer, naming both.
    When the online store fails, the answer carries ``degraded`` naming the cause.
    """

    def __init__(
        self,
        name: str,
        feature_repo: str | Path,
        *,
        model_version: str | None = None,
        limits: RequestLimits = DEFAULT_LIMITS,
        feature_service: str = "ranking",
        online: OnlineFeaturesConfig = DEFAULT_ONLINE,
    ) -> None:
        super().__init__(name, limits)
        self.feature_repo = Path(feature_repo)
        self.feature_service = feature_service
        self.model_version = model_version
        self.online = online
        self.source: FeatureSource | None = None

    def load(self) -> bool:
        source = FeastOnlineSource(
            self.feature_repo, self.feature_service, redis_timeout_s=self.online.redis_timeout_s
        )
        self.source = OnlineFeatures(source, model_name=self.name, config=self.online)
        self.source.start_reader()
        self.ready = True
        return self.ready

    async def preprocess(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
        request = await super().preprocess(payload, headers)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, self.with_features, request)

    def with_features(self, request: ParsedRequest) -> ParsedRequest:
        """The request with each instance's online features (and why they are defaults, if so)."""
        instances = []
        for instance in request.instances:
            found = self.source.lookup(instance.user_id, instance.item_ids)
            instances.append(replace(instance, features=found.columns, degraded=found.degraded))
        return replace(request, instances=tuple(instances))

    async def predict(
        self,
        payload: ParsedRequest,
        headers: dict[str, str] | None = None,
        response_headers: dict[str, str] | None = None,
    ) -> RankedResponse:
        body = forward_body(payload, self.model_version)
        try:
            answer = await super().predict(body, headers, response_headers)
        except httpx.HTTPStatusError as error:
            raise _predictor_error(error.response) from error
        except httpx.TransportError as error:
            raise PredictorUnavailable(
                f"predictor unreachable ({type(error).__name__}); retry, or check the predictor host"
            ) from error
        response = parse_predictions(answer, payload)
        results = tuple(
            replace(result, degraded=instance.degraded or result.degraded)
            for result, instance in zip(response.results, payload.instances, strict=True)
        )
        return replace(response, results=results)


def _predictor_error(response: httpx.Response) -> Exception:
    """The predictor's refusal as this server's: 409 and other 4xx pass through with its message;
    503 stays 503 (a restarting predictor: the router retries it)."""
    try:
        message = response.json()["error"]
    except (ValueError, KeyError, TypeError):
        message = response.text[:200]
    if response.status_code == 409:
        return FeatureVersionMismatch(message)
    if response.status_code == 503:
        return PredictorUnavailable(f"predictor not ready: {message}")
    if 400 <= response.status_code < 500:
        return InvalidInput(f"predictor refused the request: {message}")
    return InferenceError(f"predictor answered HTTP {response.status_code}: {message}")
