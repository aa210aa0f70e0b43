"""Running a host program for a task: the `cargo-task:host/process` call, host side.

A task may run the programs its table grants, `commands = ["rustfmt", "git rev-parse"]`,
each inside the same Landlock confinement (`confine`). The rules, as the README states them:

Matching. A grant is a program name followed by fixed leading arguments (the entry split on
whitespace). A request matches when its program equals the grant's first word and its
arguments START with the grant's remaining words; later arguments are the task's to choose.
So `git rev-parse` allows `git rev-parse --show-toplevel` but not `git -c core.pager=x
rev-parse`, and `cargo fmt` allows neither `cargo +nightly fmt` nor `cargo --config ... fmt`:
the granted words must come first, and an option before them is a word that does not match.
For the same reason the request's environment may not set what steers a program as such
options do: the variables cargo-task sets itself, names starting with `LD_`, `DYLD_`,
`CARGO`, `RUSTC`, `RUSTDOC`, `RUSTUP` or `GIT_` (`GIT_CONFIG_*` is `git -c`), `RUSTFLAGS`,
`BASH_ENV`, `ENV`, `XDG_CONFIG_*`, `RUSTFMT`, `PAGER`, `EDITOR`, `CC`/`CXX`/`AR` and
their flags, `TARGET_*`/`HOST_*`, and the like (see STEERING_NAMES). Anything else is refused with
`permission-denied`, naming the grant to add (none when an option comes before the granted
words: only the bare program would allow that, and it allows everything).

A grant fixes the program and its first words, not everything the program does: `cargo
build` runs build scripts, `cargo clippy -- -C linker=...` runs a linker the task names, and
a program reads configuration (`.git/config`, `.cargo/config.toml`) from a working directory
the task may be able to write. All of that runs inside the same confinement, so grant
building commands only to tasks you would let run code with the task's own file grants.

Program. A bare name (no `/`), looked up on the host's PATH (the tool's environment, never
the task's), skipping relative PATH entries and directories a task can write. Toolchain
programs (cargo, rustfmt, rustc, cargo-clippy, ...) resolve to the rustup proxies there,
which honour RUSTUP_TOOLCHAIN. argv[0] is the name as granted.

Working directory. `cwd` is a path as the task sees it: None or relative means relative to
`/`, the project root. It is mapped through the task's directories (the longest guest prefix
wins; the private `/tmp` too) and refused when it leaves them (`..`), goes through a symbolic
link out of them, or is not an existing directory. Arguments are passed as they are: a path
in them is the program's to resolve against its (host) working directory, so use relative
paths.

Environment. Only PATH (the host's, without the entries skipped above), HOME and TMPDIR (a
fresh private directory per run of the task, removed by `stop_all`: never the user's home,
and not the task's `/tmp`, which the task writes directly: a planted `~/.gitconfig` would be
`git -c`; granted programs may write it), CARGO_HOME and RUSTUP_HOME (absolute),
RUSTUP_TOOLCHAIN and RUSTC if set, LANG, LC_ALL and TERM if set, the task's own granted `env`,
then the request's entries (within the limits above); CARGO_TARGET_DIR for `cargo`.

Input and output. stdin is empty. With `inherit-output` the program writes straight to the
task's stdout and stderr (the terminal filter's pipes on a terminal) and the call returns
empty output; without it both are captured, each up to OUTPUT_LIMIT (a note at the end of
stderr says when something was cut).

Confinement. Read: the system (confine.SYSTEM_READ), the project and every directory the
task may read, each file of a one-file grant (for `git`, also the `.git` of a repository that begins above the project),
RUSTUP_HOME, CARGO_HOME's `bin`, `registry`, `git` and configuration (never
its credentials), and the program itself. Write: the task's writable directories and
files (a one-file grant's file alone: the program works on the host's file, which the task's
changes reach before it starts, see `staging.py`), its
private `/tmp`, the private HOME, and for `cargo` a private target directory (see below).
TCP only with `network = true`. Without Landlock a program runs only with
`allow-unconfined-commands = true`; otherwise the call fails (`other`).

Cargo's target directory. `cargo` gets CARGO_TARGET_DIR = a private directory that is in
none of the task's grants: the project's own `target/` would need a write grant there, and
what a task plants in it (a build script's binary, a fingerprint) the user's next `cargo
build` would run unconfined. A confined cargo may still write it (and run the task's code,
as above), so it must only ever serve these confined runs.

Lifetime. Each program runs in its own session and process group, which is killed with
SIGKILL when the program ends (nothing it started is left behind), when the task's deadline
passes (the call fails with `timed-out`) and on `stop_all()` (Ctrl-C, the end of the task).
A program that starts a new session of its own leaves the group; the tool is the
programs' subreaper, so once its parent is gone it becomes the tool's child and is killed
too, after each program and when the task ends.
"""

