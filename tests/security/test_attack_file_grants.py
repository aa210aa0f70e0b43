"""Attacks on one-file `read`/`write` grants (`write = ["CHANGELOG.md"]`).

At a granted file's directory the task sees a private staging directory; only the granted
file's copy goes back to the host, by rename. Each test runs real tasks built by real cargo
and asserts that nothing the grants do not name changed on the host.
"""

from __future__ import annotations

import os
import signal
import subprocess
import textwrap
from pathlib import Path

import pytest

from .conftest import CARGO_TASK, describe, diff, run_tool, snapshot, tool_env

SECRET = "SECRET-BESIDE-A-GRANTED-FILE-91c2"

# Operations named on the command line, in order; one line of outcome for each.
ATTACK = r"""
use std::io::Write;
#[allow(deprecated)]
fn symlink(target: &str, link: &str) -> std::io::Result<()> { std::fs::soft_link(target, link) }
fn run(program: &str, args: &[&str]) -> std::io::Result<String> {
    cargo_task::process::Command::new(program).args(args).output().map(|o| {
        format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
            .trim().replace('\n', "|")
    })
}
fn main() {
    for arg in std::env::args().skip(1) {
        let (op, rest) = arg.split_once(':').unwrap_or((arg.as_str(), ""));
        let pair = || rest.split_once('>').unwrap();
        let result: std::io::Result<String> = match op {
            "r" => std::fs::read_to_string(rest).map(|s| s.trim().replace('\n', "|")),
            "w" => { let (p, t) = rest.split_once('=').unwrap(); std::fs::write(p, t).map(|_| "ok".into()) }
            "a" => {
                let (p, t) = rest.split_once('=').unwrap();
                std::fs::OpenOptions::new().append(true).open(p)
                    .and_then(|mut f| f.write_all(t.as_bytes())).map(|_| "ok".into())
            }
            "big" => {
                let (p, n) = rest.split_once('=').unwrap();
                let block = vec![b'x'; 1 << 20];
                std::fs::File::create(p).and_then(|mut f| {
                    for _ in 0..n.parse::<usize>().unwrap() { f.write_all(&block)?; }
                    Ok("ok".into())
                })
            }
            "rm" => std::fs::remove_file(rest).map(|_| "ok".into()),
            "rmdir" => std::fs::remove_dir(rest).map(|_| "ok".into()),
            "mkdir" => std::fs::create_dir(rest).map(|_| "ok".into()),
            "ln" => { let (a, b) = pair(); std::fs::hard_link(a, b).map(|_| "ok".into()) }
            "sl" => { let (a, b) = pair(); symlink(a, b).map(|_| "ok".into()) }
            "mv" => { let (a, b) = pair(); std::fs::rename(a, b).map(|_| "ok".into()) }
            "ls" => std::fs::read_dir(rest).map(|d| {
                let mut names: Vec<_> = d.map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
                names.sort();
                names.join(",")
            }),
            "sh" => run("sh", &["-c", rest]),
            "shat" => {
                let (dir, script) = pair();
                cargo_task::process::Command::new("sh").args(["-c", script]).current_dir(dir).output()
                    .map(|o| format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
                        .trim().replace('\n', "|"))
            }
            "tool" => run("tool", &[]),
            "wait" => {
                println!("waiting for {rest}");
                while std::fs::metadata(rest).is_err() {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Ok("ok".into())
            }
            "swap" => (|| {
                // the staging directory, if a writable grant reaches it: a link in its place
                for entry in std::fs::read_dir("out")? {
                    let name = entry?.file_name().into_string().unwrap();
                    if name.starts_with("cargo-task-files-") {
                        std::fs::rename(format!("out/{name}/0"), "out/moved")?;
                        symlink(rest, &format!("out/{name}/0"))?;
                        return Ok(name);
                    }
                }
                Ok("no staging directory in reach".into())
            })(),
            "swapdir" => (|| {
                // a private directory of the tool's, if a writable grant reaches it
                let (prefix, target) = pair();
                for entry in std::fs::read_dir("out")? {
                    let name = entry?.file_name().into_string().unwrap();
                    if name.starts_with(prefix) {
                        std::fs::rename(format!("out/{name}"), format!("out/moved-{name}"))?;
                        symlink(target, &format!("out/{name}"))?;
                        return Ok(name);
                    }
                }
                Ok("none in reach".into())
            })(),
            "panic" => panic!("stopped on purpose"),
            "sleep" => { std::thread::sleep(std::time::Duration::from_secs(60)); Ok("ok".into()) }
            _ => panic!("unknown op {op}"),
        };
        match result {
            Ok(v) => println!("{arg} => ok {v}"),
            Err(e) => println!("{arg} => err {:?}", e.kind()),
        }
    }
}
"""

