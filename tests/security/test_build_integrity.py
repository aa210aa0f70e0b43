"""Build-time integrity: no `write` grant may reach code that runs on the host or in
another task. The protected set comes from cargo's own view (`cargo metadata`, dep-info),
for the whole workspace whatever the current directory, and every build is checked
against every task's `write` grants.

Each test sets up the attack for real (real manifests, real `cargo build` of the project
where the attack needs build output) and asserts the refusal and that nothing changed.
"""

from __future__ import annotations

import subprocess

import pytest

from .conftest import SECRET, describe, diff, snapshot

PROC_MACRO = '[package]\nname = "{name}"\nversion = "0.1.0"\nedition = "2021"\n\n[lib]\nproc-macro = true\n'
LIB = '[package]\nname = "{name}"\nversion = "0.1.0"\nedition = "2021"\n\n[dependencies]\n{deps}'


def _refused(result, task: str, changes: str) -> None:
    assert result.returncode == 1, describe(result)
    assert f"error: task `{task}`: `write` path" in result.stderr, describe(result)
    assert changes in result.stderr, describe(result)
    assert "Traceback" not in result.stderr


def test_transitive_path_proc_macro_is_protected_and_a_directory_beside_it_is_not(small_project):
    """app -> crates/a -> crates/b (a proc-macro, two levels down, not a member)."""
    root = small_project.root
    small_project.write("crates/a/Cargo.toml", LIB.format(name="a", deps='b = { path = "../b" }\n'))
    small_project.write("crates/a/src/lib.rs", "")
    small_project.write("crates/b/Cargo.toml", PROC_MACRO.format(name="b"))
    small_project.write("crates/b/src/lib.rs", "")
    (root / "crates/b/doc/out").mkdir(parents=True)
    small_project.write("Cargo.toml", LIB.format(name="app", deps='a = { path = "crates/a" }\n') + (
        '\n[package.metadata.tasks]\nevil = { write = ["crates/b/src"] }\n'
        'docs = { write = ["crates/b/doc/out"] }\nwide = { write = ["crates"] }\n'))
    small_project.write("tasks/evil.rs", "fn main() {}\n")
    small_project.write("tasks/docs.rs", "fn main() {}\n")
    small_project.write("tasks/wide.rs", "fn main() {}\n")
    _refused(small_project.run("--explain", "evil"), "evil", "proc-macro package `b`")
    _refused(small_project.run("--explain", "wide"), "wide", "the manifest of package `a`")
    result = small_project.run("--explain", "docs")
    assert result.returncode == 0, describe(result)
    assert f"writable   {root / 'crates/b/doc/out'} -> crates/b/doc/out" in result.stdout


def test_custom_build_script_path_is_protected(small_project):
    small_project.write("tools/gen.rs", "fn main() {}\n")
    small_project.write("Cargo.toml", LIB.format(name="app", deps="").replace(
        'edition = "2021"\n', 'edition = "2021"\nbuild = "tools/gen.rs"\n', 1)
        + '\n[package.metadata.tasks]\nt = { write = ["tools"] }\n')
    small_project.write("tasks/t.rs", "fn main() {}\n")
    _refused(small_project.run("--explain", "t"), "t", "the build script of package `app`")


def test_file_a_build_script_includes_is_protected_once_cargo_has_built_it(small_project):
    """`include!` in build.rs: only cargo's dep-info knows this file is build-time code."""
    root = small_project.root
    small_project.write("build.rs", 'fn main() { let _n: u32 = include!("gen/value.in"); }\n')
    small_project.write("gen/value.in", "7\n")
    small_project.write("Cargo.toml", LIB.format(name="app", deps="")
                        + '\n[package.metadata.tasks]\nt = { write = ["gen"] }\n')  # fmt: skip
    small_project.write("tasks/t.rs", "fn main() {}\n")
    built = subprocess.run(["cargo", "build", "-q"], cwd=root, env=small_project.env,
                           capture_output=True, text=True, timeout=300)  # fmt: skip
    assert built.returncode == 0, built.stderr
    _refused(small_project.run("--explain", "t"), "t", f"{root / 'gen' / 'value.in'}")


def test_target_directory_set_in_cargo_config_is_protected(small_project):
    small_project.write(".cargo/config.toml", '[build]\ntarget-dir = "build-out"\n')
    (small_project.root / "build-out").mkdir()
    small_project.tasks({"t": '{ write = ["build-out"] }'})
    _refused(small_project.run("--explain", "t"), "t", "cargo's build output")


