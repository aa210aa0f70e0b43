"""The compiled-component cache ($XDG_CACHE_HOME/cargo-task-wasm): serialized components
are native code that Wasmtime loads without checking, so a damaged or foreign entry must be
rebuilt, never loaded; and no task may ever write the cache.

Entries carry an HMAC-SHA256 under the cache's own key (`<cache>/key`); the helpers below
read that key to make entries that are well formed, as only the user could.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

import pytest

from .conftest import describe

MAGIC = b"cargo-task-wasm component v2\n"


def _component_of(arena, task: str):
    root = arena_cache(arena)
    records = list(root.glob(f"records/*/{task}.*.json"))
    matching = [r for r in records if str(arena.project) in _record_sources(r)]
    assert len(matching) == 1, records
    return root / "components" / f"{machine_code_key(_record(matching[0]), arena.env)}.cwasm"


def machine_code_key(record: dict, env) -> str:
    """The cache key of a record's machine code: its wasm's digest for the engine of the
    compiler the run used (the suite's is Winch, tests/conftest.py)."""
    from cargo_task import sandbox
    from cargo_task.cache import component_key

    return component_key(record["wasm"], sandbox.engine_id(env.get("CARGO_TASK_COMPILER") or "winch"))


def _record(path) -> dict:
    """A build record: its HMAC on the first line, then JSON."""
    return json.loads(path.read_bytes().partition(b"\n")[2])


def _record_sources(record) -> str:
    return " ".join(str(stamp[0]) for stamp in _record(record)["stamps"])


def arena_cache(arena):
    return Path(arena.env["XDG_CACHE_HOME"]) / "cargo-task-wasm"


def _mac(component: Path, payload: bytes) -> bytes:
    """The HMAC an entry needs: over its name and content, under the cache's key."""
    secret = (component.parent.parent / "key").read_bytes()
    return hmac.new(secret, b"component\0" + component.stem.encode() + b"\0" + payload, "sha256").digest()


def _verifies(component: Path, data: bytes) -> bool:
    header = len(MAGIC) + 32
    return data[: len(MAGIC)] == MAGIC and hmac.compare_digest(data[len(MAGIC) : header], _mac(component, data[header:]))


def _flip_a_byte(component: Path, data: bytes) -> bytes:
    middle = len(data) // 2
    return data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1 :]


def _rehashed_garbage(component: Path, data: bytes) -> bytes:
    """A well-formed entry (right magic, right HMAC) whose content is not a component that
    this Wasmtime made: what a cache written by a different version looks like."""
    payload = b"\x7fELF" + bytes(range(256)) * 64
    return MAGIC + _mac(component, payload) + payload


CORRUPTIONS = {
    "flipped-byte": _flip_a_byte,
    "truncated": lambda component, data: data[: len(data) // 3],
    "empty": lambda component, data: b"",
    "wrong-magic": lambda component, data: b"X" + data[1:],
    "checksum-of-other-content": lambda component, data: data[: len(MAGIC)] + hashlib.sha256(b"x").digest() + data[len(MAGIC) + 32 :],
    "foreign-but-well-formed": _rehashed_garbage,
}


@pytest.mark.parametrize("how", list(CORRUPTIONS))
def test_corrupted_cache_entry_is_rebuilt_not_loaded(arena, how):
    first = arena.run("cachevictim", "read:data/public.txt")
    assert first.returncode == 0, describe(first)
    component = _component_of(arena, "cachevictim")
    good = component.read_bytes()
    assert _verifies(component, good)
    corrupted = CORRUPTIONS[how](component, good)
    component.write_bytes(corrupted)

    result = arena.run("cachevictim", "read:data/public.txt")
    assert result.returncode == 0, describe(result)
    assert result.stdout.startswith("read:data/public.txt => OK"), describe(result)
    assert "Compiling `cachevictim` to native code with Wasmtime" in result.stderr, describe(result)
    assert "internal error" not in result.stderr
    replaced = component.read_bytes()
    assert replaced != corrupted, "the corrupted entry was left in place"
    assert _verifies(component, replaced)
    assert _component_of(arena, "cachevictim") == component


def test_cache_is_outside_the_project_and_every_grant(arena):
    result = arena.run("cachevictim", "readdir:/")
    assert result.returncode == 0, describe(result)
    cache = arena_cache(arena).resolve()
    assert not any(arena.project.rglob("*.cwasm")), "compiled components inside the project"
    assert arena.project.resolve() not in cache.parents
    for task in ("rw", "rw_src", "rw_tmp", "manifest_ok"):
        explained = arena.run("--explain", task)
        assert explained.returncode == 0, describe(explained)
        assert str(cache) not in explained.stdout
        assert "cargo-task-wasm" not in explained.stdout
