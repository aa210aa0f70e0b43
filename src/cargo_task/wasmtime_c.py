"""A private, minimal ctypes layer over the Wasmtime C API, for `sandbox.py` alone.

It uses the native library that the `wasmtime` package ships (`_libwasmtime.so`), found
without importing that package: `import wasmtime` declares ~760 C functions and ~135
structures with ctypes and alone costs more than the rest of a warm run. Only the functions
and structures that `sandbox.py` calls are declared here, each with the exact signature and
layout of the package's generated `wasmtime/_bindings.py` for the pinned version range
(`wasmtime>=50.0.1,<51` in pyproject.toml; a unit test compares the two).

`library_path()` only looks the file up; `lib()` loads and declares it at first use.
Nothing here frees anything on its own (no finalizers): the caller owns what it creates.
"""

from __future__ import annotations

import ctypes
import os
import sys
from ctypes import (
    CFUNCTYPE,
    POINTER,
    Structure,
    Union,
    byref,
    c_bool,
    c_char,
    c_int,
    c_int64,
    c_size_t,
    c_uint8,
    c_uint32,
    c_uint64,
    c_void_p,
)


# -- structures (layouts as in wasmtime/_bindings.py) ---------------------------------


class wasm_config_t(Structure):
    pass


class wasm_engine_t(Structure):
    pass


class wasmtime_store_t(Structure):
    pass


class wasmtime_context_t(Structure):
    pass


class wasi_config_t(Structure):
    pass


class wasmtime_error_t(Structure):
    pass


class wasmtime_component_t(Structure):
    pass


class wasmtime_component_linker_t(Structure):
    pass


class wasmtime_component_export_index_t(Structure):
    pass


class wasm_byte_vec_t(Structure):  # also wasm_name_t
    _fields_ = [("size", c_size_t), ("data", POINTER(ctypes.c_ubyte))]


class wasmtime_component_instance_t(Structure):
    _fields_ = [("store_id", c_uint64), ("__private", c_uint32)]


class _wasmtime_component_func_anon_0(Structure):
    _fields_ = [("store_id", c_uint64), ("__private1", c_uint32)]


class wasmtime_component_func_t(Structure):
    _fields_ = [("_anon_1", _wasmtime_component_func_anon_0), ("__private2", c_uint32), ("__private3", c_void_p)]


class wasmtime_component_val_t(Structure):
    pass


class wasmtime_component_valresult_t(Structure):
    _fields_ = [("is_ok", c_bool), ("val", POINTER(wasmtime_component_val_t))]


class _wasmtime_component_valvariant_t(Structure):
    _fields_ = [("discriminant", wasm_byte_vec_t), ("val", POINTER(wasmtime_component_val_t))]


class wasmtime_component_valunion_t(Union):
    """Only `result` is read here; `variant` is the largest member and sets the size (24)."""

    _fields_ = [("result", wasmtime_component_valresult_t), ("variant", _wasmtime_component_valvariant_t)]


wasmtime_component_val_t._fields_ = [("kind", c_uint8), ("of", wasmtime_component_valunion_t)]


# -- functions ------------------------------------------------------------------------

_error = POINTER(wasmtime_error_t)
_config = POINTER(wasm_config_t)
_engine = POINTER(wasm_engine_t)
_store = POINTER(wasmtime_store_t)
_context = POINTER(wasmtime_context_t)
_wasi = POINTER(wasi_config_t)
_component = POINTER(wasmtime_component_t)
_linker = POINTER(wasmtime_component_linker_t)
_instance = POINTER(wasmtime_component_instance_t)
_index = POINTER(wasmtime_component_export_index_t)
_val = POINTER(wasmtime_component_val_t)
_vec = POINTER(wasm_byte_vec_t)
_chars = POINTER(c_char)
_bytes = POINTER(c_uint8)
_finalizer = CFUNCTYPE(None, c_void_p)

