"""grants: deny by default; every grant named; writes that would widen rights refused."""

from pathlib import Path

import pytest

from cargo_task.config import GrantPath, TaskSettings
from cargo_task.discovery import Owner, Task
from cargo_task.errors import ConfigError
from cargo_task.config import Overrides
from cargo_task.buildview import well_known
from cargo_task.grants import DEFAULT_MEMORY, Mount, grant


def around(roots, tasks=(), environ=None, target=None):
    """The protected set that needs no cargo: what grant() is given in a real run, less
    what `cargo metadata` and the dep-info add (tested end to end)."""
    return lambda: well_known(list(roots), list(tasks), environ or {}, target or roots[0] / "target")


def make_task(root: Path, **settings) -> Task:
    owner = Owner(root, root / "Cargo.toml", "app", "2021", {}, ())
    return Task("gen", root / "tasks" / "gen.rs", owner, TaskSettings(**settings))


def paths(root: Path, *written: str) -> tuple[GrantPath, ...]:
    return tuple(GrantPath(w, root, root / w) for w in written)


def grants_for(root: Path, environ=None, overrides=Overrides(), **settings):
    return grant(make_task(root, **settings), ["a", "--help"], environ or {}, overrides,
                 around([root], environ=environ), root.parent / "cache")  # fmt: skip


@pytest.fixture
def root(tmp_path):
    root = tmp_path / "p"
    for d in ("docs", "src/gen", "tasks"):
        (root / d).mkdir(parents=True)
    (tmp_path / "data").mkdir()
    return root


def test_the_default_is_the_project_read_only_and_the_arguments(root):
    g = grants_for(root, environ={"HOME": "/root", "SECRET": "x"})
    assert g.argv == ("gen", "a", "--help")
    # the project at `/` and at its host path, as CARGO_MANIFEST_DIR names it
    assert g.mounts == (Mount(root.resolve(), "/", False), Mount(root.resolve(), str(root), False))
    assert g.env == (("CARGO_MANIFEST_DIR", str(root)),)  # always, nothing of the host's
    assert (g.network, g.tmp, g.stdin, g.timeout, g.memory) == (False, False, True, None, DEFAULT_MEMORY)


def test_read_and_write_grants_keep_the_path_the_task_uses(root):
    g = grants_for(root, read=paths(root, "docs", "../data"), write=paths(root, "src/gen"))
    assert [(m.guest, m.writable) for m in g.mounts] == [
        ("/", False), ("docs", False), ("../data", False), ("src/gen", True),
        # then each again at its host path, with the same access
        (str(root), False), (str(root / "docs"), False), (str(root.parent / "data"), False),
        (str(root / "src" / "gen"), True),
    ]  # fmt: skip
    assert g.mounts[2].host == g.mounts[6].host == (root.parent / "data").resolve()
    assert g.mounts[3].host == g.mounts[7].host == (root / "src" / "gen").resolve()


def test_an_absolute_grant_is_seen_at_its_absolute_path(root):
    g = grants_for(root, read=(GrantPath(str(root / "docs"), root, root / "docs"),))
    assert g.mounts[1].guest == str(root / "docs")
    assert [m.guest for m in g.mounts] == ["/", str(root / "docs"), str(root)]  # not twice


def test_a_missing_grant_path_is_an_error_before_the_task_starts(root):
    with pytest.raises(ConfigError, match=r"task `gen`: `read` path `nope` \(.*\) does not exist"):
        grants_for(root, read=paths(root, "nope"))


@pytest.mark.parametrize("written", [".", "tasks", "src/..", ".git", ".cargo"])
def test_writes_that_reach_the_manifest_or_tasks_are_refused(root, written):
    (root / ".git").mkdir()
    (root / ".cargo").mkdir()
    with pytest.raises(ConfigError, match="would let the task change") as raised:
        grants_for(root, write=paths(root, written))
    assert "allow-write-manifest = true" in raised.value.help


def test_a_symlink_in_a_grant_is_refused(root, tmp_path):
    (root / "src" / "sneaky").symlink_to(root)
    with pytest.raises(ConfigError, match="goes through a symbolic link and would grant"):
        grants_for(root, write=paths(root, "src/sneaky"))
    (root / "linked").symlink_to(tmp_path / "data")
    with pytest.raises(ConfigError, match="goes through a symbolic link"):
        grants_for(root, read=paths(root, "linked"))


@pytest.mark.parametrize("written", ["../.cargo", "../cargo-home", "../rustup-home"])
def test_cargo_and_rustup_configuration_outside_the_project_is_protected(root, written):
    for d in (".cargo", "cargo-home", "rustup-home"):
        (root.parent / d).mkdir()
    environ = {"CARGO_HOME": str(root.parent / "cargo-home"), "RUSTUP_HOME": str(root.parent / "rustup-home")}
    with pytest.raises(ConfigError, match="would let the task change"):
        grants_for(root, environ, write=paths(root, written))


def test_other_members_of_the_workspace_are_protected(root):
    member = root / "crates" / "other"
    member.mkdir(parents=True)
    task = make_task(root, write=paths(root, "crates"))
    with pytest.raises(ConfigError, match="other/Cargo.toml"):
        grant(task, [], {}, Overrides(), around([root, member]), root.parent / "c")


def test_allow_write_manifest_lets_it_through_and_is_remembered_for_the_warning(root):
    g = grants_for(root, write=paths(root, "."), allow_write_manifest=True)
    assert root.resolve() / "Cargo.toml" in g.writes_protected


