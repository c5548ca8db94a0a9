"""The local canary end to end: two real model servers, the router, simulated users, a decision."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import psutil
import pytest

from pipelines.online_ab import run_canary
from pipelines.sim_config import SimulationConfig
from pipelines.sim_world import World
from serving.canary import CanaryConfig
from serving.process import ServerStartError

SMALL_WORLD = SimulationConfig(num_users=300, num_items=200, num_impressions=5_000, days=3)
QUICK = CanaryConfig(
    num_requests=240,
    candidates_per_request=20,
    slate_size=5,
    min_requests_per_arm=40,
    max_p99_ms=5_000.0,  # this shared 2-core box is no latency benchmark
    concurrency=4,
)


def servers_of(artifact: Path) -> list[psutil.Process]:
    """Live ``serving.server`` processes started by this test process for ``artifact``."""
    return [
        child
        for child in psutil.Process().children(recursive=True)
        if child.is_running()
        and child.status() != psutil.STATUS_ZOMBIE
        and "serving.server" in child.cmdline()
        and str(artifact) in child.cmdline()
    ]


@pytest.fixture
def own_artifact(tiny_artifact, tmp_path) -> Path:
    """A private copy, so this test's servers can be told apart from other tests' servers."""
    return Path(shutil.copytree(tiny_artifact, tmp_path / "artifact"))


@pytest.mark.e2e
def test_identical_models_are_promoted_with_a_full_report(own_artifact, tmp_path):
    report = run_canary(
        own_artifact, own_artifact, None, World.from_config(SMALL_WORLD), QUICK, tmp_path / "ab"
    )
    payload = json.loads(json.dumps(report.to_dict()))
    assert payload["decision"] == "promote"
    assert payload["canary_percent"] == 50
    for arm in ("primary", "canary"):
        stats = payload["arms"][arm]
        assert {"requests", "ctr", "cvr", "p50_ms", "p99_ms", "errors"} <= set(stats)
        assert stats["requests"] >= 40 and stats["errors"] == 0
        assert stats["impressions"] == 5 * stats["requests"]
        assert 0 < stats["ctr"] < 1
    assert sum(payload["arms"][a]["requests"] for a in ("primary", "canary")) == 240
    assert payload["versions"]["canary"]["pinned"] == "tiny-1"
    assert set(payload["versions"]["canary"]["answered"]) == {"tiny-1"}
    assert servers_of(own_artifact) == []


@pytest.mark.e2e
def test_arms_behind_feast_transformers_answer_with_their_pinned_version(
    own_artifact, sqlite_feast_repo, tmp_path
):
    report = run_canary(
        own_artifact,
        own_artifact,
        sqlite_feast_repo,
        World.from_config(SMALL_WORLD),
        replace(QUICK, num_requests=120, min_requests_per_arm=20),
        tmp_path / "ab",
        transformer=True,
    )
    payload = report.to_dict()
    assert payload["decision"] == "promote", payload["reasons"]
    for arm in ("primary", "canary"):
        assert payload["arms"][arm]["errors"] == 0
        assert payload["versions"][arm] == {
            "pinned": "tiny-1",
            "answered": {"tiny-1": payload["arms"][arm]["requests"]},
        }
    assert sorted(p.name for p in (tmp_path / "ab").glob("*.log")) == [
        "canary-predictor.log",
        "canary-transformer.log",
        "primary-predictor.log",
        "primary-transformer.log",
    ]
    assert servers_of(own_artifact) == []


@pytest.mark.e2e
def test_a_candidate_that_cannot_start_fails_clearly_and_stops_the_primary(own_artifact, tmp_path):
    with pytest.raises(ServerStartError, match="artifact: .*missing"):
        run_canary(
            own_artifact,
            tmp_path / "missing",
            None,
            World.from_config(SMALL_WORLD),
            QUICK,
            tmp_path / "ab",
        )
    assert servers_of(own_artifact) == []
