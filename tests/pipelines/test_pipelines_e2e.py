"""End-to-end: `recforge run` as a user types it, on real kfp.local, GX, Feast, torch and KServe."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

pytestmark = pytest.mark.e2e

STEPS = {"simulate", "data_checks", "feature_store", "training_set", "train_candidate",
         "resolve_baseline", "evaluate", "canary"}


def recforge(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = os.environ | {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "pipelines.cli", *args], cwd=cwd, env=env, capture_output=True,
        text=True, timeout=600,
    )


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("smoke")
    result = recforge("run", "--profile", "smoke", "--output", str(folder / "out"), cwd=folder)
    assert result.returncode == 0, result.stderr[-3000:]
    return folder / "out", result


def test_smoke_run_writes_the_report_with_every_section(smoke_run):
    output, _ = smoke_run
    report = json.loads((output / "report.json").read_text())
    assert report["data_checks"]["success"] is True
    assert report["data_checks"]["failed_expectations"] == []
    for role in ("candidate", "baseline"):
        for task in ("click", "conversion"):
            assert set(report["metrics"][role][task]) == {"auc", "gauc", "logloss"}
    assert isinstance(report["blessed"], bool)
    assert set(report["timings_s"]) >= STEPS
    assert report["canary"]["decision"] in {"promote", "rollback", "skipped"}


def test_smoke_run_canary_reports_every_arm_figure(smoke_run):
    output, _ = smoke_run
    canary = json.loads((output / "report.json").read_text())["canary"]
    if canary["decision"] == "skipped":
        pytest.skip(f"canary skipped: {canary['reason']}")
    for arm in ("primary", "canary"):
        assert {"requests", "ctr", "cvr", "p50_ms", "p99_ms", "errors"} <= set(canary["arms"][arm])
        assert canary["arms"][arm]["requests"] > 0


def test_smoke_run_model_beats_chance_on_clicks(smoke_run):
    output, _ = smoke_run
    metrics = json.loads((output / "report.json").read_text())["metrics"]
    assert metrics["candidate"]["click"]["auc"] > 0.6


def test_smoke_run_html_report_has_plots_and_data_docs(smoke_run):
    output, result = smoke_run
    html = (output / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 3
    assert (output / "data_docs" / "index.html").is_file()
    assert "report: " in result.stdout


def test_a_bad_data_batch_stops_the_pipeline_before_training(tmp_path):
    from pipelines.config import load_config
    from pipelines.simulator import simulate

    data = tmp_path / "data"
    simulate(load_config("smoke").simulation, data, progress=False)
    part = sorted((data / "events").glob("*.parquet"))[0]
    events = pq.read_table(part).to_pandas()
    no_click = events.index[events["click"] == 0][:3]
    events.loc[no_click, "conversion"] = 1
    events.to_parquet(part, index=False)

    output = tmp_path / "out"
    result = recforge("run", "--profile", "smoke", "--data", str(data), "--output", str(output),
                      cwd=tmp_path)
    assert result.returncode == 1
    assert "data checks failed before training" in result.stderr
    assert "conversion" in result.stderr
    report = json.loads((output / "report.json").read_text())
    assert report["stopped_at"] == "data_checks"
    assert not list(output.glob("kfp/*/train-candidate"))
