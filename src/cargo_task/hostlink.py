"""Typed host functions for a task's component: `cargo-task:host/process@0.1.0`.

The interface is wit/host.wit. `add_process` defines its `run` in a component linker;
Wasmtime then calls back into Python with the guest's `command` record, which is decoded
into a request for the handler (hostcalls.py decides what may run), and the handler's
`CommandOutput` or `CommandRefused` is encoded as `result<output, error>`.

Rules of the C API that this module keeps (see shared notes, host-side.md):
- Nothing raised in Python unwinds through Wasmtime: a failed call returns a
  `wasmtime_error_t`, which traps the guest; the handler's exception is kept on the
  `HostLink` for the run to report.
- The arguments belong to Wasmtime and are only read. The result is built with Wasmtime's
  own allocators (it frees it), and is a valid value at every step, so a half-built result
  can be deleted.
- Wasmtime defines `run` with no type of its own (the guest's import says what it is), so
  every value is checked against the WIT here, field by field; anything else traps.
- The callback must outlive every store that can call it: it stays in `_live` until
  Wasmtime calls the finalizer, when the linker and its instances are gone.
"""

from __future__ import annotations

import ctypes
from ctypes import POINTER, byref, c_void_p
from typing import Any, Callable

from cargo_task import wasmtime_c as C

INTERFACE = "cargo-task:host/process@0.1.0"
FUNCTION = "run"
COMMAND_FIELDS = ("program", "args", "cwd", "env", "inherit-output")
ERROR_KINDS = ("permission-denied", "not-found", "invalid-input", "timed-out", "other")
S32 = range(-(2**31), 2**31)

_VAL_SIZE = ctypes.sizeof(C.wasmtime_component_val_t)  # 32: a list<u8> costs this per byte
_PAYLOAD = C.wasmtime_component_val_t.of.offset + C.wasmtime_component_valunion_t.u8.offset

_live: dict[int, Any] = {}  # key (the callback's `data`) -> callback, until Wasmtime finalizes it
_keys = iter(range(1, 1 << 62))
_finalize = None  # the C finalizer, made at first use


class HostCallError(Exception):
    """A value that is not what the WIT says: an argument (the guest's import has another
    type) or an answer of the handler's."""


class HostLink:
    """The Python side of one `run` definition. `failure` is the first exception that the
    handler raised, or that its answer caused (a bug or a TaskError of the tool's: the
    guest trapped, and a run should report this instead). A guest whose import has another
    type only traps (HostCallError): that is the task's doing."""

    def __init__(self, handler: Callable[[Any], Any], request_type: type | None):
        self.handler = handler
        self.request_type = request_type
        self.failure: BaseException | None = None

    def call(self, data, context, func_type, args, nargs, results, nresults) -> int:
        """The `wasmtime_component_func_callback_t`: 0 for success, else an error pointer."""
        try:  # nothing may unwind into Wasmtime
            try:
                if nargs != 1 or nresults != 1:
                    raise HostCallError(f"`{FUNCTION}` has 1 parameter and 1 result, not {nargs} and {nresults}")
                request = self._request(args[0])
            except BaseException as e:
                return _error(e)
            try:
                _put_outcome(results[0], self.handler(request))
            except BaseException as e:
                _clear(results[0])
                if self.failure is None:
                    self.failure = e
                return _error(e)
            return 0
        except BaseException:  # not even the error could be made: the result's type traps
            return 0

    def _request(self, val):
        if self.request_type is None:
            from cargo_task.hostcalls import CommandRequest  # imports subprocess: only when called

            self.request_type = CommandRequest
        fields = _record(val, COMMAND_FIELDS)
        cwd = _option(fields["cwd"])
        return self.request_type(
            program=_string(fields["program"]),
            args=tuple(_string(v) for v in _list(fields["args"])),
            cwd=None if cwd is None else _string(cwd),
            env=tuple(_pair(v) for v in _list(fields["env"])),
            inherit_output=_bool(fields["inherit-output"]),
        )


