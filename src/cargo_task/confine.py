"""Host-side confinement of programs the tool starts: Linux Landlock plus a small seccomp filter.

The one module that knows the kernel API: three Landlock system calls through ctypes
(`landlock_create_ruleset`, `landlock_add_rule`, `landlock_restrict_self`), `prctl`
(no_new_privs, seccomp, the bounding and ambient capability sets, securebits) and `capset`.

`spawn` confines the child and everything it starts, never the calling process. Landlock,
no_new_privs and seccomp filters apply to one thread and are inherited across fork and
exec, so a short-lived thread restricts itself and then starts the program; the tool's
other threads stay as they were. Each spawn uses a fresh thread, so nothing stacks up.
Capabilities are per thread too: that thread gives up all of its own before it starts the
program (fork and exec need none), and the tool keeps its own.

What a confined program may do:
- files (Landlock): read and execute beneath `read`, everything beneath `write`
  (directories recursively; a single file gets only file rights), nothing else. Paths
  that do not exist are skipped. Open descriptors it inherits keep working (Landlock
  checks at open time).
- TCP (Landlock): without `network`, no bind and no connect (ABI 4+).
- sockets (seccomp): never `socket(AF_UNIX)`, so no unix socket bound to a path (Docker,
  ssh-agent, D-Bus, ...), which Landlock up to ABI 7 does not cover, and no abstract one
  at any ABI. `socketpair(AF_UNIX)` only for SOCK_STREAM and SOCK_SEQPACKET (cargo and
  rustc use them; the pair is connected to itself); a datagram pair is refused, since it
  could send to any named datagram socket. Without `network`, `socket()` is refused for
  every family: no UDP (DNS included), raw or packet sockets, vsock to a hypervisor,
  netlink, SCTP or MPTCP, and no TCP even where Landlock is older than ABI 4. With
  `network`, every family but AF_UNIX. io_uring is refused (ENOSYS, as on a kernel
  without it): its operations create and connect sockets without system calls a filter
  sees. Refusals fail with EACCES. System calls of another ABI (i386 through `int 0x80`)
  kill the program (a 32-bit program cannot run confined); x32 numbers get ENOSYS.
  The filter knows x86_64 and aarch64 (`_SOCKET_CALLS`); on another architecture, or
  under a 32-bit Python, it is left out rather than guessed (`socket_filter_known()` says
  which): there only Landlock applies.
- file metadata (seccomp): Landlock does not govern modes, owners or extended attributes,
  so with `metadata=False` (granted programs other than cargo, whose linkers set modes on
  what they build) chmod, chown and xattr changes fail with EPERM on every file. Times
  (utimensat) stay allowed: `touch` and archivers set them on what they create.
- other processes (Landlock): from ABI 6 no signals to processes outside its domain.
  Landlock's ptrace check (any ABI) refuses `mem`, `fd/`, `cwd`, `exe` of outside
  processes, but on Linux 6.18 it lets `environ`, `maps` and `auxv` through: /proc must
  never be readable as a whole (SYSTEM_READ grants only a few system-wide files in it),
  and then Landlock's filesystem rules refuse every /proc/<pid>/ file, the program's own
  included.
- capabilities: none. Started by root, the program has empty effective, permitted,
  inheritable, ambient and bounding sets, and SECBIT_NOROOT (locked): nothing it executes
  regains any, a setuid-root or file-capability program included (no_new_privs already
  ignores those bits; an empty bounding set and NOROOT would refuse them anyway). So root's
  file permission overrides are gone too (CAP_DAC_OVERRIDE, CAP_FOWNER, CAP_CHOWN,
  CAP_MKNOD): a confined root program reads and writes only what its owner and mode bits
  allow it, and within its rules. Started by a user without CAP_SETPCAP, the bounding set
  and securebits cannot change and stay as they are; its other sets are emptied and
  no_new_privs keeps an exec from adding to them, which is all a non-root user has.
What remains: descriptors the program inherits (the tool passes only its pipes), and the
powers its user id keeps without capabilities (root still owns root's files).

Only the access rights the running ABI knows are asked for: REFER from 2, TRUNCATE from 3,
TCP from 4, IOCTL_DEV from 5, scoping from 6. When Landlock is unavailable (not Linux,
disabled, or the system call blocked) `abi_version()` is 0 and `spawn` raises: running
unconfined is the caller's decision, never a silent fallback. A kernel that refuses the
seccomp filter makes `spawn` raise too.
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

# The seccomp filter. Per machine (`platform.machine()`, the same as `os.uname().machine`):
# the audit architecture the filter insists on (include/uapi/linux/audit.h) and the numbers
# of socket, socketpair, io_uring_setup, io_uring_enter, io_uring_register. Neither has
# socketcall(2), so these are the only ways to create a socket.
_SOCKET_CALLS: dict[str, tuple[int, tuple[int, int, int, int, int]]] = {
    "x86_64": (0xC000003E, (41, 53, 425, 426, 427)),  # arch/x86/entry/syscalls/syscall_64.tbl
    "aarch64": (0xC00000B7, (198, 199, 425, 426, 427)),  # include/uapi/asm-generic/unistd.h
}
# Landlock does not govern a file's metadata: with `metadata=False` the filter refuses
# (EPERM) changing a mode, an owner or an extended attribute, of any file. Per machine:
# chmod, fchmod, fchmodat, fchmodat2, chown, fchown, lchown, fchownat, setxattr, lsetxattr,
# fsetxattr, removexattr, lremovexattr, fremovexattr, setxattrat, removexattrat.
_METADATA_CALLS: dict[str, tuple[int, ...]] = {
    "x86_64": (90, 91, 268, 452, 92, 93, 94, 260, 188, 189, 190, 197, 198, 199, 463, 466),
    "aarch64": (52, 53, 452, 54, 55, 5, 6, 7, 14, 15, 16, 463, 466),  # no chmod, chown, lchown
}
_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER = 22, 2
_RET_ALLOW, _RET_ERRNO, _RET_KILL_PROCESS = 0x7FFF0000, 0x00050000, 0x80000000
_LD_W_ABS, _JEQ, _JGE, _AND, _RET = 0x20, 0x15, 0x35, 0x54, 0x06  # classic BPF opcodes
_ARCH, _NR, _ARG0, _ARG1 = 4, 0, 16, 24  # offsets in seccomp_data (low halves, little-endian)
_X32_SYSCALL_BIT = 0x40000000
_AF_UNIX, _SOCK_STREAM, _SOCK_SEQPACKET, _SOCK_TYPE_MASK = 1, 1, 5, 0xF
_EACCES, _ENOSYS = 13, 38
# Capabilities (include/uapi/linux/prctl.h, securebits.h, capability.h).
_PR_CAPBSET_READ, _PR_CAPBSET_DROP = 23, 24
_PR_GET_SECUREBITS, _PR_SET_SECUREBITS = 27, 28
_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL = 47, 4
_SECBIT_NOROOT, _SECBIT_NOROOT_LOCKED = 1 << 0, 1 << 1
_CAPABILITY_VERSION_3 = 0x20080522  # two 32-bit words per set
_EPERM = 1

_abi: int | None = None
_last_cap: int | None = None
_libc = None


class ConfinementError(TaskError):
    """A program could not be confined as asked."""


class Confinement(NamedTuple):
    read: tuple[Path, ...]  # read + execute (directories recursively, or single files)
    write: tuple[Path, ...]  # full access (directories recursively, or single files)
    network: bool = False  # False: no socket of any family (seccomp), no TCP (Landlock ABI 4+)
    metadata: bool = True  # False: no chmod, chown or xattr change on any file (seccomp)


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
        f"could not confine a program: {what}: {os.strerror(errno)}",
        help="cargo-task starts host programs only inside a Landlock sandbox with a seccomp filter",
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


def socket_filter_known(machine: str | None = None) -> bool:
    """Whether `spawn` adds the seccomp filter here: a 64-bit Python on a machine in
    `_SOCKET_CALLS` (a 32-bit userland on a 64-bit kernel would be killed by it)."""
    return (machine or os.uname().machine) in _SOCKET_CALLS and sys.maxsize > 2**32


def socket_filter(machine: str, network: bool, metadata: bool = True) -> list[tuple[int, int, int, int]]:
    """The seccomp program (code, jt, jf, k) for `machine`, as the module docstring says."""
    arch, (socket, socketpair, *io_uring) = _SOCKET_CALLS[machine]
    refused = () if metadata else _METADATA_CALLS[machine]
    on_socket = [] if not network else [  # every family but AF_UNIX
        ("socket", _LD_W_ABS, 0, 0, _ARG0), (_JEQ, "deny", "allow", _AF_UNIX),
    ]  # fmt: skip
    program = [
        (_LD_W_ABS, 0, 0, _ARCH), (_JEQ, 0, "kill", arch),
        (_LD_W_ABS, 0, 0, _NR), (_JGE, "enosys", 0, _X32_SYSCALL_BIT),
        (_JEQ, "socket" if network else "deny", 0, socket),
        (_JEQ, "socketpair", 0, socketpair),
        *((_JEQ, "enosys", 0, nr) for nr in io_uring),
        *((_JEQ, "eperm", 0, nr) for nr in refused),
        (_RET, 0, 0, _RET_ALLOW),
        *on_socket,
        ("socketpair", _LD_W_ABS, 0, 0, _ARG0), (_JEQ, 0, "deny", _AF_UNIX),
        (_LD_W_ABS, 0, 0, _ARG1), (_AND, 0, 0, _SOCK_TYPE_MASK),
        (_JEQ, "allow", 0, _SOCK_STREAM), (_JEQ, "allow", "deny", _SOCK_SEQPACKET),
        ("allow", _RET, 0, 0, _RET_ALLOW),
        ("deny", _RET, 0, 0, _RET_ERRNO | _EACCES),
        ("enosys", _RET, 0, 0, _RET_ERRNO | _ENOSYS),
        ("eperm", _RET, 0, 0, _RET_ERRNO | _EPERM),
        ("kill", _RET, 0, 0, _RET_KILL_PROCESS),
    ]
    # A leading string labels an instruction; a jump to a label becomes a forward offset.
    labels = {ins[0]: i for i, ins in enumerate(program) if isinstance(ins[0], str)}
    program = [ins[1:] if isinstance(ins[0], str) else ins for ins in program]
    return [
        (code, *(labels[j] - i - 1 if isinstance(j, str) else j for j in (jt, jf)), k)
        for i, (code, jt, jf, k) in enumerate(program)
    ]


def _install_socket_filter(network: bool, metadata: bool) -> None:
    """Add the seccomp filter to the current thread (no_new_privs must be set)."""
    import ctypes

    if not socket_filter_known():
        return  # documented: only Landlock there

    class SockFilter(ctypes.Structure):
        _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8),
                    ("k", ctypes.c_uint32)]  # fmt: skip

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(SockFilter))]

    program = socket_filter(os.uname().machine, network, metadata)
    filters = (SockFilter * len(program))(*program)
    fprog = SockFprog(len(program), filters)
    mode, zero = ctypes.c_ulong(_SECCOMP_MODE_FILTER), ctypes.c_ulong(0)
    if _lib().prctl(_PR_SET_SECCOMP, mode, ctypes.byref(fprog), zero, zero) != 0:
        raise _fail("prctl(PR_SET_SECCOMP)", ctypes.get_errno())


def _is_dir(fd: int) -> bool:
    import stat

    return stat.S_ISDIR(os.fstat(fd).st_mode)


def last_capability() -> int:
    """The highest capability number the kernel knows. Asked once, and before a thread
    confines itself: Landlock then refuses /proc."""
    global _last_cap
    if _last_cap is None:
        try:
            _last_cap = int(Path("/proc/sys/kernel/cap_last_cap").read_text())
        except (OSError, ValueError):  # no /proc mounted
            _last_cap = _probe_last_capability()
    return _last_cap


def _probe_last_capability() -> int:
    """PR_CAPBSET_READ refuses (EINVAL) numbers the kernel does not know."""
    return next(cap for cap in range(64) if cap == 63 or _prctl(_PR_CAPBSET_READ, cap + 1) < 0)


def _prctl(option: int, *args: int) -> int:
    """prctl's result, or -errno. Every argument a full unsigned long: some options refuse
    anything but zero in the unused ones."""
    import ctypes

    args = (*args, 0, 0, 0, 0)[:4]
    result = _lib().prctl(ctypes.c_int(option), *map(ctypes.c_ulong, args))
    return result if result >= 0 else -ctypes.get_errno()


def _drop_capabilities(last_cap: int) -> None:
    """Give up every capability, for this thread and whatever it executes. The bounding set
    and securebits need CAP_SETPCAP; without it they stay as they are, and the emptied
    permitted set plus no_new_privs keep an exec from gaining anything."""
    import ctypes

    for cap in range(last_cap + 1):
        result = _prctl(_PR_CAPBSET_DROP, cap)
        if result == -_EPERM:
            break  # no CAP_SETPCAP (not root): the bounding set stays, see above
        if result < 0:
            raise _fail(f"prctl(PR_CAPBSET_DROP, {cap})", -result)
    else:  # no root fixup on exec; refused (EPERM) only if the caller locked it off
        bits = _prctl(_PR_GET_SECUREBITS)
        if bits >= 0:
            _prctl(_PR_SET_SECUREBITS, bits | _SECBIT_NOROOT | _SECBIT_NOROOT_LOCKED)
    result = _prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL)
    if result < 0:
        raise _fail("prctl(PR_CAP_AMBIENT_CLEAR_ALL)", -result)

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                    ("inheritable", ctypes.c_uint32)]  # fmt: skip

    # All zero: dropping needs no capability. pid 0 is this thread alone.
    if _lib().capset(ctypes.byref(Header(_CAPABILITY_VERSION_3, 0)), (Data * 2)()) != 0:
        raise _fail("capset", ctypes.get_errno())


def _restrict_current_thread(ruleset: int, confinement: Confinement, last_cap: int) -> None:
    import ctypes

    if _lib().prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise _fail("prctl(PR_SET_NO_NEW_PRIVS)", ctypes.get_errno())
    result = _syscall(_RESTRICT_SELF, ctypes.c_int(ruleset), ctypes.c_uint32(0))
    if result < 0:
        raise _fail("landlock_restrict_self", -result)
    _install_socket_filter(confinement.network, confinement.metadata)
    _drop_capabilities(last_cap)


def spawn(confinement: Confinement, argv: list[str], **popen_kwargs) -> subprocess.Popen:
    """`subprocess.Popen(argv, **popen_kwargs)`, confined as `confinement` says; the calling
    process stays unconfined. Raises ConfinementError when Landlock is unavailable or the
    rules cannot be built, and whatever Popen raises (FileNotFoundError, ...). Popen's
    `user`, `group` and `extra_groups` cannot work: the child has no capability to switch."""
    abi = abi_version()
    if abi == 0:
        raise ConfinementError(
            "this system offers no Landlock, which cargo-task needs to confine host programs",
            help="Landlock needs Linux 5.13 or later with `landlock` in the `lsm=` boot list",
        )
    last_cap = last_capability()
    ruleset = _ruleset(confinement, abi)
    try:
        return start_on_fresh_thread(
            argv, popen_kwargs, lambda: _restrict_current_thread(ruleset, confinement, last_cap)
        )
    finally:
        os.close(ruleset)


def start_on_fresh_thread(argv: list[str], popen_kwargs: dict, prepare=None) -> subprocess.Popen:
    """Popen from a short-lived thread with no blocked signals (a child inherits its
    starter's mask, and the caller may block SIGINT), after `prepare()` on that thread: the
    restrictions it applies end with the thread. Unconfined when `prepare` is None."""
    import signal
    import subprocess
    import threading

    outcome: list = []

    def start() -> None:
        try:
            signal.pthread_sigmask(signal.SIG_SETMASK, ())
            if prepare is not None:
                prepare()
            outcome.append(subprocess.Popen(argv, **popen_kwargs))
        except BaseException as e:  # raised again on the calling thread
            outcome.append(e)

    thread = threading.Thread(target=start, name="program-start", daemon=True)
    thread.start()
    try:
        thread.join()
    except BaseException:  # Ctrl-C in the caller: never leave a child nobody holds
        thread.join()
        if outcome and not isinstance(outcome[0], BaseException):
            outcome[0].kill()
            outcome[0].wait()
        raise
    if isinstance(outcome[0], BaseException):
        raise outcome[0]
    return outcome[0]
