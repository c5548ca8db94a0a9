"""RecForge's Feast repo, importable so pipelines apply the same definitions to their own store.

`cd feature_repo && feast apply` reads the module-level objects of each file; `definitions(dir)`
builds the same objects reading their tables from `dir` instead.
"""

from pathlib import Path

from .entities import item, user
from .features import (
    EMBEDDING_DIM,
    FEATURE_TTL,
    ITEM_PROFILE,
    ITEM_STATS,
    ITEM_TEXT_EMBEDDING,
    STAT_FEATURES,
    USER_PROFILE,
    USER_STATS,
    feature_views,
    item_profile,
    item_stats,
    item_text_embedding,
    user_profile,
    user_stats,
)
from .services import RANKING, ranking_service
from .sources import CREATED_FIELD, DATA_DIR_ENV, TIMESTAMP_FIELD, feature_data_dir, table_path

FEATURE_VIEWS = (USER_PROFILE, USER_STATS, ITEM_PROFILE, ITEM_STATS, ITEM_TEXT_EMBEDDING)
FEATURES: dict[str, tuple[str, ...]] = {
    view.name: tuple(field.name for field in view.features)
    for view in (user_profile, user_stats, item_profile, item_stats, item_text_embedding)
}
"""Feature names per feature view, in schema order (entity keys excluded)."""


def definitions(data_dir: Path | None = None) -> list:
    """Entities, feature views and the `ranking` service, with tables under `data_dir`.

    `data_dir` defaults to `feature_data_dir()` ($RECFORGE_FEATURE_DATA or ./data).
    """
    views = feature_views(Path(data_dir) if data_dir is not None else feature_data_dir())
    return [user, item, *views, ranking_service(views)]


__all__ = [
    "CREATED_FIELD",
    "DATA_DIR_ENV",
    "EMBEDDING_DIM",
    "FEATURES",
    "FEATURE_TTL",
    "FEATURE_VIEWS",
    "ITEM_PROFILE",
    "ITEM_STATS",
    "ITEM_TEXT_EMBEDDING",
    "RANKING",
    "STAT_FEATURES",
    "TIMESTAMP_FIELD",
    "USER_PROFILE",
    "USER_STATS",
    "definitions",
    "feature_data_dir",
    "table_path",
]
