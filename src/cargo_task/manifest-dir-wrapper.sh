#!/bin/sh
# cargo-task-wasm's rustc wrapper. cargo runs it in place of rustc for the package it
# generates from a project's tasks (RUSTC_WORKSPACE_WRAPPER: workspace members only, never a
# dependency), with the rustc to run as the first argument. It sets CARGO_MANIFEST_DIR to
# the directory whose tasks/ holds the task, so that `env!("CARGO_MANIFEST_DIR")` in a task
# names the project, as it would in an xtask crate, and not the generated package.
if [ -n "${__CARGO_TASK_MANIFEST_DIR:-}" ]; then
    CARGO_MANIFEST_DIR=$__CARGO_TASK_MANIFEST_DIR
    export CARGO_MANIFEST_DIR
fi
exec "$@"
