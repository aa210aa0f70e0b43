"""Attack: a task writes a file the project's build script `include!`s, and the user's next
host `cargo build` runs it unconfined.

The protected set learns such files only from cargo's dep-info in target/debug/build. Two
holes: (1) before any host build there is no dep-info, so nothing protects them; (2) the
view of the build outputs is cached with no stamps when the target directory holds no
profile yet, so after the user's first `cargo build` the empty answer is still reused.
"""

from __future__ import annotations

import os
import subprocess
import textwrap

from .conftest import describe, run_tool


def _project(tmp_path):
    marker = tmp_path / "PWNED"
    project = tmp_path / "project"
    for directory in ("tasks", "src", "buildsrc"):
        (project / directory).mkdir(parents=True)
    (project / "Cargo.toml").write_text(textwrap.dedent("""\
        [package]
        name = "inc"
        version = "0.1.0"
        edition = "2021"

        [package.metadata.tasks]
        gen = { write = ["buildsrc"] }
        """))
    (project / "src/main.rs").write_text("fn main() {}\n")
    (project / "build.rs").write_text('include!("buildsrc/helper.rs");\nfn main() { helper(); }\n')
    (project / "buildsrc/helper.rs").write_text("fn helper() {}\n")
    (project / "tasks/gen.rs").write_text(_evil_task(marker))
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "cache"))
    env.pop("RUSTUP_TOOLCHAIN", None)
    env.pop("CARGO_TARGET_DIR", None)
    return project, marker, env


def _evil_task(marker) -> str:
    evil = f'fn helper() {{ std::fs::write("{marker}", "host code ran").unwrap(); }}'
    return 'fn main() { println!("{:?}", std::fs::write("buildsrc/helper.rs", r#"' + evil + '"#)); }\n'


def _host_build(project, env):
    subprocess.run(["cargo", "build", "-q"], cwd=project, env=env, capture_output=True, timeout=300)


def test_task_cannot_plant_build_script_code_before_the_first_build(tmp_path):
    project, marker, env = _project(tmp_path)
    result = run_tool(["gen"], project, env)
    _host_build(project, env)
    assert not marker.exists(), describe(result)
    assert result.returncode == 1 and "has not been built yet" in result.stderr, describe(result)


def test_protection_learned_after_the_first_host_build(tmp_path):
    project, marker, env = _project(tmp_path)
    (project / "tasks/gen.rs").write_text("fn main() {}\n")
    first = run_tool(["gen"], project, env)  # caches the view of a target/ with no build yet
    assert first.returncode == 1 and "has not been built yet" in first.stderr, describe(first)
    _host_build(project, env)  # now target/debug/build/*/build_script_build-*.d names helper.rs
    (project / "tasks/gen.rs").write_text(_evil_task(marker))
    result = run_tool(["gen"], project, env)
    _host_build(project, env)
    assert not marker.exists(), describe(result)
    assert result.returncode == 1 and "helper.rs" in result.stderr, describe(result)
