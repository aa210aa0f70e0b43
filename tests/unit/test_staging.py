"""staging: what a one-file grant shows the task, and what reaches the host afterwards.
(The task's side is end to end in tests/e2e/test_file_grants.py.)"""

from pathlib import Path

import pytest

from cargo_task import staging
from cargo_task.errors import SandboxError
from cargo_task.grants import FileGrant, Grants, Mount


def grants(root: Path, *files: FileGrant) -> Grants:
    mounts = (Mount(root, "/", False), Mount(root, str(root), False))
    return Grants(argv=("t",), env=(), mounts=mounts, tmp=False, network=False, stdin=False,
                  timeout=None, memory=1 << 20, writes_protected=(), files=files)  # fmt: skip


@pytest.fixture
def root(tmp_path):
    root = tmp_path / "p"
    (root / "src").mkdir(parents=True)
    (root / "CHANGELOG.md").write_text("old\n")
    (root / "README.md").write_text("readme\n")
    return root.resolve()


def stage(root: Path, tmp_path: Path, writable=True):
    grant = FileGrant(root / "CHANGELOG.md", (".", str(root)), writable)
    (tmp_path / "stage").mkdir()
    return staging.Staging(grants(root, grant), tmp_path / "stage")


@pytest.mark.parametrize("guest, prefix", [("/", ""), (".", ""), ("./docs/", "docs"), ("/a/b", "a/b")])
def test_preopen_names_compare_as_wasi_libc_compares_them(guest, prefix):
    assert staging.wasi_prefix(guest) == prefix


def test_the_staging_directory_replaces_the_mount_at_its_path(root, tmp_path):
    staged = stage(root, tmp_path)
    directory = staged.directories[0].staging
    preopens = staged.preopens(grants(root).mounts)
    assert [(m.host, m.guest, m.writable) for m in preopens] == [
        (directory, ".", True), (directory, str(root), True),
        (root / "src", "./src", False), (root / "src", f"{root}/src", False),
    ]  # fmt: skip
    assert sorted(p.name for p in directory.iterdir()) == ["CHANGELOG.md", "README.md", "src"]
    assert (directory / "README.md").stat().st_mode & 0o777 == 0o444


def test_only_a_changed_granted_file_is_written(root, tmp_path):
    staged = stage(root, tmp_path)
    directory = staged.directories[0].staging
    assert staged.write_back() == staging.Outcome([], [], [])
    (directory / "CHANGELOG.md").write_text("new\n")
    (directory / "README.md").chmod(0o644)
    (directory / "README.md").write_text("changed\n")
    (directory / "extra").write_text("")
    outcome = staged.write_back()
    assert outcome == staging.Outcome(["CHANGELOG.md"], [], ["README.md", "extra"])
    assert (root / "CHANGELOG.md").read_text() == "new\n"
    assert (root / "README.md").read_text() == "readme\n"
    assert not (root / "extra").exists()


def test_a_file_the_host_changed_meanwhile_is_kept(root, tmp_path):
    staged = stage(root, tmp_path)
    (staged.directories[0].staging / "CHANGELOG.md").write_text("task\n")
    (root / "CHANGELOG.md").write_text("user\n")
    outcome = staged.write_back()
    assert outcome.not_written == ["`CHANGELOG.md` (it changed on the host while the task ran)"]
    assert (root / "CHANGELOG.md").read_text() == "user\n"


def test_what_a_program_changed_on_the_host_is_copied_back(root, tmp_path):
    staged = stage(root, tmp_path)
    copy = staged.directories[0].staging / "CHANGELOG.md"
    with open(copy, "rb") as held:  # the task may hold it open: same file, new content
        (root / "CHANGELOG.md").write_text("formatted\n")
        staged.refresh()
        assert held.read() == b"formatted\n"
    assert staged.changed() == []


def test_a_directory_too_full_to_copy_is_refused(root, tmp_path, monkeypatch):
    monkeypatch.setattr(staging, "MAX_COPIED_BYTES", 4)
    with pytest.raises(SandboxError, match="holds more than") as raised:
        stage(root, tmp_path)
    assert "grant the directory itself" in raised.value.help


def test_a_change_that_could_not_be_written_before_a_program_is_not_lost(root, tmp_path):
    """Before a program the task's change is written; when the host's file changed too, it
    is not, and the copy back after the program must not overwrite the task's change: the
    final write-back refuses it, and the run fails saying so."""
    staged = stage(root, tmp_path)
    copy = staged.directories[0].staging / "CHANGELOG.md"
    copy.write_text("task\n")
    (root / "CHANGELOG.md").write_text("user\n")
    assert staged.write_back().not_written  # before the program
    staged.refresh()  # after it
    assert copy.read_text() == "task\n"
    assert staged.write_back().not_written == ["`CHANGELOG.md` (it changed on the host while the task ran)"]
    assert (root / "CHANGELOG.md").read_text() == "user\n"
