"""hostcalls: granted host programs, run for real under a real Landlock confinement.

Each escape test attempts the access from a granted program and checks the host afterwards.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from cargo_task import confine, hostcalls
from cargo_task.grants import Grants, Mount
from cargo_task.hostcalls import CommandOutput, CommandRefused, CommandRequest, HostCalls

TABLE = "[package.metadata.tasks.codegen]"
needs_landlock = pytest.mark.skipif(confine.abi_version() == 0, reason="this kernel offers no Landlock")
pytestmark = needs_landlock


def words(*entries: str) -> tuple[tuple[str, ...], ...]:
    return tuple(tuple(e.split()) for e in entries)


def request(program: str, *args: str, cwd: str | None = None, env=(), inherit: bool = False) -> CommandRequest:
    return CommandRequest(program, tuple(args), cwd, tuple(env), inherit)


@pytest.fixture
def project(tmp_path):
    """A project root (a git repository with one commit) with a writable `out` directory, and
    a fake user home beside it."""
    root = tmp_path / "project"
    (root / "src").mkdir(parents=True)
    (root / "out").mkdir()
    (root / "Cargo.toml").write_text('[package]\nname = "p"\nversion = "0.1.0"\nedition = "2021"\n')
    (root / "src" / "main.rs").write_text("fn main() {}\n")
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "secret").write_text("hunter2")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    for argv in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "first"], ["tag", "v1.0"]):
        subprocess.run(git + argv, cwd=root, check=True, env={**os.environ, "HOME": str(tmp_path / "home")})
    return root


def environ(project: Path, **extra: str) -> dict[str, str]:
    home = project.parent / "home"
    real_home = os.path.expanduser("~")
    return {
        "PATH": os.environ["PATH"], "HOME": str(home), "LANG": "C.UTF-8",
        "CARGO_HOME": os.environ.get("CARGO_HOME") or os.path.join(real_home, ".cargo"),
        "RUSTUP_HOME": os.environ.get("RUSTUP_HOME") or os.path.join(real_home, ".rustup"),
        "UNRELATED_SECRET": "leak", **extra,
    }  # fmt: skip


def grants(project: Path, *commands: str, network=False, env=(), unconfined=False) -> Grants:
    return Grants(
        argv=("codegen",), env=tuple(env),
        mounts=(Mount(project, "/", False), Mount(project / "out", "out", True)),
        tmp=False, network=network, stdin=False, timeout=None, memory=1 << 30,
        writes_protected=(), commands=words(*commands), allow_unconfined_commands=unconfined,
    )  # fmt: skip


@pytest.fixture
def make(project):
    made: list[HostCalls] = []

    def make(*commands: str, deadline=None, scratch=None, stdout_fd=1, stderr_fd=2, target=None, **kw):
        calls = HostCalls("codegen", TABLE, grants(project, *commands, **kw), environ(project),
                          scratch, deadline, stdout_fd, stderr_fd, cargo_target_dir=target)  # fmt: skip
        made.append(calls)
        return calls

    yield make
    for calls in made:
        calls.stop_all()


def ok(result) -> CommandOutput:
    assert isinstance(result, CommandOutput), result
    return result


def test_granted_git_runs_in_the_project(make, project):
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=project, capture_output=True, text=True).stdout
    calls = make("git rev-parse", "git describe")
    assert ok(calls.run(request("git", "rev-parse", "HEAD"))) == CommandOutput(0, head.encode(), b"")
    assert ok(calls.run(request("git", "describe", "--tags"))).stdout == b"v1.0\n"
    failed = ok(calls.run(request("git", "rev-parse", "no-such-ref", "--")))
    assert failed.code == 128 and b"no-such-ref" in failed.stderr


def test_real_exit_codes_and_output(make):
    calls = make("sh", "printf")
    assert ok(calls.run(request("printf", "%s-%s", "a", "b"))) == CommandOutput(0, b"a-b", b"")
    result = ok(calls.run(request("sh", "-c", "echo out; echo err >&2; exit 3")))
    assert result == CommandOutput(3, b"out\n", b"err\n")
    assert ok(calls.run(request("sh", "-c", "kill -KILL $$"))).code is None  # ended by a signal


@pytest.mark.parametrize(
    "commands, program, args, wanted",
    [
        ((), "ls", ("-l",), 'add `commands = ["ls"]` to [package.metadata.tasks.codegen]'),
        (("git rev-parse",), "git", ("log", "-1"), 'add "git log" to `commands` in [package.metadata.tasks.codegen]'),
        (("git rev-parse",), "git", ("-c", "core.pager=x", "rev-parse"), "`git rev-parse`, whose words must come first; an option"),
        (("cargo fmt",), "cargo", ("+nightly", "fmt"), "`cargo fmt`, whose words must come first; an option"),
        (("cargo fmt",), "cargo", ("--config", "x", "fmt"), "`cargo fmt`, whose words must come first; an option"),
        (("git rev-parse",), "git", (), 'add "git" to `commands`'),
        (("rustfmt",), "rustfmt-nightly", ("src/main.rs",), 'add "rustfmt-nightly" to `commands`'),
    ],
)
def test_what_is_not_granted_is_refused_naming_the_grant(make, commands, program, args, wanted):
    result = make(*commands).run(request(program, *args))
    assert isinstance(result, CommandRefused) and result.kind == "permission-denied"
    assert wanted in result.message and "task `codegen`" in result.message


@pytest.mark.parametrize("name", ["GIT_CONFIG_COUNT", "CARGO_BUILD_RUSTC_WRAPPER", "RUSTUP_TOOLCHAIN",
                                  "LD_PRELOAD", "PATH", "HOME", "RUSTFLAGS", "XDG_CONFIG_HOME"])  # fmt: skip
def test_the_request_cannot_set_what_steers_a_program(make, name):
    result = make("git rev-parse").run(request("git", "rev-parse", "HEAD", env=[(name, "x")]))
    assert result.kind == "permission-denied" and f"`{name}`" in result.message


@pytest.mark.parametrize(
    "program, args, cwd, kind",
    [
        ("/bin/sh", ("-c", "true"), None, "invalid-input"),
        ("sh", ("-c", "true\0"), None, "invalid-input"),
        ("sh", ("-c", "true"), "/..", "permission-denied"),
        ("sh", ("-c", "true"), "../home", "permission-denied"),
        ("sh", ("-c", "true"), "out/../../home", "permission-denied"),
        ("sh", ("-c", "true"), "missing", "not-found"),
        ("no-such-program-anywhere", (), None, "not-found"),
    ],
)
def test_bad_requests_are_refused(make, program, args, cwd, kind):
    result = make("sh", "no-such-program-anywhere").run(request(program, *args, cwd=cwd))
    assert isinstance(result, CommandRefused) and result.kind == kind, result


def test_working_directory_is_mapped_through_the_mounts(make, project):
    (project / "out" / "sub").mkdir()
    calls = make("pwd")
    for cwd, host in [(None, project), ("/", project), ("src", project / "src"), ("/out", project / "out"),
                      ("out/sub/..", project / "out"), ("./out/sub", project / "out" / "sub")]:  # fmt: skip
        assert ok(calls.run(request("pwd", cwd=cwd))).stdout.decode().strip() == str(host)


def test_working_directory_through_a_link_out_is_refused(make, project):
    (project / "out" / "away").symlink_to(project.parent / "home")
    result = make("pwd").run(request("pwd", cwd="out/away"))
    assert result.kind == "permission-denied" and "symbolic link" in result.message


def test_a_granted_shell_cannot_write_outside_the_writable_mounts(make, project):
    outside = project.parent
    before = sorted(p.name for p in outside.iterdir())
    script = f"echo x > {project}/planted; echo x > {outside}/planted; echo x > src/planted; echo ok > out/inside"
    result = ok(make("sh").run(request("sh", "-c", script)))
    assert result.stderr.count(b"Permission denied") == 3
    assert (project / "out" / "inside").read_text() == "ok\n"
    assert not (project / "planted").exists() and not (project / "src" / "planted").exists()
    assert sorted(p.name for p in outside.iterdir()) == before


def test_a_granted_shell_cannot_read_the_users_home(make, project):
    secret = project.parent / "home" / "secret"
    result = ok(make("sh").run(request("sh", "-c", f'cat {secret}; cat "$HOME/secret"; ls {secret.parent}')))
    assert b"hunter2" not in result.stdout and b"secret" not in result.stdout
    assert result.code != 0


@pytest.mark.skipif(confine.abi_version() < 4 or not shutil.which("bash"), reason="needs ABI 4 and bash")
@pytest.mark.parametrize("network", [False, True])
def test_tcp_needs_the_network_grant(make, network):
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        script = f"exec 3<>/dev/tcp/127.0.0.1/{port} && echo connected"
        result = ok(make("bash", network=network).run(request("bash", "-c", script)))
    assert (result.stdout == b"connected\n") is network, result


def test_the_environment_is_only_what_the_rules_say(make, project):
    calls = make("env", env=[("MODE", "ci")])
    result = ok(calls.run(request("env", env=[("EXTRA", "1")])))
    env = dict(line.split("=", 1) for line in result.stdout.decode().splitlines())
    assert "UNRELATED_SECRET" not in env and "leak" not in result.stdout.decode()
    assert (env["MODE"], env["EXTRA"], env["LANG"]) == ("ci", "1", "C.UTF-8")
    assert env["HOME"] == env["TMPDIR"] and not env["HOME"].startswith(str(project.parent))
    assert env["HOME"] != os.path.expanduser("~")
    assert set(env) == {"PATH", "HOME", "TMPDIR", "CARGO_HOME", "RUSTUP_HOME", "LANG", "MODE", "EXTRA"}


def test_the_private_home_goes_with_stop_all(make):
    calls = make("sh")
    home = ok(calls.run(request("sh", "-c", 'echo x > "$HOME/cache"; printf %s "$HOME"'))).stdout.decode()
    assert Path(home, "cache").is_file()
    calls.stop_all()
    calls.stop_all()  # idempotent
    assert not Path(home).exists()
    assert calls.run(request("sh", "-c", "true")).kind == "other"


def _gone(pid: int) -> bool:
    """Not running: reaped, or a zombie waiting for init."""
    for _ in range(200):
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.05)
    return False


def test_the_deadline_kills_the_program_and_what_it_started(make, project):
    calls = make("sh", deadline=time.monotonic() + 0.5)
    script = "sleep 100 & echo $! > out/pids; echo $$ >> out/pids; wait"
    result = calls.run(request("sh", "-c", script, inherit=True))
    assert isinstance(result, CommandRefused) and result.kind == "timed-out"
    pids = [int(p) for p in (project / "out" / "pids").read_text().split()]
    assert len(pids) == 2 and all(_gone(pid) for pid in pids)
    assert make("sh", deadline=time.monotonic() - 1).run(request("sh", "-c", "true")).kind == "timed-out"


def test_leftovers_are_killed_when_the_program_ends(make, project):
    script = "sleep 100 > /dev/null 2>&1 & echo $! > out/pid"
    assert ok(make("sh").run(request("sh", "-c", script))).code == 0
    assert _gone(int((project / "out" / "pid").read_text()))


def test_stop_all_kills_a_running_program(make, project):
    calls = make("sh")
    results = []
    worker = threading.Thread(target=lambda: results.append(calls.run(request("sh", "-c", "echo $$ > out/pid; exec sleep 100"))))
    worker.start()
    pid_file = project / "out" / "pid"
    while worker.is_alive() and not pid_file.exists() or pid_file.exists() and not pid_file.read_text():
        time.sleep(0.02)
    calls.stop_all()
    worker.join()
    assert results[0].kind == "other" and "stopped" in results[0].message
    assert _gone(int(pid_file.read_text()))


def test_inherited_output_goes_to_the_given_descriptors(make):
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    try:
        calls = make("sh", stdout_fd=out_w, stderr_fd=err_w)
        assert ok(calls.run(request("sh", "-c", "echo to-out; echo to-err >&2", inherit=True))) == CommandOutput(0, b"", b"")
    finally:
        os.close(out_w), os.close(err_w)
    with os.fdopen(out_r, "rb") as out, os.fdopen(err_r, "rb") as err:
        assert (out.read(), err.read()) == (b"to-out\n", b"to-err\n")


def test_captured_output_is_bounded(make, monkeypatch):
    monkeypatch.setattr(hostcalls, "OUTPUT_LIMIT", 1 << 20)
    result = ok(make("head").run(request("head", "-c", "3000000", "/dev/zero")))
    assert result.code == 0 and len(result.stdout) == 1 << 20
    assert b"stdout cut at 1 MiB" in result.stderr


def test_rustfmt_formats_a_writable_file_and_not_a_read_only_one(make, project):
    messy = "fn  main( ){let x=1;}\n"
    (project / "out" / "lib.rs").write_text(messy)
    (project / "src" / "messy.rs").write_text(messy)
    calls = make("rustfmt")
    assert ok(calls.run(request("rustfmt", "--edition", "2021", "lib.rs", cwd="out"))).code == 0
    assert (project / "out" / "lib.rs").read_text() == "fn main() {\n    let x = 1;\n}\n"
    failed = ok(calls.run(request("rustfmt", "--edition", "2021", "src/messy.rs")))
    assert failed.code != 0 and (project / "src" / "messy.rs").read_text() == messy


def test_cargo_builds_into_the_private_target_dir(make, project, tmp_path):
    subprocess.run(["cargo", "generate-lockfile", "--offline", "--quiet"], cwd=project, check=True)
    listing = sorted(str(p.relative_to(project)) for p in project.rglob("*") if ".git" not in p.parts)
    target = tmp_path / "private-target"
    calls = make("cargo build", target=target)
    result = ok(calls.run(request("cargo", "build", "--offline", "--quiet", "--target", "wasm32-wasip2")))
    assert result.code == 0, result.stderr.decode()
    assert (target / "wasm32-wasip2" / "debug" / "p.wasm").is_file()
    assert sorted(str(p.relative_to(project)) for p in project.rglob("*") if ".git" not in p.parts) == listing


def test_without_landlock_only_an_explicit_grant_runs_unconfined(make, monkeypatch):
    monkeypatch.setattr(confine, "_abi", 0)
    refused = make("printf").run(request("printf", "x"))
    assert refused.kind == "other" and "allow-unconfined-commands = true" in refused.message
    assert ok(make("printf", unconfined=True).run(request("printf", "x"))).stdout == b"x"


def test_a_program_planted_in_a_writable_path_entry_is_not_used(project):
    planted = project / "out" / "printf"
    planted.write_text("#!/bin/sh\necho planted\n")
    planted.chmod(0o755)
    env = environ(project, PATH=f"{project / 'out'}:{os.environ['PATH']}")
    calls = HostCalls("codegen", TABLE, grants(project, "printf"), env, None, None)
    try:
        assert ok(calls.run(request("printf", "real"))).stdout == b"real"
    finally:
        calls.stop_all()


def test_the_private_tmp_is_a_working_directory_too(make, tmp_path):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    result = ok(make("sh", scratch=scratch).run(request("sh", "-c", "echo made > file; pwd", cwd="/tmp")))
    assert result.stdout.decode().strip() == str(scratch) and (scratch / "file").read_text() == "made\n"


def test_a_granted_shell_cannot_read_the_tools_environment(make, monkeypatch):
    monkeypatch.setenv("CARGO_TASK_TOOL_SECRET", "hunter2")
    result = ok(make("sh").run(request("sh", "-c", f"cat /proc/{os.getpid()}/environ; kill -0 {os.getpid()}")))
    assert b"hunter2" not in result.stdout and result.code != 0


@pytest.mark.parametrize(
    "program, args, suggested, wrapper",
    [
        ("git", ("rev-parse", "HEAD"), "git rev-parse", None),
        ("cargo", ("fmt", "--check"), "cargo fmt", None),
        ("rustfmt", ("src/x.rs",), "rustfmt", None),
        # past a program that runs others, to the program it runs
        ("rustup", ("run", "stable", "rustfmt", "--version"), "rustup run stable rustfmt", None),
        ("sh", ("-c", "echo hi"), "sh", "sh"),
        ("env", ("FOO=1", "rustfmt"), "env", "env"),
        ("cargo", ("run", "--bin", "x"), "cargo run", "cargo run"),
    ],
)
def test_the_suggested_grant_names_the_program_that_runs(program, args, suggested, wrapper):
    from cargo_task.grants import runs_anything
    from cargo_task.hostcalls import suggested_grant

    assert suggested_grant(program, args) == suggested
    assert runs_anything(suggested.split()) == wrapper
