"""A task's settings + command-line overrides -> exactly what it may touch.

The only place that decides capabilities. Deny by default: the project read-only and the
arguments; everything else must be named in the task's table.
"""

from __future__ import annotations

import fnmatch
import os
from pathlib import Path
from typing import Callable, NamedTuple

from cargo_task.config import GrantPath, Overrides, TaskSettings
from cargo_task.discovery import Task
from cargo_task.errors import ConfigError

DEFAULT_MEMORY = 1 << 30  # 1 GiB: generous for a task, small enough to stop a runaway

# Writing these turns a task into more rights (a manifest grants, `.cargo/config.toml` runs
# host code on the next build, `tasks/` is other tasks' code): refused by default.
PROTECTED_NAMES = ("Cargo.toml", "Cargo.lock", ".cargo", ".git", "tasks", "build.rs",
                   "rust-toolchain", "rust-toolchain.toml")  # fmt: skip


class Mount(NamedTuple):
    host: Path
    guest: str
    writable: bool


class Grants(NamedTuple):
    argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    mounts: tuple[Mount, ...]
    tmp: bool
    network: bool
    stdin: bool
    timeout: float | None
    memory: int
    writes_protected: tuple[Path, ...]  # protected paths a write grant covers (allowed)


def _inside(path: Path, directory: Path) -> bool:
    return path == directory or directory in path.parents


def _mount(task: Task, key: str, grant: GrantPath, writable: bool) -> Mount:
    host = Path(os.path.normpath(grant.host))
    if not host.is_dir():
        problem = "does not exist" if not host.exists() else "is not a directory"
        raise ConfigError(
            f"task `{task.name}`: `{key}` path `{grant.written}` ({host}) {problem}",
            help=f"create it, or remove it from `{key}` in the task's table",
        )
    absolute = os.path.isabs(grant.written)
    real = Path(os.path.realpath(host))
    # A link on the way (even one a task planted earlier) would carry the grant elsewhere.
    base = "/" if absolute else os.path.realpath(grant.base)
    meant = Path(os.path.normpath(os.path.join(base, grant.written)))
    if real != meant:
        raise ConfigError(
            f"task `{task.name}`: `{key}` path `{grant.written}` goes through a symbolic link "
            f"and would grant `{real}`",
            help="grant the real directory by its own path, or remove the link",
        )
    guest = host.as_posix() if absolute else os.path.relpath(host, task.owner.root)
    return Mount(real, guest, writable)


def real_root(task: Task) -> Path:
    return Path(os.path.realpath(task.owner.root))


class Surroundings(NamedTuple):
    """What a task's build or other tasks' builds read, beyond the task's own directory."""

    package_roots: list[Path]  # every package of the project, workspace members included
    task_sources: list[Path]  # every task's main file, wherever `path` put it
    dependency_dirs: list[Path]  # path task-dependencies: their build scripts run on the host


def protected_paths(
    task: Task, around: Surroundings, target_dir: Path, environ: dict[str, str]
) -> list[Path]:
    """What a write grant must not cover: what cargo reads to build any task of the project
    (manifests, configuration, toolchain files, task sources, path dependencies), version
    control, and cargo's and rustup's homes."""
    roots = sorted({real_root(task), *(Path(os.path.realpath(r)) for r in around.package_roots)})
    paths = [root / name for root in roots for name in PROTECTED_NAMES]
    for ancestor in sorted({a for root in roots for a in root.parents}):
        paths += [ancestor / name for name in (".cargo", ".git", "rust-toolchain", "rust-toolchain.toml")]
    home = os.path.expanduser("~")
    paths.append(Path(environ.get("CARGO_HOME") or os.path.join(home, ".cargo")))
    paths.append(Path(environ.get("RUSTUP_HOME") or os.path.join(home, ".rustup")))
    sources = [_source_and_modules(s, roots) for s in around.task_sources]
    return paths + sources + around.dependency_dirs + _cargo_output(target_dir)


