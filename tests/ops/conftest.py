import pytest
import torch


@pytest.fixture(autouse=True)
def one_torch_thread():
    """The shapes here are tiny: torch's OpenMP threads only add wake-up latency, which on a
    loaded 2-core machine reaches hundreds of ms per op. Tests that need threads set them."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
