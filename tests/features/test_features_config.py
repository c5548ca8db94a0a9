"""FeatureConfig: laptop defaults, and invalid values rejected naming the field."""

import pytest

from pipelines.features import FeatureConfig


def test_defaults_are_valid():
    config = FeatureConfig()
    assert (config.stats_interval_hours, config.online_store) == (24, "sqlite")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("stats_interval_hours", 0),
        ("stats_interval_hours", 1.5),
        ("stats_interval_hours", True),
        ("ctr_prior_strength", -1.0),
        ("ctr_prior_strength", float("nan")),
        ("text_model", ""),
        ("text_batch_size", 0),
        ("cache_dir", ""),
        ("online_store", "dynamodb"),
    ],
)
def test_invalid_values_are_rejected_naming_the_field(field, value):
    with pytest.raises(ValueError, match=f"FeatureConfig.{field}="):
        FeatureConfig(**{field: value})


def test_online_store_error_lists_the_allowed_stores():
    with pytest.raises(ValueError, match="sqlite, redis"):
        FeatureConfig(online_store="memory")


def test_redis_needs_a_host_and_port():
    with pytest.raises(ValueError, match="redis_connection_string"):
        FeatureConfig(online_store="redis", redis_connection_string="localhost")
