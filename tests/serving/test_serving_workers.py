"""A predictor served by several KServe worker processes starts, and every worker answers.

KServe replaces a worker that does not answer its liveness ping within 5 s of starting; a worker
that imported torch and loaded the model before answering was replaced forever."""

from __future__ import annotations

import subprocess
import sys
import time

import httpx

from serving.process import python_environment, start_server
from tests.serving.conftest import ONLINE_ITEMS


def test_a_predictor_with_two_workers_serves_from_both(tiny_artifact, sqlite_feast_repo, tmp_path):
    log = tmp_path / "workers.log"
    extra = ["--workers", "2"]
    with start_server(
        log, artifact_dir=tiny_artifact, feature_repo=sqlite_feast_repo, extra_args=extra, timeout_s=180
    ) as server:
        deadline = time.monotonic() + 120
        while log.read_text(errors="replace").count(": model ") < 2:
            assert time.monotonic() < deadline, f"two workers not loaded within 120 s:\n{server.log_tail()}"
            time.sleep(0.5)
        body = {"instances": [{"user_id": 1, "item_ids": list(ONLINE_ITEMS)}]}
        with httpx.Client(timeout=30) as client:
            answers = [client.post(f"{server.url}/v1/models/ranker:predict", json=body) for _ in range(20)]
    assert [a.status_code for a in answers] == [200] * 20
    assert all(a.json() == answers[0].json() for a in answers)
    text = log.read_text(errors="replace")
    assert "died" not in text, "a worker was replaced"
    workers = {line.split("worker ")[1].split(":")[0] for line in text.splitlines() if ": model " in line}
    assert len(workers) == 2


def test_the_server_module_starts_without_torch_or_scipy():
    """What a worker imports before it can answer its parent (torch and SciPy: ~4 s here)."""
    probe = "import sys, serving.server; print(sorted({'torch', 'scipy'} & set(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=python_environment(), timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"
