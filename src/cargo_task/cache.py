"""The tool's cache, outside every project: build records and compiled components.

A compiled component is machine code that Wasmtime loads without checking it, so entries
are written atomically and carry a SHA-256 of their content that is verified before use;
anything that fails the check is treated as absent and rebuilt, never trusted.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import NamedTuple

from cargo_task.files import write_atomic
from cargo_task.fingerprint import Stamp

_MAGIC = b"cargo-task-wasm component v1\n"
_RECORD_VERSION = 1
_KEY = re.compile(r"[0-9a-f]{64}")


class Record(NamedTuple):
    """What a successful build left behind for a task."""

    fingerprint: str
    stamps: list[Stamp]
    component: str  # key of the compiled component


class Cache:
    def __init__(self, root: Path):
        self.root = root

    def _record_path(self, package_dir: Path, task: str) -> Path:
        project = hashlib.sha256(str(package_dir).encode()).hexdigest()[:16]
        return self.root / "records" / project / f"{task}.json"

    def _component_path(self, key: str) -> Path:
        return self.root / "components" / f"{key}.cwasm"

    def load_record(self, package_dir: Path, task: str) -> Record | None:
        try:
            data = json.loads(self._record_path(package_dir, task).read_bytes())
            if not isinstance(data, dict) or data.get("version") != _RECORD_VERSION:
                return None
            stamps = [(str(p), int(m), int(s)) for p, m, s in data["stamps"]]
            if not _KEY.fullmatch(str(data["component"])):
                return None
            return Record(str(data["fingerprint"]), stamps, str(data["component"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def save_record(self, package_dir: Path, task: str, record: Record) -> None:
        data = {"version": _RECORD_VERSION, "fingerprint": record.fingerprint,
                "stamps": record.stamps, "component": record.component}  # fmt: skip
        write_atomic(self._record_path(package_dir, task), json.dumps(data).encode())

    def load_component(self, key: str) -> bytes | None:
        try:
            data = self._component_path(key).read_bytes()
        except OSError:
            return None
        header = len(_MAGIC) + 32
        if data[: len(_MAGIC)] != _MAGIC or hashlib.sha256(data[header:]).digest() != data[len(_MAGIC) : header]:
            return None
        return data[header:]

    def save_component(self, key: str, payload: bytes) -> None:
        write_atomic(self._component_path(key), _MAGIC + hashlib.sha256(payload).digest() + payload)


def component_key(wasm: bytes, engine_id: str) -> str:
    return hashlib.sha256(engine_id.encode() + b"\0" + wasm).hexdigest()
