"""What the predictor and the transformer share: request parsing in, protocol formatting out."""

from __future__ import annotations

from typing import Any

from serving._kserve import kserve
from serving.protocol import (
    CONTEXT_FIELDS,
    FeatureColumns,
    RankedResponse,
    RequestLimits,
    format_response,
    parse_request,
)


class RankingModelBase(kserve.Model):
    """A ``kserve.Model`` speaking the ranking protocol of :mod:`serving.protocol`.

    ``preprocess`` validates the request (V1 dict or V2 ``InferRequest``) into a
    :class:`ParsedRequest`; subclasses implement ``predict`` returning a :class:`RankedResponse`;
    ``postprocess`` writes it back in the caller's protocol.
    """

    def __init__(self, name: str, limits: RequestLimits) -> None:
        super().__init__(name)
        self.limits = limits

    def feature_columns(self) -> FeatureColumns:
        """Feature columns a caller may forward in ``features`` (none by default)."""
        return frozenset()

    def validate(self, payload: Any) -> Any:
        # Requests are validated by parse_request; KServe's generic check would misread ours.
        return payload

    async def preprocess(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
        return parse_request(payload, self.limits, self.feature_columns())

    async def postprocess(
        self,
        result: RankedResponse,
        headers: dict[str, str] | None = None,
        response_headers: dict[str, str] | None = None,
    ) -> Any:
        return format_response(result, self.name)

    def get_input_types(self) -> list[dict]:
        inputs = [
            {"name": "user_id", "datatype": "INT64", "shape": [1]},
            {"name": "item_ids", "datatype": "INT64", "shape": [-1]},
        ]
        types = {"device": "BYTES", "surface": "BYTES", "hour": "INT32"}
        return inputs + [{"name": n, "datatype": types[n], "shape": [1]} for n in CONTEXT_FIELDS]
