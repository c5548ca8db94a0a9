"""One InferenceService: what the chart renders agrees with what the kserve SDK builder
(`serving.inference_service`, used by `recforge run`) builds, field for field."""

from __future__ import annotations

import pytest
from k8s_chart_helpers import one_of_kind

from pipelines.k8s_check_chart import render
from serving.inference_service import InferenceServiceConfig, inference_service_manifest

SAME_RESOURCES = {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"cpu": "1", "memory": "2Gi"}}
IGNORED = {"metadata.labels"}  # the chart adds the standard labels and the model version


def leaves(value, path=""):
    if isinstance(value, dict):
        for key, item in value.items():
            yield from leaves(item, f"{path}.{key}" if path else key)
    elif isinstance(value, list) and value and all(isinstance(i, dict) and "name" in i for i in value):
        for item in value:  # env, containers: matched by name
            yield from leaves(item, f"{path}[{item['name']}]")
    else:
        yield path, value


def lookup(manifest, path):
    node = manifest
    for part in path.replace("[", ".[").split("."):
        by_name = part.startswith("[")
        node = next(i for i in node if i.get("name") == part[1:-1]) if by_name else node[part]
    return node


@pytest.mark.parametrize("canary", [None, 10])
def test_every_field_the_sdk_sets_the_chart_sets_the_same(chart_dir, canary):
    config = InferenceServiceConfig(
        storage_uri="s3://recforge-models/ranker/v2", canary_traffic_percent=canary, model_version="v2"
    )
    sdk = inference_service_manifest(config)
    values = {
        "model": {"storageUri": config.storage_uri, "name": config.name, "maxItems": config.max_items,
                  "version": config.model_version},
        "inferenceService": {
            "predictor": {"resources": SAME_RESOURCES},
            "transformer": {"resources": SAME_RESOURCES},
            "canary": {"trafficPercent": canary, "primaryVersion": "v1"} if canary else {},
        },
    }
    chart = one_of_kind(render(chart_dir, values, namespace=config.namespace), "InferenceService")
    differences, compared = {}, set()
    for path, value in leaves(sdk):
        if any(path.startswith(prefix) for prefix in IGNORED):
            continue
        compared.add(path)
        try:
            found = lookup(chart, path)
        except (KeyError, StopIteration):
            found = "<absent>"
        if found != value:
            differences[path] = (value, found)
    assert differences == {}
    assert {
        "spec.predictor.containers[kserve-container].args",
        "spec.predictor.containers[kserve-container].env[STORAGE_URI].value",
        "spec.transformer.containers[kserve-container].args",
        "spec.predictor.minReplicas",
    } <= compared
