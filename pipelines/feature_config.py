"""Configuration of the feature step: statistics, text embeddings and the online store."""

import math
from dataclasses import dataclass

ONLINE_STORES = ("sqlite", "redis")


@dataclass(frozen=True)
class FeatureConfig:
    """How feature tables are computed and where the online store lives.

    Defaults work on a laptop: daily statistics snapshots, the packaged MiniLM encoder on CPU,
    a cache under the working directory and a SQLite online store.
    """

    stats_interval_hours: int = 24
    """Statistics snapshots every this many hours; a snapshot counts events strictly before it."""
    ctr_prior_strength: float = 20.0
    """Pseudo-impressions (pseudo-clicks for CVR) pulling rates toward the global rate; 0 = raw."""
    text_model: str = "all-MiniLM-L6-v2"
    """A packaged encoder name (see `pipelines.text_embeddings.TEXT_MODELS`) or a local
    sentence-transformers directory."""
    text_batch_size: int = 64
    cache_dir: str = ".recforge-cache/text-embeddings"
    """Embeddings cached here by sha256 of (model, text)."""
    online_store: str = "sqlite"
    redis_connection_string: str = "localhost:6379"
    """Used when `online_store == "redis"`, in Feast's `host:port[,option=value]` form."""

    def __post_init__(self) -> None:
        _require(
            _is_positive_int(self.stats_interval_hours),
            "stats_interval_hours",
            self.stats_interval_hours,
            "a positive whole number of hours, e.g. 24",
        )
        _require(
            isinstance(self.ctr_prior_strength, (int, float))
            and not isinstance(self.ctr_prior_strength, bool)
            and math.isfinite(self.ctr_prior_strength)
            and self.ctr_prior_strength >= 0,
            "ctr_prior_strength",
            self.ctr_prior_strength,
            "a finite number >= 0 (0 disables smoothing), e.g. 20.0",
        )
        _require(
            isinstance(self.text_model, str) and self.text_model.strip() != "",
            "text_model",
            self.text_model,
            'a packaged encoder name such as "all-MiniLM-L6-v2" or a local model directory',
        )
        _require(
            _is_positive_int(self.text_batch_size),
            "text_batch_size",
            self.text_batch_size,
            "a positive integer, e.g. 64",
        )
        _require(
            isinstance(self.cache_dir, str) and self.cache_dir.strip() != "",
            "cache_dir",
            self.cache_dir,
            "a directory path",
        )
        _require(
            self.online_store in ONLINE_STORES,
            "online_store",
            self.online_store,
            f"one of {', '.join(ONLINE_STORES)}",
        )
        _require(
            self.online_store != "redis"
            or (
                isinstance(self.redis_connection_string, str)
                and ":" in self.redis_connection_string
            ),
            "redis_connection_string",
            self.redis_connection_string,
            'host:port, e.g. "localhost:6379"',
        )


def _is_positive_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _require(ok: bool, field: str, value: object, allowed: str) -> None:
    if not ok:
        raise ValueError(f"FeatureConfig.{field}={value!r} is invalid: expected {allowed}")
