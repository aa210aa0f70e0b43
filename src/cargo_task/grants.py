"""A task's settings + command-line overrides -> exactly what it may touch.

The only place that decides capabilities. Deny by default: the project read-only and the
arguments; everything else must be named in the task's table. Every task also gets
`CARGO_MANIFEST_DIR` (its owner's directory, as `env!` says at compile time), and sees each
directory it may use at that directory's host path too, so the xtask idiom
`Path::new(env!("CARGO_MANIFEST_DIR")).join(...)` reaches what the relative path would.
"""

from __future__ import annotations

import fnmatch
import os
from pathlib import Path
from typing import TYPE_CHECKING, Callable, NamedTuple

from cargo_task.config import GrantPath, Overrides
from cargo_task.discovery import Task
from cargo_task.errors import ConfigError

if TYPE_CHECKING:
    from cargo_task.buildview import Protected

DEFAULT_MEMORY = 1 << 30  # 1 GiB: generous for a task, small enough to stop a runaway

# The kernel's windows onto every process (the tool's own environment included) and onto
# devices: never granted, nor a grant that contains them.
NEVER_GRANTED = (Path("/proc"), Path("/sys"), Path("/dev"))
# Always in a task's environment, as argv[0] is always its name: the owner's directory.
MANIFEST_DIR = "CARGO_MANIFEST_DIR"


# Programs (with their leading words) that run other programs they are handed, and how
# many words after them still leave that program open (`rustup run stable` has not named
# one; `rustup run stable rustfmt` has): a grant that ends there grants every program.
_EVERY = 1 << 16  # a shell or an interpreter: whatever follows is a script
RUNS_ANYTHING: dict[tuple[str, ...], int] = {
    **{(shell,): _EVERY for shell in ("sh", "bash", "dash", "zsh", "fish", "python", "python3",
                                      "perl", "ruby", "node", "make", "just")},
    **{(wrapper,): 0 for wrapper in ("env", "xargs", "nohup", "nice", "time", "npx", "sudo", "doas")},
    ("timeout",): 1, ("rustup", "run"): 1, ("cargo", "run"): _EVERY, ("git", "-c"): _EVERY,
    # Alone, these reach the above: `git -c alias.x=!sh x`, `cargo run`, `rustup run`.
    ("git",): 0, ("cargo",): 0, ("rustup",): 0,
}  # fmt: skip


def runs_anything(words: tuple[str, ...] | list[str]) -> str | None:
    """The leading words of a grant that let it run any program, or None."""
    for length in range(1, len(words) + 1):
        open_words = RUNS_ANYTHING.get(tuple(words[:length]))
        if open_words is not None and len(words) <= length + open_words:
            return " ".join(words[:length])
    return None


class Mount(NamedTuple):
    host: Path
    guest: str
    writable: bool


class FileGrant(NamedTuple):
    """One file a task may read or write, without the rest of its directory. WASI preopens
    are directories, so the task sees, at the file's directory (`guests`: as written, and at
    its host path), a private staging directory (`staging.py`) that holds a copy of it."""

    host: Path  # the file, by its real path
    guests: tuple[str, ...]
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
    commands: tuple[tuple[str, ...], ...] = ()  # programs (with leading arguments) it may run
    allow_unconfined_commands: bool = False  # run them even where Landlock is missing
    files: tuple[FileGrant, ...] = ()  # single files, beyond what `mounts` already grant


def _inside(path: Path, directory: Path) -> bool:
    return path == directory or directory in path.parents


