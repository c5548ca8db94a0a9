"""The local canary driver looks at the sequential analysis as it plays and stops at a rollback."""

from __future__ import annotations

import json

import pytest

from pipelines.online_ab import run_canary
from pipelines.sim_config import SimulationConfig
from pipelines.sim_world import World
from serving.canary import CanaryConfig

SMALL_WORLD = SimulationConfig(num_users=300, num_items=200, num_impressions=5_000, days=3)


@pytest.mark.e2e
def test_a_guardrail_breach_stops_the_canary_at_the_first_look_with_its_trail(tiny_artifact, tmp_path):
    config = CanaryConfig(
        num_requests=400,
        look_every_requests=60,
        candidates_per_request=20,
        slate_size=5,
        min_requests_per_arm=10,
        max_p99_ms=0.001,  # no real server answers this fast
        concurrency=4,
    )
    report = run_canary(tiny_artifact, tiny_artifact, None, World.from_config(SMALL_WORLD), config, tmp_path)
    payload = json.loads(json.dumps(report.to_dict()))
    trail = payload["analysis"]["trail"]
    assert payload["decision"] == "rollback" and "p99_ms" in payload["reasons"][0]
    assert [look["action"] for look in trail] == ["rollback"]
    assert trail[0]["requests"] == sum(arm["requests"] for arm in payload["arms"].values()) == 60
    assert set(trail[0]["metrics"]) == {"ctr", "cvr"}
    assert {"estimate", "interval", "p_value"} <= set(trail[0]["metrics"]["ctr"])
