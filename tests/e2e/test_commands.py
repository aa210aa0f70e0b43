"""Host commands end to end: real tasks built with cargo use `cargo_task::process::Command`
to run real programs (git in a real repository, rustfmt, sh, bash, sleep) through the
installed `cargo-task`, with the `commands` grant, and cannot use them to escape."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time

import pytest

from cargo_task import confine
from tests.conftest import CARGO_TASK

pytestmark = pytest.mark.skipif(confine.abi_version() == 0, reason="commands need Landlock here")

SECRET = "host-secret-4c1e-never-in-a-task"

CMD = r'''
//! Run a program: `output|status PROGRAM ARGS...`.
use cargo_task::process::Command;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut command = Command::new(&args[1]);
    command.args(&args[2..]);
    if args[0] == "output" {
        match command.output() {
            Ok(o) => {
                println!("code={:?}", o.status.code());
                println!("stdout={}", String::from_utf8_lossy(&o.stdout).trim());
                println!("stderr={}", String::from_utf8_lossy(&o.stderr).trim());
            }
            Err(e) => println!("error={:?}: {e}", e.kind()),
        }
    } else if args[0] == "try" {
        if let Err(e) = command.output() {
            eprintln!("Error: {e:?}");
            std::process::exit(1);
        }
    } else {
        match command.status() {
            Ok(s) => println!("status={:?}", s.code()),
            Err(e) => println!("error={:?}: {e}", e.kind()),
        }
    }
}
'''

TABLES = {
    "git": '{ commands = ["git rev-parse", "git describe"] }',
    "fmt": '{ write = ["gen"], commands = ["rustfmt"] }',
    "shell": '{ write = ["out"], commands = ["sh", "bash"] }',
    "none": "{}",
    "slow": '{ commands = ["sleep"], timeout = "2s" }',
    "waits": '{ commands = ["sleep"] }',
}


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    """A real git repository holding a project whose tasks run programs; one build per task."""
    base = tmp_path_factory.mktemp("commands")
    root = base / "project"
    (root / "src").mkdir(parents=True)
    (root / "src" / "lib.rs").write_text("")
    (root / "gen").mkdir()
    (root / "out").mkdir()
    (root / "tasks").mkdir()
    (base / "outside").mkdir()
    (base / "home").mkdir()
    (base / "home" / "secret.txt").write_text(SECRET + "\n")
    lines = ['[package]\nname = "cmds"\nversion = "0.1.0"\nedition = "2021"\n', "[package.metadata.tasks]"]
    lines += [f"{name} = {table}" for name, table in TABLES.items()]
    (root / "Cargo.toml").write_text("\n".join(lines) + "\n")
    for name in TABLES:
        (root / "tasks" / f"{name}.rs").write_text(CMD)
    (root / ".gitignore").write_text("target/\n")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.org"]
    for command in (["init", "-q"], ["add", "."], ["commit", "-qm", "first"], ["tag", "v1.2.3"]):
        subprocess.run(git + command, cwd=root, check=True, capture_output=True)
    return root


def run(repo, env, *args, timeout=300):
    return subprocess.run([CARGO_TASK, "-q", *args], cwd=repo, env=env, capture_output=True,
                          text=True, timeout=timeout)  # fmt: skip


def said(result) -> dict[str, str]:
    return dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)


def test_a_granted_program_runs_with_its_real_output_and_exit_code(repo, env):
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True).stdout.strip()
    result = run(repo, env, "git", "output", "git", "rev-parse", "HEAD")
    assert result.returncode == 0, result.stderr
    assert said(result) == {"code": "Some(0)", "stdout": head, "stderr": ""}
    described = said(run(repo, env, "git", "output", "git", "describe", "--tags"))
    assert described["stdout"] == "v1.2.3"
    failed = said(run(repo, env, "git", "output", "git", "rev-parse", "--verify", "-q", "no-such-ref"))
    assert failed["code"] == "Some(1)" and failed["stdout"] == ""


def test_status_streams_the_programs_output_to_the_tasks(repo, env):
    result = run(repo, env, "shell", "status", "sh", "-c", "echo from-the-program; exit 3")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["from-the-program", "status=Some(3)"]


@pytest.mark.parametrize(("task", "argv", "grant"), [
    ("none", ["git", "rev-parse", "HEAD"], 'add `commands = ["git rev-parse"]` to [package.metadata.tasks.none]'),
    ("git", ["git", "log"], 'add "git log" to `commands` in [package.metadata.tasks.git]'),
    ("git", ["git", "-c", "core.pager=evil", "rev-parse", "HEAD"], "git rev-parse"),
    ("git", ["sh", "-c", "true"], '"sh"'),
])  # fmt: skip
def test_ungranted_programs_and_leading_arguments_are_refused_naming_the_grant(repo, env, task, argv, grant):
    result = run(repo, env, task, "output", *argv)
    assert result.returncode == 0, result.stderr
    error = said(result)["error"]
    assert error.startswith("PermissionDenied: "), error
    assert grant in error, error


def test_a_task_that_fails_after_a_refusal_gets_the_tools_error_and_help(repo, env):
    result = run(repo, env, "none", "try", "git", "rev-parse", "HEAD")
    assert result.returncode == 1, result.stderr
    assert "error: task `none` failed (exit 1) after it was refused a program" in result.stderr
    assert 'help: task `none` may not run `git rev-parse HEAD`; to allow it, add `commands = ["git rev-parse"]`' in result.stderr


def test_rustfmt_formats_a_file_the_task_may_write_and_not_one_it_may_not(repo, env):
    (repo / "gen" / "x.rs").write_text("fn   main( ){let x=1;}\n")
    (repo / "src" / "ugly.rs").write_text("fn   ugly( ){}\n")
    result = run(repo, env, "fmt", "output", "rustfmt", "--edition", "2021", "gen/x.rs")
    assert said(result)["code"] == "Some(0)", result.stdout + result.stderr
    assert (repo / "gen" / "x.rs").read_text() == "fn main() {\n    let x = 1;\n}\n"
    refused = said(run(repo, env, "fmt", "output", "rustfmt", "--edition", "2021", "src/ugly.rs"))
    assert refused["code"] != "Some(0)"
    assert (repo / "src" / "ugly.rs").read_text() == "fn   ugly( ){}\n"
    (repo / "src" / "ugly.rs").unlink()


def test_a_granted_shell_cannot_write_outside_the_grants_or_read_home(repo, env):
    outside = repo.parent / "outside"
    home = repo.parent / "home"
    script = (f"echo pwned > {outside}/f; echo pwned > {repo}/src/f; echo ok > out/ok; "
              f"cat {home}/secret.txt; cat /proc/$PPID/environ; true")  # fmt: skip
    real_home = os.path.expanduser("~")
    env = {**env, "HOME": str(home), "CARGO_HOME": env.get("CARGO_HOME", f"{real_home}/.cargo"),
           "RUSTUP_HOME": env.get("RUSTUP_HOME", f"{real_home}/.rustup")}  # fmt: skip
    result = run(repo, env, "shell", "output", "sh", "-c", script)
    assert result.returncode == 0, result.stderr
    assert list(outside.iterdir()) == []
    assert not (repo / "src" / "f").exists()
    assert (repo / "out" / "ok").read_text() == "ok\n"
    assert SECRET not in result.stdout + result.stderr
    assert "Permission denied" in said(result)["stderr"]


def test_a_granted_program_cannot_connect_out_without_network(repo, env):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(5)
    accepted = []
    thread = threading.Thread(target=lambda: accepted.append(_accept(server)), daemon=True)
    thread.start()
    port = server.getsockname()[1]
    result = run(repo, env, "shell", "output", "bash", "-c", f"exec 3<>/dev/tcp/127.0.0.1/{port} && echo connected")
    thread.join(10)
    server.close()
    assert "connected" not in said(result)["stdout"], result.stdout
    assert accepted == [False]


def _accept(server) -> bool:
    try:
        server.accept()[0].close()
        return True
    except OSError:
        return False


# A `sleep` duration no other run of the suite uses: pgrep sees the whole machine.
UNIQUE = f"{os.getpid() % 100000:05d}"


def _running(marker: str) -> list[str]:
    found = subprocess.run(["pgrep", "-f", f"^{marker}"], capture_output=True, text=True).stdout.split()
    return [pid for pid in found if pid != str(os.getpid())]


def _gone(marker: str, seconds: float = 10) -> bool:
    """Whether no process matches within `seconds` (a killed process takes a moment to go)."""
    deadline = time.monotonic() + seconds
    while _running(marker):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_the_tasks_timeout_ends_the_program_and_nothing_is_left_running(repo, env):
    result = run(repo, env, "slow", "output", "sleep", f"1000.25{UNIQUE}")
    assert result.returncode == 124, result.stdout + result.stderr
    assert "time limit of 2s" in result.stderr
    assert _gone(f"sleep 1000.25{UNIQUE}")


def test_ctrl_c_ends_the_task_and_its_program(repo, env):
    run(repo, env, "waits", "output", "sleep", "0")  # build first
    process = subprocess.Popen([CARGO_TASK, "-q", "waits", "output", "sleep", f"1000.5{UNIQUE}"], cwd=repo, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    deadline = time.monotonic() + 60
    while not _running(f"sleep 1000.5{UNIQUE}"):
        assert time.monotonic() < deadline and process.poll() is None, process.communicate()
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 130, err
    assert _gone(f"sleep 1000.5{UNIQUE}")


@pytest.mark.parametrize("script", [f"setsid -f sleep 1000.75{UNIQUE}", f"(setsid sleep 1000.75{UNIQUE} &)"])
def test_a_program_that_leaves_its_group_does_not_outlive_the_task(repo, env, script):
    result = run(repo, env, "shell", "output", "sh", "-c", script)
    assert result.returncode == 0, result.stderr
    assert _gone(f"sleep 1000.75{UNIQUE}")


def test_explain_lists_each_command_and_its_confinement(repo, env):
    result = run(repo, env, "--explain", "fmt")
    assert result.returncode == 0, result.stderr
    assert "processes: these host programs, with any further arguments:\n  rustfmt ..." in result.stdout
    assert "confined: they read the project" in result.stdout
    assert f"write only {repo / 'gen'} and a private temp dir" in result.stdout


def test_explain_warns_that_a_shell_grant_reaches_every_program(repo, env):
    result = run(repo, env, "--explain", "shell")
    assert result.returncode == 0, result.stderr
    assert "warning: `sh` runs whatever it is told to" in result.stdout
    assert "warning: `bash` runs whatever it is told to" in result.stdout
