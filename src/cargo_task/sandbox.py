"""Wasmtime: compile a task's component, and run it with exactly its grants.

With `wasmtime_c`, the only module that touches Wasmtime. Components are driven through
the C API of the native library the `wasmtime` package ships, declared by `wasmtime_c`,
a private ctypes layer of some forty functions: the package itself is never imported
(its import alone costs more than the rest of a warm run). The calls are pinned by the
`wasmtime` version range in pyproject.toml and covered by the unit and end-to-end tests.
The guest runs on a worker thread so that the main thread can still take Ctrl-C, SIGTERM
and SIGHUP and enforce the wall-clock limit; a guest stuck in a blocking host call (sleep,
a silent stdin), which no epoch can interrupt, is ended with the process.

Memory: what a run creates is freed when the guest has finished, and never while it may
still run (an abandoned guest is ended with the process); nothing has a finalizer.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from contextlib import ExitStack
from ctypes import POINTER, byref
from pathlib import Path
from typing import TYPE_CHECKING, Callable, NamedTuple, NoReturn

from cargo_task import wasmtime_c as C
from cargo_task.config import human_duration, human_size
from cargo_task.errors import SandboxError, TaskError
from cargo_task.files import open_directory_without_links
from cargo_task.grants import Grants, Mount

if TYPE_CHECKING:
    from cargo_task.neutralize import TerminalFilter
    from cargo_task.staging import Staging

ENGINE_SETTINGS = "epoch-interruption"
# A task built for wasm32-wasip2 is one core module with one linear memory, a few tables
# and a few shim instances: so the memory grant bounds the task's whole linear memory, and
# its tables' elements (8 bytes or more each) an eighth of it each, at most TABLE_LIMIT.
INSTANCE_LIMIT, TABLE_LIMIT, MEMORY_COUNT_LIMIT = 50, 10, 1
GRACE_SECONDS = 0.25  # after the epoch bump, how long a stopping guest may take
POLL_SECONDS = 0.02  # how often the supervisor looks at the clock and for signals
TIMEOUT_EXIT = 124
INTERRUPT_EXIT = 130
# Ctrl-C, `kill`, a closed terminal: each ends the task and cleans up; the exit code is
# 128 + the signal's number, as a shell reports a command that a signal ended.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

# Wasmtime's compilers (wasmtime_strategy_t in wasmtime/config.h): Winch compiles a
# just-built component ~4x faster, Cranelift's code runs 1.4-1.6x faster (ARCHITECTURE.md,
# "Tiered compilation"). Code made by one loads only into an engine of the same strategy.
STRATEGIES = {"cranelift": 1, "winch": 2}
_engines: dict = {}  # strategy -> POINTER(wasm_engine_t), created once and kept for the process


class StaleComponent(Exception):
    """The cached machine code does not load into this Wasmtime: compile it again."""


def engine(strategy: str = "cranelift"):
    found = _engines.get(strategy)
    if found is None:
        lib = C.lib()
        config = lib.wasm_config_new()
        lib.wasmtime_config_epoch_interruption_set(config, True)
        lib.wasmtime_config_strategy_set(config, STRATEGIES[strategy])
        found = _engines[strategy] = lib.wasm_engine_new_with_config(config)  # takes the config
    return found


def engine_id(strategy: str = "cranelift") -> str:
    """Serialized code only loads into the same Wasmtime with the same settings: the stamp of
    the installed native library stands for its version. Does not load the library."""
    st = os.stat(C.library_path())
    return f"wasmtime {st.st_size}:{st.st_mtime_ns};{ENGINE_SETTINGS};{strategy}"


class Compiled(NamedTuple):
    """A task's machine code, and the compiler that made it (the engine that loads it)."""

    code: bytes
    strategy: str = "cranelift"
    wasm: str = ""  # SHA-256 of the wasm it was compiled from, when known


