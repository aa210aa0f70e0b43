"""hostlink: `cargo-task:host/process@0.1.0#run` served to a real component, without cargo.

The guest is hand-written in the component text format (which Wasmtime compiles): it
imports the interface exactly as wit/host.wit declares it, lowers `run` with its memory and
a bump allocator, and exports `call` with the same type, which passes its argument to `run`
and returns run's result. So every call lifts the command the test built into the guest,
lowers it to the host function (hostlink decodes it), lowers the handler's answer into
the guest and lifts it back to the test: both directions of every type in the interface.
"""

from __future__ import annotations

import ctypes
import subprocess
import sys
from ctypes import POINTER, byref
from typing import NamedTuple

import pytest

from cargo_task import hostlink, sandbox
from cargo_task import wasmtime_c as C

try:
    from cargo_task.hostcalls import CommandOutput, CommandRefused, CommandRequest
except ImportError:  # hostcalls is written beside this module; the shapes are the contract

    class CommandRequest(NamedTuple):  # type: ignore[no-redef]
        program: str
        args: tuple[str, ...]
        cwd: str | None
        env: tuple[tuple[str, str], ...]
        inherit_output: bool

    class CommandOutput(NamedTuple):  # type: ignore[no-redef]
        code: int | None
        stdout: bytes
        stderr: bytes

    class CommandRefused(NamedTuple):  # type: ignore[no-redef]
        kind: str
        message: str


MiB = 1 << 20

INTERFACE_TYPES = """
    (type $command' (record (field "program" string) (field "args" (list string)) (field "cwd" (option string))
                            (field "env" (list (tuple string string))) (field "inherit-output" bool)))
    (export "command" (type $command (eq $command')))
    (type $output' (record (field "code" (option s32)) (field "stdout" (list u8)) (field "stderr" (list u8))))
    (export "output" (type $output (eq $output')))
    (type $error-kind' (enum "permission-denied" "not-found" "invalid-input" "timed-out" "other"))
    (export "error-kind" (type $error-kind (eq $error-kind')))
    (type $error' (record (field "kind" $error-kind) (field "message" string)))
    (export "error" (type $error (eq $error')))
"""
RUN = '(type $run-type (func (param "cmd" $command) (result (result $output (error $error)))))'
COMMAND_FLAT = 10  # program 2 + args 2 + cwd 3 + env 2 + inherit-output 1 (canonical ABI)


def guest(run_type: str = RUN, param: str = "$command", flat: int = COMMAND_FLAT) -> bytes:
    """The pass-through component; `run_type`, `param` and `flat` change what it imports."""
    params = " ".join(["i32"] * flat)
    forward = " ".join(f"(local.get {i})" for i in range(flat))
    return f"""
    (component
      (import "cargo-task:host/process@0.1.0" (instance $process
        {INTERFACE_TYPES}
        {run_type}
        (export "run" (func (type $run-type)))))
      (alias export $process "run" (func $run))
      (alias export $process "command" (type $command))
      (alias export $process "output" (type $output))
      (alias export $process "error" (type $error))
      (core module $Memory
        (memory (export "memory") 1)
        (global $next (mut i32) (i32.const 1024))  ;; 16..1023: run's return area
        (func (export "realloc") (param i32 i32) (param $align i32) (param $size i32) (result i32)
          (local $at i32) (local $end i32) (local $have i32)
          (local.set $at (i32.and (i32.add (global.get $next) (i32.sub (local.get $align) (i32.const 1)))
                                  (i32.sub (i32.const 0) (local.get $align))))
          (local.set $end (i32.add (local.get $at) (local.get $size)))
          (local.set $have (i32.mul (memory.size) (i32.const 65536)))
          (if (i32.gt_u (local.get $end) (local.get $have))
            (then (if (i32.eq (memory.grow (i32.add (i32.shr_u (i32.sub (local.get $end) (local.get $have))
                                                               (i32.const 16)) (i32.const 1)))
                              (i32.const -1))
                    (then unreachable))))
          (global.set $next (local.get $end))
          (local.get $at))
        (func (export "reset") (param i32) (global.set $next (i32.const 1024))))  ;; post-return: no growth
      (core instance $memory (instantiate $Memory))
      (alias core export $memory "memory" (core memory $mem))
      (alias core export $memory "realloc" (core func $realloc))
      (alias core export $memory "reset" (core func $reset))
      (core func $run_lowered (canon lower (func $run) (memory $mem) (realloc $realloc)))
      (core module $Main
        (import "host" "run" (func $run (param {params} i32)))
        (func (export "call") (param {params}) (result i32)
          (call $run {forward} (i32.const 16))
          (i32.const 16)))
      (core instance $main (instantiate $Main (with "host" (instance (export "run" (func $run_lowered))))))
      (func $call (param "cmd" {param}) (result (result $output (error $error)))
        (canon lift (core func $main "call") (memory $mem) (realloc $realloc) (post-return $reset)))
      (export "call" (func $call)))
    """.encode()


