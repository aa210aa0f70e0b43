"""`[*.metadata.tasks]` and `[*.metadata.task-dependencies]` -> validated, frozen settings.

Pure: reads dictionaries that `workspace` loaded and makes paths absolute; touches no file. Every message names the
manifest, the key and what was expected; an unknown key suggests the near miss.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Callable, NamedTuple

from cargo_task.errors import ConfigError
from cargo_task.workspace import Manifest

TASK_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
# Directory names in cargo's target directory: cargo refuses them as binary names.
RESERVED_TASK_NAMES = frozenset({"build", "deps", "examples", "incremental"})


def task_name_problem(name: str) -> str | None:
    if not TASK_NAME.fullmatch(name):
        return "task names start with a letter or `_` and use letters, digits, `-` and `_`"
    if name in RESERVED_TASK_NAMES:
        return f"`{name}` is reserved: cargo names a directory of its build output so"
    return None

CRATE_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
MAX_MEMORY = 1 << 40

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_SIZE = re.compile(r"^\s*(\d+)\s*(B|KB|KiB|MB|MiB|GB|GiB)?\s*$")
_SIZE_UNITS = {
    None: 1, "B": 1, "KB": 10**3, "KiB": 2**10, "MB": 10**6, "MiB": 2**20,
    "GB": 10**9, "GiB": 2**30,
}  # fmt: skip
_SECONDS = {None: 1.0, "ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


class GrantPath(NamedTuple):
    """A path as written in a `read`/`write` grant, the directory of the manifest that wrote
    it, and where it points on the host."""

    written: str
    base: Path
    host: Path


class TaskSettings(NamedTuple):
    """One task's table; None means "not said here" so that tables can be layered."""

    path: Path | None = None
    description: str | None = None
    inherit_env: bool | tuple[str, ...] | None = None
    env: tuple[tuple[str, str], ...] | None = None
    read: tuple[GrantPath, ...] | None = None
    write: tuple[GrantPath, ...] | None = None
    allow_write_manifest: bool | None = None
    network: bool | None = None
    stdin: bool | None = None
    tmp: bool | None = None
    timeout: float | None = None
    memory: int | None = None
    commands: tuple[tuple[str, ...], ...] | None = None
    allow_unconfined_commands: bool | None = None
    published: Published | None = None  # `from = {...}`: a package's binary, not a file

    def over(self, base: TaskSettings) -> TaskSettings:
        """These settings layered over `base`: what is said here wins."""
        return base._replace(**{k: v for k, v in self._asdict().items() if v is not None})


class Published(NamedTuple):
    """A task's `from` table: the package (crates.io, git or path) whose binary is the task."""

    kind: str  # registry | git | path
    written: tuple[tuple[str, Any], ...]  # the table as written, sorted, lists as tuples (the lock compares it)
    manifest: Path  # the Cargo.toml that says it: the lock file is written beside it
    table: str  # `package.metadata.tasks.NAME`: its key in the lock file
    path: Path | None = None  # a path source's directory, absolute

    def get(self, key: str, default: Any = None) -> Any:
        return dict(self.written).get(key, default)

    @property
    def crate(self) -> str | None:
        return self.get("crate")

    @property
    def bin(self) -> str | None:
        return self.get("bin")


class Overrides(NamedTuple):
    """Per-run limits from the command line; None keeps the task's own."""

    timeout: float | None = None
    memory: int | None = None


class OwnerConfig(NamedTuple):
    """What one manifest says about tasks."""

    manifest: Path
    tasks: dict[str, TaskSettings]
    dependencies: dict[str, dict[str, Any]]


