#!/usr/bin/env python3
"""Generate `src/cargo_task/_wasmtime_abi.py`: the ctypes declarations cargo-task uses.

    .venv/bin/python scripts/gen_wasmtime_abi.py            # write the module
    .venv/bin/python scripts/gen_wasmtime_abi.py --check    # exit 1 if it is out of date

The source is the installed `wasmtime` package's own `wasmtime/_bindings.py` (generated
by wasmtime-py from the C headers), read as Python syntax and never imported, plus the
component value kinds from `wasmtime/_ffi.py`. Only the functions in FUNCTIONS below are
emitted, with every structure, alias and callback type they reach, in the order the
bindings define them. To call another C function: add its name here and run the script.
The output names the wasmtime version it was made from; `wasmtime_c` refuses any other
major version at run time, and tests/unit/test_wasmtime_abi.py regenerates and compares.
"""

from __future__ import annotations

import argparse
import ast
import importlib.metadata
import importlib.util
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OUTPUT = REPO / "src" / "cargo_task" / "_wasmtime_abi.py"

FUNCTIONS = (
    # engine
    "wasm_config_new",
    "wasmtime_config_epoch_interruption_set",
    "wasmtime_config_strategy_set",
    "wasm_engine_new_with_config",
    "wasmtime_engine_increment_epoch",
    # store
    "wasmtime_store_new",
    "wasmtime_store_context",
    "wasmtime_store_limiter",
    "wasmtime_store_delete",
    "wasmtime_context_set_epoch_deadline",
    "wasmtime_context_set_wasi",
    "wasmtime_context_set_wasi_http",
    # WASI
    "wasi_config_new",
    "wasi_config_delete",
    "wasi_config_set_argv",
    "wasi_config_set_env",
    "wasi_config_inherit_stdin",
    "wasi_config_inherit_stdout",
    "wasi_config_inherit_stderr",
    "wasi_config_set_stdout_file",
    "wasi_config_set_stderr_file",
    "wasi_config_preopen_dir",
    "wasi_config_allow_ip_name_lookup",
    # components
    "wasmtime_component_new",
    "wasmtime_component_serialize",
    "wasmtime_component_deserialize",
    "wasmtime_component_delete",
    "wasmtime_component_instance_get_export_index",
    "wasmtime_component_instance_get_func",
    "wasmtime_component_export_index_delete",
    "wasmtime_component_func_call",
    # the linker, and host functions served through it (hostlink.py)
    "wasmtime_component_linker_new",
    "wasmtime_component_linker_add_wasip2",
    "wasmtime_component_linker_add_wasi_http",
    "wasmtime_component_linker_instantiate",
    "wasmtime_component_linker_delete",
    "wasmtime_component_linker_root",
    "wasmtime_component_linker_instance_add_instance",
    "wasmtime_component_linker_instance_add_func",
    "wasmtime_component_linker_instance_delete",
    # component values: built with Wasmtime's allocators, since Wasmtime frees them
    "wasmtime_component_val_new",
    "wasmtime_component_val_delete",
    "wasmtime_component_vallist_new_uninit",
    "wasmtime_component_valrecord_new_uninit",
    # errors and byte vectors
    "wasmtime_error_new",
    "wasmtime_error_message",
    "wasmtime_error_exit_status",
    "wasmtime_error_delete",
    "wasm_byte_vec_new",
    "wasm_byte_vec_delete",
)

# The callback types hostlink.py passes functions as (they are not arguments' names).
CALLBACK_TYPES = ("wasmtime_component_func_callback_t",)

# `wasmtime_component_val_t.kind`: #defines in the C header, mirrored by hand in _ffi.py.
VALUE_KINDS = (
    "BOOL", "S8", "U8", "S16", "U16", "S32", "U32", "S64", "U64", "F32", "F64", "CHAR",
    "STRING", "LIST", "RECORD", "TUPLE", "VARIANT", "ENUM", "OPTION", "RESULT", "FLAGS",
    "RESOURCE",
)  # fmt: skip