SIGNATURES: dict[str, tuple[object, list[object]]] = {
    # engine
    "wasm_config_new": (_config, []),
    "wasmtime_config_epoch_interruption_set": (None, [_config, c_bool]),
    "wasm_engine_new_with_config": (_engine, [_config]),
    "wasmtime_engine_increment_epoch": (None, [_engine]),
    # store
    "wasmtime_store_new": (_store, [_engine, c_void_p, _finalizer]),
    "wasmtime_store_context": (_context, [_store]),
    "wasmtime_store_limiter": (None, [_store, c_int64, c_int64, c_int64, c_int64, c_int64]),
    "wasmtime_store_delete": (None, [_store]),
    "wasmtime_context_set_epoch_deadline": (None, [_context, c_uint64]),
    "wasmtime_context_set_wasi": (_error, [_context, _wasi]),
    "wasmtime_context_set_wasi_http": (None, [_context]),
    # WASI
    "wasi_config_new": (_wasi, []),
    "wasi_config_delete": (None, [_wasi]),
    "wasi_config_set_argv": (c_bool, [_wasi, c_size_t, POINTER(_chars)]),
    "wasi_config_set_env": (c_bool, [_wasi, c_size_t, POINTER(_chars), POINTER(_chars)]),
    "wasi_config_inherit_stdin": (None, [_wasi]),
    "wasi_config_inherit_stdout": (None, [_wasi]),
    "wasi_config_inherit_stderr": (None, [_wasi]),
    "wasi_config_set_stdout_file": (c_bool, [_wasi, _chars]),
    "wasi_config_set_stderr_file": (c_bool, [_wasi, _chars]),
    "wasi_config_preopen_dir": (c_bool, [_wasi, _chars, _chars, c_bool]),
    "wasi_config_allow_ip_name_lookup": (None, [_wasi, c_bool]),
    # components
    "wasmtime_component_new": (_error, [_engine, _bytes, c_size_t, POINTER(_component)]),
    "wasmtime_component_serialize": (_error, [_component, _vec]),
    "wasmtime_component_deserialize": (_error, [_engine, _bytes, c_size_t, POINTER(_component)]),
    "wasmtime_component_delete": (None, [_component]),
    "wasmtime_component_linker_new": (_linker, [_engine]),
    "wasmtime_component_linker_add_wasip2": (_error, [_linker]),
    "wasmtime_component_linker_add_wasi_http": (_error, [_linker]),
    "wasmtime_component_linker_instantiate": (_error, [_linker, _context, _component, _instance]),
    "wasmtime_component_linker_delete": (None, [_linker]),
    "wasmtime_component_instance_get_export_index": (_index, [_instance, _context, _index, _chars, c_size_t]),
    "wasmtime_component_instance_get_func": (
        c_bool, [_instance, _context, _index, POINTER(wasmtime_component_func_t)]
    ),
    "wasmtime_component_export_index_delete": (None, [_index]),
    "wasmtime_component_func_call": (
        _error, [POINTER(wasmtime_component_func_t), _context, _val, c_size_t, _val, c_size_t]
    ),
    "wasmtime_component_val_delete": (None, [_val]),
    # errors and byte vectors
    "wasmtime_error_message": (None, [_error, _vec]),
    "wasmtime_error_exit_status": (c_bool, [_error, POINTER(c_int)]),
    "wasmtime_error_delete": (None, [_error]),
    "wasm_byte_vec_delete": (None, [_vec]),
}


# -- the library ----------------------------------------------------------------------

_path: str | None = None
_lib: ctypes.CDLL | None = None


def library_path() -> str:
    """The native library inside the installed `wasmtime` package (not imported), chosen
    by the same platform and architecture rules as `wasmtime/_ffi.py`."""
    global _path
    if _path is None:
        from importlib.machinery import PathFinder

        spec = PathFinder.find_spec("wasmtime")  # sys.path only; neither imports it
        if spec is None:
            from importlib.util import find_spec

            spec = find_spec("wasmtime")
        if spec is None or not spec.submodule_search_locations:
            raise _unavailable("the `wasmtime` package is not installed")
        platform = "android" if hasattr(sys, "getandroidapilevel") else sys.platform
        if platform in ("linux", "android"):
            name = "_libwasmtime.so"
        elif platform == "win32":
            name = "_wasmtime.dll"
        elif platform == "darwin":
            name = "_libwasmtime.dylib"
        else:
            raise _unavailable(f"wasmtime does not support the platform `{platform}`")
        machine = _machine()
        if machine not in ("x86_64", "aarch64"):
            raise _unavailable(f"wasmtime does not support the architecture `{machine}`")
        directory = list(spec.submodule_search_locations)[0]
        _check_version(os.path.dirname(directory))
        _path = os.path.join(directory, f"{platform}-{machine}", name)
    return _path


