"""confine: real processes under a real Landlock ruleset.

Every test that starts a process attempts the access and checks the outcome on the host;
they are skipped only where the kernel offers no Landlock.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from cargo_task import confine
from cargo_task.confine import SYSTEM_READ, SYSTEM_WRITE, Confinement, ConfinementError
from cargo_task.errors import TaskError

ABI = confine.abi_version()
needs_landlock = pytest.mark.skipif(ABI == 0, reason="this kernel offers no Landlock")
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
    assert "NoNewPrivs:\t0" in status
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


@needs_landlock
@pytest.mark.skipif(ABI < 6, reason="abstract unix socket scoping needs Landlock ABI 6")
def test_cannot_reach_abstract_unix_sockets_outside():
    name = f"\0cargo-task-confine-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(name)
        server.listen()
        code = f"""
            import socket
            own = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            own.bind({name + "-inside"!r}); own.listen()
            for target in ({name!r}, {name + "-inside"!r}):
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    s.connect(target); print("connected")
                except OSError as e:
                    print("refused", e.errno)
        """
        result = python(system(), code)
    assert result.stdout.split() == ["refused", "1", "connected"], result.stderr


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
