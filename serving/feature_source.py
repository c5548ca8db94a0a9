"""Online features for one ranking request, and the model input frame built from them.

A feature source answers "features of this user and these candidate items": a mapping from feature
column to one value per item (user features repeated), ``None`` where the store has no value.
:class:`FeastOnlineSource` reads Feast's online store through the ``ranking`` feature service;
:class:`NoFeatureSource` has no store, so every feature is left to the model's defaults.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from serving.protocol import RankRequest

USER_KEY = "user_id"
ITEM_KEY = "item_id"


class FeatureSource(Protocol):
    """Looks up online features; the answer's lists have one entry per item id."""

    def fetch(self, user_id: int, item_ids: np.ndarray) -> dict[str, list]: ...


class NoFeatureSource:
    """No feature store: requests carry only ids and context, the model defaults the rest."""

    def fetch(self, user_id: int, item_ids: np.ndarray) -> dict[str, list]:
        return {}


class FeastOnlineSource:
    """Feast's online store read with ``get_online_features`` and the ranking feature service."""

    def __init__(self, repo_path: str | Path, feature_service: str = "ranking") -> None:
        repo = Path(repo_path)
        if not (repo / "feature_store.yaml").is_file():
            raise ValueError(
                f"feature_repo: {repo} has no feature_store.yaml; pass the Feast repo directory "
                "(the one `feast apply` ran in)"
            )
        from feast import FeatureStore

        self._store = FeatureStore(repo_path=str(repo))
        try:
            self._service = self._store.get_feature_service(feature_service)
        except Exception as error:
            raise ValueError(
                f"feature_service: {feature_service!r} is not registered in {repo} ({error}); "
                f"run `feast apply` in {repo}"
            ) from error
        # "view:feature" strings, resolved once: passing the service object costs ~2x per request
        self._refs = [
            f"{projection.name_to_use()}:{feature.name}"
            for projection in self._service.feature_view_projections
            for feature in projection.features
        ]

    def fetch(self, user_id: int, item_ids: np.ndarray) -> dict[str, list]:
        rows = {USER_KEY: [int(user_id)] * len(item_ids), ITEM_KEY: item_ids.tolist()}
        response = self._store.get_online_features(features=self._refs, entity_rows=rows)
        values = response.to_dict()
        return {name: column for name, column in values.items() if name not in rows}


def assemble_frame(
    request: RankRequest, features: Mapping[str, list], columns: Iterable[str]
) -> dict[str, Any]:
    """The model's input columns for one request: ids, context, features; ``None`` where unknown."""
    n = len(request)
    frame: dict[str, Any] = {
        USER_KEY: np.full(n, request.user_id, dtype=np.int64),
        ITEM_KEY: request.item_ids,
    }
    for name, value in request.context.items():
        frame[name] = [value] * n
    for name, values in features.items():
        frame.setdefault(name, values)
    return {name: frame[name] if name in frame else [None] * n for name in columns}