TASKS = {
    # a file at the project's root: the staging directory stands in for the whole project
    "edit": '{ write = ["CHANGELOG.md"], timeout = "10s" }',
    # beside a writable directory (links and renames between it and the staging directory),
    # a file in a subdirectory, and a read-only file outside the project
    "mixed": '{ write = ["out", "docs/notes.md"], read = ["../outside/shared/conf.txt"] }',
    # a file outside the project, beside a secret
    "outfile": '{ write = ["../outside/target.txt"], commands = ["sh -c"] }',
    # a read-only and a writable file in one directory outside the project
    "pair": '{ read = ["../outside/shared/conf.txt"], write = ["../outside/shared/out.txt"] }',
    # a writable directory, and a file with a program to touch it
    "steal": '{ write = ["out", "docs/secret.txt"], commands = ["sh -c"] }',
    # a file at the root beside a writable directory there
    "rootout": '{ write = ["out", "CHANGELOG.md"] }',
    # a writable directory and a program, no file grant
    "outsh": '{ write = ["out"], commands = ["sh -c"] }',
    # a host program that may do anything Landlock lets it
    "shell": '{ write = ["CHANGELOG.md"], commands = ["sh -c"] }',
    # a granted program whose executable is itself the granted file, on the PATH
    "planted": '{ write = ["bin/tool"], commands = ["tool"] }',
}


class World:
    def __init__(self, base: Path, env: dict[str, str]):
        self.base, self.env = base, env
        self.project, self.outside = base / "project", base / "outside"
        self.tmpdir = base / "tmpdir"  # the tool's TMPDIR: the staging directories' place

    def reset(self) -> None:
        p, o = self.project, self.outside
        for stray in ("out",):
            _empty(p / stray)
        for directory in (p / "docs", o / "shared"):
            _empty(directory)
        (p / "CHANGELOG.md").write_text("# Changelog\n")
        (p / "README.md").write_text("readme\n")
        (p / "docs" / "notes.md").write_text("notes\n")
        (p / "docs" / "other.md").write_text("other\n")
        (p / "docs" / "secret.txt").write_text("decoy\n")
        (p / "docs" / "sub").mkdir()
        (p / "docs" / "sub" / "deep.md").write_text("deep\n")
        (o / "secret.txt").write_text(SECRET + "\n")
        (o / "target.txt").write_text("target\n")
        (o / "shared" / "conf.txt").write_text("conf\n")
        (o / "shared" / "hidden.txt").write_text(SECRET + "\n")
        (o / "shared" / "out.txt").write_text("out\n")
        (p / "bin" / "tool").write_text("#!/bin/sh\necho honest tool\n")
        os.chmod(p / "bin" / "tool", 0o755)

    def run(self, task: str, *ops: str, **kw):
        return run_tool([task, *ops], self.project, {**self.env, **kw.pop("extra_env", {})}, **kw)

    def snap(self) -> dict:
        return snapshot(self.base, ("project/target", "tmpdir", "project/out"))


