"""Every rendered object is valid for the Kubernetes versions we support and, for the
InferenceService, for KServe's CRD made as strict as the API server; mistakes are caught."""

from __future__ import annotations

import copy

import pytest
from k8s_chart_helpers import VALUE_SET_NAMES, one_of_kind

from pipelines.k8s_check_schemas import (
    KUBERNETES_VERSIONS,
    SchemaNotBundled,
    kubernetes_problems,
    strict_structural_schema,
)


@pytest.mark.parametrize("kube_version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("value_set", VALUE_SET_NAMES)
def test_core_objects_pass_the_strict_kubernetes_schemas(rendered, value_set, kube_version):
    problems = []
    for o in rendered[value_set]:
        if o.kind in ("InferenceService", "PodMonitor"):
            continue
        problems += [str(p) for p in kubernetes_problems(o.manifest, kube_version)]
    assert problems == []


@pytest.mark.parametrize("value_set", VALUE_SET_NAMES)
def test_the_inference_service_passes_kserves_strict_crd_schema(rendered, kserve_crd, value_set):
    isvc = one_of_kind(rendered[value_set], "InferenceService")
    assert [str(p) for p in kserve_crd.problems(isvc)] == []


def test_only_the_prometheus_operators_pod_monitor_has_no_bundled_schema(rendered):
    unknown = set()
    for o in rendered["canary-10"]:
        if o.kind == "InferenceService":
            continue
        try:
            kubernetes_problems(o.manifest, KUBERNETES_VERSIONS[0])
        except SchemaNotBundled:
            unknown.add(o.kind)
    assert unknown == {"PodMonitor"}


def test_our_cached_validation_agrees_with_kubernetes_validate(rendered):
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    for o in rendered["defaults"]:
        if o.kind != "InferenceService":
            kubernetes_validate.validate(o.manifest, "1.33.0", strict=True)  # raises on any problem


def test_a_typo_in_a_core_object_is_caught(rendered):
    deployment = copy.deepcopy(one_of_kind(rendered["defaults"], "Deployment", "-feast"))
    deployment["spec"]["template"]["spec"]["containers"][0]["imagePullPolcy"] = "Always"
    (problem,) = kubernetes_problems(deployment, "1.29.0")
    assert problem.path == "spec.template.spec.containers.0" and "imagePullPolcy" in problem.message


def test_a_typo_in_the_inference_service_is_caught(rendered, kserve_crd):
    isvc = copy.deepcopy(one_of_kind(rendered["canary-10"], "InferenceService"))
    isvc["spec"]["predictor"]["canaryTrafficPercnt"] = 10
    (problem,) = kserve_crd.problems(isvc)
    assert problem.path == "spec.predictor" and "canaryTrafficPercnt" in problem.message


def test_an_unquoted_half_cpu_is_caught_in_the_inference_service(rendered, kserve_crd):
    isvc = copy.deepcopy(one_of_kind(rendered["defaults"], "InferenceService"))
    isvc["spec"]["predictor"]["containers"][0]["resources"]["requests"]["cpu"] = 0.5
    (problem,) = kserve_crd.problems(isvc)
    assert problem.path == "spec.predictor.containers.0.resources.requests.cpu"


def test_unknown_metadata_fields_are_caught_by_the_real_object_meta(rendered, kserve_crd):
    isvc = copy.deepcopy(one_of_kind(rendered["defaults"], "InferenceService"))
    isvc["metadata"]["label"] = {"a": "b"}
    (problem,) = kserve_crd.problems(isvc)
    assert problem.path == "metadata" and "label" in problem.message


def test_strict_schema_closes_objects_but_keeps_preserved_and_map_ones_open():
    schema = {
        "type": "object",
        "properties": {
            "closed": {"type": "object", "properties": {"a": {"type": "string"}}},
            "open": {
                "type": "object",
                "x-kubernetes-preserve-unknown-fields": True,
                "properties": {"a": {"type": "string"}},
            },
            "map": {"type": "object", "additionalProperties": {"type": "string"}},
            "maybe": {"type": "string", "nullable": True},
        },
    }
    strict = strict_structural_schema(schema)
    assert strict["additionalProperties"] is False
    assert strict["properties"]["closed"]["additionalProperties"] is False
    assert "additionalProperties" not in strict["properties"]["open"]
    assert strict["properties"]["map"]["additionalProperties"] == {"type": "string"}
    assert strict["properties"]["maybe"]["type"] == ["string", "null"]
