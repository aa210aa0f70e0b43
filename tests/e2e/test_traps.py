"""A task that traps is told what happened: a panic, an allocation failure at the memory
limit, a stack overflow or an abort; with -v, the Wasm backtrace with function names."""

from __future__ import annotations

import re
import textwrap

import pytest

from tests.conftest import Project

TASKS = {
    "panics": """
        fn explode(what: &str) { panic!("boom: {what}") }
        fn main() { explode("at the task level") }
    """,
    "hungry": """
        fn grow_forever() -> usize {
            let mut kept: Vec<Vec<u8>> = Vec::new();
            loop {
                kept.push(vec![1u8; 1 << 20]);
                if kept.len() == usize::MAX { return kept.len(); }
            }
        }
        fn main() { println!("{}", grow_forever()) }
    """,
    "deep": """
        fn dive(n: u64) -> u64 { if n == u64::MAX { 0 } else { dive(n + 1).wrapping_add(n) } }
        fn main() { println!("{}", dive(0)) }
    """,
    "wide": """
        fn dive(n: usize) -> u8 {
            let mut page = [0u8; 8192];  // Rust's stack in linear memory runs out first
            page[n % 8192] = 1;
            std::hint::black_box(&mut page);
            if n == usize::MAX { 0 } else { dive(n + 1).wrapping_add(page[7]) }
        }
        fn main() { println!("{}", dive(0)) }
    """,
    "aborts": """
        fn give_up() -> ! { std::process::abort() }
        fn main() { eprintln!("giving up"); give_up() }
    """,
}


@pytest.fixture(params=["winch", "cranelift"])
def env(env, request) -> dict[str, str]:
    """Every test here runs on each compiler's machine code: the messages must not differ."""
    return {**env, "CARGO_TASK_COMPILER": request.param}


@pytest.fixture(scope="module")
def traps(tmp_path_factory) -> Project:
    project = Project(tmp_path_factory.mktemp("traps") / "traps")
    project.manifest('[package.metadata.tasks]\nhungry = { memory = "32MiB" }\n', name="traps")
    project.write("src/lib.rs", "")
    for name, text in TASKS.items():
        project.write(f"tasks/{name}.rs", textwrap.dedent(text))
    return project


def error_and_help(stderr: str) -> tuple[str, str]:
    error = next(line for line in stderr.splitlines() if line.startswith("error: "))
    help = next((line for line in stderr.splitlines() if line.startswith("help: ")), "")
    return error, help


def test_a_panic_is_a_panic_and_does_not_blame_memory(traps, cargo_task):
    result = cargo_task("-q", "panics", cwd=traps.root)
    assert result.returncode == 101
    assert "panicked at" in result.stderr and "boom: at the task level" in result.stderr  # Rust's own
    error, help = error_and_help(result.stderr)
    assert error == "error: task `panics` panicked"
    assert "run with `cargo task -v panics` to see the Wasm backtrace" in help  # RUST_BACKTRACE's stand-in
    assert "memory" not in error + help


def test_an_allocation_failure_names_the_limit_and_how_to_raise_it(traps, cargo_task):
    result = cargo_task("-q", "hungry", cwd=traps.root)
    assert result.returncode == 101
    assert "memory allocation of" in result.stderr  # Rust's own line
    error, help = error_and_help(result.stderr)
    assert error == "error: task `hungry` ran out of memory: an allocation failed; its memory limit is 32 MiB"
    assert 'memory = "..."' in help and "--memory" in help
    assert "panicked" not in error


@pytest.mark.parametrize(
    ("task", "expected"),
    [
        ("deep", "error: task `deep` overflowed its stack (call stack exhausted)"),  # Wasmtime's stack
        ("wide", "error: task `wide` overflowed its stack in linear memory (out of bounds memory access)"),
    ],
)
def test_a_stack_overflow_says_so(traps, cargo_task, task, expected):
    result = cargo_task("-q", task, cwd=traps.root)
    assert result.returncode == 101
    error, help = error_and_help(result.stderr)
    assert error == expected
    assert "recursion" in help and "memory limit" not in help


