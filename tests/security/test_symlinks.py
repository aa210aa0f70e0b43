"""Symlinks: made by the task (absolute, relative-outside, loops, dangling), planted in the
project beforehand (`home -> ~`, `etc -> /etc`, `../outside`), and planted links that the
host side (grant resolution, clean-up of the private /tmp) might follow.
"""

from __future__ import annotations

import os

from .conftest import SECRET, describe

DENIED = "ERR PermissionDenied"


def test_task_cannot_create_a_symlink_with_an_absolute_target(arena, clean_out):
    attempts = [
        "symlink:/etc/passwd:out/abs",
        "symlink:/:out/root",
        f"symlink:{arena.outside}:out/host-abs",
        "symlink:/data/public.txt:out/guest-abs",  # absolute even though it means the project
        "symlink:data:newlink",  # anywhere in the read-only project
    ]
    with arena.unchanged():
        seen = arena.probe("rw", *attempts)
    for attempt in attempts:
        assert seen[attempt].startswith(DENIED), (attempt, seen[attempt])
    assert list(clean_out.iterdir()) == []


def test_relative_symlink_out_of_the_grant_can_be_made_but_not_followed(arena, clean_out):
    made = ["symlink:../../outside:out/rel", "symlink:..:out/up", "symlink:../../outside/w:out/w"]
    followed = [
        "readdir:out/rel",
        "read:out/rel/secret.txt",
        "readdir:out/rel/",
        "read:out/up/data/public.txt",  # the project is readable via `/`, not via out/
        "write:out/up/Cargo.toml",  # a writable grant must not reach the read-only project
        "write:out/w/pwned",
        "create:out/w/pwned2",
        "mkdir:out/w/newdir",
    ]
    with arena.unchanged():
        seen = arena.probe("rw", *made, *followed, "hardlink:out/rel/secret.txt:out/stolen",
                           "readlink:out/rel", "lstat:out/rel")  # fmt: skip
    for attempt in made:
        assert seen[attempt] == "OK symlinked", (attempt, seen[attempt])
    for attempt in followed:
        assert seen[attempt].startswith(DENIED), (attempt, seen[attempt])
    # link-at does not follow the link: the path names nothing inside the grant (a libc on
    # preview1 reports that as NotFound, one on wasi:filesystem as PermissionDenied)
    stolen = seen["hardlink:out/rel/secret.txt:out/stolen"]
    assert stolen.startswith((DENIED, "ERR NotFound")), stolen
    assert seen["readlink:out/rel"] == "OK ../../outside"
    assert "is_symlink: true" in seen["lstat:out/rel"]
    assert os.readlink(clean_out / "rel") == "../../outside"  # it exists on the host, inert


def test_symlink_loops(arena, clean_out):
    attempts = {
        "symlink:loop2:out/loop1": "OK symlinked",
        "symlink:loop1:out/loop2": "OK symlinked",
        "symlink:self:out/self": "OK symlinked",
        "read:out/loop1": "ERR FilesystemLoop",
        "write:out/loop2": "ERR FilesystemLoop",
        "readdir:out/self/": "ERR FilesystemLoop",
        "read:out/self": "ERR FilesystemLoop",
    }
    with arena.unchanged():
        seen = arena.probe("rw", *attempts)
    for attempt, outcome in attempts.items():
        assert seen[attempt].startswith(outcome), (attempt, seen[attempt])


def test_dangling_symlinks(arena, clean_out, empty_outside_w):
    # planted on the host before the run, pointing at files that do not exist yet
    os.symlink(arena.outside / "w" / "abs-target", clean_out / "planted-abs")
    os.symlink("../../outside/w/rel-target", clean_out / "planted-rel")
    attempts = {
        "symlink:missing:out/dangling": "OK symlinked",
        "read:out/dangling": "ERR NotFound",
        "write:out/dangling": "OK written",  # creates out/missing: inside the grant, fine
        "symlink:../../outside/w/made-by-task:out/dangling-out": "OK symlinked",
        "write:out/dangling-out": DENIED,
        "create:out/dangling-out": "ERR AlreadyExists",  # O_EXCL: the link itself exists
        "write:out/planted-abs": DENIED,
        "write:out/planted-rel": DENIED,
        "read:out/planted-abs": DENIED,
    }
    with arena.unchanged():
        seen = arena.probe("rw", *attempts)
    for attempt, outcome in attempts.items():
        assert seen[attempt].startswith(outcome), (attempt, seen[attempt])
    assert (clean_out / "missing").read_text() == "written by the task\n"
    assert os.listdir(arena.outside / "w") == []


