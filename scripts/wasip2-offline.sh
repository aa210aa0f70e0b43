#!/usr/bin/env bash
# Build a wasm32-wasip2 Rust toolchain without rustup's download server, from Debian
# bookworm packages only, and link it as the rustup toolchain `debian-wasip2`:
#
#     RUSTUP_TOOLCHAIN=debian-wasip2 cargo build --target wasm32-wasip2
#     cargo +debian-wasip2 build --target wasm32-wasip2
#
# scripts/setup-toolchain.sh runs this when `rustup target add wasm32-wasip2` fails.
#
# Steps:
#   1. apt-get install rustc-web cargo-web rust-web-src wasi-libc lld-<LLVM major of rustc>
#      (bookworm-security carries rustc/cargo 1.96; /usr/bin/{rustc,cargo}, sysroot /usr).
#   2. Put the linker `wasm-component-ld` next to Debian's rustc (copied from a rustup
#      toolchain, which ships it on the host), plus `wasm-ld` from lld.
#   3. Build std for wasm32-wasip2 from rust-web-src's library/ (vendored crates, a few
#      Cargo.toml/build.rs edits) and install it into /usr/lib/rustlib/wasm32-wasip2 with
#      Debian's wasi-libc, a fixed crt1-command.o and fallbacks for the C functions std
#      needs that this 2022 libc lacks (sockets, chmod, realpath, pthread_create).
#   4. rustup toolchain link debian-wasip2 /usr, then build a component with it that
#      links every one of those fallbacks.
#
# Step 3 takes 1-4 minutes on 2 cores (0.9 GB of memory, 1 GiB of disk while it runs); it
# is skipped when the stamp in the cache matches (same rustc, libc, lld and recipe), so a
# re-run takes seconds.
#
# Differences from rustup's real target: std::process::exit(n) reaches the host as 1 for
# any n != 0; std::net returns Unsupported (Debian's wasi-libc is preview1-only);
# fs::canonicalize resolves `..` itself where the real libc asks the host, which refuses
# with PermissionDenied. After std is REbuilt for the same rustc (recipe or package change,
# FORCE=1), `cargo clean` projects built with it before (cargo-task: target/cargo-task):
# cargo does not track the sysroot's contents.
#
# Needs root (apt-get; writes under /usr/lib/rustlib) and rustup with any toolchain whose
# host bin/ has wasm-component-ld (every rustup toolchain since Rust 1.78 has).
#
# Environment:
#   CARGO_TASK_WASIP2_CACHE   cache directory
#                             (default ${XDG_CACHE_HOME:-~/.cache}/cargo-task-wasm-dev/wasip2-offline)
#   CARGO_TASK_WASIP2_NAME    rustup toolchain name to link (default debian-wasip2)
#   FORCE=1                   rebuild std even if the stamp matches
#   KEEP_BUILD=1              keep the build directory (for debugging)
set -Eeuo pipefail

TARGET=wasm32-wasip2
HOST=x86_64-unknown-linux-gnu
TOOLCHAIN_NAME=${CARGO_TASK_WASIP2_NAME:-debian-wasip2}
CACHE=${CARGO_TASK_WASIP2_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cargo-task-wasm-dev/wasip2-offline}
WORK=$CACHE/build
STAMP_FILE=$CACHE/stamp
SELF=$(readlink -f "${BASH_SOURCE[0]}")
T_START=$(date +%s.%N)

elapsed() { awk -v a="$T_START" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }
say() { printf '[wasip2-offline] %s\n' "$*" >&2; }
phase() { say "---- $* ($(elapsed)s)"; }
die() { printf '[wasip2-offline] ERROR: %s\n' "$*" >&2; exit 1; }
# shellcheck disable=SC2154  # rc is assigned inside the trap
trap 'rc=$?; printf "[wasip2-offline] ERROR: exit %s at line %s: %s\n" "$rc" "$LINENO" "$BASH_COMMAND" >&2; exit $rc' ERR

