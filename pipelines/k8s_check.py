"""``recforge k8s check``: render the chart for each value set and run every offline check.

For each value set (the chart's defaults and ``ci/*.yaml``, or the ``--values`` files given):
Helm render, ``helm lint --strict`` for each Kubernetes version, Kubernetes' strict schemas for
every core object and each version, KServe's strict CRD schema for the InferenceService, and the
``kfp.runConfig`` a KFP hook would submit; then checkov over all of them at once. Exit 0 when
everything passes, 1 when a check fails, 2 when the input cannot be used. Usable in a user's CI::

    recforge k8s check --values my-values.yaml --kube-version 1.30.0
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from pipelines.k8s_check_chart import (
    CHART_DIR_IN_SOURCE,
    DEFAULT_NAMESPACE,
    DEFAULT_RELEASE,
    ChartError,
    RenderedObject,
    ValueSet,
    check_chart_dir,
    lint,
    load_values_file,
    render,
    value_sets,
)
from pipelines.k8s_check_schemas import (
    KUBERNETES_VERSIONS,
    CrdSchema,
    SchemaNotBundled,
    check_kubernetes_version,
    default_kserve_crd,
    kubernetes_problems,
)


@dataclass
class ValueSetReport:
    name: str
    objects: list[RenderedObject] = field(default_factory=list)
    render_error: str = ""
    lint_problems: list[str] = field(default_factory=list)
    lint_infos: int = 0
    schema_problems: list[str] = field(default_factory=list)
    unchecked: set[str] = field(default_factory=set)
    run_config_problem: str = ""

    @property
    def ok(self) -> bool:
        return not (
            self.render_error or self.lint_problems or self.schema_problems or self.run_config_problem
        )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--chart", type=Path, default=CHART_DIR_IN_SOURCE, help="chart directory")
    parser.add_argument(
        "--values",
        type=Path,
        action="append",
        metavar="FILE",
        help="check this values file (repeatable); default: the chart's defaults "
        "and every ci/*.yaml value set",
    )
    parser.add_argument(
        "--kube-version",
        action="append",
        metavar="X.Y.Z",
        help=f"Kubernetes version to check against (repeatable; default {' and '.join(KUBERNETES_VERSIONS)})",
    )
    parser.add_argument(
        "--kserve-crd",
        type=Path,
        metavar="FILE",
        help="KServe's InferenceService CRD YAML (kubectl get crd "
        "inferenceservices.serving.kserve.io -o yaml); default: ../shared/schemas",
    )
    parser.add_argument("--skip-checkov", action="store_true", help="leave out checkov (~8 s)")
    parser.add_argument("--release", default=DEFAULT_RELEASE, help="release name to render with")
    parser.add_argument("--namespace", default=DEFAULT_NAMESPACE, help="namespace to render into")


def run(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    try:
        check_chart_dir(args.chart)
        sets = _value_sets(args)
        versions = [_version(v) for v in (args.kube_version or KUBERNETES_VERSIONS)]
        crd = _kserve_crd(args.kserve_crd)
    except (ChartError, ValueError, FileNotFoundError) as error:
        print(f"recforge k8s check: {error}", file=sys.stderr)
        return 2
    print(
        f"recforge k8s check: {args.chart} — {len(sets)} value set(s), Kubernetes "
        f"{', '.join(v.rsplit('.', 1)[0] for v in versions)}"
    )
    reports = [_check_value_set(args, value_set, versions, crd) for value_set in sets]
    for report in reports:
        _print_report(report, crd is not None)
    failed = not all(report.ok for report in reports)
    if not args.skip_checkov:
        failed |= _checkov(reports)
    if crd is None:
        print(
            "  note: KServe's CRD not found, the InferenceService was not schema-checked; pass --kserve-crd"
        )
    unchecked = sorted(set().union(*(r.unchecked for r in reports)))
    if unchecked:
        print(f"  not schema-checked (no schema bundled): {', '.join(unchecked)}")
    print(f"{'FAILED' if failed else 'OK'} in {time.perf_counter() - started:.1f} s")
    return 1 if failed else 0


def _value_sets(args: argparse.Namespace) -> list[ValueSet]:
    if args.values:
        return [ValueSet(path.stem, load_values_file(path), path) for path in args.values]
    return value_sets(args.chart)


def _version(version: str) -> str:
    parts = version.lstrip("v").split(".")
    if len(parts) not in (2, 3) or not all(p.isdigit() for p in parts):
        raise ValueError(f"--kube-version: expected X.Y or X.Y.Z such as 1.30.0, got {version!r}")
    return check_kubernetes_version(".".join([*parts, "0"][:3]))


def _kserve_crd(path: Path | None) -> CrdSchema | None:
    path = path or default_kserve_crd()
    return None if path is None else CrdSchema.from_file(path, "v1beta1")


def _check_value_set(args, value_set: ValueSet, versions: list[str], crd: CrdSchema | None) -> ValueSetReport:
    report = ValueSetReport(value_set.name)
    try:
        report.objects = render(args.chart, value_set.values, release=args.release, namespace=args.namespace)
    except ChartError as error:
        report.render_error = str(error)
        return report
    for version in versions:
        for message in lint(args.chart, value_set.values, version, namespace=args.namespace):
            if message.severity == "info":
                report.lint_infos += 1
            else:
                report.lint_problems.append(f"{message} (Kubernetes {version})")
    for o in report.objects:
        if o.kind == "InferenceService" and o.manifest.get("apiVersion") == getattr(crd, "api_version", None):
            report.schema_problems += [str(p) for p in crd.problems(o.manifest)]
            continue
        for version in versions:
            try:
                report.schema_problems += [str(p) for p in kubernetes_problems(o.manifest, version)]
            except SchemaNotBundled:
                report.unchecked.add(f"{o.manifest.get('apiVersion')} {o.kind}")
                break
    report.run_config_problem = _run_config_problem(value_set.values)
    return report


def _run_config_problem(values: dict) -> str:
    """The kfp.runConfig the upload hook would submit, validated as recforge will."""
    run_config = (values.get("kfp") or {}).get("runConfig") or {}
    if not run_config:
        return ""
    from pipelines.cluster_config import split_cluster_section
    from pipelines.config import ConfigError, load_config

    try:
        rest, _ = split_cluster_section(run_config)
        load_config("default", None, rest)
    except ConfigError as error:
        return f"kfp.runConfig: {error}"
    return ""


def _print_report(report: ValueSetReport, crd_checked: bool) -> None:
    if report.render_error:
        print(f"  ✗ {report.name}: render failed: {report.render_error}")
        return
    mark = "✓" if report.ok else "✗"
    schemas = "Kubernetes schemas" + (" + KServe CRD" if crd_checked else "")
    print(
        f"  {mark} {report.name}: {len(report.objects)} objects · lint --strict "
        f"{len(report.lint_problems)} warnings/errors · {schemas} {len(report.schema_problems)} errors"
    )
    for problem in [*report.lint_problems, *report.schema_problems, report.run_config_problem]:
        if problem:
            print(f"      {problem}")


def _checkov(reports: list[ValueSetReport]) -> bool:
    """checkov over every rendered value set; True when a check failed."""
    from pipelines.k8s_check_checkov import CheckovUnavailable, manifest_files, run_checkov

    rendered = {r.name: [o.manifest for o in r.objects] for r in reports if r.objects}
    try:
        result = run_checkov(manifest_files(rendered))
    except CheckovUnavailable as error:
        print(f"  checkov: not run: {error}")
        return False
    unexplained = [f for f in result.skipped if not f.reason or f.reason == "No comment provided"]
    print(
        f"  {'✓' if not result.failed and not unexplained else '✗'} checkov: {result.passed} passed, "
        f"{len(result.failed)} failed, {len(result.skipped)} skipped with reasons"
    )
    for finding in [*result.failed, *unexplained]:
        print(f"      {finding}")
    return bool(result.failed or unexplained)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="recforge k8s check",
        description="Render the Helm chart and check it offline: helm lint --strict, Kubernetes "
        "and KServe schemas, the KFP run config, checkov.",
        epilog="example: recforge k8s check --values my-values.yaml",
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
