"""The smaller holes (issue 7, item 4), each attempted end to end with real cargo builds:

- a package name made to move the generated package (`../`, an absolute path), to drive
  the terminal through cargo's `Compiling` line, or to crash the tool (a NUL);
- a private /tmp that the cleanup cannot remove by recursion (2,000 levels deep);
- SIGTERM and SIGHUP while a task runs: the task ends, its /tmp goes, one error line;
- a cache that others could write, and a compiled component swapped for another.
"""

from __future__ import annotations

import hashlib
import json
import os
import pty
import re
import select
import signal
import stat
import subprocess
from pathlib import Path

import pytest

from .conftest import CARGO_TASK, describe, diff, snapshot
from .test_terminal import hostile_escapes, run_on_terminal

MAGIC = b"cargo-task-wasm component v2\n"


def _clean(result) -> None:
    """The tool said what happened itself: no Python traceback, no internal error."""
    assert "Traceback" not in result.stderr, describe(result)
    assert "internal error" not in result.stderr, describe(result)


# -- names used in paths ---------------------------------------------------------------


@pytest.mark.parametrize("kind", ["dot-dot", "absolute", "osc-escape", "nul"])
def test_a_hostile_package_name_moves_nothing_and_reaches_no_terminal(small_project, tmp_path, kind):
    """On a terminal, where cargo passes escapes through (into a pipe it strips them)."""
    name = {
        "dot-dot": "../../evil",
        "absolute": str(tmp_path / "abs-evil"),
        "osc-escape": "\x1b]0;pwned\x07\x1b[2J",
        "nul": "before\x00after",
    }[kind]
    small_project.write(
        "Cargo.toml",
        f'[package]\nname = {json.dumps(name)}\nversion = "0.1.0"\nedition = "2021"\n',
    )
    small_project.write("tasks/hi.rs", 'fn main() { println!("ran"); }\n')
    (small_project.root / "target").mkdir()
    before = snapshot(tmp_path, exclude=("small/target",))

    code, seen = run_on_terminal(["hi"], small_project.root, small_project.env)

    shown = seen.decode("utf-8", "replace")
    changes = diff(before, snapshot(tmp_path, exclude=("small/target",)))
    assert not changes, "created outside the target directory:\n" + "\n".join(changes) + "\n" + shown
    assert hostile_escapes(seen) == [], shown
    assert "Traceback" not in shown and "internal error" not in shown, shown
    if code == 0:
        assert seen.endswith(b"ran\r\n") or seen.endswith(b"ran\n"), shown
    else:  # refusing the name is fine, as long as it is said plainly
        assert code == 1 and "error: " in shown, shown
    # The generated package is a directory of its own, directly in the build root.
    build_root = small_project.root / "target" / "cargo-task"
    for entry in build_root.iterdir() if build_root.exists() else ():
        assert entry.is_dir() and not entry.is_symlink()
        assert re.fullmatch(r"[A-Za-z0-9_-]+", entry.name), entry.name


# -- the private /tmp ------------------------------------------------------------------

DEEP = """
//! Builds a tree 2,000 directories deep in its private /tmp, and exits 0.
fn main() {
    let mut path = String::from("/tmp");
    for _ in 0..2000 {
        path.push_str("/d");
        std::fs::create_dir(&path).unwrap();
    }
    std::fs::write(format!("{path}/bottom.txt"), "the task's data").unwrap();
    std::fs::write("/tmp/top.txt", "the task's data").unwrap();
    println!("built 2000 levels");
}
"""


def _built(small_project, task: str) -> None:
    """Build (and compile) the task without running it: the run under test starts warm,
    with nothing of cargo's in its TMPDIR."""
    result = small_project.run("--build", task)
    assert result.returncode == 0, describe(result)


def test_a_tmp_tree_deeper_than_any_recursion_limit_is_removed(small_project, tmp_path):
    small_project.tasks({"deep": "{ tmp = true }"}, deep=DEEP)
    _built(small_project, "deep")
    tmpdir = tmp_path / "tmpdir"
    tmpdir.mkdir()
    result = small_project.run("deep", extra_env={"TMPDIR": str(tmpdir)})
    assert result.returncode == 0, describe(result)
    assert result.stdout == "built 2000 levels\n", describe(result)
    _clean(result)
    assert os.listdir(tmpdir) == [], "the private /tmp was left behind"