def test_the_compiled_code_cache_is_never_writable(root):
    (root.parent / "cache").mkdir()
    with pytest.raises(ConfigError, match="never writable"):
        grants_for(root, write=paths(root, ".."), allow_write_manifest=True)


def test_environment_allowlist_patterns_and_fixed_values(root):
    environ = {"CARGO_HOME": "/c", "CARGO_PKG": "x", "HOME": "/root", "TOKEN": "t"}
    g = grants_for(root, environ, inherit_env=("CARGO_*", "MISSING"), env=(("MODE", "ci"),))
    assert g.env == (("CARGO_HOME", "/c"), ("CARGO_MANIFEST_DIR", str(root)), ("CARGO_PKG", "x"), ("MODE", "ci"))
    everything = grants_for(root, environ, inherit_env=True).env
    assert everything == tuple(sorted({**environ, "CARGO_MANIFEST_DIR": str(root)}.items()))


def test_cargo_manifest_dir_is_always_the_owners_directory(root):
    environ = {"CARGO_MANIFEST_DIR": "/somewhere/else"}
    for settings in ({}, {"inherit_env": True}, {"inherit_env": ("CARGO_*",)}):
        assert ("CARGO_MANIFEST_DIR", str(root)) in grants_for(root, environ, **settings).env


def test_command_line_limits_override_the_table(root):
    g = grants_for(root, overrides=Overrides(timeout=3.0, memory=1 << 20), timeout=30.0, memory=2 << 20)
    assert (g.timeout, g.memory) == (3.0, 1 << 20)


def test_arguments_and_variables_must_be_utf8(root):
    bad = b"caf\xe9".decode("utf-8", "surrogateescape")
    with pytest.raises(ConfigError, match=r"argument 1 is not valid UTF-8: b'caf\\xe9'"):
        grant(make_task(root), [bad], {}, Overrides(), around([root]), root.parent / "c")
    with pytest.raises(ConfigError, match="environment variable `NAME` is not valid UTF-8"):
        grants_for(root, environ={"NAME": bad}, inherit_env=("NAME",))


def test_task_sources_and_ancestor_git_are_protected(root, tmp_path):
    (root / "tools").mkdir()
    (root / "tools" / "report.rs").write_text("fn main() {}")
    (tmp_path / ".git").mkdir()
    report = make_task(root)._replace(name="report", source=root / "tools" / "report.rs")
    for written in ("tools", "../.git"):
        task = make_task(root, write=paths(root, written))
        with pytest.raises(ConfigError, match="would let the task change"):
            grant(task, [], {}, Overrides(), around([root], [report]), root.parent / "c")


def test_a_members_grant_is_relative_to_the_members_manifest(root):
    member = root / "crates" / "m"
    (member / "out").mkdir(parents=True)
    task = make_task(root, write=(GrantPath("out", member, member / "out"),))
    g = grant(task, [], {}, Overrides(), around([root]), root.parent / "c")
    assert g.mounts[1] == Mount(member.resolve() / "out", "crates/m/out", True)
    assert g.mounts[3] == Mount(member.resolve() / "out", str(member / "out"), True)


@pytest.mark.parametrize(("written", "allowed"), [
    ("target/dist", True), ("target/doc", True), ("target", False), ("target/debug", False),
    ("target/release", False), ("target/cargo-task", False), ("target/wasm32-wasip2", False),
])
def test_cargo_output_is_protected_but_other_target_directories_may_be_granted(root, written, allowed):
    for d in ("dist", "doc", "debug", "release", "cargo-task", "wasm32-wasip2/debug"):
        (root / "target" / d).mkdir(parents=True, exist_ok=True)
    if allowed:
        assert grants_for(root, write=paths(root, written)).mounts[1].writable
    else:
        with pytest.raises(ConfigError, match="would let the task change"):
            grants_for(root, write=paths(root, written))


def test_a_file_is_granted_alone_at_its_directory(root):
    (root / "CHANGELOG.md").write_text("")
    (root / "docs" / "notes.md").write_text("")
    (root.parent / "data" / "config.toml").write_text("")
    g = grants_for(root, write=paths(root, "CHANGELOG.md", "docs/notes.md"),
                   read=paths(root, "../data/config.toml", "docs/notes.md"))  # fmt: skip
    assert [(f.host, f.guests, f.writable) for f in g.files] == [
        ((root.parent / "data" / "config.toml").resolve(), ("../data", str(root.parent / "data")), False),
        ((root / "CHANGELOG.md").resolve(), (".", str(root)), True),
        ((root / "docs" / "notes.md").resolve(), ("docs", str(root / "docs")), True),  # written wins
    ]  # fmt: skip
    assert all(m.host.is_dir() for m in g.mounts)  # no directory of theirs is mounted


def test_a_file_a_directory_grant_already_gives_needs_no_grant_of_its_own(root):
    (root / "src" / "gen" / "a.rs").write_text("")
    (root / "docs" / "notes.md").write_text("")
    g = grants_for(root, write=paths(root, "src/gen", "src/gen/a.rs"), read=paths(root, "docs/notes.md"))
    assert g.files == ()  # a.rs is in a writable directory; notes.md in the readable project


def test_a_protected_file_is_refused_like_a_directory(root):
    (root / "Cargo.toml").write_text("")
    with pytest.raises(ConfigError, match="`write` path `Cargo.toml` would let the task change"):
        grants_for(root, write=paths(root, "Cargo.toml"))