_compiled: dict[bytes, object] = {}


def component(wat: bytes):
    if wat not in _compiled:
        compiled = POINTER(C.wasmtime_component_t)()
        C.check(C.lib().wasmtime_component_new(sandbox.engine(), C.byte_pointer(wat), len(wat), byref(compiled)))
        _compiled[wat] = compiled  # kept for the test session
    return _compiled[wat]


class Guest:
    """A store with the pass-through component instantiated against `handler`."""

    def __init__(self, handler, wat: bytes | None = None, request_type=CommandRequest):
        lib = C.lib()
        self.store = lib.wasmtime_store_new(sandbox.engine(), None, C.no_finalizer())
        self.context = lib.wasmtime_store_context(self.store)
        lib.wasmtime_context_set_epoch_deadline(self.context, 1 << 40)
        linker = lib.wasmtime_component_linker_new(sandbox.engine())
        try:
            C.check(lib.wasmtime_component_linker_add_wasip2(linker))  # first, as sandbox does
            self.link = hostlink.add_process(linker, handler, request_type)
            self.instance = C.wasmtime_component_instance_t()
            C.check(lib.wasmtime_component_linker_instantiate(
                linker, self.context, component(wat or guest()), byref(self.instance)
            ))  # fmt: skip
        finally:
            lib.wasmtime_component_linker_delete(linker)
        name = b"call"
        index = lib.wasmtime_component_instance_get_export_index(byref(self.instance), self.context, None, name, 4)
        self.func = C.wasmtime_component_func_t()
        assert lib.wasmtime_component_instance_get_func(byref(self.instance), self.context, index, byref(self.func))
        lib.wasmtime_component_export_index_delete(index)

    def call(self, fill) -> tuple[str, object]:
        """Call `call` with the argument `fill(val, keep)` builds; ("ok", CommandOutput) or
        ("err", CommandRefused). Raises WasmtimeError for a trap."""
        keep: list = []
        argument = C.wasmtime_component_val_t()
        fill(argument, keep)
        result = C.wasmtime_component_val_t()
        C.check(C.lib().wasmtime_component_func_call(byref(self.func), self.context, byref(argument), 1, byref(result), 1))
        try:
            return read_result(result)
        finally:
            C.lib().wasmtime_component_val_delete(byref(result))

    def run(self, request: CommandRequest):
        return self.call(lambda val, keep: put_command(val, keep, request))

    def close(self) -> None:
        C.lib().wasmtime_store_delete(self.store)


# -- the test's own side of the values: arguments in Python memory (Wasmtime borrows them) --


def put_string(val, keep, text: str) -> None:
    data = text.encode()
    keep.append(data)
    val.of.string.size = len(data)
    val.of.string.data = ctypes.cast(ctypes.c_char_p(data), POINTER(ctypes.c_ubyte))
    val.kind = C.WASMTIME_COMPONENT_STRING


def put_list(val, keep, items, put) -> None:
    array = (C.wasmtime_component_val_t * max(len(items), 1))()
    keep.append(array)
    for i, item in enumerate(items):
        put(array[i], keep, item)
    val.of.list.size = len(items)
    val.of.list.data = array
    val.kind = C.WASMTIME_COMPONENT_LIST


def put_pair(val, keep, pair) -> None:
    array = (C.wasmtime_component_val_t * 2)()
    keep.append(array)
    put_string(array[0], keep, pair[0])
    put_string(array[1], keep, pair[1])
    val.of.tuple.size = 2
    val.of.tuple.data = array
    val.kind = C.WASMTIME_COMPONENT_TUPLE


