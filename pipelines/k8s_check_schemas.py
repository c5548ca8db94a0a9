"""Offline schema checks of rendered manifests, the way a cluster would accept or reject them.

- Core objects: Kubernetes' own OpenAPI schemas as bundled by ``kubernetes-validate`` (its strict
  variant: unknown fields are errors), for each Kubernetes version we support.
- The ``InferenceService``: KServe's CRD schema made strict the way the API server treats a
  structural schema — ``additionalProperties: false`` on every object schema with properties
  unless it has ``x-kubernetes-preserve-unknown-fields``, ``nullable`` mapped to a ``null`` type,
  and ``metadata`` checked as a real ObjectMeta from kubernetes-validate's definitions.

Validators are built once per (version, kind) and reused: ``kubernetes_validate.validate`` reads
and parses its 1 MB definitions file on every call, which dominated a multi-value-set check.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

KUBERNETES_VERSIONS = ("1.29.0", "1.33.0")
"""The oldest and newest Kubernetes the chart supports (Chart.yaml's kubeVersion: >=1.29)."""

_DEFINITIONS_ID = "https://kubernetes.io/api/_definitions.json"
_PRESERVE = "x-kubernetes-preserve-unknown-fields"


@dataclass(frozen=True)
class SchemaProblem:
    """One manifest field a schema rejects."""

    target: str  # e.g. "kubernetes 1.29" or "kserve-crd"
    resource: str  # kind/name
    path: str  # dotted path in the manifest, "" for the object itself
    message: str

    def __str__(self) -> str:
        where = f" at {self.path}" if self.path else ""
        return f"{self.resource}{where} ({self.target}): {self.message}"


class SchemaNotBundled(LookupError):
    """No schema for this apiVersion/kind (a custom resource other than the InferenceService)."""


def resource_name(manifest: dict) -> str:
    return f"{manifest.get('kind', '?')}/{(manifest.get('metadata') or {}).get('name', '?')}"


def _problems(validator: Any, manifest: dict, target: str) -> list[SchemaProblem]:
    errors = sorted(validator.iter_errors(manifest), key=lambda e: list(map(str, e.absolute_path)))
    return [
        SchemaProblem(target, resource_name(manifest), ".".join(map(str, e.absolute_path)), _brief(e))
        for e in errors
    ]


def _brief(error: Any) -> str:
    """jsonschema's message, without echoing whole sub-documents back."""
    message = error.message
    return message if len(message) <= 300 else message[:297] + "..."


# --- Kubernetes core objects ------------------------------------------------------------------


def _schema_dir(version: str) -> Any:
    major_minor = ".".join(version.split(".")[:2])
    root = resources.files("kubernetes_validate") / "kubernetes-json-schema"
    folder = root / f"v{major_minor}.0-local-strict"
    if not folder.is_dir():
        bundled = sorted(
            (
                p.name[1:].split("-")[0].rsplit(".", 1)[0]
                for p in root.iterdir()
                if p.name.endswith("-strict")
            ),
            key=lambda v: tuple(map(int, v.split("."))),
        )
        raise ValueError(
            f"kubernetes version {version!r}: kubernetes-validate bundles no strict schemas for it; "
            f"bundled: {', '.join(bundled)}"
        )
    return folder


def check_kubernetes_version(version: str) -> str:
    """``version`` as X.Y.Z when kubernetes-validate bundles its schemas, else ValueError."""
    _schema_dir(version)
    return version


@cache
def _definitions(version: str) -> Any:
    from referencing import Registry, Resource

    contents = json.loads((_schema_dir(version) / "_definitions.json").read_text())
    return Resource.from_contents(contents) @ Registry()


OBJECT_META_REF = f"{_DEFINITIONS_ID}#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
"""Kubernetes' strict ObjectMeta schema, resolvable in a version's definitions."""


@cache
def _kubernetes_validator(version: str, kind: str, api_version: str) -> Any:
    import jsonschema
    from referencing import Resource

    # kubernetes-validate's file naming: rbac.authorization.k8s.io/v1 -> rbac-v1, v1 -> v1
    group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    path = _schema_dir(version) / f"{kind.lower()}-{group_version}.json"
    if not path.is_file():
        raise SchemaNotBundled(f"{api_version} {kind}")
    schema = json.loads(path.read_text())
    registry = Resource.from_contents(schema) @ _definitions(version)
    return jsonschema.Draft202012Validator(schema, registry=registry)


def kubernetes_problems(manifest: dict, version: str) -> list[SchemaProblem]:
    """Problems of a core object under Kubernetes ``version`` (e.g. "1.29.0"), strict.

    Raises :class:`SchemaNotBundled` for kinds Kubernetes does not define.
    """
    validator = _kubernetes_validator(version, manifest.get("kind", ""), manifest.get("apiVersion", ""))
    major_minor = ".".join(version.split(".")[:2])
    return _problems(validator, manifest, f"kubernetes {major_minor}")


# --- KServe's InferenceService ----------------------------------------------------------------


def strict_structural_schema(schema: dict) -> dict:
    """A copy of a CRD's OpenAPI v3 schema that rejects what the API server would prune or refuse."""
    strict = copy.deepcopy(schema)
    _tighten(strict)
    return strict


def _tighten(node: Any) -> None:
    if not isinstance(node, dict):
        return
    if node.pop("nullable", False):
        kind = node.get("type")
        if isinstance(kind, str):
            node["type"] = [kind, "null"]
        if "enum" in node and None not in node["enum"]:
            node["enum"] = [*node["enum"], None]
    if (
        node.get("type") == "object"
        and "properties" in node
        and "additionalProperties" not in node
        and not node.get(_PRESERVE)
    ):
        node["additionalProperties"] = False
    for child in (node.get("properties") or {}).values():
        _tighten(child)
    for key in ("items", "additionalProperties", "not"):
        _tighten(node.get(key))
    for key in ("anyOf", "allOf", "oneOf"):
        for child in node.get(key) or ():
            _tighten(child)


class CrdSchema:
    """One version of a CustomResourceDefinition's schema, strict, with ObjectMeta plugged in."""

    def __init__(self, crd: dict, served_version: str, kubernetes_version: str = KUBERNETES_VERSIONS[-1]):
        import jsonschema

        names = crd.get("spec", {}).get("names", {})
        self.kind = names.get("kind", "")
        self.group = crd.get("spec", {}).get("group", "")
        versions = {v.get("name"): v for v in crd.get("spec", {}).get("versions", [])}
        if served_version not in versions:
            raise ValueError(f"CRD {self.group} has no version {served_version!r}; it has {sorted(versions)}")
        self.api_version = f"{self.group}/{served_version}"
        schema = strict_structural_schema(versions[served_version]["schema"]["openAPIV3Schema"])
        schema["properties"]["metadata"] = {"$ref": OBJECT_META_REF}
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        self._validator = jsonschema.Draft202012Validator(schema, registry=_definitions(kubernetes_version))

    @classmethod
    def from_file(cls, path: Path, served_version: str) -> CrdSchema:
        import yaml

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"CRD file {path} does not exist")
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # 2 MB: 1 s instead of 10
        return cls(yaml.load(path.read_text(), Loader=loader), served_version)

    def problems(self, manifest: dict) -> list[SchemaProblem]:
        return _problems(self._validator, manifest, "kserve-crd")


KSERVE_CRD_FILE = "serving.kserve.io_inferenceservices.yaml"


def default_kserve_crd() -> Path | None:
    """KServe's CRD from the shared schemas folder next to a source checkout, if present."""
    candidate = Path(__file__).resolve().parents[2] / "shared" / "schemas" / KSERVE_CRD_FILE
    return candidate if candidate.is_file() else None
