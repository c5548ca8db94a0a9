"""ops/ builds from a clean CMake tree with nothing but Python, pybind11 and a compiler (the
extensions do not link libtorch), and the CPU extension built there is found and agrees with
the reference; the CUDA kernels compile wherever a CUDA toolkit is installed."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("cmake") is None, reason="needs cmake on PATH"),
]


def _cmake(build: Path, *options: str) -> None:
    python = f"-DPython_EXECUTABLE={sys.executable}"
    configure = ["cmake", "-S", str(REPO), "-B", str(build), python, *options]
    for command in (configure, ["cmake", "--build", str(build), "--parallel", "2"]):
        result = subprocess.run(command, capture_output=True, text=True, timeout=1800)
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]


def test_clean_cmake_build_gives_a_cpu_extension_that_agrees_with_the_reference(tmp_path):
    build = tmp_path / "build"
    _cmake(build, "-DRECFORGE_CUDA=OFF")

    code = (
        "import sys; sys.modules['ops._cpu'] = None\n"  # hide the installed extension
        "import torch\n"
        "from ops import FusedEmbeddingBag\n"
        "from ops._native import load_extension\n"
        "print(load_extension('_cpu').module.__file__)\n"
        "torch.manual_seed(0)\n"
        "cpu = FusedEmbeddingBag([50, 7], [8, 3], backend='cpu')\n"
        "ref = FusedEmbeddingBag([50, 7], [8, 3], backend='reference')\n"
        "ref.load_state_dict(cpu.state_dict())\n"
        "indices, offsets = torch.tensor([3, 49, 3, 6, 0]), torch.tensor([0, 2, 3, 4, 5])\n"
        "torch.testing.assert_close(cpu(indices, offsets), ref(indices, offsets))\n"
    )
    env = {**os.environ, "RECFORGE_OPS_BUILD_DIR": str(build)}
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300, cwd=REPO
    )

    assert result.returncode == 0, result.stderr[-4000:]
    assert result.stdout.strip().startswith(str(build))


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="needs a CUDA toolkit (nvcc)")
def test_cuda_extension_compiles_when_a_toolkit_is_found(tmp_path):
    build = tmp_path / "build"

    _cmake(build, "-DRECFORGE_CUDA=ON", "-DCMAKE_CUDA_ARCHITECTURES=90")

    assert list(build.glob("_cuda*.so"))