def test_protected_set_is_the_whole_workspaces_from_any_directory(small_project):
    """A member's task built from `tools/` (its `path` key): a workspace task may not write
    it, whether the run starts at the root or in the member."""
    root = small_project.root
    small_project.write("Cargo.toml", '[workspace]\nmembers = ["m"]\nresolver = "2"\n\n'
                        '[workspace.metadata.tasks]\ngrab = { write = ["m/tools"] }\n')  # fmt: skip
    small_project.write("tasks/grab.rs", "fn main() {}\n")
    small_project.write("m/Cargo.toml", LIB.format(name="m", deps="")
                        + '\n[package.metadata.tasks]\nsecret = { path = "tools/secret.rs" }\n')  # fmt: skip
    small_project.write("m/src/lib.rs", "")
    small_project.write("m/tools/secret.rs", "fn main() {}\n")
    for cwd in (root, root / "m"):
        result = subprocess.run([*_tool(), "--explain", "grab"], cwd=cwd, env=small_project.env,
                                capture_output=True, text=True, timeout=120)  # fmt: skip
        _refused(result, "grab", "the source of task `secret`")


def _tool():
    from .conftest import CARGO_TASK

    return [CARGO_TASK]


CROSS_TASK = {
    "writer": '{ write = ["src/shared"] }',
    "victim": '{ env = { SECRET_GRANT = "only-for-victim" } }',
}


def _cross_task_project(small_project):
    small_project.write("src/shared/mod.rs", 'pub fn hello() -> &\'static str { "original" }\n')
    small_project.tasks(CROSS_TASK, victim=(
        '#[path = "../src/shared/mod.rs"]\nmod shared;\n'
        'fn main() { println!("victim ran: {}", shared::hello()); }\n'))


def test_a_task_built_from_a_file_another_task_may_write_is_refused(small_project):
    _cross_task_project(small_project)
    (small_project.root / "target").mkdir()  # the build's own output is not the attack
    before = snapshot(small_project.root, ("target",))
    result = small_project.run("victim")
    assert result.returncode == 1, describe(result)
    assert "victim ran" not in result.stdout
    assert f"task `victim` is built from `{small_project.root / 'src/shared/mod.rs'}`" in result.stderr, describe(result)
    assert "`write` grant" in result.stderr and "task `writer`" in result.stderr, describe(result)
    assert not diff(before, snapshot(small_project.root, ("target",)))


def test_once_built_its_sources_are_protected_from_new_grants(small_project):
    """The victim was built before the writer got its grant: the grant is refused."""
    small_project.write("src/shared/mod.rs", 'pub fn hello() -> &\'static str { "original" }\n')
    small_project.tasks({"writer": "{}", "victim": "{}"}, victim=(
        '#[path = "../src/shared/mod.rs"]\nmod shared;\n'
        'fn main() { println!("victim ran: {}", shared::hello()); }\n'))
    first = small_project.run("victim")
    assert first.returncode == 0 and "victim ran: original" in first.stdout, describe(first)
    small_project.tasks(CROSS_TASK, victim=(
        '#[path = "../src/shared/mod.rs"]\nmod shared;\n'
        'fn main() { println!("victim ran: {}", shared::hello()); }\n'))
    _refused(small_project.run("writer"), "writer", "a file task `victim` is built from")


def test_a_module_linked_out_of_the_project_is_refused(small_project, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "leak.rs").write_text(f'pub const LEAK: &str = "{SECRET}";\n')
    small_project.tasks({"t": "{}"}, t='mod leak;\nfn main() { println!("{}", leak::LEAK); }\n')
    (small_project.root / "tasks" / "leak.rs").symlink_to(outside / "leak.rs")
    result = small_project.run("t")
    assert result.returncode != 0, describe(result)
    assert SECRET not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("written", ["/proc", "/proc/self", "/sys", "/dev", "/"])
def test_kernel_and_device_trees_are_never_granted(small_project, written):
    for key in ("read", "write"):
        small_project.tasks({"t": f'{{ {key} = ["{written}"], allow-write-manifest = true }}'})
        result = small_project.run("--explain", "t")
        assert result.returncode == 1, describe(result)
        assert "which is never granted" in result.stderr, describe(result)
