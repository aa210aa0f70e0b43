"""One-file grants: at the file's directory, the task sees a private staging directory.

WASI 0.2 preopens are directories, so a task granted `write = ["CHANGELOG.md"]` is shown,
at the file's directory, a private directory holding a copy of the file; where the task
may read the real directory anyway (the project), it also holds read-only copies of the
other files there, and each subdirectory is preopened read-only as it is. wasi-libc
resolves a path through the longest matching preopen, so everything outside that one
directory is what the other grants show.

When the task has run to its end, what it wrote to a granted file replaces the host's file
atomically (a new file renamed over it). A task that did not finish, or a file that changed
on the host meanwhile, leaves the host's file as it is; nothing else written in a staging
directory reaches the host. Before a granted host program starts, the task's changes are
written the same way (the program sees the host's files), and what the program changed is
copied back into the staging directory afterwards.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from pathlib import Path
from typing import NamedTuple

from cargo_task.errors import SandboxError
from cargo_task.files import open_directory_without_links
from cargo_task.grants import FileGrant, Grants, Mount, shown_file

# The other files of a granted file's directory are copied; a directory with more than this
# in files is better granted whole (or the file moved).
MAX_COPIED_BYTES = 64 << 20
_CHUNK = 1 << 20
# O_NONBLOCK: a file swapped for a FIFO after it was looked at must not hang the tool.
_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC

Identity = tuple  # (inode, size, mtime_ns, ctime_ns) of a file, or () when there is none


def _identity(path: str | Path, dir_fd: int | None = None) -> Identity:
    try:
        st = os.lstat(path, dir_fd=dir_fd)
    except FileNotFoundError:
        return ()
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns, stat.S_IFMT(st.st_mode))


def wasi_prefix(guest: str) -> str:
    """A preopen's name as wasi-libc compares it: without leading `/` and `./`."""
    while True:
        if guest.startswith("/"):
            guest = guest[1:]
        elif guest.startswith("./"):
            guest = guest[2:]
        elif guest == ".":
            guest = ""
        else:
            return guest.rstrip("/")


class _Staged:
    """A granted file and what is known of it: the host's file when it was last copied or
    written, and the staged copy as the tool left it."""

    def __init__(self, grant: FileGrant, copy: Path):
        self.grant, self.copy = grant, copy
        self.host: Identity = ()  # the host's file at the last copy or write
        self.staged: Identity = ()  # the staged copy as the tool wrote it
        self.digest = b""  # its content then
        self.mode = 0o644

    @property
    def name(self) -> str:
        return self.grant.host.name


class _Directory(NamedTuple):
    host: Path  # the real directory of the granted files
    guests: tuple[str, ...]
    staging: Path
    files: dict[str, _Staged]
    others: dict[str, Identity]  # what else the staging directory held at the start
    siblings: tuple[Mount, ...]  # its subdirectories, read-only


class Outcome(NamedTuple):
    written: list[str]  # granted files the task changed, now on the host
    not_written: list[str]  # granted files it changed that could not be written, with why
    discarded: list[str]  # other files it changed in a staging directory


class Staging:
    """The staging directories of one run, under `root` (private, removed by the caller)."""

    def __init__(self, grants: Grants, root: Path):
        self.directories: list[_Directory] = []
        # grants.grant refused a TMPDIR inside a `write` grant: a task could swap a staging
        # directory for a link, and the tool reaches them by path.
        readable = [m.host for m in grants.mounts]
        by_directory: dict[Path, list[FileGrant]] = {}
        for grant in grants.files:
            by_directory.setdefault(grant.host.parent, []).append(grant)
        for index, (host, granted) in enumerate(by_directory.items()):
            staging = root / str(index)
            os.mkdir(staging, 0o700)
            guests = tuple(dict.fromkeys(g for f in granted for g in f.guests))
            sees_all = any(host == r or r in host.parents for r in readable)
            self.directories.append(
                _stage_directory(host, guests, staging, granted, sees_all, bool(grants.commands))
            )

    def preopens(self, mounts: tuple[Mount, ...]) -> tuple[Mount, ...]:
        """The directories to preopen: each staging directory in place of any mount at the
        same guest path, and the real subdirectories beside it."""
        staged: list[Mount] = []
        for directory in self.directories:
            writable = any(f.grant.writable for f in directory.files.values())
            staged += [Mount(directory.staging, guest, writable) for guest in directory.guests]
        names = {wasi_prefix(m.guest) for m in staged}
        kept = [m for m in mounts if wasi_prefix(m.guest) not in names]
        names |= {wasi_prefix(m.guest) for m in kept}
        siblings = [s for d in self.directories for s in d.siblings if wasi_prefix(s.guest) not in names]
        return (*kept, *staged, *siblings)

    def host_directories(self) -> list[Mount]:
        """Where a granted program's working directory is, for a staged guest path: the real
        directory (read access to it is decided by the grants, not by this)."""
        return [Mount(d.host, guest, False) for d in self.directories for guest in d.guests]

    def changed(self) -> list[str]:
        """Granted files the task changed since the tool last copied or wrote them."""
        return [
            shown_file(f.grant) for d in self.directories for f in d.files.values()
            if f.grant.writable and _changed(f)
        ]  # fmt: skip

    def write_back(self) -> Outcome:
        """Write every changed granted file to the host, atomically; report the rest."""
        outcome = Outcome([], [], [])
        for directory in self.directories:
            _write_directory(directory, outcome)
            outcome.discarded.extend(_discarded(directory))
        return outcome

    def refresh(self) -> None:
        """After a host program: copy back what it changed in granted files."""
        for directory in self.directories:
            try:
                fd = open_directory_without_links(str(directory.host))
            except OSError:
                continue
            try:
                for staged in directory.files.values():
                    # A change of the task's that could not be written (the host's file
                    # changed too) is kept: the final write-back refuses it and says so.
                    if _identity(staged.name, fd) != staged.host and not _changed(staged):
                        try:
                            _copy_in(fd, staged, in_place=True)
                        except OSError:
                            pass  # not a file any more: the write back will refuse it
            finally:
                os.close(fd)


