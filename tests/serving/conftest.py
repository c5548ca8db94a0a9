"""Serving fixtures: real model servers on loopback, started as child processes, stopped by PID."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from serving.process import ServerProcess, start_server


@pytest.fixture(scope="session")
def predictor_server(tiny_artifact: Path, tmp_path_factory) -> Iterator[ServerProcess]:
    """``python -m serving.server`` serving the tiny artifact, no feature store."""
    log = tmp_path_factory.mktemp("servers") / "predictor.log"
    with start_server(log, artifact_dir=tiny_artifact, timeout_s=120) as server:
        yield server
