"""Helpers the chart tests share (a uniquely named module, not conftest, so tests import it)."""

from __future__ import annotations

from pipelines.k8s_check_chart import CHART_DIR_IN_SOURCE, RenderedObject, value_sets

VALUE_SET_NAMES = [value_set.name for value_set in value_sets(CHART_DIR_IN_SOURCE)]


def objects_of_kind(objects: list[RenderedObject], kind: str) -> list[dict]:
    return [o.manifest for o in objects if o.kind == kind]


def one_of_kind(objects: list[RenderedObject], kind: str, name_suffix: str = "") -> dict:
    (found,) = [m for m in objects_of_kind(objects, kind) if m["metadata"]["name"].endswith(name_suffix)]
    return found


def pod_specs(objects: list[RenderedObject]) -> dict[str, dict]:
    """kind/name -> pod spec of every workload (Deployment, StatefulSet, Job, CronJob)."""
    specs = {}
    for o in objects:
        spec = o.manifest.get("spec", {})
        if o.kind in ("Deployment", "StatefulSet", "Job"):
            specs[f"{o.kind}/{o.name}"] = spec["template"]["spec"]
        elif o.kind == "CronJob":
            specs[f"{o.kind}/{o.name}"] = spec["jobTemplate"]["spec"]["template"]["spec"]
    return specs