def put_command(val, keep, request: CommandRequest) -> None:
    fields = {
        "program": lambda v: put_string(v, keep, request.program),
        "args": lambda v: put_list(v, keep, request.args, put_string),
        "cwd": lambda v: put_option(v, keep, request.cwd),
        "env": lambda v: put_list(v, keep, request.env, put_pair),
        "inherit-output": lambda v: put_bool(v, request.inherit_output),
    }
    entries = (C.wasmtime_component_valrecord_entry * len(fields))()
    keep.append(entries)
    for entry, (name, put) in zip(entries, fields.items()):
        encoded = name.encode()
        keep.append(encoded)
        entry.name.size = len(encoded)
        entry.name.data = ctypes.cast(ctypes.c_char_p(encoded), POINTER(ctypes.c_ubyte))
        put(entry.val)
    val.of.record.size = len(fields)
    val.of.record.data = entries
    val.kind = C.WASMTIME_COMPONENT_RECORD


def put_option(val, keep, text: str | None) -> None:
    if text is None:
        val.of.option = None
    else:
        inner = C.wasmtime_component_val_t()
        keep.append(inner)
        put_string(inner, keep, text)
        val.of.option = ctypes.pointer(inner)
    val.kind = C.WASMTIME_COMPONENT_OPTION


def put_bool(val, value: bool) -> None:
    val.of.boolean = value
    val.kind = C.WASMTIME_COMPONENT_BOOL


def text(vec) -> str:
    return ctypes.string_at(vec.data, vec.size).decode() if vec.size else ""


def fields_of(val) -> dict:
    assert val.kind == C.WASMTIME_COMPONENT_RECORD
    entries = val.of.record
    return {text(entries.data[i].name): entries.data[i].val for i in range(entries.size)}


def read_bytes(val) -> bytes:
    assert val.kind == C.WASMTIME_COMPONENT_LIST
    items = val.of.list
    if not items.size:
        return b""
    raw = ctypes.string_at(items.data, items.size * ctypes.sizeof(C.wasmtime_component_val_t))
    assert set(raw[0 :: ctypes.sizeof(C.wasmtime_component_val_t)]) == {C.WASMTIME_COMPONENT_U8}
    return raw[C.wasmtime_component_val_t.of.offset :: ctypes.sizeof(C.wasmtime_component_val_t)]


def read_result(val):
    assert val.kind == C.WASMTIME_COMPONENT_RESULT
    fields = fields_of(val.of.result.val[0])
    if val.of.result.is_ok:
        assert list(fields) == ["code", "stdout", "stderr"]
        code = fields["code"]
        assert code.kind == C.WASMTIME_COMPONENT_OPTION
        if code.of.option:
            assert code.of.option[0].kind == C.WASMTIME_COMPONENT_S32
        number = code.of.option[0].of.s32 if code.of.option else None
        return "ok", CommandOutput(number, read_bytes(fields["stdout"]), read_bytes(fields["stderr"]))
    assert list(fields) == ["kind", "message"]
    assert fields["kind"].kind == C.WASMTIME_COMPONENT_ENUM
    assert fields["message"].kind == C.WASMTIME_COMPONENT_STRING
    return "err", CommandRefused(text(fields["kind"].of.enumeration), text(fields["message"].of.string))


@pytest.fixture
def served():
    """A guest whose handler records each request and answers with `served.answer`."""

    class Served:
        answer: object = CommandOutput(0, b"", b"")
        requests: list = []

        def handler(self, request):
            self.requests.append(request)
            return self.answer(request) if callable(self.answer) else self.answer

    state = Served()
    state.requests = []
    state.guest = Guest(state.handler)
    yield state
    state.guest.close()


# -- ok and err --------------------------------------------------------------------------


def test_a_command_arrives_typed_and_its_output_returns(served):
    request = CommandRequest("git", ("rev-parse", "HEAD"), "sub/dir", (("K", "v"), ("LANG", "C")), False)
    served.answer = CommandOutput(0, b"0123abc\n", b"warning\n")
    assert served.guest.run(request) == ("ok", CommandOutput(0, b"0123abc\n", b"warning\n"))
    assert served.requests == [request]
    assert type(served.requests[0]) is CommandRequest


