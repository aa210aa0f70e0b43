"""Warm runs start no cargo; every change that affects the build rebuilds, nothing else does.

A spy stands in for cargo (`CARGO` is how cargo tells a subcommand which cargo it is): it
logs each call, then runs the real cargo. A confined build may write only the generated
package's directory, so the spy logs there, beside the `--manifest-path` it was given.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from tests.conftest import cargo_calls, cargo_spy


@pytest.fixture
def spied(project, cargo_task, tmp_path):
    spy = cargo_spy(tmp_path)

    def calls() -> int:
        """cargo builds so far (a fetch comes with a build, never alone)."""
        lines = cargo_calls(project.root)
        assert not any(words[0] == "fetch" for words in lines) or any(words[0] == "build" for words in lines)
        return sum(words[0] == "build" for words in lines)
    project.manifest()
    project.write("tasks/a.rs", 'mod shared;\nfn main() { println!("a {} {}", shared::WORD, include_str!("../notes.txt").trim()); }\n')
    project.write("tasks/shared/mod.rs", 'pub const WORD: &str = "one";\n')
    project.write("tasks/b.rs", 'fn main() { println!("b"); }\n')
    project.write("notes.txt", "first\n")

    def run(task: str = "a", **env) -> tuple[str, int]:
        before = calls()
        result = cargo_task("-q", task, cwd=project.root, CARGO=str(spy), **env)
        assert result.returncode == 0, result.stderr
        after = calls()
        return result.stdout.strip(), after - before

    return run


def edit(path: Path, text: str) -> None:
    time.sleep(0.01)  # distinct mtimes even on coarse clocks
    path.write_text(text)


def test_a_warm_run_starts_no_cargo(spied):
    assert spied() == ("a one first", 1)
    assert spied() == ("a one first", 0)
    assert spied() == ("a one first", 0)


def test_editing_the_task_a_module_or_an_included_file_rebuilds(spied, project):
    spied()
    edit(project.root / "tasks" / "a.rs", 'mod shared;\nfn main() { println!("A {} {}", shared::WORD, include_str!("../notes.txt").trim()); }\n')
    assert spied() == ("A one first", 1)
    edit(project.root / "tasks" / "shared" / "mod.rs", 'pub const WORD: &str = "two";\n')
    assert spied() == ("A two first", 1)
    edit(project.root / "notes.txt", "second\n")
    assert spied() == ("A two second", 1)
    assert spied() == ("A two second", 0)


def test_a_dependency_change_rebuilds(spied, project):
    spied()
    project.manifest('[package.metadata.task-dependencies]\nitoa = "1"\n')
    assert spied() == ("a one first", 1)
    assert spied() == ("a one first", 0)


def test_a_toolchain_change_rebuilds(spied):
    spied()
    assert spied(RUSTUP_TOOLCHAIN="1.95.0-x86_64-unknown-linux-gnu")[1] == 1
    assert spied(RUSTUP_TOOLCHAIN="1.95.0-x86_64-unknown-linux-gnu")[1] == 0


def test_changes_to_other_tasks_or_the_users_package_rebuild_nothing_else(spied, project):
    spied()
    spied("b")
    edit(project.root / "tasks" / "b.rs", 'fn main() { println!("B"); }\n')
    project.write("tasks/c.rs", "fn main() {}\n")
    project.manifest('[dependencies]\n')  # the user's own package changed, not the tasks'
    (project.root / "src" / "lib.rs").write_text("pub fn f() {}\n")
    assert spied() == ("a one first", 0)
    assert spied("b") == ("B", 1)


def test_a_corrupt_compiled_component_is_rebuilt_not_loaded(spied, cache_home):
    spied()
    for entry in (cache_home / "cargo-task-wasm" / "components").glob("*.cwasm"):
        data = bytearray(entry.read_bytes())
        data[len(data) // 2] ^= 0xFF
        entry.write_bytes(bytes(data))
    assert spied() == ("a one first", 1)
    assert spied() == ("a one first", 0)


def test_a_cleaned_target_dir_rebuilds(spied, project):
    spied()
    shutil.rmtree(project.root / "target")
    assert spied() == ("a one first", 1)


def test_cargo_task_and_cargo_dash_task_stay_fresh_side_by_side(spied, project, cargo, cargo_task):
    """`cargo task` sets RUSTUP_TOOLCHAIN and CARGO; run directly, neither is set."""
    for _ in range(2):
        cargo("task", "a", cwd=project.root)
        cargo_task("a", cwd=project.root)
    assert "is fresh" in cargo("task", "-v", "a", cwd=project.root).stderr
    assert "is fresh" in cargo_task("-v", "a", cwd=project.root).stderr


def test_a_path_dependencys_manifest_change_rebuilds(project, cargo_task):
    project.manifest('[package.metadata.task-dependencies]\nhelper = { path = "helper" }\n')
    project.write("helper/Cargo.toml", """
        [package]
        name = "helper"
        version = "0.1.0"
        edition = "2021"

        [features]
        default = []
        loud = []
    """)  # fmt: skip
    project.write("helper/src/lib.rs", """
        pub fn word() -> &'static str {
            if cfg!(feature = "loud") { "LOUD" } else { "quiet" }
        }
    """)  # fmt: skip
    project.write("tasks/t.rs", "fn main() { println!(\"{}\", helper::word()); }\n")
    assert cargo_task("-q", "t", cwd=project.root).stdout == "quiet\n"
    manifest = project.root / "helper" / "Cargo.toml"
    edit(manifest, manifest.read_text().replace("default = []", 'default = ["loud"]'))
    assert cargo_task("-q", "t", cwd=project.root).stdout == "LOUD\n"


def test_an_edit_saved_while_cargo_builds_is_not_taken_as_built(project, cargo_task, env, tmp_path):
    """The edit lands after rustc read the file and before cargo finishes (a wrapper holds
    the build for a while; the confined build itself may not write the project)."""
    import subprocess

    from tests.conftest import CARGO_TASK

    project.manifest()
    source = project.write("tasks/ver.rs", 'fn main() { println!("v1"); }\n')
    wrapper = tmp_path / "rustc-wrapper"
    wrapper.write_text('#!/bin/sh\n"$@"; status=$?\ncase "$*" in *ver.rs*) sleep 3 ;; esac\nexit $status\n')
    wrapper.chmod(0o755)
    running = subprocess.Popen([CARGO_TASK, "-q", "ver"], cwd=project.root, stdout=subprocess.PIPE,
                               text=True, env={**env, "RUSTC_WRAPPER": str(wrapper)})  # fmt: skip
    deadline = time.monotonic() + 120
    while not list((project.root / "target" / "cargo-task").glob("build-*/wasm32-wasip2/debug/deps/ver-*.d")):
        assert time.monotonic() < deadline and running.poll() is None, "rustc never wrote the dep-info"
        time.sleep(0.05)
    edit(source, 'fn main() { println!("v2"); }\n')
    first_out, _ = running.communicate(timeout=120)
    assert first_out == "v1\n"  # built before the edit landed
    again = cargo_task("-q", "ver", cwd=project.root, RUSTC_WRAPPER=str(wrapper))
    assert again.stdout == "v2\n"  # not mistaken for fresh