def add_process(linker, handler: Callable[[Any], Any], request_type: type | None = None) -> HostLink:
    """Define `cargo-task:host/process@0.1.0#run` in `linker` (a
    `wasmtime_component_linker_t*`), served by `handler(request) -> CommandOutput |
    CommandRefused`. `request_type` builds the request (default: hostcalls.CommandRequest,
    imported at the first call). Call it after `add_wasip2`: it takes and releases the
    linker's root, which locks the linker while held. Raises WasmtimeError."""
    global _finalize
    lib = C.lib()
    link = HostLink(handler, request_type)
    add_func = lib.wasmtime_component_linker_instance_add_func
    callback_type, finalizer_type = add_func.argtypes[3], add_func.argtypes[5]
    if _finalize is None:
        _finalize = finalizer_type(lambda key: _live.pop(key or 0, None))
    root = lib.wasmtime_component_linker_root(linker)
    try:
        instance = POINTER(C.wasmtime_component_linker_instance_t)()
        name = INTERFACE.encode()
        C.check(lib.wasmtime_component_linker_instance_add_instance(root, name, len(name), byref(instance)))
        try:
            key = next(_keys)
            _live[key] = callback = callback_type(link.call)
            name = FUNCTION.encode()
            # From here Wasmtime owns `key`: it calls _finalize, even when this fails.
            C.check(add_func(instance, name, len(name), callback, key, _finalize))
        finally:
            lib.wasmtime_component_linker_instance_delete(instance)
    finally:
        lib.wasmtime_component_linker_instance_delete(root)
    return link


# -- reading the arguments (owned by Wasmtime: never freed or changed here) ---------------


def _expect(val, kind: int, what: str) -> None:
    if val.kind != kind:
        raise HostCallError(f"expected {what}, got a value of kind {val.kind}")


def _string(val) -> str:
    _expect(val, C.WASMTIME_COMPONENT_STRING, "a string")
    vec = val.of.string
    return ctypes.string_at(vec.data, vec.size).decode() if vec.size else ""


def _bool(val) -> bool:
    _expect(val, C.WASMTIME_COMPONENT_BOOL, "a bool")
    return bool(val.of.boolean)


def _list(val) -> list:
    _expect(val, C.WASMTIME_COMPONENT_LIST, "a list")
    items = val.of.list
    return [items.data[i] for i in range(items.size)]


def _option(val):
    _expect(val, C.WASMTIME_COMPONENT_OPTION, "an option")
    return val.of.option[0] if val.of.option else None


def _pair(val) -> tuple[str, str]:
    _expect(val, C.WASMTIME_COMPONENT_TUPLE, "a tuple")
    items = val.of.tuple
    if items.size != 2:
        raise HostCallError(f"expected a pair, got a tuple of {items.size}")
    return _string(items.data[0]), _string(items.data[1])


def _record(val, names: tuple[str, ...]) -> dict:
    _expect(val, C.WASMTIME_COMPONENT_RECORD, "a record")
    entries = val.of.record
    fields = {}
    for i in range(entries.size):
        name = entries.data[i].name
        fields[ctypes.string_at(name.data, name.size).decode() if name.size else ""] = entries.data[i].val
    if tuple(fields) != names:
        raise HostCallError(f"expected a record of {', '.join(names)}, got one of {', '.join(fields)}")
    return fields


# -- building the result (with Wasmtime's allocators: it frees the result) ---------------
# Each _put_* leaves `val` a valid value at every step (the payload is set before the kind;
# a new list or record holds default bools and empty names until filled), so that deleting
# a half-built result frees exactly what was built.


def _put_outcome(val, outcome) -> None:
    if hasattr(outcome, "stdout"):  # CommandOutput
        code = outcome.code
        if code is not None and (type(code) is not int or code not in S32):
            raise HostCallError(f"an exit code must be an s32 or None, not {code!r}")
        fields = [
            ("code", lambda v: _put_option(v, None if code is None else lambda w: _put_s32(w, code))),
            ("stdout", lambda v: _put_bytes(v, outcome.stdout)),
            ("stderr", lambda v: _put_bytes(v, outcome.stderr)),
        ]
        _put_result(val, True, lambda v: _put_record(v, fields))
    elif hasattr(outcome, "kind"):  # CommandRefused
        if outcome.kind not in ERROR_KINDS:
            raise HostCallError(f"`{outcome.kind}` is not an error-kind of {INTERFACE}")
        fields = [
            ("kind", lambda v: _put_name(v, C.WASMTIME_COMPONENT_ENUM, outcome.kind)),
            ("message", lambda v: _put_name(v, C.WASMTIME_COMPONENT_STRING, outcome.message)),
        ]
        _put_result(val, False, lambda v: _put_record(v, fields))
    else:
        raise HostCallError(f"a handler returns a CommandOutput or a CommandRefused, not {type(outcome).__name__}")


