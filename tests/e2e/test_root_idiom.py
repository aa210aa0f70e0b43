"""The xtask root idiom: `CARGO_MANIFEST_DIR` names the directory whose `tasks/` holds the
task, at compile time (`env!`) and at run time, and the project and its grants are also
reachable at their host paths, with the same access and nothing more.

Real builds throughout: a package with a path dependency (which must keep its own
`CARGO_MANIFEST_DIR`), a workspace with a member, and the xtask-style example.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path

import pytest

from cargo_task import confine
from cargo_task.build import manifest_dir_wrapper
from tests.conftest import Project, cargo_calls, cargo_spy

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "xtask-style"

PROBE = """
use std::path::Path;

/// Prints CARGO_MANIFEST_DIR as compiled in and as set at run time, then tries each
/// argument: r:PATH, w:PATH, ls:PATH, or rj:/wj:RELATIVE for `Path::new(env!(...)).join(..)`.
pub fn main(dependency_dir: &str) {
    println!("compile={}", env!("CARGO_MANIFEST_DIR"));
    println!("run={}", std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|e| format!("<{e}>")));
    println!("dependency={dependency_dir}");
    for arg in std::env::args().skip(1) {
        let (op, path) = arg.split_once(':').unwrap();
        let joined = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
        let result = match op {
            "r" => std::fs::read_to_string(path).map(|s| s.trim().to_string()),
            "rj" => std::fs::read_to_string(&joined).map(|s| s.trim().to_string()),
            "w" => std::fs::write(path, "written by the task").map(|_| "written".to_string()),
            "wj" => std::fs::write(&joined, "written by the task").map(|_| "written".to_string()),
            "ls" => std::fs::read_dir(path).map(|d| {
                let mut names: Vec<_> = d.map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
                names.sort();
                names.join(",")
            }),
            _ => panic!("unknown op {op}"),
        };
        match result {
            Ok(v) => println!("{arg} -> ok {v}"),
            Err(e) => println!("{arg} -> err {:?}", e.kind()),
        }
    }
}
"""


def probe_task(dependency_dir: str = '""') -> str:
    return f"mod common;\nfn main() {{ common::main({dependency_dir}) }}\n"


def parse(stdout: str) -> dict[str, str]:
    seen = {}
    for line in stdout.splitlines():
        if " -> " in line:
            attempt, _, outcome = line.partition(" -> ")
            seen[attempt] = outcome
        else:
            key, _, value = line.partition("=")
            seen[key] = value
    return seen


@pytest.fixture(scope="module")
def package(tmp_path_factory) -> Project:
    """A package with `probe` (no grant) and `probe_w` (`write = ["out"]`), both using a
    path dependency that reports its own CARGO_MANIFEST_DIR. Tests must not change it
    except under out/."""
    base = tmp_path_factory.mktemp("root-idiom")
    project = Project(base / "package")
    project.manifest("""
        [package.metadata.tasks]
        probe_w = { write = ["out"] }

        [package.metadata.task-dependencies]
        helper = { path = "helper" }
    """, name="rooted")  # fmt: skip
    project.write("src/lib.rs", "")
    project.write("data/x", "data by the host path\n")
    (project.root / "out").mkdir()
    project.write("helper/Cargo.toml", '[package]\nname = "helper"\nversion = "0.1.0"\nedition = "2021"\n')
    project.write("helper/src/lib.rs", 'pub const DIR: &str = env!("CARGO_MANIFEST_DIR");\n')
    project.write("tasks/common/mod.rs", PROBE)
    project.write("tasks/probe.rs", probe_task("helper::DIR"))
    project.write("tasks/probe_w.rs", probe_task("helper::DIR"))
    project.write("../outside/secret.txt", "outside the project\n")
    return project


def run_probe(cargo_task, project: Project, task: str, *args: str, cwd: Path | None = None) -> dict[str, str]:
    result = cargo_task("-q", task, *args, cwd=cwd or project.root)
    assert result.returncode == 0, result.stderr
    return parse(result.stdout)


def test_manifest_dir_is_the_package_at_compile_and_run_time(package, cargo_task):
    seen = run_probe(cargo_task, package, "probe", cwd=package.root / "src")
    assert seen["compile"] == str(package.root)  # not the generated package under target/
    assert seen["run"] == str(package.root)
    assert seen["dependency"] == str(package.root / "helper")  # dependencies keep their own
    # the generated manifest says so, for a reader of target/cargo-task/
    (manifest,) = (package.root / "target" / "cargo-task").glob("*/Cargo.toml")
    assert f"manifest-dir = {json.dumps(str(package.root))}\n" in manifest.read_text()


def test_the_wrapper_is_shipped_executable_and_writable_by_its_owner_alone():
    wrapper = manifest_dir_wrapper()
    assert os.access(wrapper, os.X_OK), wrapper
    assert not wrapper.stat().st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def test_manifest_dir_is_the_owner_in_a_workspace(tmp_path, cargo_task):
    root = Project(tmp_path / "ws")
    root.write("Cargo.toml", '[workspace]\nmembers = ["crates/m"]\nresolver = "2"\n')
    root.write("tasks/common/mod.rs", PROBE)
    root.write("tasks/ws_probe.rs", probe_task())
    member = Project(root.root / "crates" / "m")
    member.manifest(name="m")
    member.write("src/lib.rs", "")
    member.write("tasks/common/mod.rs", PROBE)
    member.write("tasks/member_probe.rs", probe_task())
    for cwd in (root.root, member.root):  # a workspace task is the root's, wherever it runs
        seen = run_probe(cargo_task, root, "ws_probe", cwd=cwd)
        assert (seen["compile"], seen["run"]) == (str(root.root), str(root.root))
    seen = run_probe(cargo_task, member, "member_probe")
    assert (seen["compile"], seen["run"]) == (str(member.root), str(member.root))


def test_the_host_environments_value_does_not_reach_the_task(package, cargo_task):
    result = cargo_task("-q", "probe", cwd=package.root, CARGO_MANIFEST_DIR="/somewhere/else")
    assert result.returncode == 0, result.stderr
    assert parse(result.stdout)["run"] == str(package.root)


def test_the_project_is_readable_by_its_host_path(package, cargo_task):
    root = package.root
    seen = run_probe(cargo_task, package, "probe", f"r:{root}/data/x", "rj:data/x", "r:data/x", f"ls:{root}/data")
    assert seen[f"r:{root}/data/x"] == "ok data by the host path"
    assert seen["rj:data/x"] == "ok data by the host path"
    assert seen["r:data/x"] == "ok data by the host path"  # relative paths work as before
    assert seen[f"ls:{root}/data"] == "ok x"


def test_writing_by_host_path_needs_the_write_grant(package, cargo_task):
    root, out = package.root, package.root / "out"
    seen = run_probe(cargo_task, package, "probe_w", f"w:{root}/out/abs", "wj:out/joined", "w:out/rel")
    assert [seen[a] for a in (f"w:{root}/out/abs", "wj:out/joined", "w:out/rel")] == ["ok written"] * 3
    assert sorted(p.name for p in out.iterdir()) == ["abs", "joined", "rel"]
    assert (out / "joined").read_text() == "written by the task"
    for p in out.iterdir():
        p.unlink()
    # the same task without the grant, and the granted one outside its grant
    denied = run_probe(cargo_task, package, "probe", f"w:{root}/out/abs", "wj:out/joined", "w:out/rel")
    assert [denied[a] for a in (f"w:{root}/out/abs", "wj:out/joined", "w:out/rel")] == ["err PermissionDenied"] * 3
    beside = run_probe(cargo_task, package, "probe_w", f"w:{root}/data/x", f"w:{root}/out/../data/y", "wj:src/lib.rs")
    assert [beside[a] for a in (f"w:{root}/data/x", f"w:{root}/out/../data/y", "wj:src/lib.rs")] == [
        "err PermissionDenied"] * 3
    assert list(out.iterdir()) == []
    assert (root / "data" / "x").read_text() == "data by the host path\n"
    assert not (root / "data" / "y").exists() and (root / "src" / "lib.rs").read_text() == ""


def test_host_paths_outside_the_project_still_fail(package, cargo_task):
    outside = package.root.parent / "outside"
    attempts = {
        f"r:{outside}/secret.txt": "err NotFound",  # resolves inside the project, where it is absent
        f"ls:{outside}": "err NotFound",
        f"r:{package.root}/../outside/secret.txt": "err PermissionDenied",  # leaves the project
        "rj:../outside/secret.txt": "err PermissionDenied",
        f"w:{outside}/planted": "err PermissionDenied",
        "r:/etc/hostname": "err NotFound",
    }
    seen = run_probe(cargo_task, package, "probe_w", *attempts)
    for attempt, outcome in attempts.items():
        assert seen[attempt] == outcome, (attempt, seen[attempt])
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]


def test_explain_lists_the_host_paths_and_the_variable(package, cargo_task):
    result = cargo_task("--explain", "probe_w", cwd=package.root)
    assert result.returncode == 0, result.stderr
    root = package.root
    assert f"read-only  {root} -> / and {root}\n" in result.stdout
    assert f"writable   {root / 'out'} -> out and {root / 'out'}\n" in result.stdout
    assert f"environment: none granted; and always CARGO_MANIFEST_DIR={root}\n" in result.stdout
    assert "manifest-dir-wrapper.sh` in place of rustc for the tasks' own crate" in result.stdout


# -- freshness ---------------------------------------------------------------------------


@pytest.fixture
def spied(project, cargo_task, tmp_path):
    """cargo-task with a spy in place of cargo that counts builds (as test_freshness does),
    and a user's own RUSTC_WRAPPER that logs what it wraps into the generated package."""
    spy = cargo_spy(tmp_path)
    wrapper = tmp_path / "users-wrapper"
    wrapper.write_text('#!/bin/sh\n{ echo "$*" >> "$CARGO_MANIFEST_DIR/target/wrapped.log"; } 2>/dev/null\nexec "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IEXEC)
    project.manifest()
    project.write("tasks/where.rs", 'fn main() { println!("{} {}", env!("CARGO_MANIFEST_DIR"), '
                                    'std::env::var("CARGO_MANIFEST_DIR").unwrap()); }\n')  # fmt: skip
    generated = project.root / "target" / "cargo-task"

    def builds() -> int:
        return sum(words[0] == "build" for words in cargo_calls(project.root))

    def run(**env) -> tuple[str, int]:
        before = builds()
        result = cargo_task("-q", "where", cwd=project.root, CARGO=str(spy), **env)
        assert result.returncode == 0, result.stderr
        return result.stdout.strip(), builds() - before

    run.wrapper = wrapper
    run.generated = generated
    return run


def test_warm_runs_stay_warm(spied, project):
    expected = f"{project.root} {project.root}"
    assert spied() == (expected, 1)
    assert spied() == (expected, 0)
    assert spied() == (expected, 0)


def test_a_users_rustc_wrapper_still_wraps_the_tasks(spied, project):
    """cargo runs `RUSTC_WRAPPER WORKSPACE_WRAPPER rustc ...` for the tasks' crate."""
    expected = f"{project.root} {project.root}"
    assert spied(RUSTC_WRAPPER=str(spied.wrapper)) == (expected, 1)
    assert spied(RUSTC_WRAPPER=str(spied.wrapper)) == (expected, 0)
    logged = "".join(log.read_text() for log in spied.generated.glob("*/target/wrapped.log"))
    assert "manifest-dir-wrapper.sh " in logged and "--crate-name where" in logged


WRAPPER_PROBE = r'''
fn main() {
    let kind = |r: std::io::Result<()>| match r { Ok(()) => "OK".to_string(), Err(e) => format!("{:?}", e.kind()) };
    // Non-destructive: opened for appending but never written; a new file beside it.
    let open = std::fs::OpenOptions::new().append(true).open("WRAPPER").map(|_| ());
    let beside = std::fs::write("WRAPPER.planted", "#!/bin/sh\n");
    println!("cargo:rustc-env=PROBE_RESULTS=open:{};beside:{}", kind(open), kind(beside));
}
'''


@pytest.mark.skipif(confine.abi_version() == 0, reason="this kernel offers no Landlock")
def test_the_build_cannot_change_the_wrapper_it_runs(project, cargo_task):
    """The wrapper runs in every later build of every project: a build script that could
    rewrite it would outlive its build."""
    wrapper = manifest_dir_wrapper()
    planted = wrapper.with_name(wrapper.name + ".planted")
    before = (wrapper.read_bytes(), wrapper.stat().st_mode)
    project.manifest('[package.metadata.task-dependencies]\nhelper = { path = "helper" }\n')
    project.write("helper/Cargo.toml", '[package]\nname = "helper"\nversion = "0.1.0"\nedition = "2021"\n')
    project.write("helper/build.rs", WRAPPER_PROBE.replace("WRAPPER", str(wrapper)))
    project.write("helper/src/lib.rs", 'pub const RESULTS: &str = env!("PROBE_RESULTS");\n')
    project.write("tasks/probe.rs", 'fn main() { println!("{} {}", helper::RESULTS, env!("CARGO_MANIFEST_DIR")); }\n')
    try:
        result = cargo_task("-q", "probe", cwd=project.root)
    finally:
        planted_by_build = planted.exists()
        planted.unlink(missing_ok=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"open:PermissionDenied;beside:PermissionDenied {project.root}\n"
    assert not planted_by_build, "a build script wrote beside the wrapper"
    assert (wrapper.read_bytes(), wrapper.stat().st_mode) == before


# -- the example -------------------------------------------------------------------------


def test_the_xtask_style_example_runs(tmp_path, cargo_task, env):
    """examples/xtask-style: clap arguments, the root from CARGO_MANIFEST_DIR, codegen into
    a granted directory; only `root_path()` differs from the xtask it was ported from."""
    import subprocess

    root = tmp_path / "xtask-style"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns("target", "Cargo.lock"))
    generated = root / "crates" / "gql-syntax" / "src" / "generated" / "syntax_kind.rs"
    committed = generated.read_text()

    check = cargo_task("-q", "codegen", "--check", cwd=root)
    assert check.returncode == 0, check.stderr
    assert "crates/gql-syntax/src/generated/syntax_kind.rs is up to date" in check.stderr

    usage = cargo_task("-q", "codegen", "--help", cwd=root)
    assert usage.returncode == 0 and "Usage: codegen [OPTIONS]" in usage.stdout
    assert "--check" in usage.stdout
    wrong = cargo_task("-q", "codegen", "--nope", cwd=root)
    assert wrong.returncode != 0 and "unexpected argument '--nope'" in wrong.stderr

    kinds = root / "tasks" / "codegen" / "kinds_src.rs"
    kinds.write_text(kinds.read_text().replace('"null",', '"null", "repeatable",'))
    stale = cargo_task("-q", "codegen", "--check", cwd=root)
    assert stale.returncode == 1 and "is not up to date" in stale.stderr
    assert generated.read_text() == committed  # --check writes nothing

    update = cargo_task("-q", "codegen", "-v", cwd=root)
    assert update.returncode == 0, update.stderr
    assert f"project root: {root}\n" in update.stderr  # host paths, as the task prints them
    assert "syntax_kind.rs was out of date and has been updated" in update.stderr
    assert '"repeatable" => REPEATABLE_KW,' in generated.read_text()
    assert cargo_task("-q", "codegen", "--check", cwd=root).returncode == 0

    # what it generated is Rust that compiles and passes the crate's own test
    tested = subprocess.run(["cargo", "test", "-q", "--offline"], cwd=root, env=env,
                            capture_output=True, text=True, timeout=600)  # fmt: skip
    assert tested.returncode == 0, tested.stderr
