"""Small file-system helpers: atomic writes, where the tool keeps its cache and how it checks
that the cache is the user's alone, and removing a tree that a task could write to while it
is being removed."""

from __future__ import annotations

import errno
import os
import stat
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from cargo_task.errors import TaskError

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def write_atomic(path: Path, data: bytes) -> None:
    """Readers see the old content or the new, never half of it (crash or Ctrl-C alike).

    The file is 0600 and the directories it creates 0700, whatever the umask: what the tool
    writes (its cache, the generated package) is nobody else's to read or replace."""
    make_private_dirs(path.parent)
    _replace(path, data, 0o600)


def replace_file(path: Path, data: bytes) -> None:
    """Atomically replace one of the user's files (a manifest, the lock file): readers see the
    old content or the new; an existing file keeps its mode, a new one gets the umask's."""
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        mask = os.umask(0)
        os.umask(mask)
        mode = 0o666 & ~mask
    _replace(path, data, mode)


def _replace(path: Path, data: bytes, mode: int) -> None:
    """A new file beside `path` with `data` and `mode` (mkstemp's 0600 is still subject to
    the umask), renamed over it."""
    import tempfile

    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            os.fchmod(file.fileno(), mode)
            file.write(data)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def lock_directory(path: Path) -> int:
    """An exclusive lock on the directory `path` (created if missing), held until the
    returned descriptor is closed: one run at a time for what lives in it, and no lock file
    of ours beside the user's. Raises OSError when it cannot be taken."""
    import fcntl

    path.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
    except BaseException:
        os.close(fd)
        raise
    return fd


@contextmanager
def locked_directory(path: Path) -> Iterator[None]:
    """`lock_directory` for the block."""
    fd = lock_directory(path)
    try:
        yield
    finally:
        os.close(fd)  # releases the lock


def make_private_dirs(directory: Path) -> None:
    """`mkdir -p` whose new directories are 0700 whatever the umask; existing ones are left
    as they are."""
    missing = []
    while not directory.is_dir():
        missing.append(directory)
        if directory.parent == directory:
            break
        directory = directory.parent
    for new in reversed(missing):
        try:
            os.mkdir(new, 0o700)
        except FileExistsError:
            if not new.is_dir():
                raise
            continue  # made by a concurrent run: theirs to have chosen the mode of
        os.chmod(new, 0o700)  # a umask such as 0277 would have taken the owner's bits


def cache_dir(environ: dict[str, str]) -> Path:
    """Compiled components and build records: outside every project, so no task can reach them."""
    base = environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):  # the XDG rule: a relative value is ignored
        base = os.path.join(os.path.expanduser("~"), ".cache")
    return Path(os.path.realpath(base)) / "cargo-task-wasm"


class PrivateTree:
    """A directory tree only its owner may change: the cache, whose compiled components are
    machine code that Wasmtime runs without checking it.

    Reading an entry checks the root, each directory on the way and the entry itself: owned
    by this user, not writable by anyone else, and no symbolic links below the root. That
    is a few `stat`s per entry, each directory checked once per run; nothing walks the tree.
    A missing entry (or root) is None; an unsafe one is refused with a TaskError.
    """

    def __init__(self, root: Path):
        self.root = root
        self._checked: set[Path] = set()
        self._uid = os.getuid()

    def read(self, path: Path, secret: bool = False) -> bytes | None:
        """The content of the entry `path` below the root; `secret`: nobody else may read it."""
        if not self.directory_ready(path.parent):
            return None
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:  # missing, or a link (ELOOP): absent, and replaced when written
            return None
        with os.fdopen(fd, "rb") as file:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                return None
            self._refuse_unless_private(path, st, 0o077 if secret else 0o022, "entry")
            return file.read()

    def write(self, path: Path, data: bytes) -> None:
        """Write the entry `path` atomically, refusing to write into an unsafe directory."""
        self.directory_ready(path.parent)
        write_atomic(path, data)

    def directory_ready(self, directory: Path) -> bool:
        """Check the root and every existing directory down to `directory`; False if one of
        them does not exist (yet)."""
        chain = [directory, *directory.parents]
        chain = chain[: chain.index(self.root) + 1]
        for current in reversed(chain):
            if current in self._checked:
                continue
            try:  # the root may be a link the user made (to another disk); nothing below it
                st = os.stat(current) if current == self.root else os.lstat(current)
            except (FileNotFoundError, NotADirectoryError):
                return False
            if stat.S_ISLNK(st.st_mode):
                raise TaskError(
                    f"`{current}` in cargo-task's cache is a symbolic link",
                    help=self._remove_hint(),
                )
            if not stat.S_ISDIR(st.st_mode):
                return False
            self._refuse_unless_private(current, st, 0o022, "directory")
            self._checked.add(current)
        return True

    def _refuse_unless_private(self, path: Path, st: os.stat_result, forbidden: int, kind: str) -> None:
        if st.st_uid != self._uid:
            raise TaskError(
                f"the cache {kind} `{path}` belongs to another user (uid {st.st_uid})",
                help=self._remove_hint(),
            )
        if st.st_mode & forbidden:
            what = "readable" if st.st_mode & forbidden & 0o044 else "writable"
            raise TaskError(
                f"the cache {kind} `{path}` is {what} by other users "
                f"(mode {stat.S_IMODE(st.st_mode):04o})",
                help=self._remove_hint(),
            )

    def _remove_hint(self) -> str:
        return (
            "cargo-task loads native code from its cache, so it must be yours alone; remove "
            f"`{self.root}` (it is rebuilt as needed), or set XDG_CACHE_HOME to a directory "
            "of your own"
        )