def _byte_vec(vec, data: bytes) -> None:
    """Fill a `wasm_byte_vec_t` with a copy of `data`, allocated by Wasmtime."""
    C.lib().wasm_byte_vec_new(byref(vec), len(data), C.byte_pointer(data))


def _put_name(val, kind: int, text: str) -> None:
    """A string or an enum case: both are a `wasm_name_t` of UTF-8."""
    if type(text) is not str:
        raise HostCallError(f"expected a str, not {type(text).__name__}")
    _byte_vec(val.of.string, text.encode())  # raises for a lone surrogate: Wasmtime needs UTF-8
    val.kind = kind


def _put_s32(val, number: int) -> None:
    val.of.s32 = number
    val.kind = C.WASMTIME_COMPONENT_S32


def _put_bytes(val, data) -> None:
    """A `list<u8>`: one 32-byte value per byte, written with two strided copies into the
    array Wasmtime allocates (no Python loop per byte)."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise HostCallError(f"expected bytes, not {type(data).__name__}")
    data = memoryview(data).cast("B")
    count = len(data)
    items = val.of.list
    C.lib().wasmtime_component_vallist_new_uninit(byref(items), count)  # each a bool false
    val.kind = C.WASMTIME_COMPONENT_LIST
    if count:
        array = (ctypes.c_ubyte * (count * _VAL_SIZE)).from_address(ctypes.cast(items.data, c_void_p).value)
        raw = memoryview(array).cast("B")
        raw[0::_VAL_SIZE] = bytes((C.WASMTIME_COMPONENT_U8,)) * count  # now u8 0s
        raw[_PAYLOAD::_VAL_SIZE] = data


def _put_option(val, put_some) -> None:
    if put_some is None:
        val.of.option = None
    else:
        val.of.option = _boxed(put_some)
    val.kind = C.WASMTIME_COMPONENT_OPTION


def _put_result(val, ok: bool, put_payload) -> None:
    val.of.result.val = _boxed(put_payload)
    val.of.result.is_ok = ok
    val.kind = C.WASMTIME_COMPONENT_RESULT


def _put_record(val, fields: list) -> None:
    entries = val.of.record
    C.lib().wasmtime_component_valrecord_new_uninit(byref(entries), len(fields))  # empty names, bools
    val.kind = C.WASMTIME_COMPONENT_RECORD
    for i, (name, put) in enumerate(fields):
        _byte_vec(entries.data[i].name, name.encode())
        put(entries.data[i].val)


def _boxed(put):
    """A `wasmtime_component_val_t*` that Wasmtime allocated, holding what `put` builds."""
    value = C.wasmtime_component_val_t()  # only a shell: wasmtime_component_val_new moves it
    try:
        put(value)
    except BaseException:
        C.lib().wasmtime_component_val_delete(byref(value))
        raise
    return C.lib().wasmtime_component_val_new(byref(value))


def _clear(val) -> None:
    """Free whatever a failed _put_outcome built and leave the bool Wasmtime put there."""
    C.lib().wasmtime_component_val_delete(byref(val))
    val.kind = C.WASMTIME_COMPONENT_BOOL
    val.of.boolean = False


def _error(exception: BaseException) -> int:
    """A new `wasmtime_error_t*` (which traps the guest) as the integer the callback returns."""
    message = f"{INTERFACE}#{FUNCTION} failed: {type(exception).__name__}: {exception}"
    error = C.lib().wasmtime_error_new(message.replace("\0", "\\0").encode("utf-8", "replace"))
    return ctypes.cast(error, c_void_p).value or 0
