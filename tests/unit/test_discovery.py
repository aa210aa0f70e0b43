"""workspace + discovery: which tasks a run sees, from where, with which settings."""

from pathlib import Path

import pytest

from cargo_task.discovery import discover, doc_summary, task_files
from cargo_task.errors import ConfigError
from cargo_task.workspace import locate


def write(root: Path, files: dict[str, str]) -> None:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


PACKAGE = '[package]\nname = "app"\nversion = "0.1.0"\n'


def tasks_of(root: Path, cwd: Path | None = None, package: str | None = None, manifest: str | None = None):
    return discover(locate(manifest, package, cwd or root, {}))


def test_files_and_directories_are_tasks_other_rs_files_are_modules(tmp_path):
    write(tmp_path, {
        "Cargo.toml": PACKAGE,
        "tasks/codegen.rs": "//! Generate code.\nfn main() {}\n",
        "tasks/release/main.rs": "fn main() {}\n",
        "tasks/shared/mod.rs": "pub fn f() {}\n",
        "tasks/README.md": "not a task",
    })  # fmt: skip
    tasks = tasks_of(tmp_path)
    assert list(tasks) == ["codegen", "release"]
    assert tasks["codegen"].description == "Generate code."
    assert tasks["release"].source == tmp_path / "tasks" / "release" / "main.rs"
    assert tasks["codegen"].owner.root == tmp_path


def test_found_from_a_subdirectory_like_cargo(tmp_path):
    write(tmp_path, {"Cargo.toml": PACKAGE, "tasks/a.rs": "", "src/deep/x.rs": ""})
    assert list(tasks_of(tmp_path, cwd=tmp_path / "src" / "deep")) == ["a"]


def test_description_key_wins_over_doc_comment(tmp_path):
    write(tmp_path, {
        "Cargo.toml": PACKAGE + '[package.metadata.tasks.a]\ndescription = "From the table"\n',
        "tasks/a.rs": "//! From the file\n",
    })  # fmt: skip
    assert tasks_of(tmp_path)["a"].description == "From the table"


def test_path_key_points_at_a_file_elsewhere(tmp_path):
    write(tmp_path, {
        "Cargo.toml": PACKAGE + '[package.metadata.tasks.gen]\npath = "tools/gen.rs"\n',
        "tools/gen.rs": "//! Elsewhere\nfn main() {}\n",
    })  # fmt: skip
    assert tasks_of(tmp_path)["gen"].source == tmp_path / "tools" / "gen.rs"


@pytest.mark.parametrize(
    ("files", "message", "help"),
    [
        ({"Cargo.toml": PACKAGE + "[package.metadata.tasks.ghost]\n"},
         "task `ghost` is configured in `{root}/Cargo.toml` but has no file", "create `{root}/tasks/ghost.rs`"),
        ({"Cargo.toml": PACKAGE + '[package.metadata.tasks.g]\npath = "nope.rs"\n'},
         'task `g` in `{root}/Cargo.toml` has `path = "{root}/nope.rs"`, which is not a file', None),
        ({"Cargo.toml": PACKAGE, "tasks/a.rs": "", "tasks/a/main.rs": ""},
         "task `a` is defined twice", None),
        ({"Cargo.toml": PACKAGE, "tasks/9lives.rs": ""}, "invalid task name `9lives`", None),
        ({"Cargo.toml": "[package\n"}, "failed to parse manifest at `{root}/Cargo.toml`", None),
        ({"Cargo.toml": PACKAGE + "[package.metadata]\ntasks = 3\n"},
         "`package.metadata.tasks` in `{root}/Cargo.toml` must be a table", None),
        ({"Cargo.toml": '[dependencies]\nx = "1"\n'}, "has neither a [package] nor a [workspace]", None),
        ({"Cargo.toml": PACKAGE + "[package.metadata.task.a]\nwrite = []\n"},
         "unknown table `package.metadata.task` in `{root}/Cargo.toml`", "did you mean `package.metadata.tasks`?"),
        ({"Cargo.toml": PACKAGE + "[package.metadata.taks.a]\nwrite = []\n"},
         "unknown table `package.metadata.taks`", "did you mean `package.metadata.tasks`?"),
        ({"Cargo.toml": PACKAGE + '[package.metadata.task-dependency]\nheck = "1"\n'},
         "unknown table `package.metadata.task-dependency`", "did you mean `package.metadata.task-dependencies`?"),
        ({"Cargo.toml": '[package]\nname = 3\n'}, "`package.name` in `{root}/Cargo.toml` must be a string", None),
        ({"Cargo.toml": 'package = 3\n[workspace]\n'}, "`package` in `{root}/Cargo.toml` must be a table", None),
    ],
)
def test_bad_projects_get_one_clear_message(tmp_path, files, message, help):
    write(tmp_path, files)
    with pytest.raises(ConfigError) as raised:
        tasks_of(tmp_path)
    assert message.format(root=tmp_path) in raised.value.message
    if help:
        assert help.format(root=tmp_path) in raised.value.help


