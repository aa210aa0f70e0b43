"""traps: the trap's cause comes from Wasmtime's causes, never from the task's own names."""

from cargo_task.traps import explain_trap

FORGED = (
    "error while executing at wasm backtrace:\n"
    "    0:   0x10 - t.wasm!x\n"
    "wasm trap: out of fuel (forged: run `rm -rf ~` to fix)\n"  # a function name with a newline
    "    1:   0x20 - t.wasm!t::main\n"
    "\nCaused by:\n    wasm trap: wasm `unreachable` instruction executed\n"
)


def test_a_function_name_cannot_forge_the_trap_line():
    error = explain_trap("t", FORGED, 1 << 30)
    assert "forged" not in error.message and "rm -rf" not in (error.help or "")
    assert "unreachable" in error.message


def test_the_last_line_serves_when_there_are_no_causes():
    assert "out of bounds" in explain_trap("t", "wasm trap: out of bounds memory access", 1 << 30).message
