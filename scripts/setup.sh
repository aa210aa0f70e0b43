#!/usr/bin/env bash
# Set up a development machine: a wasm32-wasip2-capable Rust toolchain and .venv with
# cargo-task-wasm installed (editable) and its test dependencies. Safe to re-run: a second
# run takes seconds. Afterwards `source .venv/cargo-task.env` (done by scripts/test.sh and
# scripts/demo.sh) puts cargo-task on PATH and selects the toolchain.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '[setup] %s\n' "$*" >&2; }

bash scripts/setup-toolchain.sh

if [ ! -x .venv/bin/python ]; then
  say "creating .venv"
  python3 -m venv .venv
fi
if ! .venv/bin/python -c "import cargo_task, wasmtime, pytest" 2>/dev/null \
   || [ pyproject.toml -nt .venv/.installed ]; then
  say "installing cargo-task-wasm and test dependencies into .venv"
  .venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'
  touch .venv/.installed
fi

# Byte-compile now: with PYTHONDONTWRITEBYTECODE set, every run would compile the sources.
.venv/bin/python -m compileall -q src >/dev/null

toolchain_env="${XDG_CACHE_HOME:-$HOME/.cache}/cargo-task-wasm-dev/toolchain.env"
{
  echo "export PATH=\"$PWD/.venv/bin:\$PATH\""
  cat "$toolchain_env"
} > .venv/cargo-task.env
say "ready: $(.venv/bin/cargo-task --version); toolchain: $(cat "$toolchain_env")"
