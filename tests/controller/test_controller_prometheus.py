"""The controller's PromQL against a real Prometheus scraping two real `recforge serve` processes
(model versions tiny-1 and tiny-2) on loopback: series exist from the start, the user moments
the predictors export read back exactly, the controller reaches the local analysis' decision
and evidence on the same outcomes, and a restarted revision is reported."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from controller_standins import user_rows

from serving.analysis import GuardrailLimits, RolloutState, UserMoments, evaluate
from serving.canary import arm_window
from serving.controller import RolloutConfig, RolloutController, cluster_policy
from serving.k8s_inference_service import InferenceServiceClient
from serving.metrics import ArmStats
from serving.process import free_port, launch_server
from serving.prometheus_source import PrometheusError, PrometheusSource

PROMETHEUS = shutil.which("prometheus")
pytestmark = pytest.mark.skipif(
    PROMETHEUS is None,
    reason="no prometheus binary (Debian: apt-get install -y --no-install-recommends prometheus)",
)
MODEL = "recforge-ranker"
VERSIONS = {"primary": "tiny-1", "canary": "tiny-2"}
ARTIFACTS: dict = {}
POLICY = cluster_policy(
    min_canary_users_per_step=2,
    min_seconds_per_step=0.0,
    planned_users=300,
    guardrails=GuardrailLimits(max_p99_ms=5000.0, min_requests=20),
)


@pytest.fixture(scope="module")
def servers(tiny_artifact, tmp_path_factory):
    """`python -m serving.server` for tiny-1 and a re-saved copy of it as version tiny-2
    (a dict: a test may replace a server with a restarted one)."""
    from models.artifact import load_artifact, save_artifact

    folder = tmp_path_factory.mktemp("prometheus-arms")
    second = save_artifact(
        load_artifact(tiny_artifact).network, folder / "tiny-2", name="ranker", version="tiny-2"
    )
    ARTIFACTS.update({"tiny-1": tiny_artifact, "tiny-2": second})
    launched = {
        version: launch_server(folder / f"{version}.log", artifact_dir=path, model_name=MODEL)
        for version, path in ARTIFACTS.items()
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


def report(server, version: str, user: int, counts) -> None:
    impressions, clicks, conversions = (int(c) for c in counts)
    body = {"model_version": version, "user_id": user, "impressions": impressions, "clicks": clicks}
    reply = httpx.post(
        f"{server.url}/v1/models/{MODEL}/outcomes", json={**body, "conversions": conversions}, timeout=30
    )
    assert reply.status_code == 200, reply.text


def in_pieces(counts: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
    """A user's totals as 1-3 reports (one per ranked list), each ordered like a real outcome."""
    pieces = [counts]
    while len(pieces) < 3 and pieces[-1][0] >= 2 and rng.random() < 0.6:
        last = pieces.pop()
        first = np.array([last[0] // 2, min(last[1], last[0] // 2), 0])
        first[2] = min(last[2], first[1])
        pieces += [first, last - first]
    return pieces


def point_the_service_at(api_server, percent: int) -> None:
    api_server.bump(
        ("recforge", MODEL),
        {
            "metadata": {
                "labels": {"recforge.io/model-version": VERSIONS["canary"]},
                "annotations": {"recforge.io/primary-model-version": VERSIONS["primary"]},
            },
            "spec": {
                component: {"canaryTrafficPercent": percent} for component in ("predictor", "transformer")
            },
        },
    )


def controller_for(api_server, source, now_s: float) -> RolloutController:
    config = RolloutConfig(MODEL, "recforge", policy=POLICY, interval_s=30)
    return RolloutController(
        config, InferenceServiceClient(api_server.api_client()), source, clock=lambda: now_s
    )


def test_every_series_exists_at_zero_before_any_traffic(source):
    readings = poll(lambda: source.read(MODEL, VERSIONS, time.time()), 30)
    for reading in readings.values():
        assert set(reading.moments.statistics().values()) == {0.0}
        assert set(reading.requests.values()) == set(reading.untracked.values()) == {0}
        assert (reading.replicas, reading.replicas_seen, reading.counter_reset) == (1, 1, False)
        assert reading.p99_ms is None  # no request yet: no latency, not an error


def test_real_predictors_scraped_by_prometheus_give_the_controller_the_local_analysis_verdict(
    servers, source, api_server
):
    """The proof of "one analysis, two drivers": the same users' outcomes, reported to real
    predictors in pieces and read back from Prometheus, give the controller the decision and
    evidence that the local canary's analysis gives on the per-user rows."""
    rng = np.random.default_rng(5)
    rows = {"tiny-1": user_rows(rng, 150, ctr=0.10), "tiny-2": user_rows(rng, 150, ctr=0.03)}
    body = {"instances": [{"user_id": 7, "item_ids": [1, 2, 3, 4, 5]}]}
    codes = [rank(servers[version], body) for version in rows for _ in range(40)]
    assert set(codes) == {200}
    assert rank(servers["tiny-2"], {"instances": [{"user_id": "seven"}]}) == 400
    for version, table in rows.items():
        for user, counts in enumerate(table):
            for piece in in_pieces(counts, rng):
                report(servers[version], version, user, piece)
    expected = {
        arm: UserMoments.from_per_user(rows[version]).statistics() for arm, version in VERSIONS.items()
    }

    def settled():
        readings = source.read(MODEL, VERSIONS, time.time())
        arrived = all(readings[arm].moments.statistics() == expected[arm] for arm in VERSIONS)
        return readings if arrived and readings["canary"].requests["rejected"] else None

    poll(settled, 30)
    point_the_service_at(api_server, 50)
    now_s = time.time()
    decision = controller_for(api_server, source, now_s).reconcile_once()

    arms = decision.evidence["arms"]
    assert arms["primary"]["requests"] == {"ok": 40, "error": 0, "rejected": 0}
    assert arms["canary"]["requests"] == {"ok": 40, "error": 0, "rejected": 1}
    started = max(arms[arm]["state_started_s"][0] for arm in VERSIONS)
    local = evaluate(
        POLICY,
        RolloutState(step=2, started_s=started, step_started_s=started),
        *(
            arm_window(
                ArmStats(
                    requests=sum(arms[arm]["requests"].values()),
                    errors=0,
                    rejected=arms[arm]["requests"]["rejected"],
                    p50_ms=None,
                    p99_ms=arms[arm]["p99_ms"],  # a histogram's p99: the guardrail's input, not the analysis
                    impressions=0,
                    clicks=0,
                    conversions=0,
                    users=len(rows[version]),
                    per_user=rows[version],
                )
            )
            for arm, version in VERSIONS.items()
        ),
        now_s,
    )
    assert decision.action == local.action == "rollback", decision.reasons
    assert decision.reasons == local.reasons and "canary CTR worse" in decision.reasons[0]
    assert decision.evidence["analysis"] == local.evidence


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


def test_a_restarted_canary_is_reported_and_not_mixed_into_the_sums(servers, source, api_server, tmp_path):
    before = poll(lambda: source.read(MODEL, VERSIONS, time.time()), 30)["canary"]
    old = servers["tiny-2"]
    old.stop()
    port = int(old.url.rsplit(":", 1)[1])
    servers["tiny-2"] = launch_server(
        tmp_path / "tiny-2-again.log", artifact_dir=ARTIFACTS["tiny-2"], model_name=MODEL, port=port
    )
    servers["tiny-2"].wait_ready(120)

    def restarted():
        readings = source.read(MODEL, VERSIONS, time.time())
        return readings if readings["canary"].started_s != before.started_s else None

    readings = poll(restarted, 30)
    assert readings["canary"].replicas_seen == 2 and readings["canary"].moments.statistics()["users"] == 0
    point_the_service_at(api_server, 50)
    decision = controller_for(api_server, source, time.time()).reconcile_once()
    assert decision.action == "continue"
    assert "canary version 'tiny-2' restarted or lost a replica" in decision.reasons[0]