[ "$(uname -m)" = x86_64 ] || die "only x86_64 hosts are supported (this is $(uname -m))"
[ "$(id -u)" = 0 ] || die "must run as root (apt-get; writes into /usr/lib/rustlib)"
command -v rustup >/dev/null || die "rustup not found (the result is linked as a rustup toolchain)"
command -v apt-get >/dev/null || die "apt-get not found: this needs Debian 12 (bookworm) packages"
mkdir -p "$CACHE"

# One run at a time: a second setup waits instead of rebuilding the same sysroot.
exec 9>"$CACHE/lock"
flock -w 1800 9 || die "timed out waiting for another run (lock $CACHE/lock)"

# ------------------------------------------------------------------------ 1. packages
phase "1/4 Debian packages"
export DEBIAN_FRONTEND=noninteractive
apt_updated=
installed() { [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" = installed ]; }
apt_install() {
  local missing=() p
  for p in "$@"; do installed "$p" || missing+=("$p"); done
  [ ${#missing[@]} -gt 0 ] || return 0
  if [ -z "$apt_updated" ]; then
    # A failing third-party source makes apt-get update exit non-zero although Debian's
    # own lists were refreshed; let apt-get install decide.
    apt-get -o DPkg::Lock::Timeout=300 update -qq >&2 || say "warning: apt-get update failed; trying the install anyway"
    apt_updated=1
  fi
  say "apt-get install ${missing[*]}"
  apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "${missing[@]}" \
    >"$CACHE/apt.log" 2>&1 \
    || { tail -20 "$CACHE/apt.log" >&2; die "apt-get install ${missing[*]} failed (is bookworm-security in the apt sources?)"; }
}
pkg_version() { dpkg-query -W -f='${Version}' "$1"; }

apt_install rustc-web cargo-web rust-web-src wasi-libc
RUSTC=/usr/bin/rustc
CARGO=/usr/bin/cargo
{ [ -x $RUSTC ] && [ -x $CARGO ]; } || die "rustc-web/cargo-web did not provide $RUSTC and $CARGO"
RUSTC_VV=$($RUSTC -vV)
RUST_RELEASE=$(sed -n 's/^release: //p' <<<"$RUSTC_VV")
LLVM_MAJOR=$(sed -n 's/^LLVM version: \([0-9]*\).*/\1/p' <<<"$RUSTC_VV")
# wasm-ld must understand the objects this rustc's LLVM writes: same major version.
apt_install "lld-$LLVM_MAJOR"
WASM_LD=/usr/lib/llvm-$LLVM_MAJOR/bin/wasm-ld
[ -x "$WASM_LD" ] || die "$WASM_LD missing after installing lld-$LLVM_MAJOR"
$RUSTC --print target-list | grep -x $TARGET >/dev/null || die "rustc $RUST_RELEASE does not know $TARGET"

SYSROOT=$($RUSTC --print sysroot)
SRC=$SYSROOT/lib/rustlib/src/rust/library
[ -d "$SRC/sysroot" ] || SRC=/usr/src/rustc-$RUST_RELEASE/library
{ [ -d "$SRC/sysroot" ] && [ -d "$SRC/vendor" ]; } || die "rust-web-src's library/ not found (looked in $SRC)"
HOST_BIN=$SYSROOT/lib/rustlib/$HOST/bin
TARGET_DIR=$SYSROOT/lib/rustlib/$TARGET
WASI_LIBC=/usr/lib/wasm32-wasi
[ -f $WASI_LIBC/libc.a ] || die "wasi-libc's $WASI_LIBC/libc.a missing"
say "rustc $RUST_RELEASE, LLVM $LLVM_MAJOR, sysroot $SYSROOT"

# ------------------------------------------------------------------------ 2. linker
phase "2/4 linker"
# rustc links wasm32-wasip2 with `wasm-component-ld` (wasm-ld, then wrap the module as a
# component) and looks for it in the sysroot's host bin/, which it also prepends to the
# linker's PATH, so wasm-ld goes there too. Debian does not package wasm-component-ld.
find_component_ld() {
  local home=${RUSTUP_HOME:-$HOME/.rustup} c
  for c in "$home"/toolchains/stable-*/lib/rustlib/"$HOST"/bin/wasm-component-ld \
           "$home"/toolchains/*/lib/rustlib/"$HOST"/bin/wasm-component-ld; do
    # Skip our own link: it resolves to the copy this step installs.
    [ -x "$c" ] && [ "$(readlink -f "$c")" != "$HOST_BIN/wasm-component-ld" ] && { echo "$c"; return 0; }
  done
  return 1
}
COMPONENT_LD=$(find_component_ld) \
  || die "no rustup toolchain has bin/wasm-component-ld (install one: rustup toolchain install stable)"
mkdir -p "$HOST_BIN"
if ! cmp -s "$COMPONENT_LD" "$HOST_BIN/wasm-component-ld"; then
  install -m 755 "$COMPONENT_LD" "$HOST_BIN/wasm-component-ld"
fi
ln -sfn "$WASM_LD" "$HOST_BIN/wasm-ld"
say "$("$HOST_BIN/wasm-component-ld" --version) (from $COMPONENT_LD), wasm-ld $WASM_LD"

# ------------------------------------------------------------------------ 3. std
# The stamp covers everything the installed files depend on: the compiler, the C library,
# the linker that makes the start-up objects, and the recipe below (hashed from its text).
recipe_sum() { sed -n '/^# ==== std recipe/,/^# ==== end of std recipe/p' "$SELF" | sha256sum | cut -c1-16; }
WANT_STAMP="rustc=$(sha256sum <<<"$RUSTC_VV" | cut -c1-16) src=$(pkg_version rust-web-src)"
WANT_STAMP+=" wasi-libc=$(pkg_version wasi-libc) lld=$(pkg_version "lld-$LLVM_MAJOR") recipe=$(recipe_sum)"

# ==== std recipe (changing anything up to the end marker rebuilds std on every machine)
# Make rust-web-src's library/ workspace build offline, for the target only.
patch_library() {
  local L=$1 wb
  # std's dev-dependencies (rand, ...) and the coretests/alloctests members are not vendored.
  sed -i '/^\[dev-dependencies\]$/,/^$/d' "$L/std/Cargo.toml"
  sed -i '/^ *"coretests",$/d; /^ *"alloctests",$/d' "$L/Cargo.toml"
  # compiler_builtins' optional build-dependency `cc` (feature "c") and sysroot's
  # profiler_builtins are not vendored either; neither is used for this target.
  sed -i '/^\[build-dependencies\]$/d; /^cc = { version = "1.2", optional = true }$/d; s/^c = \["dep:cc"\]$/c = []/' \
    "$L/compiler-builtins/compiler-builtins/Cargo.toml"
  sed -i '/^profiler_builtins = { path = "..\/profiler_builtins", optional = true }$/d; s/^profiler = \["dep:profiler_builtins"\]$/profiler = []/' \
    "$L/sysroot/Cargo.toml"
  # Debian strips wit-bindgen's prebuilt libwit_bindgen_cabi.a and its build.rs fails
  # copying it. std defines cabi_realloc itself on wasip2, so skip it when absent.
  wb=("$L"/vendor/wit-bindgen-[0-9]*)
  [ -f "${wb[0]}/build.rs" ] || die "vendored wit-bindgen not found in $L/vendor"
  cat > "${wb[0]}/build.rs" <<'EOF'
use std::env;
use std::path::PathBuf;
fn main() {
    if env::var("CARGO_CFG_TARGET_FAMILY").unwrap_or_default() != "wasm" {
        return;
    }
    let src = env::current_dir().unwrap().join("src/rt/libwit_bindgen_cabi.a");
    if !src.exists() {
        return; // stripped by Debian; std provides cabi_realloc on wasm32-wasip2
    }
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").unwrap());
    let name = format!("wit_bindgen_cabi{}", env!("CARGO_PKG_VERSION").replace(".", "_"));
    std::fs::copy(&src, out_dir.join(format!("lib{name}.a"))).unwrap();
    println!("cargo:rustc-link-lib=static={name}");
    println!("cargo:rustc-link-search=native={}", out_dir.display());
}
EOF
  # Fail here, with a clear message, if a newer rust-web-src changed what the edits match.
  ! grep -q '^\[dev-dependencies\]' "$L/std/Cargo.toml" || die "edit failed: std dev-dependencies"
  ! grep -Eq '"(core|alloc)tests"' "$L/Cargo.toml" || die "edit failed: coretests/alloctests members"
  ! grep -q 'dep:cc' "$L/compiler-builtins/compiler-builtins/Cargo.toml" || die "edit failed: compiler_builtins cc"
  ! grep -q 'profiler_builtins' "$L/sysroot/Cargo.toml" || die "edit failed: sysroot profiler_builtins"
  mkdir -p "$L/.cargo"
  printf '[source.crates-io]\nreplace-with = "vendored"\n[source.vendored]\ndirectory = "vendor"\n' \
    > "$L/.cargo/config.toml"
}

# Replacement start-up code and libc fallbacks, linked into both crt1-*.o.
write_crt_sources() {
  local dir=$1
  cat > "$dir/crt1_command.rs" <<'EOF'
//! Replacement for wasi-libc's crt1-command.o. Debian's wasi-libc (2022-05) `_start` does
//! not call __wasm_call_ctors and relies on wasm-ld's synthesized command-export wrappers,
//! which wasm-ld omits when an input references __wasm_call_ctors (Rust's wit-bindgen
//! runtime does). Then wasi-libc's preopen table is never filled and every path fails
//! with "Capabilities insufficient (os error 76)". Mirrors upstream crt1-command.c.
#![no_std]
extern "C" {
    fn __wasm_call_ctors();
    fn __wasm_call_dtors();
    fn __original_main() -> i32;
    fn exit(code: i32) -> !;
}
static mut STARTED: bool = false;
#[no_mangle]
pub unsafe extern "C" fn _start() {
    if STARTED {
        core::arch::wasm32::unreachable();
    }
    STARTED = true;
    __wasm_call_ctors();
    let r = __original_main();
    if r != 0 {
        exit(r); // runs __wasm_call_dtors, then proc_exit(r)
    }
    __wasm_call_dtors();
}
EOF
  cat > "$dir/libc_shims.rs" <<'EOF'
//! Weak fallbacks for C functions that Rust's std references on wasm32-wasip2 but Debian's
//! wasi-libc (2022-05, preview1 only) lacks, so that every program links. They behave like
//! current wasi-libc under Wasmtime (the libc of rustup's target), so std does too:
//!   sockets, name lookup, chmod, fchmod  fail with ENOSYS (std: ErrorKind::Unsupported)
//!   pthread_create                        fails with ENOTSUP (std::thread::spawn: Err)
//!   realpath                              resolves symlinks with readlink from getcwd
//! Weak, so a libc that has them wins.
#![no_std]
#![feature(linkage)]
use core::ptr::{copy_nonoverlapping, null_mut};
type CInt = i32;
// WASI errno values.
const EINVAL: CInt = 28;
const ELOOP: CInt = 32;
const ENAMETOOLONG: CInt = 37;
const ENOENT: CInt = 44;
const ENOMEM: CInt = 48;
const ENOSYS: CInt = 52;
const ENOTSUP: CInt = 58;
const ESRCH: CInt = 71;
const EAI_SYSTEM: CInt = -11;
const PATH_MAX: usize = 4096;
const SYMLOOP_MAX: usize = 40;
extern "C" {
    static mut errno: CInt;
    fn getcwd(buf: *mut u8, size: usize) -> *mut u8;
    fn readlink(path: *const u8, buf: *mut u8, size: usize) -> isize;
    fn malloc(size: usize) -> *mut u8;
}
#[inline(always)]
unsafe fn fail() -> CInt { errno = ENOSYS; -1 }
// Each stub's wasm signature must match std's declaration exactly (all i32 on wasm32).
macro_rules! stub { ($($name:ident($($t:ty),*);)*) => {$(
    #[linkage = "weak"] #[no_mangle]
    pub unsafe extern "C" fn $name($(_: $t),*) -> CInt { fail() }
)*}; }
stub! {
    socket(CInt, CInt, CInt);
    connect(CInt, *const u8, u32);
    bind(CInt, *const u8, u32);
    listen(CInt, CInt);
    getsockname(CInt, *mut u8, *mut u32);
    getpeername(CInt, *mut u8, *mut u32);
    setsockopt(CInt, CInt, CInt, *const u8, u32);
    chmod(*const u8, u32);
    fchmod(CInt, u32);
}
#[linkage = "weak"] #[no_mangle]
pub unsafe extern "C" fn sendto(_: CInt, _: *const u8, _: usize, _: CInt, _: *const u8, _: u32) -> isize { fail() as isize }
#[linkage = "weak"] #[no_mangle]
pub unsafe extern "C" fn recvfrom(_: CInt, _: *mut u8, _: usize, _: CInt, _: *mut u8, _: *mut u32) -> isize { fail() as isize }
#[linkage = "weak"] #[no_mangle]
pub unsafe extern "C" fn getaddrinfo(_: *const u8, _: *const u8, _: *const u8, res: *mut *mut u8) -> CInt {
    if !res.is_null() { *res = null_mut(); }
    errno = ENOSYS;
    EAI_SYSTEM
}
#[linkage = "weak"] #[no_mangle]
pub unsafe extern "C" fn freeaddrinfo(_: *mut u8) {}
#[linkage = "weak"] #[no_mangle]
pub unsafe extern "C" fn gai_strerror(_: CInt) -> *const u8 {
    b"name resolution is not supported by this wasi-libc\0".as_ptr()
}

// Threads: attributes are accepted, creating a thread is not supported.
#[linkage = "weak"] #[no_mangle]
pub unsafe extern "C" fn pthread_attr_init(_: *mut u8) -> CInt { 0 }
#[linkage = "weak"] #[no_mangle]
pub unsafe extern "C" fn pthread_attr_setstacksize(_: *mut u8, _: usize) -> CInt { 0 }
#[linkage = "weak"] #[no_mangle]
pub unsafe extern "C" fn pthread_attr_destroy(_: *mut u8) -> CInt { 0 }
#[linkage = "weak"] #[no_mangle]
pub unsafe extern "C" fn pthread_create(_: *mut usize, _: *const u8, _: *const u8, _: *mut u8) -> CInt { ENOTSUP }
#[linkage = "weak"] #[no_mangle]
pub unsafe extern "C" fn pthread_join(_: usize, _: *mut *mut u8) -> CInt { ESRCH }
#[linkage = "weak"] #[no_mangle]
pub unsafe extern "C" fn pthread_detach(_: usize) -> CInt { ESRCH }

/// Length of the C string at `s`, if it is shorter than `max`.
unsafe fn c_len(s: *const u8, max: usize) -> Option<usize> {
    (0..max).find(|&i| *s.add(i) == 0)
}

/// realpath(3): the absolute path of `name` with every `.`, `..` and symlink resolved;
/// the result exists (each component was looked up). Allocates with malloc unless
/// `resolved` (PATH_MAX bytes) is given; on error sets errno and returns null.
#[linkage = "weak"] #[no_mangle]
pub unsafe extern "C" fn realpath(name: *const u8, resolved: *mut u8) -> *mut u8 {
    let mut out = [0u8; PATH_MAX];
    match resolve(name, &mut out) {
        Ok(len) => {
            let dst = if resolved.is_null() { malloc(len + 1) } else { resolved };
            if dst.is_null() {
                errno = ENOMEM;
                return null_mut();
            }
            copy_nonoverlapping(out.as_ptr(), dst, len);
            *dst.add(len) = 0;
            dst
        }
        Err(e) => {
            errno = e;
            null_mut()
        }
    }
}

/// Resolves into `out[..len]` (absolute, no trailing `/` except for the root itself).
unsafe fn resolve(name: *const u8, out: &mut [u8; PATH_MAX]) -> Result<usize, CInt> {
    if name.is_null() {
        return Err(EINVAL);
    }
    let n = c_len(name, PATH_MAX).ok_or(ENAMETOOLONG)?;
    if n == 0 {
        return Err(ENOENT);
    }
    // The path still to resolve is rest[start..]; symlink targets are pushed in front.
    let mut rest = [0u8; PATH_MAX];
    let mut start = PATH_MAX - n;
    copy_nonoverlapping(name, rest.as_mut_ptr().add(start), n);
    let mut len;
    if rest[start] == b'/' {
        out[0] = b'/';
        len = 1;
    } else {
        // wasi-libc emulates the working directory; it is always absolute.
        if getcwd(out.as_mut_ptr(), PATH_MAX).is_null() {
            return Err(errno);
        }
        len = c_len(out.as_ptr(), PATH_MAX).ok_or(ENAMETOOLONG)?;
        if len == 0 || out[0] != b'/' {
            return Err(ENOENT);
        }
    }
    while len > 1 && out[len - 1] == b'/' {
        len -= 1;
    }
    let mut link = [0u8; PATH_MAX];
    let mut links = 0;
    // Set when the last component was followed by `/`: it must be a directory, which is
    // checked, as musl's realpath does, by looking up `out/` or `out/..` before using it.
    let mut check_dir = false;
    loop {
        while start < PATH_MAX && rest[start] == b'/' {
            start += 1;
        }
        if start == PATH_MAX {
            if check_dir {
                probe(out, len, b"/")?;
            }
            return Ok(len);
        }
        let first = start;
        while start < PATH_MAX && rest[start] != b'/' {
            start += 1;
        }
        let part = start - first;
        if part == 1 && rest[first] == b'.' {
            continue;
        }
        if part == 2 && rest[first] == b'.' && rest[first + 1] == b'.' {
            // `out` holds no symlinks, so `..` is its parent.
            if len > 1 && check_dir {
                probe(out, len, b"/..")?;
            }
            while len > 1 && out[len - 1] != b'/' {
                len -= 1;
            }
            if len > 1 {
                len -= 1;
            }
            check_dir = false;
            continue;
        }
        let parent = len;
        let slash = (len > 1) as usize;
        if len + slash + part >= PATH_MAX {
            return Err(ENAMETOOLONG);
        }
        out[len] = b'/';
        out[len + slash..len + slash + part].copy_from_slice(&rest[first..start]);
        len += slash + part;
        out[len] = 0;
        let k = readlink(out.as_ptr(), link.as_mut_ptr(), PATH_MAX);
        if k < 0 {
            if errno == EINVAL {
                check_dir = start < PATH_MAX; // exists and is not a symlink
                continue;
            }
            return Err(errno);
        }
        let k = k as usize;
        if k == 0 {
            return Err(ENOENT);
        }
        if k >= PATH_MAX || start < k {
            return Err(ENAMETOOLONG);
        }
        links += 1;
        if links > SYMLOOP_MAX {
            return Err(ELOOP);
        }
        // Replace the link by its target: relative to the link's directory, or to `/`.
        // (`rest[start..]` is empty or starts with `/`.)
        len = if link[0] == b'/' { 1 } else { parent };
        check_dir &= link[0] != b'/';
        start -= k;
        rest[start..start + k].copy_from_slice(&link[..k]);
    }
}

/// Looks up `out[..len]` + `suffix`; fine unless that fails with something but EINVAL
/// (which says it exists and is no symlink).
unsafe fn probe(out: &mut [u8; PATH_MAX], len: usize, suffix: &[u8]) -> Result<(), CInt> {
    if len + suffix.len() >= PATH_MAX {
        return Err(ENAMETOOLONG);
    }
    out[len..len + suffix.len()].copy_from_slice(suffix);
    out[len + suffix.len()] = 0;
    let mut scratch = [0u8; 1];
    let r = readlink(out.as_ptr(), scratch.as_mut_ptr(), 1);
    out[len] = 0;
    if r < 0 && errno != EINVAL {
        return Err(errno);
    }
    Ok(())
}
EOF
}

# Build std into $WORK/target and assemble the target directory in $1.
build_std() {
  local lib=$1/lib f m
  rm -rf "$WORK"
  mkdir -p "$WORK/cargo-home" "$WORK/crt"
  cp -a "$SRC" "$WORK/library"
  patch_library "$WORK/library"
  # RUSTC_BOOTSTRAP lets the stable rustc build std's unstable code, as rustc's own
  # bootstrap does; -Zforce-unstable-if-unmarked keeps std's dependencies out of users'
  # reach. A private CARGO_HOME keeps the user's cargo config out of this build.
  ( cd "$WORK/library" \
    && env -u RUSTC_WRAPPER -u RUSTC_WORKSPACE_WRAPPER -u CARGO_TARGET_DIR -u CARGO_BUILD_TARGET \
         -u CARGO_ENCODED_RUSTFLAGS -u CARGO_BUILD_RUSTFLAGS -u RUSTUP_TOOLCHAIN \
         CARGO_HOME="$WORK/cargo-home" RUSTC=$RUSTC RUSTC_BOOTSTRAP=1 \
         RUSTFLAGS="-Zforce-unstable-if-unmarked -Cembed-bitcode=yes" \
         $CARGO build --offline --release --target $TARGET -p sysroot \
           --target-dir "$WORK/target" -j "$(nproc)" ) > "$WORK/std-build.log" 2>&1 \
    || { tail -40 "$WORK/std-build.log" >&2; die "building std failed (full log: $WORK/std-build.log)"; }
  say "std built ($(elapsed)s)"

  mkdir -p "$lib/self-contained"
  for f in "$WORK/target/$TARGET/release/deps"/lib*.rlib; do
    case ${f##*/} in libsysroot-*) ;; *) cp "$f" "$lib/" ;; esac
  done
  ls "$lib"/libstd*.rlib >/dev/null 2>&1 || die "the std build produced no libstd rlib"
  cp $WASI_LIBC/*.a "$lib/self-contained/"
  write_crt_sources "$WORK/crt"
  # Compile against the new core, not a previously installed one: a sysroot of one link.
  mkdir -p "$WORK/sysroot/lib/rustlib"
  ln -sfn "$1" "$WORK/sysroot/lib/rustlib/$TARGET"
  for m in crt1_command libc_shims; do
    RUSTC_BOOTSTRAP=1 $RUSTC --sysroot "$WORK/sysroot" --target $TARGET --crate-type=lib \
      --emit=obj -C opt-level=2 -C panic=abort "$WORK/crt/$m.rs" -o "$WORK/crt/$m.o" \
      || die "compiling $m.rs failed"
  done
  "$WASM_LD" -r "$WORK/crt/crt1_command.o" "$WORK/crt/libc_shims.o" -o "$lib/self-contained/crt1-command.o"
  "$WASM_LD" -r $WASI_LIBC/crt1-reactor.o "$WORK/crt/libc_shims.o" -o "$lib/self-contained/crt1-reactor.o"
}
# ==== end of std recipe

if [ -z "${FORCE:-}" ] && [ -f "$STAMP_FILE" ] && [ "$(cat "$STAMP_FILE")" = "$WANT_STAMP" ] \
   && [ -f "$TARGET_DIR/.cargo-task-stamp" ] && [ "$(cat "$TARGET_DIR/.cargo-task-stamp")" = "$WANT_STAMP" ] \
   && ls "$TARGET_DIR"/lib/libstd*.rlib >/dev/null 2>&1; then
  phase "3/4 std for $TARGET is up to date (stamp $STAMP_FILE)"
else
  phase "3/4 building std for $TARGET from $SRC (1-4 minutes)"
  rebuilt_over=
  [ -d "$TARGET_DIR" ] && rebuilt_over=1
  # Assemble next to the live directory, then swap, so a failed build leaves it intact.
  rm -rf "$TARGET_DIR.new" "$TARGET_DIR.old" "$STAMP_FILE"
  build_std "$TARGET_DIR.new"
  echo "$WANT_STAMP" > "$TARGET_DIR.new/.cargo-task-stamp"
  [ ! -d "$TARGET_DIR" ] || mv "$TARGET_DIR" "$TARGET_DIR.old"
  mv "$TARGET_DIR.new" "$TARGET_DIR"
  rm -rf "$TARGET_DIR.old"
  [ -n "${KEEP_BUILD:-}" ] || rm -rf "$WORK"
  say "installed into $TARGET_DIR ($(du -sm "$TARGET_DIR" | cut -f1) MiB)"
  if [ -n "$rebuilt_over" ]; then
    say "NOTE: std was rebuilt; run \`cargo clean\` (or delete target/cargo-task) in projects" \
        "built with $TOOLCHAIN_NAME before: cargo does not notice a changed sysroot."
  fi
fi

# ------------------------------------------------------------------------ 4. link + check
phase "4/4 rustup toolchain '$TOOLCHAIN_NAME' and smoke test"
linked=$(readlink -f "${RUSTUP_HOME:-$HOME/.rustup}/toolchains/$TOOLCHAIN_NAME" 2>/dev/null || true)
if [ "$linked" != "$(readlink -f "$SYSROOT")" ]; then
  [ -z "$linked" ] || rustup toolchain uninstall "$TOOLCHAIN_NAME" >/dev/null 2>&1 || true
  rustup toolchain link "$TOOLCHAIN_NAME" "$SYSROOT" || die "rustup toolchain link $TOOLCHAIN_NAME $SYSROOT failed"
fi
# Build through rustup, the way users will, with no registry access and no user config.
SMOKE=$CACHE/smoke
rm -rf "$SMOKE"
mkdir -p "$SMOKE/src"
printf '[package]\nname = "smoke"\nversion = "0.1.0"\nedition = "2021"\n' > "$SMOKE/Cargo.toml"
cat > "$SMOKE/src/main.rs" <<'EOF'
// Uses every libc function libc_shims.rs provides, so a missing one fails this link.
use std::{fs, net, thread};
fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() > 99 {
        let perms = || fs::metadata(".").map(|m| m.permissions());
        let _ = perms().and_then(|p| fs::set_permissions(".", p));
        let _ = fs::File::open(".").and_then(|f| f.set_permissions(perms()?));
        let _ = fs::canonicalize(".");
        let _ = thread::Builder::new().spawn(|| ()).map(|h| h.join());
        let _ = net::TcpStream::connect("127.0.0.1:1");
        let _ = net::TcpListener::bind("127.0.0.1:0");
        let _ = net::UdpSocket::bind("127.0.0.1:0").and_then(|s| s.send_to(b"", "127.0.0.1:1"));
    }
    println!("hello {args:?}");
}
EOF
( cd "$SMOKE" && env -u RUSTC -u RUSTC_WRAPPER -u CARGO_TARGET_DIR CARGO_HOME="$SMOKE/cargo-home" \
    rustup run "$TOOLCHAIN_NAME" cargo build -q --offline --target $TARGET ) \
  || die "smoke test: cargo +$TOOLCHAIN_NAME build --target $TARGET failed"
# A component starts with \0asm 0d 00 01 00 (a core module has version 01 00 00 00).
WASM=$SMOKE/target/$TARGET/debug/smoke.wasm
[ "$(od -An -tx1 -j4 -N4 "$WASM" | tr -d ' ')" = 0d000100 ] || die "smoke test: $WASM is not a component"
rm -rf "$SMOKE"
# Written only once the smoke test passed: a failed first build is retried next time.
echo "$WANT_STAMP" > "$STAMP_FILE"
say "done in $(elapsed)s: use RUSTUP_TOOLCHAIN=$TOOLCHAIN_NAME or cargo +$TOOLCHAIN_NAME ... --target $TARGET"
