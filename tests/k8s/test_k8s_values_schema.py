"""values.schema.json rejects typos and wrong types at every level users write, and the templates
refuse combinations KServe would not run; each error names the field."""

from __future__ import annotations

import json

import pytest

from pipelines.k8s_check_chart import ChartError, render


def nested(path: str, value) -> dict:
    keys = path.split(".")
    values = value
    for key in reversed(keys):
        values = {key: values}
    return values


@pytest.mark.parametrize(
    "path",
    [
        "imagePullPolicy",
        "image.tagg",
        "model.storageURI",
        "inferenceService.predictor.replicas",
        "inferenceService.predictor.resources.limit",
        "inferenceService.predictor.resources.limits.gpu",
        "inferenceService.predictor.gpu.type",
        "inferenceService.canary.percent",
        "feast.featureServer.replica",
        "feast.registry.ttl",
        "redis.auth.password",
        "externalRedis.tls",
        "controller.rule.maxP99",
        "kfp.cron",
        "monitoring.podMonitor.enable",
    ],
)
def test_a_typod_key_is_rejected_naming_it(chart_dir, path):
    with pytest.raises(ChartError, match=f"additional properties '{path.rsplit('.', 1)[-1]}' not allowed"):
        render(chart_dir, nested(path, "x"))


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        ("inferenceService.predictor.resources.limits.cpu", 0.5, "got number, want string"),
        ("inferenceService.predictor.minReplicas", "1", "got string, want integer"),
        ("inferenceService.canary.trafficPercent", "10", "want null or integer"),
        ("model.version", 2, "got number, want string"),
        ("feast.materialize.enabled", "yes", "got string, want boolean"),
        ("controller.steps", [150], "maximum"),
        ("inferenceService.deploymentMode", "Serverless", "value must be one of"),
        ("model.storageUri", "/models/v1", "does not match pattern"),
    ],
)
def test_a_wrong_type_or_value_is_rejected_naming_the_field(chart_dir, path, value, expected):
    with pytest.raises(ChartError) as error:
        render(chart_dir, nested(path, value))
    assert "/" + path.replace(".", "/") in str(error.value) and expected in str(error.value)


def test_the_schema_is_self_contained(chart_dir):
    """Helm downloads a remote $ref at install time: only local references are allowed."""
    text = (chart_dir / "values.schema.json").read_text()
    refs = [part.split('"')[0] for part in text.split('"$ref": "')[1:]]
    assert refs and all(ref.startswith("#/") for ref in refs)
    json.loads(text)


def test_a_canary_needs_knative_mode(chart_dir):
    values = {
        "inferenceService": {
            "deploymentMode": "Standard",
            "canary": {"trafficPercent": 10, "primaryVersion": "v1"},
        }
    }
    with pytest.raises(ChartError, match="inferenceService.canary.trafficPercent: .* only in Knative mode"):
        render(chart_dir, values)


def test_a_canary_names_the_version_it_is_compared_with(chart_dir):
    with pytest.raises(ChartError, match="inferenceService.canary.primaryVersion: required"):
        render(chart_dir, {"inferenceService": {"canary": {"trafficPercent": 10}}})


def test_knative_does_not_scale_on_cpu(chart_dir):
    values = {"inferenceService": {"predictor": {"autoscaling": {"metric": "cpu", "target": 70}}}}
    with pytest.raises(ChartError, match='inferenceService.predictor.autoscaling.metric: "cpu" needs'):
        render(chart_dir, values)


def test_external_redis_needs_its_host(chart_dir):
    values = {"redis": {"enabled": False}, "externalRedis": {"existingSecret": "managed-redis"}}
    with pytest.raises(ChartError, match="externalRedis.host is required"):
        render(chart_dir, values)