WORKSPACE = """
[workspace]
members = ["crates/*"]
exclude = ["crates/skipped"]

[workspace.metadata.tasks]
fmt = { description = "Workspace fmt", timeout = "10s" }

[workspace.metadata.task-dependencies]
heck = "0.5"
"""


def workspace(tmp_path):
    write(tmp_path, {
        "Cargo.toml": WORKSPACE,
        "tasks/fmt.rs": "", "tasks/lint.rs": "",
        "crates/app/Cargo.toml": PACKAGE + '[package.metadata.tasks]\nfmt = { timeout = "20s" }\n'
        '[package.metadata.task-dependencies]\nitoa = "1"\n',
        "crates/app/tasks/lint.rs": "//! The app's own lint\n",
        "crates/app/tasks/only.rs": "",
        "crates/lib/Cargo.toml": '[package]\nname = "lib"\nversion = "0.1.0"\n',
        "crates/skipped/Cargo.toml": '[package]\nname = "skipped"\nversion = "0.1.0"\n',
    })  # fmt: skip


def test_virtual_workspace_root_lists_workspace_tasks(tmp_path):
    workspace(tmp_path)
    tasks = tasks_of(tmp_path)
    assert list(tasks) == ["fmt", "lint"]
    assert tasks["fmt"].settings.timeout == 10.0
    assert tasks["fmt"].owner.dependencies == {"heck": {"version": "0.5"}}


def test_a_member_extends_and_overrides_the_workspace(tmp_path):
    workspace(tmp_path)
    member = tmp_path / "crates" / "app"
    tasks = tasks_of(tmp_path, cwd=member)
    assert list(tasks) == ["fmt", "lint", "only"]
    assert tasks["fmt"].owner.root == tmp_path  # the workspace's file...
    assert tasks["fmt"].settings.timeout == 20.0  # ...with the member's settings over it
    assert tasks["fmt"].settings.description == "Workspace fmt"
    assert tasks["lint"].source == member / "tasks" / "lint.rs"  # the member's own wins
    assert tasks["only"].owner.dependencies == {"heck": {"version": "0.5"}, "itoa": {"version": "1"}}


def test_package_flag_picks_a_member_from_the_root(tmp_path):
    workspace(tmp_path)
    assert list(tasks_of(tmp_path, package="app")) == ["fmt", "lint", "only"]
    with pytest.raises(ConfigError, match="package `nope` is not a member") as raised:
        tasks_of(tmp_path, package="nope")
    assert "app" in raised.value.help and "skipped" not in raised.value.help


def test_excluded_directories_are_not_members(tmp_path):
    workspace(tmp_path)
    project = locate(None, None, tmp_path / "crates" / "skipped", {})
    assert project.workspace is None


def test_manifest_path_must_name_a_cargo_toml(tmp_path):
    workspace(tmp_path)
    with pytest.raises(ConfigError, match="must be a path to a Cargo.toml file"):
        locate(str(tmp_path), None, tmp_path, {})
    with pytest.raises(ConfigError, match="does not exist"):
        locate(str(tmp_path / "x" / "Cargo.toml"), None, tmp_path, {})


def test_no_manifest_anywhere(tmp_path):
    with pytest.raises(ConfigError, match="could not find `Cargo.toml`") as raised:
        locate(None, None, tmp_path, {})
    assert "--manifest-path" in raised.value.help


def test_target_dir_follows_cargo_target_dir(tmp_path):
    workspace(tmp_path)
    assert locate(None, None, tmp_path, {}).target_dir == tmp_path / "target"
    assert locate(None, None, tmp_path, {"CARGO_TARGET_DIR": str(tmp_path / "t")}).target_dir == tmp_path / "t"


def test_doc_summary_is_the_first_doc_line(tmp_path):
    source = tmp_path / "a.rs"
    source.write_text("#![allow(unused)]\n//!\n//!   Summary here.\n//! More.\nfn main() {}\n")
    assert doc_summary(source) == "Summary here."
    source.write_text("// plain comment\n//! too late\n")
    assert doc_summary(source) == ""


