#!/usr/bin/env bash
# Make `cargo build --target wasm32-wasip2` work, and record how in
# ${XDG_CACHE_HOME:-~/.cache}/cargo-task-wasm-dev/toolchain.env (outside the work tree),
# which scripts/setup.sh copies into .venv/cargo-task.env:
#   - `unset RUSTUP_TOOLCHAIN` when rustup's own wasm32-wasip2 target is installed;
#   - `export RUSTUP_TOOLCHAIN=debian-wasip2` when rustup cannot download it, and
#     scripts/wasip2-offline.sh built the target from Debian packages instead.
#
# Environment:
#   CARGO_TASK_OFFLINE_TOOLCHAIN  1: use the offline build without trying rustup;
#                                 0: rustup only, fail if it cannot add the target;
#                                 unset: rustup first, offline build if that fails.
#   CARGO_TASK_RUSTUP_TIMEOUT     seconds `rustup target add` may take (default 120).
set -Eeuo pipefail
cd "$(dirname "$0")/.."
state="${XDG_CACHE_HOME:-$HOME/.cache}/cargo-task-wasm-dev"
mkdir -p "$state"
say() { printf '[setup-toolchain] %s\n' "$*" >&2; }

target=wasm32-wasip2
offline=${CARGO_TASK_OFFLINE_TOOLCHAIN:-}
rustup_timeout=${CARGO_TASK_RUSTUP_TIMEOUT:-120}
# After a failed download, skip rustup for a day instead of waiting on it every run.
unreachable_mark=$state/rustup-unreachable
case $offline in ''|0|1) ;; *) say "CARGO_TASK_OFFLINE_TOOLCHAIN must be 0, 1 or unset"; exit 2 ;; esac

# Ask about the default toolchain, not one a previously sourced cargo-task.env selected.
unset RUSTUP_TOOLCHAIN

record() {  # atomically: concurrent runs and readers never see half a file
  printf '%s\n' "$1" > "$state/toolchain.env.$$"
  mv -f "$state/toolchain.env.$$" "$state/toolchain.env"
}

rustup_target() {
  command -v rustup >/dev/null || { say "rustup not found"; return 1; }
  # Installed already: no network needed.
  if rustup target list --installed 2>/dev/null | grep -x "$target" >/dev/null; then
    return 0
  fi
  if [ -z "$offline" ] && [ -n "$(find "$unreachable_mark" -mmin -1440 2>/dev/null)" ]; then
    say "rustup could not download $target in the last day; not retrying" \
        "(delete $unreachable_mark to retry now)"
    return 1
  fi
  say "rustup target add $target (time limit ${rustup_timeout}s)"
  if timeout -k 10 "$rustup_timeout" rustup target add "$target" >&2; then
    rm -f "$unreachable_mark"
    return 0
  fi
  touch "$unreachable_mark"
  return 1
}

# rust-analyzer (and rust-src, which it reads std from) for tests/e2e/test_editors.py, which
# skips without them. Seconds from rustup the first time, no network afterwards; never fatal.
editor_components() {
  local installed missing=()
  installed=$(rustup component list --installed 2>/dev/null) || return 0
  grep -q '^rust-analyzer' <<<"$installed" || missing+=(rust-analyzer)
  grep -qx 'rust-src' <<<"$installed" || missing+=(rust-src)
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ -n "$(find "$state/editor-unreachable" -mmin -1440 2>/dev/null)" ]; then
    say "rustup could not add ${missing[*]} in the last day; the editor test will skip"
    return 0
  fi
  say "rustup component add ${missing[*]} (for the editor test)"
  if timeout -k 10 60 rustup component add "${missing[@]}" >&2; then
    rm -f "$state/editor-unreachable"
  else
    touch "$state/editor-unreachable"
    say "could not add ${missing[*]}; the editor test will skip"
  fi
}

if [ "$offline" != 1 ]; then
  if rustup_target; then
    say "using rustup's $target target"
    record "unset RUSTUP_TOOLCHAIN"
    editor_components
    exit 0
  fi
  if [ "$offline" = 0 ]; then
    say "rustup could not install $target, and CARGO_TASK_OFFLINE_TOOLCHAIN=0 forbids the offline build"
    exit 1
  fi
  say "no $target from rustup; building it offline from Debian packages"
else
  say "CARGO_TASK_OFFLINE_TOOLCHAIN=1: building $target offline from Debian packages"
fi

bash scripts/wasip2-offline.sh
record "export RUSTUP_TOOLCHAIN=debian-wasip2"
say "using the offline-built toolchain debian-wasip2"
