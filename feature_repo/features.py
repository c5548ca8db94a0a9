"""Feature views: user and item profiles, leak-free running statistics, item text embeddings."""

from datetime import timedelta
from pathlib import Path

from feast import Entity, FeatureView, Field
from feast.types import Array, Float32, Int64, String

if __package__:  # imported as part of the `feature_repo` package (pipelines, tests)
    from .entities import item, user
    from .sources import feature_data_dir, file_source
else:  # `feast apply` imports every file of the repo as a top-level module
    from entities import item, user
    from sources import feature_data_dir, file_source

USER_PROFILE = "user_profile"
USER_STATS = "user_stats"
ITEM_PROFILE = "item_profile"
ITEM_STATS = "item_stats"
ITEM_TEXT_EMBEDDING = "item_text_embedding"
EMBEDDING_DIM = 384

# A stats row holds cumulative counts up to its timestamp, and profiles and embeddings are static,
# so every row stays valid until a newer row of the same entity replaces it. Ten years covers any
# history we train on and makes the first `feast materialize-incremental` (which starts at
# now - ttl) reach back before the data.
FEATURE_TTL = timedelta(days=3650)

STAT_FEATURES = ("impressions", "clicks", "conversions", "ctr", "cvr")


def stats_fields(prefix: str) -> list[Field]:
    """Counts from events strictly before the row's timestamp, and their smoothed rates."""
    counts = {
        "impressions": "impressions before the snapshot",
        "clicks": "clicks before the snapshot",
        "conversions": "conversions before the snapshot",
    }
    rates = {
        "ctr": "clicks / impressions, smoothed toward the global rate",
        "cvr": "conversions / clicks (post-click), smoothed toward the global rate",
    }
    return [Field(name=f"{prefix}_{n}", dtype=Int64, description=d) for n, d in counts.items()] + [
        Field(name=f"{prefix}_{n}", dtype=Float32, description=d) for n, d in rates.items()
    ]


def _view(
    data_dir: Path, name: str, entity: Entity, fields: list[Field], description: str
) -> FeatureView:
    return FeatureView(
        name=name,
        entities=[entity],
        ttl=FEATURE_TTL,
        schema=[Field(name=entity.join_key, dtype=Int64), *fields],
        source=file_source(data_dir, name),
        online=True,
        description=description,
    )


def _strings(*names: str) -> list[Field]:
    return [Field(name=n, dtype=String) for n in names]


def feature_views(data_dir: Path) -> list[FeatureView]:
    """All feature views, reading their tables from `data_dir`."""
    return [
        _view(data_dir, USER_PROFILE, user, _strings("age_bucket", "gender", "region"),
              "Static user attributes."),
        _view(data_dir, USER_STATS, user, stats_fields("user"),
              "User engagement so far, one row per snapshot in which it changed."),
        _view(data_dir, ITEM_PROFILE, item,
              [*_strings("category", "brand"), Field(name="price", dtype=Float32)],
              "Static item attributes."),
        _view(data_dir, ITEM_STATS, item, stats_fields("item"),
              "Item engagement so far, one row per snapshot in which it changed."),
        _view(data_dir, ITEM_TEXT_EMBEDDING, item,
              [Field(name="text_embedding", dtype=Array(Float32), vector_length=EMBEDDING_DIM,
                     description="Sentence embedding of the item title (unit norm).")],
              "Static item title embedding from the packaged all-MiniLM-L6-v2 encoder."),
    ]


user_profile, user_stats, item_profile, item_stats, item_text_embedding = feature_views(
    feature_data_dir()
)
