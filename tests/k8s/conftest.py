"""Chart fixtures: every value set rendered once per session with Helm's Go library."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.k8s_check_chart import CHART_DIR_IN_SOURCE, RenderedObject, render, value_sets
from pipelines.k8s_check_schemas import CrdSchema, default_kserve_crd


@pytest.fixture(scope="session")
def chart_dir() -> Path:
    pytest.importorskip("helm_python", reason="helm-python-sdk (Helm's Go library) is not installed")
    return CHART_DIR_IN_SOURCE


@pytest.fixture(scope="session")
def values_by_set(chart_dir) -> dict[str, dict]:
    return {value_set.name: value_set.values for value_set in value_sets(chart_dir)}


@pytest.fixture(scope="session")
def rendered(chart_dir, values_by_set) -> dict[str, list[RenderedObject]]:
    return {name: render(chart_dir, values) for name, values in values_by_set.items()}


@pytest.fixture(scope="session")
def kserve_crd() -> CrdSchema:
    path = default_kserve_crd()
    if path is None:
        pytest.skip("KServe's InferenceService CRD is not at ../shared/schemas (the folder is absent)")
    return CrdSchema.from_file(path, "v1beta1")