class GenerateError(Exception):
    pass


def package_dir() -> Path:
    spec = importlib.util.find_spec("wasmtime")  # a top-level name: finds, does not import
    if spec is None or not spec.submodule_search_locations:
        raise GenerateError("the `wasmtime` package is not installed in this interpreter")
    return Path(list(spec.submodule_search_locations)[0])


def installed_version(package: Path) -> str:
    dist = importlib.metadata.distribution("wasmtime")
    if Path(dist.locate_file("wasmtime")).resolve() != package.resolve():
        raise GenerateError(f"the wasmtime distribution found is not the package at {package}")
    return dist.version


def _names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and n.id != "ctypes"}


class Bindings:
    """The top-level statements of `_bindings.py`, indexed by what they define."""

    def __init__(self, source: str):
        self.statements = ast.parse(source).body
        self.defines: dict[str, list[ast.stmt]] = {}  # a name -> the statements defining it
        self.signatures: dict[str, tuple[ast.expr, ast.expr]] = {}
        restypes: dict[str, ast.expr] = {}
        for node in self.statements:
            if isinstance(node, ast.ClassDef):
                self.defines.setdefault(node.name, []).append(node)
            elif isinstance(node, ast.Assign) and len(node.targets) == 1:
                target = node.targets[0]
                if isinstance(target, ast.Name) and not target.id.startswith("_"):
                    self.defines.setdefault(target.id, []).append(node)  # alias, typedef, CFUNCTYPE
                elif isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name):
                    owner = target.value.id
                    if target.attr == "_fields_":
                        self.defines.setdefault(owner, []).append(node)  # fields set after the class
                    elif target.attr == "restype":
                        restypes[owner.removeprefix("_")] = node.value
                    elif target.attr == "argtypes":
                        self.signatures[owner.removeprefix("_")] = (restypes[owner.removeprefix("_")], node.value)

    def closure(self, roots: set[str]) -> set[str]:
        """Every name the roots reach through class fields, aliases and callback types."""
        needed: set[str] = set()
        pending = sorted(roots)
        while pending:
            name = pending.pop()
            if name in needed:
                continue
            if name not in self.defines:
                raise GenerateError(f"`{name}` is not defined in _bindings.py (imported from _ffi.py?)")
            needed.add(name)
            for node in self.defines[name]:
                pending.extend(_names(_fields(node) if isinstance(node, ast.ClassDef) else node.value) - needed)
        return needed


def _fields(node: ast.ClassDef) -> ast.List:
    """The `_fields_` list in a class body (empty for an opaque structure); the annotations
    beside it are only for mypy."""
    for statement in node.body:
        if isinstance(statement, ast.Assign) and ast.unparse(statement.targets[0]) == "_fields_":
            return statement.value
    return ast.List(elts=[])


def _class_source(node: ast.ClassDef) -> list[str]:
    """A class as its base and `_fields_`, without the annotations."""
    bases = ", ".join(ast.unparse(b) for b in node.bases)
    fields = _fields(node).elts
    lines = [f"class {node.name}({bases}):"]
    if fields:
        lines += ["    _fields_ = ["] + [f"        {ast.unparse(e)}," for e in fields] + ["    ]"]
    else:
        lines.append("    pass")
    return lines


def _value_kinds(ffi_source: str) -> dict[str, int]:
    kinds: dict[str, int] = {}
    for node in ast.parse(ffi_source).body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            name = node.targets[0].id
            value = node.value
            if (
                name.startswith("WASMTIME_COMPONENT_")
                and name.removeprefix("WASMTIME_COMPONENT_") in VALUE_KINDS
                and isinstance(value, ast.Call)
                and ast.unparse(value.func) == "c_uint8"
            ):
                kinds[name] = ast.literal_eval(value.args[0])
    missing = [k for k in VALUE_KINDS if f"WASMTIME_COMPONENT_{k}" not in kinds]
    if missing:
        raise GenerateError(f"_ffi.py defines no value kind {', '.join(missing)}")
    return kinds


