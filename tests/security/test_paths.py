"""Paths that try to leave a grant: absolute, `..`, leave-and-come-back, trailing slashes.

The project is mounted read-only at `/` (and the guest's cwd is `/`); `rw` also has
`../outside/shared` read-only and `out` writable. Nothing outside those may be reached.
"""

from __future__ import annotations

from .conftest import PUBLIC, SECRET

DENIED = "ERR PermissionDenied"  # wasmtime: EPERM (os error 63) for a path that leaves a preopen
NOT_FOUND = "ERR NotFound"  # an absolute host path resolves inside the project, where it is absent


def test_absolute_host_paths_resolve_inside_the_project(arena):
    attempts = {
        # /etc is the project's planted `etc -> /etc` link, which cannot be followed out
        "read:/etc/passwd": DENIED,
        "read:/etc/hostname": DENIED,
        "read:/proc/self/environ": NOT_FOUND,
        "read:/root/.bashrc": NOT_FOUND,
        f"read:{arena.outside}/secret.txt": NOT_FOUND,
        f"readdir:{arena.outside}": NOT_FOUND,
        f"read:{arena.project}/data/public.txt": NOT_FOUND,  # the host path of a project file
        "read://etc/passwd": DENIED,
        "read://proc/self/environ": NOT_FOUND,
    }
    with arena.unchanged():
        seen = arena.probe("ro", *attempts, "read:/data/public.txt", "readdir:/")
    for attempt, expected in attempts.items():
        assert seen[attempt].startswith(expected), (attempt, seen[attempt])
    # positive controls: `/` is the project, and only the project
    assert seen["read:/data/public.txt"].startswith("OK")
    listing = seen["readdir:/"].removeprefix("OK ").split(",")
    assert {"Cargo.toml", "data", "tasks", "src"} <= set(listing)
    assert "passwd" not in listing and "secret.txt" not in listing


def test_dotdot_cannot_leave_the_project(arena):
    attempts = [
        "readdir:..",
        "readdir:/..",
        "read:../outside/secret.txt",
        "read:/../outside/secret.txt",
        "read:data/../../outside/secret.txt",
        "read:data/sub/../../../outside/secret.txt",
        "read:../../../../../../../../etc/passwd",
        "readdir:./../",
        "stat:..",
    ]
    with arena.unchanged():
        seen = arena.probe("ro", *attempts, "read:data/sub/../public.txt")
    for attempt in attempts:
        assert seen[attempt].startswith(DENIED), (attempt, seen[attempt])
    assert seen["read:data/sub/../public.txt"] == f"OK {len(PUBLIC)} bytes {PUBLIC!r}".replace("'", '"')


def test_leave_and_come_back_through_the_root_name(arena):
    """`../project/...` names the project itself, but only by leaving it first."""
    name = arena.project.name
    attempts = [
        f"read:../{name}/data/public.txt",
        f"read:/../{name}/data/public.txt",
        f"read:data/../../{name}/data/public.txt",
        f"write:../{name}/out/came-back",
        f"readdir:../{name}",
    ]
    with arena.unchanged():
        seen = arena.probe("ro", *attempts)
    for attempt in attempts:
        assert seen[attempt].startswith(DENIED), (attempt, seen[attempt])


def test_paths_against_a_writable_grant(arena, clean_out):
    name = arena.project.name
    denied = [
        "write:out/../data/public.txt",  # out/ is writable, its parent is not
        "write:/out/../Cargo.toml",
        "write:out/../../outside/w/x",
        f"write:out/../../{name}/out/came-back",  # leave out/ and come back
        "write:out/../out/came-back-2",
        "mkdir:out/../newdir",
        "write:../outside/w/x",
        f"write:{arena.outside}/w/x",  # absolute host path: a path inside the read-only project
    ]
    with arena.unchanged():
        seen = arena.probe("rw", *denied, "write:out/ok", "write:/out/ok-abs", "write:./out/./ok-dot")
    for attempt in denied:
        assert seen[attempt].startswith(DENIED), (attempt, seen[attempt])
    # positive controls: the grant itself works, by relative and absolute guest paths
    for ok in ("write:out/ok", "write:/out/ok-abs", "write:./out/./ok-dot"):
        assert seen[ok] == "OK written", (ok, seen[ok])
    assert sorted(p.name for p in clean_out.iterdir()) == ["ok", "ok-abs", "ok-dot"]
    assert not (arena.outside / "w" / "x").exists()


def test_paths_against_a_read_only_grant_outside_the_project(arena, clean_out):
    """`read = ["../outside/shared"]` exposes that directory and nothing next to it."""
    attempts = [
        "read:../outside/shared/../secret.txt",
        "readdir:../outside",
        "read:../outside/secret.txt",
        "readdir:../outside/shared/..",
        "write:../outside/shared/new",
        "mkdir:../outside/shared/newdir",
        "write:../outside/shared/ok.txt",
    ]
    with arena.unchanged():
        seen = arena.probe("rw", *attempts, "read:../outside/shared/ok.txt",
                           "read:../outside/shared/../shared/ok.txt")  # fmt: skip
    for attempt in attempts:
        assert seen[attempt].startswith(DENIED), (attempt, seen[attempt])
    assert seen["read:../outside/shared/ok.txt"].startswith("OK")
    # leaving the grant and coming back is refused even though it would land inside it
    assert seen["read:../outside/shared/../shared/ok.txt"].startswith(DENIED)


def test_trailing_slashes(arena, clean_out):
    """Trailing slashes and dots on files, directories and links (cf. GHSA-vqjp-4c8c-hfgg)."""
    expected = {
        "read:data/public.txt/": "ERR NotADirectory",
        "read:data/public.txt/.": "ERR NotADirectory",
        "write:data/public.txt/": DENIED,
        "write:data//public.txt": DENIED,
        "readdir:outside-rel/": DENIED,
        "readdir:outside-rel/.": DENIED,
        "readdir:outside-rel//": DENIED,
        "read:outside-rel//secret.txt": DENIED,
        "readdir:outside-abs/": DENIED,
        "readdir:home/": DENIED,
        "readdir:etc/.": DENIED,
        "read:etc//passwd": DENIED,
        "write:out/newfile/": "ERR IsADirectory",
        "mkdir:out/../x/": DENIED,
        "write:out/..//y": DENIED,
    }
    with arena.unchanged():
        seen = arena.probe("rw", *expected, "readdir:data//", "readdir:data/./", "read:inside-link/")
    for attempt, outcome in expected.items():
        assert seen[attempt].startswith(outcome), (attempt, seen[attempt])
    assert seen["readdir:data//"] == "OK public.txt,sub"
    assert seen["readdir:data/./"] == "OK public.txt,sub"
    assert seen["read:inside-link/"].startswith("ERR NotADirectory")
    assert list(clean_out.iterdir()) == []
    assert SECRET not in arena.last.stdout
