"""The cluster form of serving: a KServe ``InferenceService`` built with the kserve SDK's models.

Predictor: a custom container running ``recforge serve`` on the artifact KServe's storage
initializer downloads from ``storage_uri`` to ``/mnt/models`` (``STORAGE_URI`` env). Transformer
(optional): the same image running ``recforge serve --transformer``, which looks up online
features in Feast and forwards to the predictor; KServe adds ``--model_name`` (the service's
name) and ``--predictor_host`` to its arguments. Both serve the model under the service's name,
as KServe expects. Without a transformer the predictor reads Feast itself.

Canary: KServe routes ``canaryTrafficPercent`` of the traffic to the latest revision of a
component and the rest to the previous one, so a canary is this manifest applied over the
running one with the candidate's ``storage_uri`` and ``canary_traffic_percent`` set; promoting
is re-applying it without the percent, rolling back is re-applying the previous manifest. While
a canary runs the predictor is held at one replica: the rollout controller's user-level
statistics are kept per process (:mod:`serving.prometheus_metrics`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

MODEL_MOUNT = "/mnt/models"
CONTAINER_NAME = "kserve-container"
HTTP_PORT = 8080
_DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_STORAGE_SCHEMES = (
    "s3://",
    "gs://",
    "pvc://",
    "https://",
    "http://",
    "hdfs://",
    "webhdfs://",
    "hf://",
    "oci://",
    "azureblob://",
)
_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|Ki|Mi|Gi|Ti|k|M|G|T)?$")


@dataclass(frozen=True)
class InferenceServiceConfig:
    """One ranker InferenceService; the defaults are a small CPU deployment."""

    storage_uri: str
    name: str = "recforge-ranker"
    namespace: str = "recforge"
    image: str = "ghcr.io/recforge/recforge:0.1.0"
    feature_repo: str = "/opt/recforge/feature_repo"
    transformer: bool = True
    canary_traffic_percent: int | None = None
    cpu: str = "1"
    memory: str = "2Gi"
    min_replicas: int = 1
    max_replicas: int = 3
    max_items: int = 500
    model_version: str = ""  # stamped by the transformer: a predictor of another version answers 409

    def __post_init__(self) -> None:
        if not self.storage_uri.startswith(_STORAGE_SCHEMES):
            raise ValueError(
                f"inference_service.storage_uri: {self.storage_uri!r} has no supported scheme; "
                f"use one of {', '.join(_STORAGE_SCHEMES)}"
            )
        for field_name in ("name", "namespace"):
            value = getattr(self, field_name)
            if not _DNS_LABEL.match(value) or len(value) > 63:
                raise ValueError(
                    f"inference_service.{field_name}: {value!r} is not a DNS-1035 label "
                    "(lowercase letters, digits and '-', starting with a letter, at most 63)"
                )
        if not self.image or any(c.isspace() for c in self.image):
            raise ValueError(f"inference_service.image: expected an image reference, got {self.image!r}")
        if not self.feature_repo.startswith("/"):
            raise ValueError(
                f"inference_service.feature_repo: expected an absolute path inside the image, "
                f"got {self.feature_repo!r}"
            )
        percent = self.canary_traffic_percent
        if percent is not None and (
            isinstance(percent, bool) or not isinstance(percent, int) or not 0 <= percent <= 100
        ):
            raise ValueError(
                f"inference_service.canary_traffic_percent: expected an integer 0-100 or None, "
                f"got {percent!r}"
            )
        for field_name in ("cpu", "memory"):
            if not _QUANTITY.match(getattr(self, field_name)):
                raise ValueError(
                    f"inference_service.{field_name}: {getattr(self, field_name)!r} is not a "
                    "Kubernetes quantity, e.g. '500m', '2', '2Gi'"
                )
        if not 0 <= self.min_replicas <= self.max_replicas or self.max_replicas < 1:
            raise ValueError(
                "inference_service.min_replicas/max_replicas: need 0 <= min_replicas <= "
                f"max_replicas and max_replicas >= 1, got {self.min_replicas}/{self.max_replicas}"
            )


def build_inference_service(config: InferenceServiceConfig) -> Any:
    """The ``V1beta1InferenceService`` (kserve SDK model) for ``config``."""
    from kubernetes.client import V1ObjectMeta

    from serving._kserve import kserve

    # the rollout controller's per-user statistics live in one predictor process per arm
    canary_running = config.canary_traffic_percent not in (None, 0, 100)
    predictor_args = ["serve", "--artifact", MODEL_MOUNT]
    if not config.transformer:
        predictor_args += ["--feature-repo", config.feature_repo]
    predictor = kserve.V1beta1PredictorSpec(
        containers=[
            _container(config, predictor_args, env={"STORAGE_URI": config.storage_uri}),
        ],
        canary_traffic_percent=config.canary_traffic_percent,
        min_replicas=1 if canary_running else config.min_replicas,
        max_replicas=1 if canary_running else config.max_replicas,
    )
    transformer = None
    stamp = ["--model-version", config.model_version] if config.model_version else []
    if config.transformer:
        transformer = kserve.V1beta1TransformerSpec(
            containers=[
                _container(config, ["serve", "--transformer", "--feature-repo", config.feature_repo, *stamp]),
            ],
            min_replicas=config.min_replicas,
            max_replicas=config.max_replicas,
        )
    return kserve.V1beta1InferenceService(
        api_version="serving.kserve.io/v1beta1",
        kind="InferenceService",
        metadata=V1ObjectMeta(
            name=config.name,
            namespace=config.namespace,
            labels={"app.kubernetes.io/part-of": "recforge"},
        ),
        spec=kserve.V1beta1InferenceServiceSpec(predictor=predictor, transformer=transformer),
    )


def _container(config: InferenceServiceConfig, args: list[str], env: dict | None = None) -> Any:
    from kubernetes.client import V1Container, V1ContainerPort, V1EnvVar, V1ResourceRequirements

    resources = {"cpu": config.cpu, "memory": config.memory}
    return V1Container(
        name=CONTAINER_NAME,
        image=config.image,
        command=["recforge"],
        args=[
            *args,
            "--host",
            "0.0.0.0",
            "--port",
            str(HTTP_PORT),
            "--model-name",
            config.name,
            "--max-items",
            str(config.max_items),
        ],
        env=[V1EnvVar(name=k, value=v) for k, v in (env or {}).items()] or None,
        ports=[V1ContainerPort(container_port=HTTP_PORT, protocol="TCP")],
        resources=V1ResourceRequirements(requests=resources, limits=resources),
    )


def inference_service_manifest(config: InferenceServiceConfig) -> dict:
    """The InferenceService as a plain dict (camelCase keys), ready for YAML or ``kubectl``."""
    from serving._kserve import kserve

    return kserve.ApiClient().sanitize_for_serialization(build_inference_service(config))


def inference_service_yaml(config: InferenceServiceConfig) -> str:
    import yaml

    return yaml.safe_dump(inference_service_manifest(config), sort_keys=False)
