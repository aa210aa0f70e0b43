"""config: Cargo.toml task tables -> settings, and one message per kind of bad input."""

from pathlib import Path

import pytest

from cargo_task.config import GrantPath, TaskSettings, parse_dependency, parse_duration, parse_size, parse_task
from cargo_task.errors import ConfigError

MANIFEST = Path("/p/Cargo.toml")
SECTION = "package.metadata.tasks"


def test_a_full_table_is_parsed_and_paths_resolved():
    settings = parse_task(MANIFEST, SECTION, "gen", {
        "description": "Generate", "inherit-env": ["CARGO_*"], "env": {"B": "2", "A": "1"},
        "read": ["docs", "../data"], "write": ["src/gen"], "network": True, "stdin": False,
        "tmp": True, "timeout": "1m", "memory": "64MiB", "path": "xtask/gen.rs",
    })  # fmt: skip
    assert settings.description == "Generate"
    assert settings.inherit_env == ("CARGO_*",)
    assert settings.env == (("A", "1"), ("B", "2"))
    assert settings.read == (GrantPath("docs", Path("/p"), Path("/p/docs")), GrantPath("../data", Path("/p"), Path("/data")))
    assert settings.write == (GrantPath("src/gen", Path("/p"), Path("/p/src/gen")),)
    assert settings.timeout == 60.0 and settings.memory == 64 << 20
    assert settings.path == Path("/p/xtask/gen.rs")
    assert settings.network is True and settings.stdin is False and settings.tmp is True


@pytest.mark.parametrize(
    ("name", "table", "message", "help"),
    [
        ("gen", {"descripton": "x"}, "unknown key `descripton` in `package.metadata.tasks.gen` of `/p/Cargo.toml`", "did you mean `description`?"),
        ("gen", {"colour": 1}, "unknown key `colour`", "known keys:"),
        ("gen", {"tcp": True}, "`tcp` in `package.metadata.tasks.gen` of `/p/Cargo.toml`: TCP and UDP sockets cannot be granted", "`network = true` grants outbound HTTP"),
        ("gen", {"inherit-env": "HOME"}, "`inherit-env` in `package.metadata.tasks.gen` of `/p/Cargo.toml` must be true, false or a list", None),
        ("gen", {"read": "docs"}, "`read` in `package.metadata.tasks.gen` of `/p/Cargo.toml` must be a list of paths, such as [\"src/generated\", \"CHANGELOG.md\"], not `\"docs\"`", None),
        ("gen", {"write": ["a\nerror: forged"]}, "`write` in `package.metadata.tasks.gen` of `/p/Cargo.toml` must be a list of paths without control characters, not `[\"a\\nerror: forged\"]`", None),
        ("gen", {"network": "yes"}, "`network` in `package.metadata.tasks.gen` of `/p/Cargo.toml` must be true or false", None),
        ("gen", {"timeout": "soon"}, '`timeout` in `package.metadata.tasks.gen` of `/p/Cargo.toml` must be a positive duration such as "30s"', None),
        ("gen", {"memory": "lots"}, '`memory` in `package.metadata.tasks.gen` of `/p/Cargo.toml` must be a positive size up to 1TiB', None),
        ("gen", {"env": {"A": 1}}, "`env` in `package.metadata.tasks.gen` of `/p/Cargo.toml` must be a table of names (no `=`) and string values", None),
        ("gen", {"env": {"A=B": "x"}}, "must be a table of names (no `=`)", None),
        ("gen", {"env": {"Z": "a\x00b"}}, "must be a table of names (no `=`)", None),
        ("build", {}, "invalid task name `build`", "reserved"),
        ("gen", "codegen", "`package.metadata.tasks.gen` of `/p/Cargo.toml` must be a table", None),
        ("1st", {}, "invalid task name `1st` in `package.metadata.tasks` of `/p/Cargo.toml`", "task names start with a letter"),
        ("a b", {}, "invalid task name `a b`", None),
    ],
)
def test_bad_tables_name_the_file_the_key_and_what_is_expected(name, table, message, help):
    with pytest.raises(ConfigError) as raised:
        parse_task(MANIFEST, SECTION, name, table)
    assert message in raised.value.message
    if help:
        assert help in raised.value.help


@pytest.mark.parametrize(("text", "seconds"), [("30s", 30), ("500ms", 0.5), ("5m", 300), ("1h", 3600), ("2", 2), (1.5, 1.5)])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["0s", "-1s", "s", "1d", True, 0, None])
def test_bad_durations(bad):
    with pytest.raises(ValueError):
        parse_duration(bad)


@pytest.mark.parametrize(("text", "size"), [("512MiB", 512 << 20), ("2GiB", 2 << 30), ("100MB", 10**8), ("64KiB", 65536), (4096, 4096), ("10", 10)])
def test_sizes(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("bad", ["0MiB", "1.5GiB", "big", False, -1, "5TB", 2**64 + 1, "2000GiB"])
def test_bad_sizes(bad):
    with pytest.raises(ValueError):
        parse_size(bad)


def test_dependencies_in_cargo_syntax():
    section = "package.metadata.task-dependencies"
    assert parse_dependency(MANIFEST, section, "heck", "0.5") == {"version": "0.5"}
    spec = parse_dependency(MANIFEST, section, "local", {"path": "../local", "features": ["x"]})
    assert spec == {"path": str(Path("/local")), "features": ["x"]}
    with pytest.raises(ConfigError, match="unknown key `verison`") as raised:
        parse_dependency(MANIFEST, section, "heck", {"verison": "1"})
    assert raised.value.help == "did you mean `version`?"
    with pytest.raises(ConfigError, match="must be a version string or a table"):
        parse_dependency(MANIFEST, section, "heck", 5)
    with pytest.raises(ConfigError, match="`version` in `package.metadata.task-dependencies.heck` of `/p/Cargo.toml` must be a string, not `3`"):
        parse_dependency(MANIFEST, section, "heck", {"version": 3})
    with pytest.raises(ConfigError, match="`features` .* must be a list of strings"):
        parse_dependency(MANIFEST, section, "heck", {"version": "1", "features": "x"})
    with pytest.raises(ConfigError, match="built outside the workspace"):
        parse_dependency(MANIFEST, section, "heck", {"workspace": True})
    with pytest.raises(ConfigError, match="invalid crate name `bad name`"):
        parse_dependency(MANIFEST, section, "bad name", "1")


def test_layering_keeps_what_the_upper_table_does_not_say():
    base = TaskSettings(description="ws", network=True, timeout=5.0)
    upper = TaskSettings(timeout=10.0, stdin=False)
    merged = upper.over(base)
    assert (merged.description, merged.network, merged.timeout, merged.stdin) == ("ws", True, 10.0, False)
