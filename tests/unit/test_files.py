"""files, cache, scaffold names: removing a tree a task wrote, the private cache, and the
names that end up in paths. Real directories, real permissions, real processes."""

from __future__ import annotations

import hashlib
import os
import re
import sys
import threading
from pathlib import Path

import pytest

from cargo_task.cache import Cache, Record
from cargo_task.discovery import Owner
from cargo_task.errors import TaskError
from cargo_task.files import PrivateTree, remove_tree, write_atomic
from cargo_task.scaffold import package_dir_name, package_name, render

NOBODY = 65534


def _outside(tmp_path: Path) -> Path:
    """A directory that removal must never reach: a file inside, read back after."""
    outside = tmp_path / "outside"
    (outside / "keep").mkdir(parents=True)
    (outside / "keep" / "precious.txt").write_text("keep me\n")
    return outside


def _intact(outside: Path) -> bool:
    return (outside / "keep" / "precious.txt").read_text() == "keep me\n"


# -- remove_tree -------------------------------------------------------------------------


def test_a_tree_deeper_than_any_recursion_limit_is_removed(tmp_path):
    tree = tmp_path / "tree"
    tree.mkdir()
    fd = os.open(tree, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for depth in range(sys.getrecursionlimit() * 3):
            os.mkdir("d", dir_fd=fd)
            if depth % 500 == 0:
                os.close(os.open("f", os.O_CREAT | os.O_WRONLY, dir_fd=fd))
            deeper = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = deeper
    finally:
        os.close(fd)
    remove_tree(tree)
    assert os.listdir(tmp_path) == []


def test_a_hundred_thousand_files_are_removed(tmp_path):
    wide = tmp_path / "tree" / "wide"
    wide.mkdir(parents=True)
    fd = os.open(wide, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for i in range(100_000):
            os.close(os.open(f"f{i}", os.O_CREAT | os.O_WRONLY, 0o600, dir_fd=fd))
    finally:
        os.close(fd)
    for i in range(200):  # and many directories side by side, each listed once
        (tmp_path / "tree" / f"dir{i}" / "inner").mkdir(parents=True)
    remove_tree(tmp_path / "tree")
    assert os.listdir(tmp_path) == []


def test_links_are_removed_never_followed(tmp_path):
    outside = _outside(tmp_path)
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    os.symlink(outside, tree / "dir-link")
    os.symlink(outside / "keep", tree / "sub" / "dir-link-2")
    os.symlink(outside / "keep" / "precious.txt", tree / "file-link")
    os.symlink("../../outside/keep", tree / "sub" / "relative-link")
    os.symlink(outside, tmp_path / "top-link")
    remove_tree(tree)
    remove_tree(tmp_path / "top-link")  # the link itself goes; what it points at stays
    assert sorted(os.listdir(tmp_path)) == ["outside"]
    assert _intact(outside)


def test_a_missing_tree_is_not_an_error(tmp_path):
    remove_tree(tmp_path / "never-made")
    (tmp_path / "a-file").write_text("x")
    remove_tree(tmp_path / "a-file")
    assert os.listdir(tmp_path) == []


def _locked_tree(base: str) -> None:
    tree = os.path.join(base, "tree")
    for path in ("a/b/c", "unreadable/x", "unwritable/y", "unsearchable/z"):
        os.makedirs(os.path.join(tree, path))
        open(os.path.join(tree, path, "file"), "w").close()
    for path, mode in (("a/b", 0o000), ("a", 0o000), ("unreadable", 0o300), ("unwritable", 0o500),
                       ("unsearchable", 0o600), ("", 0o500)):  # fmt: skip
        os.chmod(os.path.join(tree, path), mode)
    remove_tree(tree)
    assert os.listdir(base) == []


def test_directories_made_unreadable_or_unwritable_are_removed(tmp_path):
    """chmod 000 on the way down: the owner gives the directories back to itself. Root is
    refused nothing, so as root the tree is made and removed by a child that is not."""
    if os.geteuid() != 0:
        _locked_tree(str(tmp_path))
        return
    import tempfile
    import traceback

    base = tempfile.mkdtemp(prefix="remove-tree-", dir="/tmp")  # a place nobody can reach
    os.chown(base, NOBODY, NOBODY)
    try:
        pid = os.fork()
        if pid == 0:  # the child: an ordinary user from here on, and it never returns
            code = 1
            try:
                os.setgroups([])
                os.setgid(NOBODY)
                os.setuid(NOBODY)
                _locked_tree(base)
                code = 0
            except BaseException:
                traceback.print_exc()
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
    finally:
        remove_tree(base)


def test_a_directory_swapped_for_a_link_during_removal_never_leads_outside(tmp_path):
    """A task that still runs while its /tmp is removed keeps replacing a directory with a
    link to the host: the removal may give up, but never deletes through the link."""
    outside = _outside(tmp_path)
    tree = tmp_path / "tree"
    stop = threading.Event()

    def swap() -> None:
        while not stop.is_set():
            for i in range(20):
                try:
                    (tree / "a" / f"d{i}").mkdir(parents=True)
                    (tree / "a" / f"d{i}" / "f").write_text("x")
                    os.rename(tree / "a" / f"d{i}", tree / f"moved{i}")
                    os.symlink(outside / "keep", tree / "a" / f"d{i}")
                except OSError:
                    pass

    swapper = threading.Thread(target=swap)
    swapper.start()
    try:
        for _ in range(50):
            try:
                remove_tree(tree)
            except OSError:
                pass
    finally:
        stop.set()
        swapper.join()
    remove_tree(tree)
    assert _intact(outside)
    assert sorted(os.listdir(tmp_path)) == ["outside"]


# -- the private cache -----------------------------------------------------------------


def _modes(root: Path) -> dict[str, int]:
    found = {}
    for directory, dirs, files in os.walk(root):
        for name in [".", *dirs, *files]:
            path = os.path.normpath(os.path.join(directory, name))
            found[os.path.relpath(path, root)] = os.lstat(path).st_mode & 0o777
    return found


def test_cache_directories_are_0700_and_files_0600_whatever_the_umask(tmp_path):
    previous = os.umask(0o002)
    try:
        cache = Cache(tmp_path / "xdg" / "cargo-task-wasm")
        cache.save_component("k" * 64, b"machine code")
        cache.save_record(tmp_path / "pkg", "t", Record("f", [("/a", 1, 2)], "k" * 64))
        write_atomic(tmp_path / "xdg" / "cargo-task-wasm" / "manifests" / "m.json", b"{}")
    finally:
        os.umask(previous)
    modes = _modes(tmp_path / "xdg")
    assert {path for path, mode in modes.items() if mode & 0o077} == set(), modes
    assert modes["cargo-task-wasm/key"] == 0o600
    assert modes["cargo-task-wasm/components"] == 0o700


@pytest.mark.parametrize("where", ["", "components", "components/entry"])
def test_a_cache_writable_by_others_is_refused(tmp_path, where):
    root = tmp_path / "cargo-task-wasm"
    Cache(root).save_component("k" * 64, b"machine code")
    target = root / where.replace("entry", "k" * 64 + ".cwasm")
    target.chmod(target.stat().st_mode | 0o020)
    with pytest.raises(TaskError) as refused:
        Cache(root).load_component("k" * 64)
    assert refused.value.message == (
        f"the cache {'entry' if where.endswith('entry') else 'directory'} `{target}` is "
        f"writable by other users (mode {target.stat().st_mode & 0o7777:04o})"
    )
    assert f"remove `{root}`" in refused.value.help


def test_a_key_others_can_read_or_a_link_in_the_cache_is_refused(tmp_path):
    root = tmp_path / "cargo-task-wasm"
    Cache(root).save_component("k" * 64, b"machine code")
    (root / "key").chmod(0o640)
    with pytest.raises(TaskError, match="key` is readable by other users"):
        Cache(root).load_component("k" * 64)
    (root / "key").chmod(0o600)
    os.rename(root / "components", root / "elsewhere")
    os.symlink(root / "elsewhere", root / "components")
    with pytest.raises(TaskError, match="components` in cargo-task's cache is a symbolic link"):
        Cache(root).load_component("k" * 64)


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")
def test_a_cache_entry_of_another_user_is_refused(tmp_path):
    root = tmp_path / "cargo-task-wasm"
    Cache(root).save_component("k" * 64, b"machine code")
    os.chown(root / "components" / ("k" * 64 + ".cwasm"), NOBODY, -1)
    with pytest.raises(TaskError, match=f"belongs to another user \\(uid {NOBODY}\\)"):
        Cache(root).load_component("k" * 64)


def test_a_missing_or_unusable_cache_is_absent_not_refused(tmp_path):
    assert Cache(tmp_path / "nothing-yet").load_component("k" * 64) is None
    (tmp_path / "a-file").write_text("")
    assert Cache(tmp_path / "a-file" / "cargo-task-wasm").load_record(tmp_path, "t") is None


def test_entries_need_the_caches_key(tmp_path):
    """Whoever can write entries but cannot read the key cannot make one that loads: not by
    recomputing a checksum, not by copying another valid entry over it."""
    root = tmp_path / "cargo-task-wasm"
    cache = Cache(root)
    a, b = "a" * 64, "b" * 64
    cache.save_component(a, b"code of a")
    cache.save_component(b, b"code of b")
    magic = (root / "components" / f"{a}.cwasm").read_bytes()[:29]
    assert magic == b"cargo-task-wasm component v2\n"
    (root / "components" / f"{a}.cwasm").write_bytes(magic + hashlib.sha256(b"evil").digest() + b"evil")
    (root / "components" / f"{b}.cwasm").write_bytes((root / "components" / f"{a}.cwasm").read_bytes())
    assert Cache(root).load_component(a) is None
    assert Cache(root).load_component(b) is None
    cache.save_component(a, b"code of a")
    (root / "key").write_bytes(os.urandom(32))  # another key: nothing made before loads
    assert Cache(root).load_component(a) is None


def test_records_need_the_caches_key_and_their_own_place(tmp_path):
    root = tmp_path / "cargo-task-wasm"
    cache = Cache(root)
    mine, other = Record("f", [("/a", 1, 2)], "a" * 64), Record("g", [], "b" * 64)
    cache.save_record(tmp_path / "p", "mine", mine)
    cache.save_record(tmp_path / "p", "other", other)
    assert Cache(root).load_record(tmp_path / "p", "mine") == mine
    path = next(root.glob("records/*/mine.json"))
    path.write_bytes(next(root.glob("records/*/other.json")).read_bytes())
    assert Cache(root).load_record(tmp_path / "p", "mine") is None
    body = b'{"version": 2, "fingerprint": "f", "stamps": [], "component": "' + b"b" * 64 + b'"}'
    path.write_bytes(hashlib.sha256(body).hexdigest().encode() + b"\n" + body)
    assert Cache(root).load_record(tmp_path / "p", "mine") is None


def test_the_key_is_made_once_and_shared(tmp_path):
    root = tmp_path / "cargo-task-wasm"
    Cache(root).save_component("a" * 64, b"code")
    key = (root / "key").read_bytes()
    assert len(key) == 32
    Cache(root).save_component("b" * 64, b"code")
    assert (root / "key").read_bytes() == key
    assert Cache(root).load_component("a" * 64) == b"code"
    assert sorted(p.name for p in root.iterdir()) == ["components", "key"]  # no temporaries


def test_private_tree_checks_each_directory_once(tmp_path):
    tree = PrivateTree(tmp_path)
    write_atomic(tmp_path / "a" / "b" / "entry", b"data")
    assert tree.read(tmp_path / "a" / "b" / "entry") == b"data"
    (tmp_path / "a").chmod(0o777)  # checked already in this run: not looked at again
    assert tree.read(tmp_path / "a" / "b" / "entry") == b"data"
    with pytest.raises(TaskError):
        PrivateTree(tmp_path).read(tmp_path / "a" / "b" / "entry")


# -- names used in paths ---------------------------------------------------------------

HOSTILE_NAMES = ["../../evil", "/abs/evil", "\x1b]0;pwned\x07", "nul\x00byte", "..", ".", "",
                 "x" * 300, "naïve-ünïcödé", "a/../../b\\c", "-leading", "\u202eevil"]  # fmt: skip


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_the_generated_package_stays_directly_under_the_build_root(tmp_path, name):
    owner = Owner(tmp_path, tmp_path / "Cargo.toml", name, "2021", {}, (("t", tmp_path / "t.rs"),))
    plan = render(owner, tmp_path / "target" / "cargo-task")
    assert plan.directory.parent == tmp_path / "target" / "cargo-task"
    assert re.fullmatch(r"[A-Za-z0-9_-]{16,50}", package_dir_name(owner)), package_dir_name(owner)
    assert re.fullmatch(r"cargo-task-[A-Za-z0-9][A-Za-z0-9_-]*", package_name(owner))
    assert len(package_name(owner)) <= 64
    assert "\x1b" not in plan.text() and "\x00" not in plan.text()


def test_owners_differing_only_in_unsafe_characters_get_their_own_directories(tmp_path):
    def directory(name: str, root: Path = tmp_path) -> str:
        return package_dir_name(Owner(root, root / "Cargo.toml", name, "2021", {}, ()))

    assert directory("a/b") != directory("a.b")
    assert directory("app") != directory("app", tmp_path / "member")
    assert directory("app") == directory("app")
    assert directory("my-app").startswith("my-app-")
