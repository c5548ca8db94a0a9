"""checkov over rendered manifests (its helm framework needs a helm binary) and Dockerfiles.

Runs the ``checkov`` command offline (``--skip-download``, ``BC_SKIP_MAPPING=TRUE``) once over a
folder of files (one per value set) and reads its JSON report. A skipped check must carry a
reason: checkov reads them from ``checkov.io/skipN: "CKV_ID=reason"`` annotations the chart
writes, and from ``# checkov:skip=CKV_ID:reason`` comments in a Dockerfile.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml


class CheckovUnavailable(RuntimeError):
    """checkov is not installed or did not produce a report."""


@dataclass(frozen=True)
class CheckovFinding:
    check_id: str
    check_name: str
    resource: str
    source: str  # the scanned file's name without extension: the value set, or "Dockerfile"
    reason: str = ""  # skips only

    def __str__(self) -> str:
        why = f" — skipped: {self.reason}" if self.reason else ""
        return f"{self.source}: {self.resource}: {self.check_id} {self.check_name}{why}"


@dataclass(frozen=True)
class CheckovReport:
    passed: int
    failed: tuple[CheckovFinding, ...]
    skipped: tuple[CheckovFinding, ...]


def checkov_command() -> list[str]:
    beside_python = Path(sys.executable).with_name("checkov")
    found = str(beside_python) if beside_python.is_file() else shutil.which("checkov")
    if not found:
        raise CheckovUnavailable("checkov is not installed; `pip install checkov` (it runs offline)")
    return [found]


def manifest_files(manifests_by_set: dict[str, list[dict]]) -> dict[str, str]:
    """One multi-document YAML file per value set."""
    return {
        f"{name}.yaml": yaml.safe_dump_all(manifests, sort_keys=False)
        for name, manifests in manifests_by_set.items()
    }


def run_checkov(
    files: dict[str, str], *, framework: str = "kubernetes", timeout_s: float = 600.0
) -> CheckovReport:
    """checkov's ``framework`` checks over ``files`` (file name -> text)."""
    command = checkov_command()
    with tempfile.TemporaryDirectory(prefix="recforge-checkov-") as folder:
        for name, text in files.items():
            Path(folder, name).write_text(text)
        env = {**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"}
        try:
            completed = subprocess.run(
                [
                    *command,
                    "--directory",
                    folder,
                    "--framework",
                    framework,
                    "--skip-download",
                    "--compact",
                    "--output",
                    "json",
                ],
                capture_output=True,
                text=True,
                env=env,
                timeout=timeout_s,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise CheckovUnavailable(f"checkov did not finish within {timeout_s:.0f} s") from None
        try:
            report = json.loads(completed.stdout)
        except json.JSONDecodeError:
            tail = (completed.stderr or completed.stdout)[-2000:]
            raise CheckovUnavailable(
                f"checkov exited {completed.returncode} without a report:\n{tail}"
            ) from None
    if isinstance(report, list):  # one entry per framework
        (report,) = [r for r in report if r.get("check_type") == framework]
    results = report.get("results", {})
    return CheckovReport(
        passed=len(results.get("passed_checks", [])),
        failed=tuple(_finding(c) for c in results.get("failed_checks", [])),
        skipped=tuple(_finding(c, skipped=True) for c in results.get("skipped_checks", [])),
    )


def _finding(check: dict, *, skipped: bool = False) -> CheckovFinding:
    reason = (check.get("check_result") or {}).get("suppress_comment", "") if skipped else ""
    return CheckovFinding(
        check_id=check.get("check_id", ""),
        check_name=check.get("check_name", ""),
        resource=check.get("resource", ""),
        source=Path(check.get("file_path", "")).stem,
        reason=reason,
    )
