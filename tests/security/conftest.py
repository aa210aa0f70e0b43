"""Fixtures for the adversarial security suite.

Two shared "arenas" (one per session, built lazily) hold a real Rust project whose tasks
each attempt one family of escapes, next to a directory *outside* the project that holds
secrets and targets. Every task prints what happened to each attempt (the `io::ErrorKind`
or the WASI error code), the tests assert on that, and a snapshot of the arena taken
before and after each run shows that nothing changed on the host.

Layout of an arena:

    <base>/outside/secret.txt        a secret the task must never read
    <base>/outside/shared/           granted read-only to some tasks (`../outside/shared`)
    <base>/outside/w/                where a planted symlink would send a write
    <base>/tmpdir/                   TMPDIR of the tool (its private /tmp directories)
    <base>/project/                  the project: Cargo.toml, tasks/, data/, out/ ...
        out/                         granted writable to some tasks; emptied before each test
        home -> ~, etc -> /etc       symlinks planted in the project, pointing outside
        outside-abs -> <base>/outside, outside-rel -> ../outside
        linked -> ../outside/w       a planted symlink that a `write` grant names
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import textwrap
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
CARGO_TASK = shutil.which("cargo-task", path=str(BIN)) or shutil.which("cargo-task")
RUST = Path(__file__).parent / "rust"
SECRET = "TOP-SECRET-7f3a9c-outside-the-project"
PUBLIC = "public data, readable by every task\n"

# Tasks of the main arena: name -> (what main() calls, its table in Cargo.toml).
MAIN_TASKS = {
    "ro": ("common::fs::main()", "{}"),
    "rw": ("common::fs::main()", '{ read = ["../outside/shared"], write = ["out"] }'),
    "rw_src": ("common::fs::main()", '{ write = ["src"] }'),
    "rw_tmp": ("common::fs::main()", "{ tmp = true }"),
    "publish": ("common::fs::main()", '{ write = ["out/site"] }'),
    "via_link": ("common::fs::main()", '{ write = ["linked"] }'),
    "manifest_ok": ("common::fs::main()", '{ write = ["."], allow-write-manifest = true }'),
    "cachevictim": ("common::fs::main()", "{}"),
    "net": ("common::net::main()", "{}"),
    "net_granted": ("common::net::main()", "{ network = true }"),
    "spin": ("common::res::spin()", '{ timeout = "1s" }'),
    "sleeper": ("common::res::sleep_forever()", '{ timeout = "1s" }'),
    "sleeper_long": ("common::res::sleep_forever()", '{ timeout = "60s" }'),
    "stdin_read": ("common::res::read_stdin()", '{ timeout = "1s" }'),
    "stdin_none": ("common::res::read_stdin()", '{ stdin = false, timeout = "20s" }'),
    "hog": ("common::res::hog()", '{ memory = "64MiB" }'),
    "recurse": ("common::res::recurse()", "{}"),
    "flood": ("common::res::flood()", "{}"),
    "spawn": ("common::res::spawn()", "{}"),
    "env_none": ("common::res::env_vars()", "{}"),
    "env_allow": (
        "common::res::env_vars()",
        '{ inherit-env = ["CT_ALLOWED", "CT_GLOB_*"], env = { CT_FIXED = "from-the-manifest" } }',
    ),
    "escapes": ("common::res::escapes()", "{}"),
    "args": ("common::res::args()", "{}"),
}

# Tasks that must not share `common` (they do not compile, or need a crates.io dependency).
BUILD_ENV_TASKS = {
    "build_env": (
        "//! Bakes a variable of the user's environment into the task at compile time.\n"
        'const STOLEN: &str = env!("CT_BUILD_SECRET");\n'
        'fn main() {\n    println!("stolen at build time: {STOLEN}");\n}\n'
    ),
    "build_optenv": (
        "//! Looks for variables of the user's environment at compile time.\n"
        "fn main() {\n"
        '    println!("CT_BUILD_SECRET={:?}", option_env!("CT_BUILD_SECRET"));\n'
        '    println!("AWS_SECRET_ACCESS_KEY={:?}", option_env!("AWS_SECRET_ACCESS_KEY"));\n'
        '    println!("PATH is set: {}", option_env!("PATH").is_some());\n'
        "}\n"
    ),
}


# -- running the tool ------------------------------------------------------------------


def tool_env(cache_home: Path, tmpdir: Path | None = None) -> dict[str, str]:
    environ = dict(os.environ)
    environ["XDG_CACHE_HOME"] = str(cache_home)
    # CI=true makes the tool refuse to change cargo-task.lock, as --locked does: tests that
    # mean it set it themselves.
    for name in ("CARGO_TARGET_DIR", "CARGO_TERM_COLOR", "NO_COLOR", "CARGO", "RUSTFLAGS", "CI"):
        environ.pop(name, None)
    if tmpdir is not None:
        environ["TMPDIR"] = str(tmpdir)
    return environ


def run_tool(args, cwd: Path, env: dict[str, str], *, stdin=b"", timeout: float = 300, text=True):
    """Run `cargo-task ARGS...`; stdin is bytes (or None: inherit nothing, /dev/null)."""
    assert CARGO_TASK, "cargo-task is not installed: run scripts/setup.sh"
    result = subprocess.run(
        [CARGO_TASK, *args], cwd=cwd, env=env,
        input=stdin if stdin is not None else None,
        stdin=subprocess.DEVNULL if stdin is None else None,
        capture_output=True, timeout=timeout,
    )  # fmt: skip
    if text:
        result.stdout = result.stdout.decode("utf-8", "replace")
        result.stderr = result.stderr.decode("utf-8", "replace")
    return result


def describe(result) -> str:
    return f"exit {result.returncode}\n--- stdout ---\n{result.stdout}\n--- stderr ---\n{result.stderr}"


# -- host snapshots --------------------------------------------------------------------


def _digest(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 16), b""):
            h.update(block)
    return h.hexdigest()


def snapshot(root: Path, exclude: tuple[str, ...] = ()) -> dict[str, tuple]:
    """Everything observable about a tree except access times; never follows symlinks."""
    entries: dict[str, tuple] = {}
    skip = {os.path.normpath(e) for e in exclude}
    for directory, dirnames, filenames in os.walk(root, followlinks=False):
        relative_dir = os.path.relpath(directory, root)
        st = os.lstat(directory)
        entries[relative_dir] = ("dir", st.st_mode, st.st_mtime_ns, st.st_ino)
        kept = []
        for name in dirnames:
            relative = os.path.normpath(os.path.join(relative_dir, name))
            if relative in skip:
                continue
            if os.path.islink(os.path.join(directory, name)):
                filenames.append(name)
            else:
                kept.append(name)
        dirnames[:] = kept
        for name in filenames:
            path = os.path.join(directory, name)
            relative = os.path.normpath(os.path.join(relative_dir, name))
            if relative in skip:
                continue
            st = os.lstat(path)
            if os.path.islink(path):
                entries[relative] = ("link", os.readlink(path), st.st_mtime_ns)
            elif os.path.isfile(path):
                entries[relative] = ("file", st.st_mode, st.st_size, st.st_mtime_ns, st.st_ino,
                                     st.st_nlink, _digest(path))  # fmt: skip
            else:
                entries[relative] = ("other", st.st_mode)
    return entries


def diff(before: dict, after: dict) -> list[str]:
    changes = []
    for key in sorted(set(before) | set(after)):
        if key not in after:
            changes.append(f"removed: {key} {before[key]}")
        elif key not in before:
            changes.append(f"created: {key} {after[key]}")
        elif before[key] != after[key]:
            changes.append(f"changed: {key} {before[key]} -> {after[key]}")
    return changes


# -- arenas ----------------------------------------------------------------------------


@dataclass
class Arena:
    base: Path
    env: dict[str, str]
    volatile: tuple[str, ...] = ("project/target", "project/out", "tmpdir")
    last: object = field(default=None, repr=False)

    @property
    def project(self) -> Path:
        return self.base / "project"

    @property
    def outside(self) -> Path:
        return self.base / "outside"

    @property
    def out(self) -> Path:
        return self.project / "out"

    @property
    def tmpdir(self) -> Path:
        return self.base / "tmpdir"

    def run(self, task: str, *args: str, options=(), stdin=b"", timeout: float = 300,
            text=True, extra_env: dict[str, str] | None = None):  # fmt: skip
        env = {**self.env, **(extra_env or {})}
        self.last = run_tool([*options, task, *args], self.project, env, stdin=stdin,
                             timeout=timeout, text=text)  # fmt: skip
        return self.last

    def probe(self, task: str, *attempts: str, **kw) -> dict[str, str]:
        """Run a probe task; -> attempt -> "OK ..." / "ERR Kind (...)", one per attempt."""
        result = self.run(task, *attempts, **kw)
        assert result.returncode == 0, describe(result)
        outcomes = {}
        for line in result.stdout.splitlines():
            spec, sep, outcome = line.partition(" => ")
            if sep:
                outcomes[spec] = outcome
        assert set(outcomes) == set(attempts), describe(result)
        assert SECRET not in result.stdout, describe(result)
        return outcomes

    def reset_out(self) -> None:
        shutil.rmtree(self.out, ignore_errors=True)  # removes planted links, never follows
        self.out.mkdir()

    def snapshot(self, also_allow: tuple[str, ...] = ()) -> dict[str, tuple]:
        return snapshot(self.base, self.volatile + also_allow)

    @contextmanager
    def unchanged(self, allow: tuple[str, ...] = ()):
        """Assert the host tree is the same afterwards (outside `allow` and scratch areas)."""
        before = self.snapshot(allow)
        yield
        changes = diff(before, self.snapshot(allow))
        last = describe(self.last) if self.last is not None else ""
        assert not changes, "the host changed:\n" + "\n".join(changes) + "\n" + last


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _make_base(base: Path) -> None:
    _write(base / "outside" / "secret.txt", SECRET + "\n")
    _write(base / "outside" / "shared" / "ok.txt", "shared, granted read-only\n")
    (base / "outside" / "w").mkdir(parents=True)
    (base / "tmpdir").mkdir()
    project = base / "project"
    _write(project / "src" / "lib.rs", "")
    _write(project / "data" / "public.txt", PUBLIC)
    _write(project / "data" / "sub" / "inner.txt", "inner\n")
    _write(project / ".cargo" / "config.toml", "# cargo configuration (a tampering target)\n")
    _write(project / ".git" / "hooks" / "README", "git hooks would live here\n")
    _write(project / ".git" / "HEAD", "ref: refs/heads/main\n")
    (project / "out").mkdir()
    (project / "target").mkdir()  # so that the first build does not change the project root
    os.symlink(Path.home(), project / "home")
    os.symlink("/etc", project / "etc")
    os.symlink(base / "outside", project / "outside-abs")
    os.symlink("../outside", project / "outside-rel")
    os.symlink("../outside/w", project / "linked")
    os.symlink("data/public.txt", project / "inside-link")


def _manifest(name: str, tables: dict[str, str], dependencies: str = "") -> str:
    lines = [f'[package]\nname = "{name}"\nversion = "0.1.0"\nedition = "2021"\n',
             "[package.metadata.tasks]"]  # fmt: skip
    lines += [f"{task} = {table}" for task, table in tables.items()]
    if dependencies:
        lines += ["", "[package.metadata.task-dependencies]", dependencies]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="session")
def sec_cache_home(tmp_path_factory) -> Path:
    """The tool's cache for this suite (compiled components live here, outside projects)."""
    return tmp_path_factory.mktemp("sec-xdg-cache")