def compile_component(wasm: bytes, task: str, strategy: str = "cranelift") -> bytes:
    lib = C.lib()
    component = POINTER(C.wasmtime_component_t)()
    try:
        C.check(lib.wasmtime_component_new(engine(strategy), C.byte_pointer(wasm), len(wasm), byref(component)))
    except C.WasmtimeError as e:
        raise SandboxError(
            f"task `{task}` did not build to a valid WASI 0.2 component: {_first_line(e)}",
            help="the task must be a binary built for wasm32-wasip2",
            exit_code=1,
        ) from None
    try:
        raw = C.wasm_byte_vec_t()
        C.check(lib.wasmtime_component_serialize(component, byref(raw)))
        return C.take_bytes(raw)
    finally:
        lib.wasmtime_component_delete(component)


class _Command:
    """An instantiated command component whose `wasi:cli/run` can be called once.

    It owns the store (and through it the WASI context, the instance and the function),
    the component and the export indices; `release` frees them unless the guest may still
    be running.
    """

    def __init__(self) -> None:
        self.store = None
        self.context = None
        self.component = POINTER(C.wasmtime_component_t)()
        self.instance = C.wasmtime_component_instance_t()
        self.func = C.wasmtime_component_func_t()
        self.indices: list = []
        self.started = False
        self.finished = threading.Event()
        self.link = None  # the served host functions: kept alive with the store
        self.engine = None  # the engine of the strategy that compiled the code

    def run(self) -> bool:
        """True if the command returned ok; raises WasmtimeError for traps and exits.
        Called once, on the worker thread, after `started` was set."""
        lib = C.lib()
        try:
            result = C.wasmtime_component_val_t()
            C.check(lib.wasmtime_component_func_call(byref(self.func), self.context, None, 0, byref(result), 1))
            ok = bool(result.of.result.is_ok)
            lib.wasmtime_component_val_delete(byref(result))
            return ok
        finally:
            self.finished.set()

    def export(self, name: str, within=None):
        """The export index of `name` (inside the export `within`), or None."""
        encoded = name.encode()
        index = C.lib().wasmtime_component_instance_get_export_index(
            byref(self.instance), self.context, within, encoded, len(encoded)
        )
        if not index:
            return None
        self.indices.append(index)
        return index

    def release(self) -> None:
        if self.started and not self.finished.is_set():
            return  # the guest may still be inside Wasmtime: the process ends soon anyway
        lib = C.lib()
        for index in self.indices:
            lib.wasmtime_component_export_index_delete(index)
        self.indices = []
        if self.component:
            lib.wasmtime_component_delete(self.component)
            self.component = POINTER(C.wasmtime_component_t)()
        if self.store:
            self.context = None
            lib.wasmtime_store_delete(self.store)  # closes its WASI files and directories
            self.store = None


def _first_line(error: BaseException) -> str:
    lines = [line for line in str(error).splitlines() if line.strip()]
    return lines[0].strip() if lines else type(error).__name__


def _preopen(lib, wasi, mount, opened: list[int], task: str) -> None:
    try:
        fd = open_directory_without_links(str(mount.host))
    except OSError as e:
        raise SandboxError(
            f"task `{task}`: `{mount.host}` changed since its grant was checked: {e.strerror}",
            help="a symbolic link or a missing directory on the way is refused",
            exit_code=1,
        ) from None
    opened.append(fd)
    _preopen_dir(lib, wasi, f"/proc/self/fd/{fd}", mount.guest, mount.writable)


def _preopen_dir(lib, wasi, host: str, guest: str, writable: bool) -> None:
    if not lib.wasi_config_preopen_dir(wasi, host.encode(), guest.encode(), writable):
        raise C.WasmtimeError("failed to add preopen dir")