def parse_duration(value: object) -> float:
    """`"30s"`, `"500ms"`, `"5m"`, `"1h"` or a number of seconds -> seconds."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return float(value)
    match = _DURATION.match(value) if isinstance(value, str) else None
    if match is None or float(match.group(1)) <= 0:
        raise ValueError('a positive duration such as "30s", "500ms", "5m" or "1h"')
    return float(match.group(1)) * _SECONDS[match.group(2)]


def parse_size(value: object) -> int:
    """`"512MiB"`, `"2GB"` or a number of bytes -> bytes."""
    if isinstance(value, int) and not isinstance(value, bool):
        size = value
    else:
        match = _SIZE.match(value) if isinstance(value, str) else None
        size = int(match.group(1)) * _SIZE_UNITS[match.group(2)] if match else 0
    if not 0 < size <= MAX_MEMORY:
        raise ValueError('a positive size up to 1TiB such as "512MiB", "2GiB" or "100MB"')
    return size


def human_size(size: int) -> str:
    """The inverse of parse_size, for messages: 536870912 -> "512 MiB"."""
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= scale and size % scale == 0:
            return f"{size // scale} {unit}"
    return f"{size} bytes"


def human_duration(seconds: float) -> str:
    """For messages: 0.5 -> "500ms", 30 -> "30s", 90 -> "90s"."""
    return f"{seconds * 1000:g}ms" if seconds < 1 else f"{seconds:g}s"


def _boolean(value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError("true or false")
    return value


def _string(value: object) -> str:
    if not isinstance(value, str) or "\0" in value:
        raise ValueError("a string")
    return value


def _strings(value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and "\0" not in v for v in value):
        raise ValueError("a list of strings")
    return tuple(value)


def _no_controls(text: str) -> bool:
    return not any(ord(c) < 0x20 or ord(c) == 0x7F for c in text)


class ControlCharacters(ValueError):
    """A path that would print as more than one line (it could forge the tool's messages)."""


def _path(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError('a path, such as "tools/report.rs"')
    if not _no_controls(value):
        raise ControlCharacters("a path without control characters")
    return value


def _paths(value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError('a list of paths, such as ["src/generated", "CHANGELOG.md"]')
    if not all(_no_controls(v) for v in value):
        raise ControlCharacters("a list of paths without control characters")
    return tuple(value)


def _absolute(base: Path, written: str) -> Path:
    """`written` against the manifest's directory, `..` folded, links left alone."""
    return Path(os.path.normpath(os.path.join(base, written)))


def _inherit_env(value: object) -> bool | tuple[str, ...]:
    if isinstance(value, bool):
        return value
    try:
        return _strings(value)
    except ValueError:
        raise ValueError('true, false or a list of names and patterns such as ["CARGO_*"]')


def _env(value: object) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, dict) or not all(
        isinstance(v, str) and "\0" not in v and k and "=" not in k and "\0" not in k
        for k, v in value.items()
    ):
        raise ValueError('a table of names (no `=`) and string values, such as { MODE = "ci" }')
    return tuple(sorted(value.items()))


def _commands(value: object) -> tuple[tuple[str, ...], ...]:
    """`["rustfmt", "git rev-parse"]` -> (("rustfmt",), ("git", "rev-parse"))."""
    entries = _strings(value)
    if not all(_no_controls(entry.replace("\t", " ")) for entry in entries):
        raise ControlCharacters("a list of program names and words without control characters")
    parsed = tuple(tuple(entry.split()) for entry in entries)
    for words in parsed:
        if not words or "/" in words[0] or words[0].startswith("-"):
            raise ValueError('a list of program names, each followed by the leading arguments '
                             'it must be run with, such as ["rustfmt", "git rev-parse"]')
    return parsed


_KEYS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "path": ("path", _path),
    "description": ("description", _string),
    "inherit-env": ("inherit_env", _inherit_env),
    "env": ("env", _env),
    "read": ("read", _paths),
    "write": ("write", _paths),
    "allow-write-manifest": ("allow_write_manifest", _boolean),
    "network": ("network", _boolean),
    "stdin": ("stdin", _boolean),
    "tmp": ("tmp", _boolean),
    "timeout": ("timeout", parse_duration),
    "memory": ("memory", parse_size),
    "commands": ("commands", _commands),
    "allow-unconfined-commands": ("allow_unconfined_commands", _boolean),
    "from": ("published", lambda value: value),  # checked by `parse_from`, which knows the manifest
}


def well_formed(key: str, value: object) -> bool:
    """Whether `value` is what a task table's `key` accepts (for grants a package asks for)."""
    try:
        _KEYS[key][1](value)
    except (KeyError, ValueError):
        return False
    return True


def _shown(value: object) -> str:
    """A value as TOML would write it, near enough for a message."""
    import json

    return json.dumps(value, default=str, ensure_ascii=False).replace('": ', '" = ')


def _unknown_key(where: str, key: str, known: set[str]) -> ConfigError:
    import difflib  # only on the error path

    if key in ("tcp", "udp", "sockets"):
        return ConfigError(
            f"`{key}` in {where}: TCP and UDP sockets cannot be granted, because Wasmtime's "
            "C API offers no way to enable them for a guest",
            help="`network = true` grants outbound HTTP and HTTPS (wasi:http) and DNS lookups",
        )

    near = difflib.get_close_matches(key, sorted(known), n=1)
    hint = f"did you mean `{near[0]}`?" if near else "known keys: " + ", ".join(sorted(known))
    return ConfigError(f"unknown key `{key}` in {where}", help=hint)


def parse_task(manifest: Path, section: str, name: str, table: object) -> TaskSettings:
    where = f"`{section}.{name}` of `{manifest}`"
    problem = task_name_problem(name)
    if problem:
        raise ConfigError(f"invalid task name `{name}` in `{section}` of `{manifest}`", help=problem)
    if not isinstance(table, dict):
        raise ConfigError(f"{where} must be a table, such as {{ description = \"...\" }}")
    values: dict[str, Any] = {}
    for key, value in table.items():
        if key not in _KEYS:
            raise _unknown_key(where, key, set(_KEYS))
        field, parse = _KEYS[key]
        try:
            values[field] = parse(value)
        except ValueError as e:
            raise ConfigError(
                f"`{key}` in {where} must be {e}, not `{_shown(value)}`",
                help="rename the file or directory without newlines or other control characters"
                if isinstance(e, ControlCharacters) else None,
            ) from None
    base = manifest.parent
    if "published" in values:
        values["published"] = parse_from(manifest, where, values["published"], f"{section}.{name}")
        if "path" in values:
            raise ConfigError(f"{where} has both `path` and `from`",
                              help="a task is either a file (`path`) or a package's binary (`from`)")  # fmt: skip
    if "path" in values:
        values["path"] = _absolute(base, values["path"])
    for field in ("read", "write"):
        if field in values:
            values[field] = tuple(GrantPath(p, base, _absolute(base, p)) for p in values[field])
    return TaskSettings(**values)


_DEPENDENCY_KEYS: dict[str, Callable[[Any], Any]] = {
    "version": _string, "path": _string, "git": _string, "branch": _string, "tag": _string,
    "rev": _string, "package": _string, "registry": _string, "features": _strings,
    "default-features": _boolean,
}  # fmt: skip


def parse_dependency(manifest: Path, section: str, name: str, spec: object) -> dict[str, Any]:
    where = f"`{section}.{name}` of `{manifest}`"
    if not CRATE_NAME.fullmatch(name):
        raise ConfigError(f"invalid crate name `{name}` in `{section}` of `{manifest}`")
    if isinstance(spec, str):
        spec = {"version": spec}
    if not isinstance(spec, dict):
        raise ConfigError(
            f"{where} must be a version string or a table like cargo's [dependencies]",
            help=f'for example `{name} = "1"` or `{name} = {{ version = "1", features = [...] }}`',
        )
    if "workspace" in spec:
        raise ConfigError(
            f"`workspace` in {where}: task-dependencies are built outside the workspace",
            help="give the dependency in full, for example `version = \"1\"`",
        )
    checked: dict[str, Any] = {}
    for key, value in spec.items():
        if key not in _DEPENDENCY_KEYS:
            raise _unknown_key(where, key, set(_DEPENDENCY_KEYS))
        try:
            checked[key] = _DEPENDENCY_KEYS[key](value)
        except ValueError as e:
            raise ConfigError(f"`{key}` in {where} must be {e}, not `{_shown(value)}`") from None
        if key == "features":
            checked[key] = list(value)
    if "path" in checked:
        checked["path"] = str(_absolute(manifest.parent, checked["path"]))
    return checked


# `from` takes cargo's dependency keys, `crate` for the package's name (cargo's `package`)
# and `bin` to pick one of its binaries.
_FROM_KEYS: dict[str, Callable[[Any], Any]] = {
    **{k: v for k, v in _DEPENDENCY_KEYS.items() if k != "package"}, "crate": _string, "bin": _string,
}
_GIT_ONLY = ("branch", "tag", "rev")


def parse_from(manifest: Path, where: str, table: object, table_key: str) -> Published:
    """`from = { crate = "x", version = "0.2" }` / `{ git = URL, tag = ..., crate = "x" }` /
    `{ path = "../x" }` -> Published."""
    example = 'for example `from = { crate = "task-sort-deps", version = "0.2" }`'
    if not isinstance(table, dict):
        raise ConfigError(f"`from` in {where} must be a table", help=example)
    where = f"`from` in {where}"
    written: dict[str, Any] = {}
    for key, value in table.items():
        if key not in _FROM_KEYS:
            if key == "package":
                raise ConfigError(f"unknown key `package` in {where}", help="name the package with `crate`")
            raise _unknown_key(where, key, set(_FROM_KEYS))
        try:
            written[key] = _FROM_KEYS[key](value)
        except ValueError as e:
            raise ConfigError(f"`{key}` in {where} must be {e}, not `{_shown(value)}`") from None
    sources = [k for k in ("git", "path", "registry") if k in written]
    if len(sources) > 1:
        raise ConfigError(f"{where} names two sources (`{sources[0]}` and `{sources[1]}`)",
                          help="give one of `git`, `path` or `registry` (crates.io is the default)")  # fmt: skip
    kind = "git" if "git" in written else "path" if "path" in written else "registry"
    stray = [k for k in _GIT_ONLY if k in written]
    if stray and kind != "git":
        raise ConfigError(f"`{stray[0]}` in {where} applies to `git` sources only", help=example)
    if len(stray) > 1:
        raise ConfigError(f"{where} gives both `{stray[0]}` and `{stray[1]}`", help="pin a git source with one of them")
    if kind != "path" and "crate" not in written:
        raise ConfigError(f"{where} does not name the package",
                          help=f'add `crate = "NAME"`; {example}')  # fmt: skip
    if "crate" in written and not CRATE_NAME.fullmatch(written["crate"]):
        raise ConfigError(f"invalid crate name `{written['crate']}` in {where}")
    path = _absolute(manifest.parent, written["path"]) if kind == "path" else None
    frozen = tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in written.items()))
    return Published(kind, frozen, manifest, table_key, path)


