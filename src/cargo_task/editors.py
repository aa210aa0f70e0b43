"""`cargo task --editor`: the generated packages, ready for rust-analyzer.

Tasks have no Cargo.toml of their own, so an editor does not analyse them. The package
cargo-task generates for each owner of tasks (`scaffold.py`) is a real one: a bin per task
file, the task-dependencies and the `cargo-task` guest crate. This writes it exactly as a
build would (so the next build finds it unchanged), without building, and beside it a
`.cargo/config.toml` that makes cargo, and so rust-analyzer, analyse for `wasm32-wasip2`
into a target directory of its own, with the rustc wrapper of the builds (so that
`env!("CARGO_MANIFEST_DIR")` names the owner's directory in rust-analyzer's `cargo check`
too). Per package, not `rust-analyzer.cargo.target`: that setting would switch the user's
own crates to the wasm target too. cargo-task's builds never read this file: they run in
the owner's directory, with `--target` and `--target-dir`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from cargo_task.errors import BuildError, ConfigError

if TYPE_CHECKING:
    from cargo_task.discovery import Owner
    from cargo_task.pipeline import Request
    from cargo_task.workspace import Project

# rust-analyzer's `cargo check` gets a target directory apart from cargo-task's builds: the
# two would otherwise wait on each other's lock on every save.
EDITOR_TARGET_DIR = "editor-target"


def editor_config(target: str, build_env: dict[str, str]) -> str:
    """`build_env`: what cargo-task's builds add to cargo's environment (the rustc wrapper
    and what it reads), said the way a configuration file says it."""
    from cargo_task.scaffold import toml_key

    wrapper = build_env.get("RUSTC_WORKSPACE_WRAPPER")
    variables = {k: v for k, v in build_env.items() if k != "RUSTC_WORKSPACE_WRAPPER"}
    return (
        "# Written by `cargo task --editor` for rust-analyzer: analyse and check the tasks\n"
        "# as cargo-task builds them, in a target directory of their own.\n"
        "# cargo-task's own builds do not read this file. Edits are overwritten.\n"
        "[build]\n"
        f"target = {json.dumps(target)}\n"
        f"target-dir = {json.dumps(EDITOR_TARGET_DIR)}\n"
        + (f"rustc-workspace-wrapper = {json.dumps(wrapper)}\n" if wrapper else "")
        + ("\n[env]\n" if variables else "")
        + "".join(f"{toml_key(k)} = {json.dumps(v)}\n" for k, v in sorted(variables.items()))
    )


class EditorPackage(NamedTuple):
    owner: Path  # the Cargo.toml whose tasks these are
    manifest: Path  # the generated Cargo.toml: what `rust-analyzer.linkedProjects` names
    tasks: tuple[str, ...]


class EditorSetup(NamedTuple):
    project: Path  # the user's own top manifest: linkedProjects replaces discovery
    packages: list[EditorPackage]

    def linked_projects(self) -> list[str]:
        return [str(self.project), *(str(p.manifest) for p in self.packages)]


def _owners(project: Project, everywhere: bool) -> list[Owner]:
    """The owners of tasks to prepare: the whole workspace's (an editor opens the
    workspace), or (`-p`) those the selected package sees."""
    from cargo_task.discovery import discover, discover_everywhere

    tasks = list(discover(project).values())  # reports the errors of this view
    if everywhere:
        tasks += discover_everywhere(project)
    found: dict[tuple[Path, str], Owner] = {}
    for task in tasks:
        found.setdefault((task.owner.root, task.owner.key), task.owner)
    # A parent directory sorts before its members: the workspace's tasks come first.
    return sorted(found.values(), key=lambda o: (str(o.root), o.key))


_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def write_config(directory: Path, text: str) -> None:
    """`directory/.cargo/config.toml`, unless it already says `text`, never through a link:
    a confined build may write `directory` (build scripts of task-dependencies run there),
    and must not choose where the tool writes with the user's rights. Whatever is in the
    way of a real `.cargo` directory is the tool's, and is replaced."""
    parent = os.open(directory, _DIR)
    try:
        fd = _own_directory(parent, ".cargo")
        try:
            try:  # cargo prefers the file's old name: none but this one is the tool's
                os.unlink("config", dir_fd=fd)
            except FileNotFoundError:
                pass
            try:
                current = os.open("config.toml", os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
                with os.fdopen(current, "rb") as file:
                    if file.read() == text.encode():
                        return
            except OSError:
                pass
            temporary = f".config.toml.{os.getpid()}.tmp"
            out = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC,
                          0o600, dir_fd=fd)  # fmt: skip
            try:
                with os.fdopen(out, "wb") as file:
                    file.write(text.encode())
                os.replace(temporary, "config.toml", src_dir_fd=fd, dst_dir_fd=fd)
            except BaseException:
                os.unlink(temporary, dir_fd=fd)
                raise
        finally:
            os.close(fd)
    finally:
        os.close(parent)


