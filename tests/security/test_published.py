"""A published task is confined like a local one: its package's build script writes only
its private target directory, and the grants the package asks for in
`[package.metadata.task]` are shown, never applied. Each escape is attempted for real and
the host is compared before and after."""

from __future__ import annotations

import pytest

from cargo_task import confine
from tests.e2e.published import package

from .conftest import describe, diff, snapshot

pytestmark = pytest.mark.skipif(confine.abi_version() == 0, reason="this kernel offers no Landlock")

BUILD_RS = r'''
fn main() {
    let project = "PROBE_PROJECT/pwned-by-build-script";
    let outside = "PROBE_OUTSIDE/pwned-by-build-script";
    let own = concat!(env!("CARGO_MANIFEST_DIR"), "/pwned-by-build-script");
    let said: Vec<String> = [project, outside, own].iter()
        .map(|p| format!("{:?}", std::fs::write(p, "x").map_err(|e| e.kind())))
        .collect();
    println!("cargo:rustc-env=PROBE_RESULTS={}", said.join(";"));
}
'''

MAIN = r'''
fn main() {
    println!("build script: {}", env!("PROBE_RESULTS"));
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap();
    let tried = std::fs::write(format!("{dir}/pwned-by-task"), "x").map_err(|e| e.kind());
    println!("task write: {tried:?}");
    let tried = std::fs::write(format!("{dir}/Cargo.toml"), "").map_err(|e| e.kind());
    println!("task manifest write: {tried:?}");
}
'''


def test_published_build_and_run_stay_confined(small_project, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    tool = package(tmp_path / "tools" / "greedy", "greedy-task", main=MAIN, extra="""
        [package.metadata.task]
        description = "Asks for the whole project"
        write = ["."]
        allow-write-manifest = true
        network = true
    """, files={"build.rs": BUILD_RS.replace("PROBE_PROJECT", str(small_project.root))
                                    .replace("PROBE_OUTSIDE", str(outside))})  # fmt: skip
    small_project.write("Cargo.toml", """
        [package]
        name = "small"
        version = "0.1.0"
        edition = "2021"

        [package.metadata.tasks.greedy]
        from = { path = "../tools/greedy" }
    """)
    assert small_project.run("--update").returncode == 0  # the lock file
    (small_project.root / "target").mkdir()  # where the build goes: created before the snapshot
    volatile = ("target",)
    before = snapshot(small_project.root, volatile), snapshot(outside), snapshot(tool)
    result = small_project.run("greedy")
    assert result.returncode == 0, describe(result)
    assert result.stdout.splitlines()[0] == (
        "build script: Err(PermissionDenied);Err(PermissionDenied);Err(PermissionDenied)"
    ), describe(result)
    assert "task write: Err(PermissionDenied)" in result.stdout, describe(result)
    assert "task manifest write: Err(PermissionDenied)" in result.stdout, describe(result)
    after = snapshot(small_project.root, volatile), snapshot(outside), snapshot(tool)
    project_changes, outside_changes, tool_changes = (diff(b, a) for b, a in zip(before, after))
    assert project_changes == [] and outside_changes == [], (project_changes, outside_changes)
    # The unconfined `cargo fetch` writes a path package's Cargo.lock, as `cargo build` there would.
    assert [c.split()[:2] for c in tool_changes] == [["changed:", "."], ["created:", "Cargo.lock"]], tool_changes
    explained = small_project.run("--explain", "greedy").stdout
    assert "asks write = [\".\"]" in explained and "network: none" in explained, explained


def test_no_write_grant_covers_a_path_package(small_project, tmp_path):
    package(tmp_path / "tools" / "tool", "tool-task")
    small_project.write("Cargo.toml", """
        [package]
        name = "small"
        version = "0.1.0"
        edition = "2021"

        [package.metadata.tasks.tool]
        from = { path = "../tools/tool" }

        [package.metadata.tasks.writer]
        write = ["../tools/tool/src"]
    """)
    small_project.write("tasks/writer.rs", "fn main() {}\n")
    result = small_project.run("--explain", "writer")
    assert result.returncode == 1, describe(result)
    assert "the package task `tool` is built from" in result.stderr, describe(result)
    assert "allow-write-manifest" in result.stderr, describe(result)
    assert not (tmp_path / "tools" / "tool" / "target").exists()
