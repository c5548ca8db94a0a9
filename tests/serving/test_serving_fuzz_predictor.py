"""Fuzzing a real predictor process (V1 and V2): never a 5xx, never a crash, a 4xx naming the field."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fuzz_requests import (
    assert_answered_or_refused,
    corrupted_v1,
    corrupted_v2,
    forwarded_features,
    malformed_bodies,
    post,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from serving.process import ServerProcess, start_server

FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)


@pytest.fixture(scope="module")
def store_predictor(sqlite_feast_repo, tiny_artifact, tmp_path_factory) -> Iterator[ServerProcess]:
    """A predictor reading features from an online store in-process."""
    log = tmp_path_factory.mktemp("fuzz-store") / "predictor.log"
    slack = ["--feature-timeout", "5"]  # about ids, not time: a loaded box must not degrade it
    with start_server(
        log, artifact_dir=tiny_artifact, feature_repo=sqlite_feast_repo, extra_args=slack, timeout_s=180
    ) as server:
        yield server


@FUZZ
@given(case=corrupted_v1())
def test_any_v1_field_gets_an_answer_or_a_4xx_naming_it(predictor_server, client, case):
    body, field = case
    reply = post(client, f"{predictor_server.url}/v1/models/ranker:predict", body)
    assert_answered_or_refused(reply, field)


@FUZZ
@given(case=forwarded_features())
def test_forwarded_features_get_an_answer_or_a_4xx_naming_the_column(predictor_server, client, case):
    body, field = case
    reply = post(client, f"{predictor_server.url}/v1/models/ranker:predict", body)
    assert_answered_or_refused(reply, field)


@FUZZ
@given(case=corrupted_v2())
def test_any_v2_input_gets_an_answer_or_a_4xx_naming_it(predictor_server, client, case):
    body, fields = case
    reply = post(client, f"{predictor_server.url}/v2/models/ranker/infer", body)
    assert_answered_or_refused(reply, *fields)


@FUZZ
@given(body=malformed_bodies)
@pytest.mark.parametrize("path", ["/v1/models/ranker:predict", "/v2/models/ranker/infer"])
def test_a_body_that_is_not_a_request_gets_a_4xx(predictor_server, client, path, body):
    assert_answered_or_refused(post(client, predictor_server.url + path, body))


@settings(max_examples=25, deadline=None)
@given(user_id=INT64, item_ids=st.lists(INT64, min_size=1, max_size=500, unique=True))
def test_any_ids_are_ranked_with_online_features_whole(store_predictor, client, user_id, item_ids):
    body = f'{{"instances": [{{"user_id": {user_id}, "item_ids": {item_ids}}}]}}'.encode()
    reply = post(client, f"{store_predictor.url}/v1/models/ranker:predict", body)
    assert reply.status_code == 200, reply.text
    (prediction,) = reply.json()["predictions"]
    assert sorted(prediction["item_ids"]) == sorted(item_ids) and "degraded" not in prediction


def test_the_predictor_still_answers_after_fuzzing(predictor_server, client):
    body = b'{"instances": [{"user_id": -5, "item_ids": [-1, 0, 123456789012]}]}'
    reply = post(client, f"{predictor_server.url}/v1/models/ranker:predict", body)
    assert predictor_server.running() and reply.status_code == 200
