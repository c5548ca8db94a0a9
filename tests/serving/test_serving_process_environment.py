"""Server children keep their metrics in memory even when this process imported Feast, which
points prometheus_client's multiprocess variables at a temporary directory of its own."""

from __future__ import annotations

import subprocess
import sys

from serving.process import python_environment

PROBE = (
    "import serving.server, feast\n"
    "from prometheus_client import values\n"
    "print(values.ValueClass.__name__)"
)


def test_a_server_child_keeps_its_series_in_memory_after_feast_was_imported_here():
    import feast  # noqa: F401  (what every process reading the online store does)

    assert run_python(PROBE) == "MutexValue"


def test_a_multiprocess_directory_the_user_chose_is_kept(monkeypatch, tmp_path):
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "metrics"))
    monkeypatch.setenv("PROMETHEUS_MULTIPROCESS_DIR", str(tmp_path / "feast_metrics_abc"))
    environment = python_environment()
    assert environment["PROMETHEUS_MULTIPROC_DIR"] == str(tmp_path / "metrics")
    assert "PROMETHEUS_MULTIPROCESS_DIR" not in environment


SERVER_READS_THE_STORE = (
    "import os, sys, serving.server\n"
    "from serving.feast_source import FeastOnlineSource\n"
    "FeastOnlineSource(sys.argv[1])\n"
    "print([os.environ.get(k) for k in ('PROMETHEUS_MULTIPROC_DIR', 'PROMETHEUS_MULTIPROCESS_DIR')])"
)


def run_python(code: str, *args: str) -> str:
    """The last line ``code`` prints in a fresh interpreter with a server child's environment."""
    command = [sys.executable, "-c", code, *args]
    result = subprocess.run(command, capture_output=True, text=True, env=python_environment(), timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout.strip().splitlines()[-1]


def test_reading_the_store_leaves_no_feast_metrics_directory_to_workers(sqlite_feast_repo):
    """KServe's workers are spawned with the server's environment after the model (and Feast)
    loaded: what ``import feast`` put there must be gone by then."""
    assert run_python(SERVER_READS_THE_STORE, str(sqlite_feast_repo)) == "[None, None]"


READ_AFTER_FEAST_AND_PROMETHEUS = (
    "import sys, feast, prometheus_client\n"
    "from serving.feast_source import FeastOnlineSource\n"
    "FeastOnlineSource(sys.argv[1])\n"
    "prometheus_client.Gauge('made_after_reading', 'a new series', multiprocess_mode='livemax').set(1)\n"
    "print('counted')"
)


def test_a_process_whose_prometheus_client_followed_feast_keeps_counting(sqlite_feast_repo):
    """prometheus_client imported after Feast stores every new series in Feast's directory, read
    from the environment each time: reading the store must not take it away (it crashed)."""
    assert run_python(READ_AFTER_FEAST_AND_PROMETHEUS, str(sqlite_feast_repo)) == "counted"


ROUTER_METRICS_AFTER_FEAST = (
    "import pipelines.feature_store, serving.router_metrics\n"
    "from prometheus_client import values\n"
    "print(values.ValueClass.__name__)"
)


def test_our_packages_keep_series_in_memory_when_feast_came_first():
    """A process that imported Feast (our pipelines) before the serving metrics still keeps
    them in memory, where two routers' same-named series stay apart."""
    assert run_python(ROUTER_METRICS_AFTER_FEAST) == "MutexValue"
