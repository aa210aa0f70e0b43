"""sandbox + wasmtime_c: the private C API layer, exit codes, limits, and the import boundary.

The components are hand-written in the component text format, which Wasmtime compiles
directly: no cargo, no Rust, and no `wasmtime` Python package.
"""

import ctypes
import subprocess
import sys
import textwrap

import pytest

from cargo_task import sandbox, wasmtime_c
from cargo_task.errors import SandboxError
from cargo_task.grants import Grants

MiB = 1 << 20


def command(body: str, imports: str = "", core_imports: str = "", lowered: str = "", memory: str = "") -> bytes:
    """A component exporting `wasi:cli/run@0.2.0`, whose `run` is the core `body`
    (an i32: 0 for ok, 1 for err)."""
    host = '(with "host" (instance $host))' if lowered else ""
    return textwrap.dedent(f"""
        (component
          {imports}
          {lowered}
          (core module $m
            {core_imports}
            {memory}
            (func (export "run") (result i32) {body}))
          (core instance $i (instantiate $m {host}))
          (func $run (result (result)) (canon lift (core func $i "run")))
          (instance $cli (export "run" (func $run)))
          (export "wasi:cli/run@0.2.0" (instance $cli)))
    """).encode()


EXIT_IMPORT = """
    (import "wasi:cli/exit@0.2.0" (instance $exit (export "exit" (func (param "status" (result))))))
"""
EXIT_LOWERED = """
    (alias export $exit "exit" (func $exit_fn))
    (core func $exit_core (canon lower (func $exit_fn)))
    (core instance $host (export "exit" (func $exit_core)))
"""
HTTP_IMPORT = """(import "wasi:http/types@0.2.0" (instance (export "f" (func))))"""


def grants(timeout=None, memory=64 * MiB, network=False) -> Grants:
    return Grants(("t", "a b"), (("K", "v"),), (), False, network, False, timeout, memory, ())


def never(error):
    raise AssertionError(f"abandoned: {error.message}")


def run(wasm: bytes, **settings) -> int:
    return sandbox.run("t", sandbox.Compiled(sandbox.compile_component(wasm, "t")), grants(**settings), never)


def test_ok_and_err_are_exit_codes_0_and_1():
    assert run(command("i32.const 0")) == 0
    assert run(command("i32.const 1")) == 1


def test_a_wasi_exit_is_its_exit_code():
    core_import = '(import "host" "exit" (func $exit (param i32)))'
    exits = command("i32.const 0 call $exit i32.const 1", EXIT_IMPORT, core_import, EXIT_LOWERED)
    assert run(exits) == 0  # exit(ok) before returning err


def test_a_trap_is_reported_with_its_reason():
    with pytest.raises(SandboxError) as caught:
        run(command("unreachable"))
    assert caught.value.exit_code == 101
    assert caught.value.message == "task `t` was stopped by a trap: wasm `unreachable` instruction executed"
    assert "memory limit is 64 MiB" in caught.value.help


def test_an_endless_loop_is_stopped_by_the_time_limit():
    with pytest.raises(SandboxError) as caught:
        run(command("(loop $l (br $l)) i32.const 0"), timeout=0.2)
    assert caught.value.exit_code == sandbox.TIMEOUT_EXIT
    assert "time limit of 200ms" in caught.value.message


def test_the_memory_limit_holds_for_the_store():
    grows = command("(i32.eq (memory.grow (i32.const 100)) (i32.const -1))", memory="(memory 1)")
    assert run(grows, memory=1 * MiB) == 1  # 100 more pages (6.4 MiB) refused
    assert run(grows, memory=64 * MiB) == 0


def test_cached_code_that_does_not_load_is_stale():
    with pytest.raises(sandbox.StaleComponent):
        sandbox.run("t", sandbox.Compiled(b"\x7fELF not really"), grants(), never)


def test_an_invalid_component_is_a_build_error():
    with pytest.raises(SandboxError) as caught:
        sandbox.compile_component(b"\0asm\x01\0\0\0junk", "t")
    assert caught.value.exit_code == 1 and "did not build to a valid WASI 0.2 component" in caught.value.message


def test_wasi_http_without_a_network_grant_says_so():
    with pytest.raises(SandboxError) as caught:
        run(command("i32.const 0", HTTP_IMPORT))
    assert caught.value.message == "task `t` uses the network (wasi:http), but it has no network grant"


def test_a_component_without_wasi_cli_run_is_not_a_command():
    with pytest.raises(SandboxError) as caught:
        run(b"(component)")
    assert "exports no `wasi:cli/run`" in caught.value.message


def _shape(t):
    """A ctypes type as comparable data, independent of which module declared it."""
    if t is None:
        return None
    if isinstance(t, type) and issubclass(t, ctypes._Pointer):
        return ("*", _shape(t._type_))
    if isinstance(t, type) and issubclass(t, ctypes._CFuncPtr):
        return ("fn", _shape(t._restype_), tuple(_shape(a) for a in t._argtypes_))
    if isinstance(t, type) and issubclass(t, (ctypes.Structure, ctypes.Union)):
        return (t.__name__.removesuffix("_t"), ctypes.sizeof(t), ctypes.alignment(t))
    return (t._type_, ctypes.sizeof(t))


def test_every_declaration_matches_the_installed_wasmtime_bindings():
    from wasmtime import _bindings  # only here, to compare: the tool never imports it

    for name, signature in wasmtime_c.SIGNATURES.items():
        restype, argtypes = signature()  # evaluated at first use (see _wasmtime_abi.py)
        theirs = getattr(_bindings, f"_{name}")
        assert _shape(restype) == _shape(theirs.restype), name
        assert [_shape(a) for a in argtypes] == [_shape(a) for a in theirs.argtypes], name
    for name in ("wasm_byte_vec_t", "wasmtime_component_instance_t", "wasmtime_component_func_t",
                 "wasmtime_component_val_t", "wasmtime_component_valunion_t", "wasmtime_component_valresult_t"):  # fmt: skip
        ours, theirs = getattr(wasmtime_c, name), getattr(_bindings, name)
        assert (ctypes.sizeof(ours), ctypes.alignment(ours)) == (ctypes.sizeof(theirs), ctypes.alignment(theirs)), name
    assert wasmtime_c.wasmtime_component_val_t.of.offset == _bindings.wasmtime_component_val_t.of.offset
    assert wasmtime_c.wasmtime_component_valresult_t.is_ok.offset == 0


def test_the_library_is_the_one_the_wasmtime_package_loads():
    from wasmtime import _ffi

    assert wasmtime_c.library_path() == str(_ffi.filename)


BOUNDARY = """
import sys
from cargo_task import sandbox
from cargo_task.grants import Grants

def loaded():
    with open("/proc/self/maps") as maps:
        return "_libwasmtime" in maps.read()

sandbox.engine_id()
assert not loaded(), "importing sandbox or asking for the engine id loaded the library"
payload = sandbox.Compiled(sandbox.compile_component(sys.stdin.buffer.read(), "t"))
code = sandbox.run("t", payload, Grants(("t",), (), (), True, False, False, 5.0, 1 << 26, ()), None)
assert code == 1, code
assert loaded()
assert "wasmtime" not in sys.modules, sorted(m for m in sys.modules if m.startswith("wasmtime"))
"""


def test_compiling_and_running_never_import_the_wasmtime_package():
    done = subprocess.run([sys.executable, "-c", BOUNDARY], input=command("i32.const 1"), capture_output=True)
    assert done.returncode == 0, done.stderr.decode()