@pytest.mark.parametrize("kind", hostlink.ERROR_KINDS)
def test_a_refusal_is_the_error_case_with_its_kind(served, kind):
    served.answer = CommandRefused(kind, f"not granted: add `commands = [\"git\"]` ({kind})")
    outcome = served.guest.run(CommandRequest("git", (), None, (), True))
    assert outcome == ("err", CommandRefused(kind, f"not granted: add `commands = [\"git\"]` ({kind})"))


def test_strings_keep_their_utf8_both_ways(served):
    request = CommandRequest("prögram ✓", ("ärg", "日本語", "🦀", ""), "dïr/ñ", (("ÉNV", "välue 🦀"),), True)
    served.answer = CommandRefused("not-found", "no such program: prögram ✓ 🦀")
    assert served.guest.run(request) == ("err", CommandRefused("not-found", "no such program: prögram ✓ 🦀"))
    assert served.requests == [request]


def test_none_and_empty_values(served):
    served.answer = CommandOutput(None, b"", b"")  # ended by a signal: no code
    assert served.guest.run(CommandRequest("", (), None, (), False)) == ("ok", CommandOutput(None, b"", b""))
    assert served.requests[-1] == CommandRequest("", (), None, (), False)
    served.answer = CommandOutput(-1, b"\0", b"")
    assert served.guest.run(CommandRequest("x", ("",), "", (("", ""),), True)) == ("ok", CommandOutput(-1, b"\0", b""))
    assert served.requests[-1] == CommandRequest("x", ("",), "", (("", ""),), True)  # some(""), not none


def test_exit_codes_at_the_ends_of_s32(served):
    for code in (-(2**31), 2**31 - 1, 1, 101):
        served.answer = CommandOutput(code, b"", b"")
        assert served.guest.run(CommandRequest("x", (), None, (), False)) == ("ok", CommandOutput(code, b"", b""))


