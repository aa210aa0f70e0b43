"""Attacks on tasks from crates.io, git and path (`from = {...}`), end to end with real
cargo builds, offline: a local registry in crates.io's place (source replacement), local
git repositories (`file://`) and package directories. Each attack asserts that the host is
unchanged (no file written outside what the run may write, no code of the package run
unconfined) and that bad input gives one `error:` line and a `help:`, no traceback."""

from __future__ import annotations

import os
import stat
import tomllib
from pathlib import Path

import pytest

from cargo_task import confine
from tests.e2e.published import LocalRegistry, git, git_repository, package

from .conftest import describe, diff, snapshot

pytestmark = pytest.mark.skipif(confine.abi_version() == 0, reason="this kernel offers no Landlock")


@pytest.fixture(scope="module")
def cargo_home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cargo-home")


@pytest.fixture
def henv(env, cargo_home) -> dict[str, str]:
    # `cargo-task` run directly, as the README allows: cargo is PATH's (rustup's proxy).
    environ = {**env, "CARGO_HOME": str(cargo_home), "CI": ""}
    environ.pop("RUSTUP_TOOLCHAIN", None)
    return environ


def one_error(result) -> str:
    assert result.returncode != 0, describe(result)
    assert "Traceback" not in result.stderr, describe(result)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, describe(result)
    assert result.stderr.splitlines()[-1].startswith("help: "), describe(result)
    return errors[0]


def executable(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def lock(root: Path) -> dict:
    return {e["table"]: e for e in tomllib.loads((root / "cargo-task.lock").read_text())["task"]}


# -- 1. code of the package run unconfined during resolution ---------------------------

# A package that ships a rust-toolchain.toml naming a "toolchain" inside itself (reached
# through /proc/self/cwd, i.e. wherever the copy lands), a `.cargo/config.toml` with a
# rustc wrapper and a build.rs: each, if run, writes a marker outside the project.
def hostile_files(marker: Path) -> dict[str, str]:
    script = f'#!/bin/sh\necho "$0 $*" >> "{marker}"\nexit 1\n'
    return {
        "rust-toolchain.toml": '[toolchain]\npath = "/proc/self/cwd/toolchain"\n',
        ".cargo/config.toml": '[build]\nrustc-wrapper = "/proc/self/cwd/toolchain/bin/rustc"\n'
                              '[target.wasm32-wasip2]\nrunner = "/proc/self/cwd/toolchain/bin/cargo"\n',
        "build.rs": f'fn main() {{ let _ = std::fs::write("{marker}.build-rs", "x"); }}\n',
        "toolchain/bin/cargo": script,
        "toolchain/bin/rustc": script,
    }  # fmt: skip


def make_hostile(directory: Path, name: str, marker: Path) -> Path:
    files = hostile_files(marker)
    package(directory, name, files={k: v for k, v in files.items() if "/bin/" not in k})
    for relative in ("toolchain/bin/cargo", "toolchain/bin/rustc"):
        executable(directory / relative, files[relative])
    (directory / "toolchain" / "lib").mkdir(exist_ok=True)
    return directory


def test_registry_package_runs_nothing_unconfined_during_resolution(project, cargo_task, henv, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    marker = outside / "pwned"
    registry = LocalRegistry(tmp_path / "registry")
    source = make_hostile(tmp_path / "src" / "hostile", "hostile-task", marker)
    registry.publish(source, henv)
    project.manifest('[package.metadata.tasks.hostile]\nfrom = { crate = "hostile-task", version = "0.1" }\n')
    project.write(".cargo/config.toml", registry.config())
    before = snapshot(outside)
    result = cargo_task("hostile", cwd=project.root, **henv)
    vendored = next((project.root / "target" / "cargo-task" / "published").glob("*/vendor/hostile-task-0.1.0"), None)
    assert vendored is not None and (vendored / "rust-toolchain.toml").exists(), describe(result)
    assert os.access(vendored / "toolchain" / "bin" / "cargo", os.X_OK)  # the copy kept the program
    assert diff(before, snapshot(outside)) == [], describe(result)  # neither unconfined nor confined
    assert result.returncode == 0, describe(result)


def test_git_package_runs_nothing_unconfined_during_resolution(project, cargo_task, henv, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    marker = outside / "pwned"
    repo = make_hostile(tmp_path / "repo", "hostile-git", marker)
    url = git_repository(repo, tag="v1")
    project.manifest(f'[package.metadata.tasks.hostile]\nfrom = {{ git = "{url}", tag = "v1", crate = "hostile-git" }}\n')
    before = snapshot(outside)
    result = cargo_task("hostile", cwd=project.root, **henv)
    assert diff(before, snapshot(outside)) == [], describe(result)
    assert result.returncode == 0, describe(result)
