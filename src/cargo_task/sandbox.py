"""Wasmtime: compile a task's component, and run it with exactly its grants.

The only module that imports wasmtime. Components are driven through `wasmtime._ffi`, the
C API's ctypes layer, rather than `wasmtime.component`: the latter's import alone costs a
third of a warm run (it pulls in dataclasses, inspect and ast). The few calls used are
pinned by the `wasmtime` version range in pyproject.toml and covered by the end-to-end tests. The guest runs on a worker thread so that the main
thread can still take Ctrl-C and enforce the wall-clock limit; a guest stuck in a blocking
host call (sleep, a silent stdin), which no epoch can interrupt, is ended with the process.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from contextlib import ExitStack
from typing import Callable, NoReturn

from ctypes import POINTER, byref, c_uint8, create_string_buffer

import wasmtime
from wasmtime import _ffi as ffi

from cargo_task.config import human_size
from cargo_task.errors import SandboxError, TaskError
from cargo_task.grants import Grants
from cargo_task.neutralize import Neutralizer

ENGINE_SETTINGS = "epoch-interruption"
GRACE_SECONDS = 1.0  # after the epoch bump, how long a stopping guest may take
TIMEOUT_EXIT = 124
INTERRUPT_EXIT = 130

_engine: wasmtime.Engine | None = None


class StaleComponent(Exception):
    """The cached machine code does not load into this Wasmtime: compile it again."""


def engine() -> wasmtime.Engine:
    global _engine
    if _engine is None:
        config = wasmtime.Config()
        config.epoch_interruption = True
        _engine = wasmtime.Engine(config)
    return _engine


def engine_id() -> str:
    """Serialized code only loads into the same Wasmtime with the same settings: the stamp of
    the installed bindings (each release generates them anew) stands for the version."""
    st = os.stat(ffi.__file__.replace("_ffi.py", "_bindings.py"))
    return f"wasmtime {st.st_size}:{st.st_mtime_ns};{ENGINE_SETTINGS}"


def _check(error) -> None:
    """A `wasmtime_error_t*` from the C API -> WasmtimeError (ExitTrap for a WASI exit)."""
    if error:
        raise wasmtime.WasmtimeError._from_ptr(error)


def _bytes(data: bytes):
    return (c_uint8 * len(data)).from_buffer_copy(data)


def compile_component(wasm: bytes, task: str) -> bytes:
    component = POINTER(ffi.wasmtime_component_t)()
    try:
        _check(ffi.wasmtime_component_new(engine().ptr(), _bytes(wasm), len(wasm), byref(component)))
    except wasmtime.WasmtimeError as e:
        raise SandboxError(
            f"task `{task}` did not build to a valid WASI 0.2 component: {_first_line(e)}",
            help="the task must be a binary built for wasm32-wasip2",
            exit_code=1,
        ) from None
    try:
        raw = ffi.wasm_byte_vec_t()
        _check(ffi.wasmtime_component_serialize(component, byref(raw)))
        serialized = ffi.to_bytes(raw)
        ffi.wasm_byte_vec_delete(byref(raw))
        return serialized
    finally:
        ffi.wasmtime_component_delete(component)


class _Command:
    """An instantiated command component whose `wasi:cli/run` can be called once."""

    def __init__(self, store: wasmtime.Store, component, instance, run_func):
        self._store, self._component, self._instance, self._run = store, component, instance, run_func

    def run(self) -> bool:
        """True if the command returned ok; raises WasmtimeError for traps and exits."""
        result = ffi.wasmtime_component_val_t()
        _check(ffi.wasmtime_component_func_call(byref(self._run), self._store._context(), None, 0, byref(result), 1))
        ok = bool(result.of.result.is_ok)
        ffi.wasmtime_component_val_delete(byref(result))
        return ok


def _export(store: wasmtime.Store, instance, name: str, within=None):
    encoded = name.encode()
    return ffi.wasmtime_component_instance_get_export_index(
        byref(instance), store._context(), within, create_string_buffer(encoded), len(encoded)
    )


def _first_line(error: BaseException) -> str:
    lines = [line for line in str(error).splitlines() if line.strip()]
    return lines[0].strip() if lines else type(error).__name__


class _Filtered:
    """A pipe whose far end Wasmtime writes; a thread neutralizes it onto a terminal."""

    def __init__(self, target: int):
        self._read_end, self.write_end = os.pipe()
        self.path = f"/dev/fd/{self.write_end}"
        self._guest_done = threading.Event()
        self.thread = threading.Thread(target=self._pump, args=(target,), daemon=True)
        self.thread.start()

    def _pump(self, target: int) -> None:
        import select

        neutralizer = Neutralizer()
        while True:
            if select.select([self._read_end], [], [], 0.05)[0]:
                chunk = os.read(self._read_end, 65536)
                if not chunk:
                    break
                os.write(target, neutralizer.feed(chunk))
            elif self._guest_done.is_set():  # its writes were synchronous: all read now
                break
        os.write(target, neutralizer.flush())

    def opened(self) -> None:
        os.close(self.write_end)  # Wasmtime holds its own descriptor now

    def finish(self) -> None:
        self._guest_done.set()
        self.thread.join(timeout=GRACE_SECONDS)


def _open_without_links(path: str) -> int:
    """A descriptor for the directory `path`, failing if any component is now a symlink.

    Grants were checked for links when decided; opening each component with O_NOFOLLOW
    closes the window in which a running task could swap a directory for a link.
    """
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
    fd = os.open("/", flags)
    try:
        for part in path.strip("/").split("/"):
            if part:
                parent, fd = fd, os.open(part, flags | os.O_NOFOLLOW, dir_fd=fd)
                os.close(parent)
    except OSError:
        os.close(fd)
        raise
    return fd


def _preopen(wasi, mount, opened: list[int], task: str) -> None:
    try:
        fd = _open_without_links(str(mount.host))
    except OSError as e:
        raise SandboxError(
            f"task `{task}`: `{mount.host}` changed since its grant was checked: {e.strerror}",
            help="a symbolic link or a missing directory on the way is refused",
            exit_code=1,
        ) from None
    opened.append(fd)
    wasi.preopen_dir(f"/proc/self/fd/{fd}", mount.guest, mount.writable)


def _wasi_config(grants: Grants, scratch: str | None, filtered: dict[int, _Filtered], opened: list[int], task: str):
    wasi = wasmtime.WasiConfig()
    wasi.argv = list(grants.argv)
    wasi.env = [list(pair) for pair in grants.env]
    if grants.stdin:
        wasi.inherit_stdin()
    for fd, name in ((1, "stdout"), (2, "stderr")):
        if fd in filtered:
            setattr(wasi, f"{name}_file", filtered[fd].path)
            filtered[fd].opened()
        else:
            getattr(wasi, f"inherit_{name}")()
    for mount in grants.mounts:
        _preopen(wasi, mount, opened, task)
    if scratch is not None:
        wasi.preopen_dir(scratch, "/tmp", True)
    if grants.network:
        ffi.wasi_config_allow_ip_name_lookup(wasi.ptr(), True)
    return wasi


def _instantiate(task: str, payload: bytes, grants: Grants, wasi) -> _Command:
    component = POINTER(ffi.wasmtime_component_t)()
    try:
        _check(ffi.wasmtime_component_deserialize(engine().ptr(), _bytes(payload), len(payload), byref(component)))
    except wasmtime.WasmtimeError as e:
        raise StaleComponent(str(e)) from None
    store = wasmtime.Store(engine())
    store.set_epoch_deadline(1)
    store.set_limits(memory_size=grants.memory)
    store.set_wasi(wasi)
    linker = ffi.wasmtime_component_linker_new(engine().ptr())
    instance = ffi.wasmtime_component_instance_t()
    try:
        _check(ffi.wasmtime_component_linker_add_wasip2(linker))
        if grants.network:
            _check(ffi.wasmtime_component_linker_add_wasi_http(linker))
            store.set_wasi_http()
        _check(ffi.wasmtime_component_linker_instantiate(linker, store._context(), component, byref(instance)))
    except wasmtime.WasmtimeError as e:
        message = str(e)
        if "wasi:http" in message:
            raise SandboxError(
                f"task `{task}` uses the network (wasi:http), but it has no network grant",
                help=f"add `network = true` to the task's table ([package.metadata.tasks.{task}])",
            exit_code=1,
            ) from None
        raise SandboxError(f"task `{task}` could not start: {_first_line(e)}", exit_code=1) from None
    finally:
        ffi.wasmtime_component_linker_delete(linker)
    interface = _export(store, instance, "wasi:cli/run@0.2.0")  # semver-aware: finds 0.2.x
    run_index = _export(store, instance, "run", interface) if interface else None
    run_func = ffi.wasmtime_component_func_t()
    if not run_index or not ffi.wasmtime_component_instance_get_func(
        byref(instance), store._context(), run_index, byref(run_func)
    ):
        raise SandboxError(
            f"task `{task}` is not a WASI command: it exports no `wasi:cli/run`",
            help="a task is a binary crate with `fn main()`",
            exit_code=1,
        )
    return _Command(store, component, instance, run_func)


def run(task: str, payload: bytes, grants: Grants, abandon: Callable[[TaskError], NoReturn]) -> int:
    """Run the task to its end and return its exit code.

    `abandon` reports an error and ends the process at once: the only way out when the
    guest is stuck in a host call that nothing inside Wasmtime can interrupt.
    """
    with ExitStack() as cleanup:
        scratch = None
        if grants.tmp:
            import shutil
            import tempfile

            scratch = tempfile.mkdtemp(prefix="cargo-task-tmp-")
            cleanup.callback(shutil.rmtree, scratch, ignore_errors=True)
        filtered = {fd: _Filtered(fd) for fd in (1, 2) if os.isatty(fd)}
        for pipe in filtered.values():
            cleanup.callback(pipe.finish)
        opened: list[int] = []
        cleanup.callback(lambda: [os.close(fd) for fd in opened])
        wasi = _wasi_config(grants, scratch, filtered, opened, task)
        command = _instantiate(task, payload, grants, wasi)

        def leave(error: TaskError) -> NoReturn:
            cleanup.close()  # the private /tmp too: abandoning ends the process at once
            abandon(error)

        # No store.close(): closing it while the guest's function objects are still alive
        # crashed the interpreter at exit (seen after Ctrl-C). Garbage collection frees it.
        return _supervise(task, command, grants, leave)


def _supervise(task, command: _Command, grants: Grants, abandon) -> int:
    """Run the guest on a worker thread; the main thread keeps time and takes Ctrl-C.

    The wait is on an Event the guest sets, not on `Thread.join`: a join interrupted by
    Ctrl-C marks a still-running thread as finished (Python 3.11).
    """
    outcome: dict[str, object] = {}
    finished = threading.Event()

    def guest() -> None:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})  # the main thread's to handle
        try:
            outcome["ok"] = command.run()
        except BaseException as e:  # reported by the main thread
            outcome["error"] = e
        finally:
            finished.set()

    worker = threading.Thread(target=guest, name=f"task-{task}", daemon=True)
    deadline = time.monotonic() + grants.timeout if grants.timeout else None
    stopping: TaskError | None = None
    started = False
    while True:
        try:
            if not started:
                started = True
                worker.start()
            wait = 0.5 if deadline is None else max(0.0, min(deadline - time.monotonic(), 0.5))
            if finished.wait(wait):
                break
            if deadline is not None and time.monotonic() >= deadline:
                if stopping is not None:
                    abandon(stopping)  # stuck in a host call that no epoch interrupts
                stopping = _timed_out(task, grants.timeout or 0)
                engine().increment_epoch()
                deadline = time.monotonic() + GRACE_SECONDS
        except KeyboardInterrupt:
            if stopping is not None and stopping.exit_code == INTERRUPT_EXIT:
                abandon(stopping)  # a second Ctrl-C: leave now
            stopping = SandboxError(f"task `{task}` was interrupted", exit_code=INTERRUPT_EXIT)
            engine().increment_epoch()
            deadline = time.monotonic() + GRACE_SECONDS
    sys.stdout.flush()
    if stopping is not None:
        raise stopping
    return _exit_code(task, outcome, grants)


def _timed_out(task: str, seconds: float) -> SandboxError:
    return SandboxError(
        f"task `{task}` did not finish within its time limit of {seconds:g}s",
        help="raise it with `timeout = \"...\"` in the task's table, or --timeout for one run",
        exit_code=TIMEOUT_EXIT,
    )


def _exit_code(task: str, outcome: dict[str, object], grants: Grants) -> int:
    error = outcome.get("error")
    if error is None:
        return 0 if outcome.get("ok") else 1
    if isinstance(error, wasmtime.ExitTrap):
        return error.code
    if isinstance(error, wasmtime.WasmtimeError):
        reason = _trap_reason(str(error))
        if "unreachable" in reason:
            hint = (
                "the task panicked or aborted; a failed allocation aborts too: its memory "
                f"limit is {human_size(grants.memory)} (`memory = \"...\"` or --memory)"
            )
        elif "stack" in reason:
            hint = "the task overflowed its stack: look for deep or endless recursion"
        else:
            hint = None
        raise SandboxError(f"task `{task}` was stopped by a trap: {reason}", help=hint)
    raise error  # a bug in cargo-task, not in the task


def _trap_reason(message: str) -> str:
    """`wasm trap: ...` from Wasmtime's message, which leads with a long backtrace."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    for line in lines:
        if line.startswith("wasm trap:"):
            return line.removeprefix("wasm trap:").strip()
    return lines[-1] if lines else "unknown"