from __future__ import annotations

import os
import posixpath
import selectors
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import NamedTuple

from cargo_task import confine
from cargo_task.grants import Grants, Mount, runs_anything

OUTPUT_LIMIT = 2 << 20  # per stream: a byte costs ~80 bytes of host memory on its way to the guest
DRAIN_SECONDS = 1.0  # after the program ended, how long to wait for its pipes to close
# Variables cargo-task sets for a program, and those that steer what a program runs or
# loads as a command-line option would (`git -c`, `cargo --config`, `cargo +toolchain`).
FIXED_ENV = ("PATH", "HOME", "TMPDIR", "CARGO_HOME", "RUSTUP_HOME", "RUSTUP_TOOLCHAIN", "RUSTC",
             "CARGO_TARGET_DIR")  # fmt: skip
# Variables that choose a program to run (or how), as an option would: never the task's to set.
STEERING_PREFIXES = ("LD_", "DYLD_", "CARGO", "RUSTC", "RUSTDOC", "RUSTUP", "GIT_", "TARGET_",
                     "HOST_", "PYTHON", "PERL", "RUBY", "NODE_")  # fmt: skip
STEERING_NAMES = ("RUSTFLAGS", "RUSTFMT", "CLIPPY_CONF_DIR", "BASH_ENV", "ENV", "XDG_CONFIG_HOME",
                  "XDG_CONFIG_DIRS", "PAGER", "EDITOR", "VISUAL", "SSH_ASKPASS", "SSH_AUTH_SOCK",
                  "SHELL", "CC", "CXX", "AR", "LD", "CFLAGS", "CXXFLAGS", "LDFLAGS", "PKG_CONFIG",
                  "PKG_CONFIG_PATH", "PATH", "HOME", "TMPDIR", "IFS", "PS4")  # fmt: skip
HOST_ENV = ("LANG", "LC_ALL", "TERM")
CARGO_HOME_READ = ("bin", "registry", "git", "config.toml", "config")  # never credentials


class CommandRequest(NamedTuple):
    program: str
    args: tuple[str, ...]
    cwd: str | None
    env: tuple[tuple[str, str], ...]
    inherit_output: bool


class CommandOutput(NamedTuple):
    code: int | None  # None: ended by a signal
    stdout: bytes
    stderr: bytes


class CommandRefused(NamedTuple):
    kind: str  # permission-denied, not-found, invalid-input, timed-out, other
    message: str


class _Refusal(Exception):
    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.refused = CommandRefused(kind, message)


def _shown(program: str, args: tuple[str, ...]) -> str:
    return " ".join((program, *args))


def suggested_grant(program: str, args: tuple[str, ...]) -> str:
    """The grant that would allow a request: the program, and its first argument when that
    looks like a subcommand (`git rev-parse`), not an option or a path; after a program that
    runs others (`rustup run`), every such word, so that the program it runs is named too."""
    words = [program]
    for arg in args:
        if not (arg[:1].isalpha() and all(c.isalnum() or c in "-_." for c in arg)):
            break
        words.append(arg)
        if not runs_anything(words):
            break
    return " ".join(words)


def matching_grant(commands: tuple[tuple[str, ...], ...], program: str, args: tuple[str, ...]):
    """The first grant whose words lead the request, or None."""
    for grant in commands:
        if grant[0] == program and args[: len(grant) - 1] == grant[1:]:
            return grant
    return None


def _guest_parts(path: str) -> tuple[str, ...]:
    """A guest path as components relative to `/`: `out`, `/out` and `./out/` are the same;
    `..` inside is folded, a leading `..` (above the root) is kept."""
    relative = posixpath.normpath(path.lstrip("/") or ".")
    return () if relative == "." else tuple(relative.split("/"))


def _inside(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory.rstrip("/") + "/")


