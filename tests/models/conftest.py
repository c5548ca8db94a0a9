"""One torch thread for the model tests: these tiny models gain nothing from a second thread, and
on a machine whose cores are busy with other work a spinning thread pool makes them ~10x slower."""

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
