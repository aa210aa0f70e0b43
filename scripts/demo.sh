#!/usr/bin/env bash
# Set up everything a fresh machine needs, then run the demo project's tasks through
# `cargo task`, as a user would.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source .venv/cargo-task.env
# The git repository the demo's `todo` task comes from (examples/demo/Cargo.toml): made
# here from examples/demo/tools/todo-task, with fixed names and dates so that its commit is
# the one examples/demo/cargo-task.lock pins.
repo=/tmp/cargo-task-demo-tools.git
rm -rf "$repo" && mkdir -p "$repo"
cp -r examples/demo/tools/todo-task/{Cargo.toml,Cargo.lock,src} "$repo"/
(
  cd "$repo"
  export GIT_AUTHOR_NAME=demo GIT_AUTHOR_EMAIL=demo@example.org GIT_COMMITTER_NAME=demo \
    GIT_COMMITTER_EMAIL=demo@example.org GIT_AUTHOR_DATE="2026-01-01T00:00:00Z" \
    GIT_COMMITTER_DATE="2026-01-01T00:00:00Z"
  git init -q -b main && git add -A && git -c commit.gpgsign=false commit -qm "todo-task 1.0.0" && git tag v1.0
)
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
run cargo task wordcount data/names.txt Cargo.toml   # from a path package (tools/wordcount)
run cargo task --explain todo      # from a git repository: source, commit, asked-for vs granted
run cargo task todo                # the package asks for the network; the demo does not grant it
run cargo task slow || echo "(exit $? — the sandbox stopped it, as configured)"
