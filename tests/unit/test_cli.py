"""cli: argument splitting, cargo conventions, one-screen errors."""

import json
import subprocess
import sys

import pytest

from cargo_task import __version__
from cargo_task.cli import Options, main, parse_options, split_arguments


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["task"], ([], None, [])),
        (["task", "gen", "--help", "-v"], ([], "gen", ["--help", "-v"])),
        (["-q", "--color", "never", "gen", "x"], (["-q", "--color", "never"], "gen", ["x"])),
        (["--manifest-path=a/Cargo.toml", "-p", "app", "gen"], (["--manifest-path=a/Cargo.toml", "-p", "app"], "gen", [])),
        (["--", "gen", "--", "x"], ([], "gen", ["--", "x"])),
        (["--explain", "gen"], (["--explain", "gen"], None, [])),
        (["-vv", "gen"], (["-vv"], "gen", [])),
    ],
)
def test_split_arguments(argv, expected):
    assert split_arguments(argv) == expected


def test_version(capsys):
    assert main(["task", "--version"]) == 0
    assert capsys.readouterr().out.strip() == f"cargo-task-wasm {__version__}"


def test_help_mentions_the_task_arguments(capsys):
    assert main(["-h"]) == 0
    out = capsys.readouterr().out
    assert "Usage: cargo task [OPTIONS] [TASK] [ARGS]..." in out and "--explain <TASK>" in out


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        ([], Options()),
        (["-q", "--color", "never"], Options(quiet=True, color="never")),
        (["-v", "-vv", "--verbose"], Options(verbose=4)),
        (["-papp", "--manifest-path=x/Cargo.toml"], Options(package="app", manifest_path="x/Cargo.toml")),
        (["--timeout", "2s", "--memory=1MiB"], Options(timeout=2.0, memory=1 << 20)),
        (["--explain", "gen", "--list", "--json"], Options(explain="gen", list=True, json=True)),
    ],
)
def test_parse_options(words, expected):
    assert parse_options(words) == expected


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--frobnicate"], "error: unexpected argument `--frobnicate` found"),
        (["--timeout", "soon", "x"], "error: invalid value `soon` for `--timeout`: expected a positive duration"),
        (["--color", "sometimes"], "error: invalid value `sometimes` for `--color`: expected auto, always or never"),
        (["--manifest-path"], "error: a value is required for `--manifest-path` but none was supplied"),
        (["--list=yes"], "error: unexpected argument `--list=yes` found"),
    ],
)
def test_usage_errors_are_cargo_style(capsys, argv, message):
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err == f"{message}\nhelp: for more information, try `cargo task --help`\n" or message in err
    assert "help: for more information, try `cargo task --help`" in err
    assert "Traceback" not in err


def test_listing_and_json(tmp_path, monkeypatch, capsys):
    (tmp_path / "tasks").mkdir()
    (tmp_path / "Cargo.toml").write_text('[package]\nname = "a"\nversion = "0.1.0"\n')
    (tmp_path / "tasks" / "b.rs").write_text("//! Bee\n")
    monkeypatch.chdir(tmp_path)
    assert main(["task"]) == 0
    assert "    b    Bee" in capsys.readouterr().out
    assert main(["task", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == [
        {"name": "b", "description": "Bee", "source": str(tmp_path / "tasks" / "b.rs"),
         "manifest": str(tmp_path / "Cargo.toml")}  # fmt: skip
    ]


def test_extra_words_after_list_or_explain_are_errors(tmp_path, monkeypatch, capsys):
    (tmp_path / "Cargo.toml").write_text('[package]\nname = "a"\nversion = "0.1.0"\n')
    monkeypatch.chdir(tmp_path)
    assert main(["--list", "gen"]) == 1
    assert "error: unexpected argument `gen` after `--list`" in capsys.readouterr().err
    assert main(["--explain", "gen", "boom"]) == 1
    assert "error: unexpected argument `boom` after `--explain`" in capsys.readouterr().err


def test_missing_task_suggests_the_near_name(tmp_path, monkeypatch, capsys):
    (tmp_path / "tasks").mkdir()
    (tmp_path / "Cargo.toml").write_text('[package]\nname = "a"\nversion = "0.1.0"\n')
    (tmp_path / "tasks" / "codegen.rs").write_text("fn main() {}\n")
    monkeypatch.chdir(tmp_path)
    assert main(["task", "codegne"]) == 1
    err = capsys.readouterr().err
    assert "error: no task `codegne`" in err and "`codegen`" in err


def test_listing_help_and_explain_load_neither_wasmtime_nor_subprocess(tmp_path):
    (tmp_path / "tasks").mkdir()
    (tmp_path / "Cargo.toml").write_text('[package]\nname = "a"\nversion = "0.1.0"\n')
    (tmp_path / "tasks" / "b.rs").write_text("fn main() {}\n")
    code = (
        "import sys; from cargo_task.cli import main; "
        "assert main([]) == 0 and main(['--json']) == 0 and main(['-h']) == 0; "
        "assert main(['--explain', 'b']) == 0; "
        "unwanted = ('wasmtime', 'cargo_task.sandbox', 'cargo_task.wasmtime_c', "
        "'subprocess', 'argparse', 'dataclasses'); "
        "loaded = [m for m in unwanted if m in sys.modules]; "
        "assert not loaded, loaded; "
        "assert '_libwasmtime' not in open('/proc/self/maps').read()"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True)
    assert done.returncode == 0, done.stderr.decode()
