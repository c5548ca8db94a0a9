"""Security defaults of every pod the chart renders, the controller's least privilege, the
network policies, and checkov's verdict (0 failed; every skip has a written reason)."""

from __future__ import annotations

import pytest
from k8s_chart_helpers import VALUE_SET_NAMES, objects_of_kind, one_of_kind, pod_specs

from pipelines.k8s_check_checkov import CheckovUnavailable, manifest_files, run_checkov


def isvc_pod_specs(objects) -> dict[str, dict]:
    specs = {}
    for isvc in objects_of_kind(objects, "InferenceService"):
        for component in ("predictor", "transformer"):
            if component in isvc["spec"]:
                specs[f"InferenceService/{component}"] = isvc["spec"][component]
    return specs


def containers(spec: dict) -> list[dict]:
    return spec.get("initContainers", []) + spec["containers"]


@pytest.mark.parametrize("value_set", VALUE_SET_NAMES)
def test_every_pod_is_non_root_with_the_runtime_default_seccomp_profile(rendered, value_set):
    for name, spec in pod_specs(rendered[value_set]).items():
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name


@pytest.mark.parametrize("value_set", VALUE_SET_NAMES)
def test_every_container_is_locked_down_with_requests_limits_and_a_writable_tmp(rendered, value_set):
    specs = {**pod_specs(rendered[value_set]), **isvc_pod_specs(rendered[value_set])}
    for name, spec in specs.items():
        for container in containers(spec):
            where = f"{name}/{container['name']}"
            security = container["securityContext"]
            assert security["runAsNonRoot"] is True, where
            assert security["readOnlyRootFilesystem"] is True, where
            assert security["allowPrivilegeEscalation"] is False, where
            assert security["capabilities"] == {"drop": ["ALL"]}, where
            assert security["seccompProfile"] == {"type": "RuntimeDefault"}, where
            assert {"cpu", "memory"} <= set(container["resources"]["requests"]), where
            assert {"cpu", "memory"} <= set(container["resources"]["limits"]), where
            assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"], where


@pytest.mark.parametrize("value_set", VALUE_SET_NAMES)
def test_only_the_controller_gets_a_service_account_token(rendered, value_set):
    with_token = {
        name
        for name, spec in pod_specs(rendered[value_set]).items()
        if spec["automountServiceAccountToken"] is not False
    }
    expected = set() if value_set == "controller-off" else {"Deployment/recforge-controller"}
    assert with_token == expected


def test_the_controller_may_only_read_and_patch_inference_services_and_create_events(rendered):
    role = one_of_kind(rendered["defaults"], "Role", "-controller")
    assert role["rules"] == [
        {
            "apiGroups": ["serving.kserve.io"],
            "resources": ["inferenceservices"],
            "verbs": ["get", "list", "watch", "patch"],
        },
        {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]},
    ]
    assert not objects_of_kind(rendered["defaults"], "ClusterRole")


def test_only_the_feature_server_and_feast_jobs_may_reach_redis(rendered):
    objects = rendered["defaults"]
    policy = one_of_kind(objects, "NetworkPolicy", "-redis")
    (rule,) = policy["spec"]["ingress"]
    (peer,) = rule["from"]
    allowed = peer["podSelector"]["matchLabels"]
    clients = {name for name, spec in pod_specs(objects).items()}
    labelled = {
        f"{o.kind}/{o.name}"
        for o in objects
        if o.kind in ("Deployment", "Job", "CronJob", "StatefulSet")
        and _pod_labels(o.manifest).items() >= allowed.items()
    }
    assert labelled == {
        "Deployment/recforge-feast",
        "Job/recforge-feast-apply",
        "CronJob/recforge-feast-materialize",
    }
    assert labelled < clients
    assert rule["ports"] == [{"port": 6379, "protocol": "TCP"}]


def test_only_the_transformer_may_reach_the_feature_server(rendered):
    objects = rendered["defaults"]
    (peer,) = one_of_kind(objects, "NetworkPolicy", "-feast")["spec"]["ingress"][0]["from"]
    allowed = peer["podSelector"]["matchLabels"]
    isvc = one_of_kind(objects, "InferenceService")
    transformer_pod = {
        **isvc["spec"]["transformer"]["labels"],
        "serving.kserve.io/inferenceservice": isvc["metadata"]["name"],
    }
    assert transformer_pod.items() >= allowed.items()
    assert not isvc["spec"]["predictor"]["labels"].items() >= allowed.items()


def test_the_feature_server_has_a_disruption_budget(rendered):
    budget = one_of_kind(rendered["defaults"], "PodDisruptionBudget")
    deployment = one_of_kind(rendered["defaults"], "Deployment", "-feast")
    assert budget["spec"]["selector"] == deployment["spec"]["selector"]
    assert budget["spec"]["minAvailable"] < deployment["spec"]["replicas"]


def _pod_labels(manifest: dict) -> dict:
    spec = manifest["spec"]
    if manifest["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    return spec["template"]["metadata"]["labels"]


@pytest.fixture(scope="module")
def checkov_report(rendered):
    try:
        return run_checkov(
            manifest_files({name: [o.manifest for o in objects] for name, objects in rendered.items()})
        )
    except CheckovUnavailable as error:
        pytest.skip(str(error))


def test_checkov_finds_no_failed_check_in_any_value_set(checkov_report):
    assert [str(f) for f in checkov_report.failed] == []
    assert checkov_report.passed > 1000


def test_every_checkov_skip_is_an_annotation_with_a_written_reason(checkov_report):
    assert checkov_report.skipped
    for finding in checkov_report.skipped:
        assert len(finding.reason) > 40 and finding.reason != "No comment provided", str(finding)
    assert {f.check_id for f in checkov_report.skipped} <= {"CKV_K8S_35", "CKV_K8S_38", "CKV_K8S_43"}


def test_a_pinned_image_needs_no_digest_skip(checkov_report):
    pinned = [f for f in checkov_report.skipped if f.source == "kfp-hook" and f.check_id == "CKV_K8S_43"]
    assert {f.resource.split(".")[-1] for f in pinned} == {"recforge-redis"}  # only the Redis image
