"""Fuzzing the canary router's HTTP app (``python -m serving.router``) in front of a real
predictor: never a 5xx, never a crash, the predictor's 4xx naming the field passed through."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest
from fuzz_requests import (
    assert_answered_or_refused,
    corrupted_v1,
    corrupted_v2,
    malformed_bodies,
    post,
)
from hypothesis import HealthCheck, given, settings

from serving.process import free_port

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def router_url(predictor_server, tmp_path_factory) -> Iterator[str]:
    """The router process, both arms on ``predictor_server`` (so either arm's answer is checked)."""
    port = free_port()
    log = tmp_path_factory.mktemp("router") / "router.log"
    command = [sys.executable, "-m", "serving.router", "--primary", predictor_server.url]
    command += ["--canary", predictor_server.url, "--canary-percent", "50", "--port", str(port)]
    with open(log, "wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log.read_text()
            try:
                if httpx.get(url, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, f"router not up in 60 s:\n{log.read_text()}"
                time.sleep(0.1)  # readiness poll, as serving.process.ServerProcess.wait_ready
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


@FUZZ
@given(case=corrupted_v1())
def test_any_v1_field_through_the_router_gets_an_answer_or_a_4xx_naming_it(router_url, client, case):
    body, field = case
    assert_answered_or_refused(post(client, f"{router_url}/v1/models/ranker:predict", body), field)


@FUZZ
@given(case=corrupted_v2())
def test_any_v2_input_through_the_router_gets_an_answer_or_a_4xx_naming_it(router_url, client, case):
    body, fields = case
    assert_answered_or_refused(post(client, f"{router_url}/v2/models/ranker/infer", body), *fields)


@FUZZ
@given(body=malformed_bodies)
@pytest.mark.parametrize("path", ["/v1/models/ranker:predict", "/v2/models/ranker/infer"])
def test_a_body_that_is_not_a_request_through_the_router_gets_a_4xx(router_url, client, path, body):
    assert_answered_or_refused(post(client, router_url + path, body))


def test_the_router_counts_no_errors_after_fuzzing(router_url, client):
    stats = client.get(f"{router_url}/stats").json()["arms"]
    assert all(arm["errors"] == 0 for arm in stats.values()), stats