@pytest.fixture(scope="session")
def arena(tmp_path_factory, sec_cache_home) -> Arena:
    base = tmp_path_factory.mktemp("arena")
    _make_base(base)
    project = base / "project"
    shutil.copytree(RUST / "common", project / "tasks" / "common")
    for task, (call, _) in MAIN_TASKS.items():
        _write(project / "tasks" / f"{task}.rs", f"//! security probe `{task}`\nmod common;\n\n"
               f"fn main() {{\n    {call}\n}}\n")  # fmt: skip
    for task, source in BUILD_ENV_TASKS.items():
        _write(project / "tasks" / f"{task}.rs", source)
    tables = {task: table for task, (_, table) in MAIN_TASKS.items()}
    _write(project / "Cargo.toml", _manifest("arena", tables))
    return Arena(base, tool_env(sec_cache_home, base / "tmpdir"))


@pytest.fixture(scope="session")
def wasi_arena(tmp_path_factory, sec_cache_home) -> Arena:
    """Tasks that use the `wasi` crate from crates.io (raw WASI calls, wasi:http)."""
    base = tmp_path_factory.mktemp("wasi-arena")
    _make_base(base)
    project = base / "project"
    _write(project / "tasks" / "rawfs.rs", (RUST / "wasi" / "rawfs.rs").read_text())
    for task, source in (("http", "http"), ("http_net", "http"), ("sockets", "sockets"),
                         ("sockets_net", "sockets")):  # fmt: skip
        _write(project / "tasks" / f"{task}.rs", (RUST / "wasi" / f"{source}.rs").read_text())
    tables = {
        "rawfs": '{ read = ["../outside/shared"], write = ["out"] }',
        "http": "{}",
        "http_net": "{ network = true }",
        "sockets": "{}",
        "sockets_net": "{ network = true }",
    }
    _write(project / "Cargo.toml", _manifest("wasi-arena", tables, 'wasi = "0.14"'))
    return Arena(base, tool_env(sec_cache_home, base / "tmpdir"))