def test_large_lists_both_ways(served):
    every_byte = bytes(range(256)) * (4 * MiB // 256)
    served.answer = lambda request: CommandOutput(0, every_byte[: 1 * MiB], every_byte[: 64 * 1024 + 3])
    args = tuple(f"arg-{i}-ü" for i in range(2000))
    env = tuple((f"K{i}", "v" * i) for i in range(300))
    outcome = served.guest.run(CommandRequest("x", args, None, env, False))
    assert outcome == ("ok", CommandOutput(0, every_byte[: 1 * MiB], every_byte[: 64 * 1024 + 3]))
    assert served.requests[-1].args == args and served.requests[-1].env == env


def test_bytes_like_outputs_are_accepted(served):
    served.answer = CommandOutput(0, bytearray(b"from a bytearray"), memoryview(b"from a memoryview"))
    assert served.guest.run(CommandRequest("x", (), None, (), False)) == (
        "ok", CommandOutput(0, b"from a bytearray", b"from a memoryview"))  # fmt: skip


# -- many calls ------------------------------------------------------------------------------


def _resident_kib() -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


def test_3000_calls_without_a_crash_or_growth(served):
    served.answer = lambda request: CommandOutput(len(request.args), request.program.encode() * 100, b"e" * 500)
    request = CommandRequest("prögram", ("a", "b"), "d", (("K", "v"),), False)
    expected = ("ok", CommandOutput(2, "prögram".encode() * 100, b"e" * 500))
    for _ in range(500):  # warm up: allocator pools, the guest's memory
        assert served.guest.run(request) == expected
    before = _resident_kib()
    for _ in range(2500):
        assert served.guest.run(request) == expected
    grown = _resident_kib() - before
    # Leaking the result's values alone (~2,300 values of 32 bytes a call) would be ~180 MB.
    assert grown < 8 * 1024, f"resident memory grew by {grown} KiB over 2,500 calls"
    assert len(served.requests) == 3000


# -- failures trap the guest; nothing unwinds through Wasmtime -----------------------------


def _trap(handler, wat: bytes | None = None, request_type=CommandRequest):
    guest_ = Guest(handler, wat, request_type)
    try:
        with pytest.raises(C.WasmtimeError) as caught:
            guest_.run(CommandRequest("git", ("status",), None, (), False))
        return str(caught.value), guest_.link.failure
    finally:
        guest_.close()


def test_an_exception_in_the_handler_traps_with_its_message():
    def handler(request):
        raise RuntimeError("the handler broke")

    message, failure = _trap(handler)
    assert "cargo-task:host/process@0.1.0#run failed: RuntimeError: the handler broke" in message
    assert isinstance(failure, RuntimeError)


@pytest.mark.parametrize(
    "answer, reason",
    [
        (CommandRefused("forbidden", "x"), "`forbidden` is not an error-kind"),
        (CommandOutput(2**31, b"", b""), "an exit code must be an s32"),
        (CommandOutput(True, b"", b""), "an exit code must be an s32"),
        (CommandOutput(0, "text", b""), "expected bytes, not str"),
        (CommandRefused("other", "lone surrogate \udc80"), "UnicodeEncodeError"),
        (CommandRefused("other", None), "expected a str, not NoneType"),
        (None, "not NoneType"),
    ],
)
def test_an_answer_outside_the_wit_traps(answer, reason):
    message, failure = _trap(lambda request: answer)
    assert reason in message
    assert failure is not None


def test_a_failure_after_part_of_the_result_was_built_frees_it():
    # stdout (1 MiB: 32 MiB of values) is built before stderr fails; a leak would show.
    answer = CommandOutput(0, b"x" * MiB, "not bytes")
    _trap(lambda request: answer)
    before = _resident_kib()
    for _ in range(6):
        _trap(lambda request: answer)
    grown = _resident_kib() - before
    assert grown < 64 * 1024, f"resident memory grew by {grown} KiB over 6 failed calls"


def test_a_guest_importing_run_with_another_type_traps_instead_of_crashing():
    other = guest(
        run_type='(type $run-type (func (param "cmd" string) (result (result $output (error $error)))))',
        param="string",
        flat=2,
    )
    calls = []
    guest_ = Guest(calls.append, other)
    try:
        with pytest.raises(C.WasmtimeError) as caught:
            guest_.call(lambda val, keep: put_string(val, keep, "git status"))
    finally:
        guest_.close()
    assert "#run failed: HostCallError: expected a record, got a value of kind 12" in str(caught.value)
    assert calls == []  # the handler never saw it
    assert guest_.link.failure is None  # the task's doing, not a failure of the tool


def test_the_default_request_type_is_hostcalls_own():
    hostcalls = pytest.importorskip("cargo_task.hostcalls")
    seen = []
    guest_ = Guest(lambda request: seen.append(request) or CommandOutput(0, b"", b""), request_type=None)
    try:
        guest_.run(CommandRequest("git", (), None, (), False))
    finally:
        guest_.close()
    assert type(seen[0]) is hostcalls.CommandRequest


# -- lifetime of the callback --------------------------------------------------------------


def test_the_callback_lives_until_wasmtime_lets_go_of_it():
    before = set(hostlink._live)
    guest_ = Guest(lambda request: CommandOutput(0, b"", b""))
    added = set(hostlink._live) - before
    assert len(added) == 1  # the linker is deleted already; the instance still holds it
    assert guest_.run(CommandRequest("x", (), None, (), False))[0] == "ok"
    guest_.close()
    assert not added & set(hostlink._live)  # finalized with the store


def test_defining_run_twice_fails_and_keeps_nothing_alive():
    lib = C.lib()
    linker = lib.wasmtime_component_linker_new(sandbox.engine())
    before = set(hostlink._live)
    try:
        hostlink.add_process(linker, print)
        with pytest.raises(C.WasmtimeError):
            hostlink.add_process(linker, print)
        assert len(set(hostlink._live) - before) == 1  # the refused one was finalized
        C.check(lib.wasmtime_component_linker_add_wasip2(linker))  # the root was given back
    finally:
        lib.wasmtime_component_linker_delete(linker)
    assert set(hostlink._live) == before


def test_importing_hostlink_starts_nothing():
    code = (
        "import sys; import cargo_task.hostlink; "
        "assert 'subprocess' not in sys.modules and 'cargo_task.hostcalls' not in sys.modules, "
        "sorted(m for m in sys.modules if m in ('subprocess', 'cargo_task.hostcalls'))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
