"""The pipeline compiled for a cluster: each step gets its Kubernetes settings from
:class:`pipelines.cluster_config.ClusterConfig` through ``kfp-kubernetes``, which writes them
into the IR's ``platforms.kubernetes`` document (KFP's backend applies it to the step's pod).
"""

from __future__ import annotations

from pipelines.cluster_config import ClusterConfig


def configure_step(task, cluster: ClusterConfig) -> None:
    """Image, pull policy, requests/limits, GPU, secrets as env and the artifact PVC of one step."""
    from kfp import kubernetes

    step = task.component_spec.name
    task.set_container_image(cluster.image)
    kubernetes.set_image_pull_policy(task, cluster.image_pull_policy)
    resources = cluster.resources_for(step)
    task.set_cpu_request(resources.cpu_request).set_cpu_limit(resources.cpu_limit)
    task.set_memory_request(resources.memory_request).set_memory_limit(resources.memory_limit)
    gpu = cluster.training_gpu
    if gpu.count and step in gpu.steps:
        task.set_accelerator_type(gpu.accelerator_type).set_accelerator_limit(gpu.count)
        for key, value in gpu.node_selector.items():
            kubernetes.add_node_selector(task, label_key=key, label_value=value)
        for toleration in gpu.tolerations:
            kubernetes.add_toleration(
                task,
                key=toleration.key or None,
                operator=toleration.operator,
                value=toleration.value or None,
                effect=toleration.effect or None,
            )
    for secret in cluster.secret_env:
        kubernetes.use_secret_as_env(
            task, secret_name=secret.secret, secret_key_to_env={secret.key: secret.env}
        )
    if cluster.artifact_pvc:
        kubernetes.mount_pvc(task, pvc_name=cluster.artifact_pvc, mount_path=cluster.artifact_mount_path)


def cluster_pipeline(cluster: ClusterConfig):
    """The pipeline function with every step configured for the cluster."""
    from pipelines.pipeline import build_pipeline

    return build_pipeline(lambda task: configure_step(task, cluster), cluster.pipeline_root)
