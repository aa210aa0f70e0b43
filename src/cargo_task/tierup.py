"""Tiered compilation: Cranelift's machine code for a task that just ran on Winch's.

A task that was just built is compiled with Winch (~4x faster to compile, 1.4-1.6x slower
to run) so that the edit-then-run loop waits for the fast compiler only. After the run,
`start` leaves a detached process at the lowest CPU priority that compiles the same wasm
with Cranelift into the cache; warm runs prefer Cranelift's code once it is there
(`pipeline.cached_code`). Nothing waits for it: if it is killed, or its wasm was rebuilt
meanwhile, the next warm run still has Winch's code and starts another.

The process runs cargo-task's own code only (`-P`: no directory of the project is on its
module path; started from `/`); the wasm is compiled only if its SHA-256 is the one the
foreground built and ran, and the code is written through the cache (atomic, HMAC'd).
One lock in the cache root lets one such compile run at a time per cache.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

LOCK_FILE = "tier-up.lock"


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
        fcntl.flock(fd, fcntl.LOCK_EX)  # one background compile at a time
        if cache.load_component(key) is not None:
            return  # another run's process made it
        wasm = wasm_path.read_bytes()
        if wasm_digest(wasm) != digest:
            return  # rebuilt since: that build's run starts its own
        cache.save_component(key, sandbox.compile_component(wasm, task, "cranelift"))
    finally:
        os.close(fd)


if __name__ == "__main__":
    try:
        root, wasm, digest, name = sys.argv[1:]
        compile_in_background(Path(root), Path(wasm), digest, name)
    except BaseException:  # noqa: BLE001 - nobody to tell: the warm path keeps Winch's code
        os._exit(1)
    os._exit(0)
