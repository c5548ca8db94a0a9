"""Render and lint the Helm chart offline with Helm's own Go library (helm-python-sdk).

No helm binary, cluster or network is involved: ``lookup`` returns nothing, so a rendered
Secret gets a fresh random password exactly as a first install would.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

CHART_DIR_IN_SOURCE = Path(__file__).resolve().parents[1] / "charts" / "recforge"
VALUE_SETS_FOLDER = "ci"
"""Named value sets inside the chart (Helm's chart-testing convention): ``ci/<name>.yaml``."""
DEFAULT_RELEASE = "recforge"
DEFAULT_NAMESPACE = "recforge"


class ChartError(ValueError):
    """The chart cannot be rendered with these values; the message is Helm's, with the fix."""


@dataclass(frozen=True)
class ValueSet:
    name: str
    values: dict
    source: Path | None = None


@dataclass(frozen=True)
class RenderedObject:
    template: str  # e.g. recforge/templates/redis.yaml
    manifest: dict

    @property
    def kind(self) -> str:
        return self.manifest.get("kind", "")

    @property
    def name(self) -> str:
        return (self.manifest.get("metadata") or {}).get("name", "")


@dataclass(frozen=True)
class LintMessage:
    severity: str  # info | warning | error
    path: str
    message: str

    def __str__(self) -> str:
        return f"[{self.severity.upper()}] {self.path}: {self.message}"


_SEVERITIES = {0: "unknown", 1: "info", 2: "warning", 3: "error"}


def _helm() -> Any:
    try:
        import helm_python
    except ImportError:
        raise ChartError(
            "helm-python-sdk is not installed; `pip install helm-python-sdk` (Helm's Go library, "
            "no helm binary needed)"
        ) from None
    return helm_python


def check_chart_dir(chart_dir: Path) -> Path:
    chart_dir = Path(chart_dir)
    if not (chart_dir / "Chart.yaml").is_file():
        raise ChartError(f"--chart: {chart_dir} is not a Helm chart (no Chart.yaml); pass charts/recforge")
    return chart_dir


def load_values_file(path: Path) -> dict:
    """A values file as a mapping; an unreadable or non-mapping file names itself."""
    path = Path(path)
    if not path.is_file():
        raise ChartError(f"--values: no file at {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise ChartError(f"--values: {path} is not valid YAML: {error}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ChartError(f"--values: {path} must hold a mapping of values, got {type(data).__name__}")
    return data


def value_sets(chart_dir: Path) -> list[ValueSet]:
    """The chart's defaults, then every ``ci/*.yaml`` value set, by file name."""
    sets = [ValueSet("defaults", {})]
    for path in sorted((Path(chart_dir) / VALUE_SETS_FOLDER).glob("*.yaml")):
        sets.append(ValueSet(path.stem, load_values_file(path), path))
    return sets


def render_templates(
    chart_dir: Path,
    values: dict,
    *,
    release: str = DEFAULT_RELEASE,
    namespace: str = DEFAULT_NAMESPACE,
) -> dict[str, str]:
    """Template path -> rendered text, as an install would render them."""
    helm = _helm()
    try:
        with helm.Chart.load(str(check_chart_dir(chart_dir))) as chart:
            return chart.render(values=values, name=release, namespace=namespace, is_install=True)
    except helm.HelmError as error:
        raise ChartError(" ".join(str(error).split())) from None


def render(
    chart_dir: Path,
    values: dict,
    *,
    release: str = DEFAULT_RELEASE,
    namespace: str = DEFAULT_NAMESPACE,
) -> list[RenderedObject]:
    """Every object the chart renders for ``values`` (NOTES.txt left out)."""
    rendered = render_templates(chart_dir, values, release=release, namespace=namespace)
    objects = []
    for template, text in sorted(rendered.items()):
        if not template.endswith((".yaml", ".yml")):
            continue
        for manifest in yaml.safe_load_all(text):
            if manifest:
                objects.append(RenderedObject(template, manifest))
    return objects


def lint(
    chart_dir: Path, values: dict, kube_version: str, *, namespace: str = DEFAULT_NAMESPACE
) -> list[LintMessage]:
    """``helm lint --strict`` for Kubernetes ``kube_version`` (e.g. "1.29.0")."""
    helm = _helm()
    report = helm.lint(
        str(check_chart_dir(chart_dir)),
        values,
        strict=True,
        namespace=namespace,
        kube_version=f"v{kube_version.lstrip('v')}",
    )
    messages = [
        LintMessage(_SEVERITIES.get(m.get("severity", 0), "unknown"), m.get("path", ""), m.get("error", ""))
        for m in report.get("messages", [])
    ]
    messages += [LintMessage("error", str(chart_dir), error) for error in report.get("errors", [])]
    return messages
