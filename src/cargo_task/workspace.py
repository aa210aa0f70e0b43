"""Where the project is: the manifest, the workspace around it, the selected package.

Finds manifests the way cargo does (nearest `Cargo.toml` upwards, then the workspace root
that claims it) and reads them. Knows nothing of tasks beyond handing their tables on.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, NamedTuple

from cargo_task.errors import ConfigError
from cargo_task.files import cache_dir, write_atomic


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
    parsed: Path | None = None  # where parsed manifests are kept (see `read_manifest`)

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


def read_manifest(path: Path, parsed: Path | None = None) -> Manifest:
    """Read and check a Cargo.toml; `parsed` is a directory that keeps parses for reuse."""
    try:
        data = _remembered(path, parsed)
    except FileNotFoundError:
        raise ConfigError(f"manifest path `{path}` does not exist") from None
    except OSError as e:
        raise ConfigError(f"failed to read manifest at `{path}`: {e.strerror}") from None
    _check_shape(path, data)
    return Manifest(path, data)


def read_toml(path: Path) -> dict[str, Any]:
    """Any TOML file of the project (the lock file, a path task's manifest), its parse kept
    in the user's cache as manifests' are."""
    return _remembered(path, cache_dir(dict(os.environ)) / "manifests")


def _remembered(path: Path, parsed: Path | None) -> dict[str, Any]:
    """The parse of `path`, from `parsed` while the file is unchanged (importing tomllib and
    parsing cost more than the rest of listing the tasks), else parsed anew and kept."""
    import json
    from binascii import crc32

    st = os.stat(path)
    identity = [str(path), st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino]
    entry = parsed / f"{crc32(os.fsencode(path)):08x}.json" if parsed is not None else None
    if entry is not None:
        try:
            from cargo_task.files import PrivateTree

            # Parses decide grants: only from a cache nobody else can change.
            raw = PrivateTree(entry.parent.parent).read(entry)
            kept = json.loads(raw) if raw is not None else {}
            if kept["identity"] == identity:
                return kept["data"]
        except (OSError, ValueError, KeyError, TypeError):
            pass
    data = _parse(path)
    if entry is not None:
        try:
            write_atomic(entry, json.dumps({"identity": identity, "data": data}).encode())
        except (OSError, TypeError, ValueError):
            pass  # TOML dates have no JSON form; an unwritable cache only costs time
    return data


def _parse(path: Path) -> dict[str, Any]:
    import tomllib

    try:
        with path.open("rb") as file:
            return tomllib.load(file)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, RecursionError) as e:
        reason = "it is not UTF-8" if isinstance(e, UnicodeDecodeError) else (
            "it nests too deeply" if isinstance(e, RecursionError) else str(e))  # fmt: skip
        raise ConfigError(f"failed to parse manifest at `{path}`: {reason}") from None


def _check_shape(path: Path, data: dict[str, Any]) -> None:
    """The few keys we read must have cargo's types; cargo itself checks the rest."""
    def wrong(key: str, expected: str) -> ConfigError:
        return ConfigError(f"`{key}` in `{path}` must be {expected}")

    package, workspace = data.get("package"), data.get("workspace")
    if package is not None:
        if not isinstance(package, dict):
            raise wrong("package", "a table")
        if not isinstance(package.get("name"), str):
            raise wrong("package.name", "a string")
        if not isinstance(package.get("workspace", ""), str):
            raise wrong("package.workspace", "a path")
    if workspace is not None:
        if not isinstance(workspace, dict):
            raise wrong("workspace", "a table")
        if not isinstance(workspace.get("package", {}), dict):
            raise wrong("workspace.package", "a table")


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
    return package_root == workspace.root or package_root in member_roots(workspace)


def find_workspace(package: Manifest, parsed: Path | None = None) -> Manifest | None:
    if package.is_workspace_root:
        return package
    explicit = package.data["package"].get("workspace")
    if isinstance(explicit, str):
        root = read_manifest(_absolute(package.root / explicit / "Cargo.toml"), parsed)
        if not root.is_workspace_root:
            raise ConfigError(
                f"`package.workspace` in `{package.path}` points at `{root.path}`, "
                "which has no [workspace] section"
            )
        return root
    for directory in package.root.parents:
        candidate = directory / "Cargo.toml"
        if candidate.is_file():
            manifest = read_manifest(candidate, parsed)
            if manifest.is_workspace_root and _claims(manifest, package.root):
                return manifest
    return None


def member_roots(workspace: Manifest) -> list[Path]:
    """The directories of the workspace's members: `members` globs (where `*` does not cross
    a `/`, as in cargo), less those under an `exclude` path."""
    import glob

    roots = []
    excluded = [os.path.join(workspace.root, e) for e in _member_patterns(workspace, "exclude")]
    for pattern in _member_patterns(workspace, "members"):
        for match in sorted(glob.glob(os.path.join(glob.escape(str(workspace.root)), pattern))):
            path = Path(os.path.normpath(match))
            if (path / "Cargo.toml").is_file() and not any(
                path == Path(e) or Path(e) in path.parents for e in excluded
            ):
                roots.append(path)
    return roots


def workspace_members(workspace: Manifest, parsed: Path | None = None) -> list[Manifest]:
    members = [read_manifest(root / "Cargo.toml", parsed) for root in member_roots(workspace)]
    if workspace.package_name is not None:
        members.insert(0, workspace)
    return members


def select_package(workspace: Manifest, spec: str, parsed: Path | None = None) -> Manifest:
    """`-p NAME` or `-p NAME@VERSION`, as cargo's package spec says it."""
    name, _, version = spec.partition("@")
    members = workspace_members(workspace, parsed)
    for member in members:
        if member.package_name == name and version in ("", member.data["package"].get("version")):
            return member
    names = ", ".join(m.package_name or "?" for m in members) or "none"
    raise ConfigError(
        f"package `{name}` is not a member of the workspace at `{workspace.root}`",
        help=f"the members are: {names}",
    )


def target_dir(workspace_root: Path, environ: dict[str, str], cwd: Path) -> Path:
    configured = environ.get("CARGO_TARGET_DIR") or environ.get("CARGO_BUILD_TARGET_DIR")
    if configured:
        return _absolute(cwd / configured)
    return workspace_root / "target"


def _absolute(path: Path) -> Path:
    """Absolute, with `..` folded; symbolic links (even looping ones) left to the reader."""
    return Path(os.path.normpath(os.path.abspath(path)))


def locate(
    manifest_path: str | None, package: str | None, cwd: Path, environ: dict[str, str]
) -> Project:
    """Resolve `--manifest-path` and `-p` against the current directory, as cargo does."""
    if manifest_path is not None:
        path = _absolute(cwd / manifest_path)
        if path.name != "Cargo.toml":
            raise ConfigError(
                f"the manifest-path must be a path to a Cargo.toml file, not `{manifest_path}`"
            )
    else:
        path = find_manifest(_absolute(cwd))
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        raise ConfigError(
            f"the project's path is not valid UTF-8: {os.fsencode(path)!r}",
            help="cargo cannot build it either: move the project to a UTF-8 path",
        ) from None
    parsed = cache_dir(environ) / "manifests"
    nearest = read_manifest(path, parsed)
    workspace = find_workspace(nearest, parsed) if nearest.package_name is not None else None
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
            name, _, version = package.partition("@")
            if nearest.package_name != name or version not in ("", nearest.data["package"].get("version")):
                raise ConfigError(
                    f"package `{package}` not found; this manifest is `{nearest.package_name}`",
                    help=f"the only package here is `{nearest.package_name}`",
                )
        else:
            selected = select_package(workspace, package, parsed)
    root = (workspace or nearest).root
    return Project(workspace, selected, target_dir(root, environ, cwd), parsed)
