"""The controller's PromQL against a real Prometheus scraping two real `recforge serve` processes
(model versions tiny-1 and tiny-2) on loopback: series exist from the start, counts follow the
traffic, and a full reconcile decides from them."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from conftest import CONFIG

from serving.controller import RolloutController
from serving.k8s_inference_service import InferenceServiceClient
from serving.process import free_port, launch_server
from serving.prometheus_source import PrometheusError, PrometheusSource

PROMETHEUS = shutil.which("prometheus")
pytestmark = pytest.mark.skipif(
    PROMETHEUS is None,
    reason="no prometheus binary (Debian: apt-get install -y --no-install-recommends prometheus)",
)
MODEL = "recforge-ranker"
VERSIONS = {"primary": "tiny-1", "canary": "tiny-2"}


@pytest.fixture(scope="module")
def servers(tiny_artifact, tmp_path_factory):
    """`python -m serving.server` for tiny-1 and a re-saved copy of it as version tiny-2."""
    from models.artifact import load_artifact, save_artifact

    folder = tmp_path_factory.mktemp("prometheus-arms")
    second = save_artifact(
        load_artifact(tiny_artifact).network, folder / "tiny-2", name="ranker", version="tiny-2"
    )
    launched = {
        version: launch_server(folder / f"{version}.log", artifact_dir=path, model_name=MODEL)
        for version, path in (("tiny-1", tiny_artifact), ("tiny-2", second))
    }
    try:
        for server in launched.values():
            server.wait_ready(120)
        yield launched
    finally:
        for server in launched.values():
            server.stop()


@pytest.fixture(scope="module")
def prometheus(servers, tmp_path_factory):
    """Prometheus with a fresh data dir, scraping both servers every second."""
    folder = tmp_path_factory.mktemp("prometheus")
    targets = ", ".join(f"'{server.url.removeprefix('http://')}'" for server in servers.values())
    (folder / "prometheus.yml").write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        f"  - job_name: recforge\n    static_configs:\n      - targets: [{targets}]\n"
        "        labels: {namespace: recforge}\n"
    )
    port = free_port()
    with open(folder / "prometheus.log", "wb") as log:
        process = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={folder / 'prometheus.yml'}",
                f"--storage.tsdb.path={folder / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        poll(lambda: httpx.get(f"{url}/-/ready", timeout=1).status_code == 200, 30, folder / "prometheus.log")
        yield url
    finally:
        os.kill(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


def poll(condition, timeout_s: float, log: Path | None = None):
    """Wait for ``condition()`` to hold (Prometheus scrapes on its own clock), bounded."""
    deadline = time.monotonic() + timeout_s
    last_error = None
    while time.monotonic() < deadline:
        try:
            result = condition()
            if result:
                return result
        except (httpx.HTTPError, PrometheusError) as error:
            last_error = error
        time.sleep(0.25)
    detail = log.read_text()[-2000:] if log and log.exists() else last_error
    raise AssertionError(f"condition not met within {timeout_s} s: {detail}")


@pytest.fixture(scope="module")
def source(prometheus):
    return PrometheusSource(prometheus, 'namespace="recforge"')


def rank(server, body) -> int:
    return httpx.post(f"{server.url}/v1/models/{MODEL}:predict", json=body, timeout=30).status_code


def test_every_arm_and_status_exists_before_any_traffic(source):
    stats = poll(lambda: source.arm_stats(MODEL, VERSIONS, 300), 30)
    for arm in ("primary", "canary"):
        assert (stats[arm].requests, stats[arm].errors, stats[arm].impressions) == (0, 0, 0)
        assert stats[arm].p99_ms is None  # no request yet: no latency, not an error


def test_counts_follow_the_traffic_and_a_reconcile_decides_from_them(servers, source, prometheus, api_server):
    body = {"instances": [{"user_id": 7, "item_ids": [1, 2, 3, 4, 5]}]}
    sent = {"tiny-1": 40, "tiny-2": 30}
    codes = [rank(servers[version], body) for version, n in sent.items() for _ in range(n)]
    assert set(codes) == {200}
    assert rank(servers["tiny-2"], {"instances": [{"user_id": "seven"}]}) == 400
    outcomes = {"tiny-1": (400, 20, 2), "tiny-2": (300, 15, 1)}
    for version, (impressions, clicks, conversions) in outcomes.items():
        reply = httpx.post(
            f"{servers[version].url}/v1/models/{MODEL}/outcomes",
            json={
                "model_version": version,
                "user_id": 7,
                "impressions": impressions,
                "clicks": clicks,
                "conversions": conversions,
            },
        )
        assert reply.status_code == 200, reply.text

    def settled():
        stats = source.arm_stats(MODEL, VERSIONS, 300)
        canary, primary = stats["canary"], stats["primary"]
        arrived = canary.rejected and canary.clicks >= 15 and primary.requests >= 40 and primary.clicks >= 20
        return stats if arrived else None

    stats = poll(settled, 30)
    primary, canary = stats["primary"], stats["canary"]
    # increase() extrapolates to the window's end: at most about one scrape interval more
    assert 40 <= primary.requests <= 60 and 31 <= canary.requests <= 45
    assert canary.rejected >= 1 and primary.errors == canary.errors == 0
    assert 400 <= primary.impressions <= 600 and 15 <= canary.clicks <= 23
    assert 0 < canary.p99_ms < 5000

    api_server.bump(
        ("recforge", MODEL),
        {
            "metadata": {
                "labels": {"recforge.io/model-version": "tiny-2"},
                "annotations": {"recforge.io/primary-model-version": "tiny-1"},
            }
        },
    )
    rule = type(CONFIG.rule)(min_requests_per_arm=20, max_p99_ms=5000.0)
    controller = RolloutController(
        type(CONFIG)(MODEL, "recforge", rule=rule, interval_s=30, window_s=300),
        InferenceServiceClient(api_server.api_client()),
        source,
    )
    decision = controller.reconcile_once()
    assert decision.action == "step" and decision.to_percent == 25, decision.reasons
    assert decision.evidence["arms"]["canary"]["clicks"] >= 15


def test_an_outcome_for_another_version_is_refused_naming_both(servers):
    reply = httpx.post(
        f"{servers['tiny-1'].url}/v1/models/{MODEL}/outcomes",
        json={"model_version": "tiny-2", "impressions": 10, "clicks": 1, "conversions": 0},
    )
    assert reply.status_code == 409
    assert "serves 'tiny-1', not 'tiny-2'" in reply.json()["error"]


@pytest.mark.parametrize(
    ("report", "field"),
    [({"impressions": 1, "clicks": 2}, "outcome: need"), ({"clicks": -1}, "clicks"), ("[1]", "body")],
)
def test_a_malformed_outcome_is_a_400_naming_the_field(servers, report, field):
    reply = httpx.post(f"{servers['tiny-1'].url}/v1/models/{MODEL}/outcomes", json=report)
    assert reply.status_code == 400 and reply.json()["error"].startswith(field)