def generate(package: Path, version: str) -> str:
    bindings = Bindings((package / "_bindings.py").read_text(encoding="utf-8"))
    kinds = _value_kinds((package / "_ffi.py").read_text(encoding="utf-8"))
    unknown = [f for f in FUNCTIONS if f not in bindings.signatures]
    if unknown:
        raise GenerateError(f"_bindings.py declares no function {', '.join(unknown)}")
    roots = set(CALLBACK_TYPES)
    for name in FUNCTIONS:
        restype, argtypes = bindings.signatures[name]
        roots |= _names(restype) | _names(argtypes)
    needed = bindings.closure(roots)

    major, minor, patch = (int(p) for p in version.split(".")[:3])
    out = [
        f"# Generated by scripts/gen_wasmtime_abi.py from wasmtime {version} (wasmtime/_bindings.py",
        "# and wasmtime/_ffi.py). Do not edit: add a function to the script's list and run it.",
        '"""The Wasmtime C API declarations cargo-task uses: structures, callback types, value',
        "kinds, and the signature of each function, exactly as the `wasmtime` package's bindings",
        "declare them. `wasmtime_c` loads the library and declares a function at its first use.",
        '"""',
        "",
        "import ctypes",
        "",
        f'WASMTIME_VERSION = "{version}"',
        f"SUPPORTED = (({major}, {minor}, {patch}), ({major + 1}, 0, 0))  # the versions these layouts hold for",
        "",
        "# -- structures, aliases and callback types -------------------------------------------",
        "",
    ]
    exported: list[str] = []
    for node in bindings.statements:
        if isinstance(node, ast.ClassDef) and node.name in needed:
            out += ([""] if out[-1] else []) + _class_source(node) + [""]
            exported.append(node.name)
        elif isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            if isinstance(target, ast.Name) and target.id in needed:
                out.append(f"{target.id} = {ast.unparse(node.value)}")
                exported.append(target.id)
            elif isinstance(target, ast.Attribute) and target.attr == "_fields_" and ast.unparse(target.value) in needed:
                out += [f"{ast.unparse(target)} = ["] + [f"    {ast.unparse(e)}," for e in node.value.elts] + ["]", ""]
    out += ["", "# -- component value kinds (wasmtime_component_val_t.kind) ----------------------------", ""]
    for name, value in sorted(kinds.items(), key=lambda item: item[1]):
        out.append(f"{name} = {value}")
        exported.append(name)
    out += [
        "",
        "# -- functions: name -> () -> (restype, argtypes), evaluated at the function's first use",
        "# (each new pointer type costs ~10 us: a run creates only those of the functions it calls)",
        "",
    ]
    out.append("SIGNATURES = {")
    for name in FUNCTIONS:
        restype, argtypes = bindings.signatures[name]
        out.append(f'    "{name}": lambda: ({ast.unparse(restype)}, {ast.unparse(argtypes)}),')
    out += ["}", ""]
    exported += ["SIGNATURES", "SUPPORTED", "WASMTIME_VERSION"]
    out += ["__all__ = ["] + [f'    "{name}",' for name in exported] + ["]", ""]
    return "\n".join(out)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=OUTPUT, help=f"where to write (default: {OUTPUT})")
    parser.add_argument("--check", action="store_true", help="compare with --output instead of writing it")
    args = parser.parse_args(argv)
    try:
        package = package_dir()
        text = generate(package, installed_version(package))
    except GenerateError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.exists() else ""
        if current != text:
            print(f"{args.output} is out of date: run scripts/gen_wasmtime_abi.py", file=sys.stderr)
            return 1
        return 0
    args.output.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
