"""`cargo task --build [NAME...]`: build and precompile without running, and leave the next
run warm. A spy stands in for cargo (as in test_freshness.py): it logs each call beside the
`--manifest-path` it was given, the one place a confined build may write."""

from __future__ import annotations


import pytest

from tests.conftest import cargo_calls, cargo_spy


@pytest.fixture
def built(project, cargo_task, tmp_path):
    spy = cargo_spy(tmp_path)
    project.manifest()
    project.write("tasks/a.rs", '//! Say a.\nfn main() { println!("a ran"); }\n')
    project.write("tasks/b.rs", 'fn main() { println!("b ran"); }\n')

    def builds() -> list[str]:
        """The tasks cargo was asked to build so far, in order."""
        return [words[words.index("--bin") + 1] for words in cargo_calls(project.root) if words[0] == "build"]

    def tool(*args: str):
        return cargo_task(*args, cwd=project.root, CARGO=str(spy))

    return tool, builds


def test_build_without_names_builds_every_task_and_runs_none(built):
    tool, builds = built
    result = tool("--build")
    assert result.returncode == 0, result.stderr
    assert sorted(builds()) == ["a", "b"]
    assert "ran" not in result.stdout
    assert "Finished task `a`" in result.stderr and "Finished task `b`" in result.stderr
    for name in ("a", "b"):  # precompiled and recorded: the next run starts no cargo
        run = tool("-q", name)
        assert (run.returncode, run.stdout) == (0, f"{name} ran\n"), run.stderr
    assert sorted(builds()) == ["a", "b"]
    again = tool("-q", "--build")  # fresh: nothing to build, nothing said
    assert (again.returncode, again.stderr) == (0, "")
    assert sorted(builds()) == ["a", "b"]


def test_build_with_a_name_builds_that_task_only(built):
    tool, builds = built
    result = tool("--build", "b")
    assert result.returncode == 0, result.stderr
    assert builds() == ["b"]
    assert "Finished task `b`" in result.stderr and "`a`" not in result.stderr
    assert tool("-q", "b").stdout == "b ran\n"
    assert builds() == ["b"]
    assert tool("-q", "a").stdout == "a ran\n"
    assert builds() == ["b", "a"]


def test_a_broken_task_fails_the_build_and_is_named(built, project):
    tool, builds = built
    project.write("tasks/broken.rs", "fn main() { let x: u32 = \"text\"; }\n")
    result = tool("--build")
    assert result.returncode == 1, result.stderr
    assert "error: could not compile task `broken`" in result.stderr
    assert "mismatched types" in result.stderr  # cargo's own diagnostic, unchanged
    named = tool("--build", "a")  # the others still build when named
    assert named.returncode == 0, named.stderr


def test_build_refuses_what_a_run_refuses_before_building(built, project):
    tool, builds = built
    result = tool("--build", "a", "nope")
    assert result.returncode == 1
    assert "error: no task `nope`" in result.stderr
    assert builds() == []  # every name is checked first
    project.manifest('[package.metadata.tasks]\nb = { write = ["tasks"] }\n')
    result = tool("--build", "b")
    assert result.returncode == 1
    assert "error: task `b`: `write` path" in result.stderr
    assert "allow-write-manifest = true" in result.stderr
    assert builds() == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--build", "--list"], "`--build` cannot be used with `--list`"),
        (["--build", "--explain", "a"], "`--build` cannot be used with `--explain`"),
        (["--build", "a", "-q"], "unexpected argument `-q` after the task names: options go first"),
    ],
)
def test_build_usage_errors(project, cargo_task, args, message):
    project.manifest()
    project.write("tasks/a.rs", "fn main() {}\n")
    result = cargo_task(*args, cwd=project.root)
    assert result.returncode == 1
    assert f"error: {message}" in result.stderr
