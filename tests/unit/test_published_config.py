"""`from` tables, the lock file's text and `--add`'s edit: tables of input -> result."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from cargo_task import adder, lockfile
from cargo_task.config import parse_from, parse_task
from cargo_task.errors import ConfigError

MANIFEST = Path("/work/project/Cargo.toml")


def test_from_kinds_and_absolute_path():
    registry = parse_from(MANIFEST, "t", {"crate": "task-x", "version": "0.2"}, "package.metadata.tasks.x")
    assert (registry.kind, registry.crate, registry.bin, registry.table) == ("registry", "task-x", None, "package.metadata.tasks.x")
    git = parse_from(MANIFEST, "t", {"git": "file:///r", "tag": "v1", "crate": "lint"}, "k")
    assert git.kind == "git" and git.get("tag") == "v1"
    path = parse_from(MANIFEST, "t", {"path": "../tools/x", "bin": "x", "features": ["a"]}, "k")
    assert (path.kind, path.path, path.bin, path.get("features")) == ("path", Path("/work/tools/x"), "x", ("a",))
    hash(path)  # settings are dictionary keys


@pytest.mark.parametrize("table, message", [
    ({"version": "1"}, "does not name the package"),
    ({"crate": "x", "tag": "v1"}, "applies to `git` sources only"),
    ({"git": "u", "crate": "x", "tag": "a", "rev": "b"}, "gives both"),
    ({"git": "u", "path": "p"}, "names two sources"),
    ({"package": "x"}, "unknown key `package`"),
    ({"crate": "x", "vresion": "1"}, "unknown key `vresion`"),
    ({"crate": "x", "features": "a"}, "must be a list of strings"),
    ({"crate": "../x"}, "invalid crate name"),
    ("x", "must be a table"),
])  # fmt: skip
def test_from_errors(table, message):
    with pytest.raises(ConfigError) as caught:
        parse_from(MANIFEST, "`package.metadata.tasks.t`", table, "k")
    assert message in caught.value.message


def test_task_with_path_and_from_is_refused():
    with pytest.raises(ConfigError, match="both `path` and `from`"):
        parse_task(MANIFEST, "package.metadata.tasks", "t", {"path": "a.rs", "from": {"path": "../x"}})


def test_lock_file_round_trip_is_sorted_and_stable(tmp_path):
    path = tmp_path / lockfile.NAME
    b = {"table": "package.metadata.tasks.b", "from": {"crate": "b", "version": "1"}, "package": "b",
         "version": "1.0.2", "source": "registry+x", "checksum": "ab", "commit": None, "bin": "b",
         "description": "", "asks": {"write": ["."]}}  # fmt: skip
    a = {**b, "table": "package.metadata.tasks.a", "asks": {}}
    lockfile.write_entry(path, b)
    lockfile.write_entry(path, a)
    text = path.read_text()
    assert text.startswith(lockfile.HEADER) and text.index(".tasks.a") < text.index(".tasks.b")
    assert "commit" not in text and 'description' not in text
    assert lockfile.read(path)["package.metadata.tasks.b"]["asks"] == {"write": ["."]}
    lockfile.write_entry(path, a)
    assert path.read_text() == text


def test_stale_entries_and_refusals():
    entry = {"from": {"crate": "x", "version": "1"}}
    assert lockfile.stale_reason(None, {}) == "it has no entry in the lock file"
    assert lockfile.stale_reason(entry, {"crate": "x", "version": "1"}) is None
    assert "changed" in lockfile.stale_reason(entry, {"crate": "x", "version": "2"})
    assert lockfile.refuses_changes(True, {}) == "--locked"
    assert lockfile.refuses_changes(False, {"CI": "true"}) == "CI=true"
    assert lockfile.refuses_changes(False, {"CI": ""}) is None


def test_bad_lock_files_are_config_errors(tmp_path):
    path = tmp_path / lockfile.NAME
    for text, message in (("version = 9\n", "version 9"), ("[[task]]\nx = 1\n", "version None"),
                          ("version = 1\n[[task]]\nx = 1\n", "needs a `table`"), ("= =", "failed to parse")):  # fmt: skip
        path.write_text(text)
        with pytest.raises(ConfigError, match=message):
            lockfile.read(path)


@pytest.mark.parametrize("crate, name", [("task-sort-deps", "sort-deps"), ("lint-task", "lint"),
                                         ("cargo-task-fmt", "fmt"), ("task", "task"), ("tidy", "tidy")])  # fmt: skip
def test_default_task_names(crate, name):
    assert adder.default_name(crate) == name


def test_added_table_keeps_the_text_and_reads_back():
    original = "[package] # keep\nname = 'x'"  # no final newline
    table = adder.table_text("package.metadata.tasks.t", {"crate": "c", "version": "1"}, "c", {"write": ["."]})
    text = adder.appended(original, table)
    assert text.startswith(original + "\n\n[package.metadata.tasks.t]\n")
    assert '# write = ["."]' in text
    assert tomllib.loads(text)["package"]["metadata"]["tasks"]["t"] == {"from": {"crate": "c", "version": "1"}}
    assert adder._reads_back(text, "package", "t", {"crate": "c", "version": "1"})
    inline = "[package]\nname = 'x'\nmetadata = { tasks = {} }\n"
    assert not adder._reads_back(adder.appended(inline, table), "package", "t", {"crate": "c", "version": "1"})


@pytest.mark.parametrize("spec", ["", "@1", "a b", "x@"])
def test_bad_add_specs(spec):
    with pytest.raises(ConfigError, match="invalid package"):
        adder.parse_spec(spec)


def test_build_arguments_carry_the_profile_and_features():
    from cargo_task.published import build_arguments

    plain = build_arguments(parse_from(MANIFEST, "t", {"crate": "x"}, "k"))
    assert plain == ("--config", "profile.dev.debug=false", "--config", 'profile.dev.strip="debuginfo"',
                     "--config", "profile.dev.opt-level=1", "--config", "profile.dev.build-override.opt-level=0")
    chosen = build_arguments(parse_from(MANIFEST, "t", {"crate": "x", "features": ["a", "b"], "default-features": False}, "k"))
    assert chosen[len(plain):] == ("--features", "a,b", "--no-default-features")


def test_command_line_of_published_tasks():
    from cargo_task.cli import parse_options, split_arguments

    options, task, rest = split_arguments(["task", "--locked", "--add", "task-x@1", "x"])
    assert parse_options(options)._replace(verbose=0) == parse_options([])._replace(locked=True, add="task-x@1")
    assert (task, rest) == ("x", [])
    assert parse_options(["--update"]).update


@pytest.mark.parametrize("argv, message", [
    (["--add", "x", "--update"], "`--add` cannot be used with `--update`"),
    (["--update", "--explain", "x"], "cannot be used with `--explain`"),
    (["--add", "x", "a", "b"], "adds one task"),
    (["--add"], "a value is required for `--add`"),
])  # fmt: skip
def test_command_line_mistakes(argv, message, capsys):
    from cargo_task.cli import main

    assert main(argv) == 1
    assert message in capsys.readouterr().err


def test_a_lock_file_holding_what_it_never_writes_is_an_error_not_a_traceback(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    path = tmp_path / lockfile.NAME
    path.write_text('version = 1\n\n[[task]]\ntable = "package.metadata.tasks.x"\nwhen = 2026-12-02\n')
    with pytest.raises(ConfigError, match="holds a value cargo-task never writes") as raised:
        lockfile.read(path)
    assert "cargo task --update" in raised.value.help
