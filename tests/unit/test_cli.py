"""cli: argument splitting, cargo conventions, one-screen errors."""

import json
import subprocess
import sys

import pytest

from cargo_task import __version__
from cargo_task.cli import main, split_arguments


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
    with pytest.raises(SystemExit) as raised:
        main(["task", "--version"])
    assert raised.value.code == 0
    assert capsys.readouterr().out.strip() == f"cargo-task-wasm {__version__}"


def test_help_mentions_the_task_arguments(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "cargo task [OPTIONS] [TASK] [ARGS]..." in out and "--explain" in out


def test_unknown_option_is_a_cargo_style_error(capsys):
    assert main(["--frobnicate"]) == 1
    err = capsys.readouterr().err
    assert "error: unrecognized arguments: --frobnicate" in err
    assert "help: for more information, try `cargo task --help`" in err
    assert "Traceback" not in err


def test_bad_limit_value(capsys):
    assert main(["--timeout", "soon", "x"]) == 1
    assert "expected a positive duration" in capsys.readouterr().err


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


def test_missing_task_suggests_the_near_name(tmp_path, monkeypatch, capsys):
    (tmp_path / "tasks").mkdir()
    (tmp_path / "Cargo.toml").write_text('[package]\nname = "a"\nversion = "0.1.0"\n')
    (tmp_path / "tasks" / "codegen.rs").write_text("fn main() {}\n")
    monkeypatch.chdir(tmp_path)
    assert main(["task", "codegne"]) == 1
    err = capsys.readouterr().err
    assert "error: no task `codegne`" in err and "`codegen`" in err


def test_listing_does_not_load_wasmtime():
    code = (
        "import sys; from cargo_task.cli import main; from cargo_task import explain; "
        "assert 'wasmtime' not in sys.modules, sorted(m for m in sys.modules if 'wasm' in m); "
        "assert 'subprocess' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
