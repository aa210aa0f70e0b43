"""Read-only means read-only: every kind of mutation of the read-only project (and of a
`read` grant), through std and through raw WASI 0.2 calls, and the hard-link / rename /
truncate / set-times paths of the 2026 Wasmtime advisories (GHSA-2r75-cxrj-cmph,
GHSA-4ch3-9j33-3pmj, GHSA-vqjp-4c8c-hfgg), kept as regression tests.
"""

from __future__ import annotations

import os

import pytest

DENIED = "ERR PermissionDenied"
MUTATIONS = [
    "write:{f}",
    "append:{f}",
    "truncate:{f}",
    "setlen:{f}",
    "settimes:{f}",
    "settimes-w:{f}",
    "unlink:{f}",
    "rename:{f}:{d}/renamed",
    "hardlink:{f}:{d}/hardlinked",
    "symlink:x:{d}/symlinked",
    "create:{d}/created",
    "write:{d}/created-by-write",
    "mkdir:{d}/newdir",
    "rmdir:{d}/sub",
    "rmtree:{d}",
]


@pytest.mark.parametrize(
    "task, f, d",
    [
        ("ro", "data/public.txt", "data"),
        ("ro", "/Cargo.toml", "/"),
        ("rw", "../outside/shared/ok.txt", "../outside/shared"),  # a `read` grant
    ],
    ids=["project-relative", "project-absolute", "read-grant"],
)
def test_every_mutation_of_a_read_only_grant_fails(arena, clean_out, task, f, d):
    if d == "../outside/shared":
        (arena.outside / "shared" / "sub").mkdir(exist_ok=True)
    else:
        assert (arena.project / "data" / "sub").is_dir()
    attempts = [m.format(f=f, d=d) for m in MUTATIONS]
    with arena.unchanged():
        seen = arena.probe(task, *attempts, f"read:{f}")
    for attempt in attempts:
        assert seen[attempt].startswith(DENIED), (attempt, seen[attempt])
    assert seen[f"read:{f}"].startswith("OK")


def test_read_only_file_cannot_be_linked_or_moved_into_a_writable_grant(arena, clean_out):
    """GHSA-4ch3-9j33-3pmj: a hard link made in a writable preopen to a read-only file would
    let the task rewrite the read-only file through the link."""
    attempts = [
        "hardlink:data/public.txt:out/public-link",
        "hardlink:/Cargo.toml:out/manifest-link",
        "hardlink:../outside/shared/ok.txt:out/shared-link",
        "rename:data/public.txt:out/public-moved",
        "rename:/Cargo.toml:out/Cargo.toml",
        "rename:../outside/shared/ok.txt:out/shared-moved",
        "rename:data/sub:out/sub-moved",
        "rename:out/x:data/x",  # and the other way
        "hardlink:out/x:data/x",
    ]
    clean_out.joinpath("x").write_text("made by the test\n")
    nlink = os.stat(arena.project / "data" / "public.txt").st_nlink
    with arena.unchanged():
        seen = arena.probe("rw", *attempts, "copy:data/public.txt:out/copy")
    for attempt in attempts:
        assert seen[attempt].startswith(DENIED), (attempt, seen[attempt])
    assert seen["copy:data/public.txt:out/copy"] == "OK copied"  # a copy is fine: read + write
    assert os.stat(arena.project / "data" / "public.txt").st_nlink == nlink
    assert sorted(p.name for p in clean_out.iterdir()) == ["copy", "x"]


# -- raw WASI 0.2 (the `wasi` crate), below std and wasi-libc --------------------------

RO_FILE = "data/public.txt"


def test_raw_wasi_preopens_and_their_rights(wasi_arena, clean_wasi_out):
    project, shared = wasi_arena.project, wasi_arena.outside / "shared"
    at_host = [f"flags|{project}", f"flags|{project}/out", f"flags|{shared}"]
    with wasi_arena.unchanged():
        seen = wasi_arena.probe("rawfs", "preopens", "flags|/", "flags|out", "flags|../outside/shared", *at_host)
    # each directory again at its host path (where CARGO_MANIFEST_DIR points), nothing more
    assert seen["preopens"] == f"OK /,../outside/shared,out,{project},{shared},{project}/out"
    assert seen["flags|/"] == seen[f"flags|{project}"] == "OK DescriptorFlags(READ)"
    assert seen["flags|../outside/shared"] == seen[f"flags|{shared}"] == "OK DescriptorFlags(READ)"
    assert seen["flags|out"] == seen[f"flags|{project}/out"] == "OK DescriptorFlags(READ | MUTATE_DIRECTORY)"