def test_symlinks_planted_in_the_project_point_nowhere(arena):
    """`ln -s ~ home`, `ln -s /etc etc` and links to a sibling directory, shipped in the repo."""
    attempts = [
        "readdir:home",
        "read:home/.bashrc",
        "read:home/.cargo/credentials.toml",
        "write:home/pwned",
        "readdir:etc",
        "read:etc/passwd",
        "read:etc/shadow",
        "readdir:outside-abs",
        "read:outside-abs/secret.txt",
        "readdir:outside-rel",
        "read:outside-rel/secret.txt",
        "write:outside-rel/w/pwned",
        "read:linked/../secret.txt",
        "readlink:home",  # absolute targets are not even revealed
        "unlink:home",
        "rename:outside-rel:renamed",
    ]
    with arena.unchanged():
        seen = arena.probe("ro", *attempts, "lstat:home", "readlink:outside-rel", "read:inside-link")
    for attempt in attempts:
        assert seen[attempt].startswith(DENIED), (attempt, seen[attempt])
    assert "is_symlink: true" in seen["lstat:home"]  # the link itself is part of the project
    assert seen["readlink:outside-rel"] == "OK ../outside"
    assert seen["read:inside-link"].startswith("OK")  # a link that stays inside works


def test_writable_grant_with_planted_links_to_protected_files(arena, clean_out):
    """Links shipped inside a writable directory must not reach the manifest or .cargo."""
    os.symlink("../.cargo", clean_out / "cargo-dir")
    os.symlink("../Cargo.toml", clean_out / "manifest")
    os.symlink("../tasks", clean_out / "tasks")
    os.symlink(arena.project / ".git" / "hooks", clean_out / "hooks")
    attempts = [
        "write:out/cargo-dir/config.toml",
        "append:out/manifest",
        "write:out/manifest",
        "truncate:out/manifest",
        "write:out/tasks/ro.rs",
        "create:out/tasks/evil.rs",
        "write:out/hooks/pre-commit",
    ]
    with arena.unchanged():
        seen = arena.probe("rw", *attempts, "unlink:out/manifest")
    for attempt in attempts:
        assert seen[attempt].startswith(DENIED), (attempt, seen[attempt])
    assert seen["unlink:out/manifest"] == "OK removed"  # removes the link, not the manifest
    assert (arena.project / "Cargo.toml").is_file()


def test_grant_through_a_symlink_planted_by_a_task(arena, clean_out, empty_outside_w):
    """Task `rw` (write = ["out"]) plants `out/site -> ../../outside/w`; task `publish`
    (write = ["out/site"]) must not get the directory outside the project it points to.
    """
    planted = arena.probe("rw", "symlink:../../outside/w:out/site")
    assert planted["symlink:../../outside/w:out/site"] == "OK symlinked"
    with arena.unchanged():
        result = arena.run("publish", "write:out/site/pwned", "readdir:out/site")
    assert not (arena.outside / "w" / "pwned").exists(), (
        "a write grant resolved through a task-planted symlink reached a directory outside "
        "the project\n" + describe(result)
    )
    assert "=> OK" not in result.stdout, describe(result)


def test_grant_through_a_symlink_planted_in_the_project(arena, empty_outside_w):
    """`linked -> ../outside/w` shipped in the repository, and `write = ["linked"]`: the
    grant reads as a project directory but would be a directory outside the project."""
    with arena.unchanged():
        result = arena.run("via_link", "write:linked/pwned", "readdir:linked")
    assert not (arena.outside / "w" / "pwned").exists(), describe(result)
    assert "=> OK" not in result.stdout, describe(result)
    explained = arena.run("--explain", "via_link")
    assert str(arena.outside) not in explained.stdout, describe(explained)


def test_cleaning_the_private_tmp_does_not_follow_planted_links(arena, empty_outside_w):
    attempts = {
        "mkdir:/tmp/dir": "OK",
        "write:/tmp/dir/file": "OK",
        "symlink:../../outside:/tmp/up": "OK",  # from the host's view, <base>/outside
        "symlink:../../../outside/secret.txt:/tmp/dir/secret": "OK",
        "symlink:../../outside/w:/tmp/dir/w": "OK",
        "read:/tmp/up/secret.txt": DENIED,
        "write:/tmp/dir/w/pwned": DENIED,
        "readdir:/tmp": "OK",
    }
    with arena.unchanged():
        seen = arena.probe("rw_tmp", *attempts)
    for attempt, outcome in attempts.items():
        assert seen[attempt].startswith(outcome), (attempt, seen[attempt])
    assert seen["readdir:/tmp"] == "OK dir,up"  # private and fresh: only what this run made
    assert (arena.outside / "secret.txt").read_text() == SECRET + "\n"
    assert os.listdir(arena.outside / "w") == []
    assert os.listdir(arena.tmpdir) == [], "the private /tmp was not removed after the run"
