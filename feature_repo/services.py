"""Feature services: the feature sets models are trained and served with."""

from feast import FeatureService, FeatureView

if __package__:  # imported as part of the `feature_repo` package (pipelines, tests)
    from .features import (
        item_profile,
        item_stats,
        item_text_embedding,
        user_profile,
        user_stats,
    )
else:  # `feast apply` imports every file of the repo as a top-level module
    from features import item_profile, item_stats, item_text_embedding, user_profile, user_stats

RANKING = "ranking"


def ranking_service(views: list[FeatureView]) -> FeatureService:
    """Every feature the ranking model reads, for training and serving alike."""
    return FeatureService(
        name=RANKING,
        features=list(views),
        description="User and item profiles, statistics and the item text embedding.",
    )


ranking = ranking_service(
    [user_profile, user_stats, item_profile, item_stats, item_text_embedding]
)
