"""Start ``python -m serving.server`` as a child process on loopback and stop it by its PID."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import httpx

import serving
from serving.feast_source import without_feast_metrics_dirs

_SOURCE_ROOT = Path(serving.__file__).resolve().parent.parent


def python_environment() -> dict[str, str]:
    """This environment with RecForge's source root on PYTHONPATH, for ``python -m serving...``
    children (the checkout need not be installed), without the metrics directory ``import feast``
    may have left in it (see ``without_feast_metrics_dirs``)."""
    environment = dict(os.environ)
    without_feast_metrics_dirs(environment)
    environment["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(_SOURCE_ROOT), environment.get("PYTHONPATH")])
    )
    return environment


class ServerStartError(RuntimeError):
    """A model server did not become ready; the message carries the tail of its log."""


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


class ServerProcess:
    """A model server child process: its URL, its PID and its log file."""

    def __init__(self, popen: subprocess.Popen, url: str, model_name: str, log_path: Path) -> None:
        self._popen = popen
        self.url = url
        self.model_name = model_name
        self.log_path = log_path

    @property
    def pid(self) -> int:
        return self._popen.pid

    def running(self) -> bool:
        return self._popen.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def wait_ready(self, timeout_s: float) -> None:
        """Poll the model's readiness endpoint until it answers 200 (bounded by ``timeout_s``)."""
        deadline = time.monotonic() + timeout_s
        ready_url = f"{self.url}/v1/models/{self.model_name}"
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                if not self.running():
                    raise ServerStartError(
                        f"model server (pid {self.pid}) exited with code {self._popen.returncode} "
                        f"before it was ready; last lines of {self.log_path}:\n{self.log_tail()}"
                    )
                try:
                    if client.get(ready_url).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                time.sleep(0.1)
        self.stop()
        raise ServerStartError(
            f"model server (pid {self.pid}) was not ready at {ready_url} within {timeout_s:.0f} s; "
            f"last lines of {self.log_path}:\n{self.log_tail()}"
        )

    def stop(self, grace_s: float = 15.0) -> int:
        """SIGTERM this server's PID, SIGKILL it if it has not exited after ``grace_s``."""
        if self.running():
            os.kill(self.pid, signal.SIGTERM)
            try:
                self._popen.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self._popen.wait()
        return self._popen.returncode

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def launch_server(
    log_path: Path,
    *,
    artifact_dir: Path | None = None,
    feature_repo: Path | None = None,
    transformer_for: str | None = None,
    model_name: str = "ranker",
    port: int | None = None,
    extra_args: Sequence[str] = (),
) -> ServerProcess:
    """Start a predictor (``artifact_dir``) or, with ``transformer_for=HOST:PORT``, a Feast
    transformer in front of that predictor, on 127.0.0.1. Call ``wait_ready`` before use."""
    port = free_port() if port is None else port
    command = [sys.executable, "-m", "serving.server", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--model-name", model_name]
    if transformer_for is not None:
        command += ["--transformer", "--predictor-host", transformer_for]
    if artifact_dir is not None:
        command += ["--artifact", str(artifact_dir)]
    if feature_repo is not None:
        command += ["--feature-repo", str(feature_repo)]
    command += list(extra_args)
    env = python_environment()
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        popen = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
        )
    return ServerProcess(popen, f"http://127.0.0.1:{port}", model_name, log_path)


def start_server(log_path: Path, *, timeout_s: float = 180.0, **launch: object) -> ServerProcess:
    """``launch_server`` and wait until it is ready (stopping it if it never gets there)."""
    server = launch_server(log_path, **launch)
    server.wait_ready(timeout_s)
    return server


@contextlib.contextmanager
def all_ready(
    servers: Mapping[str, ServerProcess], timeout_s: float = 180.0
) -> Iterator[Mapping[str, ServerProcess]]:
    """Launched servers, once every one is ready; all stopped on exit, also when one never starts."""
    try:
        for server in servers.values():
            server.wait_ready(timeout_s)
        yield servers
    finally:
        for server in servers.values():
            server.stop()


class ArmServers:
    """One arm of a canary: its predictor and, when features come through a transformer, the
    Feast transformer in front of it (stamping the predictor's model version). ``url`` is the
    arm's entry point: the transformer when there is one, else the predictor."""

    def __init__(self, predictor: ServerProcess, transformer: ServerProcess | None = None) -> None:
        self.predictor = predictor
        self.transformer = transformer

    @property
    def servers(self) -> tuple[ServerProcess, ...]:
        return (self.predictor,) if self.transformer is None else (self.predictor, self.transformer)

    @property
    def url(self) -> str:
        return (self.transformer or self.predictor).url

    def wait_ready(self, timeout_s: float) -> None:
        for server in self.servers:
            server.wait_ready(timeout_s)

    def stop(self) -> None:
        for server in reversed(self.servers):
            server.stop()


def launch_arm(
    workdir: Path,
    name: str,
    artifact_dir: Path,
    feature_repo: Path | None,
    *,
    transformer: bool = False,
) -> ArmServers:
    """Start one arm on 127.0.0.1 (logs ``workdir/<name>-*.log``): a predictor reading
    ``feature_repo`` in-process, or with ``transformer`` a bare predictor behind a Feast
    transformer of the same artifact's version. Call ``wait_ready`` before use."""
    workdir = Path(workdir)
    if not transformer or feature_repo is None:
        return ArmServers(
            launch_server(
                workdir / f"{name}-server.log", artifact_dir=artifact_dir, feature_repo=feature_repo
            )
        )
    predictor = launch_server(workdir / f"{name}-predictor.log", artifact_dir=artifact_dir)
    try:
        front = launch_server(
            workdir / f"{name}-transformer.log",
            artifact_dir=artifact_dir,
            feature_repo=feature_repo,
            transformer_for=predictor.url.removeprefix("http://"),
        )
    except BaseException:
        predictor.stop()
        raise
    return ArmServers(predictor, front)
