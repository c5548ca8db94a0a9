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

# Several tables of mixed widths; one big table (its backward sort is split across threads).
LAYOUTS = {
    "four_tables": ([500] * 4, [64, 32, 48, 17]),
    "one_big_table": ([20_000], [24]),
}


def _big_batch(rows: list[int], seed: int = 0, B: int = 3072, L: int = 12):
    """Large enough for the kernels to use several threads (each table more positions than
    the sort splits, 2^15), with many duplicate rows."""
    g = torch.Generator().manual_seed(seed)
    T = len(rows)
    indices = torch.cat([torch.randint(0, r, (B * L,), generator=g) for r in rows])
    offsets = torch.arange(0, T * B * L + 1, L)
    return indices, offsets


def _run(threads: int, optimizer: str | None, layout: str = "four_tables") -> dict[str, torch.Tensor]:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    rows, dims = LAYOUTS[layout]
    bag = FusedEmbeddingBag(rows, dims, backend="cpu", optimizer=optimizer)
    indices, offsets = _big_batch(rows)
    out = bag(indices, offsets)
    (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
    return {"out": out.detach(), "weight": bag.weight.detach(), "grad": bag.weight.grad}


def test_auto_picks_the_cpu_extension_for_cpu_weights():
    assert "cpu" in available_backends()
    assert FusedEmbeddingBag([10], [4]).kernels().name == "cpu"


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("optimizer", [None, "rowwise_adagrad"])
def test_cpu_results_are_bitwise_identical_for_any_thread_count(optimizer, layout):
    single = _run(1, optimizer, layout)
    for threads in (2, 3):
        torch.testing.assert_close(_run(threads, optimizer, layout), single, rtol=0, atol=0)


def _vectorised_isas() -> list[str]:
    extension = load_extension("_cpu").module
    return [isa for isa in extension.supported_isas() if isa != "generic"] if extension else []


@pytest.mark.parametrize("isa", _vectorised_isas())
@pytest.mark.parametrize("optimizer", [None, "adam"])
def test_portable_kernels_agree_with_each_vectorised_copy(optimizer, isa):
    extension = load_extension("_cpu").module
    best = extension.isa()
    try:
        extension.set_isa("generic")
        portable = _run(1, optimizer)
        extension.set_isa(isa)
        vectorised = _run(1, optimizer)
    finally:
        extension.set_isa(best)

    torch.testing.assert_close(vectorised, portable)


def test_set_isa_refuses_an_instruction_set_naming_the_supported_ones():
    extension = load_extension("_cpu").module

    with pytest.raises(ValueError, match=r"isa must be one this CPU supports \('generic'.*got 'sse9'"):
        extension.set_isa("sse9")


def test_cpu_pool_works_in_a_forked_child_after_the_parent_used_its_threads():
    # The child calls only the extension: torch's own OpenMP ops hang in a forked child once the
    # parent has used OpenMP threads (a torch limitation), which is why the pool avoids OpenMP.
    torch.manual_seed(0)
    rows, dims = LAYOUTS["four_tables"]
    bag = FusedEmbeddingBag(rows, dims, backend="cpu")
    indices, offsets = _big_batch(rows)
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


def test_the_cpu_and_cuda_extensions_load_into_one_process():
    """Both bind the same C++ types: each keeps its bindings to itself (py::module_local), or
    the second import fails with "already registered" (as it did on the first GPU machine)."""
    script = (
        "from ops._native import load_extension\n"
        "cpu, cuda = load_extension('_cpu'), load_extension('_cuda')\n"
        "print(cpu.module is not None, cuda.module is not None, cuda.problem, sep='|')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    cpu_loaded, cuda_loaded, problem = done.stdout.strip().split("|", 2)
    assert cpu_loaded == "True"
    assert "already registered" not in problem
    if cuda_loaded != "True":
        pytest.skip(f"ops._cuda is not built here: {problem}")
