"""Host-side confinement of programs the tool starts, with Linux Landlock.

The one module that knows the kernel API: three system calls through ctypes
(`landlock_create_ruleset`, `landlock_add_rule`, `landlock_restrict_self`) and
`prctl(PR_SET_NO_NEW_PRIVS)`.

`spawn` confines the child and everything it starts, never the calling process. Landlock
and no_new_privs apply to one thread and are inherited across fork and exec, so a
short-lived thread restricts itself and then starts the program; the tool's other threads
stay as they were. Each spawn uses a fresh thread, so rulesets never stack up.

What a confined program may do:
- files: read and execute beneath `read`, everything beneath `write` (directories
  recursively; a single file gets only file rights), nothing else. Paths that do not exist
  are skipped. Open descriptors it inherits keep working (Landlock checks at open time).
- TCP: without `network`, no bind and no connect (ABI 4+). Not covered by Landlock up to
  ABI 7: UDP, and connecting to a unix socket bound to a path (a Docker or ssh-agent or
  D-Bus socket it can name is reachable).
- other processes: from ABI 6 no signals to processes outside its domain and no
  connection to abstract unix sockets created outside it. Landlock's ptrace check (any
  ABI) refuses `mem`, `fd/`, `cwd`, `exe` of outside processes, but on Linux 6.18 it lets
  `environ`, `maps` and `auxv` through: /proc must never be readable as a whole
  (SYSTEM_READ grants only a few system-wide files in it), and then Landlock's filesystem
  rules refuse every /proc/<pid>/ file, the program's own included.

Only the access rights the running ABI knows are asked for: REFER from 2, TRUNCATE from 3,
TCP from 4, IOCTL_DEV from 5, scoping from 6. When Landlock is unavailable (not Linux,
disabled, or the system call blocked) `abi_version()` is 0 and `spawn` raises: running
unconfined is the caller's decision, never a silent fallback.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from cargo_task.errors import TaskError

if TYPE_CHECKING:
    import subprocess

# What a confined toolchain program needs of the system. Found by tracing (strace) a real
# `cargo build --offline --target wasm32-wasip2` with a crates.io dependency, `cargo clippy`,
# `cargo fmt`, `rustfmt`, `git` and `sh` under these rules. /lib, /bin, ... are links to /usr
# on merged-/usr systems (a link on the way is not checked, only the file it leads to) and
# real directories elsewhere. /etc holds nothing a user cannot read anyway (ld.so.cache,
# gitconfig, resolver and certificate files). Never /proc as a whole: /proc/<pid>/environ of
# every process of the same user would be readable (Landlock's ptrace check does not stop it
# on Linux 6.18); what the toolchain tries in /proc/self (maps, cgroup, statm) it does
# without.
SYSTEM_READ: tuple[str, ...] = (
    "/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin", "/etc",
    "/dev/urandom", "/dev/random", "/dev/zero",
    "/proc/sys/vm/overcommit_memory", "/sys/kernel/mm/transparent_hugepage",  # rustc's allocator
    "/sys/devices/system/cpu",  # CPU count (glibc's get_nprocs)
)  # fmt: skip
# Not /dev/tty: output goes through the descriptors the caller passes (and the terminal
# filter), never straight to the terminal.
SYSTEM_WRITE: tuple[str, ...] = ("/dev/null",)

# include/uapi/linux/landlock.h
_CREATE_RULESET, _ADD_RULE, _RESTRICT_SELF = 444, 445, 446  # the same on every architecture
_CREATE_RULESET_VERSION = 1 << 0
_RULE_PATH_BENEATH = 1
_PR_SET_NO_NEW_PRIVS = 38
# Filesystem rights are bits 0..15; ABI 1 knows bits 0..12, ABI 2 adds REFER (13), ABI 3
# TRUNCATE (14), ABI 5 IOCTL_DEV (15).
_EXECUTE, _WRITE_FILE, _READ_FILE, _READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
_TRUNCATE, _IOCTL_DEV = 1 << 14, 1 << 15
_FS_BY_ABI = {1: (1 << 13) - 1, 2: (1 << 14) - 1, 3: (1 << 15) - 1, 5: (1 << 16) - 1}
_FILE_RIGHTS = _EXECUTE | _WRITE_FILE | _READ_FILE | _TRUNCATE | _IOCTL_DEV  # valid on a file
_READ_RIGHTS = _EXECUTE | _READ_FILE | _READ_DIR
_BIND_TCP, _CONNECT_TCP = 1 << 0, 1 << 1  # ABI 4
_SCOPE_ABSTRACT_UNIX_SOCKET, _SCOPE_SIGNAL = 1 << 0, 1 << 1  # ABI 6

_abi: int | None = None
_libc = None


class ConfinementError(TaskError):
    """A program could not be confined as asked."""


class Confinement(NamedTuple):
    read: tuple[Path, ...]  # read + execute (directories recursively, or single files)
    write: tuple[Path, ...]  # full access (directories recursively, or single files)
    network: bool = False  # False: no TCP connect or bind (ABI 4+)


def abi_version() -> int:
    """The Landlock ABI the kernel offers; 0 when Landlock cannot be used. Asked once."""
    global _abi
    if _abi is None:
        _abi = 0
        if sys.platform.startswith("linux"):
            import ctypes

            flags = ctypes.c_uint32(_CREATE_RULESET_VERSION)
            _abi = max(_syscall(_CREATE_RULESET, None, ctypes.c_size_t(0), flags), 0)
    return _abi


def available() -> bool:
    return abi_version() > 0


def _lib():
    global _libc
    if _libc is None:
        import ctypes

        _libc = ctypes.CDLL(None, use_errno=True)
        _libc.syscall.restype = ctypes.c_long
        _libc.prctl.restype = ctypes.c_int
    return _libc


def _syscall(number: int, *args) -> int:
    """The system call's result, or -errno."""
    import ctypes

    result = _lib().syscall(ctypes.c_long(number), *args)
    return result if result >= 0 else -ctypes.get_errno()


