"""`tasks/` directories + configuration -> the tasks a run can see.

`tasks/NAME.rs` and `tasks/NAME/main.rs` are tasks; every other `.rs` below `tasks/` is a
module (as in Cargo's `tests/`). A workspace's tasks come first; a member's own tasks and
settings extend and override them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

from cargo_task.config import OwnerConfig, TaskSettings, owner_config, task_name_problem
from cargo_task.errors import ConfigError
from cargo_task.workspace import Manifest, Project


class Owner(NamedTuple):
    """A manifest whose directory holds tasks: the workspace root or a package."""

    root: Path
    manifest: Path
    key: str  # names the generated package: the package's name, or "workspace"
    edition: str
    dependencies: dict[str, dict[str, Any]]
    sources: tuple[tuple[str, Path], ...]  # its own tasks' main files, shadowed ones included

    @property
    def tasks_dir(self) -> Path:
        return self.root / "tasks"


class Task(NamedTuple):
    name: str
    source: Path
    owner: Owner
    settings: TaskSettings

    @property
    def description(self) -> str:
        if self.settings.description:
            return self.settings.description
        if self.settings.published is not None:  # what the package says of itself
            from cargo_task.published import description

            return description(self)
        return doc_summary(self.source)


_HEAD = 4096  # bytes of a task's file read for its description: listing stays cheap


def doc_summary(source: Path) -> str:
    """The first line of prose of the file's leading `//!` comment, or "" (read from its
    head only). Markdown that is not prose is passed over: blank lines, code fences and
    what they hold, lines of punctuation (rules, setext underlines); a heading gives its
    text (`# Title` -> `Title`)."""
    try:
        with source.open("rb") as file:
            raw = file.read(_HEAD)
    except OSError:
        return ""
    lines = raw.decode("utf-8", errors="replace").splitlines()
    if len(raw) == _HEAD and not raw.endswith(b"\n"):
        lines = lines[:-1]  # cut off mid-line (perhaps mid-character) by the head's end
    fence = ""  # the open code fence's marker, or ""
    for line in lines:
        line = line.strip()
        if not line.startswith("//!"):
            if line and not line.startswith("#!["):
                return ""
            continue
        text = line[3:].strip()
        if fence:
            if text.startswith(fence) and not text.strip(fence[0]):
                fence = ""
            continue
        if text.startswith(("```", "~~~")):
            fence = text[: len(text) - len(text.lstrip(text[0]))]
            continue
        heading = text.lstrip("#")
        if text.startswith("#") and len(text) - len(heading) <= 6 and (not heading or heading[0] == " "):
            text = heading.strip()
            closed = text.rstrip("#")
            if not closed or closed.endswith(" "):  # `# Title #` -> `Title`, but `# C#` stays
                text = closed.strip()
        if any(c.isalnum() for c in text):
            return text
    return ""


def task_files(tasks_dir: Path) -> dict[str, Path]:
    """Name -> main file for the tasks in one `tasks/` directory."""
    found: dict[str, Path] = {}
    try:
        entries = sorted(tasks_dir.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return found
    except OSError as e:
        raise ConfigError(f"could not read the tasks directory `{tasks_dir}`: {e.strerror}") from None
    for entry in entries:
        if entry.suffix == ".rs" and entry.is_file():
            name, source = entry.stem, entry
        elif entry.is_dir() and (entry / "main.rs").is_file():
            name, source = entry.name, entry / "main.rs"
        else:
            continue
        problem = task_name_problem(name)
        if problem:
            raise ConfigError(f"invalid task name `{name}` (from `{entry}`)", help=problem)
        if name in found:
            raise ConfigError(
                f"task `{name}` is defined twice: `{found[name]}` and `{source}`",
                help="keep one of them",
            )
        found[name] = source
    return found


def _checked_path(name: str, said: TaskSettings, manifest: Manifest) -> Path:
    assert said.path is not None
    if not said.path.is_file():
        raise ConfigError(
            f"task `{name}` in `{manifest.path}` has `path = \"{said.path}\"`, which is not a file",
            help="point `path` at the task's main .rs file",
        )
    return said.path


def _edition(manifest: Manifest, workspace: Manifest | None) -> str:
    edition = manifest.data.get("package", {}).get("edition")
    if not isinstance(edition, str) and workspace is not None:  # `edition.workspace = true`
        edition = workspace.data["workspace"].get("package", {}).get("edition")
    return edition if isinstance(edition, str) else "2021"


def _configs(manifest: Manifest) -> list[OwnerConfig]:
    """A manifest's tasks are configured by its own sections, the package's winning."""
    sections = ["workspace"] if manifest.is_workspace_root else []
    sections += ["package"] if manifest.package_name is not None else []
    return [owner_config(manifest, s) for s in sections]


def discover(project: Project) -> dict[str, Task]:
    """All tasks visible from the selected package, by name, sorted."""
    tasks: dict[str, Task] = {}
    dependencies: dict[str, dict[str, Any]] = {}
    for manifest in project.manifests:
        configs = _configs(manifest)
        for config in configs:
            dependencies = {**dependencies, **config.dependencies}
        settings: dict[str, TaskSettings] = {}
        for config in configs:
            for name, said in config.tasks.items():
                settings[name] = said.over(settings.get(name, TaskSettings()))
        own = task_files(manifest.root / "tasks")
        for name, said in settings.items():
            if said.path is not None:
                own[name] = _checked_path(name, said, manifest)
            elif said.published is not None and name in own:
                raise ConfigError(
                    f"task `{name}` in `{manifest.path}` has a `from` table and a file `{own[name]}`",
                    help="remove the file, or the `from` table: a task is one or the other",
                )
        owner = Owner(
            root=manifest.root,
            manifest=manifest.path,
            key=manifest.package_name or "workspace",
            edition=_edition(manifest, project.workspace),
            dependencies=dependencies,
            sources=tuple(sorted(own.items())),
        )
        for name, source in own.items():
            tasks[name] = Task(name, source, owner, settings.pop(name, TaskSettings()))
        for name, said in list(settings.items()):
            if said.published is not None and name not in tasks:  # a package's binary: no file
                from cargo_task.published import task_source

                tasks[name] = Task(name, task_source(said.published), owner, settings.pop(name))
        for name, said in settings.items():
            if name in tasks:  # settings for a task the workspace defines
                inherited = tasks[name]
                tasks[name] = Task(name, inherited.source, inherited.owner,
                                   said.over(inherited.settings))  # fmt: skip
            else:
                raise ConfigError(
                    f"task `{name}` is configured in `{manifest.path}` but has no file",
                    help=f"create `{owner.tasks_dir / (name + '.rs')}` or set its `path` key",
                )
    return dict(sorted(tasks.items()))


def discover_everywhere(project: Project) -> list[Task]:
    """Every task of the workspace as each of its packages sees it, whatever directory the
    run started from: the workspace's tasks (with each member's overrides) and every
    member's own. A member whose configuration is broken is left out: none of its tasks
    can run until it is fixed, and its `tasks/` is protected as every package's is."""
    from cargo_task.workspace import workspace_members

    if project.workspace is None:
        return list(discover(project).values())
    views = [project._replace(package=None)]
    try:
        views += [project._replace(package=m) for m in workspace_members(project.workspace, project.parsed)]
    except ConfigError:
        pass
    found: dict[tuple, Task] = {}
    for view in views:
        try:
            tasks = discover(view).values()
        except ConfigError:
            continue
        for task in tasks:
            found.setdefault((task.name, task.source, task.owner.root, task.settings), task)
    return list(found.values())
