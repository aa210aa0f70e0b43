"""Project shapes and bad input, end to end: workspaces, dependencies, errors."""

from __future__ import annotations

import tomllib


def test_virtual_workspace_members_and_package_flag(project, cargo, cargo_task):
    project.write("Cargo.toml", """
        [workspace]
        members = ["crates/*"]
        resolver = "2"

        [workspace.metadata.tasks]
        where = { description = "Workspace-wide" }
    """)  # fmt: skip
    project.write("tasks/where.rs", 'fn main() { println!("cwd={:?}", std::fs::read_dir(".").unwrap().count() > 0); }\n')
    project.write("crates/app/Cargo.toml", """
        [package]
        name = "app"
        version = "0.1.0"
        edition = "2021"

        [package.metadata.tasks]
        own = { description = "The member's own" }
    """)  # fmt: skip
    project.write("crates/app/src/lib.rs", "")
    project.write("crates/app/marker.txt", "member file\n")
    project.write("crates/app/tasks/own.rs", 'fn main() { print!("{}", std::fs::read_to_string("marker.txt").unwrap()); }\n')

    root_list = cargo("task", cwd=project.root)
    assert root_list.returncode == 0, root_list.stderr
    assert "where    Workspace-wide" in root_list.stdout and "    own" not in root_list.stdout
    assert "Workspace members with tasks of their own: app (cargo task -p app)" in root_list.stdout

    member_list = cargo("task", cwd=project.root / "crates" / "app" / "src")
    assert "own      The member's own" in member_list.stdout and "where" in member_list.stdout

    # A member's task sees its own package directory; from the root, -p picks the member.
    result = cargo("task", "-p", "app", "own", cwd=project.root)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "member file\n"
    assert cargo_task("where", cwd=project.root / "crates" / "app").stdout.strip() == "cwd=true"

    hint = cargo_task("own", cwd=project.root)
    assert hint.returncode == 1
    assert "help: the workspace member `app` has it: run `cargo task -p app own`" in hint.stderr
    assert cargo_task("-p", "app@0.1.0", "own", cwd=project.root).stdout == "member file\n"

    unknown = cargo_task("-p", "nope", cwd=project.root)
    assert unknown.returncode == 1 and "error: package `nope` is not a member" in unknown.stderr


def test_a_task_dependency_from_crates_io(project, cargo_task):
    project.manifest("""
        [package.metadata.task-dependencies]
        heck = "0.5"
    """)  # fmt: skip
    project.write("tasks/case.rs", """
        use heck::ToSnakeCase;
        fn main() { println!("{}", std::env::args().nth(1).unwrap().to_snake_case()); }
    """)  # fmt: skip
    result = cargo_task("case", "HelloWorldAgain", cwd=project.root)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "hello_world_again\n"


def test_a_path_dependency_is_resolved_from_the_manifest(project, cargo_task):
    project.manifest("""
        [package.metadata.task-dependencies]
        helpers = { path = "helpers" }
    """)  # fmt: skip
    project.write("helpers/Cargo.toml", '[package]\nname = "helpers"\nversion = "0.1.0"\nedition = "2021"\n')
    project.write("helpers/src/lib.rs", 'pub fn answer() -> u32 { 42 }\n')
    project.write("helpers/build.rs", "fn main() {}\n")
    project.write("tasks/answer.rs", "fn main() { println!(\"{}\", helpers::answer()); }\n")
    before = cargo_task("--explain", "answer", cwd=project.root).stdout
    assert "task-dependencies: helpers" in before
    assert "code run on the host at build time: not known until the task is built once" in before
    result = cargo_task("answer", cwd=project.root)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "42\n"
    after = cargo_task("--explain", "answer", cwd=project.root).stdout
    assert "code run on the host at build time (" in after and "): helpers 0.1.0 (build script)" in after


