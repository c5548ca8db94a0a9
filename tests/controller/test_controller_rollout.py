"""The rollout controller through the official kubernetes client against a loopback stand-in for
the API server: its decisions, the exact merge patches, Events, a 409 retried, a missing
InferenceService, and the same rule as the local canary."""

from __future__ import annotations

import inspect
import json
from datetime import datetime, timezone

import pytest
from conftest import CONFIG, GOOD

from serving import canary, controller_cli
from serving.controller import STEP_ANNOTATION, RolloutState, plan

NOW = datetime.fromtimestamp(1_700_000_000.0, timezone.utc).isoformat()


def spec_percents(api_server) -> dict:
    spec = api_server.get("recforge", "recforge-ranker")["spec"]
    return {
        component: spec[component].get("canaryTrafficPercent", "absent")
        for component in ("predictor", "transformer")
    }


def set_percent(api_server, percent) -> None:
    api_server.bump(
        ("recforge", "recforge-ranker"),
        {
            "spec": {
                "predictor": {"canaryTrafficPercent": percent},
                "transformer": {"canaryTrafficPercent": percent},
            }
        },
    )


def test_a_healthy_canary_steps_up_both_components_with_one_merge_patch(controller, api_server):
    decision = controller.reconcile_once()
    assert decision.action == "step" and (decision.from_percent, decision.to_percent) == (10, 25)
    (patch,) = api_server.patches
    assert patch == {
        "content_type": "application/merge-patch+json",
        "body": {
            "metadata": {"resourceVersion": "1", "annotations": {STEP_ANNOTATION: NOW}},
            "spec": {"predictor": {"canaryTrafficPercent": 25}, "transformer": {"canaryTrafficPercent": 25}},
        },
    }
    assert spec_percents(api_server) == {"predictor": 25, "transformer": 25}


def test_after_the_last_step_promotion_removes_the_percent(controller, api_server):
    set_percent(api_server, 50)
    decision = controller.reconcile_once()
    assert decision.action == "promote"
    (patch,) = api_server.patches
    assert patch["body"] == {
        "metadata": {
            "resourceVersion": "2",
            "annotations": {STEP_ANNOTATION: None, "recforge.io/primary-model-version": "v2"},
        },
        "spec": {"predictor": {"canaryTrafficPercent": None}, "transformer": {"canaryTrafficPercent": None}},
    }
    isvc = api_server.get("recforge", "recforge-ranker")
    assert spec_percents(api_server) == {"predictor": "absent", "transformer": "absent"}
    assert isvc["metadata"]["annotations"]["recforge.io/primary-model-version"] == "v2"


def test_a_worse_ctr_rolls_back_to_zero_and_warns(controller, api_server, prometheus):
    prometheus.arms["v2"] = {**GOOD, "clicks": 1500}
    decision = controller.reconcile_once()
    assert decision.action == "rollback" and "CTR significantly worse" in decision.reasons[0]
    assert api_server.patches[0]["body"]["spec"] == {
        "predictor": {"canaryTrafficPercent": 0},
        "transformer": {"canaryTrafficPercent": 0},
    }
    (event,) = api_server.events
    assert event["reason"] == "CanaryRolledBack" and event["type"] == "Warning"
    assert (
        event["involvedObject"]["kind"] == "InferenceService"
        and event["involvedObject"]["name"] == "recforge-ranker"
    )


def test_an_error_guardrail_rolls_back(controller, prometheus):
    prometheus.arms["v2"] = {**GOOD, "error": 200}
    decision = controller.reconcile_once()
    assert decision.action == "rollback" and "guardrail error_rate broken" in decision.reasons


def test_too_few_requests_hold_without_patching(controller, api_server, prometheus):
    prometheus.arms["v2"] = {**GOOD, "ok": 40}
    decision = controller.reconcile_once()
    assert decision.action == "hold" and "waiting for evidence" in decision.reasons[0]
    assert api_server.patches == []
    assert [e["reason"] for e in api_server.events] == ["CanaryHold"]


def test_every_decision_is_recorded_as_an_event_on_the_inference_service(controller, api_server):
    controller.reconcile_once()
    (event,) = api_server.events
    assert event["reason"] == "CanaryStep" and event["source"]["component"] == "recforge-rollout-controller"
    assert event["message"].startswith("step: 10 -> 25")
    assert event["involvedObject"]["uid"] == "uid-1"