def test_raw_wasi_truncate_on_read_only_open(wasi_arena, clean_wasi_out):
    """GHSA-2r75-cxrj-cmph: open-at with TRUNCATE and only READ rights emptied the file."""
    os.symlink(f"../{RO_FILE}", clean_wasi_out / "to-ro")
    attempts = {
        f"open-trunc|/|{RO_FILE}": "ERR not-permitted",
        f"open-trunc-nofollow|/|{RO_FILE}": "ERR not-permitted",
        "open-trunc|../outside/shared|ok.txt": "ERR not-permitted",
        "open-trunc|out|to-ro": "ERR not-permitted",  # via a link in the writable grant
        "open-trunc-nofollow|out|to-ro": "ERR loop",
        "open-create|/|data/new": "ERR not-permitted",
        f"open-write|/|{RO_FILE}": "ERR not-permitted",
        f"setsize-fd|/|{RO_FILE}": "ERR not-permitted",
        f"write-fd|/|{RO_FILE}": "ERR not-permitted",
    }
    with wasi_arena.unchanged():
        seen = wasi_arena.probe("rawfs", *attempts, f"read|/|{RO_FILE}")
    for attempt, outcome in attempts.items():
        assert seen[attempt] == outcome, (attempt, seen[attempt])
    assert seen[f"read|/|{RO_FILE}"].startswith("OK 36 bytes")


def test_raw_wasi_set_times_on_read_only(wasi_arena, clean_wasi_out):
    attempts = [
        f"settimes-at|/|{RO_FILE}",
        "settimes-at|/|data",
        "settimes-at|../outside/shared|ok.txt",
        f"settimes-fd|/|{RO_FILE}",
        "settimes-fd|/|.",
    ]
    with wasi_arena.unchanged():
        seen = wasi_arena.probe("rawfs", *attempts)
    for attempt in attempts:
        assert seen[attempt] == "ERR not-permitted", (attempt, seen[attempt])


def test_raw_wasi_hard_link_and_rename_across_preopens(wasi_arena, clean_wasi_out):
    """GHSA-4ch3-9j33-3pmj: link-at / rename-at checked the directories, not the files."""
    (clean_wasi_out / "mine").write_text("made by the test\n")
    attempts = [
        f"link|/|{RO_FILE}|out|linked",
        "link|../outside/shared|ok.txt|out|linked2",
        f"rename|/|{RO_FILE}|out|moved",
        "rename|../outside/shared|ok.txt|out|moved2",
        "rename|out|mine|/|data/mine",
        "link|out|mine|/|data/mine",
        "link|out|mine|../outside/shared|mine",
    ]
    with wasi_arena.unchanged():
        seen = wasi_arena.probe("rawfs", *attempts, "link|out|mine|out|mine2")
    for attempt in attempts:
        assert seen[attempt] == "ERR not-permitted", (attempt, seen[attempt])
    assert seen["link|out|mine|out|mine2"] == "OK linked"  # inside one writable grant: fine
    assert os.stat(wasi_arena.project / RO_FILE).st_nlink == 1


def test_raw_wasi_directory_opened_for_mutation_stays_read_only(wasi_arena, clean_wasi_out):
    """Asking for MUTATE_DIRECTORY on a read-only directory yields a read-only descriptor."""
    with wasi_arena.unchanged():
        seen = wasi_arena.probe("rawfs", "mutdir|/|data|public.txt", "mutdir|/|.|Cargo.toml")
    for attempt in ("mutdir|/|data|public.txt", "mutdir|/|.|Cargo.toml"):
        outcome = seen[attempt]
        assert outcome.startswith("OK flags=DescriptorFlags(READ) "), outcome
        for operation in ("mkdir", "create", "trunc", "unlink"):
            assert f'{operation}=Err("not-permitted")' in outcome, outcome


def test_raw_wasi_trailing_slash_symlinks(wasi_arena, clean_wasi_out):
    """GHSA-vqjp-4c8c-hfgg: symlinks and paths with trailing slashes escaped the sandbox."""
    targets = ["../../outside/", "../../outside//", "..//..//outside/.", "../", "../../outside/secret.txt/"]
    made = [f"symlink|out|{t}|l{i}" for i, t in enumerate(targets)]
    followed = []
    for i in range(len(targets)):
        followed += [f"readdir|out|l{i}/", f"read|out|l{i}/secret.txt", f"read|out|l{i}//secret.txt",
                     f"open-write|out|l{i}/", f"open-read|out|l{i}/."]  # fmt: skip
    followed += ["read|out|l3/outside/secret.txt", "read|out|l3/data/public.txt",
                 "open-create|out|l0/created", "mkdir|out|l0/made/", "read|/|outside-rel/secret.txt",
                 "readdir|/|outside-rel/", "readdir|/|outside-abs/", "readdir|/|home/"]  # fmt: skip
    with wasi_arena.unchanged():
        seen = wasi_arena.probe("rawfs", *made, *followed)
    for attempt in made:
        assert seen[attempt] == "OK symlinked", (attempt, seen[attempt])
    for attempt in followed:
        assert seen[attempt].startswith("ERR "), (attempt, seen[attempt])
        assert seen[attempt] in ("ERR not-permitted", "ERR not-directory", "ERR no-entry"), (
            attempt, seen[attempt])  # fmt: skip
