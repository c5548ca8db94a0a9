from pathlib import Path

import pytest
import torch

_HERE = Path(__file__).parent


@pytest.fixture(autouse=True)
def one_torch_thread():
    """The shapes here are tiny: torch's OpenMP threads only add wake-up latency, which on a
    loaded 2-core machine reaches hundreds of ms per op. Tests that need threads set them."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# Triton's interpreter is slow: by default it runs forward and backward for every shape in two
# dtype variants, and the fused optimizers on two shapes; everything else is marked slow.
_TRITON_VARIANTS = {"int32-f32-weighted", "int64-f64-unweighted"}
_TRITON_FUSED = {"mixed_dims", "heavy_duplicates"}


def _triton_default(item: pytest.Item) -> bool:
    params = item.callspec.params
    variant = item.callspec.id.split("-")
    if "optimizer" in params:
        return params["case"].name in _TRITON_FUSED and {"int32", "f32", "weighted"} <= set(variant)
    return any(set(v.split("-")) <= set(variant) for v in _TRITON_VARIANTS)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items):
    for item in items:
        if item.path.parent != _HERE:
            continue
        callspec = getattr(item, "callspec", None)
        if callspec and callspec.params.get("backend") == "triton" and not _triton_default(item):
            item.add_marker(pytest.mark.slow)
