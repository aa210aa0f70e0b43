"""Tiered compilation: a task that was just built runs on Winch's machine code; Cranelift's
is compiled in the background and preferred by the warm runs once it is cached. Each
compiler's code is cached under its own key, and CARGO_TASK_COMPILER picks one."""

from __future__ import annotations

import time

import pytest

# A string of its own in each test's wasm: the suite shares one cache, and machine code is
# cached by the wasm's content.
TASK = 'fn main() {{ std::hint::black_box("{unique}"); println!("tiered {{}}", std::env::args().count()); }}\n'
WAIT_SECONDS = 180  # a bound on waiting for the background compile, so a hang fails: no timing is asserted


@pytest.fixture
def tiered(project):
    import uuid

    project.manifest()
    project.write("tasks/hello.rs", TASK.format(unique=uuid.uuid4()))
    return project


def test_a_new_build_runs_on_winch_then_warm_runs_use_cranelift(tiered, cargo_task):
    first = cargo_task("-v", "hello", cwd=tiered.root, CARGO_TASK_COMPILER="tiered")
    assert first.returncode == 0, first.stderr
    assert first.stdout == "tiered 1\n"
    assert "Compiling `hello` to native code with Wasmtime (winch)" in first.stderr
    waited_until = time.monotonic() + WAIT_SECONDS
    while True:
        warm = cargo_task("-v", "hello", cwd=tiered.root, CARGO_TASK_COMPILER="tiered")
        assert warm.returncode == 0 and warm.stdout == "tiered 1\n", warm.stderr
        assert "Compiling" not in warm.stderr  # never a rebuild or a compile in the foreground
        if "is fresh; using its compiled component (cranelift)" in warm.stderr:
            break
        assert "is fresh; using its compiled component (winch)" in warm.stderr, warm.stderr
        assert time.monotonic() < waited_until, "the background Cranelift compile never finished"
        time.sleep(0.5)


def test_each_compiler_has_its_own_cache_entry(tiered, cargo_task):
    def run(compiler: str):
        result = cargo_task("-v", "hello", "x", cwd=tiered.root, CARGO_TASK_COMPILER=compiler)
        assert result.returncode == 0 and result.stdout == "tiered 2\n", result.stderr
        return result.stderr

    assert "to native code with Wasmtime (winch)" in run("winch")
    # Winch's code is never handed to a Cranelift engine: Cranelift compiles its own.
    assert "to native code with Wasmtime (cranelift)" in run("cranelift")
    assert "is fresh; using its compiled component (winch)" in run("winch")
    assert "is fresh; using its compiled component (cranelift)" in run("cranelift")
    assert "is fresh; using its compiled component (cranelift)" in run("tiered")  # preferred when cached


def test_build_only_compiles_with_cranelift(tiered, cargo_task):
    built = cargo_task("--build", "hello", cwd=tiered.root, CARGO_TASK_COMPILER="tiered")
    assert built.returncode == 0, built.stderr
    assert "to native code with Wasmtime (cranelift)" in built.stderr
    warm = cargo_task("-v", "hello", cwd=tiered.root, CARGO_TASK_COMPILER="tiered")
    assert "is fresh; using its compiled component (cranelift)" in warm.stderr, warm.stderr


def test_an_unknown_compiler_is_one_clear_error(tiered, cargo_task):
    result = cargo_task("hello", cwd=tiered.root, CARGO_TASK_COMPILER="llvm")
    assert result.returncode != 0
    assert "error: CARGO_TASK_COMPILER='llvm' is not a compiler cargo-task knows" in result.stderr
    assert "help: use `tiered` (the default), `winch` or `cranelift`" in result.stderr
    assert "Traceback" not in result.stderr
