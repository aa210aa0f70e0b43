"""Paths that try to leave a grant: absolute, `..`, leave-and-come-back, trailing slashes.

The project is mounted read-only at `/` (and the guest's cwd is `/`); `rw` also has
`../outside/shared` read-only and `out` writable. Each is also at its host path (where
CARGO_MANIFEST_DIR points), with the same access. Nothing outside those may be reached.
"""

from __future__ import annotations

from .conftest import PUBLIC, SECRET

DENIED = "ERR PermissionDenied"  # wasmtime: EPERM (os error 63) for a path that leaves a preopen
NOT_FOUND = "ERR NotFound"  # an absolute host path resolves inside the project, where it is absent


def test_absolute_host_paths_outside_the_grants_resolve_inside_the_project(arena):
    project = arena.project
    attempts = {
        # /etc is the project's planted `etc -> /etc` link, which cannot be followed out
        "read:/etc/passwd": DENIED,
        "read:/etc/hostname": DENIED,
        "read:/proc/self/environ": NOT_FOUND,
        "read:/root/.bashrc": NOT_FOUND,
        f"read:{arena.outside}/secret.txt": NOT_FOUND,
        f"readdir:{arena.outside}": NOT_FOUND,
        "read://etc/passwd": DENIED,
        "read://proc/self/environ": NOT_FOUND,
        # the project's host path leads nowhere else: not up, not through its planted links
        f"read:{project}/../outside/secret.txt": DENIED,
        f"readdir:{project}/..": DENIED,
        f"read:{project}/etc/passwd": DENIED,
        f"read:{project}/outside-abs/secret.txt": DENIED,
        f"read:{project}/outside-rel/secret.txt": DENIED,
        f"write:{project}/data/public.txt": DENIED,  # and it is as read-only as `/`
        f"write:{project}/new.txt": DENIED,
    }
    here = ["read:/data/public.txt", "readdir:/", f"read:{project}/data/public.txt", f"readdir:{project}"]
    with arena.unchanged():
        seen = arena.probe("ro", *attempts, *here)
    for attempt, expected in attempts.items():
        assert seen[attempt].startswith(expected), (attempt, seen[attempt])
    # positive controls: `/` is the project, and only the project; so is its host path
    assert seen["read:/data/public.txt"].startswith("OK")
    listing = seen["readdir:/"].removeprefix("OK ").split(",")
    assert {"Cargo.toml", "data", "tasks", "src"} <= set(listing)
    assert "passwd" not in listing and "secret.txt" not in listing
    assert seen[f"read:{project}/data/public.txt"] == seen["read:/data/public.txt"]
    assert seen[f"readdir:{project}"] == seen["readdir:/"]


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
        # the grant's host path is no wider than the grant
        f"write:{arena.project}/data/public.txt",
        f"write:{arena.project}/Cargo.toml",
        f"write:{arena.project}/out/../data/public.txt",
        f"write:{arena.project}/out/../../outside/w/x",
        f"mkdir:{arena.project}/out/../newdir",
    ]
    ok = ["write:out/ok", "write:/out/ok-abs", "write:./out/./ok-dot", f"write:{arena.project}/out/ok-host"]
    with arena.unchanged():
        seen = arena.probe("rw", *denied, *ok)
    for attempt in denied:
        assert seen[attempt].startswith(DENIED), (attempt, seen[attempt])
    # positive controls: the grant itself works, by relative and absolute guest paths and by
    # its host path (the writable grant wins over the read-only project that contains it)
    for attempt in ok:
        assert seen[attempt] == "OK written", (attempt, seen[attempt])
    assert sorted(p.name for p in clean_out.iterdir()) == ["ok", "ok-abs", "ok-dot", "ok-host"]
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
        # and at its host path
        f"read:{arena.outside}/shared/../secret.txt",
        f"readdir:{arena.outside}/shared/..",
        f"write:{arena.outside}/shared/new",
        f"mkdir:{arena.outside}/shared/newdir",
    ]
    with arena.unchanged():
        seen = arena.probe("rw", *attempts, "read:../outside/shared/ok.txt",
                           "read:../outside/shared/../shared/ok.txt",
                           f"read:{arena.outside}/shared/ok.txt", f"read:{arena.outside}/secret.txt")  # fmt: skip
    for attempt in attempts:
        assert seen[attempt].startswith(DENIED), (attempt, seen[attempt])
    assert seen["read:../outside/shared/ok.txt"].startswith("OK")
    assert seen[f"read:{arena.outside}/shared/ok.txt"] == seen["read:../outside/shared/ok.txt"]
    assert seen[f"read:{arena.outside}/secret.txt"].startswith(NOT_FOUND)  # next to the grant: inside `/`
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