def _grant_path(task: Task, key: str, grant: GrantPath, writable: bool) -> Mount | FileGrant:
    """A checked `read`/`write` path: a directory to mount, or one file to stage."""
    host = Path(os.path.normpath(grant.host))
    # A file the task is to create: `write` names it, its directory exists.
    to_create = writable and not os.path.lexists(host) and host.parent.is_dir()
    if not host.is_dir() and not host.is_file() and not to_create:
        problem = "does not exist" if not os.path.lexists(host) else "is neither a directory nor a file"
        raise ConfigError(
            f"task `{task.name}`: `{key}` path `{grant.written}` ({host}) {problem}",
            help=f"create it (a directory, or a file for a one-file grant), or remove it from "
            f"`{key}` in the task's table",
        )
    absolute = os.path.isabs(grant.written)
    real = Path(os.path.realpath(host))
    if real == Path("/") or any(_inside(real, never) for never in NEVER_GRANTED):
        raise ConfigError(
            f"task `{task.name}`: `{key}` path `{grant.written}` is `{real}`, which is never "
            "granted: it would show the task other processes (the tool's own environment "
            "included), devices or the whole system",
            help=f"grant the directories or files the task needs, not `{real}`",
        )
    # A link on the way (even one a task planted earlier) would carry the grant elsewhere.
    base = "/" if absolute else os.path.realpath(grant.base)
    meant = Path(os.path.normpath(os.path.join(base, grant.written)))
    if real != meant:
        raise ConfigError(
            f"task `{task.name}`: `{key}` path `{grant.written}` goes through a symbolic link "
            f"and would grant `{real}`",
            help="grant the real path, or remove the link",
        )
    if real.parent == Path("/") and not real.is_dir():
        raise ConfigError(
            f"task `{task.name}`: `{key}` path `{grant.written}` is a file directly in `/`, "
            "which cannot be granted on its own (its directory is the whole system)",
            help="move the file into a directory of its own and grant it there",
        )
    if real.is_dir():
        guest = host.as_posix() if absolute else os.path.relpath(host, task.owner.root)
        return Mount(real, guest, writable)
    # A file: its directory is what WASI can preopen; `staging` shows the task a private
    # copy of it there (see FileGrant).
    directory = host.parent
    guest = directory.as_posix() if absolute else os.path.relpath(directory, task.owner.root)
    at_host_path = os.path.normpath(os.path.join(task.owner.root, guest))
    guests = (guest,) if guest in (at_host_path, "/") else (guest, at_host_path)
    return FileGrant(real, guests, writable)


def real_root(task: Task) -> Path:
    return Path(os.path.realpath(task.owner.root))


def _at_host_paths(task: Task, mounts: list[Mount]) -> list[Mount]:
    """The same directories with the same access again, each at its host path as the
    owner's directory (CARGO_MANIFEST_DIR) names it. wasi-libc resolves a path through the
    longest matching guest path, so a grant inside the read-only project keeps winning there
    too, and a host path outside every grant still resolves inside the project at `/`."""
    aliases = []
    for mount in mounts:
        guest = os.path.normpath(os.path.join(task.owner.root, "." if mount.guest == "/" else mount.guest))
        if guest not in (mount.guest, "/"):  # an absolute grant is there already
            aliases.append(Mount(mount.host, guest, mount.writable))
    return aliases


def _overlap(a: Path, b: Path) -> bool:
    return _inside(a, b) or _inside(b, a)


def shown_file(grant: FileGrant) -> str:
    """A file grant as the task names it: `CHANGELOG.md`, `docs/notes.md`."""
    return os.path.normpath(os.path.join(grant.guests[0], grant.host.name))


def _beyond_mounts(files: list[FileGrant], mounts: list[Mount]) -> list[FileGrant]:
    """The file grants a directory grant does not already give (a file in a writable
    directory, or a file to read in any granted directory, needs no staging); a file granted
    both ways is written."""
    chosen: dict[Path, FileGrant] = {}
    for grant in files:
        around = [m for m in mounts if _inside(grant.host, m.host)]
        innermost = max(around, key=lambda m: (len(m.host.parts), m.writable), default=None)  # it wins in the task
        if innermost is not None and (innermost.writable or not grant.writable):
            continue
        if grant.host not in chosen or grant.writable:
            chosen[grant.host] = grant
    return list(chosen.values())


