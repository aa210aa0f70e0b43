"""A private, minimal ctypes layer over the Wasmtime C API, for `sandbox.py` and `hostlink.py`.

It uses the native library that the `wasmtime` package ships (`_libwasmtime.so`), found
without importing that package: `import wasmtime` declares ~760 C functions and ~135
structures with ctypes and alone costs more than the rest of a warm run. The structures,
value kinds and signatures come from `_wasmtime_abi.py`, generated from the package's own
`wasmtime/_bindings.py` by `scripts/gen_wasmtime_abi.py` for one wasmtime version; this
module adds what is written by hand: finding the library, refusing a version the
declarations were not made for, loading, error conversion and byte helpers.

`library_path()` only looks the file up; `lib()` loads the library at first use, and each
function is declared at its first call. Nothing here frees anything on its own (no
finalizers): the caller owns what it creates.
"""

from __future__ import annotations

import ctypes
import os
import sys
from ctypes import POINTER, byref, c_char, c_int, c_uint8

from cargo_task._wasmtime_abi import *  # noqa: F403 (structures, value kinds, SIGNATURES)
from cargo_task._wasmtime_abi import SIGNATURES, SUPPORTED, wasm_byte_vec_t

_chars = POINTER(c_char)
_bytes = POINTER(c_uint8)


# -- the library ----------------------------------------------------------------------

_path: str | None = None
_lib: ctypes.CDLL | None = None


def library_path() -> str:
    """The native library inside the installed `wasmtime` package (not imported), chosen
    by the same platform and architecture rules as `wasmtime/_ffi.py`."""
    global _path
    if _path is None:
        directory = _package_dir()
        if directory is None:
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
        _check_version(os.path.dirname(directory))
        _path = os.path.join(directory, f"{platform}-{machine}", name)
    return _path


def _package_dir() -> str | None:
    """The directory `import wasmtime` would load, found without importing it. A regular
    package on sys.path is one stat per entry (the import system's finders would list every
    directory first: ~0.5 ms of a warm run); anything else goes through those finders."""
    for entry in sys.path:
        if isinstance(entry, str):
            directory = os.path.join(os.path.abspath(entry), "wasmtime")
            if os.path.isfile(os.path.join(directory, "__init__.py")):
                return directory
    from importlib.util import find_spec

    spec = find_spec("wasmtime")  # a top-level name: finds, does not import
    return list(spec.submodule_search_locations)[0] if spec and spec.submodule_search_locations else None


def _check_version(site: str) -> None:
    """The declarations are exact for the versions in SUPPORTED: refuse any other, and refuse
    when the version cannot be confirmed, since a wrong layout corrupts memory rather than
    failing cleanly. The wheel's `wasmtime-X.Y.Z.dist-info`, beside the package, names it."""
    try:
        entries = os.listdir(site)
    except OSError:
        entries = []
    found = sorted(e for e in entries if e.lower().startswith("wasmtime-") and e.endswith(".dist-info"))
    unconfirmed = f"cannot confirm which wasmtime is installed in {site}"
    if len(found) != 1:
        listed = f"{len(found)} ({', '.join(found)})" if found else "no"
        raise _unavailable(f"{unconfirmed}: found {listed} wasmtime-*.dist-info", reinstall=True)
    version = found[0][len("wasmtime-") : -len(".dist-info")]
    try:
        parts = tuple(int(p) for p in version.split(".")[:3])
    except ValueError:
        raise _unavailable(f"{unconfirmed}: `{found[0]}` names no version it supports", reinstall=True) from None
    low, high = SUPPORTED
    if not low <= parts < high:
        raise _unavailable(
            f"the installed wasmtime {version} is not the {low[0]}.x that cargo-task's C declarations are made for"
        )


def requirement() -> str:
    """The pip requirement for the versions the declarations hold for."""
    low, high = SUPPORTED
    return f"wasmtime>={'.'.join(map(str, low))},<{high[0]}"


def _unavailable(message: str, reinstall: bool = False) -> Exception:
    from cargo_task.errors import SandboxError

    command = "pip install --force-reinstall" if reinstall else "pip install"
    return SandboxError(message, help=f"install it with `{command} '{requirement()}'`", exit_code=1)


def _machine() -> str:
    if hasattr(os, "uname"):
        machine = os.uname().machine
    else:  # Windows
        import platform

        machine = platform.machine()
    return {"AMD64": "x86_64", "amd64": "x86_64", "arm64": "aarch64", "ARM64": "aarch64"}.get(machine, machine)


class _Library(ctypes.CDLL):
    """The native library: a function gets its generated signature at its first use, and a
    function without one is refused (ctypes would call it as `int f(int, ...)`)."""

    def __getattr__(self, name: str):
        try:
            signature = SIGNATURES[name]
        except KeyError:
            raise AttributeError(f"`{name}` is not declared: add it to scripts/gen_wasmtime_abi.py") from None
        restype, argtypes = signature()
        function = self[name]
        function.restype = restype
        function.argtypes = argtypes
        setattr(self, name, function)  # later uses skip __getattr__
        return function


def lib() -> ctypes.CDLL:
    """The loaded library; loaded at the first call."""
    global _lib
    if _lib is None:
        _lib = _Library(library_path())
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
    return ctypes.cast(None, lib().wasmtime_store_new.argtypes[2])


def char_array(strings):
    """A `char**` argument: NUL-terminated UTF-8 copies of `strings` (kept alive by it)."""
    array = (ctypes.c_char_p * len(strings))(*(s.encode() for s in strings))
    return ctypes.cast(array, POINTER(_chars))