def _source_and_modules(source: Path, package_roots: list[Path]) -> Path:
    """The directory of a task's file, where its modules live (for one in `tasks/`, that is
    protected anyway); the file alone if a package lives in that directory."""
    directory = Path(os.path.realpath(source.parent))
    if any(directory == r or directory in r.parents for r in package_roots):
        return source
    return directory


def _cargo_output(target: Path) -> list[Path]:
    """What cargo runs or trusts in the target directory: its profile and target-triple
    directories (build scripts, binaries, fingerprints) and cargo-task's own. Other
    subdirectories (`target/dist`, `target/doc`) may be granted."""
    named = [target / n for n in ("cargo-task", "debug", "release", ".rustc_info.json")]
    try:
        entries = list(target.iterdir())
    except OSError:
        entries = []
    used = [e for e in entries if (e / ".fingerprint").exists() or (e / "debug").exists()
            or (e / "release").exists()]  # fmt: skip
    return named + used


def _overlap(a: Path, b: Path) -> bool:
    return _inside(a, b) or _inside(b, a)


def _check_writes(
    task: Task, mounts: list[Mount], protected: list[Path], cache_dir: Path
) -> tuple[Path, ...]:
    covered: list[Path] = []
    for mount in (m for m in mounts if m.writable):
        if _overlap(mount.host, cache_dir):
            raise ConfigError(
                f"task `{task.name}`: `write` path `{mount.guest}` overlaps cargo-task's "
                f"cache of compiled code ({cache_dir}), which is never writable",
                help="grant a narrower directory",
            )
        for path in (p for p in protected if _overlap(mount.host, p)):
            if not task.settings.allow_write_manifest:
                raise ConfigError(
                    f"task `{task.name}`: `write` path `{mount.guest}` would let the task "
                    f"change `{path}`, and through it its own permissions or build",
                    help="grant a narrower directory, or set `allow-write-manifest = true` "
                    "in the task's table if the task really must write it",
                )
            covered.append(path)
    return tuple(dict.fromkeys(covered))


def _env(settings: TaskSettings, environ: dict[str, str]) -> tuple[tuple[str, str], ...]:
    inherit = settings.inherit_env
    if inherit is True:
        chosen = dict(environ)
    elif inherit:
        chosen = {
            k: v for k, v in environ.items() if any(fnmatch.fnmatchcase(k, p) for p in inherit)
        }
    else:
        chosen = {}
    chosen.update(settings.env or ())
    return tuple(sorted(chosen.items()))


def _utf8(what: str, text: str) -> str:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ConfigError(
            f"{what} is not valid UTF-8: {text.encode('utf-8', 'surrogateescape')!r}",
            help="WASI passes arguments and environment variables as UTF-8 strings",
        ) from None
    return text


def grant(
    task: Task,
    args: list[str],
    environ: dict[str, str],
    overrides: Overrides,
    surroundings: Callable[[], Surroundings],
    target_dir: Path,
    cache_dir: Path,
) -> Grants:
    settings = task.settings
    mounts = [Mount(real_root(task), "/", writable=False)]
    mounts += [_mount(task, "read", g, False) for g in settings.read or ()]
    mounts += [_mount(task, "write", g, True) for g in settings.write or ()]
    covered: tuple[Path, ...] = ()
    if settings.write:
        protected = protected_paths(task, surroundings(), target_dir, environ)
        covered = _check_writes(task, mounts, [Path(os.path.realpath(p)) for p in protected],
                                Path(os.path.realpath(cache_dir)))  # fmt: skip
    return Grants(
        argv=(task.name, *(_utf8(f"argument {i}", a) for i, a in enumerate(args, 1))),
        env=tuple(
            (_utf8("an environment variable's name", k), _utf8(f"environment variable `{k}`", v))
            for k, v in _env(settings, environ)
        ),
        mounts=tuple(mounts),
        tmp=bool(settings.tmp),
        network=bool(settings.network),
        stdin=settings.stdin is not False,
        timeout=overrides.timeout if overrides.timeout is not None else settings.timeout,
        memory=overrides.memory or settings.memory or DEFAULT_MEMORY,
        writes_protected=covered,
    )
