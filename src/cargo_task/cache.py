"""The tool's cache, outside every project: build records and compiled components.

A compiled component is machine code that Wasmtime loads without checking it. So the cache
must be the user's alone (`files.PrivateTree` refuses it otherwise), entries are written
atomically, and every entry carries an HMAC-SHA256 under a random key kept in the cache
root (0600, made once): anything that fails the check is treated as absent and rebuilt,
never trusted. A plain checksum would not do: whoever can write an entry can recompute it,
but cannot compute the HMAC without reading the key. The HMAC covers the entry's name too,
so a valid entry copied over another (another task's code, another project's record) fails.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import NamedTuple

from cargo_task.files import PrivateTree, make_private_dirs
from cargo_task.fingerprint import Stamp

_MAGIC = b"cargo-task-wasm component v2\n"  # v1 carried a plain SHA-256: never trusted now
_RECORD_VERSION = 3  # v2 named one compiled component; v3 names the wasm, whose code each strategy keys
_KEY = re.compile(r"[0-9a-f]{64}")
_MAC_SIZE = 32
KEY_FILE = "key"
_KEY_SIZE = 32


class Record(NamedTuple):
    """What a successful build left behind for a task."""

    fingerprint: str
    stamps: list[Stamp]
    wasm: str  # SHA-256 of the built wasm: with an engine id, the key of its machine code


class Cache:
    def __init__(self, root: Path):
        self.root = root
        self.tree = PrivateTree(root)
        self._secret: bytes | None = None

    def _record_path(self, package_dir: Path, task: str) -> Path:
        project = hashlib.sha256(str(package_dir).encode()).hexdigest()[:16]
        return self.root / "records" / project / f"{task}.json"

    def _component_path(self, key: str) -> Path:
        return self.root / "components" / f"{key}.cwasm"

    def load_record(self, package_dir: Path, task: str) -> Record | None:
        path = self._record_path(package_dir, task)
        raw = self.tree.read(path)
        secret = self._key(create=False) if raw is not None else None
        if raw is None or secret is None:
            return None
        mac, _, body = raw.partition(b"\n")
        if not _same(mac, _mac(secret, b"record", self._name(path), body).hex().encode()):
            return None
        try:
            data = json.loads(body)
            if not isinstance(data, dict) or data.get("version") != _RECORD_VERSION:
                return None
            stamps = [(str(p), int(m), int(s)) for p, m, s in data["stamps"]]
            if not _KEY.fullmatch(str(data["wasm"])):
                return None
            return Record(str(data["fingerprint"]), stamps, str(data["wasm"]))
        except (ValueError, KeyError, TypeError):
            return None

    def records_of(self, package_dir: Path) -> list[tuple[str, Record]]:
        """(record name, record) of every build of one generated package's tasks; names are
        `TASK.VARIANT` (one per toolchain selection)."""
        directory = self._record_path(package_dir, "-").parent
        try:
            names = sorted(entry.name[: -len(".json")] for entry in directory.iterdir() if entry.name.endswith(".json"))
        except OSError:
            return []
        found = [(name, self.load_record(package_dir, name)) for name in names]
        return [(name, record) for name, record in found if record is not None]

    def save_record(self, package_dir: Path, task: str, record: Record) -> None:
        path = self._record_path(package_dir, task)
        data = {"version": _RECORD_VERSION, "fingerprint": record.fingerprint,
                "stamps": record.stamps, "wasm": record.wasm}  # fmt: skip
        body = json.dumps(data).encode()
        mac = _mac(self._key(create=True), b"record", self._name(path), body)
        self.tree.write(path, mac.hex().encode() + b"\n" + body)

    def load_component(self, key: str) -> bytes | None:
        path = self._component_path(key)
        data = self.tree.read(path)
        secret = self._key(create=False) if data is not None else None
        if data is None or secret is None:
            return None
        header = len(_MAGIC) + _MAC_SIZE
        if data[: len(_MAGIC)] != _MAGIC:
            return None
        payload = memoryview(data)[header:]
        if not _same(data[len(_MAGIC) : header], _mac(secret, b"component", key.encode(), payload)):
            return None
        return data[header:]

    def save_component(self, key: str, payload: bytes) -> None:
        mac = _mac(self._key(create=True), b"component", key.encode(), payload)
        self.tree.write(self._component_path(key), _MAGIC + mac + payload)

    def _name(self, path: Path) -> bytes:
        return os.fsencode(path.relative_to(self.root))

    def _key(self, create: bool) -> bytes | None:
        """The cache's own secret key; None if it has none yet and `create` is false."""
        if self._secret is None:
            path = self.root / KEY_FILE
            secret = self.tree.read(path, secret=True)
            if secret is None or len(secret) != _KEY_SIZE:
                if not create:
                    return None
                secret = _new_key(path)
            self._secret = secret
        return self._secret


def _new_key(path: Path) -> bytes:
    """Make the key file, atomically: written whole under a private name (mkstemp: O_EXCL,
    0600), then linked into place, which fails if another run made one first (use theirs)."""
    import tempfile

    make_private_dirs(path.parent)
    secret = os.urandom(_KEY_SIZE)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as file:
            os.fchmod(file.fileno(), 0o600)
            file.write(secret)
        try:
            os.link(temporary, path)
        except FileExistsError:
            existing = PrivateTree(path.parent).read(path, secret=True)
            if existing is not None and len(existing) == _KEY_SIZE:
                return existing
            os.replace(temporary, path)  # a damaged key (a crash while it was written)
    finally:
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass
    return secret


def _mac(secret: bytes, kind: bytes, name: bytes, content) -> bytes:
    import hmac  # a fraction of a millisecond: hashlib and _operator are loaded already

    mac = hmac.new(secret, kind + b"\0" + name + b"\0", "sha256")
    mac.update(content)
    return mac.digest()


def _same(a: bytes, b: bytes) -> bool:
    import hmac

    return hmac.compare_digest(a, b)


def wasm_digest(wasm: bytes) -> str:
    return hashlib.sha256(wasm).hexdigest()


def component_key(wasm_digest: str, engine_id: str) -> str:
    """The machine code of one wasm for one engine (a Wasmtime, its settings, a compiler)."""
    return hashlib.sha256(engine_id.encode() + b"\0" + wasm_digest.encode()).hexdigest()