def _stage_directory(host: Path, guests: tuple[str, ...], staging: Path, granted: list[FileGrant],
                     sees_all: bool, programs: bool) -> _Directory:  # fmt: skip
    try:
        fd = open_directory_without_links(str(host))
    except OSError as e:
        raise SandboxError(
            f"`{host}` changed since its grant was checked: {e.strerror}",
            help="a symbolic link or a missing directory on the way is refused",
        ) from None
    try:
        if programs:
            _refuse_hard_links(fd, granted)
        files = {g.host.name: _Staged(g, staging / g.host.name) for g in granted}
        for staged in files.values():
            _copy_in(fd, staged, in_place=False)
        siblings: list[Mount] = []
        if sees_all:
            siblings = _copy_siblings(fd, host, guests, staging, set(files))
        others = {
            name: _identity(staging / name) for name in os.listdir(staging) if name not in files
        }
    finally:
        os.close(fd)
    return _Directory(host, guests, staging, files, others, tuple(siblings))


def _refuse_hard_links(directory_fd: int, granted: list[FileGrant]) -> None:
    """A granted program writes a granted file in place, under a Landlock rule that is the
    file's inode: a file with other names (Cargo.toml's, say) would be written at those too,
    past the checks of the grants, which are by path."""
    for grant in granted:
        try:
            st = os.lstat(grant.host.name, dir_fd=directory_fd)
        except FileNotFoundError:
            continue
        if grant.writable and stat.S_ISREG(st.st_mode) and st.st_nlink > 1:
            raise SandboxError(
                f"`write` path `{grant.host}` has {st.st_nlink} names (hard links), and the task "
                "may run host programs, which would write the file at all of them",
                help="make it a file of its own (copy it over the link), or grant its directory",
            )


def _copy_in(directory_fd: int, staged: _Staged, in_place: bool) -> None:
    """Copy the host's file into the staging directory (in place keeps the staged file's
    identity: the task may hold it open across a host program)."""
    staged.host = _identity(staged.name, directory_fd)
    if not staged.host or staged.host[4] != stat.S_IFREG:
        staged.host = ()  # gone, or no longer a file: the task sees no file
        try:
            os.unlink(staged.copy)
        except FileNotFoundError:
            pass
        staged.staged, staged.digest = (), b""
        return
    source = os.open(staged.name, _READ, dir_fd=directory_fd)
    try:
        opened = os.fstat(source)
        if not stat.S_ISREG(opened.st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(staged.grant.host))
        staged.mode = opened.st_mode & 0o777
        mode = staged.mode | 0o200 if staged.grant.writable else 0o444
        if in_place:  # the copy of a file to read is 0444: writable again for the tool first
            _make_writable(staged.copy)
        flags = (os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC) if in_place else _CREATE
        target = os.open(staged.copy, flags, mode)
        try:
            staged.digest = _copy(source, target)
            os.fchmod(target, mode)
        finally:
            os.close(target)
    finally:
        os.close(source)
    staged.staged = _identity(staged.copy)


def _make_writable(path: Path) -> None:
    try:
        fd = os.open(path, _READ)
    except FileNotFoundError:
        return
    try:
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


def _copy(source: int, target: int) -> bytes:
    digest = hashlib.sha256()
    while chunk := os.read(source, _CHUNK):
        digest.update(chunk)
        view = memoryview(chunk)
        while view:
            view = view[os.write(target, view):]
    return digest.digest()