def open_directory_without_links(path: str) -> int:
    """A descriptor for the directory `path`, failing if any component is now a symlink.

    Grants were checked for links when decided; opening each component with O_NOFOLLOW
    closes the window in which a running task could swap a directory for a link.
    """
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
    fd = os.open("/", flags)
    try:
        for part in path.strip("/").split("/"):
            if part:
                parent, fd = fd, os.open(part, flags | os.O_NOFOLLOW, dir_fd=fd)
                os.close(parent)
    except OSError:
        os.close(fd)
        raise
    return fd


def remove_tree(path: str | os.PathLike[str]) -> None:
    """Remove `path` and everything below it, however deep or wide, without following links.

    Made for a directory that a task could still be changing: every directory is opened
    relative to its parent's descriptor with O_NOFOLLOW, so swapping one for a symbolic link
    cannot redirect the removal, and climbing back up through `..` checks that the parent
    is still the one we came from (a moved directory would otherwise lead elsewhere). At
    most two descriptors are open at a time, and nothing recurses. Directories the owner
    made unreadable or unwritable (chmod 000) are given back to the owner first. Raises
    OSError if something cannot be removed; a missing `path` is not an error.
    """
    head, name = os.path.split(os.path.abspath(path))
    fd = os.open(head, _DIR & ~os.O_NOFOLLOW)  # the caller's own directory, links and all
    # The directories from `head` down to `fd`: (name in its parent, identity, subdirectories
    # still to remove). `head` itself is the bottom entry.
    stack: list[tuple[str, tuple[int, int], list[str]]] = [("", _identity(fd), [])]
    pending: str | None = name
    try:
        while True:
            if pending is not None:
                entered = _enter(fd, pending)
                if entered is not None:
                    os.close(fd)
                    fd = entered
                    stack.append((pending, _identity(fd), []))
                pending = None
            if len(stack) == 1:
                return
            subdirectories = stack[-1][2]
            if not subdirectories:
                subdirectories += _remove_files(fd)
            if subdirectories:
                pending = subdirectories.pop()
                continue
            # Empty: climb to the parent and remove it there.
            parent = os.open("..", _DIR, dir_fd=fd)
            done, _, _ = stack.pop()
            os.close(fd)
            fd = parent
            if _identity(fd) != stack[-1][1]:
                raise OSError(f"`{done}` was moved while it was being removed")
            os.rmdir(done, dir_fd=fd)
    finally:
        os.close(fd)


def _identity(fd: int) -> tuple[int, int]:
    st = os.fstat(fd)
    return st.st_dev, st.st_ino


def _enter(parent: int, name: str) -> int | None:
    """A descriptor for the directory `name` in `parent`; None once `name` is gone (a file
    or a link is removed instead, never followed)."""
    try:
        fd = os.open(name, _DIR, dir_fd=parent)
    except FileNotFoundError:
        return None
    except PermissionError:  # chmod 000: ours to give back to ourselves
        handle = os.open(name, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
        try:
            os.chmod(f"/proc/self/fd/{handle}", 0o700)  # the directory itself, never a link
        finally:
            os.close(handle)
        fd = os.open(name, _DIR, dir_fd=parent)
    except OSError as e:
        if e.errno not in (errno.ENOTDIR, errno.ELOOP):
            raise
        _unlink(parent, name)  # not a directory, or a symbolic link: the entry itself goes
        return None
    try:
        mode = os.fstat(fd).st_mode
        if mode & 0o700 != 0o700:  # readable but not writable: its entries could not go
            os.fchmod(fd, mode | 0o700)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _unlink(parent: int, name: str) -> None:
    try:
        os.unlink(name, dir_fd=parent)
    except FileNotFoundError:
        pass


def _remove_files(fd: int) -> list[str]:
    """Remove every entry of the directory `fd` that is not a directory; -> the names of the
    directories left."""
    directories = []
    with os.scandir(fd) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                directories.append(entry.name)
                continue
            try:
                os.unlink(entry.name, dir_fd=fd)
            except IsADirectoryError:  # it became one since it was listed
                directories.append(entry.name)
            except FileNotFoundError:
                pass
    return directories
