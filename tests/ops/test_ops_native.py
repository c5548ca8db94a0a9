"""The compiled CPU extension: picked by `auto`, deterministic whatever the thread count,
usable after fork(), and found in a CMake build folder when it is not installed."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ops import FusedEmbeddingBag, available_backends
from ops._native import BUILD_DIR_ENV, load_extension
from ops.backends.native import make_problem, ptr
from ops.batch import make_batch


def _big_batch(seed: int = 0, T: int = 4, rows: int = 500, B: int = 256, L: int = 12):
    """Large enough for the kernels to use several threads, with many duplicate rows."""
    g = torch.Generator().manual_seed(seed)
    indices = torch.randint(0, rows, (T * B * L,), generator=g)
    offsets = torch.arange(0, T * B * L + 1, L)
    return indices, offsets


def _run(threads: int, optimizer: str | None) -> dict[str, torch.Tensor]:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    bag = FusedEmbeddingBag([500] * 4, [64, 32, 48, 17], backend="cpu", optimizer=optimizer)
    indices, offsets = _big_batch()
    out = bag(indices, offsets)
    (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
    return {"out": out.detach(), "weight": bag.weight.detach(), "grad": bag.weight.grad}


def test_auto_picks_the_cpu_extension_for_cpu_weights():
    assert "cpu" in available_backends()
    assert FusedEmbeddingBag([10], [4]).kernels().name == "cpu"


@pytest.mark.parametrize("optimizer", [None, "rowwise_adagrad"])
def test_cpu_results_are_bitwise_identical_for_any_thread_count(optimizer):
    single = _run(1, optimizer)
    for threads in (2, 3):
        torch.testing.assert_close(_run(threads, optimizer), single, rtol=0, atol=0)


@pytest.mark.parametrize("optimizer", [None, "adam"])
def test_portable_kernels_agree_with_the_vectorised_ones(optimizer):
    extension = load_extension("_cpu").module
    best = extension.isa()
    try:
        extension.set_isa("generic")
        portable = _run(1, optimizer)
    finally:
        extension.set_isa(best)

    torch.testing.assert_close(_run(1, optimizer), portable)


def test_cpu_pool_works_in_a_forked_child_after_the_parent_used_its_threads():
    # The child calls only the extension: torch's own OpenMP ops hang in a forked child once the
    # parent has used OpenMP threads (a torch limitation), which is why the pool avoids OpenMP.
    torch.manual_seed(0)
    bag = FusedEmbeddingBag([500] * 4, [64, 32, 48, 17], backend="cpu")
    indices, offsets = _big_batch()
    batch = make_batch(bag.layout, bag.weight, indices, offsets, None, mean=False)
    extension = load_extension("_cpu").module
    problem = make_problem(extension, batch, torch.float32)

    def pooled():
        out = torch.zeros(batch.batch_size, bag.layout.total_dim)
        extension.forward(problem, ptr(bag.weight), ptr(out), 2)
        return out.numpy()

    expected = pooled()
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    child = context.Process(target=lambda: results.put(pooled()))
    child.start()
    got = results.get(timeout=120)
    child.join(timeout=120)

    assert child.exitcode == 0
    assert (got == expected).all()


def test_loader_falls_back_to_the_build_folder_named_by_the_environment(tmp_path):
    installed = Path(load_extension("_cpu").module.__file__)
    shutil.copy(installed, tmp_path / installed.name)
    code = (
        "import sys; sys.modules['ops._cpu'] = None\n"  # hide the installed extension
        "from ops._native import load_extension\n"
        "print(load_extension('_cpu').module.__file__)\n"
    )
    env = {**os.environ, BUILD_DIR_ENV: str(tmp_path)}

    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120, check=True
    )

    assert result.stdout.strip() == str(tmp_path / installed.name)
