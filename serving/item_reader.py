"""The periodic item-table refresh, read by a child process.

Reading every held item from Feast is ~0.3 s of Python (protobuf parsing, 384-float vectors) per
thousand items. In the serving process it holds the GIL in 0.5 ms slices for that long, and every
request that overlaps it waits at each of its GIL hand-offs: measured through the canary router
at 50 req/s, the p99 went from 16-17 ms without refreshes to 29-56 ms with one per minute. The
child process reads with its own FeatureStore and sends back plain values (lists and float32
arrays); the server only turns them into its table (a few ms).

The child (``python -m serving.item_reader``: it imports Feast, not KServe or the model) is
started by the server once loaded (else at the first refresh), runs at a lower CPU priority,
exits when its pipe closes (also when the server is killed) and is replaced after a failed or
timed-out read. Values cross the pipe as ``multiprocessing`` messages: numbers, strings and
float32 arrays, never a model.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import threading
from multiprocessing.connection import Connection
from pathlib import Path

from serving.process import python_environment

logger = logging.getLogger(__name__)

NICENESS = 10  # the server's threads get the CPU first when both want it


class ItemReaderProcess:
    """Reads item features in a child process with a FeatureStore of its own, built from the
    same arguments as the server's :class:`serving.feature_source.FeastOnlineSource`."""

    def __init__(self, source_args: tuple[Path, str, float]) -> None:
        """``source_args``: the server's source's ``args`` (repo, feature service, Redis timeout)."""
        self._source_args = source_args
        self._lock = threading.Lock()
        self._process: subprocess.Popen | None = None
        self._connection: Connection | None = None
        self._closed = False

    def start(self) -> None:
        """Start the child now rather than at the first read (it imports Feast for seconds)."""
        with self._lock:
            self._start()

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def read(self, ids: list[int], timeout_s: float) -> dict[str, list]:
        """Every item feature of ``ids`` (see :func:`serving.feast_source.read_items`); raises
        on a store error or no answer within ``timeout_s``. A reader found dead is replaced
        and asked again, once."""
        with self._lock:
            try:
                ok, payload = self._ask(list(ids), timeout_s)
            except (EOFError, OSError):
                ok, payload = self._ask(list(ids), timeout_s)
            if not ok:
                raise RuntimeError(payload)
            return payload

    def _ask(self, ids: list[int], timeout_s: float) -> tuple[bool, object]:
        connection = self._start()
        try:
            connection.send(ids)
            if not connection.poll(timeout_s):
                raise TimeoutError(f"the item reader process sent nothing within {timeout_s:g} s")
            return connection.recv()
        except BaseException:
            self._stop()
            raise

    def close(self) -> None:
        """Stop the child; a read waiting on it fails at once instead of holding the lock (and
        the server's shutdown) until its timeout."""
        self._closed = True
        process = self._process
        if process is not None and process.poll() is None:
            process.kill()
        with self._lock:
            self._stop()

    def _start(self) -> Connection:
        if self._closed:
            raise RuntimeError("the item reader is closed")
        if self._process is not None and self._process.poll() is None and self._connection is not None:
            return self._connection
        self._stop()
        ours, theirs = socket.socketpair()
        self._process = subprocess.Popen(
            [sys.executable, "-m", "serving.item_reader", str(theirs.fileno())],
            pass_fds=[theirs.fileno()],
            stdin=subprocess.DEVNULL,
            env=python_environment(),
        )
        theirs.close()
        self._connection = Connection(ours.detach())
        self._connection.send(self._source_args)
        logger.info("item table: reader process %d started", self._process.pid)
        return self._connection

    def _stop(self) -> None:
        if self._connection is not None:
            self._connection.close()
        if self._process is not None and self._process.poll() is None:
            self._process.kill()  # it holds nothing but a store client
            self._process.wait()
        self._process = self._connection = None


def _serve(connection: Connection) -> None:
    """The child: read the source's arguments, then answer each list of ids with
    ``(True, values)`` or ``(False, reason)`` until the pipe closes."""
    os.nice(NICENESS)
    from serving.feast_source import FeastOnlineSource, read_items

    source = None
    try:
        repo, feature_service, redis_timeout_s = connection.recv()
        while True:
            ids = connection.recv()
            try:
                if source is None:
                    source = FeastOnlineSource(repo, feature_service, redis_timeout_s=redis_timeout_s)
                else:
                    source.refresh_registry()
                answer = (True, read_items(source, ids))
            except Exception as error:
                answer = (False, f"{type(error).__name__}: {error}")
            connection.send(answer)
    except (EOFError, OSError):  # the server closed the pipe or is gone
        return


if __name__ == "__main__":
    _serve(Connection(int(sys.argv[1])))
