"""The chart renders for every value set, lints clean under --strict, and follows the house rules
(release namespace, standard labels, NOTES)."""

from __future__ import annotations

import pytest
from k8s_chart_helpers import VALUE_SET_NAMES, objects_of_kind, one_of_kind

from pipelines.k8s_check_chart import lint, render_templates
from pipelines.k8s_check_schemas import KUBERNETES_VERSIONS

CLUSTER_SCOPED = {
    "Namespace",
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "PersistentVolume",
    "StorageClass",
    "PriorityClass",
}
STANDARD_LABELS = (
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
    "app.kubernetes.io/component",
    "app.kubernetes.io/part-of",
    "app.kubernetes.io/managed-by",
    "helm.sh/chart",
)


def test_the_value_sets_cover_the_deployments_we_support():
    assert set(VALUE_SET_NAMES) == {
        "defaults",
        "gpu",
        "external-redis",
        "canary-10",
        "standard-mode",
        "controller-off",
        "kfp-hook",
    }


@pytest.mark.parametrize("kube_version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("value_set", VALUE_SET_NAMES)
def test_strict_lint_reports_no_warning_or_error(chart_dir, values_by_set, value_set, kube_version):
    messages = lint(chart_dir, values_by_set[value_set], kube_version)
    assert [str(m) for m in messages if m.severity not in ("info",)] == []


@pytest.mark.parametrize("value_set", VALUE_SET_NAMES)
def test_every_namespaced_object_is_in_the_release_namespace(rendered, value_set):
    misplaced = [
        f"{o.kind}/{o.name}"
        for o in rendered[value_set]
        if o.kind not in CLUSTER_SCOPED and o.manifest["metadata"].get("namespace") != "recforge"
    ]
    assert misplaced == []


@pytest.mark.parametrize("value_set", VALUE_SET_NAMES)
def test_every_object_carries_the_standard_labels(rendered, value_set):
    missing = {
        f"{o.kind}/{o.name}": [k for k in STANDARD_LABELS if k not in o.manifest["metadata"]["labels"]]
        for o in rendered[value_set]
    }
    assert {name: keys for name, keys in missing.items() if keys} == {}


def test_defaults_deploy_feast_redis_the_inference_service_and_the_controller(rendered):
    kinds = {(o.kind, o.name) for o in rendered["defaults"]}
    assert {
        ("Deployment", "recforge-feast"),
        ("Service", "recforge-feast"),
        ("Job", "recforge-feast-apply"),
        ("CronJob", "recforge-feast-materialize"),
        ("StatefulSet", "recforge-redis"),
        ("Secret", "recforge-redis"),
        ("InferenceService", "recforge-ranker"),
        ("Deployment", "recforge-controller"),
        ("Role", "recforge-controller"),
        ("PodDisruptionBudget", "recforge-feast"),
    } <= kinds


def test_notes_tell_the_next_steps(chart_dir, values_by_set):
    notes = render_templates(chart_dir, values_by_set["canary-10"])["recforge/templates/NOTES.txt"]
    assert "kubectl -n recforge get inferenceservice recforge-ranker" in notes
    assert '"canaryTrafficPercent":0' in notes  # rolling back by hand


def test_controller_off_renders_no_controller_objects(rendered):
    assert not [o for o in rendered["controller-off"] if o.name.endswith("-controller")]


def test_external_redis_renders_no_redis_and_points_feast_at_the_managed_one(rendered):
    objects = rendered["external-redis"]
    assert not objects_of_kind(objects, "StatefulSet")
    (config,) = objects_of_kind(objects, "ConfigMap")
    assert (
        "recforge.abc123.cache.amazonaws.com:6380,password=${REDIS_PASSWORD},ssl=true"
        in (config["data"]["feature_store.yaml"])
    )


def test_a_running_canary_holds_the_predictor_at_one_replica(rendered):
    predictor = one_of_kind(rendered["canary-10"], "InferenceService")["spec"]["predictor"]
    assert (predictor["minReplicas"], predictor["maxReplicas"]) == (1, 1)


def test_without_a_canary_the_predictor_scales_as_configured(rendered):
    predictor = one_of_kind(rendered["defaults"], "InferenceService")["spec"]["predictor"]
    assert (predictor["minReplicas"], predictor["maxReplicas"]) == (1, 3)


def test_the_controller_gets_every_rollout_policy_flag_the_values_set(rendered):
    deployment = one_of_kind(rendered["defaults"], "Deployment", "-controller")
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    flags = dict(zip(args[2::2], args[3::2], strict=True))
    assert flags["--min-relative-ctr"] == "0.98" and flags["--planned-users"] == "20000"
    assert {"--srm-alpha", "--min-canary-users-per-step", "--min-seconds-per-step",
            "--max-duration-s", "--max-state-skew-s"} <= set(flags)
    assert "--planned-effect" not in flags  # null: the normal mixture


def test_a_planned_effect_reaches_the_controller(rendered):
    deployment = one_of_kind(rendered["canary-10"], "Deployment", "-controller")
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    flags = dict(zip(args[2::2], args[3::2], strict=True))
    assert flags["--planned-effect"] == "0.05"