def _fail(what: str, errno: int) -> ConfinementError:
    return ConfinementError(
        f"could not confine a program with Landlock: {what}: {os.strerror(errno)}",
        help="cargo-task starts host programs only inside a Landlock sandbox",
    )


def handled_rights(abi: int) -> tuple[int, int, int]:
    """(filesystem, network, scope) rights a ruleset handles under `abi`."""
    fs = _FS_BY_ABI[max(v for v in _FS_BY_ABI if v <= abi)]
    net = _BIND_TCP | _CONNECT_TCP if abi >= 4 else 0
    scoped = _SCOPE_ABSTRACT_UNIX_SOCKET | _SCOPE_SIGNAL if abi >= 6 else 0
    return fs, net, scoped


def _ruleset(confinement: Confinement, abi: int) -> int:
    """A ruleset descriptor for `confinement`; the caller closes it."""
    import ctypes

    class RulesetAttr(ctypes.Structure):
        _fields_ = [("fs", ctypes.c_uint64), ("net", ctypes.c_uint64), ("scoped", ctypes.c_uint64)]

    class PathBeneath(ctypes.Structure):
        _pack_ = 1
        _fields_ = [("allowed", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]

    fs, net, scoped = handled_rights(abi)
    if confinement.network:
        net = 0  # not handled: TCP as usual
    attr = RulesetAttr(fs, net, scoped)
    # Before ABI 6 the structure has no `scoped` field; its size tells the kernel which.
    size = ctypes.sizeof(attr) if abi >= 6 else RulesetAttr.scoped.offset
    fd = _syscall(_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))
    if fd < 0:
        raise _fail("landlock_create_ruleset", -fd)
    try:
        rules = [(p, _READ_RIGHTS) for p in confinement.read]
        rules += [(p, fs) for p in confinement.write]
        for path, rights in rules:
            try:
                target = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except (FileNotFoundError, NotADirectoryError):
                continue  # nothing there to grant
            except OSError as e:
                raise _fail(f"opening `{path}`", e.errno or 0) from None
            try:
                if not _is_dir(target):
                    rights &= _FILE_RIGHTS
                beneath = PathBeneath(rights & fs, target)
                result = _syscall(_ADD_RULE, ctypes.c_int(fd), ctypes.c_int(_RULE_PATH_BENEATH),
                                  ctypes.byref(beneath), ctypes.c_uint32(0))  # fmt: skip
                if result < 0:
                    raise _fail(f"a rule for `{path}`", -result)
            finally:
                os.close(target)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _is_dir(fd: int) -> bool:
    import stat

    return stat.S_ISDIR(os.fstat(fd).st_mode)


def _restrict_current_thread(ruleset: int) -> None:
    import ctypes

    if _lib().prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise _fail("prctl(PR_SET_NO_NEW_PRIVS)", ctypes.get_errno())
    result = _syscall(_RESTRICT_SELF, ctypes.c_int(ruleset), ctypes.c_uint32(0))
    if result < 0:
        raise _fail("landlock_restrict_self", -result)


def spawn(confinement: Confinement, argv: list[str], **popen_kwargs) -> subprocess.Popen:
    """`subprocess.Popen(argv, **popen_kwargs)`, confined as `confinement` says; the calling
    process stays unconfined. Raises ConfinementError when Landlock is unavailable or the
    rules cannot be built, and whatever Popen raises (FileNotFoundError, ...)."""
    import signal
    import subprocess
    import threading

    abi = abi_version()
    if abi == 0:
        raise ConfinementError(
            "this system offers no Landlock, which cargo-task needs to confine host programs",
            help="Landlock needs Linux 5.13 or later with `landlock` in the `lsm=` boot list",
        )
    ruleset = _ruleset(confinement, abi)
    outcome: list = []

    def confined() -> None:
        try:
            # The child inherits this thread's signal mask (a caller may block SIGINT).
            signal.pthread_sigmask(signal.SIG_SETMASK, ())
            _restrict_current_thread(ruleset)
            outcome.append(subprocess.Popen(argv, **popen_kwargs))
        except BaseException as e:  # raised again on the calling thread
            outcome.append(e)

    try:
        # The thread ends right after Popen returns, taking its restrictions with it.
        thread = threading.Thread(target=confined, name="confined-spawn", daemon=True)
        thread.start()
        try:
            thread.join()
        except BaseException:  # Ctrl-C in the caller: never leave a child nobody holds
            thread.join()
            if outcome and not isinstance(outcome[0], BaseException):
                outcome[0].kill()
                outcome[0].wait()
            raise
    finally:
        os.close(ruleset)
    if isinstance(outcome[0], BaseException):
        raise outcome[0]
    return outcome[0]
