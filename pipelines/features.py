"""The feature step's public API: feature tables, the run's Feast store, training sets, serving.

- `read_events` reads the simulator's event chunks;
- `build_feature_tables` computes one Parquet table per feature view (`feature_tables`),
  including the item title embeddings from `embed_texts` (`text_embeddings`);
- `create_store`, `open_store`, `materialize`, `online_features` manage and read the run's own
  Feast store (`feature_store`);
- `training_frame` and `item_text_embeddings` build point-in-time correct training sets
  through Feast (`feature_training`).
"""

from pipelines.feature_config import FeatureConfig
from pipelines.feature_store import (
    OnlineFeatures,
    create_store,
    materialize,
    online_features,
    open_store,
)
from pipelines.feature_tables import FeatureTables, build_feature_tables, read_events
from pipelines.feature_training import item_text_embeddings, training_frame
from pipelines.text_embeddings import embed_texts

__all__ = [
    "FeatureConfig",
    "FeatureTables",
    "OnlineFeatures",
    "build_feature_tables",
    "create_store",
    "embed_texts",
    "item_text_embeddings",
    "materialize",
    "online_features",
    "open_store",
    "read_events",
    "training_frame",
]
