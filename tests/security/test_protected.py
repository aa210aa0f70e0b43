"""Write access turned into more rights or host code: the manifest, `.cargo`, `.git`,
`tasks/`, `build.rs`, the toolchain files, the build directory, the cargo configuration the
next build reads, and other workspace members.

A `write` grant that covers one of them is refused (unless `allow-write-manifest = true`),
and a task with a write grant on a subdirectory still cannot reach them.
"""

from __future__ import annotations

import os

import pytest

from .conftest import describe, run_tool

DENIED = "ERR PermissionDenied"


@pytest.mark.parametrize(
    "grant",
    [".", "./", "tasks", ".cargo", ".git", ".git/hooks", "target", "target/cargo-task", "..",
     "src/..", "tasks/../tasks", "{root}", "{root}/.cargo"],
)  # fmt: skip
def test_write_grant_covering_protected_paths_is_refused(small_project, grant):
    root = small_project.root
    for directory in ("tasks", ".cargo", ".git/hooks", "target/cargo-task", "src"):
        (root / directory).mkdir(parents=True, exist_ok=True)
    written = grant.format(root=root)
    small_project.tasks({"t": f'{{ write = ["{written}"] }}'})
    result = small_project.run("--explain", "t")
    assert result.returncode == 1, describe(result)
    assert "error: task `t`: `write` path" in result.stderr, describe(result)
    assert "allow-write-manifest = true" in result.stderr, describe(result)
    assert "writable" not in result.stdout


def test_write_grant_on_a_subdirectory_is_accepted(small_project):
    """Positive control for the refusals above."""
    (small_project.root / "out").mkdir()
    small_project.tasks({"t": '{ write = ["out", "src"] }'})
    result = small_project.run("--explain", "t")
    assert result.returncode == 0, describe(result)
    assert f"writable   {small_project.root / 'out'} -> out" in result.stdout


def test_allow_write_manifest_is_explicit_and_loud(arena):
    result = arena.run("manifest_ok", "stat:Cargo.toml")
    assert result.returncode == 0, describe(result)
    warning = next(line for line in result.stderr.splitlines() if line.startswith("warning:"))
    assert warning.startswith(f"warning: task `manifest_ok` may write `{arena.project / 'Cargo.toml'}`")
    assert warning.endswith("more protected paths (allow-write-manifest = true)")
    explained = arena.run("manifest_ok", options=("--explain",)).stdout
    for name in ("Cargo.toml", ".cargo", ".git", "tasks"):
        assert f"warning: may change {arena.project / name} (allow-write-manifest = true)" in explained


def test_task_with_a_write_grant_cannot_reach_protected_files(arena):
    """`write = ["src"]`: src/ is writable; the manifest and friends stay out of reach."""
    attempts = [
        "write:Cargo.toml",
        "write:/Cargo.toml",
        "append:src/../Cargo.toml",
        "truncate:/src/../Cargo.toml",
        "unlink:Cargo.toml",
        "rename:src/lib.rs:Cargo.toml",
        "create:Cargo.lock",
        "write:.cargo/config.toml",
        "create:.cargo/config",
        "write:src/../.cargo/config.toml",
        "mkdir:src/../.cargo/new",
        "write:.git/hooks/pre-commit",
        "write:.git/HEAD",
        "write:tasks/ro.rs",
        "create:tasks/evil.rs",
        "rename:src/lib.rs:tasks/evil.rs",
        "hardlink:tasks/ro.rs:src/ro-link.rs",
        "create:build.rs",
        "create:rust-toolchain.toml",
        "create:rust-toolchain",
        "mkdir:target/cargo-task/evil",
        "write:src/../target/cargo-task/x",
    ]
    with arena.unchanged(allow=("project/src",)):
        seen = arena.probe("rw_src", *attempts, "write:src/generated.rs")
    try:
        for attempt in attempts:
            assert seen[attempt].startswith(DENIED), (attempt, seen[attempt])
        assert seen["write:src/generated.rs"] == "OK written"  # the grant itself works
        assert sorted(os.listdir(arena.project / "src")) == ["generated.rs", "lib.rs"]
    finally:
        (arena.project / "src" / "generated.rs").unlink(missing_ok=True)