def _copy_siblings(fd: int, host: Path, guests: tuple[str, ...], staging: Path,
                   granted: set[str]) -> list[Mount]:  # fmt: skip
    """Read-only copies of the directory's other files, its links as they are, and a
    placeholder for each subdirectory, which is preopened read-only at its own path."""
    siblings, copied = [], 0
    with os.scandir(fd) as entries:
        for entry in entries:
            if entry.name in granted:
                continue
            if entry.is_symlink():
                os.symlink(os.readlink(entry.name, dir_fd=fd), staging / entry.name)
            elif entry.is_dir(follow_symlinks=False):
                os.mkdir(staging / entry.name, 0o555)
                siblings += [Mount(host / entry.name, f"{g.rstrip('/')}/{entry.name}", False) for g in guests]
            elif entry.is_file(follow_symlinks=False):
                copied += entry.stat(follow_symlinks=False).st_size
                if copied > MAX_COPIED_BYTES:
                    raise SandboxError(
                        f"the directory of a one-file grant, `{host}`, holds more than "
                        f"{MAX_COPIED_BYTES >> 20} MiB of other files, which the task would see "
                        "as copies",
                        help="grant the directory itself, or move the file into a smaller one",
                    )
                try:
                    source = os.open(entry.name, _READ, dir_fd=fd)
                except (PermissionError, FileNotFoundError):
                    continue  # not the user's to read, or gone: the task does not see it either
                try:
                    if not stat.S_ISREG(os.fstat(source).st_mode):
                        continue  # swapped since it was listed: leave it out
                    target = os.open(staging / entry.name, _CREATE, 0o444)
                    try:
                        _copy(source, target)
                    finally:
                        os.close(target)
                finally:
                    os.close(source)
    return siblings


def _changed(staged: _Staged) -> bool:
    now = _identity(staged.copy)
    if now == staged.staged:
        return False
    if not now or not staged.staged or now[4] != stat.S_IFREG:
        return True
    with open(staged.copy, "rb") as f:
        return hashlib.file_digest(f, "sha256").digest() != staged.digest


def _write_directory(directory: _Directory, outcome: Outcome) -> None:
    writable = [f for f in directory.files.values() if f.grant.writable and _changed(f)]
    if not writable:
        return
    try:
        fd = open_directory_without_links(str(directory.host))
    except OSError as e:
        outcome.not_written.extend(f"`{shown_file(f.grant)}` ({directory.host}: {e.strerror})" for f in writable)
        return
    try:
        for staged in writable:
            shown = shown_file(staged.grant)
            why = _write_one(fd, staged)
            if why is None:
                outcome.written.append(shown)
            else:
                outcome.not_written.append(f"`{shown}` ({why})")
    finally:
        os.close(fd)


def _write_one(fd: int, staged: _Staged) -> str | None:
    """Put the staged copy in the host's place, or say why not."""
    if _identity(staged.name, fd) != staged.host:
        return "it changed on the host while the task ran"
    now = _identity(staged.copy)
    try:
        if not now:
            os.unlink(staged.name, dir_fd=fd)
            staged.host, staged.staged, staged.digest = (), (), b""
            return None
        if now[4] != stat.S_IFREG:
            return "the task left something other than a file there"
        temporary = f".cargo-task-{os.urandom(8).hex()}"  # short: any granted name fits beside it
        target = os.open(temporary, _CREATE, 0o600 if staged.host else 0o666, dir_fd=fd)
        try:
            source = os.open(staged.copy, _READ)
            try:
                digest = _copy(source, target)
            finally:
                os.close(source)
            if staged.host:  # a new file gets the umask's mode, as any new file would
                os.fchmod(target, staged.mode)
            os.fsync(target)
        except BaseException:
            os.close(target)
            os.unlink(temporary, dir_fd=fd)
            raise
        os.close(target)
        try:
            os.replace(temporary, staged.name, src_dir_fd=fd, dst_dir_fd=fd)
        except OSError:
            os.unlink(temporary, dir_fd=fd)
            raise
    except OSError as e:
        return e.strerror or str(e)
    staged.host, staged.staged, staged.digest = _identity(staged.name, fd), _identity(staged.copy), digest
    return None


def _discarded(directory: _Directory) -> list[str]:
    """What the task changed in a staging directory beyond its granted files."""
    now = {name: _identity(directory.staging / name) for name in os.listdir(directory.staging)}
    changed = [
        name for name in sorted(set(now) | set(directory.others))
        if name not in directory.files and now.get(name) != directory.others.get(name)
    ]  # fmt: skip
    return [os.path.normpath(os.path.join(directory.guests[0], name)) for name in changed]