class HostCalls:
    """The programs one run of a task may start. `run` is called from the guest's thread,
    `stop_all` from any thread."""

    def __init__(self, task_name: str, table: str, grants: Grants, environ: dict[str, str],
                 scratch: Path | None, deadline: float | None, stdout_fd: int = 1,
                 stderr_fd: int = 2, cargo_target_dir: Path | None = None,
                 file_directories: tuple[Mount, ...] = ()):  # fmt: skip
        self.task, self.table, self.grants, self.environ = task_name, table, grants, environ
        self.scratch, self.deadline = scratch, deadline
        self.stdout_fd, self.stderr_fd = stdout_fd, stderr_fd
        self.cargo_target_dir = cargo_target_dir
        self.mounts = list(grants.mounts)
        # A one-file grant's directory, where the task's paths name it: the real directory,
        # for working directories only (what a program may read is the grants' to say).
        self.file_directories = list(file_directories)
        if scratch is not None:
            self.mounts.append(Mount(Path(os.path.realpath(scratch)), "/tmp", True))
        self._lock = threading.Lock()
        self._running: set[int] = set()  # process group ids
        self._unreaped: set[int] = set()  # programs started and not yet waited for
        self._stopped = False
        self._home: str | None = None

    # -- the call ---------------------------------------------------------------------------

    def run(self, request: CommandRequest) -> CommandOutput | CommandRefused:
        """Run the program if granted; never raises."""
        try:
            return self._run(request)
        except _Refusal as refusal:
            return refusal.refused
        except Exception as e:  # an unexpected failure is the task's answer, not a crash
            return CommandRefused("other", f"`{request.program}` could not be run: {e}")

    def stop_all(self) -> None:
        """Kill every running program's process group and remove the private HOME; later
        calls are refused. Idempotent."""
        with self._lock:  # a group leaves `_running` before its leader is reaped: ids stay ours
            self._stopped = True
            for group in self._running:
                _kill_group(group)
            home, self._home = self._home, None
        self._sweep()
        if home is not None:
            from cargo_task.files import remove_tree

            try:
                remove_tree(home)
            except OSError:
                pass

    def _run(self, request: CommandRequest) -> CommandOutput | CommandRefused:
        program, args = request.program, tuple(request.args)
        self._check_text(program, args, request)
        if not program or "/" in program:
            raise _Refusal("invalid-input", f"`{program}` is not a program name: give a bare name "
                           "such as `git`, looked up on the host's PATH")  # fmt: skip
        if matching_grant(self.grants.commands, program, args) is None:
            raise _Refusal("permission-denied", self._not_granted(program, args))
        executable = self._resolve(program)
        cwd = self._host_cwd(request.cwd)
        env = self._environment(program, request.env)
        argv = [program, *args]
        options = dict(executable=executable, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                       start_new_session=True, close_fds=True)  # fmt: skip
        if request.inherit_output:
            options.update(stdout=self.stdout_fd, stderr=self.stderr_fd)
        else:
            options.update(stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if self.deadline is not None and time.monotonic() >= self.deadline:
            return self._timed_out(program, args)
        process = self._start(argv, executable, options)
        return self._wait(process, program, args)

    # -- what may run, and where ------------------------------------------------------------

    def _check_text(self, program: str, args: tuple[str, ...], request: CommandRequest) -> None:
        texts = [program, *args, request.cwd or ""] + [t for pair in request.env for t in pair]
        if any("\0" in t for t in texts):
            raise _Refusal("invalid-input", "a program's name, arguments, working directory and "
                           "environment cannot contain NUL characters")  # fmt: skip

    def _not_granted(self, program: str, args: tuple[str, ...]) -> str:
        granted = [" ".join(g) for g in self.grants.commands if g[0] == program]
        message = f"task `{self.task}` may not run `{_shown(program, args)}`"
        if granted:
            listed = ", ".join(f"`{g}`" for g in granted)
            message += f": its `commands` grant {listed}, whose words must come first"
            if args and args[0][:1] in ("-", "+"):  # an option before them: no grant to suggest
                return f"{message}; an option before them could change what `{program}` does"
        suggested = suggested_grant(program, args)
        wanted = f'"{suggested}"'
        wrapper = runs_anything(suggested.split())
        caution = (f" (`{wrapper}` runs whatever it is told to: that grant would reach every "
                   "program on PATH)") if wrapper else ""  # fmt: skip
        if self.grants.commands:
            return f"{message}; to allow it, add {wanted} to `commands` in {self.table}{caution}"
        return f"{message}; to allow it, add `commands = [{wanted}]` to {self.table}{caution}"

    def _writable_hosts(self) -> list[str]:
        return [str(m.host) for m in self.mounts if m.writable] + [
            str(f.host) for f in self.grants.files if f.writable
        ]

    def _path(self) -> list[str]:
        """The host's PATH without relative entries and directories a task can write (a
        program planted there would run in place of the granted one, or of what it runs)."""
        writable = self._writable_hosts()
        return [
            entry for entry in self.environ.get("PATH", os.defpath).split(os.pathsep)
            if os.path.isabs(entry)
            and not any(_inside(os.path.realpath(entry), w) for w in writable)
        ]  # fmt: skip

    def _resolve(self, program: str) -> str:
        """The program on the host's PATH: absolute entries only, none a task can write."""
        writable = self._writable_hosts()
        for entry in self._path():
            candidate = os.path.join(entry, program)
            if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
                if any(_inside(os.path.realpath(candidate), w) for w in writable):
                    continue
                return candidate
        raise _Refusal("not-found", f"`{program}` was not found on the PATH")

    def _host_cwd(self, cwd: str | None) -> str:
        """The host directory for the task's `cwd`, checked to stay within its directories."""
        parts = _guest_parts(cwd or "/")
        best: tuple[Mount, int] | None = None
        for mount in self.mounts + self.file_directories:
            prefix = _guest_parts(mount.guest)
            if parts[: len(prefix)] == prefix and (best is None or len(prefix) > best[1]):
                best = (mount, len(prefix))
        shown = cwd if cwd is not None else "/"
        rest = parts[best[1]:] if best else ("..",)
        if best is None or ".." in rest:
            raise _Refusal("permission-denied", f"working directory `{shown}` is outside the "
                           f"directories task `{self.task}` may use")  # fmt: skip
        mount = best[0]
        root = os.path.realpath(mount.host)
        host = os.path.realpath(os.path.join(root, *rest))
        if not _inside(host, root):
            raise _Refusal("permission-denied", f"working directory `{shown}` leads through a "
                           "symbolic link out of the directories the task may use")  # fmt: skip
        if not os.path.isdir(host):
            raise _Refusal("not-found", f"working directory `{shown}` is not an existing directory")
        return host

    def _environment(self, program: str, requested: tuple[tuple[str, str], ...]) -> dict[str, str]:
        environ = self.environ
        env = {k: environ[k] for k in HOST_ENV if k in environ}
        env.update(self.grants.env)
        home = self._private_home()
        env.update(PATH=os.pathsep.join(self._path()), HOME=home, TMPDIR=home,
                   CARGO_HOME=self._tool_home("CARGO_HOME", ".cargo"),
                   RUSTUP_HOME=self._tool_home("RUSTUP_HOME", ".rustup"))  # fmt: skip
        for name in ("RUSTUP_TOOLCHAIN", "RUSTC"):
            if environ.get(name):
                env[name] = environ[name]
        if program == "cargo" and self.cargo_target_dir is not None:
            env["CARGO_TARGET_DIR"] = str(self.cargo_target_dir)
        for name, value in requested:
            if not name or "=" in name:
                raise _Refusal("invalid-input", f"`{name}` is not an environment variable's name")
            if name in FIXED_ENV or name in STEERING_NAMES or name.startswith(STEERING_PREFIXES):
                raise _Refusal("permission-denied", f"a task cannot set `{name}` for a host "
                               "program: it changes what the program runs or loads, as an "
                               "option before the granted words would")  # fmt: skip
            env[name] = value
        return env

    def _tool_home(self, name: str, default: str) -> str:
        """CARGO_HOME or RUSTUP_HOME as the host sets it, or its default in the user's home."""
        user_home = self.environ.get("HOME") or os.path.expanduser("~")
        return os.path.abspath(self.environ.get(name) or os.path.join(user_home, default))

    def _private_home(self) -> str:
        with self._lock:
            if self._stopped:
                raise _Refusal("other", f"task `{self.task}` is stopping")
            if self._home is None:
                import tempfile

                self._home = tempfile.mkdtemp(prefix="cargo-task-home-")
            return self._home

    # -- starting and waiting ---------------------------------------------------------------

    def _intact(self) -> list[Mount]:
        """The task's directories that are still what was granted: a program may have
        replaced a nested grant (`read = ["out/ref"]` inside `write = ["out"]`) by a link,
        and Landlock's rules follow links when they are made."""
        return [m for m in self.mounts if os.path.realpath(m.host) == str(m.host)]

    def _confinement(self, program: str, executable: str) -> confine.Confinement:
        cargo_home = self._tool_home("CARGO_HOME", ".cargo")
        mounts = self._intact()
        read = [*confine.SYSTEM_READ, *(m.host for m in mounts),
                self._tool_home("RUSTUP_HOME", ".rustup"),
                *(os.path.join(cargo_home, n) for n in CARGO_HOME_READ),
                executable, os.path.realpath(executable)]  # fmt: skip
        if program == "git":  # the repository may begin above the project: its .git, read-only
            root = Path(self.grants.mounts[0].host)
            read += [str(d / ".git") for d in (root, *root.parents) if (d / ".git").exists()][:1]
        files = [f for f in self.grants.files if os.path.realpath(f.host) == str(f.host)]
        read += [str(f.host) for f in files]
        write = [*confine.SYSTEM_WRITE, *(str(m.host) for m in mounts if m.writable), self._private_home()]
        write += [str(f.host) for f in files if f.writable]  # the file alone, not its directory
        if program == "cargo" and self.cargo_target_dir is not None:
            os.makedirs(self.cargo_target_dir, exist_ok=True)  # cargo would create it beside
            write.append(str(self.cargo_target_dir))
        return confine.Confinement(
            tuple(Path(p) for p in read), tuple(Path(p) for p in write), self.grants.network,
            metadata=program == "cargo",  # its builds' linkers set modes; Landlock cannot scope that
        )

    def _start(self, argv: list[str], executable: str, options: dict) -> subprocess.Popen:
        program = argv[0]
        _become_subreaper()
        try:
            if confine.abi_version() > 0:
                process = confine.spawn(self._confinement(program, executable), argv, **options)
            elif self.grants.allow_unconfined_commands:
                process = confine.start_on_fresh_thread(argv, options)
            else:
                raise _Refusal("other", f"`{program}` cannot be confined here (this system offers "
                               "no Landlock); a task may run host programs unconfined only with "
                               f"`allow-unconfined-commands = true` in {self.table}")  # fmt: skip
        except confine.ConfinementError as e:
            raise _Refusal("other", e.message) from None
        except (FileNotFoundError, PermissionError) as e:
            kind = "not-found" if isinstance(e, FileNotFoundError) else "permission-denied"
            raise _Refusal(kind, f"`{program}` could not be started: {e.strerror}") from None
        with self._lock:
            stopped = self._stopped
            self._unreaped.add(process.pid)
            if not stopped:
                self._running.add(process.pid)
        if stopped:  # stop_all ran while it was starting
            _kill_group(process.pid)
        return process

    def _wait(self, process: subprocess.Popen, program: str, args: tuple[str, ...]):
        """Collect the output until the program ends or the deadline passes; then kill its
        group (leftovers included) and reap it."""
        outputs = _Outputs(process)
        try:
            ended = outputs.collect(process, self.deadline)
            _kill_group(process.pid)  # the leader is still unreaped: its group id is ours
            if ended:
                outputs.drain(time.monotonic() + DRAIN_SECONDS)
        finally:
            outputs.close()
            for stream in (process.stdout, process.stderr):
                if stream is not None:
                    stream.close()
            with self._lock:
                self._running.discard(process.pid)
                stopped = self._stopped
            process.wait()
            with self._lock:
                self._unreaped.discard(process.pid)
            self._sweep()
        if not ended:
            return self._timed_out(program, args)
        if stopped and process.returncode == -signal.SIGKILL:
            return CommandRefused("other", f"`{_shown(program, args)}` was stopped: the task ended")
        code = process.returncode
        return CommandOutput(code if code >= 0 else None, *outputs.result())

    def _sweep(self) -> None:
        """Kill and reap what a program left behind outside its process group (`setsid`):
        the tool is their subreaper, so they became its children when their parents died.
        Programs still being waited for are left to their `_wait`."""
        for _ in range(50):
            with self._lock:
                ours = set(self._unreaped)
            orphans = [pid for pid in _children() if pid not in ours]
            if not orphans:
                return
            for pid in orphans:
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            for pid in orphans:
                try:
                    os.waitpid(pid, 0)
                except ChildProcessError:
                    pass

    def _timed_out(self, program: str, args: tuple[str, ...]) -> CommandRefused:
        return CommandRefused("timed-out", f"`{_shown(program, args)}` did not finish within "
                              f"the time limit of task `{self.task}`")  # fmt: skip


def _become_subreaper() -> None:
    """Orphans of the programs (a `setsid`-and-fork leaves the group) are re-parented to
    the tool instead of init, so `_sweep` can find and end them."""
    global _subreaper
    if not _subreaper:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
        _subreaper = True


_subreaper = False


def _children() -> list[int]:
    """The tool's children outside its own session, from /proc (after the name: state, ppid,
    pgrp, session): programs run in sessions of their own, so their orphans are there too,
    while anything else the process started (a test runner's helpers) is left alone."""
    me, mine, found = os.getpid(), os.getsid(0), []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as file:
                    fields = file.read().rpartition(b")")[2].split()
            except OSError:
                continue
            if len(fields) > 3 and int(fields[1]) == me and int(fields[3]) != mine:
                found.append(int(entry))
    return found


def _kill_group(group: int) -> None:
    try:
        os.killpg(group, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _exited(pid: int) -> bool:
    """Whether the process has ended, leaving it unreaped (its group id stays ours)."""
    return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None


class _Outputs:
    """The captured stdout and stderr of one program (none with inherited output), read
    without blocking, each kept up to OUTPUT_LIMIT; and the program's end, by its pidfd."""

    def __init__(self, process: subprocess.Popen):
        self.selector = selectors.DefaultSelector()
        self.kept: dict[int, bytearray] = {}
        self.cut: dict[int, bool] = {}
        self.names: dict[int, str] = {}
        for name, stream in (("stdout", process.stdout), ("stderr", process.stderr)):
            if stream is not None:
                fd = stream.fileno()
                os.set_blocking(fd, False)
                self.selector.register(fd, selectors.EVENT_READ)
                self.kept[fd], self.cut[fd], self.names[fd] = bytearray(), False, name
        self.order = list(self.kept)
        self.pidfd = -1
        try:
            self.pidfd = os.pidfd_open(process.pid)
            self.selector.register(self.pidfd, selectors.EVENT_READ)
        except (AttributeError, OSError):  # no pidfd: poll the process instead
            pass

    def collect(self, process: subprocess.Popen, deadline: float | None) -> bool:
        """Read until the program exits (True) or the deadline passes (False)."""
        while True:
            if self.pidfd < 0 and _exited(process.pid):
                return True
            timeout = None if deadline is None else deadline - time.monotonic()
            if timeout is not None and timeout <= 0:
                return False
            if self.pidfd < 0:
                timeout = 0.05 if timeout is None else min(timeout, 0.05)
            for key, _ in self.selector.select(timeout):
                if key.fd == self.pidfd:
                    return True
                self._read(key.fd)

    def drain(self, until: float) -> None:
        """What the pipes still hold, until both close (the group is dead) or `until`."""
        if self.pidfd >= 0:
            self.selector.unregister(self.pidfd)
        while self.selector.get_map() and (remaining := until - time.monotonic()) > 0:
            for key, _ in self.selector.select(remaining):
                self._read(key.fd)

    def _read(self, fd: int) -> None:
        try:
            chunk = os.read(fd, 1 << 16)
        except BlockingIOError:
            return
        if not chunk:
            self.selector.unregister(fd)
            return
        room = OUTPUT_LIMIT - len(self.kept[fd])
        if len(chunk) > room:
            self.cut[fd] = True
            chunk = chunk[: max(room, 0)]
        self.kept[fd] += chunk

    def result(self) -> tuple[bytes, bytes]:
        if not self.kept:
            return b"", b""
        out, err = (bytes(self.kept[fd]) for fd in self.order)
        for fd in self.order:
            if self.cut[fd]:
                note = f"\n[cargo-task: {self.names[fd]} cut at {OUTPUT_LIMIT >> 20} MiB]\n"
                err += note.encode()
        return out, err

    def close(self) -> None:
        self.selector.close()
        if self.pidfd >= 0:
            os.close(self.pidfd)