def _workspace(root, member_tables: str, root_tables: str = ""):
    (root / "crates" / "member" / "tasks").mkdir(parents=True)
    (root / "crates" / "member" / "src").mkdir()
    (root / "crates" / "member" / "out").mkdir()
    (root / "crates" / "member" / "src" / "lib.rs").write_text("")
    (root / "crates" / "member" / "tasks" / "mt.rs").write_text("fn main() {}\n")
    (root / "crates" / "member" / "Cargo.toml").write_text(
        '[package]\nname = "member"\nversion = "0.1.0"\nedition = "2021"\n\n'
        f"[package.metadata.tasks]\n{member_tables}\n"
    )
    (root / "tasks").mkdir(exist_ok=True)
    (root / "tasks" / "rt.rs").write_text("fn main() {}\n")
    (root / "Cargo.toml").write_text(
        '[package]\nname = "wsroot"\nversion = "0.1.0"\nedition = "2021"\n\n'
        '[workspace]\nmembers = ["crates/*"]\n\n'
        f"[package.metadata.tasks]\n{root_tables}\n"
    )


def _explain_in(small, cwd, task):
    return run_tool(["--explain", task], cwd, small.env)


@pytest.mark.parametrize("grant", ["..", "../..", "../../tasks", "../../.cargo"])
def test_member_task_cannot_write_the_workspace_root(small_project, grant):
    _workspace(small_project.root, f'mt = {{ write = ["{grant}"] }}')
    (small_project.root / ".cargo").mkdir()
    result = _explain_in(small_project, small_project.root / "crates" / "member", "mt")
    assert result.returncode == 1, describe(result)
    assert "allow-write-manifest" in result.stderr, describe(result)


def test_workspace_task_cannot_write_another_members_manifest_or_tasks(small_project):
    """A root task with `write = ["crates"]` could rewrite crates/member/Cargo.toml (the
    member's grants) and crates/member/tasks/*.rs (the member's tasks)."""
    _workspace(small_project.root, 'mt = { write = ["out"] }', 'rt = { write = ["crates"] }')
    result = small_project.run("--explain", "rt")
    assert result.returncode == 1, (
        "a write grant covering another workspace member's Cargo.toml and tasks/ was "
        "accepted\n" + describe(result)
    )
    assert "allow-write-manifest" in result.stderr, describe(result)


def test_workspace_member_grant_on_its_own_subdirectory_is_accepted(small_project):
    _workspace(small_project.root, 'mt = { write = ["out"] }')
    result = _explain_in(small_project, small_project.root / "crates" / "member", "mt")
    assert result.returncode == 0, describe(result)


@pytest.mark.parametrize("where", ["parent-.cargo", "CARGO_HOME", "RUSTUP_HOME"])
def test_write_grant_on_cargo_configuration_outside_the_project(small_project, tmp_path, where):
    """Cargo reads `.cargo/config.toml` in every ancestor of the directory it runs in, and
    `$CARGO_HOME/config.toml`; `$CARGO_HOME/bin` and `$RUSTUP_HOME` hold the toolchain.
    A task that can write them gets host code run on the next build (rustc-wrapper, a
    replaced rustc), exactly like the project's own `.cargo`, which is refused."""
    extra_env = {}
    if where == "parent-.cargo":
        target = small_project.root.parent / ".cargo"
        grant = "../.cargo"
    else:
        target = tmp_path / where.lower()
        grant = str(target)
        extra_env[where] = str(target)
    target.mkdir()
    small_project.tasks({"t": f'{{ write = ["{grant}"] }}'})
    result = small_project.run("--explain", "t", extra_env=extra_env)
    assert result.returncode == 1, (
        f"a write grant on {target} ({where}), which the task's own next build reads, was "
        "accepted\n" + describe(result)
    )


def test_write_grant_overlapping_the_tool_cache_is_refused(small_project):
    (small_project.root / "out").mkdir()
    small_project.tasks({"t": '{ write = ["out"] }'})
    cache = small_project.root / "out" / "xdg-cache"
    result = small_project.run("--explain", "t", extra_env={"XDG_CACHE_HOME": str(cache)})
    assert result.returncode == 1, describe(result)
    assert "cache of compiled code" in result.stderr and "never writable" in result.stderr
