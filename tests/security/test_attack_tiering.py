"""Attacks on issue 10: tiered compilation (the detached Cranelift compile, `tierup.py`) and
the cargo build directory shared by owners whose task-dependencies read the same.

Each test attacks end to end with real builds and real processes and asserts that the
cache and the host hold: Cranelift's code is only ever stored under the key of the wasm it
was compiled from, the background process runs only cargo-task's own code, never hangs or
queues on what it finds in a target directory, and a build of one owner cannot change what
another owner's build produces.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.security.conftest import describe, run_tool, tool_env

WAIT_SECONDS = 180  # a bound on waiting for background compiles: a hang fails, no timing asserted
TIERED = {"CARGO_TASK_COMPILER": "tiered"}


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _tier_ups(cache_home: Path) -> list[int]:
    """Background compiles working for this cache (their command line names it)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"cargo_task.tierup" in argv and any(os.fsencode(cache_home) in a for a in argv):
            found.append(int(entry.name))
    return found


def _wait_for_tier_ups(cache_home: Path) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while _tier_ups(cache_home):
        assert time.monotonic() < deadline, "a background compile never finished"
        time.sleep(0.2)


def _cache_root(cache_home: Path) -> Path:
    return cache_home / "cargo-task-wasm"


def _cranelift_key(digest: str) -> str:
    from cargo_task import sandbox
    from cargo_task.cache import component_key

    return component_key(digest, sandbox.engine_id("cranelift"))


def _wasm(project: Path, task: str) -> Path:
    (found,) = project.glob(f"target/cargo-task/*/target/wasm32-wasip2/debug/{task}.wasm")
    return found


@pytest.fixture
def tiered(tmp_path):
    """A project with two tasks and a cache of its own (no other test's background compile
    shares its lock)."""
    import uuid

    root = tmp_path / "project"
    _write(root / "Cargo.toml", '[package]\nname = "tiering"\nversion = "0.1.0"\nedition = "2021"\n')
    _write(root / "src" / "lib.rs", "")
    unique = uuid.uuid4()  # machine code is cached by the wasm's content
    _write(root / "tasks" / "hello.rs", f'fn main() {{ std::hint::black_box("{unique}"); println!("the task that ran"); }}\n')
    _write(root / "tasks" / "other.rs", f'fn main() {{ std::hint::black_box("{unique}"); println!("the swapped-in wasm"); }}\n')
    (root / "target").mkdir()
    cache_home = tmp_path / "cache"
    return root, cache_home, {**tool_env(cache_home), **TIERED}


def test_a_wasm_swapped_after_the_run_never_gets_cranelift_code_under_the_key_that_ran(tiered):
    """Whoever may write the target directory replaces the wasm that just ran (by another
    valid component) while the background compile starts: Cranelift's code for the swapped
    wasm must never be stored under the digest that ran, so warm runs still run the task."""
    root, cache_home, env = tiered
    other = run_tool(["other"], root, {**env, "CARGO_TASK_COMPILER": "winch"})  # no background compile
    assert other.returncode == 0 and other.stdout == "the swapped-in wasm\n", describe(other)
    swapped_in = _wasm(root, "other").read_bytes()
    first = run_tool(["hello"], root, env)
    assert first.returncode == 0 and first.stdout == "the task that ran\n", describe(first)
    wasm = _wasm(root, "hello")
    ran = hashlib.sha256(wasm.read_bytes()).hexdigest()
    for attempt in range(3):  # each warm run on Winch's code starts another background compile
        temporary = wasm.with_name(".swap")
        temporary.write_bytes(swapped_in)
        os.replace(temporary, wasm)  # as fast as possible after the run: before its read
        _wait_for_tier_ups(cache_home)
        warm = run_tool(["-v", "hello"], root, env)
        assert warm.returncode == 0, describe(warm)
        assert warm.stdout == "the task that ran\n", describe(warm)  # never the swapped-in code
        assert "Compiling" not in warm.stderr, describe(warm)
    from cargo_task.cache import Cache

    code = Cache(_cache_root(cache_home)).load_component(_cranelift_key(ran))
    if code is not None:  # compiled before the swap won the race: it must be the task's
        strict = {**env, "CARGO_TASK_COMPILER": "cranelift"}
        again = run_tool(["-v", "hello"], root, strict)
        assert again.stdout == "the task that ran\n" and "(cranelift)" in again.stderr, describe(again)