# -- SIGTERM and SIGHUP ----------------------------------------------------------------

NAP = """
//! Keeps data in its private /tmp, then sleeps (a host call no epoch interrupts) or spins.
fn main() {
    std::fs::create_dir("/tmp/work").unwrap();
    std::fs::write("/tmp/work/data.txt", "the task's private data").unwrap();
    if std::env::args().nth(1).as_deref() == Some("spin") {
        println!("spinning");
        let mut n: u64 = 0;
        loop {
            n = std::hint::black_box(n.wrapping_add(1));
        }
    }
    println!("sleeping");
    std::thread::sleep(std::time::Duration::from_secs(120));
}
"""


@pytest.fixture
def napper(small_project):
    small_project.tasks({"nap": '{ tmp = true, timeout = "100s" }'}, nap=NAP)
    _built(small_project, "nap")
    return small_project


@pytest.mark.parametrize("how", ["sleeping", "spinning"])
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_a_signal_ends_the_task_cleans_up_and_says_so(napper, tmp_path, signum, how):
    tmpdir = tmp_path / "tmpdir"
    tmpdir.mkdir()
    process = subprocess.Popen(
        [CARGO_TASK, "nap", *(["spin"] if how == "spinning" else [])], cwd=napper.root,
        env={**napper.env, "TMPDIR": str(tmpdir)},
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        line = process.stdout.readline()  # the guest runs, its data is in /tmp
        assert line == f"{how}\n".encode(), process.stderr.read()
        assert len(os.listdir(tmpdir)) == 1
        process.send_signal(signum)
        process.wait(timeout=30)
    finally:
        process.kill()
    stderr = process.stderr.read().decode()
    name = signal.Signals(signum).name
    assert process.returncode == 128 + signum, (process.returncode, stderr)
    errors = [line for line in stderr.splitlines() if "error" in line]
    assert errors == [f"error: task `nap` was terminated ({name})"], stderr
    assert "Traceback" not in stderr and "internal error" not in stderr, stderr
    assert os.listdir(tmpdir) == [], "the private /tmp (with the task's data) was left behind"


# -- the cache -------------------------------------------------------------------------

TWO = {
    "a": 'fn main() { println!("this is task a"); }\n',
    "b": 'fn main() { println!("this is task b, not a"); }\n',
}


@pytest.fixture
def private_cache(small_project, tmp_path):
    """A project with tasks `a` and `b`, built once, and a cache of its own."""
    xdg = tmp_path / "xdg"
    small_project.env = {**small_project.env, "XDG_CACHE_HOME": str(xdg)}
    small_project.tasks({"a": "{}", "b": "{}"}, **TWO)
    for task in TWO:
        result = small_project.run(task)
        assert result.returncode == 0, describe(result)
    return xdg / "cargo-task-wasm"


def _record(root: Path, task: str) -> Path:
    (found,) = root.glob(f"records/*/{task}.*.json")
    return found


def _component(root: Path, task: str) -> Path:
    from .test_cache import machine_code_key

    key = machine_code_key(json.loads(_record(root, task).read_bytes().partition(b"\n")[2]), os.environ)
    return root / "components" / f"{key}.cwasm"


def test_under_umask_002_the_cache_is_private(small_project, tmp_path):
    xdg = tmp_path / "xdg"
    small_project.tasks({"a": "{}"}, a=TWO["a"])
    previous = os.umask(0o002)
    try:
        cold = small_project.run("a", extra_env={"XDG_CACHE_HOME": str(xdg)})
        warm = small_project.run("-v", "a", extra_env={"XDG_CACHE_HOME": str(xdg)})
    finally:
        os.umask(previous)
    assert cold.returncode == 0 and warm.returncode == 0, describe(cold) + describe(warm)
    assert "`a` is fresh; using its compiled component" in warm.stderr, describe(warm)
    modes = {}
    for directory, dirs, files in os.walk(xdg / "cargo-task-wasm"):
        for name in [".", *dirs, *files]:
            path = Path(directory, name)
            modes[str(path)] = stat.S_IMODE(path.lstat().st_mode)
    assert len(modes) >= 6, modes  # root, key, components, an entry, records, a record
    assert {path: f"{mode:04o}" for path, mode in modes.items() if mode & 0o077} == {}
    assert all(mode == 0o700 for path, mode in modes.items() if Path(path).is_dir()), modes


@pytest.mark.parametrize("where", [".", "records", "components"])
def test_a_cache_others_can_write_is_refused(private_cache, small_project, where):
    directory = (private_cache / where).resolve()
    directory.chmod(0o720)
    result = small_project.run("a")
    assert result.returncode == 1, describe(result)
    assert result.stdout == "", describe(result)
    assert f"error: the cache directory `{directory}` is writable by other users (mode 0720)\n" in result.stderr
    assert f"help: cargo-task loads native code from its cache, so it must be yours alone; remove `{private_cache}`" in result.stderr
    _clean(result)
    directory.chmod(0o700)
    result = small_project.run("a")
    assert result.returncode == 0 and result.stdout == "this is task a\n", describe(result)


def _plain_checksum_of_b(root: Path) -> None:
    """What passed before the cache had a key: b's machine code under a's name, with a
    SHA-256 recomputed by whoever could write the entry."""
    payload = _component(root, "b").read_bytes()[len(MAGIC) + 32 :]
    _component(root, "a").write_bytes(MAGIC + hashlib.sha256(payload).digest() + payload)


def _entry_of_b(root: Path) -> None:
    """b's whole entry, valid under the cache's key, copied over a's."""
    _component(root, "a").write_bytes(_component(root, "b").read_bytes())


def _record_of_b(root: Path) -> None:
    """b's build record, pointing at b's code, copied over a's."""
    _record(root, "a").write_bytes(_record(root, "b").read_bytes())


@pytest.mark.parametrize("swap", [_plain_checksum_of_b, _entry_of_b, _record_of_b], ids=lambda f: f.__name__)
def test_a_swapped_component_is_rejected_and_the_task_runs_its_own_code(private_cache, small_project, swap):
    component = _component(private_cache, "a")
    swap(private_cache)
    result = small_project.run("a")
    assert result.returncode == 0, describe(result)
    assert result.stdout == "this is task a\n", "task a ran another task's machine code\n" + describe(result)
    _clean(result)
    if swap is not _record_of_b:
        assert "Compiling `a` to native code with Wasmtime" in result.stderr, describe(result)
    assert _component(private_cache, "a") == component
    again = small_project.run("-v", "a")
    assert again.stdout == "this is task a\n" and "`a` is fresh" in again.stderr, describe(again)


def test_sighup_when_the_terminal_has_gone(napper, tmp_path):
    """A closed terminal window: nothing can be printed any more, yet the task ends, its
    /tmp goes and the exit code says why."""
    tmpdir = tmp_path / "tmpdir"
    tmpdir.mkdir()
    master, slave = pty.openpty()
    process = subprocess.Popen([CARGO_TASK, "nap"], cwd=napper.root, env={**napper.env, "TMPDIR": str(tmpdir)},
                               stdin=subprocess.DEVNULL, stdout=slave, stderr=slave)  # fmt: skip
    os.close(slave)
    try:
        seen = b""
        while b"sleeping" not in seen:
            ready, _, _ = select.select([master], [], [], 60)
            assert ready, seen
            seen += os.read(master, 4096)
        os.close(master)  # the terminal goes away: every later write fails (EIO)
        master = -1
        process.send_signal(signal.SIGHUP)
        process.wait(timeout=30)
    finally:
        process.kill()
        if master >= 0:
            os.close(master)
    assert process.returncode == 129, process.returncode
    assert os.listdir(tmpdir) == [], "the private /tmp (with the task's data) was left behind"