def _wasi_config(grants: Grants, mounts: tuple[Mount, ...], scratch: str | None, filtered: dict[int, TerminalFilter], opened: list[int], task: str):
    """A new `wasi_config_t*` with exactly the grants; the caller owns it."""
    lib = C.lib()
    wasi = lib.wasi_config_new()
    try:
        if not lib.wasi_config_set_argv(wasi, len(grants.argv), C.char_array(grants.argv)):
            raise C.WasmtimeError("failed to configure argv")
        names, values = [name for name, _ in grants.env], [value for _, value in grants.env]
        if not lib.wasi_config_set_env(wasi, len(names), C.char_array(names), C.char_array(values)):
            raise C.WasmtimeError("failed to configure environment")
        if grants.stdin:
            lib.wasi_config_inherit_stdin(wasi)
        for fd, set_file, inherit in (
            (1, lib.wasi_config_set_stdout_file, lib.wasi_config_inherit_stdout),
            (2, lib.wasi_config_set_stderr_file, lib.wasi_config_inherit_stderr),
        ):
            if fd in filtered:
                if not set_file(wasi, filtered[fd].path.encode()):
                    raise C.WasmtimeError(f"failed to set {'stdout' if fd == 1 else 'stderr'} file")
                filtered[fd].opened()
            else:
                inherit(wasi)
        for mount in mounts:
            _preopen(lib, wasi, mount, opened, task)
        if scratch is not None:
            _preopen_dir(lib, wasi, scratch, "/tmp", True)
        if grants.network:
            lib.wasi_config_allow_ip_name_lookup(wasi, True)
    except BaseException:
        lib.wasi_config_delete(wasi)
        raise
    return wasi


