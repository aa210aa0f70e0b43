"""Where the project is: the manifest, the workspace around it, the selected package.

Finds manifests the way cargo does (nearest `Cargo.toml` upwards, then the workspace root
that claims it) and reads them. Knows nothing of tasks beyond handing their tables on.
"""

from __future__ import annotations

import fnmatch
import os
import tomllib
from pathlib import Path
from typing import Any, NamedTuple

from cargo_task.errors import ConfigError


class Manifest(NamedTuple):
    path: Path
    data: dict[str, Any]

    @property
    def root(self) -> Path:
        return self.path.parent

    @property
    def package_name(self) -> str | None:
        package = self.data.get("package")
        return package.get("name") if isinstance(package, dict) else None

    @property
    def is_workspace_root(self) -> bool:
        return isinstance(self.data.get("workspace"), dict)


class Project(NamedTuple):
    """The selection a run works on: a package, its workspace root, or both."""

    workspace: Manifest | None  # the workspace root, when there is one
    package: Manifest | None  # None for a virtual workspace root with no -p
    target_dir: Path

    def roots(self) -> list[Path]:
        """Every package directory of the project: a task must not write any of their manifests."""
        found = [m.root for m in self.manifests]
        if self.workspace is not None:
            found += member_roots(self.workspace)
        return found

    @property
    def manifests(self) -> list[Manifest]:
        """Owners of tasks, workspace first so that the package overrides it."""
        found = [m for m in (self.workspace, self.package) if m is not None]
        return found if len(found) < 2 or found[0].path != found[1].path else found[:1]


def read_manifest(path: Path) -> Manifest:
    try:
        with path.open("rb") as file:
            data = tomllib.load(file)
    except FileNotFoundError:
        raise ConfigError(f"manifest path `{path}` does not exist") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"failed to parse manifest at `{path}`: {e}") from None
    except OSError as e:
        raise ConfigError(f"failed to read manifest at `{path}`: {e.strerror}") from None
    return Manifest(path, data)


def find_manifest(start: Path) -> Path:
    for directory in (start, *start.parents):
        candidate = directory / "Cargo.toml"
        if candidate.is_file():
            return candidate
    raise ConfigError(
        f"could not find `Cargo.toml` in `{start}` or any parent directory",
        help="run this inside a Rust project, or pass --manifest-path",
    )


def _member_patterns(workspace: Manifest, key: str) -> list[str]:
    values = workspace.data["workspace"].get(key, [])
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise ConfigError(f"`workspace.{key}` in `{workspace.path}` must be a list of paths")
    return [os.path.normpath(v) for v in values]


def _claims(workspace: Manifest, package_root: Path) -> bool:
    if package_root == workspace.root:
        return True
    relative = os.path.relpath(package_root, workspace.root)
    if any(fnmatch.fnmatchcase(relative, p) for p in _member_patterns(workspace, "exclude")):
        return False
    return any(fnmatch.fnmatchcase(relative, p) for p in _member_patterns(workspace, "members"))


def find_workspace(package: Manifest) -> Manifest | None:
    if package.is_workspace_root:
        return package
    explicit = package.data.get("package", {}).get("workspace")
    if isinstance(explicit, str):
        return read_manifest((package.root / explicit / "Cargo.toml").resolve())
    for directory in package.root.parents:
        candidate = directory / "Cargo.toml"
        if candidate.is_file():
            manifest = read_manifest(candidate)
            if manifest.is_workspace_root and _claims(manifest, package.root):
                return manifest
    return None


def member_roots(workspace: Manifest) -> list[Path]:
    """The directories of the workspace's members (its `members` globs less `exclude`)."""
    roots = []
    excluded = _member_patterns(workspace, "exclude")
    for pattern in _member_patterns(workspace, "members"):
        for path in sorted(workspace.root.glob(pattern)):
            relative = os.path.relpath(path, workspace.root)
            if (path / "Cargo.toml").is_file() and not any(
                fnmatch.fnmatchcase(relative, e) for e in excluded
            ):
                roots.append(path)
    return roots


def workspace_members(workspace: Manifest) -> list[Manifest]:
    members = [read_manifest(root / "Cargo.toml") for root in member_roots(workspace)]
    if workspace.package_name is not None:
        members.insert(0, workspace)
    return members


def select_package(workspace: Manifest, name: str) -> Manifest:
    members = workspace_members(workspace)
    for member in members:
        if member.package_name == name:
            return member
    names = ", ".join(m.package_name or "?" for m in members) or "none"
    raise ConfigError(
        f"package `{name}` is not a member of the workspace at `{workspace.root}`",
        help=f"the members are: {names}",
    )


def target_dir(workspace_root: Path, environ: dict[str, str]) -> Path:
    configured = environ.get("CARGO_TARGET_DIR") or environ.get("CARGO_BUILD_TARGET_DIR")
    if configured:
        return (Path.cwd() / configured).resolve()
    return workspace_root / "target"


def locate(
    manifest_path: str | None, package: str | None, cwd: Path, environ: dict[str, str]
) -> Project:
    """Resolve `--manifest-path` and `-p` against the current directory, as cargo does."""
    if manifest_path is not None:
        path = (cwd / manifest_path).resolve()
        if path.name != "Cargo.toml":
            raise ConfigError(
                f"the manifest-path must be a path to a Cargo.toml file, not `{manifest_path}`"
            )
    else:
        path = find_manifest(cwd.resolve())
    nearest = read_manifest(path)
    workspace = find_workspace(nearest) if nearest.package_name is not None else None
    if nearest.package_name is None:
        if not nearest.is_workspace_root:
            raise ConfigError(
                f"`{path}` has neither a [package] nor a [workspace] section",
                help="add a [package] section, or point --manifest-path at a package",
            )
        workspace = nearest
    selected: Manifest | None = nearest if nearest.package_name is not None else None
    if package is not None:
        if workspace is None:
            if nearest.package_name != package:
                raise ConfigError(
                    f"package `{package}` not found; this manifest is `{nearest.package_name}`",
                    help=f"the only package here is `{nearest.package_name}`",
                )
        else:
            selected = select_package(workspace, package)
    root = (workspace or nearest).root
    return Project(workspace=workspace, package=selected, target_dir=target_dir(root, environ))