@pytest.mark.parametrize(
    ("text", "summary"),
    [
        ("//! Plain.\n", "Plain."),
        ("//! # Release notes\n//!\n//! Collect them.\n", "Release notes"),
        ("//! ## Sub heading ##\n", "Sub heading"),
        ("//! # C#\n", "C#"),
        ("//!#\n//! After an empty heading.\n", "After an empty heading."),
        ("//! #hashtag is prose\n", "#hashtag is prose"),
        ("//! ####### seven is not a heading\n", "####### seven is not a heading"),
        ("//! ```\n//! cargo task gen\n//! ```\n//! Generate code.\n", "Generate code."),
        ("//! ```sh\n//! # not a heading\n//! ```\n//! After the fence.\n", "After the fence."),
        ("//! ~~~~\n//! ~~~ still inside\n//! ~~~~\n//! Tilde fence.\n", "Tilde fence."),
        ("//! ````\n//! ```\n//! ````\n//! Longer fence.\n", "Longer fence."),
        ("//! ```\n//! never closed\n", ""),
        ("//! ---\n//! ===\n//! ...\n//! After the rules.\n", "After the rules."),
        ("//!\n//!   \n\n//! After blank lines.\n", "After blank lines."),
        ("#![allow(unused)]\n//! ```\n//! x\n//! ```\n#![deny(warnings)]\n//! After attributes.\n", "After attributes."),
        ("//! ```\n//! x\n//! ```\nfn main() {}\n//! Not leading.\n", ""),
        ("//! Title\n//! =====\n", "Title"),
        ("\r\n//! # Windows\r\n", "Windows"),
        ("fn main() {}\n", ""),
        ("", ""),
    ],
)
def test_doc_summary_is_the_first_line_of_prose(tmp_path, text, summary):
    source = tmp_path / "a.rs"
    source.write_bytes(text.encode())
    assert doc_summary(source) == summary


def test_doc_summary_reads_only_the_head_and_no_half_line(tmp_path):
    source = tmp_path / "a.rs"
    fence = "//! ```\n" + "//! code\n" * 600 + "//! ```\n//! Too far.\n"
    source.write_text(fence)
    assert doc_summary(source) == ""
    cut = "//!\n" * 1020 + "//! Cut é here and longer than the rest of the head\n"
    source.write_text(cut)
    assert 4080 == len("//!\n" * 1020) and doc_summary(source) == ""
    source.write_text("//!\n" * 1000 + "//! Whole line.\n")
    assert doc_summary(source) == "Whole line."


def test_no_tasks_directory_means_no_tasks(tmp_path):
    assert task_files(tmp_path / "tasks") == {}


def test_parsed_manifests_are_kept_until_the_file_changes(tmp_path):
    from cargo_task.workspace import read_manifest

    kept = tmp_path / "kept"
    manifest = tmp_path / "Cargo.toml"
    manifest.write_text('[package]\nname = "one"\nversion = "0.1.0"\n')
    assert read_manifest(manifest, kept).package_name == "one"
    [entry] = kept.iterdir()
    assert read_manifest(manifest, kept).package_name == "one"
    manifest.write_text('[package]\nname = "two"\nversion = "0.1.0"\n')
    assert read_manifest(manifest, kept).package_name == "two"
    entry.write_text("{garbage")
    assert read_manifest(manifest, kept).package_name == "two"
    manifest.write_text('[package]\nname = "dated"\nversion = "0.1.0"\n[package.metadata]\nwhen = 1979-05-27\n')
    assert read_manifest(manifest, kept).package_name == "dated"  # no JSON form: not kept
    assert read_manifest(manifest, kept).package_name == "dated"


def test_a_kept_parse_is_used_without_tomllib(tmp_path):
    import subprocess
    import sys

    (tmp_path / "Cargo.toml").write_text('[package]\nname = "a"\nversion = "0.1.0"\n')
    code = (
        "import sys; from pathlib import Path; from cargo_task.workspace import read_manifest; "
        f"m = read_manifest(Path({str(tmp_path / 'Cargo.toml')!r}), Path({str(tmp_path / 'kept')!r})); "
        "print('tomllib' in sys.modules)"
    )
    first = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    second = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert (first.stdout.strip(), second.stdout.strip()) == ("True", "False")
