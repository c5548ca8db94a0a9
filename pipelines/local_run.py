"""Running the pipeline on this machine with `kfp.local` (each step in a subprocess)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from pipelines.config import RunConfig

log = logging.getLogger(__name__)


class PipelineFailed(RuntimeError):
    """A step failed; the message says which and why, in the user's terms."""


def run_local(config: RunConfig, output: Path, registry: Path) -> dict[str, Any]:
    """Run every step with kfp's SubprocessRunner in this Python environment; return the report."""
    from kfp import local

    from pipelines.pipeline import recforge_pipeline

    output.mkdir(parents=True, exist_ok=True)
    for stale in ("report.json", "report.html", "data_checks.json"):
        (output / stale).unlink(missing_ok=True)
    local.init(
        runner=local.SubprocessRunner(use_venv=False),
        pipeline_root=str(output / "kfp"),
        raise_on_error=True,
    )
    try:
        recforge_pipeline(
            config_json=config.to_json(), output_dir=str(output), registry_dir=str(registry)
        )
    except RuntimeError as error:
        raise PipelineFailed(_explain(output, error)) from None
    return json.loads((output / "report.json").read_text())


def _explain(output: Path, error: RuntimeError) -> str:
    """Name the failed data expectations when the data checks stopped the run."""
    checks_file = output / "data_checks.json"
    if checks_file.is_file():
        checks = json.loads(checks_file.read_text())
        if not checks.get("success", True):
            failed = [f for f in checks["failed_expectations"] if f.get("severity") == "critical"]
            lines = [
                f"  {f['suite']}: {f['expectation']} on column {f.get('column')!r}: "
                f"{f.get('details', '')} examples: {f.get('examples', [])[:3]}"
                for f in failed
            ]
            _write_stopped_report(output, checks)
            return "data checks failed before training:\n" + "\n".join(lines) + (
                f"\n  Data Docs: {output / 'data_docs'}"
            )
    return f"{error} (see the step's log above)"


def _write_stopped_report(output: Path, checks: dict) -> None:
    report = {
        "stopped_at": "data_checks",
        "data_checks": {
            "success": False,
            "failed_expectations": checks["failed_expectations"],
        },
        "blessed": False,
    }
    (output / "report.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
