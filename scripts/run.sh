#!/usr/bin/env bash
# Sets up (if needed) and runs the whole pipeline on this machine: `scripts/run.sh [recforge run options]`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/recforge run "$@"
