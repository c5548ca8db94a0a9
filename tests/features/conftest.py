"""Fixtures over the tiny world of `features_world`: one embedding cache and table set per session."""

from pathlib import Path

import pytest
from features_world import copy_tables, write_world

from pipelines.features import FeatureConfig, FeatureTables, build_feature_tables, create_store


@pytest.fixture(scope="session")
def embedding_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache for the session: the four titles are encoded once."""
    return tmp_path_factory.mktemp("text-embeddings")


@pytest.fixture(scope="session")
def config(embedding_cache: Path) -> FeatureConfig:
    return FeatureConfig(cache_dir=str(embedding_cache))


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_world(tmp_path_factory.mktemp("world"))


@pytest.fixture(scope="session")
def tables(world: Path, config: FeatureConfig, tmp_path_factory) -> FeatureTables:
    return build_feature_tables(world, tmp_path_factory.mktemp("features"), config)


@pytest.fixture
def store(tables: FeatureTables, config: FeatureConfig, tmp_path: Path):
    """A fresh store per test over a copy of the session's tables (tests may rewrite them)."""
    return create_store(copy_tables(tables, tmp_path), config)