def test_a_compile_error_shows_cargos_diagnostics_naming_the_users_file(project, cargo_task):
    project.manifest()
    project.write("tasks/broken.rs", "fn main() { let x: u32 = \"text\"; }\n")
    result = cargo_task("broken", cwd=project.root)
    assert result.returncode == 1
    assert "error[E0308]: mismatched types" in result.stderr
    assert "tasks/broken.rs:1" in result.stderr
    assert "error: could not compile task `broken`" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_toolchain_without_the_wasm_target_says_how_to_add_it(project, cargo, cargo_task):
    project.manifest()
    project.write("tasks/a.rs", "fn main() {}\n")
    # The machine's nightly toolchain has no wasm32-wasip2 std: `cargo +nightly task` uses it.
    result = cargo("+nightly", "task", "a", cwd=project.root)
    assert result.returncode == 1, result.stderr
    assert "error: the `wasm32-wasip2` target is not installed for the toolchain `nightly" in result.stderr
    assert "help: add it with `rustup target add wasm32-wasip2 --toolchain nightly" in result.stderr
    direct = cargo_task("a", cwd=project.root, RUSTUP_TOOLCHAIN="nightly")
    assert "target is not installed" in direct.stderr


def test_cargo_target_dir_holds_the_generated_package(project, cargo_task, tmp_path):
    project.manifest()
    project.write("tasks/a.rs", "fn main() { println!(\"ran\"); }\n")
    elsewhere = tmp_path / "elsewhere"
    result = cargo_task("a", cwd=project.root, CARGO_TARGET_DIR=str(elsewhere))
    assert result.returncode == 0, result.stderr
    manifests = list((elsewhere / "cargo-task").glob("*/Cargo.toml"))
    assert len(manifests) == 1
    generated = tomllib.loads(manifests[0].read_text())
    assert generated["bin"] == [{"name": "a", "path": str(project.root / "tasks" / "a.rs"),
                                 "test": False, "bench": False, "doc": False}]  # fmt: skip
    assert generated["workspace"] == {}
    assert not (project.root / "target").exists()


BAD_MANIFESTS = [
    ("[package\nname = 1", "error: failed to parse manifest at `{root}/Cargo.toml`"),
    ('[package]\nname = "x"\nversion = "0.1.0"\n[package.metadata.tasks.a]\ndescripton = "typo"\n',
     "error: unknown key `descripton` in `package.metadata.tasks.a` of `{root}/Cargo.toml`\n"
     "help: did you mean `description`?"),
    ('[package]\nname = "x"\nversion = "0.1.0"\n[package.metadata.tasks.ghost]\n',
     "error: task `ghost` is configured in `{root}/Cargo.toml` but has no file"),
    ('[package]\nname = "x"\nversion = "0.1.0"\n[package.metadata.tasks.a]\ntimeout = "forever"\n',
     "error: `timeout` in `package.metadata.tasks.a` of `{root}/Cargo.toml` must be a positive duration"),
    ('[package]\nname = "x"\nversion = "0.1.0"\n[package.metadata.tasks.a]\nread = ["missing"]\n',
     "error: task `a`: `read` path `missing` ({root}/missing) does not exist"),
    ('[package]\nname = "x"\nversion = "0.1.0"\n[package.metadata.tasks.a]\nwrite = ["."]\n',
     "error: task `a`: `write` path `.` would let the task change `{root}/Cargo.toml`"),
]


def test_bad_manifests_get_one_clear_error_and_exit_1(project, cargo_task):
    project.write("tasks/a.rs", "fn main() {}\n")
    for text, expected in BAD_MANIFESTS:
        (project.root / "Cargo.toml").write_text(text)
        for args in (["a"], []):
            result = cargo_task(*args, cwd=project.root)
            if not args and "task `a`" in expected:
                continue  # grants are checked when a task runs, not when listing
            assert result.returncode == 1, (text, result.stderr)
            assert expected.format(root=project.root) in result.stderr, result.stderr
            assert "Traceback" not in result.stderr
            assert len(result.stderr.splitlines()) <= 3


def test_outside_any_project(tmp_path, cargo_task):
    result = cargo_task(cwd=tmp_path)
    assert result.returncode == 1
    assert "error: could not find `Cargo.toml`" in result.stderr


def test_a_project_with_no_tasks_says_how_to_add_one(project, cargo_task):
    project.manifest()
    result = cargo_task(cwd=project.root)
    assert result.returncode == 0
    assert "warning: no tasks found" in result.stderr and "tasks/NAME.rs" in result.stderr


def test_a_missing_cargo_is_named(project, cargo_task):
    project.manifest()
    project.write("tasks/a.rs", "fn main() {}\n")
    result = cargo_task("a", cwd=project.root, CARGO="/nonexistent/cargo")
    assert result.returncode == 1
    assert "error: could not run `/nonexistent/cargo`: no such program" in result.stderr


