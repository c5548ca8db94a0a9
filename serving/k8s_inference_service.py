"""The Kubernetes calls of the rollout controller, through the official ``kubernetes`` client:
read an InferenceService, merge-patch it (optimistic concurrency on ``resourceVersion``), and
record a Kubernetes Event about it. Exactly what the chart's Role allows, nothing more.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from typing import Any

GROUP, VERSION, PLURAL = "serving.kserve.io", "v1beta1", "inferenceservices"
EVENT_SOURCE = "recforge-rollout-controller"


class InferenceServiceMissing(LookupError):
    """The InferenceService does not exist (HTTP 404)."""


class Conflict(RuntimeError):
    """Someone else changed the InferenceService since it was read (HTTP 409)."""


def api_client(kubeconfig: str | None = None) -> Any:
    """In-cluster credentials inside a pod, else ``kubeconfig`` (or ~/.kube/config); a missing or
    unreadable kubeconfig is a ValueError naming it."""
    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException

    if kubeconfig is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
        config.load_incluster_config()
        return client.ApiClient()
    try:
        return config.new_client_from_config(config_file=kubeconfig)
    except ConfigException as error:
        where = kubeconfig or "~/.kube/config (the default)"
        raise ValueError(
            f"kubeconfig: no usable cluster configuration in {where}: {error}; pass --kubeconfig "
            "or run inside the cluster"
        ) from None


class InferenceServiceClient:
    def __init__(self, api_client: Any) -> None:
        from kubernetes import client

        self._custom = client.CustomObjectsApi(api_client)
        self._core = client.CoreV1Api(api_client)

    def get(self, namespace: str, name: str) -> dict:
        from kubernetes.client.exceptions import ApiException

        try:
            return self._custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
        except ApiException as error:
            if error.status == 404:
                raise InferenceServiceMissing(
                    f"InferenceService {namespace}/{name} does not exist (is the chart installed with "
                    "inferenceService.enabled, and the name right?)"
                ) from None
            raise

    def merge_patch(self, namespace: str, name: str, patch: dict) -> dict:
        """JSON merge patch (RFC 7386); a ``metadata.resourceVersion`` in it makes a stale write a
        :class:`Conflict` instead of overwriting someone else's change."""
        from kubernetes.client.exceptions import ApiException

        try:
            return self._custom.patch_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name, patch)
        except ApiException as error:
            if error.status == 409:
                raise Conflict(f"InferenceService {namespace}/{name} changed since it was read") from None
            if error.status == 404:
                raise InferenceServiceMissing(f"InferenceService {namespace}/{name} was deleted") from None
            raise

    def record_event(self, isvc: dict, reason: str, message: str, event_type: str = "Normal") -> None:
        from kubernetes import client

        metadata = isvc["metadata"]
        now = datetime.now(timezone.utc)
        self._core.create_namespaced_event(
            metadata["namespace"],
            client.CoreV1Event(
                metadata=client.V1ObjectMeta(
                    generate_name=f"{metadata['name']}.", namespace=metadata["namespace"]
                ),
                involved_object=client.V1ObjectReference(
                    api_version=f"{GROUP}/{VERSION}",
                    kind="InferenceService",
                    name=metadata["name"],
                    namespace=metadata["namespace"],
                    uid=metadata.get("uid"),
                    resource_version=metadata.get("resourceVersion"),
                ),
                reason=reason,
                message=message[:1024],
                type=event_type,
                source=client.V1EventSource(component=EVENT_SOURCE),
                reporting_component=EVENT_SOURCE,
                first_timestamp=now,
                last_timestamp=now,
                count=1,
            ),
        )