def _metadata(manifest: Manifest, section: str) -> tuple[str, dict[str, Any]]:
    owner = manifest.data.get(section, {})
    metadata = owner.get("metadata", {}) if isinstance(owner, dict) else {}
    if not isinstance(metadata, dict):
        raise ConfigError(f"`{section}.metadata` in `{manifest.path}` must be a table")
    for key in metadata:  # other tools own the rest of [*.metadata]: only near misses are ours
        if key not in _TABLES and key[:1].lower() == "t":
            import difflib

            near = difflib.get_close_matches(key.lower().replace("_", "-"), _TABLES, n=1, cutoff=0.8)
            if not near:
                continue
            raise ConfigError(
                f"unknown table `{section}.metadata.{key}` in `{manifest.path}`",
                help=f"did you mean `{section}.metadata.{near[0]}`?",
            )
    return f"{section}.metadata", metadata


_TABLES = ("tasks", "task-dependencies")


def _table(manifest: Manifest, prefix: str, metadata: dict[str, Any], key: str) -> dict:
    table = metadata.get(key, {})
    if not isinstance(table, dict):
        raise ConfigError(f"`{prefix}.{key}` in `{manifest.path}` must be a table")
    return table


def owner_config(manifest: Manifest, section: str) -> OwnerConfig:
    """Read `[<section>.metadata.tasks]` and `.task-dependencies`; section is package|workspace."""
    prefix, metadata = _metadata(manifest, section)
    tasks_table = _table(manifest, prefix, metadata, "tasks")
    deps_table = _table(manifest, prefix, metadata, "task-dependencies")
    tasks = {
        name: parse_task(manifest.path, f"{prefix}.tasks", name, table)
        for name, table in tasks_table.items()
    }
    dependencies = {
        name: parse_dependency(manifest.path, f"{prefix}.task-dependencies", name, spec)
        for name, spec in deps_table.items()
    }
    return OwnerConfig(manifest.path, tasks, dependencies)