@pytest.fixture
def clean_out(arena):
    """The arena's writable directory, emptied before the test."""
    arena.reset_out()
    arena.last = None
    yield arena.out
    arena.reset_out()


def _empty(directory: Path) -> None:
    for entry in directory.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


@pytest.fixture
def empty_outside_w(arena):
    """`<base>/outside/w`, where an escaping write would land: emptied before and after, so
    that one test's escape cannot hide or fail another's."""
    _empty(arena.outside / "w")
    yield arena.outside / "w"
    _empty(arena.outside / "w")


@pytest.fixture
def clean_wasi_out(wasi_arena):
    wasi_arena.reset_out()
    wasi_arena.last = None
    yield wasi_arena.out
    wasi_arena.reset_out()


@pytest.fixture
def small_project(tmp_path, sec_cache_home):
    """A fresh project for configuration checks (`--explain` builds and runs nothing)."""

    @dataclass
    class Small:
        root: Path
        env: dict[str, str]

        def write(self, relative: str, text: str) -> Path:
            path = self.root / relative
            _write(path, textwrap.dedent(text).lstrip("\n"))
            return path

        def tasks(self, tables: dict[str, str], **files: str) -> None:
            self.write("Cargo.toml", _manifest("small", tables))
            for name in tables:
                self.write(f"tasks/{name}.rs", files.get(name, "fn main() {}\n"))

        def run(self, *args: str, **kw):
            return run_tool(list(args), self.root, {**self.env, **kw.pop("extra_env", {})}, **kw)

    root = tmp_path / "small"
    _write(root / "src" / "lib.rs", "")
    return Small(root, tool_env(sec_cache_home))