def test_an_abort_says_the_task_aborted(traps, cargo_task):
    result = cargo_task("-q", "aborts", cwd=traps.root)
    assert result.returncode == 101
    assert "giving up" in result.stderr
    error, help = error_and_help(result.stderr)
    assert error.startswith("error: task `aborts` aborted")
    assert "memory" not in error + help and "panicked" not in error


@pytest.mark.parametrize(
    ("task", "functions"),
    [
        ("panics", ["panics::explode", "panics::main"]),
        ("hungry", ["hungry::grow_forever", "hungry::main", "alloc::alloc::handle_alloc_error"]),
        ("deep", ["deep::dive"]),
        ("wide", ["wide::dive"]),
        ("aborts", ["std::process::abort", "aborts::give_up", "aborts::main"]),
    ],
)
def test_verbose_shows_the_wasm_backtrace_with_function_names(traps, cargo_task, task, functions):
    plain = cargo_task("-q", task, cwd=traps.root)
    assert "wasm backtrace" not in plain.stderr
    result = cargo_task("-v", task, cwd=traps.root)
    assert result.returncode == 101
    lines = result.stderr.splitlines()
    error = next(i for i, line in enumerate(lines) if line.startswith("error: "))
    assert lines[error + 1] == "wasm backtrace (innermost call first):"  # right after the error line
    trace = "\n".join(lines[error + 2 :])
    for function in functions:
        assert re.search(rf"^\s+\d+: {re.escape(function)}$", trace, re.M), trace
    assert not re.search(r"::h[0-9a-f]{16}\b|\[[0-9a-f]{16}\]|\.wasm!", trace), trace  # demangled enough
    assert "-v" not in "\n".join(line for line in lines if line.startswith("help: "))
    if task == "panics":  # the panic machinery is left out, as Rust's short backtrace does
        assert "__rust_start_panic" not in trace and "__rust_begin_short_backtrace" not in trace
    if task in ("deep", "wide"):
        assert re.search(rf"\.\.\. \d+ more frames of `{task}::dive`", trace), trace
        assert "wasm trap" not in trace  # Wasmtime's causes are not frames


GRANTS_MEMORY = 32 << 20


@pytest.mark.parametrize(
    ("message", "error", "help"),
    [
        # No name section (a stripped build): the frames cannot tell a panic from an abort.
        ("error while executing at wasm backtrace:\n    0:   0x5855 - <unknown>!<wasm function 12>\n"
         "\nCaused by:\n    wasm trap: wasm `unreachable` instruction executed\n",
         "task `t` was stopped by a trap: wasm `unreachable` instruction executed", "its memory limit is 32 MiB"),
        # No backtrace at all.
        ("wasm trap: wasm `unreachable` instruction executed", "task `t` was stopped by a trap", "memory"),
        # An out-of-bounds access that is no stack overflow: a fault far from the top.
        ("error while executing at wasm backtrace:\n    0:   0x10 - m.wasm!t::main\n\nCaused by:\n"
         "    0: memory fault at wasm address 0x20000000 in linear memory of size 0x110000\n"
         "    1: wasm trap: out of bounds memory access\n",
         "task `t` was stopped by a trap: out of bounds memory access", "cargo task -v t"),
        # With debug info, Wasmtime adds inlined functions and source lines.
        ("error while executing at wasm backtrace:\n    0:   0x10 - core[6d9e98711c484d2e]::panicking::panic_fmt\n"
         "                    at /rustc/library/core/src/panicking.rs:75:14\n"
         "    1:   0x20 - t::main::h0123456789abcdef\n              - t::helper\n"
         "\nCaused by:\n    wasm trap: wasm `unreachable` instruction executed\n",
         "task `t` panicked", "cargo task -v t"),
    ],
)
def test_trap_messages_without_names_or_with_debug_info(message, error, help):
    from cargo_task.traps import explain_trap

    found = explain_trap("t", message, GRANTS_MEMORY)
    assert found.message.startswith(error) and help in (found.help or "")
    assert found.exit_code == 101
    if "t::helper" in message:  # the frames, cleaned, with their source lines
        verbose, _ = found.verbose
        assert "core::panicking::panic_fmt\n" in verbose + "\n"
        assert "at /rustc/library/core/src/panicking.rs:75:14" in verbose
        assert "1: t::main\n" in verbose and "1: t::helper" in verbose