SUPPORTED = (50, 0, 1), (51, 0, 0)  # the layouts above are those of wasmtime 50.x


def _check_version(site: str) -> None:
    """The declarations above are exact for one major version: refuse any other, since a
    wrong layout would corrupt memory rather than fail cleanly."""
    for entry in os.listdir(site):
        if entry.startswith("wasmtime-") and entry.endswith(".dist-info"):
            version = entry[len("wasmtime-") : -len(".dist-info")]
            try:
                parts = tuple(int(p) for p in version.split(".")[:3])
            except ValueError:
                continue
            if not SUPPORTED[0] <= parts < SUPPORTED[1]:
                raise _unavailable(f"the installed wasmtime {version} is not the 50.x this tool is built for")


def _unavailable(message: str) -> Exception:
    from cargo_task.errors import SandboxError

    return SandboxError(message, help="pip install 'wasmtime>=50.0.1,<51'", exit_code=1)


def _machine() -> str:
    if hasattr(os, "uname"):
        machine = os.uname().machine
    else:  # Windows
        import platform

        machine = platform.machine()
    return {"AMD64": "x86_64", "amd64": "x86_64", "arm64": "aarch64", "ARM64": "aarch64"}.get(machine, machine)


def lib() -> ctypes.CDLL:
    """The loaded library with the functions above declared; loaded at the first call."""
    global _lib
    if _lib is None:
        loaded = ctypes.CDLL(library_path())
        for name, (restype, argtypes) in SIGNATURES.items():
            function = getattr(loaded, name)
            function.restype = restype
            function.argtypes = argtypes
        _lib = loaded
    return _lib


# -- helpers --------------------------------------------------------------------------


class WasmtimeError(Exception):
    """A `wasmtime_error_t` turned into Python and freed; `exit_status` is set for a WASI
    exit (`wasi:cli/exit`), None for a trap or any other error."""

    def __init__(self, message: str, exit_status: int | None = None):
        super().__init__(message)
        self.exit_status = exit_status


def take_error(error) -> WasmtimeError:
    """Read and free a non-null `wasmtime_error_t*`."""
    c = lib()
    status = c_int(0)
    exited = c.wasmtime_error_exit_status(error, byref(status))
    vec = wasm_byte_vec_t()
    c.wasmtime_error_message(error, byref(vec))
    message = take_bytes(vec).decode("utf-8", "replace")
    c.wasmtime_error_delete(error)
    return WasmtimeError(message, status.value if exited else None)


def check(error) -> None:
    """Raise WasmtimeError for a non-null `wasmtime_error_t*` (freeing it)."""
    if error:
        raise take_error(error)


def take_bytes(vec: wasm_byte_vec_t) -> bytes:
    """Copy a `wasm_byte_vec_t` the C API filled in, then free it."""
    data = ctypes.string_at(vec.data, vec.size) if vec.size else b""
    lib().wasm_byte_vec_delete(byref(vec))
    return data


def byte_pointer(data: bytes):
    """`data` as a `uint8_t*` argument, without copying `bytes` (the pointer keeps it alive)."""
    return ctypes.cast(ctypes.c_char_p(data if type(data) is bytes else bytes(data)), _bytes)


def no_finalizer():
    """A null `void (*)(void*)`, for `wasmtime_store_new` without host data."""
    return ctypes.cast(None, _finalizer)


def char_array(strings):
    """A `char**` argument: NUL-terminated UTF-8 copies of `strings` (kept alive by it)."""
    array = (ctypes.c_char_p * len(strings))(*(s.encode() for s in strings))
    return ctypes.cast(array, POINTER(_chars))
