"""_wasmtime_abi.py (generated) and the version guard and lazy declarations of wasmtime_c."""

from __future__ import annotations

import ctypes
import importlib.metadata
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from cargo_task import _wasmtime_abi as abi
from cargo_task import wasmtime_c
from cargo_task.errors import SandboxError, TaskError

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "gen_wasmtime_abi.py"
MODULE = REPO / "src" / "cargo_task" / "_wasmtime_abi.py"


def test_the_committed_module_is_what_the_script_generates(tmp_path):
    output = tmp_path / "_wasmtime_abi.py"
    done = subprocess.run([sys.executable, str(SCRIPT), "--output", str(output)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert output.read_text() == MODULE.read_text(), "out of date: run scripts/gen_wasmtime_abi.py"


def test_it_names_the_wasmtime_it_was_generated_from():
    version = importlib.metadata.version("wasmtime")
    assert abi.WASMTIME_VERSION == version
    assert f"from wasmtime {version} " in MODULE.read_text().splitlines()[0]
    major = int(version.split(".")[0])
    assert abi.SUPPORTED == (tuple(int(p) for p in version.split(".")[:3]), (major + 1, 0, 0))


def _layout(cls):
    fields = [(name, getattr(cls, name).offset, getattr(cls, name).size) for name, *_ in cls.__dict__.get("_fields_", [])]
    return ctypes.sizeof(cls), ctypes.alignment(cls), fields


def test_every_structure_has_the_layout_of_the_installed_bindings():
    from wasmtime import _bindings  # only here, to compare: the tool never imports it

    structures = [
        name for name in abi.__all__
        if isinstance(getattr(abi, name), type) and issubclass(getattr(abi, name), (ctypes.Structure, ctypes.Union))
    ]  # fmt: skip
    assert "wasmtime_component_valunion" in structures and "wasmtime_component_valrecord_entry" in structures
    for name in structures:
        ours, theirs = getattr(abi, name), getattr(_bindings, name)
        if "_fields_" in theirs.__dict__:
            assert _layout(ours) == _layout(theirs), name
    assert ctypes.sizeof(abi.wasmtime_component_val_t) == 32  # one per byte of a list<u8>


def test_the_value_kinds_are_those_of_the_installed_package():
    from wasmtime import _ffi

    kinds = [name for name in abi.__all__ if name.startswith("WASMTIME_COMPONENT_")]
    assert len(kinds) == 22
    for name in kinds:
        assert getattr(abi, name) == getattr(_ffi, name).value, name


def test_every_declared_function_is_in_the_library():
    lib = wasmtime_c.lib()
    for name in abi.SIGNATURES:
        function = getattr(lib, name)
        assert function.argtypes is not None, name


LAZY = """
from cargo_task import wasmtime_c as C
lib = C.lib()
assert not [n for n in C.SIGNATURES if n in vars(lib)], "declared before use"
config = lib.wasm_config_new
assert "wasm_config_new" in vars(lib) and config.restype is C.SIGNATURES["wasm_config_new"]()[0]
try:
    lib.wasmtime_func_new
except AttributeError as e:
    assert "add it to scripts/gen_wasmtime_abi.py" in str(e), e
else:
    raise AssertionError("an undeclared function was callable")
"""


def test_functions_are_declared_at_first_use_and_only_those_generated():
    done = subprocess.run([sys.executable, "-c", LAZY], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


# -- the version guard -----------------------------------------------------------------------


def _site(tmp_path: Path, *dist_infos: str) -> str:
    for name in dist_infos:
        (tmp_path / name).mkdir()
    (tmp_path / "wasmtime").mkdir(exist_ok=True)
    return str(tmp_path)


@pytest.mark.parametrize("dist_info", ["wasmtime-50.0.1.dist-info", "wasmtime-50.3.0.dist-info"])
def test_a_version_the_declarations_hold_for_loads(tmp_path, dist_info):
    wasmtime_c._check_version(_site(tmp_path, dist_info, "wasmtime_other-9.0.dist-info"))


@pytest.mark.parametrize(
    "dist_infos, message",
    [
        ((), "cannot confirm which wasmtime is installed in {site}: found no wasmtime-*.dist-info"),
        (
            ("wasmtime-50.0.1.dist-info", "wasmtime-51.0.0.dist-info"),
            "cannot confirm which wasmtime is installed in {site}: found 2 "
            "(wasmtime-50.0.1.dist-info, wasmtime-51.0.0.dist-info) wasmtime-*.dist-info",
        ),
        (("wasmtime-fifty.dist-info",), "cannot confirm which wasmtime is installed in {site}: "
                                         "`wasmtime-fifty.dist-info` names no version it supports"),
        (("wasmtime-51.0.0.dist-info",), "the installed wasmtime 51.0.0 is not the 50.x that cargo-task's C "
                                         "declarations are made for"),
        (("wasmtime-50.0.0.dist-info",), "the installed wasmtime 50.0.0 is not the 50.x"),
        (("wasmtime-49.0.1.dist-info",), "the installed wasmtime 49.0.1 is not the 50.x"),
    ],
)  # fmt: skip
def test_a_version_that_cannot_be_confirmed_or_is_another_is_refused(tmp_path, dist_infos, message):
    site = _site(tmp_path, *dist_infos)
    with pytest.raises(SandboxError) as caught:
        wasmtime_c._check_version(site)
    assert isinstance(caught.value, TaskError) and caught.value.exit_code == 1
    assert caught.value.message.startswith(message.format(site=site))
    assert caught.value.help.endswith(f"'{wasmtime_c.requirement()}'`")
    assert wasmtime_c.requirement() == f"wasmtime>={abi.WASMTIME_VERSION},<{abi.SUPPORTED[1][0]}"


GUARD = """
import sys
from cargo_task import wasmtime_c
from cargo_task.errors import TaskError
try:
    wasmtime_c.lib()
except TaskError as e:
    print(e.message); print(e.help)
else:
    print("loaded")
"""


def test_a_wasmtime_package_without_its_dist_info_is_not_loaded(tmp_path):
    """As when the package was copied in or installed by something other than a wheel: the
    library beside it may be any version, so nothing is loaded and the user learns why."""
    package = tmp_path / "wasmtime"
    (package / "linux-x86_64").mkdir(parents=True)
    (package / "__init__.py").write_text("raise SystemExit('the package was imported')\n")
    (package / "linux-x86_64" / "_libwasmtime.so").write_bytes(b"not a library")
    script = f"import sys; sys.path.insert(0, {str(tmp_path)!r})\n" + textwrap.dedent(GUARD)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        f"cannot confirm which wasmtime is installed in {tmp_path}: found no wasmtime-*.dist-info",
        f"install it with `pip install --force-reinstall '{wasmtime_c.requirement()}'`",
    ]
