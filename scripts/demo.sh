#!/usr/bin/env bash
# Set up everything a fresh machine needs, then run the demo project's tasks through
# `cargo task`, as a user would.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source .venv/cargo-task.env
cd examples/demo
run() { printf '\n$ %s\n' "$*"; "$@"; }
run cargo task
run cargo task hello "from the demo" --help
run cargo task --explain codegen
run cargo task ls data
run cargo task report
run env DEMO_MODE=showcase SECRET_TOKEN=hunter2 cargo task env   # USER, DEMO_* and a fixed GREETING only
run cargo task codegen
run cargo task --explain fmtgen    # host programs: rustfmt, confined to src/generated
run cargo task fmtgen
run cargo task version || echo "(not a git checkout)"   # git rev-parse, describe granted; git log not
run cargo task -p greeter greet Ferris
run cargo task slow || echo "(exit $? — the sandbox stopped it, as configured)"
