"""`cargo task --add CRATE[@VERSION]|PATH [NAME]`: a published package's task table, added
to the manifest the way `cargo add` edits one.

The package is resolved first (as a run would), so a typo fails before the manifest is
touched. The table is appended as text: every byte of the file before it stays as it was,
comments and formatting included. The grants the package asks for are written as comments,
for the user to grant or not. The result must parse and read back as the table we meant;
a layout where an appended table cannot be valid (an inline `tasks = { ... }`) is refused.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from cargo_task.config import CRATE_NAME, parse_from, task_name_problem
from cargo_task.errors import ConfigError

if TYPE_CHECKING:
    from cargo_task.discovery import Task
    from cargo_task.pipeline import Request
    from cargo_task.terminal import Reporter
    from cargo_task.workspace import Project


def default_name(crate: str) -> str:
    """`task-sort-deps` -> `sort-deps`, `lint-task` -> `lint`: the task's name without the
    word every such crate carries."""
    name = re.sub(r"^(cargo-task-|task-)|(-task)$", "", crate)
    return name if name and not task_name_problem(name) else crate


def parse_spec(spec: str) -> tuple[str, str | None]:
    crate, at, version = spec.partition("@")
    if not CRATE_NAME.fullmatch(crate) or (at and not version.strip()):
        raise ConfigError(f"invalid package `{spec}` for `--add`",
                          help="give a crate's name and, optionally, a version: `--add task-sort-deps@0.2`")  # fmt: skip
    return crate, (version.strip() or None)


def table_text(header: str, from_table: dict[str, Any], crate: str, asks: dict[str, Any]) -> str:
    from cargo_task.scaffold import toml_key, toml_value

    text = f"[{header}]\nfrom = {toml_value(from_table)}\n"
    if asks:
        text += f"# `{crate}` asks for these grants; none is given until you uncomment it:\n"
        text += "".join(f"# {toml_key(k)} = {toml_value(v)}\n" for k, v in asks.items())
    return text


def appended(original: str, table: str) -> str:
    if not original:
        return table
    return original + ("" if original.endswith("\n") else "\n") + "\n" + table


def _reads_back(text: str, section: str, name: str, from_table: dict[str, Any]) -> bool:
    import tomllib

    try:
        data = tomllib.loads(text)
        return data[section]["metadata"]["tasks"][name]["from"] == from_table
    except (tomllib.TOMLDecodeError, KeyError, TypeError):
        return False


def add(project: Project, tasks: dict[str, Task], spec: str, name: str | None,
        request: Request, reporter: Reporter) -> None:  # fmt: skip
    """`spec` is `CRATE[@VERSION]`, or a package's directory (`../tools/x`: it has a `/`)."""
    import os

    from cargo_task import build, lockfile, resolution
    from cargo_task.files import replace_file

    manifest = project.package or project.workspace
    assert manifest is not None
    section = "package" if manifest.package_name is not None else "workspace"
    refuse = lockfile.refuses_changes(request.locked, request.environ)
    if refuse:
        raise ConfigError(f"`--add` writes `{lockfile.lock_path(manifest.path)}`, but {refuse} forbids it",
                          help="add the task without --locked (and outside CI), then commit the lock file")  # fmt: skip
    if "://" in spec or spec.startswith("git@"):
        raise ConfigError(
            f"`--add` takes a crate's name or a package's directory, not a URL (`{spec}`)",
            help=f'add a git source by hand: `NAME = {{ from = {{ git = "{spec}", tag = "..." }} }}` '
            f"in [{section}.metadata.tasks], then run `cargo task NAME`",
        )
    if "/" in spec or spec in (".", ".."):
        directory = os.path.normpath(os.path.join(request.cwd, spec))
        asking: dict[str, Any] = {"path": os.path.relpath(directory, manifest.root)}
        crate = None
        provisional = os.path.basename(directory)
    else:
        crate, version = parse_spec(spec)
        asking = {"crate": crate, "version": version or "*"}
        provisional = default_name(crate)
    provisional = name or provisional  # the name may come from the package
    header = f"{section}.metadata.tasks.{provisional}"
    asked = parse_from(manifest.path, f"`{header}`", asking, header)
    toolchain = build.Toolchain.from_environment(request.environ, manifest.root)
    resolved = resolution.resolve(asked, provisional, resolution.build_directory(project.target_dir / "cargo-task", asked),
                                 toolchain, None)  # fmt: skip
    crate = crate or resolved.package
    name = name or default_name(crate)
    problem = task_name_problem(name)
    if problem:
        raise ConfigError(f"invalid task name `{name}` for `--add`", help=problem)
    if name in tasks:
        raise ConfigError(f"there is a task `{name}` already (`{tasks[name].source}`)",
                          help=f"name the new one: `cargo task --add {spec} OTHER-NAME`")  # fmt: skip
    header = f"{section}.metadata.tasks.{name}"
    if "path" in asking:
        from_table = {"path": asking["path"]}
    else:
        from_table = {"crate": crate, "version": asking["version"] if asking["version"] != "*" else resolved.version}
    try:
        original = manifest.path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"could not read `{manifest.path}`: {getattr(e, 'strerror', e)}") from None
    text = appended(original, table_text(header, from_table, crate, resolved.asks))
    if not _reads_back(text, section, name, from_table):
        from cargo_task.scaffold import toml_value

        raise ConfigError(
            f"cannot add `[{header}]` to `{manifest.path}`: its tasks are written in a way a new table "
            "cannot extend (an inline `tasks = { ... }` table?)",
            help=f"add it by hand: `{name} = {{ from = {toml_value(from_table)} }}`",
        )  # fmt: skip
    final = parse_from(manifest.path, f"`{header}`", from_table, header)
    lockfile.check_writable(lockfile.lock_path(manifest.path))  # a broken lock fails before the manifest changes
    try:
        replace_file(manifest.path, text.encode())
    except OSError as e:
        raise ConfigError(f"could not write `{manifest.path}`: {e.strerror}") from None
    lockfile.write_entry(lockfile.lock_path(manifest.path), resolved.entry(final))
    reporter.status("Adding", f"task `{name}` from {resolved.package} v{resolved.version} to `{manifest.path}`")
    if resolved.asks:
        reporter.status("Note", f"`{crate}` asks for grants ({', '.join(resolved.asks)}): they are commented out in "
                      f"`[{header}]`; see `cargo task --explain {name}`")  # fmt: skip