def test_the_background_compile_runs_only_cargo_tasks_code(tiered):
    """A project that ships a `cargo_task` package, `sitecustomize.py` and `usercustomize.py`
    at its root (where the tool is started): the detached process (`python -P`, from `/`)
    imports none of them, and still makes Cranelift's code."""
    root, cache_home, env = tiered
    marker = root.parent / "imported-from-the-project"
    payload = f"open({str(marker)!r}, 'a').write(__name__ + '\\n')\n"
    for name in ("sitecustomize.py", "usercustomize.py", "cargo_task/__init__.py", "cargo_task/tierup.py"):
        _write(root / name, payload)
    first = run_tool(["hello"], root, env)
    assert first.returncode == 0 and first.stdout == "the task that ran\n", describe(first)
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        _wait_for_tier_ups(cache_home)
        warm = run_tool(["-v", "hello"], root, env)
        assert warm.returncode == 0 and warm.stdout == "the task that ran\n", describe(warm)
        if "(cranelift)" in warm.stderr:
            break
        assert time.monotonic() < deadline, "the background compile never made Cranelift's code"
    assert not marker.exists(), marker.read_text()


def _start_tier_up(cache_home: Path, wasm: Path, digest: str = "0" * 64) -> subprocess.Popen:
    env = {**os.environ, "XDG_CACHE_HOME": str(cache_home)}
    return subprocess.Popen(
        [sys.executable, "-P", "-m", "cargo_task.tierup", str(_cache_root(cache_home)), str(wasm), digest, "t"],
        cwd="/", env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def _private_cache(cache_home: Path) -> Path:
    root = _cache_root(cache_home)
    root.mkdir(parents=True, mode=0o700)
    return root


def test_a_fifo_at_the_wasm_path_neither_hangs_the_background_compile_nor_keeps_its_lock(tmp_path):
    """The wasm lives in a target directory; a FIFO (or a link to a device) planted there
    must not block the detached process forever while it holds the cache's one lock, which
    would stop every later background compile of every project."""
    cache_home = tmp_path / "cache"
    root = _private_cache(cache_home)
    fifo = tmp_path / "task.wasm"
    os.mkfifo(fifo)
    process = _start_tier_up(cache_home, fifo)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("the background compile blocked on a FIFO at the wasm path")
    finally:
        process.kill()
        process.wait()
    fd = os.open(root / "tier-up.lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free again
    finally:
        os.close(fd)
    assert not (root / "components").exists()  # nothing was compiled or stored


def test_a_held_lock_does_not_gather_a_queue_of_background_compiles(tmp_path):
    """While one background compile holds the lock (a large component, a stuck file), each
    warm run starts another: they must leave at once, not wait in a growing queue."""
    cache_home = tmp_path / "cache"
    root = _private_cache(cache_home)
    wasm = _write(tmp_path / "task.wasm", "not a wasm")
    fd = os.open(root / "tier-up.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        waiting = [_start_tier_up(cache_home, wasm) for _ in range(3)]
        try:
            for process in waiting:
                process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            pytest.fail("background compiles queue up behind the lock")
        finally:
            for process in waiting:
                process.kill()
                process.wait()
    finally:
        os.close(fd)


def test_a_write_grant_over_the_target_directory_is_refused(small_project):
    """The wasm the background compile reads and the shared build directories live under
    `target/cargo-task`: no task may be granted to write there (short of
    `allow-write-manifest`)."""
    small_project.tasks({"t": '{ write = ["target"] }'})
    (small_project.root / "target" / "cargo-task").mkdir(parents=True)
    for table in ('{ write = ["target"] }', '{ write = ["target/cargo-task"] }'):
        small_project.tasks({"t": table})
        result = small_project.run("t")
        assert result.returncode != 0, describe(result)
        assert "error: task `t`: `write` path" in result.stderr and "cargo's build output" in result.stderr, describe(result)
        assert "Traceback" not in result.stderr


# -- the shared build directory ----------------------------------------------------------

# A fork of `heck` that one member's `.cargo/config.toml` patches in: the generated
# `[dependencies]` text (`heck = "0.5"`) is the same for both members, the dependency set is
# not. Its build script writes, in place, every wasm it finds in its build directory: cargo
# hard-links a bin's wasm from `deps/` to the owner's target directory, so this changes the
# wasm another owner's task is built to (and would run on its next cold build).
EVIL_HECK_BUILD = r"""
use std::io::Write;
fn main() {
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let mine = out.ancestors()
        .find(|p| p.file_name().map_or(false, |n| n.to_string_lossy().starts_with("build-")))
        .unwrap().to_path_buf();
    let planted = std::fs::write(mine.join("planted"), b"code").is_ok();
    println!("cargo:warning=planted in {}: {planted}", mine.display());
    let deps = mine.join("wasm32-wasip2").join("debug").join("deps");
    for entry in std::fs::read_dir(&deps).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.extension().map_or(false, |e| e == "wasm") {
            let file = std::fs::OpenOptions::new().write(true).truncate(true).open(&path);
            let written = file.and_then(|mut f| f.write_all(b"\0asm planted")).is_ok();
            println!("cargo:warning=rewrote {}: {written}", path.display());
        }
    }
}
"""


def _heck_is_cached() -> bool:
    home = Path(os.environ.get("CARGO_HOME") or Path.home() / ".cargo")
    return any(home.glob("registry/cache/*/heck-0.5.0.crate"))


@pytest.mark.skipif(not _heck_is_cached(), reason="needs heck 0.5.0 in cargo's cache (offline)")
@pytest.mark.parametrize("layout", ["members", "projects-sharing-CARGO_TARGET_DIR"])
def test_identical_dependency_text_with_a_patched_dependency_does_not_share_the_build(tmp_path, layout):
    """`members`: two members of one workspace, the second with a `.cargo/config.toml` of its
    own. `projects-...`: two projects and one `CARGO_TARGET_DIR` (a common setup): a cloned,
    untrusted project's `.cargo/config.toml` patches in its crate, whose confined build then
    writes the task wasm of the user's other project."""
    ws = tmp_path / "ws"
    roots = {"m1": ws / "m1", "m2": ws / "m2"} if layout == "members" else {"m1": tmp_path / "p1", "m2": tmp_path / "p2"}
    deps = '[workspace.metadata.task-dependencies]\nheck = "0.5"\n' if layout == "members" else ""
    if layout == "members":
        _write(ws / "Cargo.toml", f'[workspace]\nmembers = ["m1", "m2"]\nresolver = "2"\n\n{deps}')
    for member, root in roots.items():
        own = "" if layout == "members" else '\n[package.metadata.task-dependencies]\nheck = "0.5"\n'
        _write(root / "Cargo.toml", f'[package]\nname = "{member}"\nversion = "0.1.0"\nedition = "2021"\n{own}')
        _write(root / "src" / "lib.rs", "")
        _write(root / "tasks" / f"t{member}.rs",
               'fn main() { use heck::ToSnakeCase; println!("{}", "HelloWorld".to_snake_case()); }\n')  # fmt: skip
    evil = roots["m2"] / "evil-heck"
    _write(evil / "Cargo.toml", '[package]\nname = "heck"\nversion = "0.5.0"\nedition = "2021"\n')
    _write(evil / "src" / "lib.rs", "pub trait ToSnakeCase { fn to_snake_case(&self) -> String; }\n"
           'impl ToSnakeCase for str { fn to_snake_case(&self) -> String { "patched".into() } }\n')  # fmt: skip
    _write(evil / "build.rs", EVIL_HECK_BUILD)
    _write(roots["m2"] / ".cargo" / "config.toml", '[patch.crates-io]\nheck = { path = "evil-heck" }\n')
    env = {**tool_env(tmp_path / "cache"), "CARGO_TASK_COMPILER": "winch", "CARGO_NET_OFFLINE": "true"}
    if layout == "members":
        target = ws / "target"
    else:
        target = tmp_path / "shared-target"
        env["CARGO_TARGET_DIR"] = str(target)
    target.mkdir()
    first = run_tool(["tm1"], roots["m1"], env)
    assert first.returncode == 0 and first.stdout == "hello_world\n", describe(first)
    (m1_wasm,) = target.glob("cargo-task/m1-*/target/wasm32-wasip2/debug/tm1.wasm")
    built = m1_wasm.read_bytes()
    m1_build = set((target / "cargo-task").glob("build-*"))
    second = run_tool(["tm2"], roots["m2"], env)
    assert second.returncode == 0 and second.stdout == "patched\n", describe(second)
    assert "planted in" in second.stderr, describe(second)  # the build script ran
    assert not any((b / "planted").exists() for b in m1_build), describe(second)
    # m1's next cold build (a new toolchain selection, a cleared cache) finds cargo's
    # artefacts fresh and takes this wasm as it is: m2's build would choose m1's code.
    assert m1_wasm.read_bytes() == built, describe(second)


def _wasi_versions_cached() -> bool:
    home = Path(os.environ.get("CARGO_HOME") or Path.home() / ".cargo")
    return all(any(home.glob(f"registry/cache/*/{c}.crate"))
               for c in ("wasi-0.14.4+wasi-0.2.4", "wasi-0.14.7+wasi-0.2.4"))  # fmt: skip


@pytest.mark.skipif(not _wasi_versions_cached(), reason="needs wasi 0.14.4 and 0.14.7 in cargo's cache (offline)")
def test_identical_dependency_text_locked_to_other_versions_does_not_share_the_build(tmp_path):
    ws = tmp_path / "ws"
    _write(ws / "Cargo.toml", '[workspace]\nmembers = ["m1", "m2"]\nresolver = "2"\n\n'
                              '[workspace.metadata.task-dependencies]\nwasi = "0.14"\n')  # fmt: skip
    for member in ("m1", "m2"):
        _write(ws / member / "Cargo.toml", f'[package]\nname = "{member}"\nversion = "0.1.0"\nedition = "2021"\n')
        _write(ws / member / "src" / "lib.rs", "")
        _write(ws / member / "tasks" / f"t{member}.rs", 'extern crate wasi;\nfn main() { println!("ok"); }\n')
    (ws / "target").mkdir()
    env = {**tool_env(tmp_path / "cache"), "CARGO_TASK_COMPILER": "winch", "CARGO_NET_OFFLINE": "true"}
    # m1's package was locked before wasi 0.14.7 existed (here: pinned back, as time would).
    editor = run_tool(["--editor"], ws / "m1", env)  # writes the generated package, builds nothing
    assert editor.returncode == 0, describe(editor)
    (generated,) = (ws / "target" / "cargo-task").glob("m1-*/Cargo.toml")
    for step in (["generate-lockfile"], ["update", "-p", "wasi", "--precise", "0.14.4+wasi-0.2.4"]):
        cargo = subprocess.run(["cargo", *step, "--offline", "--manifest-path", str(generated)],
                               capture_output=True, text=True)  # fmt: skip
        assert cargo.returncode == 0, cargo.stderr
    again = run_tool(["tm1"], ws / "m1", env)
    assert again.returncode == 0 and again.stdout == "ok\n", describe(again)
    assert "wit-bindgen v0.45.1" in again.stderr, describe(again)
    m1_build = set((ws / "target" / "cargo-task").glob("build-*"))
    second = run_tool(["tm2"], ws / "m2", env)
    assert second.returncode == 0 and second.stdout == "ok\n", describe(second)
    assert "wit-bindgen v0.57.1" in second.stderr, describe(second)  # m2 runs a build script m1 does not
    assert set((ws / "target" / "cargo-task").glob("build-*")) - m1_build, "m2 builds in m1's build directory"


def test_the_editors_unconfined_cargo_check_stays_out_of_the_shared_build_directory(small_project):
    """rust-analyzer's `cargo check` of a generated package (`--editor`) runs unconfined: it
    must neither build in nor read from the build directory confined builds write (where a
    task-dependency's build script could have planted artefacts), only its own target."""
    from tests.security.conftest import snapshot, diff

    small_project.tasks({"t": "{}"})
    (small_project.root / "target").mkdir()
    built = small_project.run("t")
    assert built.returncode == 0, describe(built)
    editor = small_project.run("--editor")
    assert editor.returncode == 0, describe(editor)
    (shared,) = (small_project.root / "target" / "cargo-task").glob("build-*")
    (manifest,) = (small_project.root / "target" / "cargo-task").glob("small-*/Cargo.toml")
    before = snapshot(shared)
    env = {k: v for k, v in small_project.env.items() if k != "CARGO_BUILD_BUILD_DIR"}
    check = subprocess.run(["cargo", "check", "--offline", "--message-format=json", "--all-targets"],
                           cwd=manifest.parent, env=env, capture_output=True, text=True)  # fmt: skip
    assert check.returncode == 0, check.stderr
    assert (manifest.parent / "editor-target").is_dir()
    assert str(shared) not in check.stdout + check.stderr
    assert not diff(before, snapshot(shared))


# -- limits under each compiler ----------------------------------------------------------

# A task-dependency that links a static library (as crates that bundle C or assembly do):
# `grow_evil(n)` grows a table of its own by n elements (`table.grow`), which a store's
# memory limit does not count.
TABLE_GROWER = """#![no_std]
#![feature(asm_experimental_arch)]
core::arch::global_asm!(
    ".tabletype evil_table, externref",
    "evil_table:",
    ".globl grow_evil",
    ".type grow_evil,@function",
    "grow_evil:",
    ".functype grow_evil (i32) -> (i32)",
    "ref.null_extern",
    "local.get 0",
    "table.grow evil_table",
    "end_function",
);
"""
GROW_TASK = """fn main() {
    let mut total: i64 = 0;
    for _ in 0..4 { // 64 Mi elements at most: enough to show it, not to hurt the machine
        if unsafe { evil::grow_evil(16 << 20) } < 0 { println!("refused after {total} elements"); return; }
        total += 16 << 20;
        println!("grew to {total} elements");
    }
}
"""


@pytest.fixture(scope="module")
def table_grower(tmp_path_factory):
    if shutil.which("ar") is None:
        pytest.skip("needs `ar` to make the static library")
    root = tmp_path_factory.mktemp("grower") / "project"
    evil = root / "evil"
    _write(evil / "grow.rs", TABLE_GROWER)
    made = subprocess.run(["rustc", "--target", "wasm32-wasip2", "--crate-type", "lib", "--emit=obj", "-O",
                           str(evil / "grow.rs"), "-o", str(evil / "grow.o")],
                          env={**os.environ, "RUSTC_BOOTSTRAP": "1"}, capture_output=True, text=True)  # fmt: skip
    if made.returncode != 0:
        pytest.skip(f"this rustc cannot assemble the table grower: {made.stderr[-300:]}")
    subprocess.run(["ar", "rcs", str(evil / "libevil.a"), str(evil / "grow.o")], check=True)
    _write(evil / "Cargo.toml", '[package]\nname = "evil"\nversion = "0.1.0"\nedition = "2021"\n')
    _write(evil / "src" / "lib.rs", 'extern "C" { pub fn grow_evil(n: i32) -> i32; }\n')
    _write(evil / "build.rs", 'fn main() {\n    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap();\n'
           '    println!("cargo:rustc-link-search=native={dir}");\n    println!("cargo:rustc-link-lib=static=evil");\n}\n')  # fmt: skip
    _write(root / "Cargo.toml", '[package]\nname = "grower"\nversion = "0.1.0"\nedition = "2021"\n\n'
           '[package.metadata.tasks]\ngrow = { memory = "64MiB" }\n\n'
           '[package.metadata.task-dependencies]\nevil = { path = "evil" }\n')  # fmt: skip
    _write(root / "src" / "lib.rs", "")
    _write(root / "tasks" / "grow.rs", GROW_TASK)
    (root / "target").mkdir()
    return root, tool_env(tmp_path_factory.mktemp("grower-cache"))


def test_a_table_cannot_grow_past_the_memory_grant(table_grower):
    root, env = table_grower
    result = run_tool(["grow"], root, {**env, "CARGO_TASK_COMPILER": "cranelift"}, timeout=300)
    assert result.returncode != 0 or "refused after 0 elements" in result.stdout, describe(result)


def test_a_component_cranelift_runs_also_runs_under_the_default_compiler(table_grower, tmp_path):
    root, env = table_grower
    env = {**env, **TIERED, "XDG_CACHE_HOME": str(tmp_path / "cache")}  # no Cranelift code cached yet
    result = run_tool(["grow"], root, env, timeout=300)
    assert "did not build to a valid WASI 0.2 component" not in result.stderr, describe(result)
    assert "grew to" in result.stdout or "refused after" in result.stdout, describe(result)
    _wait_for_tier_ups(Path(env["XDG_CACHE_HOME"]))


def test_a_table_form_cargo_env_entry_is_blanked_without_breaking_the_build(small_project):
    small_project.tasks({"t": "{}"}, t='fn main() { println!("{:?}", option_env!("CT_FROM_CONFIG")); }\n')
    small_project.write(".cargo/config.toml", '[env]\nCT_FROM_CONFIG = { value = "data", relative = true }\n')
    result = small_project.run("t")
    assert result.returncode == 0 and result.stdout == 'Some("")\n', describe(result)  # blanked, as SECURITY.md says
