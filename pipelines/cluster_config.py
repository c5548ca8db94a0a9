"""Per-step Kubernetes settings of the pipeline on a cluster: the ``cluster`` section of a run
config file.

Example (``recforge compile --target cluster --config run.yaml``)::

    train: {epochs: 3}
    cluster:
      image: ghcr.io/acme/recforge:0.1.0
      resources: {cpu_request: "1", memory_request: 4Gi, cpu_limit: "2", memory_limit: 8Gi}
      step_resources:
        build-training-set: {memory_request: 8Gi, memory_limit: 16Gi}
      training_gpu:
        accelerator_type: nvidia.com/gpu
        count: 1
        node_selector: {cloud.google.com/gke-accelerator: nvidia-l4}
        tolerations: [{key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}]
      secret_env:
        - {secret: recforge-object-store, key: access_key, env: AWS_ACCESS_KEY_ID}
      artifact_pvc: recforge-artifacts
      pipeline_root: s3://recforge-pipelines/root

Everything here only means something on a cluster, so it lives outside the run config the
steps receive: ``kfp.local`` never sees it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

from pipelines.config import ConfigError, build

STEP_NAMES = (
    "simulate-events",
    "check-data",
    "build-feature-store",
    "build-training-set",
    "train-candidate",
    "resolve-baseline",
    "evaluate-models",
    "canary-rollout",
    "write-report",
)
"""The pipeline's steps, as KFP names its tasks (a test holds this equal to the compiled IR)."""

_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|Ki|Mi|Gi|Ti)?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_RESOURCE_NAME = re.compile(r"^[a-z0-9.-]+/[a-z0-9.-]+$")


def _check(condition: bool, name: str, message: str) -> None:
    if not condition:
        raise ConfigError(f"cluster.{name}: {message}")


@dataclass(frozen=True)
class Resources:
    """Requests and limits of one step's container (Kubernetes quantities as strings)."""

    cpu_request: str = "500m"
    cpu_limit: str = "2"
    memory_request: str = "2Gi"
    memory_limit: str = "4Gi"

    def __post_init__(self) -> None:
        for name in ("cpu_request", "cpu_limit", "memory_request", "memory_limit"):
            value = getattr(self, name)
            _check(
                isinstance(value, str) and bool(_QUANTITY.match(value)),
                f"resources.{name}",
                f'{value!r} is not a Kubernetes quantity; write e.g. "500m", "2", "4Gi"',
            )


@dataclass(frozen=True)
class Toleration:
    key: str = ""
    operator: Literal["Equal", "Exists"] = "Equal"
    value: str = ""
    effect: Literal["", "NoSchedule", "PreferNoSchedule", "NoExecute"] = ""


@dataclass(frozen=True)
class TrainingGpu:
    """GPUs for the steps that train a model; ``count: 0`` trains on CPU."""

    accelerator_type: str = "nvidia.com/gpu"
    count: int = 0
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: tuple[Toleration, ...] = ()
    steps: tuple[str, ...] = ("train-candidate", "resolve-baseline")

    def __post_init__(self) -> None:
        _check(
            isinstance(self.count, int) and self.count >= 0,
            "training_gpu.count",
            f"expected an integer >= 0, got {self.count!r}",
        )
        _check(
            bool(_RESOURCE_NAME.match(self.accelerator_type)),
            "training_gpu.accelerator_type",
            f"{self.accelerator_type!r} is not an extended resource name such as nvidia.com/gpu",
        )
        _check_steps("training_gpu.steps", self.steps)


@dataclass(frozen=True)
class SecretEnv:
    """One key of a Kubernetes Secret as an environment variable of every step."""

    secret: str
    key: str
    env: str

    def __post_init__(self) -> None:
        _check(
            bool(_DNS_SUBDOMAIN.match(self.secret)),
            "secret_env.secret",
            f"{self.secret!r} is not a Secret name",
        )
        _check(bool(self.key), "secret_env.key", "expected the Secret's data key")
        _check(
            bool(_ENV_NAME.match(self.env)),
            "secret_env.env",
            f"{self.env!r} is not an environment variable name",
        )


@dataclass(frozen=True)
class ClusterConfig:
    image: str = "ghcr.io/recforge/recforge:0.1.0"
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    resources: Resources = field(default_factory=Resources)
    step_resources: dict[str, Resources] = field(default_factory=dict)
    training_gpu: TrainingGpu = field(default_factory=TrainingGpu)
    secret_env: tuple[SecretEnv, ...] = ()
    artifact_pvc: str = ""
    artifact_mount_path: str = "/mnt/recforge"
    pipeline_root: str = ""

    def __post_init__(self) -> None:
        _check(
            bool(self.image) and not any(c.isspace() for c in self.image),
            "image",
            f"expected an image reference such as ghcr.io/recforge/recforge:0.1.0, got {self.image!r}",
        )
        _check_steps("step_resources", tuple(self.step_resources))
        _check(
            not self.artifact_pvc or bool(_DNS_SUBDOMAIN.match(self.artifact_pvc)),
            "artifact_pvc",
            f"{self.artifact_pvc!r} is not a PersistentVolumeClaim name",
        )
        _check(
            self.artifact_mount_path.startswith("/"),
            "artifact_mount_path",
            f"expected an absolute path, got {self.artifact_mount_path!r}",
        )
        _check(
            not self.pipeline_root or re.match(r"^(s3|gs|minio)://.+", self.pipeline_root) is not None,
            "pipeline_root",
            f"expected an object-store URI such as s3://bucket/root, got {self.pipeline_root!r}",
        )

    def resources_for(self, step: str) -> Resources:
        return self.step_resources.get(step, self.resources)


def _check_steps(name: str, steps: tuple[str, ...]) -> None:
    unknown = [step for step in steps if step not in STEP_NAMES]
    _check(
        not unknown, name, f"unknown step {unknown[0] if unknown else ''!r}; steps: {', '.join(STEP_NAMES)}"
    )


def split_cluster_section(data: dict[str, Any]) -> tuple[dict[str, Any], ClusterConfig]:
    """A run config file's sections without ``cluster``, and the ``cluster`` section, validated."""
    rest = {key: value for key, value in data.items() if key != "cluster"}
    return rest, build(ClusterConfig, data.get("cluster") or {}, "cluster")
