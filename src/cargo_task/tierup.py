"""Tiered compilation: Cranelift's machine code for a task that just ran on Winch's.

A task that was just built is compiled with Winch (~4x faster to compile, 1.4-1.6x slower
to run) so that the edit-then-run loop waits for the fast compiler only. After the run,
`start` leaves a detached process at the lowest CPU priority that compiles the same wasm
with Cranelift into the cache; warm runs prefer Cranelift's code once it is there
(`machinecode.cached_code`). Nothing waits for it: if it is killed, or its wasm was rebuilt
meanwhile, the next warm run still has Winch's code and starts another.

The process runs cargo-task's own code only (`-P`: no directory of the project is on its
module path; started from `/`); the wasm is compiled only if its SHA-256 is the one the
foreground built and ran, and the code is written through the cache (atomic, HMAC'd).
One lock in the cache root lets one such compile run at a time per cache; a process that
finds it taken leaves at once (the next warm run starts another), so a slow or stuck compile
never gathers a queue of waiting processes. The wasm is read only if it is a regular file of
a sane size, opened without following links or blocking: it lives in a target directory,
and a FIFO, a device or a link to one there must not hang the process (and its lock) or
fill its memory.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

LOCK_FILE = "tier-up.lock"
MAX_WASM_BYTES = 512 << 20  # components are a few MiB; more is not a task's build output


def start(cache_root: Path, wasm: Path, digest: str, task: str) -> None:
    """Leave the Cranelift compile of `wasm` (whose SHA-256 is `digest`) to a detached process."""
    import subprocess

    try:
        subprocess.Popen(
            [sys.executable, "-P", "-m", "cargo_task.tierup", str(cache_root), str(wasm), digest, task],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            cwd="/", start_new_session=True, close_fds=True,
        )  # fmt: skip
    except OSError:
        pass  # the next warm run starts it again


def compile_in_background(cache_root: Path, wasm_path: Path, digest: str, task: str) -> None:
    import fcntl

    from cargo_task import sandbox
    from cargo_task.cache import Cache, component_key, wasm_digest

    try:
        os.nice(19)  # Wasmtime's compile threads, created later, inherit it
    except OSError:
        pass
    cache = Cache(cache_root)
    key = component_key(digest, sandbox.engine_id("cranelift"))
    fd = os.open(cache_root / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # one background compile at a time
        except BlockingIOError:
            return  # another is compiling: the next warm run starts this one again
        if cache.load_component(key) is not None:
            return  # another run's process made it
        wasm = read_wasm(wasm_path)
        if wasm is None or wasm_digest(wasm) != digest:
            return  # rebuilt since (or not a build's file): that build's run starts its own
        cache.save_component(key, sandbox.compile_component(wasm, task, "cranelift"))
    finally:
        os.close(fd)


def read_wasm(path: Path) -> bytes | None:
    """The file's bytes, read once (what is hashed is what is compiled); None unless it is a
    regular file (no link, FIFO or device) of at most MAX_WASM_BYTES."""
    import stat

    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as file:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_WASM_BYTES:
            return None
        data = file.read(MAX_WASM_BYTES + 1)
    return data if len(data) <= MAX_WASM_BYTES else None


if __name__ == "__main__":
    try:
        root, wasm, digest, name = sys.argv[1:]
        compile_in_background(Path(root), Path(wasm), digest, name)
    except BaseException:  # noqa: BLE001 - nobody to tell: the warm path keeps Winch's code
        os._exit(1)
    os._exit(0)
