"""The rollout controller through the official kubernetes client against a loopback stand-in for
the API server, and a stand-in for Prometheus' query API: its decisions, the exact merge patches,
Events, a 409 retried, a missing InferenceService, evidence it cannot trust, and the same
analysis as the local canary."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from controller_setup import CONFIG, NOW_S, arm

from serving import controller_cli
from serving.analysis import RolloutState, evaluate
from serving.canary import arm_window
from serving.controller import STEP_ANNOTATION
from serving.metrics import ArmStats

NOW = datetime.fromtimestamp(NOW_S, timezone.utc).isoformat()


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


def test_at_the_last_step_a_canary_not_worse_is_promoted_and_the_percent_removed(
    controller, api_server, prometheus
):
    set_percent(api_server, 50)
    rows = prometheus.arms["v1"] = arm(40_000, 20_000, seed=3)
    prometheus.arms["v2"] = {**arm(0, 20_000), "rows": rows["rows"]}  # the very same users' outcomes
    decision = controller.reconcile_once()
    assert decision.action == "promote", decision.reasons
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


def test_a_clearly_worse_ctr_rolls_back_to_zero_and_warns(controller, api_server, prometheus):
    set_percent(api_server, 50)
    prometheus.arms = {"v1": arm(20_000, 10_000, seed=1), "v2": arm(20_000, 10_000, ctr=0.035, seed=2)}
    decision = controller.reconcile_once()
    assert decision.action == "rollback" and "canary CTR worse" in decision.reasons[0]
    assert decision.evidence["analysis"]["metrics"]["ctr"]["interval"][1] < -0.10
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
    prometheus.arms["v2"]["error"] = 200
    decision = controller.reconcile_once()
    assert decision.action == "rollback" and decision.reasons[0].startswith("guardrail error_rate")


def test_requests_off_the_weight_roll_back_as_a_sample_ratio_mismatch(controller, prometheus):
    prometheus.arms["v2"]["ok"] = 1500  # 14 % of the requests at a 10 % weight
    decision = controller.reconcile_once()
    assert decision.action == "rollback" and "sample ratio mismatch" in decision.reasons[0]
    assert decision.evidence["analysis"]["srm"]["unit"] == "requests"


def test_too_few_canary_users_in_the_step_continue_without_patching(controller, api_server, prometheus):
    prometheus.arms["v2"] = arm(100, 1000)
    decision = controller.reconcile_once()
    assert decision.action == "continue" and "100/500 canary users" in decision.reasons[0]
    assert api_server.patches == []
    assert [e["reason"] for e in api_server.events] == ["CanaryContinue"]


def test_a_rollout_past_its_maximum_duration_is_inconclusive_and_goes_back_to_the_primary(
    controller, api_server, prometheus
):
    for version in ("v1", "v2"):
        prometheus.arms[version]["starts"] = [NOW_S - 5 * 3600]
    prometheus.arms["v2"] = {**prometheus.arms["v2"], **arm(100, 1000, starts=[NOW_S - 5 * 3600])}
    decision = controller.reconcile_once()
    assert (decision.action, decision.to_percent) == ("inconclusive", 0)
    assert spec_percents(api_server) == {"predictor": 0, "transformer": 0}
    assert [(e["reason"], e["type"]) for e in api_server.events] == [("CanaryInconclusive", "Warning")]


@pytest.mark.parametrize(
    ("version", "change", "reason"),
    [
        ("v2", {"starts": [NOW_S - 3600, NOW_S - 3500]}, "canary version 'v2' runs 2 replicas"),
        ("v2", {"seen": 2}, "canary version 'v2' restarted or lost a replica"),
        ("v1", {"at_step_start": {"ok": 9500}}, "primary version 'v1' restarted or lost a replica"),
        ("v2", {"untracked": {"capacity": 4}}, "missing from its per-user sums (capacity=4)"),
        ("v1", {"starts": [NOW_S - 86_400]}, "the primary's per-user sums began 82800 s before the canary's"),
    ],
)
def test_per_user_sums_that_cannot_be_trusted_continue_with_the_reason(
    controller, api_server, prometheus, version, change, reason
):
    prometheus.arms[version].update(change)
    decision = controller.reconcile_once()
    assert decision.action == "continue" and reason in decision.reasons[0], decision.reasons
    assert api_server.patches == []


def test_a_broken_guardrail_rolls_back_even_when_the_sums_cannot_be_trusted(controller, prometheus):
    prometheus.arms["v2"].update({"error": 500, "seen": 3})
    assert controller.reconcile_once().action == "rollback"


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


def test_a_percent_that_is_not_a_step_holds_naming_the_steps(controller, api_server):
    set_percent(api_server, 15)
    decision = controller.reconcile_once()
    assert (
        decision.action == "hold"
        and "canaryTrafficPercent=15 is not one of the steps (10 25 50)" in (decision.reasons[0])
    )


def test_requests_are_counted_from_the_current_step_and_user_sums_from_the_canary_start(
    controller, api_server, prometheus
):
    started = datetime.fromtimestamp(NOW_S - 300, timezone.utc).isoformat()
    api_server.bump(
        ("recforge", "recforge-ranker"), {"metadata": {"annotations": {STEP_ANNOTATION: started}}}
    )
    prometheus.arms["v1"]["at_step_start"] = {"ok": 4500}
    prometheus.arms["v2"]["at_step_start"] = {"ok": 500}
    decision = controller.reconcile_once()
    analysis = decision.evidence["analysis"]
    assert (analysis["step_elapsed_s"], analysis["elapsed_s"]) == (300.0, 3600.0)
    assert analysis["srm"]["counts"] == [4500, 500]
    assert decision.evidence["arms"]["canary"]["users"]["users"] == 600
    timed = [float(at) for query, at in prometheus.queries if at is not None]
    assert timed == [NOW_S - 300] and any("[300s]" in query for query, _ in prometheus.queries)


def test_the_controller_decides_with_the_local_canarys_analysis(controller, prometheus):
    decision = controller.reconcile_once()
    windows = [
        arm_window(ArmStats(r["ok"], r["error"], 0, 20.0, 50.0, 0, 0, 0, 0, per_user=r["rows"]))
        for r in (prometheus.arms["v1"], prometheus.arms["v2"])
    ]
    local = evaluate(CONFIG.policy, RolloutState(0, NOW_S - 3600, NOW_S - 3600), *windows, NOW_S)
    assert (decision.action, decision.evidence["analysis"]) == (local.action, local.evidence)


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
    [
        ("--steps", ["50", "25"], "--steps: expected increasing canary percents"),
        ("--alpha", ["0.7"], "alpha: expected a level in (0, 0.5)"),
        ("--min-relative-ctr", ["1.5"], "--min-relative-ctr: expected a ratio in (0, 1]"),
        ("--max-state-skew-s", ["-1"], "max_state_skew_s: expected seconds >= 0"),
        ("--planned-effect", ["-0.05"], "planned_effect: expected a number > 0"),
    ],
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


def test_watch_without_a_usable_kubeconfig_is_a_usage_error_naming_it(prometheus, tmp_path, capsys):
    parser = __import__("argparse").ArgumentParser()
    controller_cli.add_arguments(parser)
    missing = tmp_path / "no-such-kubeconfig"
    args = parser.parse_args(
        ["--inference-service", "x", "--namespace", "y", "--prometheus-url", prometheus.url]
        + ["--kubeconfig", str(missing), "--once"]
    )
    assert controller_cli.run(args) == 2
    assert f"kubeconfig: no usable cluster configuration in {missing}" in capsys.readouterr().err
