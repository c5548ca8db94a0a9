"""Finds the compiled extensions `ops._cpu` and `ops._cuda`.

`pip install .` (or `pip install -e .`) puts them inside the package. A plain CMake build
(`cmake -S . -B build/dev && cmake --build build/dev`) leaves them in its build folder; they are
then found in `$RECFORGE_OPS_BUILD_DIR`, else in the newest `build/*/` of the repository, so the
tests run on a machine that has only torch, pybind11 and CMake.
"""

from __future__ import annotations

import functools
import importlib
import importlib.machinery
import importlib.util
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

ABI_VERSION = 3  # must match kAbiVersion in csrc/common/problem.h
BUILD_DIR_ENV = "RECFORGE_OPS_BUILD_DIR"
_REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Extension:
    """A compiled extension, or why it could not be loaded."""

    module: ModuleType | None
    problem: str = ""


def _build_dirs() -> list[Path]:
    dirs = []
    if os.environ.get(BUILD_DIR_ENV):
        dirs.append(Path(os.environ[BUILD_DIR_ENV]))
    build_root = _REPO_ROOT / "build"
    if build_root.is_dir():
        dirs.extend(sorted(build_root.glob("*/"), key=lambda d: d.stat().st_mtime, reverse=True))
    return dirs


def _built_files(name: str) -> list[Path]:
    return [
        directory / f"{name}{suffix}"
        for directory in _build_dirs()
        for suffix in importlib.machinery.EXTENSION_SUFFIXES
        if (directory / f"{name}{suffix}").is_file()
    ]


def _load_file(full_name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(full_name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _abi_problem(module: ModuleType, where: str) -> str:
    found = getattr(module, "ABI_VERSION", None)
    if found == ABI_VERSION:
        return ""
    return f"{where} is a stale build (ABI {found}, expected {ABI_VERSION}): rebuild it"


@functools.cache
def load_extension(name: str) -> Extension:
    """Imports `ops.<name>` from the package, else from a CMake build folder."""
    full_name = f"ops.{name}"
    problems = []
    try:
        module = importlib.import_module(full_name)
    except ImportError as error:
        problems.append(f"{full_name} is not installed ({error})")
    else:
        problem = _abi_problem(module, full_name)
        if not problem:
            return Extension(module)
        problems.append(problem)
    for path in _built_files(name):
        try:
            module = _load_file(full_name, path)
        except ImportError as error:
            problems.append(f"{path}: {error}")
            continue
        problem = _abi_problem(module, str(path))
        if problem:
            problems.append(problem)
            continue
        sys.modules[full_name] = module
        return Extension(module)
    problems.append(
        f"no build found in ${BUILD_DIR_ENV} or {_REPO_ROOT / 'build'}/*/; build with "
        "`pip install .` or `cmake -S . -B build/dev && cmake --build build/dev`"
    )
    return Extension(None, "; ".join(problems))