def _own_directory(parent: int, name: str) -> int:
    try:
        return os.open(name, _DIR, dir_fd=parent)
    except FileNotFoundError:
        pass
    except OSError:  # a link or a file where the directory belongs
        os.unlink(name, dir_fd=parent)
    os.mkdir(name, 0o700, dir_fd=parent)
    return os.open(name, _DIR, dir_fd=parent)


def prepare(request: Request) -> EditorSetup:
    """Write (or refresh) each owner's generated package and its editor configuration."""
    from cargo_task import scaffold
    from cargo_task.build import wrapper_environment
    from cargo_task.pipeline import locate_project

    project = locate_project(request)
    owners = _owners(project, everywhere=request.package is None)
    if not owners:
        raise ConfigError(
            "no tasks found: there is nothing for an editor to analyse",
            help="a task is a file `tasks/NAME.rs` with a `fn main()`",
        )
    build_root = project.target_dir / "cargo-task"
    packages = []
    for owner in owners:
        plan = scaffold.render(owner, build_root)
        config = editor_config(scaffold.TARGET, wrapper_environment(plan))
        try:
            scaffold.write(plan)
            write_config(plan.directory, config)
        except OSError as e:
            raise BuildError(
                f"could not write the generated package in `{plan.directory}`: {e.strerror}",
                help="cargo-task writes it under the target directory (CARGO_TARGET_DIR)",
            ) from None
        packages.append(EditorPackage(owner.manifest, plan.manifest, tuple(n for n, _ in owner.sources)))
    top = project.workspace or project.package
    assert top is not None  # `locate` finds one or fails
    return EditorSetup(top.path, packages)


def render_paths(setup: EditorSetup) -> str:
    """The generated manifests, one a line (as the terminal can show them)."""
    from cargo_task.terminal import printable

    return "".join(printable(str(p.manifest)) + "\n" for p in setup.packages)


def render_json(setup: EditorSetup) -> str:
    from cargo_task.scaffold import TARGET

    document = {
        "linkedProjects": setup.linked_projects(),
        "packages": [
            {"owner": str(p.owner), "manifest": str(p.manifest), "target": TARGET, "tasks": list(p.tasks)}
            for p in setup.packages
        ],
    }
    return json.dumps(document, indent=2) + "\n"


def render_help(setup: EditorSetup) -> str:
    """How to use the paths: a snippet for VS Code's settings.json, and the rest."""
    entries = ",\n".join(f"    {json.dumps(path)}" for path in setup.linked_projects())
    return (
        "note: for VS Code, in .vscode/settings.json (rust-analyzer then analyses only what\n"
        "      linkedProjects lists, so your own Cargo.toml comes first):\n"
        f'{{\n  "rust-analyzer.linkedProjects": [\n{entries}\n  ]\n}}\n'
        "note: other editors: give rust-analyzer the same `linkedProjects` list in its\n"
        "      LSP settings. The paths are this checkout's: rerun `cargo task --editor`\n"
        "      after adding a task, after `cargo clean`, or in another checkout.\n"
    )
