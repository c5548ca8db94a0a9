"""The user's features read view by view equal what Feast's get_online_features returns."""

import asyncio

import numpy as np
import pytest

from serving.feature_source import FeastOnlineSource
from tests.serving.conftest import ONLINE_USERS

UNKNOWN_USER = 999_999


def feast_user_features(source: FeastOnlineSource, user_id: int) -> dict:
    values = source.fetch(user_id, np.array([1]))  # get_online_features for the user and an item
    return {name: values[name][0] for name in source.fetch_user(user_id)}


@pytest.mark.parametrize("online_store", ["sqlite", "redis"])
def test_fetch_user_equals_get_online_features(online_store, make_feast_repo, tmp_path, request):
    if online_store == "redis":
        redis = request.getfixturevalue("redis_server")
        settings = {"type": "redis", "connection_string": redis.address}
    else:
        settings = {"type": "sqlite", "path": str(tmp_path / "online.db")}
    repo = make_feast_repo(tmp_path / "repo", settings)
    source = FeastOnlineSource(repo)
    for user_id in (*ONLINE_USERS, UNKNOWN_USER):
        features = source.fetch_user(user_id)
        assert features == feast_user_features(source, user_id)
    assert set(source.fetch_user(ONLINE_USERS[0])) >= {"age_bucket", "user_ctr"}
    assert all(value is None for value in source.fetch_user(UNKNOWN_USER).values())


def test_users_read_together_with_asyncio_equal_each_read_alone(make_feast_repo, redis_server, tmp_path):
    repo = make_feast_repo(tmp_path / "repo", {"type": "redis", "connection_string": redis_server.address})
    source = FeastOnlineSource(repo)
    assert source.reads_async

    users = [*ONLINE_USERS, UNKNOWN_USER, ONLINE_USERS[0]]

    async def read() -> tuple[list, list]:  # one loop: Feast's asyncio client stays on its first
        return await source.fetch_users_async(users), await source.fetch_users_async(users[1:2])

    together, one = asyncio.run(read())
    assert together == [source.fetch_user(u) for u in users]
    assert one == [source.fetch_user(users[1])]


def test_a_store_without_an_asyncio_read_is_read_in_threads(make_feast_repo, tmp_path):
    repo = make_feast_repo(tmp_path / "repo", {"type": "sqlite", "path": str(tmp_path / "online.db")})
    assert not FeastOnlineSource(repo).reads_async