def test_non_utf8_arguments_are_rejected_clearly(project, env):
    import subprocess

    from tests.conftest import CARGO_TASK

    project.manifest()
    project.write("tasks/a.rs", "fn main() {}\n")
    result = subprocess.run([CARGO_TASK, "a", b"caf\xe9"], cwd=project.root, env=env, capture_output=True)
    assert result.returncode == 1
    assert b"error: argument 1 is not valid UTF-8: b'caf\\xe9'" in result.stderr


def test_an_unwritable_cache_warns_and_still_runs_the_task(project, cargo_task, tmp_path):
    project.manifest()
    project.write("tasks/a.rs", 'fn main() { println!("ran"); }\n')
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    result = cargo_task("a", cwd=project.root, XDG_CACHE_HOME=str(blocker))
    assert result.returncode == 0, result.stderr
    assert result.stdout == "ran\n"
    assert "warning: could not write cargo-task's cache" in result.stderr
    assert "the next run will build again" in result.stderr


def test_an_unwritable_target_directory_is_a_clear_error(project, cargo_task, tmp_path):
    project.manifest()
    project.write("tasks/a.rs", "fn main() {}\n")
    blocker = tmp_path / "target-file"
    blocker.write_text("")
    result = cargo_task("a", cwd=project.root, CARGO_TARGET_DIR=str(blocker))
    assert result.returncode == 1
    assert "error: could not write the generated package in" in result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr


def test_odd_manifests_and_names(project, cargo_task):
    project.write("tasks/a.rs", "fn main() {}\n")
    (project.root / "Cargo.toml").write_bytes(b'[package]\nname = "x\xff"\n')
    result = cargo_task(cwd=project.root)
    assert result.returncode == 1 and "failed to parse manifest" in result.stderr
    assert "it is not UTF-8" in result.stderr
    project.manifest()
    project.write("tasks/build.rs", "fn main() {}\n")
    result = cargo_task(cwd=project.root)
    assert result.returncode == 1
    assert "error: invalid task name `build`" in result.stderr and "reserved" in result.stderr


def test_other_tools_task_tables_and_empty_member_task_dirs_are_left_alone(project, cargo_task):
    project.write("Cargo.toml", """
        [workspace]
        members = ["crates/*"]

        [workspace.metadata.tasklist]
        foo = 1
    """)  # fmt: skip
    project.write("tasks/a.rs", "fn main() {}\n")
    project.write("crates/b/Cargo.toml", '[package]\nname = "b"\nversion = "0.1.0"\n')
    project.write("crates/b/src/lib.rs", "")
    project.write("crates/b/tasks/util/mod.rs", "")
    result = cargo_task(cwd=project.root)
    assert result.returncode == 0, result.stderr
    assert "    a" in result.stdout and "Workspace members" not in result.stdout


def test_a_task_file_beside_a_package_does_not_block_other_grants(project, cargo_task):
    project.manifest("""
        [package.metadata.tasks]
        top = { path = "top.rs" }
        gen = { write = ["out"] }
    """)  # fmt: skip
    project.write("top.rs", "fn main() {}\n")
    project.write("out/.keep", "")
    project.write("tasks/gen.rs", "fn main() {}\n")
    assert cargo_task("--explain", "gen", cwd=project.root).returncode == 0


def test_sigterm_during_the_build_stops_cargo_too(project, env, tmp_path):
    import signal
    import subprocess
    import time

    from tests.conftest import CARGO_TASK

    project.manifest()
    project.write("tasks/slow.rs", "fn main() {}\n")
    finished = tmp_path / "rustc-finished"
    wrapper = tmp_path / "slow-rustc"
    wrapper.write_text(
        '#!/bin/sh\ncase "$*" in *slow.rs*) sleep 4; touch "' + str(finished) + '" ;; esac\nexec "$@"\n'
    )
    wrapper.chmod(0o755)
    process = subprocess.Popen([CARGO_TASK, "slow"], cwd=project.root, env={**env, "RUSTC_WRAPPER": str(wrapper)},
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    time.sleep(2)
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=30)
    assert process.returncode != 0
    time.sleep(4)
    assert not finished.exists(), "cargo (and the compiler it ran) kept running"
