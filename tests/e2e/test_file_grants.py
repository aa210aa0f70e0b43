"""One-file `read`/`write` grants, end to end: the file alone, written back atomically.

The task sees, at the granted file's directory, a private copy of it (and read-only copies
of what else it may read there); what it writes reaches the host when it has run to its
end, by a rename, and only for the granted file.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import CARGO_TASK, Project

EDIT_TASK = """
//! Do file operations named on the command line, in order.
use std::io::Write;
fn main() {
    for arg in std::env::args().skip(1) {
        let (op, rest) = arg.split_once(':').unwrap_or((arg.as_str(), ""));
        let result: std::io::Result<String> = match op {
            "r" => std::fs::read_to_string(rest).map(|s| s.trim().to_string()),
            "w" => {
                let (path, text) = rest.split_once('=').unwrap();
                std::fs::write(path, text).map(|_| "ok".into())
            }
            "a" => {
                let (path, text) = rest.split_once('=').unwrap();
                std::fs::OpenOptions::new().append(true).open(path)
                    .and_then(|mut f| f.write_all(text.as_bytes())).map(|_| "ok".into())
            }
            "rm" => std::fs::remove_file(rest).map(|_| "ok".into()),
            "ls" => std::fs::read_dir(rest).map(|d| {
                let mut names: Vec<_> = d.map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
                names.sort();
                names.join(",")
            }),
            "wait" => {
                println!("waiting for {rest}");
                while std::fs::metadata(rest).is_err() {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Ok("ok".into())
            }
            "sleep" => { std::thread::sleep(std::time::Duration::from_secs(30)); Ok("ok".into()) }
            "panic" => panic!("stopped on purpose"),
            "exit" => std::process::exit(rest.parse().unwrap()),
            _ => panic!("unknown op {op}"),
        };
        match result {
            Ok(v) => println!("{arg} -> ok {v}"),
            Err(e) => println!("{arg} -> err {:?}", e.kind()),
        }
    }
}
"""

FMT_TASK = """
//! Write unformatted code to src/gen.rs, format it with the host's rustfmt, read it back.
use cargo_task::process::Command;
fn main() {
    std::fs::write("src/gen.rs", "pub   fn  answer( )->u32{42}\\nmod other;\\n").unwrap();
    let status = Command::new("rustfmt").args(["--edition", "2021", "src/gen.rs"]).status();
    println!("rustfmt -> {:?}", status.map(|s| s.success()));
    println!("after: {}", std::fs::read_to_string("src/gen.rs").unwrap().replace('\\n', "|"));
}
"""


def _new_project(root: Path) -> Project:
    (root / "src").mkdir(parents=True)
    (root / "src" / "lib.rs").write_text("")
    return Project(root)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A project whose tasks hold one-file grants, and a directory outside it."""
    base = tmp_path_factory.mktemp("file-grants")
    outside = base / "outside"
    outside.mkdir()
    (outside / "config.toml").write_text("answer = 42\n")
    (outside / "secret.txt").write_text("do not read\n")
    project = _new_project(base / "project")
    project.manifest("""
        [package.metadata.tasks.edit]
        write = ["CHANGELOG.md", "docs/notes.md"]
        read = ["../outside/config.toml"]
        timeout = "5s"
        [package.metadata.tasks.fmt]
        write = ["src/gen.rs"]
        commands = ["rustfmt"]
    """)
    project.write("tasks/edit.rs", EDIT_TASK)
    project.write("tasks/fmt.rs", FMT_TASK)
    return project, outside


@pytest.fixture
def project(world):
    """The shared project with its files as each test expects them first."""
    project, outside = world
    root = project.root
    (root / "CHANGELOG.md").write_text("# Changelog\n")
    (root / "README.md").write_text("readme\n")
    (root / "docs").mkdir(exist_ok=True)
    (root / "docs" / "notes.md").write_text("notes\n")
    (root / "docs" / "other.md").write_text("other\n")
    (root / "src" / "gen.rs").write_text("")
    (root / "src" / "other.rs").write_text("pub   fn  untouched( ){}\n")
    for stray in ("new.txt", "src/go", "docs/new.md"):
        (root / stray).unlink(missing_ok=True)
    return project


def snapshot(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and "target" not in p.relative_to(root).parts
    }


def lines(result) -> list[str]:
    return result.stdout.splitlines()


def test_a_granted_file_is_written_back_and_nothing_else(project, cargo_task):
    root = project.root
    before = snapshot(root)
    result = cargo_task("edit", "a:CHANGELOG.md=- one\n", "r:README.md", "r:src/lib.rs", "ls:.",
                        "w:README.md=changed", "w:new.txt=new", "w:src/lib.rs=changed",
                        "w:docs/notes.md=new notes", "r:docs/other.md", cwd=root)  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = lines(result)
    assert "r:README.md -> ok readme" in out
    assert "r:src/lib.rs -> ok " in out or "r:src/lib.rs -> ok" in out
    assert "r:docs/other.md -> ok other" in out
    listed = next(line for line in out if line.startswith("ls:."))
    assert listed == "ls:. -> ok " + ",".join(sorted(os.listdir(root)))
    assert "w:src/lib.rs=changed -> err PermissionDenied" in out
    after = snapshot(root)
    assert after.pop("CHANGELOG.md") == b"# Changelog\n- one\n"
    assert after.pop("docs/notes.md") == b"new notes"
    before.pop("CHANGELOG.md"), before.pop("docs/notes.md")
    assert after == before  # README.md, src/lib.rs untouched; new.txt never reached the host
    assert not (root / "new.txt").exists()
    # What it wrote beside a granted file is discarded, and said so.
    assert "warning:" in result.stderr and "`new.txt`" in result.stderr
    # As root, the copy of README.md could be written (and was discarded); as anyone else its
    # read-only mode refused it.
    assert "`README.md`" in result.stderr or "w:README.md=changed -> err PermissionDenied" in out


def test_the_file_is_replaced_by_a_rename(project, cargo_task):
    """Atomic from the host's view: a reader holding the old file keeps the old content."""
    path = project.root / "CHANGELOG.md"
    with open(path, "rb") as held:
        inode = os.fstat(held.fileno()).st_ino
        result = cargo_task("edit", "w:CHANGELOG.md=rewritten", cwd=project.root)
        assert result.returncode == 0, result.stderr
        assert held.read() == b"# Changelog\n"
    assert path.read_text() == "rewritten"
    assert path.stat().st_ino != inode
    assert not [p for p in project.root.iterdir() if p.name.startswith(".cargo-task-")]


def test_the_host_path_from_cargo_manifest_dir_reaches_the_copy(project, cargo_task):
    root = project.root
    result = cargo_task("edit", f"a:{root}/CHANGELOG.md=- host path\n", f"r:{root}/README.md", cwd=root)
    assert result.returncode == 0, result.stderr
    assert f"r:{root}/README.md -> ok readme" in lines(result)
    assert (root / "CHANGELOG.md").read_text() == "# Changelog\n- host path\n"


def test_a_file_outside_the_project_is_read_alone(project, world, cargo_task):
    _, outside = world
    result = cargo_task("edit", "r:../outside/config.toml", f"r:{outside}/config.toml",
                        "r:../outside/secret.txt", f"ls:{outside}", cwd=project.root)  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = lines(result)
    assert "r:../outside/config.toml -> ok answer = 42" in out
    assert f"r:{outside}/config.toml -> ok answer = 42" in out
    assert "r:../outside/secret.txt -> err NotFound" in out
    assert f"ls:{outside} -> ok config.toml" in out


def test_a_file_to_create_is_created_when_the_task_ends(project, cargo_task):
    """`write` may name a file that does not exist yet (generated output that is not
    committed): its directory must exist; the task sees no file there until it writes one."""
    root = project.root
    (root / "docs" / "new.md").unlink(missing_ok=True)
    manifest = root / "Cargo.toml"
    original = manifest.read_text()
    manifest.write_text(original.replace('write = ["CHANGELOG.md", "docs/notes.md"]',
                                         'write = ["CHANGELOG.md", "docs/notes.md", "docs/new.md"]'))
    try:
        explained = cargo_task("--explain", "edit", cwd=root)
        assert "(this file alone; the task sees none yet" in explained.stdout, explained.stderr
        result = cargo_task("edit", "r:docs/new.md", "w:docs/new.md=created", cwd=root)
        assert result.returncode == 0, result.stderr
        assert "r:docs/new.md -> err NotFound" in lines(result)
        assert (root / "docs" / "new.md").read_text() == "created"
    finally:
        manifest.write_text(original)
        (root / "docs" / "new.md").unlink(missing_ok=True)


def test_deleting_a_granted_file_deletes_it(project, cargo_task):
    result = cargo_task("edit", "rm:docs/notes.md", cwd=project.root)
    assert result.returncode == 0, result.stderr
    assert not (project.root / "docs" / "notes.md").exists()
    assert (project.root / "docs" / "other.md").read_text() == "other\n"


@pytest.mark.parametrize(
    "ending, code, says",
    [("panic", 101, "panicked"), ("sleep", 124, "time limit")],
)
def test_a_task_that_does_not_finish_writes_nothing(project, cargo_task, ending, code, says):
    before = snapshot(project.root)
    result = cargo_task("edit", "w:CHANGELOG.md=half", ending, cwd=project.root)
    assert result.returncode == code, result.stderr
    assert says in result.stderr
    assert "`CHANGELOG.md` left as it was" in result.stderr
    assert snapshot(project.root) == before


def test_a_task_that_exits_with_an_error_still_wrote(project, cargo_task):
    """It ran to its end: its exit code is its own answer, and what it wrote stands."""
    result = cargo_task("edit", "w:CHANGELOG.md=done", "exit:1", cwd=project.root)
    assert result.returncode == 1, result.stderr
    assert (project.root / "CHANGELOG.md").read_text() == "done"


def _run_while(project: Project, env: dict[str, str], change) -> subprocess.CompletedProcess:
    """Run `edit`, which writes CHANGELOG.md and then waits for src/go; `change` the host
    meanwhile."""
    process = subprocess.Popen(
        [CARGO_TASK, "edit", "w:CHANGELOG.md=from the task", "wait:src/go"], cwd=project.root,
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        for line in process.stdout:
            if line.startswith("waiting"):
                break
        change()
        (project.root / "src" / "go").write_text("")
        out, err = process.communicate(timeout=60)
    finally:
        process.kill()
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def test_a_file_changed_on_the_host_meanwhile_is_not_overwritten(project, env, cargo_task):
    assert cargo_task("--build", "edit", cwd=project.root).returncode == 0
    path = project.root / "CHANGELOG.md"
    result = _run_while(project, env, lambda: path.write_text("edited by the user"))
    assert result.returncode != 0
    assert "changed on the host while the task ran" in result.stderr
    assert path.read_text() == "edited by the user"


def test_a_file_swapped_for_a_link_meanwhile_is_not_followed(project, world, env, cargo_task):
    _, outside = world
    assert cargo_task("--build", "edit", cwd=project.root).returncode == 0
    path = project.root / "CHANGELOG.md"
    victim = outside / "victim.txt"
    victim.write_text("victim\n")

    def swap():
        path.unlink()
        path.symlink_to(victim)

    try:
        result = _run_while(project, env, swap)
        assert result.returncode != 0
        assert victim.read_text() == "victim\n"
        assert path.is_symlink()
    finally:
        path.unlink()
        victim.unlink()


def test_a_granted_program_works_on_the_file_alone(project, cargo_task):
    """rustfmt sees the task's version of the file, formats it on the host, the task reads
    the result back; rustfmt may not touch the module file beside it."""
    root = project.root
    result = cargo_task("fmt", cwd=root)
    assert result.returncode == 0, result.stderr
    assert "after: pub fn answer() -> u32 {|    42|}|mod other;|" in lines(result)
    assert (root / "src" / "gen.rs").read_text() == "pub fn answer() -> u32 {\n    42\n}\nmod other;\n"
    assert (root / "src" / "other.rs").read_text() == "pub   fn  untouched( ){}\n"


def test_explain_shows_the_file_grants(project, cargo_task):
    result = cargo_task("--explain", "edit", cwd=project.root)
    assert result.returncode == 0, result.stderr
    root = project.root
    assert f"writable   {root}/CHANGELOG.md -> CHANGELOG.md and {root}/CHANGELOG.md" in result.stdout
    assert f"read-only  {root.parent}/outside/config.toml -> ../outside/config.toml" in result.stdout


@pytest.mark.parametrize(
    "grant, says",
    [
        ('write = ["Cargo.toml"]', "would let the task change"),
        ('write = ["link.md"]', "goes through a symbolic link"),
        ('write = ["missing/notes.md"]', "does not exist"),
    ],
)
def test_file_grants_are_checked_like_directories(tmp_path, cargo_task, grant, says):
    project = _new_project(tmp_path / "p")
    project.manifest(f"[package.metadata.tasks.edit]\n{grant}\n")
    project.write("tasks/edit.rs", "fn main() {}")
    (tmp_path / "elsewhere.md").write_text("x")
    (project.root / "link.md").symlink_to(tmp_path / "elsewhere.md")
    result = cargo_task("edit", cwd=project.root)
    assert result.returncode != 0
    assert says in result.stderr and "help:" in result.stderr
    assert "Traceback" not in result.stderr
