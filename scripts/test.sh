#!/usr/bin/env bash
# Sets up (if needed) and runs the test suite: `scripts/test.sh [pytest options]`.
# Default: everything but the `slow` and `gpu` markers; pass -m "slow" etc. to choose.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"
if [ "$#" -eq 0 ]; then
    set -- -m "not slow and not gpu"
fi
exec .venv/bin/python -m pytest "$@"
