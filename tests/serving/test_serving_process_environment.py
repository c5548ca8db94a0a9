"""Server children keep their metrics in memory even when this process imported Feast, which
points prometheus_client's multiprocess variables at a temporary directory of its own."""

from __future__ import annotations

import os
import subprocess
import sys

from serving.feast_source import FeastOnlineSource
from serving.process import python_environment

PROBE = (
    "import serving.server, feast\n"
    "from prometheus_client import values\n"
    "print(values.ValueClass.__name__)"
)


def test_a_server_child_keeps_its_series_in_memory_after_feast_was_imported_here():
    import feast  # noqa: F401  (what every process reading the online store does)

    result = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, env=python_environment(), timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "MutexValue"


def test_a_multiprocess_directory_the_user_chose_is_kept(monkeypatch, tmp_path):
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "metrics"))
    monkeypatch.setenv("PROMETHEUS_MULTIPROCESS_DIR", str(tmp_path / "feast_metrics_abc"))
    environment = python_environment()
    assert environment["PROMETHEUS_MULTIPROC_DIR"] == str(tmp_path / "metrics")
    assert "PROMETHEUS_MULTIPROCESS_DIR" not in environment


def test_reading_the_store_leaves_no_feast_metrics_directory_to_workers(sqlite_feast_repo, monkeypatch):
    """KServe's workers are spawned with this process's environment after the model (and Feast)
    loaded: what ``import feast`` put there must be gone by then."""
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", "/tmp/feast_metrics_made_by_feast")
    FeastOnlineSource(sqlite_feast_repo)
    assert "PROMETHEUS_MULTIPROC_DIR" not in os.environ
