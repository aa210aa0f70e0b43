"""Owners (workspace members) whose tasks have the same task-dependencies share cargo's
build directory, so a second member builds only its own tasks; owners with other
task-dependencies get a build directory of their own, which the first one's build scripts
cannot write."""

from __future__ import annotations

import re

import pytest

from tests.conftest import Project

HELPER = "pub fn greeting() -> &'static str { \"hello from helper\" }\n"
TASK = 'fn main() { println!("{}", helper::greeting()); }\n'
# A build script of a dependency only the third member uses: it tries to plant a file in
# every other owner's build directory (next to its own under target/cargo-task/).
PLANTER = r"""
use std::path::PathBuf;
fn main() {
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let mine = out.ancestors()
        .find(|p| p.file_name().map_or(false, |n| n.to_string_lossy().starts_with("build-")))
        .unwrap().to_path_buf();
    for entry in std::fs::read_dir(mine.parent().unwrap()).unwrap().flatten() {
        let path = entry.path();
        if path != mine && path.file_name().unwrap().to_string_lossy().starts_with("build-") {
            let planted = std::fs::write(path.join("planted"), b"code").is_ok();
            println!("cargo:warning=planted in {}: {planted}", path.display());
        }
    }
}
"""


@pytest.fixture
def workspace(tmp_path) -> Project:
    ws = Project(tmp_path / "ws")
    ws.write("Cargo.toml", '[workspace]\nmembers = ["m1", "m2", "m3"]\nresolver = "2"\n\n'
                           '[workspace.metadata.task-dependencies]\nhelper = { path = "libs/helper" }\n')  # fmt: skip
    ws.write("libs/helper/Cargo.toml", '[package]\nname = "helper"\nversion = "0.1.0"\nedition = "2021"\n')
    ws.write("libs/helper/src/lib.rs", HELPER)
    ws.write("libs/planter/Cargo.toml", '[package]\nname = "planter"\nversion = "0.1.0"\nedition = "2021"\n')
    ws.write("libs/planter/src/lib.rs", "")
    ws.write("libs/planter/build.rs", PLANTER)
    for member, task in (("m1", "one"), ("m2", "two"), ("m3", "three")):
        extra = '\n[package.metadata.task-dependencies]\nplanter = { path = "../libs/planter" }\n' if member == "m3" else ""
        ws.write(f"{member}/Cargo.toml", f'[package]\nname = "{member}"\nversion = "0.1.0"\nedition = "2021"\n{extra}')
        ws.write(f"{member}/src/lib.rs", "")
        ws.write(f"{member}/tasks/{task}.rs", TASK)
    return ws


def compiled(stderr: str) -> set[str]:
    return set(re.findall(r"^\s*Compiling (\S+) v", stderr, re.M))


def build_dirs(ws: Project) -> list[str]:
    return sorted(p.name for p in (ws.root / "target" / "cargo-task").glob("build-*"))


def test_a_second_member_with_the_same_dependencies_rebuilds_none_of_them(workspace, cargo_task):
    first = cargo_task("one", cwd=workspace.root / "m1")
    assert first.returncode == 0 and first.stdout == "hello from helper\n", first.stderr
    assert {"helper", "cargo-task", "cargo-task-m1"} <= compiled(first.stderr)
    second = cargo_task("two", cwd=workspace.root / "m2")
    assert second.returncode == 0 and second.stdout == "hello from helper\n", second.stderr
    assert compiled(second.stderr) == {"cargo-task-m2"}, second.stderr  # its own tasks only
    assert len(build_dirs(workspace)) == 1
    # Both stay warm: neither build replaced the other's artefacts.
    for member, task in (("m1", "one"), ("m2", "two")):
        warm = cargo_task("-v", task, cwd=workspace.root / member)
        assert warm.returncode == 0 and "is fresh" in warm.stderr, warm.stderr


def test_other_dependencies_build_apart_and_cannot_plant_into_the_shared_build(workspace, cargo_task):
    from cargo_task import confine

    assert cargo_task("one", cwd=workspace.root / "m1").returncode == 0
    shared = build_dirs(workspace)
    third = cargo_task("three", cwd=workspace.root / "m3")
    assert third.returncode == 0 and third.stdout == "hello from helper\n", third.stderr
    assert "helper" in compiled(third.stderr)  # its own build directory: nothing reused
    assert len(build_dirs(workspace)) == 2
    if confine.available():
        assert f"planted in {workspace.root / 'target' / 'cargo-task' / shared[0]}: false" in third.stderr, third.stderr
        assert not (workspace.root / "target" / "cargo-task" / shared[0] / "planted").exists()
    again = cargo_task("-v", "one", cwd=workspace.root / "m1")
    assert again.returncode == 0 and "is fresh" in again.stderr, again.stderr
