"""The item reader process: the same values as an in-process read, replaced when it dies, gone
when the server closes it, and a failed read reported without losing the reader."""

import os
import threading
import time

import numpy as np
import pytest

from serving.feature_source import FeastOnlineSource, read_items
from serving.item_reader import ItemReaderProcess
from tests.serving.conftest import ONLINE_ITEMS

IDS = [*ONLINE_ITEMS, 999_999]


def same_values(ours: dict, theirs: dict) -> bool:
    return ours.keys() == theirs.keys() and all(
        (a is None and b is None) or np.array_equal(np.asarray(a), np.asarray(b))
        for name in ours
        for a, b in zip(ours[name], theirs[name], strict=True)
    )


def test_reader_process_reads_what_an_in_process_read_does_and_recovers(make_feast_repo, tmp_path):
    repo = make_feast_repo(tmp_path / "repo", {"type": "sqlite", "path": str(tmp_path / "online.db")})
    source = FeastOnlineSource(repo)
    reader = ItemReaderProcess(source.args)
    try:
        assert same_values(reader.read(IDS, timeout_s=120), read_items(source, IDS))
        first = reader.pid
        os.kill(first, 9)
        assert same_values(reader.read(IDS, timeout_s=120), read_items(source, IDS))
        assert reader.pid != first  # a dead reader is replaced by the next read
        second = reader.pid
        with pytest.raises(RuntimeError, match="Error"):  # Feast refuses the ids: the reader lives on
            reader.read(["not-an-item-id"], timeout_s=120)
        assert same_values(reader.read(IDS, timeout_s=120), read_items(source, IDS))
        assert reader.pid == second
    finally:
        last = reader.pid
        reader.close()
    assert last is not None and not os.path.exists(f"/proc/{last}")


def test_close_ends_a_read_in_progress_at_once(make_feast_repo, tmp_path):
    repo = make_feast_repo(tmp_path / "repo", {"type": "sqlite", "path": str(tmp_path / "online.db")})
    reader = ItemReaderProcess(FeastOnlineSource(repo).args)
    failures = []

    def first_read() -> None:  # the child imports Feast first: seconds
        try:
            reader.read(IDS, timeout_s=120)
        except Exception as error:
            failures.append(error)

    waiting = threading.Thread(target=first_read)
    waiting.start()
    time.sleep(0.5)
    began = time.monotonic()
    reader.close()
    waiting.join(timeout=10)
    assert time.monotonic() - began < 5 and not waiting.is_alive()
    assert failures and "closed" in str(failures[0])
