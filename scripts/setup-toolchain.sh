#!/usr/bin/env bash
# Make `cargo build --target wasm32-wasip2` work, and record how in
# ${XDG_CACHE_HOME:-~/.cache}/cargo-task-wasm-dev/toolchain.env (outside the work tree).
set -euo pipefail
state="${XDG_CACHE_HOME:-$HOME/.cache}/cargo-task-wasm-dev"
mkdir -p "$state"
say() { printf '[setup-toolchain] %s\n' "$*" >&2; }

if timeout 300 rustup target add wasm32-wasip2 >&2; then
  say "rustup's wasm32-wasip2 target is installed"
  echo "unset RUSTUP_TOOLCHAIN" > "$state/toolchain.env"
  exit 0
fi
say "rustup could not install wasm32-wasip2"
exit 1
