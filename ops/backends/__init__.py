"""Backends by name. `auto` picks the native kernels for the weights' device when they are
available and falls back to `reference`, so it works on any machine."""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch

from ops._native import load_extension
from ops.backends.base import Kernels
from ops.backends.reference import ReferenceKernels


class BackendUnavailableError(RuntimeError):
    """The requested backend cannot run here (not built, or wrong device/dtype)."""


def _cpu() -> Kernels:
    extension = load_extension("_cpu")
    if extension.module is None:
        raise BackendUnavailableError(f"backend 'cpu' is not available: {extension.problem}")
    from ops.backends.cpu import CpuKernels

    return CpuKernels(extension.module)


def _cuda() -> Kernels:
    if not torch.cuda.is_available():
        raise BackendUnavailableError("backend 'cuda' is not available: torch sees no CUDA device")
    extension = load_extension("_cuda")
    if extension.module is None:
        raise BackendUnavailableError(f"backend 'cuda' is not available: {extension.problem}")
    from ops.backends.cuda import CudaKernels

    return CudaKernels(extension.module)


def _triton() -> Kernels:
    from ops.backends.triton_backend import TritonKernels, triton_problem

    problem = triton_problem()
    if problem:
        raise BackendUnavailableError(f"backend 'triton' is not available: {problem}")
    return TritonKernels()


_FACTORIES: dict[str, Callable[[], Kernels]] = {
    "reference": ReferenceKernels,
    "cpu": _cpu,
    "cuda": _cuda,
    "triton": _triton,
}


@functools.cache
def get_kernels(name: str) -> Kernels:
    """The named backend; BackendUnavailableError says why it cannot be used."""
    return _FACTORIES[name]()


def _usable(name: str, device: torch.device, dtype: torch.dtype) -> Kernels | None:
    try:
        kernels = get_kernels(name)
    except BackendUnavailableError:
        return None
    return None if kernels.unsupported(device, dtype) else kernels


def resolve(name: str, device: torch.device, dtype: torch.dtype) -> Kernels:
    """The kernels to run for weights on `device` with `dtype`."""
    if name == "auto":
        native = "cuda" if device.type == "cuda" else "cpu"
        return _usable(native, device, dtype) or get_kernels("reference")
    kernels = get_kernels(name)
    problem = kernels.unsupported(device, dtype)
    if problem:
        raise BackendUnavailableError(f"backend {name!r} cannot run here: {problem}")
    return kernels


def available_backends(device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32) -> list[str]:
    """Names of the backends that can run on `device` with `dtype` on this machine."""
    device = torch.device(device)
    return [name for name in _FACTORIES if _usable(name, device, dtype) is not None]