def _empty(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for entry in directory.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            _empty(entry)
            entry.rmdir()
        else:
            entry.unlink()


def outcomes(result) -> dict[str, str]:
    said = {}
    for line in result.stdout.splitlines():
        op, sep, outcome = line.partition(" => ")
        if sep:
            said[op] = outcome
    return said


@pytest.fixture(scope="module")
def world(tmp_path_factory, sec_cache_home) -> World:
    base = tmp_path_factory.mktemp("file-grant-attacks")
    project = base / "project"
    for directory in ("src", "tasks", "bin", "out", "docs", "target"):
        (project / directory).mkdir(parents=True)
    (base / "outside" / "shared").mkdir(parents=True)
    (base / "tmpdir").mkdir()
    (project / "src" / "lib.rs").write_text("")
    tables = "\n".join(f"{name} = {table}" for name, table in TASKS.items())
    (project / "Cargo.toml").write_text(
        '[package]\nname = "fileattacks"\nversion = "0.1.0"\nedition = "2021"\n\n'
        f"[package.metadata.tasks]\n{tables}\n"
    )
    for name in TASKS:
        (project / "tasks" / f"{name}.rs").write_text(ATTACK)
    world = World(base, tool_env(sec_cache_home, base / "tmpdir"))
    world.env["PATH"] = f"{project / 'bin'}{os.pathsep}{world.env['PATH']}"
    world.reset()
    built = run_tool(["--build"], project, world.env, timeout=900)
    assert built.returncode == 0, describe(built)
    return world


@pytest.fixture
def w(world) -> World:
    world.reset()
    yield world
    world.reset()


def changed(before: dict, after: dict, allowed: set[str]) -> list[str]:
    return [c for c in diff(before, after) if c.split(" ", 2)[1] not in allowed]



def test_the_task_writes_the_granted_file_and_nothing_else_through_the_staging_directory(w):
    """Siblings, new names, links, a directory in the granted file's place: all stay in the
    staging directory (and are discarded); the host sees only the granted file's content."""
    before = w.snap()
    result = w.run("edit", "w:README.md=x", "w:Cargo.toml=x", "w:new.txt=x", "w:src/lib.rs=x",
                   "w:tasks/edit.rs=x", "w:docs/sub/deep.md=x", "mkdir:docs/sub/n",
                   "ln:README.md>hl", "sl:/etc/passwd>abs", "sl:../outside/secret.txt>rel",
                   "r:rel", "r:../outside/secret.txt", "mv:README.md>moved",
                   "w:CHANGELOG.md=from the task")  # fmt: skip
    assert result.returncode == 0, describe(result)
    said = outcomes(result)
    for op in ("w:src/lib.rs=x", "w:tasks/edit.rs=x", "w:docs/sub/deep.md=x", "mkdir:docs/sub/n",
               "sl:/etc/passwd>abs", "r:../outside/secret.txt"):  # fmt: skip
        assert said[op].startswith("err"), describe(result)
    assert SECRET not in result.stdout + result.stderr
    assert "warning:" in result.stderr and "discarded" in result.stderr
    assert (w.project / "CHANGELOG.md").read_text() == "from the task"
    assert changed(before, w.snap(), {"project/CHANGELOG.md", "project"}) == []
    assert not [p for p in w.project.iterdir() if p.name.startswith(".cargo-task-")]


@pytest.mark.parametrize(
    "ops, why",
    [
        (("rm:CHANGELOG.md", "mkdir:CHANGELOG.md"), "something other than a file"),
        (("rm:CHANGELOG.md", "sl:Cargo.toml>CHANGELOG.md"), "something other than a file"),
        (("rm:CHANGELOG.md", "sl:../outside/w/x>CHANGELOG.md"), "something other than a file"),
    ],
)
def test_the_granted_name_replaced_by_a_link_or_directory_is_not_followed(w, ops, why):
    before = w.snap()
    result = w.run("edit", *ops)
    said = outcomes(result)
    if all(v.startswith("ok") for v in said.values()):  # the replacement was made: refused
        assert result.returncode != 0 and why in result.stderr, describe(result)
        assert "error:" in result.stderr and "help:" in result.stderr
        assert "Traceback" not in result.stderr
    assert changed(before, w.snap(), set()) == [], describe(result)


def test_a_rename_over_the_granted_name_carries_only_content(w):
    """A sibling's copy renamed over the granted name: its content (readable anyway) is
    what the task wrote; the sibling itself is untouched on the host."""
    before = w.snap()
    result = w.run("edit", "mv:Cargo.toml>CHANGELOG.md", "mv:README.md>Cargo.toml")
    assert result.returncode == 0, describe(result)
    assert (w.project / "CHANGELOG.md").read_text() == (w.project / "Cargo.toml").read_text()
    assert changed(before, w.snap(), {"project/CHANGELOG.md", "project"}) == []


def test_links_between_a_writable_directory_and_the_staging_directory(w):
    """Hard links from read-only places are refused; links between the writable directory
    and the staging directory reach no host file but the granted one (written by rename)."""
    before = w.snap()
    result = w.run("mixed", "ln:Cargo.toml>out/cargo", "ln:src/lib.rs>docs/lib",
                   "ln:docs/sub/deep.md>out/deep", "ln:docs/other.md>out/o", "w:out/o=pwned",
                   "ln:docs/notes.md>out/n", "mv:out/o>docs/notes.md", "w:out/n=late",
                   "sl:../CHANGELOG.md>out/cl", "w:out/cl=through the link",
                   "r:../outside/shared/conf.txt", "ls:../outside/shared",
                   "w:../outside/shared/conf.txt=x", "r:../outside/shared/hidden.txt",
                   "w:../outside/shared/new.txt=x")  # fmt: skip
    assert result.returncode == 0, describe(result)
    said = outcomes(result)
    for op in ("ln:Cargo.toml>out/cargo", "ln:src/lib.rs>docs/lib", "ln:docs/sub/deep.md>out/deep",
               "w:../outside/shared/conf.txt=x", "r:../outside/shared/hidden.txt",
               "w:../outside/shared/new.txt=x"):  # fmt: skip
        assert said[op].startswith("err"), describe(result)
    assert said["ls:../outside/shared"] == "ok conf.txt"  # the read-only grant's file alone
    assert (w.project / "docs" / "notes.md").read_text() == "pwned"  # the granted file
    assert changed(before, w.snap(), {"project/docs/notes.md", "project/docs"}) == []
    assert (w.project / "CHANGELOG.md").read_text() == "# Changelog\n"


def test_a_file_outside_the_project_shows_no_sibling(w):
    before = w.snap()
    outside = w.outside
    result = w.run("outfile", f"ls:{outside}", "ls:../outside", "r:../outside/secret.txt",
                   "w:../outside/secret.txt=x", "w:../outside/new.txt=x", "ls:../outside/shared",
                   "r:../outside/../outside/secret.txt", "r:../outside/./secret.txt",
                   f"r:{outside}/../outside/secret.txt",
                   "shat:../outside>cat secret.txt; ls; echo x > new.txt; cat target.txt",
                   "shat:../outside/..>ls outside",
                   "w:../outside/target.txt=written")  # fmt: skip
    assert result.returncode == 0, describe(result)
    said = outcomes(result)
    for op in ("r:../outside/../outside/secret.txt", "r:../outside/./secret.txt",
               f"r:{outside}/../outside/secret.txt", "shat:../outside/..>ls outside"):  # fmt: skip
        assert SECRET not in said[op] and "target.txt" not in said[op], describe(result)
    assert "target" in said["shat:../outside>cat secret.txt; ls; echo x > new.txt; cat target.txt"]
    assert said[f"ls:{outside}"] == "ok target.txt" and said["ls:../outside"] == "ok target.txt"
    assert said["r:../outside/secret.txt"].startswith("err")
    assert said["ls:../outside/shared"].startswith("err")
    assert SECRET not in result.stdout
    assert (outside / "target.txt").read_text() == "written"
    assert changed(before, w.snap(), {"outside/target.txt", "outside"}) == []


def test_a_host_program_may_write_the_granted_file_alone(w):
    """`sh -c` under the file's Landlock rule: in place into the file, nothing else."""
    before = w.snap()
    attempts = {
        "echo sibling > README.md": "README.md",
        "echo new > new.txt": "new.txt",
        "mv CHANGELOG.md moved": "moved",
        "ln CHANGELOG.md hardlink": "hardlink",
        "ln -s /etc/passwd CHANGELOG.link": "CHANGELOG.link",
        "rm CHANGELOG.md": None,
        "echo x > docs/new.md": "docs/new.md",
        f"echo x > {w.outside}/secret.txt": None,
    }
    ops = [f"sh:{script} && echo DONE" for script in attempts]
    result = w.run("shell", "w:CHANGELOG.md=from the task\n", *ops,
                   "sh:cat CHANGELOG.md && echo program >> CHANGELOG.md", "r:CHANGELOG.md")  # fmt: skip
    assert result.returncode == 0, describe(result)
    said = outcomes(result)
    for op in ops:
        assert "DONE" not in said[op], describe(result)
    assert said["r:CHANGELOG.md"] == "ok from the task|program", describe(result)
    assert (w.project / "CHANGELOG.md").read_text() == "from the task\nprogram\n"
    assert changed(before, w.snap(), {"project/CHANGELOG.md", "project"}) == []


def test_a_host_program_changes_no_mode_beyond_the_granted_file(w):
    """Landlock does not govern chmod: a granted program must still not change the mode of
    a sibling, of the project's manifest or of a file outside the project."""
    before = w.snap()
    ops = [f"sh:chmod 777 {path} && echo DONE"
           for path in ("README.md", "Cargo.toml", f"{w.outside}/secret.txt")]  # fmt: skip
    result = w.run("shell", *ops)
    assert result.returncode == 0, describe(result)
    try:
        assert changed(before, w.snap(), set()) == [], describe(result)
    finally:
        for path in (w.project / "README.md", w.project / "Cargo.toml", w.outside / "secret.txt"):
            os.chmod(path, 0o644)


def test_a_granted_file_on_the_path_is_not_run_as_the_granted_program(w):
    """`write = ["bin/tool"]` with `bin` on the PATH and `commands = ["tool"]`: the task
    rewrites the program (written back before the program starts) and runs its own code in
    place of the granted one. The PATH check refuses writable directories; a writable file
    must be refused as well."""
    before = w.snap()
    result = w.run("planted", "w:bin/tool=#!/bin/sh\necho PLANTED; id -u\n", "tool")
    try:
        assert "PLANTED" not in outcomes(result)["tool"], describe(result)
        assert changed(before, w.snap(), {"project/bin/tool", "project/bin"}) == []
    finally:
        w.reset()


def test_a_granted_hard_link_to_the_manifest_is_not_written_through(tmp_path, sec_cache_home):
    """`notes.md` is a hard link to Cargo.toml: the grant check is by path, the write-back
    by rename (the link is broken, Cargo.toml stays), but a granted program's Landlock rule
    is the inode's and it writes in place: into Cargo.toml."""
    project = tmp_path / "project"
    (project / "tasks").mkdir(parents=True)
    (project / "src").mkdir()
    (project / "src" / "lib.rs").write_text("")
    (project / "Cargo.toml").write_text(
        '[package]\nname = "hl"\nversion = "0.1.0"\nedition = "2021"\n\n[package.metadata.tasks]\n'
        'edit = { write = ["notes.md"], commands = ["sh -c"] }\n'
    )
    (project / "tasks" / "edit.rs").write_text(ATTACK)
    os.link(project / "Cargo.toml", project / "notes.md")
    env = tool_env(sec_cache_home)
    built = run_tool(["--build", "edit"], project, env, timeout=900)
    assert built.returncode == 0, describe(built)
    manifest = (project / "Cargo.toml").read_bytes()
    result = run_tool(["edit", "sh:echo '[evil]' >> notes.md && echo DONE", "w:notes.md=by the task"],
                      project, env)  # fmt: skip
    assert "Traceback" not in result.stderr
    assert (project / "Cargo.toml").read_bytes() == manifest, describe(result)
    assert result.returncode != 0 and "hard links" in result.stderr, describe(result)
    assert result.stderr.count("error:") == 1 and "help:" in result.stderr
    assert "DONE" not in result.stdout  # refused before the task started


@pytest.mark.parametrize(
    "grant, says",
    [
        ('write = ["Cargo.toml"]', "would let the task change"),
        ('write = ["./src/../Cargo.toml"]', "would let the task change"),
        ('write = ["tasks/edit.rs"]', "would let the task change"),
        ('write = ["tasks/other.rs"]', "would let the task change"),
        ('write = ["build.rs"]', "would let the task change"),
        ('write = [".cargo/config.toml"]', "would let the task change"),
        ('write = ["dep/src/lib.rs"]', "would let the task change"),
        ('write = ["tdep/src/lib.rs"]', "would let the task change"),
        ('write = ["Cargo.lock"]', "would let the task change"),
        ('write = [".git/config"]', "would let the task change"),
        ('write = ["target/cargo-task/x.txt"]', "would let the task change"),
        ('write = ["rust-toolchain.toml"]', "would let the task change"),
        ('write = ["{cache}/x.txt"]', "cache"),
        ('write = ["/dev/null"]', "neither a directory nor a file"),
        ('write = ["/proc/self/environ"]', "never granted"),
        ('read = ["/proc/self/environ"]', "never granted"),
        ('write = ["fifo"]', "neither a directory nor a file"),
        ('write = ["link.md"]', "symbolic link"),
        ('write = ["linkdir/x.md"]', "symbolic link"),
        ('write = ["line\\nbreak.md"]', "without control characters"),
    ],
)
def test_file_grants_on_protected_or_odd_files_are_refused(small_project, grant, says):
    p = small_project
    cache = Path(p.env["XDG_CACHE_HOME"]) / "cargo-task-wasm"
    cache.mkdir(parents=True, exist_ok=True)
    (cache / "x.txt").write_text("cache\n")
    grant = grant.replace("{cache}", str(cache))
    p.write("Cargo.toml", '[package]\nname = "small"\nversion = "0.1.0"\nedition = "2021"\n'
            'build = "build.rs"\n\n[dependencies]\ndep = { path = "dep" }\n\n'
            f'[package.metadata.tasks.edit]\n{grant}\n[package.metadata.tasks.other]\n'
            '\n[package.metadata.task-dependencies]\ntdep = { path = "tdep" }\n')  # fmt: skip
    p.write("Cargo.lock", "# lock\n")
    p.write("rust-toolchain.toml", "[toolchain]\nchannel = \"stable\"\n")
    p.write("build.rs", "fn main() {}\n")
    p.write(".git/config", "[core]\n")
    p.write("target/cargo-task/x.txt", "build output\n")
    p.write(".cargo/config.toml", "# config\n")
    p.write("dep/Cargo.toml", '[package]\nname = "dep"\nversion = "0.1.0"\nedition = "2021"\n')
    p.write("dep/src/lib.rs", "")
    p.write("tdep/Cargo.toml", '[package]\nname = "tdep"\nversion = "0.1.0"\nedition = "2021"\n')
    p.write("tdep/src/lib.rs", "")
    p.write("tasks/edit.rs", "fn main() {}\n")
    p.write("tasks/other.rs", "fn main() {}\n")
    os.mkfifo(p.root / "fifo")
    (p.root / "link.md").symlink_to(p.root / "build.rs")
    (p.root / "linkdir").symlink_to(p.root / "tasks")
    p.write("tasks/x.md", "x\n")
    before = snapshot(p.root, ("target",))
    for args in (("--explain", "edit"), ("edit",)):
        result = p.run(*args)
        assert result.returncode != 0, describe(result)
        assert says in result.stderr, describe(result)
        assert result.stderr.count("error:") == 1 and "help:" in result.stderr, describe(result)
        assert "Traceback" not in result.stderr
    assert diff(before, snapshot(p.root, ("target",))) == []


def test_a_read_only_file_beside_a_writable_one_stays_read_only(w):
    before = w.snap()
    shared = "../outside/shared"
    result = w.run("pair", f"ls:{shared}", f"w:{shared}/conf.txt=x", f"a:{shared}/conf.txt=x",
                   f"rm:{shared}/conf.txt", f"mv:{shared}/out.txt>{shared}/conf.txt",
                   f"r:{shared}/hidden.txt", f"w:{shared}/out.txt=written")  # fmt: skip
    assert result.returncode == 0, describe(result)
    said = outcomes(result)
    assert said[f"ls:{shared}"] == "ok conf.txt,out.txt", describe(result)
    assert said[f"r:{shared}/hidden.txt"].startswith("err")
    assert (w.outside / "shared" / "out.txt").read_text() == "written"
    assert (w.outside / "shared" / "conf.txt").read_text() == "conf\n"
    assert changed(before, w.snap(), {"outside/shared/out.txt", "outside/shared"}) == []


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_a_task_stopped_by_a_signal_mid_run_writes_nothing(w, signum):
    before = w.snap()
    process = subprocess.Popen(
        [CARGO_TASK, "edit", "w:CHANGELOG.md=half written", "w:README.md=x", "wait:never"],
        cwd=w.project, env=w.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        for line in process.stdout:
            if line.startswith("waiting"):
                break
        process.send_signal(signum)
        out, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode != 0, err
    assert "Traceback" not in err and err.count("error:") == 1, err
    assert "`CHANGELOG.md` left as it was" in err, err
    assert changed(before, w.snap(), set()) == []
    assert not list(w.tmpdir.iterdir())  # the staging directory is gone


def test_the_host_file_swapped_for_a_hard_link_to_the_manifest_meanwhile(w):
    """The identity check sees the swap; neither name is written."""
    before_manifest = (w.project / "Cargo.toml").read_bytes()
    process = subprocess.Popen(
        [CARGO_TASK, "edit", "w:CHANGELOG.md=from the task", "wait:src/go"],
        cwd=w.project, env=w.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        for line in process.stdout:
            if line.startswith("waiting"):
                break
        (w.project / "CHANGELOG.md").unlink()
        os.link(w.project / "Cargo.toml", w.project / "CHANGELOG.md")
        (w.project / "src" / "go").write_text("")
        out, err = process.communicate(timeout=60)
    finally:
        process.kill()
        (w.project / "src" / "go").unlink(missing_ok=True)
        (w.project / "CHANGELOG.md").unlink()
    assert process.returncode != 0 and "changed on the host" in err, err
    assert (w.project / "Cargo.toml").read_bytes() == before_manifest


def test_names_the_task_makes_are_shown_not_obeyed(w):
    """Names of discarded files come from the task: no newline or escape reaches stderr."""
    before = w.snap()
    result = w.run("edit", "w:evil\x1b[2J\nerror: forged\r.md=x", "w:x\x9b31m=x")
    assert result.returncode == 0, describe(result)
    assert "\x1b" not in result.stderr and "\x9b" not in result.stderr and "\r" not in result.stderr
    assert "\nerror: forged" not in result.stderr and result.stderr.count("warning:") == 1
    assert changed(before, w.snap(), set()) == []


def test_a_huge_write_is_written_whole_or_not_at_all(w):
    before = w.snap()
    result = w.run("edit", "big:CHANGELOG.md=48", "big:junk.bin=48")
    assert result.returncode == 0, describe(result)
    assert (w.project / "CHANGELOG.md").stat().st_size == 48 << 20
    assert not (w.project / "junk.bin").exists()
    assert changed(before, w.snap(), {"project/CHANGELOG.md", "project"}) == []
    assert not list(w.tmpdir.iterdir())


def test_explain_tells_the_file_grants_as_they_are(w):
    result = w.run("--explain", "mixed")
    assert result.returncode == 0, describe(result)
    p, o = w.project, w.outside
    assert f"writable   {p}/docs/notes.md -> docs/notes.md" in result.stdout, result.stdout
    assert f"read-only  {o}/shared/conf.txt -> ../outside/shared/conf.txt" in result.stdout
    assert f"writable   {p}/out -> out" in result.stdout
    assert f"{o}/shared/hidden.txt" not in result.stdout and f"{p}/docs -> " not in result.stdout



def test_a_staging_directory_within_reach_of_a_write_grant_is_not_a_way_out(w):
    """TMPDIR inside a writable grant: the task can replace its staging directory by a link
    to a directory outside its grants; the tool's write-back would then read a file there
    into the project, and its copy after a program would write one there."""
    before = w.snap()
    result = w.run("steal", "swap:../../../outside", "w:docs/secret.txt=from the task",
                   "sh:cat docs/secret.txt; echo PAYLOAD > docs/secret.txt",
                   extra_env={"TMPDIR": str(w.project / "out")})  # fmt: skip
    assert SECRET not in result.stdout, describe(result)
    assert (w.outside / "secret.txt").read_text() == SECRET + "\n", describe(result)
    assert SECRET not in (w.project / "docs" / "secret.txt").read_text()
    assert changed(before, w.snap(), set()) == []
    assert result.returncode != 0 and "TMPDIR" in result.stderr, describe(result)
    assert result.stderr.count("error:") == 1 and "help:" in result.stderr
    assert "Traceback" not in result.stderr


def test_another_tasks_module_granted_as_one_file_never_runs_as_written(small_project):
    """Task `a` may write `src/shared.rs`, which task `b` is built from: `a` would run its
    code with `b`'s grants. Either `a` is refused the file, or `b` refuses to build."""
    p = small_project
    p.tasks(
        {"a": '{ write = ["src/shared.rs"] }', "b": "{}"},
        a='fn main() { std::fs::write("src/shared.rs", "pub const WHO: &str = \\"planted\\";").unwrap(); }\n',
        b='#[path = "../src/shared.rs"]\nmod shared;\nfn main() { println!("b says {}", shared::WHO); }\n',
    )
    p.write("src/shared.rs", 'pub const WHO: &str = "honest";\n')
    first = p.run("b")
    assert "b says" not in first.stdout and "which task `a` may write" in first.stderr, describe(first)
    assert first.stderr.count("error:") == 1 and "help:" in first.stderr
    attack = p.run("a")
    assert "Traceback" not in attack.stderr
    after = p.run("b")
    assert "planted" not in after.stdout, describe(attack) + describe(after)
    if after.returncode != 0:
        assert after.stderr.count("error:") == 1 and "help:" in after.stderr, describe(after)


def test_a_directory_too_big_to_copy_is_refused_cleanly(w):
    """More than 64 MiB beside a granted file: one error, nothing written, nothing left."""
    big = w.project / "big.bin"
    with open(big, "wb") as f:
        f.truncate(65 << 20)  # sparse: its size is what counts
    try:
        before = w.snap()
        result = w.run("edit", "w:CHANGELOG.md=x")
        assert result.returncode != 0, describe(result)
        assert result.stderr.count("error:") == 1 and "help:" in result.stderr, describe(result)
        assert "Traceback" not in result.stderr and "64 MiB" in result.stderr
        assert changed(before, w.snap(), set()) == []
        assert not list(w.tmpdir.iterdir())
    finally:
        big.unlink()


def test_a_programs_home_within_reach_of_a_write_grant_is_not_a_way_out(w):
    before = w.snap()
    result = w.run("outsh", "sh:echo first", "swapdir:cargo-task-home->../../outside",
                   "sh:echo PAYLOAD > $HOME/secret.txt; cat $HOME/secret.txt",
                   extra_env={"TMPDIR": str(w.project / "out")})  # fmt: skip
    try:
        assert (w.outside / "secret.txt").read_text() == SECRET + "\n", describe(result)
        assert changed(before, w.snap(), set()) == []
    finally:
        w.reset()


def test_a_granted_name_with_a_newline_forges_no_line(small_project):
    p = small_project
    p.tasks({"edit": '{ write = ["x\\nerror: forged\\u001b[2J"] }'})
    result = p.run("--explain", "edit")
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "\x1b" not in result.stderr
    assert [line for line in result.stderr.splitlines() if "error:" in line] == [
        result.stderr.splitlines()[0]], describe(result)  # one line says `error:`, the first


def test_a_member_task_granted_a_file_of_the_workspace_root_sees_nothing_else(tmp_path, sec_cache_home):
    """A workspace member's task may write `../README.md`: at `..` it sees that file alone,
    not the workspace's manifest or other members; the manifest itself cannot be granted."""
    ws = tmp_path / "ws"
    for member in ("m", "other"):
        (ws / member / "src").mkdir(parents=True)
        (ws / member / "src" / "lib.rs").write_text("")
        (ws / member / "Cargo.toml").write_text(
            f'[package]\nname = "{member}"\nversion = "0.1.0"\nedition = "2021"\n')
    (ws / "Cargo.toml").write_text('[workspace]\nmembers = ["m", "other"]\nresolver = "2"\n')
    (ws / "README.md").write_text("workspace readme\n")
    (ws / "notes.txt").write_text(SECRET + "\n")
    with open(ws / "m" / "Cargo.toml", "a") as f:
        f.write('\n[package.metadata.tasks]\nedit = { write = ["../README.md"] }\n'
                'manifest = { write = ["../Cargo.toml"] }\n')
    (ws / "m" / "tasks").mkdir()
    (ws / "m" / "tasks" / "edit.rs").write_text(ATTACK)
    (ws / "m" / "tasks" / "manifest.rs").write_text("fn main() {}\n")
    env = tool_env(sec_cache_home)
    before = snapshot(ws, ("target", "m/target"))
    result = run_tool(["edit", "ls:..", "r:../notes.txt", "r:../Cargo.toml", "w:../Cargo.toml=x",
                       "w:../other/src/lib.rs=x", "w:../README.md=from the member"],
                      ws / "m", env, timeout=900)  # fmt: skip
    assert result.returncode == 0, describe(result)
    said = outcomes(result)
    assert said["ls:.."] == "ok README.md", describe(result)
    for op in ("r:../notes.txt", "r:../Cargo.toml", "w:../other/src/lib.rs=x"):
        assert said[op].startswith("err"), describe(result)
    assert SECRET not in result.stdout
    assert (ws / "README.md").read_text() == "from the member"
    refused = run_tool(["manifest"], ws / "m", env)
    assert refused.returncode != 0 and "would let the task change" in refused.stderr, describe(refused)
    assert [c for c in diff(before, snapshot(ws, ("target", "m/target")))
            if c.split(" ", 2)[1] not in (".", "README.md")] == []  # fmt: skip


def test_a_root_file_grant_beside_a_writable_directory_keeps_each_its_access(w):
    """The staging directory stands in for the project at `/`; `out` stays the host's
    writable directory, the other subdirectories read-only, at both guest paths."""
    before = w.snap()
    p = w.project
    result = w.run("rootout", "w:out/a.txt=a", f"w:{p}/out/b.txt=b", "w:src/lib.rs=x",
                   f"w:{p}/src/lib.rs=x", "w:docs/notes.md=x", "mkdir:src/new", "rmdir:out",
                   "w:CHANGELOG.md=root")  # fmt: skip
    assert result.returncode == 0, describe(result)
    said = outcomes(result)
    assert said["w:out/a.txt=a"] == "ok ok" and said[f"w:{p}/out/b.txt=b"] == "ok ok", describe(result)
    for op in ("w:src/lib.rs=x", f"w:{p}/src/lib.rs=x", "w:docs/notes.md=x", "mkdir:src/new"):
        assert said[op].startswith("err"), describe(result)
    assert (p / "out" / "a.txt").read_text() == "a" and (p / "out" / "b.txt").read_text() == "b"
    assert (p / "CHANGELOG.md").read_text() == "root"
    assert changed(before, w.snap(), {"project/CHANGELOG.md", "project"}) == []