def _check_writes(
    task: Task, mounts: list[Mount], files: list[FileGrant], protected: list[Protected], cache_dir: Path
) -> tuple[Path, ...]:
    covered: list[Path] = []
    writable = [(m.host, m.guest) for m in mounts if m.writable]
    writable += [(f.host, shown_file(f)) for f in files if f.writable]
    for host, guest in writable:
        if _overlap(host, cache_dir):
            raise ConfigError(
                f"task `{task.name}`: `write` path `{guest}` overlaps cargo-task's "
                f"cache of compiled code ({cache_dir}), which is never writable",
                help="grant a directory outside it",
            )
        for item in (p for p in protected if _overlap(host, p.path)):
            if not task.settings.allow_write_manifest:
                raise _refused(task, host, guest, item)
            covered.append(item.path)
    return tuple(dict.fromkeys(covered))


def _check_private_directories(task: Task, mounts: list[Mount]) -> None:
    """The run's private directories (its `/tmp`, its programs' HOME, one-file grants'
    staging) are made under TMPDIR and reached again by path: inside a `write` grant the
    task could swap one for a link, and what the tool or a program writes there next would
    land anywhere."""
    import tempfile

    temp = Path(os.path.realpath(tempfile.gettempdir()))
    for mount in (m for m in mounts if m.writable and _inside(temp, m.host)):
        raise ConfigError(
            f"task `{task.name}`: `write` path `{mount.guest}` contains the directory for "
            f"temporary files ({temp}), where cargo-task makes the run's private directories",
            help="set TMPDIR to a directory outside the task's `write` grants, or narrow the grant",
        )


def _refused(task: Task, host: Path, guest: str, item: Protected) -> ConfigError:
    if _inside(host, item.path):  # nothing narrower can help
        help = ("nothing inside it can be granted; write elsewhere, or set "
                "`allow-write-manifest = true` in the task's table if the task really must")  # fmt: skip
    else:
        help = (f"grant a directory that does not contain `{item.path}`, or set "
                "`allow-write-manifest = true` in the task's table if the task really must")  # fmt: skip
    return ConfigError(
        f"task `{task.name}`: `write` path `{guest}` would let the task change "
        f"`{item.path}` ({item.why})",
        help=help,
    )


def _env(task: Task, environ: dict[str, str]) -> tuple[tuple[str, str], ...]:
    settings = task.settings
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
    chosen[MANIFEST_DIR] = str(task.owner.root)  # whatever the host's says
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
    protected: Callable[[], list[Protected]],
    cache_dir: Path,
) -> Grants:
    settings = task.settings
    mounts: list[Mount] = [Mount(real_root(task), "/", writable=False)]
    files: list[FileGrant] = []
    for key, paths, writable in (("read", settings.read, False), ("write", settings.write, True)):
        for path in paths or ():
            granted = _grant_path(task, key, path, writable)
            (files if isinstance(granted, FileGrant) else mounts).append(granted)  # type: ignore[arg-type]
    files = _beyond_mounts(files, mounts)
    covered: tuple[Path, ...] = ()
    if settings.write:
        covered = _check_writes(task, mounts, files, protected(), Path(os.path.realpath(cache_dir)))
    if (settings.tmp or settings.commands or files) and any(m.writable for m in mounts):
        _check_private_directories(task, mounts)
    mounts += _at_host_paths(task, mounts)
    if settings.commands and not settings.allow_unconfined_commands:
        from cargo_task import confine

        if not confine.available():
            raise ConfigError(
                f"task `{task.name}` may run host programs (`commands`), but this system offers "
                "no Landlock to confine them",
                help="Landlock needs Linux 5.13+; to run them unconfined anyway, set "
                "`allow-unconfined-commands = true` in the task's table",
            )
    return Grants(
        argv=(task.name, *(_utf8(f"argument {i}", a) for i, a in enumerate(args, 1))),
        env=tuple(
            (_utf8("an environment variable's name", k), _utf8(f"environment variable `{k}`", v))
            for k, v in _env(task, environ)
        ),
        mounts=tuple(mounts),
        tmp=bool(settings.tmp),
        network=bool(settings.network),
        stdin=settings.stdin is not False,
        timeout=overrides.timeout if overrides.timeout is not None else settings.timeout,
        memory=overrides.memory or settings.memory or DEFAULT_MEMORY,
        writes_protected=covered,
        commands=settings.commands or (),
        allow_unconfined_commands=bool(settings.allow_unconfined_commands),
        files=tuple(files),
    )
