"""Running tasks end to end: real cargo builds, real Wasmtime, through the entry point."""

from __future__ import annotations

import signal
import subprocess
import time

import pytest

from tests.conftest import CARGO_TASK


def test_cargo_task_lists_tasks_with_descriptions(basic, cargo):
    result = cargo("task", cwd=basic.root)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "    hello     Print the arguments." in lines
    names = [line.split()[0] for line in lines[1:]]
    assert names == ["env", "exit", "fail", "files", "hello", "helper", "panic", "spin", "stdin"]


def test_arguments_reach_the_task_verbatim_with_the_task_name_first(basic, cargo):
    result = cargo("task", "hello", "a b", "--help", "-v", "--", cwd=basic.root)
    assert result.returncode == 0, result.stderr
    assert 'argv=["hello", "a b", "--help", "-v", "--"]' in result.stdout
    assert "Running task `hello`" in result.stderr


def test_run_from_a_subdirectory_and_with_manifest_path(basic, cargo_task, tmp_path):
    assert "argv=" in cargo_task("hello", cwd=basic.root / "src").stdout
    result = cargo_task("--manifest-path", str(basic.root / "Cargo.toml"), "hello", cwd=tmp_path)
    assert result.returncode == 0 and "argv=" in result.stdout


def test_no_environment_unless_granted(basic, cargo_task):
    result = cargo_task("hello", cwd=basic.root)  # hello has no grant
    assert result.returncode == 0
    env_result = cargo_task("env", cwd=basic.root, ALLOWED_ONE="1", ALLOWED_TWO="2", PLAIN="p",
                            SECRET_TOKEN="hunter2", PLAINER="no")  # fmt: skip
    assert env_result.returncode == 0, env_result.stderr
    assert env_result.stdout.strip() == (
        'vars=[("ALLOWED_ONE", "1"), ("ALLOWED_TWO", "2"), '
        f'("CARGO_MANIFEST_DIR", "{basic.root}"), ("FIXED", "from-toml"), ("PLAIN", "p")]'
    )
    assert "hunter2" not in env_result.stderr


def test_the_project_is_read_only_and_nothing_else_is_visible(basic, cargo_task):
    result = cargo_task(
        "files", "r:data/hello.txt", "r:/data/hello.txt", "ls:data", "w:data/new.txt",
        "w:new.txt", "r:/etc/passwd", "r:../outside.txt", "ls:/", cwd=basic.root,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "r:data/hello.txt -> ok hi from data" in out
    assert "r:/data/hello.txt -> ok hi from data" in out
    assert "ls:data -> ok hello.txt" in out
    assert "w:data/new.txt -> err PermissionDenied" in out
    assert "w:new.txt -> err PermissionDenied" in out
    assert "r:/etc/passwd -> err NotFound" in out  # "/" is the project, not the host
    assert "r:../outside.txt -> err PermissionDenied" in out
    assert not (basic.root / "data" / "new.txt").exists() and not (basic.root / "new.txt").exists()


def test_stdin_is_the_callers(basic, cargo_task):
    result = cargo_task("stdin", cwd=basic.root, stdin="typed in\n")
    assert result.stdout.strip() == 'stdin="typed in\\n"'


@pytest.mark.parametrize(("task", "args", "code"), [("fail", [], 1), ("exit", ["0"], 0), ("exit", ["3"], 1)])
def test_exit_status_is_the_tasks(basic, cargo_task, task, args, code):
    result = cargo_task(task, *args, cwd=basic.root)
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr


def test_main_returning_err_shows_the_tasks_message(basic, cargo_task):
    result = cargo_task("fail", cwd=basic.root)
    assert 'Error: "it went wrong"' in result.stderr


def test_a_panic_is_a_trap_reported_on_one_line_with_exit_101(basic, cargo_task):
    result = cargo_task("panic", cwd=basic.root)
    assert result.returncode == 101
    assert "boom at the task level" in result.stderr
    assert "error: task `panic` panicked" in result.stderr
    assert "Traceback" not in result.stderr


def test_ctrl_c_stops_the_task_and_exits_130(basic, cargo_task, env):
    assert cargo_task("--timeout", "1s", "spin", cwd=basic.root).returncode == 124  # built, warm
    process = subprocess.Popen([CARGO_TASK, "spin"], cwd=basic.root, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)  # fmt: skip
    line = process.stdout.readline()
    assert line.strip() == "spinning"
    time.sleep(0.3)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 130
    assert "interrupted" in err and "Traceback" not in err


def test_a_shared_module_is_usable_by_a_task(basic, cargo_task):
    result = cargo_task("helper", cwd=basic.root)
    assert result.stdout.strip() == "hello from the shared module"


def test_quiet_and_verbose(basic, cargo_task):
    quiet = cargo_task("-q", "hello", cwd=basic.root)
    assert quiet.returncode == 0 and quiet.stderr == ""
    verbose = cargo_task("-v", "hello", cwd=basic.root)
    assert "is fresh" in verbose.stderr


def test_colour_follows_flags_and_environment(basic, cargo_task):
    assert "\x1b[" in cargo_task("--color", "always", "nope", cwd=basic.root).stderr
    assert "\x1b[" not in cargo_task("--color", "never", "nope", cwd=basic.root).stderr
    assert "\x1b[" in cargo_task("nope", cwd=basic.root, CARGO_TERM_COLOR="always").stderr
    assert "\x1b[" not in cargo_task("nope", cwd=basic.root).stderr  # not a terminal


def test_a_missing_task_is_a_clear_error(basic, cargo_task):
    result = cargo_task("helpr", cwd=basic.root)
    assert result.returncode == 1
    assert result.stderr == "error: no task `helpr`\nhelp: a task with a similar name exists: `helper`\n"
