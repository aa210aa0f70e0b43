#!/usr/bin/env bash
# Set up everything a fresh machine needs, then run the whole test suite:
# unit tests and end-to-end tests that build and run real Rust tasks.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source .venv/cargo-task.env
exec python -m pytest "$@"