def _instantiate(task: str, payload: Compiled, grants: Grants, wasi, host_calls: Callable) -> _Command:
    """Takes `wasi` (a `wasi_config_t*`): it is consumed or freed whatever happens.
    `host_calls(request)` serves `cargo-task:host/process` (running granted programs)."""
    lib = C.lib()
    command = _Command()
    command.engine = engine(payload.strategy)
    try:
        try:
            C.check(lib.wasmtime_component_deserialize(
                command.engine, C.byte_pointer(payload.code), len(payload.code), byref(command.component)
            ))  # fmt: skip
        except C.WasmtimeError as e:
            raise StaleComponent(str(e)) from None
        command.store = lib.wasmtime_store_new(command.engine, None, C.no_finalizer())
        command.context = lib.wasmtime_store_context(command.store)
        lib.wasmtime_context_set_epoch_deadline(command.context, 1)
        lib.wasmtime_store_limiter(command.store, grants.memory, max(grants.memory // 8, 1 << 16),
                                   INSTANCE_LIMIT, TABLE_LIMIT, MEMORY_COUNT_LIMIT)  # fmt: skip
        owned, wasi = wasi, None  # the store owns it from the call on, even if that fails
        error = lib.wasmtime_context_set_wasi(command.context, owned)
        C.check(error)
        linker = lib.wasmtime_component_linker_new(command.engine)
        try:
            C.check(lib.wasmtime_component_linker_add_wasip2(linker))
            if grants.network:
                C.check(lib.wasmtime_component_linker_add_wasi_http(linker))
                lib.wasmtime_context_set_wasi_http(command.context)
            from cargo_task import hostlink

            command.link = hostlink.add_process(linker, host_calls)
            C.check(lib.wasmtime_component_linker_instantiate(
                linker, command.context, command.component, byref(command.instance)
            ))  # fmt: skip
        except C.WasmtimeError as e:
            message = str(e)
            if "wasi:http" in message:
                raise SandboxError(
                    f"task `{task}` uses the network (wasi:http), but it has no network grant",
                    help=f"add `network = true` to the task's table ([package.metadata.tasks.{task}])",
                    exit_code=1,
                ) from None
            reason = _first_line(e)
            hint = (
                f"its memory limit ({human_size(grants.memory)}) is below what it needs to start"
                if "memory" in reason and "limit" in reason
                else None
            )
            raise SandboxError(f"task `{task}` could not start: {reason}", help=hint, exit_code=1) from None
        finally:
            lib.wasmtime_component_linker_delete(linker)
        interface = command.export("wasi:cli/run@0.2.0")  # semver-aware: finds 0.2.x
        run_index = command.export("run", interface) if interface else None
        if not run_index or not lib.wasmtime_component_instance_get_func(
            byref(command.instance), command.context, run_index, byref(command.func)
        ):
            raise SandboxError(
                f"task `{task}` is not a WASI command: it exports no `wasi:cli/run`",
                help="a task is a binary crate with `fn main()`",
                exit_code=1,
            )
        return command
    except BaseException:
        if wasi:
            lib.wasi_config_delete(wasi)
        command.release()
        raise


class HostSetup(NamedTuple):
    """What serving host programs to a task needs besides its grants."""

    table: str  # the task's table in Cargo.toml, for messages: [package.metadata.tasks.x]
    environ: dict[str, str]  # the tool's environment: PATH, the toolchain's homes
    cargo_target_dir: Path  # private target directory for a granted `cargo`


class _HostPrograms:
    """The task's host programs, started only on the first call (hostcalls imports
    subprocess: warm runs of tasks that run no program never load it)."""

    def __init__(self, task: str, grants: Grants, setup: HostSetup | None, scratch, deadline, outputs,
                 staging: Staging | None = None):  # fmt: skip
        self.arguments = (task, grants, setup, scratch, deadline, outputs)
        self.staging = staging
        self.calls = None
        self.timed_out = False  # a program outlived the task's time limit
        self.refused: str | None = None  # the first refusal of a program it may not run

    def __call__(self, request):
        if self.calls is None:
            from cargo_task.hostcalls import HostCalls

            task, grants, setup, scratch, deadline, (out, err) = self.arguments
            setup = setup or HostSetup(f"[package.metadata.tasks.{task}]", dict(os.environ), None)
            self.calls = HostCalls(
                task, setup.table, grants, setup.environ, Path(scratch) if scratch else None,
                deadline, stdout_fd=out, stderr_fd=err, cargo_target_dir=setup.cargo_target_dir,
                file_directories=tuple(self.staging.host_directories()) if self.staging else (),
            )  # fmt: skip
        from cargo_task.hostcalls import CommandRefused

        if self.staging is None:
            outcome = self.calls.run(request)
        else:  # the program works on the host's files: the task's changes first, then back
            self.staging.write_back()
            try:
                outcome = self.calls.run(request)
            finally:
                self.staging.refresh()
        if isinstance(outcome, CommandRefused):
            self.timed_out = self.timed_out or outcome.kind == "timed-out"
            if outcome.kind == "permission-denied" and self.refused is None:
                self.refused = outcome.message  # said again by the tool if the task then fails
        return outcome

    def stop(self) -> None:
        """End every program still running (a timeout, a signal, the end of the task)."""
        if self.calls is not None:
            self.calls.stop_all()


def run(task: str, payload: Compiled, grants: Grants, abandon: Callable[[TaskError], NoReturn],
        host: HostSetup | None = None, warn: Callable[[str], None] = lambda _: None) -> int:  # fmt: skip
    """Run the task to its end and return its exit code.

    `abandon` reports an error and ends the process at once: the only way out when the
    guest is stuck in a host call that nothing inside Wasmtime can interrupt.
    """
    received: list[int] = []  # the stopping signals that arrived, in order
    with ExitStack() as cleanup:
        # From here on Ctrl-C, SIGTERM and SIGHUP only set a flag: a KeyboardInterrupt in the
        # middle of handing objects to Wasmtime, or inside threading's waits, would corrupt
        # their state. The flag stays until the private /tmp is gone.
        if threading.current_thread() is threading.main_thread():
            for signum in STOP_SIGNALS:
                previous = signal.signal(signum, lambda number, _: received.append(number))
                if previous is None:  # a handler Python did not install: none of ours
                    previous = signal.SIG_DFL
                if signum == signal.SIGHUP and previous is signal.SIG_IGN:  # `nohup`
                    signal.signal(signum, previous)
                else:
                    cleanup.callback(signal.signal, signum, previous)
        scratch = None
        if grants.tmp:
            import tempfile

            scratch = tempfile.mkdtemp(prefix="cargo-task-tmp-")
            cleanup.callback(_remove_scratch, scratch)
        filtered: dict[int, TerminalFilter] = {}
        terminals = [fd for fd in (1, 2) if os.isatty(fd)]
        if terminals:  # the filter's regexes are compiled only for a terminal
            from cargo_task.neutralize import TerminalFilter

            filtered = {fd: TerminalFilter(fd) for fd in terminals}
        for pipe in filtered.values():
            cleanup.callback(pipe.finish)
        opened: list[int] = []
        cleanup.callback(lambda: [os.close(fd) for fd in opened])
        staging = _stage(task, grants, cleanup) if grants.files else None
        mounts = staging.preopens(grants.mounts) if staging else grants.mounts
        wasi = _wasi_config(grants, mounts, scratch, filtered, opened, task)
        deadline = time.monotonic() + grants.timeout if grants.timeout else None
        outputs = tuple(filtered[fd].write_end if fd in filtered else fd for fd in (1, 2))
        programs = _HostPrograms(task, grants, host, scratch, deadline, outputs, staging)
        command = _instantiate(task, payload, grants, wasi, programs)
        cleanup.callback(programs.stop)  # before the store and the private /tmp go
        # First out: frees the store once the guest has finished, which closes Wasmtime's
        # ends of the filtered pipes; leaves everything alone while it may still run.
        cleanup.callback(command.release)

        def leave(error: TaskError) -> NoReturn:
            programs.stop()  # nothing it started outlives it
            _note_unwritten(error, staging)
            cleanup.close()  # the private /tmp too: abandoning ends the process at once
            abandon(error)

        try:
            code, seen = _supervise(task, command, grants, leave, received, deadline, programs.stop)
        except TaskError as error:
            _note_unwritten(error, staging)
            raise
        if programs.timed_out:  # the limit covers the programs: the run exceeded it
            error = _timed_out(task, grants.timeout or 0)
            _note_unwritten(error, staging)
            raise error
        if staging is not None:
            _write_back(task, staging, code, warn)
        if code != 0 and programs.refused:  # the task's own report of it is Rust's Debug form
            raise SandboxError(f"task `{task}` failed (exit {code}) after it was refused a program",
                               help=programs.refused, exit_code=code)  # fmt: skip
    if len(received) > seen:  # asked to stop while the task was finishing, or /tmp removed
        raise _stopped_by(task, received[seen])
    return code


def _stage(task: str, grants: Grants, cleanup: ExitStack) -> Staging:
    """The private staging directories of the task's one-file grants (removed at the end)."""
    import tempfile

    from cargo_task.staging import Staging

    root = os.path.realpath(tempfile.mkdtemp(prefix="cargo-task-files-"))
    cleanup.callback(_remove_scratch, root)
    try:
        return Staging(grants, Path(root))
    except OSError as e:
        raise SandboxError(
            f"task `{task}`: could not prepare its one-file grants: {e.strerror} ({e.filename})",
            help="check that the granted files and their directories are readable",
        ) from None


def _write_back(task: str, staging: Staging, code: int, warn: Callable[[str], None]) -> None:
    """The task ran to its end: what it wrote to granted files goes to the host."""
    outcome = staging.write_back()
    if outcome.discarded:
        shown = ", ".join(f"`{name}`" for name in outcome.discarded[:5])
        warn(f"task `{task}` changed {shown}, which it may not write: discarded "
             "(only the granted files of that directory are written back)")  # fmt: skip
    if outcome.not_written:
        raise SandboxError(
            f"task `{task}` wrote {', '.join(outcome.not_written)}, but it was not written to the host",
            help="the host's file was left as it is; run the task again",
            exit_code=code or 1,
        )


def _note_unwritten(error: TaskError, staging: Staging | None) -> None:
    """Say in the error's help which granted files the task changed and did not write."""
    names = staging.changed() if staging is not None else []
    if names:
        note = (", ".join(f"`{n}`" for n in names) + " left as it was: a task that does not "
                "finish writes no granted file")  # fmt: skip
        error.help = f"{error.help}; {note}" if error.help else note


def _remove_scratch(scratch: str) -> None:
    """The private /tmp, whatever the task left in it; a failure here never costs the run
    its exit code (the directory is the user's TMPDIR's to clean then)."""
    from cargo_task.files import remove_tree

    try:
        remove_tree(scratch)
    except OSError:
        pass


def _stopped_by(task: str, signum: int) -> SandboxError:
    if signum == signal.SIGINT:
        return SandboxError(f"task `{task}` was interrupted", exit_code=INTERRUPT_EXIT)
    return SandboxError(
        f"task `{task}` was terminated ({signal.Signals(signum).name})", exit_code=128 + signum
    )


def _supervise(task, command: _Command, grants: Grants, abandon, received: list[int],
               deadline: float | None, stop_programs: Callable[[], None]) -> tuple[int, int]:  # fmt: skip
    """Run the guest on a worker thread; the main thread keeps time and polls for Ctrl-C,
    SIGTERM and SIGHUP (each appends its number to `received`).
    -> (the task's exit code, how many signals were acted on)."""
    outcome: dict[str, object] = {}
    finished = threading.Event()

    def guest() -> None:
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)  # the main thread's to handle
        try:
            outcome["ok"] = command.run()
        except BaseException as e:  # reported by the main thread
            outcome["error"] = e
        finally:
            finished.set()

    worker = threading.Thread(target=guest, name=f"task-{task}", daemon=True)
    stopping: TaskError | None = None
    signalled = False  # whether `stopping` is a signal's
    seen = 0
    if received:  # asked to stop while the task was being set up: it never starts
        raise _stopped_by(task, received[0])
    command.started = True  # from here on, only `command.finished` frees it
    worker.start()
    while not finished.wait(POLL_SECONDS):
        now = time.monotonic()
        if len(received) > seen:
            if signalled:
                abandon(stopping)  # a second signal: leave now
            stopping, signalled = _stopped_by(task, received[seen]), True
            seen = len(received)
            stop_programs()
            _interrupt(command)
            deadline = now + GRACE_SECONDS
        elif deadline is not None and now >= deadline:
            if stopping is not None:
                abandon(stopping)  # stuck in a host call that no epoch interrupts
            stopping = _timed_out(task, grants.timeout or 0)
            stop_programs()
            _interrupt(command)
            deadline = now + GRACE_SECONDS
    sys.stdout.flush()
    if stopping is not None:
        raise stopping
    if command.link is not None and command.link.failure is not None:
        raise command.link.failure  # the tool's own failure while serving the task (the guest trapped)
    return _exit_code(task, outcome, grants), seen


def _interrupt(command: _Command) -> None:
    """Bump the epoch: a guest running wasm code traps at its next check."""
    C.lib().wasmtime_engine_increment_epoch(command.engine)


def _timed_out(task: str, seconds: float) -> SandboxError:
    return SandboxError(
        f"task `{task}` did not finish within its time limit of {human_duration(seconds)}",
        help="raise it with `timeout = \"...\"` in the task's table, or --timeout for one run",
        exit_code=TIMEOUT_EXIT,
    )


def _exit_code(task: str, outcome: dict[str, object], grants: Grants) -> int:
    error = outcome.get("error")
    if error is None:
        return 0 if outcome.get("ok") else 1
    if isinstance(error, C.WasmtimeError):
        if error.exit_status is not None:  # the guest called wasi:cli/exit
            return error.exit_status
        from cargo_task.traps import explain_trap

        raise explain_trap(task, str(error), grants.memory)
    raise error  # a bug in cargo-task, not in the task
