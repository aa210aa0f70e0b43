"""The compiled-component cache ($XDG_CACHE_HOME/cargo-task-wasm): serialized components
are native code that Wasmtime loads without checking, so a damaged or foreign entry must be
rebuilt, never loaded; and no task may ever write the cache.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from .conftest import describe

MAGIC = b"cargo-task-wasm component v1\n"


def _component_of(arena, task: str):
    root = arena_cache(arena)
    records = list(root.glob(f"records/*/{task}.*.json"))
    matching = [r for r in records if str(arena.project) in _record_sources(r)]
    assert len(matching) == 1, records
    key = json.loads(matching[0].read_text())["component"]
    return root / "components" / f"{key}.cwasm"


def _record_sources(record) -> str:
    return " ".join(str(stamp[0]) for stamp in json.loads(record.read_text())["stamps"])


def arena_cache(arena):
    return Path(arena.env["XDG_CACHE_HOME"]) / "cargo-task-wasm"


def _verifies(data: bytes) -> bool:
    header = len(MAGIC) + 32
    return data[: len(MAGIC)] == MAGIC and hashlib.sha256(data[header:]).digest() == data[len(MAGIC) : header]


def _flip_a_byte(data: bytes) -> bytes:
    middle = len(data) // 2
    return data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1 :]


def _rehashed_garbage(data: bytes) -> bytes:
    """A well-formed entry (right magic, right checksum) whose content is not a component
    that this Wasmtime made: what a cache written by a different version looks like."""
    payload = b"\x7fELF" + bytes(range(256)) * 64
    return MAGIC + hashlib.sha256(payload).digest() + payload


CORRUPTIONS = {
    "flipped-byte": _flip_a_byte,
    "truncated": lambda data: data[: len(data) // 3],
    "empty": lambda data: b"",
    "wrong-magic": lambda data: b"X" + data[1:],
    "checksum-of-other-content": lambda data: data[: len(MAGIC)] + hashlib.sha256(b"x").digest() + data[len(MAGIC) + 32 :],
    "foreign-but-well-formed": _rehashed_garbage,
}


@pytest.mark.parametrize("how", list(CORRUPTIONS))
def test_corrupted_cache_entry_is_rebuilt_not_loaded(arena, how):
    first = arena.run("cachevictim", "read:data/public.txt")
    assert first.returncode == 0, describe(first)
    component = _component_of(arena, "cachevictim")
    good = component.read_bytes()
    assert _verifies(good)
    corrupted = CORRUPTIONS[how](good)
    component.write_bytes(corrupted)

    result = arena.run("cachevictim", "read:data/public.txt")
    assert result.returncode == 0, describe(result)
    assert result.stdout.startswith("read:data/public.txt => OK"), describe(result)
    assert "Compiling `cachevictim` to native code with Wasmtime" in result.stderr, describe(result)
    assert "internal error" not in result.stderr
    replaced = component.read_bytes()
    assert replaced != corrupted, "the corrupted entry was left in place"
    assert _verifies(replaced)
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