def test_a_409_conflict_is_retried_on_the_fresh_object(controller, api_server):
    api_server.concurrent_writes = 1
    decision = controller.reconcile_once()
    assert decision.action == "step"
    assert [p["body"]["metadata"]["resourceVersion"] for p in api_server.patches] == ["1", "2"]
    isvc = api_server.get("recforge", "recforge-ranker")
    assert isvc["metadata"]["labels"]["touched-by"] == "someone-else"  # their change survived
    assert spec_percents(api_server) == {"predictor": 25, "transformer": 25}


def test_conflicts_that_never_stop_end_in_a_hold(controller, api_server):
    api_server.concurrent_writes = 10
    decision = controller.reconcile_once()
    assert decision.action == "hold" and "conflicting writes" in decision.reasons[0]
    assert len(api_server.patches) == CONFIG.max_conflict_retries + 1


def test_a_missing_inference_service_is_reported_not_raised(controller, api_server):
    api_server.objects.clear()
    decision = controller.reconcile_once()
    assert decision.action == "missing"
    assert "InferenceService recforge/recforge-ranker does not exist" in decision.reasons[0]
    assert api_server.patches == [] and api_server.events == []


def test_no_canary_means_nothing_to_do(controller, api_server):
    api_server.bump(("recforge", "recforge-ranker"), {"spec": {"predictor": {"canaryTrafficPercent": None}}})
    assert controller.reconcile_once().action == "idle"
    assert api_server.patches == [] and api_server.events == []


def test_an_arm_prometheus_does_not_scrape_holds_with_the_reason(controller, prometheus):
    del prometheus.arms["v1"]
    decision = controller.reconcile_once()
    assert decision.action == "hold" and "version 'v1'" in decision.reasons[0]


def test_the_analysis_window_starts_at_the_current_step(controller, api_server, prometheus):
    started = datetime.fromtimestamp(1_700_000_000.0 - 300, timezone.utc).isoformat()
    api_server.bump(
        ("recforge", "recforge-ranker"), {"metadata": {"annotations": {STEP_ANNOTATION: started}}}
    )
    assert controller.reconcile_once().evidence["window_s"] == 300
    assert all("[300s]" in query for query in prometheus.queries)


def test_the_controller_decides_with_the_local_canarys_rule(chart_canary_isvc):
    assert inspect.signature(plan).parameters["decide_fn"].default is canary.decide
    from serving.metrics import ArmStats

    stats = {
        arm: ArmStats(
            requests=5000,
            errors=0,
            rejected=0,
            p50_ms=20.0,
            p99_ms=50.0,
            impressions=50_000,
            clicks=clicks,
            conversions=200,
            users=0,
        )
        for arm, clicks in (("primary", 2500), ("canary", 2200))
    }
    state = RolloutState.of(chart_canary_isvc)
    assert canary.decide(stats, CONFIG.rule).decision == "rollback"
    assert plan(state, stats, CONFIG, datetime.now(timezone.utc)).action == "rollback"


def test_watch_once_exits_2_naming_a_missing_inference_service(api_server, prometheus, tmp_path, capsys):
    api_server.objects.clear()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: standin\n"
        f"clusters: [{{name: standin, cluster: {{server: '{api_server.url}'}}}}]\n"
        "users: [{name: standin, user: {}}]\n"
        "contexts: [{name: standin, context: {cluster: standin, user: standin}}]\n"
    )
    parser = __import__("argparse").ArgumentParser()
    controller_cli.add_arguments(parser)
    args = parser.parse_args(
        [
            "--inference-service",
            "recforge-ranker",
            "--namespace",
            "recforge",
            "--prometheus-url",
            prometheus.url,
            "--kubeconfig",
            str(kubeconfig),
            "--once",
        ]
    )
    assert controller_cli.run(args) == 2
    assert "does not exist" in json.loads(capsys.readouterr().out)["reasons"][0]


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [("--steps", ["50", "25"], "steps: must increase"), ("--alpha", ["0.7"], "canary.alpha")],
)
def test_a_bad_flag_is_a_usage_error_naming_it(flag, value, message, capsys, prometheus):
    parser = __import__("argparse").ArgumentParser()
    controller_cli.add_arguments(parser)
    args = parser.parse_args(
        [
            "--inference-service",
            "x",
            "--namespace",
            "y",
            "--prometheus-url",
            prometheus.url,
            flag,
            *value,
            "--once",
        ]
    )
    assert controller_cli.run(args) == 2
    assert message in capsys.readouterr().err
