"""confine: real processes under a real Landlock ruleset.

Every test that starts a process attempts the access and checks the outcome on the host;
they are skipped only where the kernel offers no Landlock.
"""

from __future__ import annotations

import os
import platform
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import textwrap
import threading
from pathlib import Path

import pytest

from cargo_task import confine
from cargo_task.confine import SYSTEM_READ, SYSTEM_WRITE, Confinement, ConfinementError
from cargo_task.errors import TaskError

ABI = confine.abi_version()
needs_landlock = pytest.mark.skipif(ABI == 0, reason="this kernel offers no Landlock")
needs_filter = pytest.mark.skipif(
    ABI == 0 or not confine.socket_filter_known(), reason="no Landlock, or no seccomp filter for this machine"
)
PYTHON_READ = tuple(
    Path(p) for p in {sys.prefix, sys.base_prefix, os.path.dirname(os.path.realpath(sys.executable))}
)


def system(read=(), write=(), network=False) -> Confinement:
    return Confinement(
        tuple(Path(p) for p in (*SYSTEM_READ, *read)),
        tuple(Path(p) for p in (*SYSTEM_WRITE, *write)),
        network,
    )


def run(confinement: Confinement, argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    process = confine.spawn(confinement, argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)
    out, err = process.communicate(timeout=60)
    return subprocess.CompletedProcess(argv, process.returncode, out.decode(), err.decode())


def python(confinement: Confinement, code: str) -> subprocess.CompletedProcess:
    read = (*confinement.read, *PYTHON_READ)
    return run(confinement._replace(read=read), [sys.executable, "-I", "-S", "-c", textwrap.dedent(code)])


def unconfined(code: str) -> subprocess.CompletedProcess:
    """The same attempt without confinement: the test would notice an escape."""
    argv = [sys.executable, "-I", "-S", "-c", textwrap.dedent(code)]
    return subprocess.run(argv, capture_output=True, text=True)


@pytest.fixture
def at_abi(monkeypatch):
    """Ask only for what an older kernel's ABI knows (the real kernel, fewer rights)."""

    def set_abi(abi: int) -> None:
        monkeypatch.setattr(confine, "_abi", abi)

    return set_abi


def test_confinement_error_is_a_task_error():
    assert issubclass(ConfinementError, TaskError)


@pytest.mark.parametrize(
    "abi, fs, net, scoped",
    [
        (1, (1 << 13) - 1, 0, 0),
        (2, (1 << 14) - 1, 0, 0),
        (3, (1 << 15) - 1, 0, 0),
        (4, (1 << 15) - 1, 3, 0),
        (5, (1 << 16) - 1, 3, 0),
        (6, (1 << 16) - 1, 3, 3),
        (7, (1 << 16) - 1, 3, 3),
        (9, (1 << 16) - 1, 3, 3),  # a newer kernel: only what this module knows
    ],
)
def test_handled_rights_follow_the_abi(abi, fs, net, scoped):
    assert confine.handled_rights(abi) == (fs, net, scoped)


def test_proc_is_never_granted_as_a_whole():
    assert not any(p in ("/", "/proc") or f"/proc/{os.getpid()}".startswith(p + "/") for p in SYSTEM_READ)
    assert "/dev/tty" not in SYSTEM_WRITE


def test_without_landlock_spawn_refuses(at_abi, tmp_path):
    at_abi(0)
    with pytest.raises(ConfinementError, match="Landlock"):
        confine.spawn(system(), ["true"])


@needs_landlock
@pytest.mark.parametrize("abi", range(1, ABI + 1))
def test_reads_inside_and_not_outside_at_every_abi(at_abi, tmp_path, abi):
    at_abi(abi)
    inside, outside = tmp_path / "in", tmp_path / "out"
    inside.mkdir(), outside.mkdir()
    (inside / "f").write_text("granted")
    (outside / "f").write_text("secret")
    result = run(system(read=[inside]), ["cat", str(inside / "f")])
    assert (result.returncode, result.stdout) == (0, "granted")
    result = run(system(read=[inside]), ["cat", str(outside / "f")])
    assert result.returncode != 0 and "Permission denied" in result.stderr
    assert result.stdout == ""


@needs_landlock
def test_writes_inside_and_not_outside(tmp_path):
    writable, readable = tmp_path / "w", tmp_path / "r"
    writable.mkdir(), readable.mkdir()
    (readable / "keep").write_text("original")
    script = f"""
        echo new > {writable}/created && mkdir {writable}/d && mv {writable}/created {writable}/d/moved
        echo changed > {readable}/keep; echo planted > {readable}/new; rm -f {readable}/keep
        echo planted > {tmp_path}/beside
    """
    result = run(system(read=[readable], write=[writable]), ["sh", "-c", script])
    assert (writable / "d" / "moved").read_text() == "new\n"
    assert (readable / "keep").read_text() == "original"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r", "w"]
    assert sorted(p.name for p in readable.iterdir()) == ["keep"]
    assert result.stderr.count("Permission denied") >= 3


@needs_landlock
def test_a_single_file_gets_file_rights_only(tmp_path):
    target = tmp_path / "log"
    target.write_text("")
    script = f"echo line >> {target}; : > {target}.new; ls {tmp_path}"
    result = run(system(write=[target, tmp_path / "missing"]), ["sh", "-c", script])
    assert target.read_text() == "line\n"
    assert not (tmp_path / "log.new").exists()
    assert result.stdout == ""  # listing the directory needs a directory right


@needs_landlock
def test_the_childs_children_are_confined(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("secret")
    result = run(system(), ["sh", "-c", f"sh -c 'cat {secret}; echo x > {tmp_path}/planted'"])
    assert "secret" not in result.stdout and "Permission denied" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["secret"]


@needs_landlock
def test_the_caller_stays_unconfined(tmp_path):
    run(system(), ["true"])
    (tmp_path / "after").write_text("still writable")  # outside every rule above
    assert (tmp_path / "after").read_text() == "still writable"
    status = Path(f"/proc/self/task/{threading.get_native_id()}/status").read_text()
    assert "NoNewPrivs:\t0" in status and "Seccomp:\t0" in status
    result = run(system(), ["sh", "-c", "grep NoNewPrivs /proc/self/status; cat /proc/self/status"])
    assert result.stdout == ""  # /proc/self of a confined process is not readable either


@needs_landlock
def test_spawn_raises_what_popen_raises():
    with pytest.raises(FileNotFoundError):
        confine.spawn(system(), ["/usr/bin/no-such-program-here"])


@needs_landlock
@pytest.mark.skipif(ABI < 4, reason="TCP rules need Landlock ABI 4")
@pytest.mark.parametrize("network", [False, True])
def test_tcp_connect_needs_network(network):
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        code = f"""
            import socket
            try:
                socket.create_connection(("127.0.0.1", {port}), timeout=5).close()
                print("connected")
            except OSError as e:
                print("refused", e.errno)
        """
        result = python(system(network=network), code)
    assert result.stdout.split()[0] == ("connected" if network else "refused"), result.stderr


@needs_landlock
def test_the_tools_environment_is_not_readable(monkeypatch):
    monkeypatch.setenv("CONFINE_TEST_SECRET", "hunter2")
    sleeper = subprocess.Popen(["sleep", "30"])  # an unconfined process with the secret
    try:
        script = f"cat /proc/{os.getpid()}/environ /proc/{sleeper.pid}/environ /proc/{os.getpid()}/fd/0"
        result = run(system(), ["sh", "-c", script])
    finally:
        sleeper.kill()
        sleeper.wait()
    assert "hunter2" not in result.stdout
    assert result.stderr.count("Permission denied") == 3


@needs_landlock
@pytest.mark.skipif(ABI < 6, reason="signal scoping needs Landlock ABI 6")
def test_cannot_signal_processes_outside(tmp_path):
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        result = run(system(), ["sh", "-c", f"kill -TERM {sleeper.pid} {os.getpid()}; sleep 5 & kill $!"])
        assert sleeper.poll() is None  # still running
        assert result.stderr.count("Operation not permitted") == 2  # its own child it may kill
    finally:
        sleeper.kill()
        sleeper.wait()


CONNECT = """
    import socket
    try:
        socket.socket(socket.AF_UNIX, socket.SOCK_STREAM).connect(sys.argv[1])
        print("connected")
    except OSError as e:
        print("refused", e.errno)
"""


@needs_filter
@pytest.mark.parametrize("network", [False, True])
@pytest.mark.parametrize("kind", ["path", "abstract"])
def test_cannot_reach_unix_sockets_outside(tmp_path, network, kind):
    """A Docker or ssh-agent socket: Landlock does not cover path-bound ones, the filter
    refuses socket(AF_UNIX). Even with the socket's directory writable."""
    name = str(tmp_path / "agent.sock") if kind == "path" else f"\0cargo-task-confine-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(name)
        server.listen()
        server.setblocking(False)
        code = CONNECT.replace("sys.argv[1]", repr(name))
        confined = python(system(write=[tmp_path], network=network), code)
        assert confined.stdout.split() == ["refused", "13"], confined.stderr
        with pytest.raises(BlockingIOError):
            server.accept()  # nobody knocked
        outside = unconfined(code)
        assert outside.stdout.split() == ["connected"], outside.stderr
        server.accept()[0].close()


@needs_filter
def test_socketpairs_only_of_streams(tmp_path):
    """cargo and rustc use stream and seqpacket pairs; a datagram pair could send to any
    named datagram socket (syslog, journald)."""
    code = """
        import socket, sys
        for kind in (socket.SOCK_STREAM, socket.SOCK_SEQPACKET, socket.SOCK_DGRAM):
            try:
                a, b = socket.socketpair(socket.AF_UNIX, kind)
                a.sendall(b"x"); print(b.recv(1).decode())
            except OSError as e:
                print("refused", e.errno); continue
            try:
                a.sendto(b"escaped", sys.argv[1])
            except OSError:
                pass
    """
    log_name = str(tmp_path / "log.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as log:
        log.bind(log_name)
        log.setblocking(False)
        confined = python(system(write=[tmp_path]), code.replace("sys.argv[1]", repr(log_name)))
        assert confined.stdout.splitlines() == ["x", "x", "refused 13"], confined.stderr
        with pytest.raises(BlockingIOError):
            log.recv(100)
        unconfined(code.replace("sys.argv[1]", repr(log_name)))
        assert log.recv(100) == b"escaped"  # what an unconfined datagram pair can do


@needs_filter
@pytest.mark.parametrize("network", [False, True])
def test_udp_needs_network(network):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver:
        receiver.bind(("127.0.0.1", 0))
        receiver.setblocking(False)
        code = f"""
            import socket
            try:
                udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                udp.sendto(b"escaped", {receiver.getsockname()!r})
                print("sent")
            except OSError as e:
                print("refused", e.errno)
        """
        result = python(system(network=network), code)
        assert result.stdout.split() == (["sent"] if network else ["refused", "13"]), result.stderr
        if network:
            assert receiver.recv(100) == b"escaped"
        else:
            with pytest.raises(BlockingIOError):
                receiver.recv(100)


@needs_filter
def test_no_socket_of_any_family_without_network(at_abi):
    """Raw and packet sockets (root), vsock to a hypervisor, netlink, SCTP; and TCP even
    where Landlock has no TCP rules (before ABI 4)."""
    at_abi(1)
    with socket.create_server(("127.0.0.1", 0)) as server:
        code = f"""
            import socket
            for family, kind in ((2, 1), (10, 1), (2, 3), (17, 3), (40, 1), (16, 3), (2, 5)):
                try:
                    socket.socket(family, kind).close(); print("created")
                except OSError as e:
                    print(e.errno)
            try:
                socket.create_connection({server.getsockname()!r}, timeout=5); print("connected")
            except OSError as e:
                print(e.errno)
        """
        result = python(system(), code)
        server.setblocking(False)
        with pytest.raises(BlockingIOError):
            server.accept()
    assert result.stdout.split() == ["13"] * 8, result.stderr


@needs_filter
def test_io_uring_is_refused():
    """Its operations (IORING_OP_SOCKET, IORING_OP_CONNECT) would bypass the filter."""
    code = """
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        params = ctypes.create_string_buffer(120)
        print(libc.syscall(425, 8, params), ctypes.get_errno())  # io_uring_setup
    """
    result = python(system(network=True), code)
    assert result.stdout.split() == ["-1", "38"], result.stderr  # ENOSYS


I386_SOCKET = """
    import ctypes, mmap
    # push rbx; mov eax, 359 (i386 socket); mov ebx, AF_UNIX; mov ecx, SOCK_STREAM;
    # xor edx, edx; int 0x80; pop rbx; ret
    code = bytes.fromhex("53 b8 67 01 00 00 bb 01 00 00 00 b9 01 00 00 00 31 d2 cd 80 5b c3")
    page = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    page.write(code)
    print(ctypes.CFUNCTYPE(ctypes.c_int)(ctypes.addressof(ctypes.c_char.from_buffer(page)))(), flush=True)
"""


@needs_filter
@pytest.mark.skipif(platform.machine() != "x86_64", reason="the i386 system call ABI is x86's")
def test_the_i386_abi_kills_the_program():
    """socket(AF_UNIX) through `int 0x80` has other numbers: the filter kills the program."""
    outside = unconfined(I386_SOCKET)
    if outside.returncode != 0 or int(outside.stdout) < 0:
        pytest.skip("this kernel runs no i386 system calls")
    result = python(system(network=True), I386_SOCKET)
    assert (result.returncode, result.stdout) == (-signal.SIGSYS, ""), result.stderr


@needs_filter
def test_git_and_sh_work_confined(tmp_path):
    repo = tmp_path / "repo"
    subprocess.run(["git", "init", "--quiet", str(repo)], check=True)
    (repo / "new.txt").write_text("new\n")
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "GIT_CONFIG_NOSYSTEM": "1"}
    result = run(system(read=[repo]), ["git", "status", "--porcelain"], cwd=repo, env=env)
    assert (result.returncode, result.stdout) == (0, "?? new.txt\n"), result.stderr
    result = run(system(), ["sh", "-c", "echo $((6 * 7)) | cat; (exit 3)"])
    assert (result.returncode, result.stdout) == (3, "42\n"), result.stderr


def run_filter(program, arch: int, nr: int, *args: int) -> int:
    """Classic BPF, the few instructions the filter uses, over a seccomp_data."""
    data = struct.pack("<II8x6Q", nr & 0xFFFFFFFF, arch, *args, *[0] * (6 - len(args)))
    acc = pc = 0
    while True:
        code, jt, jf, k = program[pc]
        pc += 1
        if code == 0x20:
            acc = struct.unpack_from("<I", data, k)[0]
        elif code == 0x54:
            acc &= k
        elif code in (0x15, 0x35):
            pc += jt if (acc == k if code == 0x15 else acc >= k) else jf
        else:
            assert code == 0x06
            return k


ALLOW, EACCES, ENOSYS, EPERM, KILL = 0x7FFF0000, 0x5000D, 0x50026, 0x50001, 0x80000000
AF_UNIX, AF_INET, STREAM, DGRAM, SEQPACKET, CLOEXEC = 1, 2, 1, 2, 5, 0o2000000


@pytest.mark.parametrize("machine", sorted(confine._SOCKET_CALLS))
@pytest.mark.parametrize("network", [False, True])
def test_the_filter_for_each_machine(machine, network):
    arch, (sock, pair, uring, _, _) = confine._SOCKET_CALLS[machine]
    program = confine.socket_filter(machine, network)
    jumps = [i + 1 + jt_or_jf for i, (code, jt, jf, _) in enumerate(program) if code in (0x15, 0x35)
             for jt_or_jf in (jt, jf)]  # fmt: skip
    assert len(program) < 256 and all(0 < target < len(program) for target in jumps)
    assert program[-1][0] == 0x06  # ends in a return
    unless_network = ALLOW if network else EACCES
    cases = [
        (arch, sock, (AF_UNIX, STREAM), EACCES),
        (arch, sock, (AF_UNIX | 1 << 32, STREAM), EACCES),  # the kernel reads an int
        (arch, sock, (AF_INET, STREAM), unless_network),
        (arch, sock, (AF_INET, DGRAM | CLOEXEC), unless_network),
        (arch, sock, (40, STREAM), unless_network),  # AF_VSOCK
        (arch, pair, (AF_UNIX, STREAM | CLOEXEC), ALLOW),
        (arch, pair, (AF_UNIX, SEQPACKET), ALLOW),
        (arch, pair, (AF_UNIX, DGRAM), EACCES),
        (arch, pair, (AF_INET, STREAM), EACCES),
        (arch, uring, (8, 0), ENOSYS),
        (arch, 0x40000000 | sock, (AF_UNIX, STREAM), ENOSYS),  # x32
        (arch, -1, (), ENOSYS),
        (arch, 0, (AF_UNIX, STREAM), ALLOW),
        (arch, 1, (AF_UNIX, STREAM), ALLOW),
        (0x40000003, 102, (1, 0), KILL),  # i386 socketcall
        (arch ^ 0x80000000, sock, (AF_UNIX, STREAM), KILL),
    ]
    assert [run_filter(program, a, nr, *args) for a, nr, args, _ in cases] == [c[-1] for c in cases]


@pytest.mark.parametrize("machine", sorted(confine._SOCKET_CALLS))
def test_the_filter_refuses_metadata_changes_when_asked(machine):
    arch, (sock, *_) = confine._SOCKET_CALLS[machine]
    calls = confine._METADATA_CALLS[machine]
    for metadata, expected in ((True, ALLOW), (False, EPERM)):
        program = confine.socket_filter(machine, network=False, metadata=metadata)
        assert [run_filter(program, arch, nr, 0, 0) for nr in calls] == [expected] * len(calls)
        assert run_filter(program, arch, sock, AF_INET, STREAM) == EACCES
        assert run_filter(program, arch, 0, 0, 0) == ALLOW


def test_the_filter_is_left_out_where_it_is_not_known():
    assert confine.socket_filter_known("x86_64") == (sys.maxsize > 2**32)
    assert not confine.socket_filter_known("riscv64") and not confine.socket_filter_known("i686")


@needs_landlock
def test_a_real_cargo_build_needs_only_the_system_and_its_homes(tmp_path):
    """The toolchain's own needs: SYSTEM_READ, RUSTUP_HOME, CARGO_HOME's bin and registry,
    the project; writable only the target directory and a private TMPDIR."""
    home = Path.home()
    cargo_home = Path(os.environ.get("CARGO_HOME") or home / ".cargo")
    rustup_home = Path(os.environ.get("RUSTUP_HOME") or home / ".rustup")
    project, target, tmp = tmp_path / "p", tmp_path / "target", tmp_path / "tmp"
    (project / "src").mkdir(parents=True)
    target.mkdir(), tmp.mkdir()
    (project / "Cargo.toml").write_text('[package]\nname = "p"\nversion = "0.1.0"\nedition = "2021"\n')
    (project / "src" / "main.rs").write_text('fn main() {}\n')
    env = {
        "PATH": os.environ["PATH"], "HOME": str(tmp), "TMPDIR": str(tmp),
        "CARGO_HOME": str(cargo_home), "RUSTUP_HOME": str(rustup_home),
        "CARGO_TARGET_DIR": str(target),
    }  # fmt: skip
    confinement = system(
        read=[project, rustup_home, cargo_home / "bin", cargo_home / "registry", cargo_home / "git"],
        write=[target, tmp],
    )
    # A missing or stale Cargo.lock is written beside the manifest: not what is tested here.
    subprocess.run(["cargo", "generate-lockfile", "--offline", "--quiet"], cwd=project, env=env, check=True)
    argv = ["cargo", "build", "--offline", "--quiet", "--target", "wasm32-wasip2"]
    result = run(confinement, argv, cwd=project, env=env)
    assert result.returncode == 0, result.stderr
    assert (target / "wasm32-wasip2" / "debug" / "p.wasm").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p", "target", "tmp"]
    (tmp_path / "secret").write_text("secret")
    (project / "src" / "main.rs").write_text(f'const S: &str = include_str!("{tmp_path}/secret"); fn main() {{}}\n')
    result = run(confinement, argv, cwd=project, env=env)
    assert result.returncode != 0 and "Permission denied" in result.stderr


@needs_landlock
def test_the_child_does_not_inherit_a_blocked_sigint():
    """Host calls come from the guest's thread, which blocks SIGINT."""
    outcome = []

    def caller():
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        code = "import signal; print(sorted(signal.pthread_sigmask(signal.SIG_BLOCK, [])))"
        outcome.append(python(system(), code))

    thread = threading.Thread(target=caller)
    thread.start()
    thread.join()
    assert outcome[0].stdout.strip() == "[]", outcome[0].stderr


def capabilities(status: str) -> dict[str, int]:
    """The Cap* lines of a /proc/<pid>/status."""
    lines = (line.split(":\t") for line in status.splitlines() if line.startswith("Cap"))
    return {name: int(value, 16) for name, value in lines}


def own_capabilities() -> dict[str, int]:
    return capabilities(Path(f"/proc/self/task/{threading.get_native_id()}/status").read_text())


def test_the_last_capability_without_proc():
    assert confine._probe_last_capability() == int(Path("/proc/sys/kernel/cap_last_cap").read_text())


CAP_SETPCAP = 8
needs_root = pytest.mark.skipif(
    ABI == 0 or os.geteuid() != 0 or not own_capabilities()["CapEff"] >> CAP_SETPCAP & 1,
    reason="no Landlock, or the tests do not run as root with CAP_SETPCAP",
)
NO_CAPABILITIES = {"CapInh": 0, "CapPrm": 0, "CapEff": 0, "CapBnd": 0, "CapAmb": 0}


@needs_root
def test_a_program_started_by_root_has_no_capabilities():
    before = own_capabilities()
    sleeper = confine.spawn(system(), ["sleep", "30"])  # Popen returns once sleep is executed
    try:
        status = Path(f"/proc/{sleeper.pid}/status").read_text()
    finally:
        sleeper.kill()
        sleeper.wait()
    assert capabilities(status) == NO_CAPABILITIES
    assert "\nUid:\t0\t0\t0\t0\n" in status  # still root, without root's powers
    assert own_capabilities() == before and before["CapEff"] != 0  # the caller keeps its own
    code = "import ctypes; print(ctypes.CDLL(None).prctl(27, 0, 0, 0, 0))"  # PR_GET_SECUREBITS
    result = python(system(), code)
    assert result.stdout.split() == ["3"], result.stderr  # SECBIT_NOROOT | SECBIT_NOROOT_LOCKED


ROOT_POWERS = """
    import ctypes, os, socket, stat
    libc = ctypes.CDLL(None, use_errno=True)

    def attempt(name, action):
        try:
            if action() == -1:  # a libc call
                raise OSError(ctypes.get_errno(), name)
            print(name, "done")
        except OSError as e:
            print(name, e.errno)

    attempt("read", lambda: open("READ/locked").read())  # CAP_DAC_OVERRIDE
    attempt("chown", lambda: os.chown("WRITE/mine", 65534, 65534))  # CAP_CHOWN
    attempt("mknod", lambda: os.mknod("WRITE/null", stat.S_IFCHR | 0o666, os.makedev(1, 3)))  # CAP_MKNOD
    attempt("raw", lambda: socket.socket(socket.AF_INET, socket.SOCK_RAW, 1).close())  # CAP_NET_RAW
    attempt("unshare", lambda: libc.unshare(0x00020000))  # CLONE_NEWNS: CAP_SYS_ADMIN
    attempt("setuid", lambda: os.setuid(65534))  # CAP_SETUID
"""


@needs_root
def test_root_powers_are_gone(tmp_path):
    """Root's capabilities, attempted inside the rules (even with `network`): refused, and
    the same attempt unconfined succeeds."""
    outcomes = {}
    for kind in ("confined", "unconfined"):
        readable, writable = tmp_path / kind / "r", tmp_path / kind / "w"
        readable.mkdir(parents=True), writable.mkdir()
        (readable / "locked").write_text("secret")
        (readable / "locked").chmod(0)
        (writable / "mine").write_text("")
        code = ROOT_POWERS.replace("READ", str(readable)).replace("WRITE", str(writable))
        if kind == "confined":
            result = python(system(read=[readable], write=[writable], network=True), code)
        else:
            result = unconfined(textwrap.dedent(code))
        outcomes[kind] = dict(line.split() for line in result.stdout.splitlines())
        assert result.returncode == 0, result.stderr
    assert outcomes["unconfined"] == dict.fromkeys(outcomes["unconfined"], "done")
    assert outcomes["confined"] == {"read": "13", "chown": "1", "mknod": "1", "raw": "1", "unshare": "1",
                                    "setuid": "1"}  # fmt: skip
    mine = (tmp_path / "confined" / "w" / "mine").stat()
    assert (mine.st_uid, mine.st_gid) == (0, 0)
    assert sorted(p.name for p in (tmp_path / "confined" / "w").iterdir()) == ["mine"]


WITHOUT_SETPCAP = """
    import ctypes, os, subprocess, sys
    from pathlib import Path
    from cargo_task import confine

    confine.abi_version(), confine.last_capability()  # as the tool would have, before
    who, setuid_id = sys.argv[1:]
    if who == "nobody":  # what it reads from now on must be readable to nobody
        os.setgroups([]), os.setresgid(65534, 65534, 65534), os.setresuid(65534, 65534, 65534)
    else:  # root without CAP_SETPCAP, which the bounding set and securebits need
        class Header(ctypes.Structure):
            _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]
        data, header = (ctypes.c_uint32 * 6)(), Header(0x20080522, 0)
        libc = ctypes.CDLL(None, use_errno=True)
        assert libc.capget(ctypes.byref(header), data) == 0
        data[0] = data[1] & ~(1 << 8)  # effective: all permitted but CAP_SETPCAP
        assert libc.capset(ctypes.byref(header), data) == 0, ctypes.get_errno()
    system = confine.Confinement(tuple(map(Path, (*confine.SYSTEM_READ, Path(setuid_id).parent))),
                                 tuple(map(Path, confine.SYSTEM_WRITE)))
    sleeper = confine.spawn(system, ["sleep", "30"])
    print(Path(f"/proc/{sleeper.pid}/status").read_text())
    sleeper.kill(), sleeper.wait()
    confined = confine.spawn(system, [setuid_id, "-u"], stdout=subprocess.PIPE)
    print("setuid-root program, confined:", confined.communicate()[0].decode().strip())
    print("unconfined:", subprocess.run([setuid_id, "-u"], capture_output=True, text=True).stdout.strip())
"""


@pytest.fixture
def setuid_root_id():
    """A setuid-root copy of `id`, where any user may run it (tmp_path is root's alone)."""
    directory = Path(tempfile.mkdtemp(prefix="cargo-task-confine-"))
    try:
        directory.chmod(0o755)
        copy = directory / "id"
        shutil.copy(shutil.which("id"), copy)
        copy.chmod(0o4755)
        yield copy
    finally:
        shutil.rmtree(directory)


@needs_root
@pytest.mark.parametrize("who", ["nobody", "root-without-setpcap"])
def test_a_caller_without_cap_setpcap_still_runs_confined(setuid_root_id, who):
    """Not root: the bounding set cannot be dropped, which must not fail the run; the
    program still ends with no capability, and a setuid-root program gains nothing."""
    bounding = own_capabilities()["CapBnd"]
    env = {**os.environ, "PYTHONPATH": str(Path(confine.__file__).parents[1])}
    argv = [sys.executable, "-c", textwrap.dedent(WITHOUT_SETPCAP), who, str(setuid_root_id)]
    result = subprocess.run(argv, capture_output=True, text=True, env=env, cwd="/")
    assert result.returncode == 0, result.stderr
    assert capabilities(result.stdout) == {**NO_CAPABILITIES, "CapBnd": bounding}
    uid = "65534" if who == "nobody" else "0"
    assert f"setuid-root program, confined: {uid}\n" in result.stdout
    assert "unconfined: 0\n" in result.stdout  # what the setuid bit does without no_new_privs
