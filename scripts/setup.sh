#!/usr/bin/env bash
# Creates .venv and installs RecForge (C++/CUDA ops built by CMake) with its test tools.
# Idempotent: skips the install when nothing that affects it changed since the last one.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
VENV=".venv"
STAMP="$VENV/.recforge-setup"

if [ ! -x "$VENV/bin/python" ]; then
    echo "setup: creating $VENV with $($PYTHON --version)"
    "$PYTHON" -m venv "$VENV"
fi

fingerprint="$(cat pyproject.toml CMakeLists.txt $(find ops/csrc -type f | sort) | sha256sum | cut -c1-16)"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$fingerprint" ] && "$VENV/bin/python" -c "import ops, kfp, feast, kserve" 2>/dev/null; then
    echo "setup: $VENV is up to date"
    exit 0
fi

echo "setup: installing Python packages (first time: a few minutes)"
"$VENV/bin/pip" install --quiet --upgrade pip
# torch 2.13.0's CPU build: pinned so pip never pulls a multi-GB CUDA build.
"$VENV/bin/pip" install --quiet torch==2.13.0 "scikit-build-core>=0.10" "pybind11>=2.12"
"$VENV/bin/pip" install --quiet --no-build-isolation -e ".[dev]"
"$VENV/bin/pip" check
echo "$fingerprint" > "$STAMP"
echo "setup: done"
