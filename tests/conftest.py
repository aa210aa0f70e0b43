"""Fixtures shared by the unit and end-to-end tests.

End-to-end tests write a small real Rust project into a temporary directory and run the
installed `cargo-task` entry point on it, as a user would (`cargo_task(...)`), or through
cargo itself (`cargo(...)`, which runs `cargo task ...`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent

# Tasks run on Winch's code alone in the suite: under the default, tiered compilation, a
# background Cranelift compile after each new build would race with the tests that look at
# or damage the cache. tests/e2e/test_tiering.py runs the default; the trap and limit tests
# run under each compiler.
os.environ.setdefault("CARGO_TASK_COMPILER", "winch")
CARGO_TASK = shutil.which("cargo-task", path=str(BIN)) or shutil.which("cargo-task")


@dataclass
class Project:
    root: Path

    def write(self, relative: str, text: str) -> Path:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))
        return path

    def manifest(self, extra: str = "", name: str = "fixture") -> Path:
        return self.write(
            "Cargo.toml",
            f'[package]\nname = "{name}"\nversion = "0.1.0"\nedition = "2021"\n\n'
            + textwrap.dedent(extra),
        )


@pytest.fixture(scope="session")
def cache_home(tmp_path_factory) -> Path:
    """One tool cache for the whole session: isolated from the user's, shared by tests."""
    return tmp_path_factory.mktemp("xdg-cache")


@pytest.fixture
def env(cache_home) -> dict[str, str]:
    environ = dict(os.environ)
    environ["XDG_CACHE_HOME"] = str(cache_home)
    # CI=true makes the tool refuse to change cargo-task.lock (as --locked): tests that mean
    # it set it themselves.
    for name in ("CARGO_TARGET_DIR", "CARGO_TERM_COLOR", "NO_COLOR", "CARGO", "CI"):
        environ.pop(name, None)
    return environ


@pytest.fixture
def project(tmp_path) -> Project:
    root = tmp_path / "project"
    root.mkdir()
    (root / "src").mkdir()
    (root / "src" / "lib.rs").write_text("")
    return Project(root)


def _run(command: list[str], cwd: Path, env: dict[str, str], stdin: str | None, timeout: float):
    return subprocess.run(
        command, cwd=cwd, env=env, input=stdin if stdin is not None else "",
        capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


@pytest.fixture
def cargo_task(env):
    """Run the installed `cargo-task` entry point; returns the CompletedProcess."""
    assert CARGO_TASK, "cargo-task is not installed: run scripts/setup.sh"

    def run(*args: str, cwd: Path, stdin: str | None = None, timeout: float = 300, **extra):
        return _run([CARGO_TASK, *args], cwd, {**env, **extra}, stdin, timeout)

    return run


@pytest.fixture
def cargo(env):
    """Run `cargo ARGS...` with the installed cargo-task on PATH (so `cargo task` finds it)."""

    def run(*args: str, cwd: Path, stdin: str | None = None, timeout: float = 300, **extra):
        path = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
        return _run(["cargo", *args], cwd, {**env, "PATH": path, **extra}, stdin, timeout)

    return run


def cargo_spy(directory: Path) -> Path:
    """A stand-in for cargo (pass it as `CARGO`, as cargo itself tells a subcommand which
    cargo it is) that logs each call, then runs the real cargo. A confined build may write
    only the generated package's target directory, so the log goes there."""
    import stat

    spy = directory / "cargo-spy"
    spy.write_text(
        '#!/bin/sh\nprev=\nfor a in "$@"; do\n'
        '  if [ "$prev" = --manifest-path ]; then\n'
        '    mkdir -p "$(dirname "$a")/target" && echo "$*" >> "$(dirname "$a")/target/cargo-calls.log"\n'
        '  fi\n  prev=$a\ndone\n'
        f'exec "{shutil.which("cargo")}" "$@"\n'
    )
    spy.chmod(spy.stat().st_mode | stat.S_IEXEC)
    return spy


def cargo_calls(project_root: Path) -> list[list[str]]:
    """The cargo calls the spy logged for a project's generated packages, each as words."""
    logs = (project_root / "target" / "cargo-task").glob("*/target/cargo-calls.log")
    return [line.split() for log in logs for line in log.read_text().splitlines()]
