"""The cluster feature_store.yaml files the chart renders are valid Feast configurations: Redis
behind the feature server and the Feast jobs, the feature server behind the transformer."""

from __future__ import annotations

import pytest
from k8s_chart_helpers import one_of_kind


def repo_config(text: str, tmp_path, monkeypatch):
    from feast.repo_config import load_repo_config

    monkeypatch.setenv("REDIS_PASSWORD", "s3cret")
    path = tmp_path / "feature_store.yaml"
    path.write_text(text)
    return load_repo_config(tmp_path, path)


@pytest.mark.parametrize("value_set", ["defaults", "external-redis"])
def test_the_server_config_reads_redis_with_the_password_from_the_secret(
    rendered, value_set, tmp_path, monkeypatch
):
    config_map = one_of_kind(rendered[value_set], "ConfigMap", "-feast")
    config = repo_config(config_map["data"]["feature_store.yaml"], tmp_path, monkeypatch)
    assert config.online_store.type == "redis"
    assert "password=s3cret" in config.online_store.connection_string
    assert config.registry.path == "s3://recforge-feast/registry.db"


def test_the_transformer_reads_features_through_the_feature_server(rendered, tmp_path, monkeypatch):
    config_map = one_of_kind(rendered["defaults"], "ConfigMap", "-feast")
    config = repo_config(config_map["data"]["feature_store_client.yaml"], tmp_path, monkeypatch)
    service = one_of_kind(rendered["defaults"], "Service", "-feast")
    assert config.online_store.type == "remote"
    assert (
        config.online_store.path
        == f"http://recforge-feast.recforge.svc:{service['spec']['ports'][0]['port']}"
    )


def config_file_mounted(container: dict) -> str:
    (mount,) = [
        m
        for m in container["volumeMounts"]
        if m["mountPath"] == "/opt/recforge/feature_repo/feature_store.yaml"
    ]
    return mount["subPath"]


def test_the_server_and_the_transformer_mount_their_config_over_the_images_repo(rendered):
    (transformer,) = one_of_kind(rendered["defaults"], "InferenceService")["spec"]["transformer"][
        "containers"
    ]
    deployment = one_of_kind(rendered["defaults"], "Deployment", "-feast")
    (server,) = deployment["spec"]["template"]["spec"]["containers"]
    assert config_file_mounted(server) == "feature_store.yaml"
    assert config_file_mounted(transformer) == "feature_store_client.yaml"
    assert server["args"][:2] == ["--chdir", "/opt/recforge/feature_repo"]
