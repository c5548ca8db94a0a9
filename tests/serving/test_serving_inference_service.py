"""The cluster InferenceService: built with kserve's SDK models, valid against KServe's CRD."""

from __future__ import annotations

import json
from pathlib import Path

import kubernetes.client
import pytest
import yaml

from serving._kserve import kserve
from serving.inference_service import (
    InferenceServiceConfig,
    build_inference_service,
    inference_service_manifest,
    inference_service_yaml,
)

CRD = (
    Path(__file__).resolve().parents[2].parent
    / "shared"
    / "schemas"
    / "serving.kserve.io_inferenceservices.yaml"
)
CANARY = InferenceServiceConfig(storage_uri="s3://models/ranker/v2", canary_traffic_percent=10)


@pytest.fixture(scope="module")
def crd_schema() -> dict:
    if not CRD.is_file():
        pytest.skip(f"KServe CRD schema not found at {CRD} (../shared/schemas is absent)")
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the C loader reads 2 MB in 1 s, not 10
    crd = yaml.load(CRD.read_text(), Loader=loader)
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1beta1"]
    return version["schema"]["openAPIV3Schema"]


def unknown_fields(value, schema, where="") -> list[str]:
    """Fields the API server would silently prune: not declared by the structural schema."""
    found = []
    if isinstance(value, dict) and schema.get("type") == "object":
        properties = schema.get("properties")
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            if properties is not None and key in properties:
                found += unknown_fields(item, properties[key], f"{where}.{key}")
            elif isinstance(extra, dict):
                found += unknown_fields(item, extra, f"{where}.{key}")
            elif properties is not None and not schema.get("x-kubernetes-preserve-unknown-fields"):
                found.append(f"{where}.{key}")
    elif isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            found += unknown_fields(item, schema["items"], f"{where}[{i}]")
    return found


@pytest.fixture(scope="module")
def crd_validator(crd_schema):
    import jsonschema

    return jsonschema.Draft7Validator(crd_schema)  # OpenAPI v3 schemas use draft-4/7 keywords


def test_manifest_validates_against_the_inference_service_crd(crd_validator):
    crd_validator.validate(inference_service_manifest(CANARY))


def test_manifest_has_no_field_the_api_server_would_prune(crd_schema):
    assert unknown_fields(inference_service_manifest(CANARY), crd_schema) == []


def test_a_manifest_breaking_the_schema_is_caught(crd_validator):
    import jsonschema

    manifest = inference_service_manifest(CANARY)
    manifest["spec"]["predictor"]["canaryTrafficPercent"] = "ten"
    with pytest.raises(jsonschema.ValidationError):
        crd_validator.validate(manifest)


def from_json(data, type_name: str):
    """Rebuild SDK models from their JSON form (kserve's ApiClient cannot: it only knows its own
    models, not the Kubernetes ones such as V1ObjectMeta and V1Container inside them)."""
    if data is None or type_name in ("str", "int", "float", "bool", "object", "datetime"):
        return data
    if type_name.startswith("list["):
        return [from_json(item, type_name[5:-1]) for item in data]
    if type_name.startswith("dict("):
        value_type = type_name[5:-1].split(", ", 1)[1]
        return {key: from_json(item, value_type) for key, item in data.items()}
    klass = getattr(kserve.models, type_name, None) or getattr(kubernetes.client, type_name)
    unknown = set(data) - set(klass.attribute_map.values())
    assert not unknown, f"{type_name} has no fields {unknown}"
    return klass(
        **{
            attr: from_json(data[key], klass.openapi_types[attr])
            for attr, key in klass.attribute_map.items()
            if key in data
        }
    )


def test_sdk_model_round_trips_through_its_json_form():
    manifest = json.loads(json.dumps(inference_service_manifest(CANARY)))
    again = from_json(manifest, "V1beta1InferenceService")
    assert isinstance(again, kserve.V1beta1InferenceService)
    assert kserve.ApiClient().sanitize_for_serialization(again) == manifest


def test_predictor_serves_the_artifact_from_storage_uri_with_the_canary_percent():
    predictor = inference_service_manifest(CANARY)["spec"]["predictor"]
    (container,) = predictor["containers"]
    assert predictor["canaryTrafficPercent"] == 10
    assert {"name": "STORAGE_URI", "value": "s3://models/ranker/v2"} in container["env"]
    assert container["command"] == ["recforge"]
    assert container["args"][:3] == ["serve", "--artifact", "/mnt/models"]


def test_transformer_looks_up_features_and_the_predictor_does_not():
    spec = inference_service_manifest(CANARY)["spec"]
    (transformer,) = spec["transformer"]["containers"]
    (predictor,) = spec["predictor"]["containers"]
    assert "--transformer" in transformer["args"] and "--feature-repo" in transformer["args"]
    assert "--feature-repo" not in predictor["args"]


def test_without_transformer_the_predictor_reads_feast_in_process():
    config = InferenceServiceConfig(storage_uri="gs://m/v1", transformer=False)
    spec = inference_service_manifest(config)["spec"]
    assert "transformer" not in spec
    assert "--feature-repo" in spec["predictor"]["containers"][0]["args"]


def test_serving_containers_bind_all_interfaces_in_the_pod():
    (container,) = inference_service_manifest(CANARY)["spec"]["predictor"]["containers"]
    args = container["args"]
    assert args[args.index("--host") + 1] == "0.0.0.0"


def test_yaml_is_the_same_manifest():
    assert yaml.safe_load(inference_service_yaml(CANARY)) == inference_service_manifest(CANARY)


def test_builder_returns_the_kserve_sdk_model():
    assert isinstance(build_inference_service(CANARY), kserve.V1beta1InferenceService)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("storage_uri", "/local/path"),
        ("name", "Recforge_Ranker"),
        ("canary_traffic_percent", 101),
        ("canary_traffic_percent", True),
        ("memory", "2 GB"),
        ("feature_repo", "feature_repo"),
        ("image", ""),
    ],
)
def test_invalid_config_names_the_field(field, value):
    kwargs = {"storage_uri": "s3://m/v1", field: value}
    with pytest.raises(ValueError, match=f"inference_service.{field}"):
        InferenceServiceConfig(**kwargs)


def test_the_transformer_stamps_the_model_version_it_looks_features_up_for():
    config = InferenceServiceConfig(storage_uri="s3://models/ranker/v2", model_version="v2")
    transformer = inference_service_manifest(config)["spec"]["transformer"]["containers"][0]
    assert transformer["args"][transformer["args"].index("--model-version") + 1] == "v2"
