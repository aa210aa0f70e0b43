"""Resolving a task's `from` table to an exact package with its source at hand.

A private resolver package under `<target>/cargo-task/published/` whose one dependency is
the `from` table, handed to `cargo vendor`: cargo resolves the version (or the git commit)
with the user's own configuration (source replacement, alternative registries, proxies),
downloads, checks the checksum and copies the package into `vendor/NAME-VERSION`, a
directory of ours, so nothing here knows cargo's registry or git layout. The resolver's
Cargo.lock says the exact version, source id and checksum; `cargo metadata --no-deps` on
the copy says its binaries and what it says of itself (`[package.metadata.task]`). A path
source needs only the latter. Unconfined but running no build code: the only step of a
published task that may use the network.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from cargo_task import lockfile
from cargo_task.config import Published
from cargo_task.errors import BuildError, ConfigError

if TYPE_CHECKING:
    from cargo_task.build import Toolchain


# Keys of `[package.metadata.task]` that ask for grants (a task table's, minus the ones
# that only the user's manifest can say).
ASKABLE = ("read", "write", "allow-write-manifest", "network", "stdin", "tmp", "timeout", "memory",
           "env", "inherit-env", "commands", "allow-unconfined-commands")  # fmt: skip
def written(published: Published) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in published.written}


def self_description(data: dict[str, Any]) -> str:
    package = data.get("package") if isinstance(data.get("package"), dict) else {}
    said = _asks_table(package.get("metadata"))
    text = said.get("description") if isinstance(said.get("description"), str) else package.get("description")
    return " ".join(text.split()) if isinstance(text, str) else ""


def _asks_table(metadata: object) -> dict[str, Any]:
    table = metadata.get("task") if isinstance(metadata, dict) else None
    return table if isinstance(table, dict) else {}


def asked_grants(metadata: object) -> dict[str, Any]:
    """The grants a package asks for in `[package.metadata.task]`, the well-formed ones only
    (each checked with the task table's own parser): recorded and shown, never applied."""
    from cargo_task.config import well_formed

    asks = {}
    for key, value in _asks_table(metadata).items():
        if key in ASKABLE and well_formed(key, value):
            asks[key] = value
    return asks


class Resolved(NamedTuple):
    package: str
    version: str
    source: str  # cargo's source id; `path+<as written>` for a path source
    checksum: str | None  # registry
    commit: str | None  # git
    manifest: Path  # the package's Cargo.toml: the vendored copy's, or the path package's
    readable: tuple[Path, ...]  # what its build reads beyond the private directory
    bin: str
    description: str
    asks: dict[str, Any]
    # The resolver's Cargo.lock, for a copy that ships none (a git workspace's member): what
    # its dependencies are pinned to, so that a fresh checkout builds the same ones.
    packages: list[dict[str, Any]] | None = None
    # A path source that is a workspace, its member picked by `crate`: the member's
    # directory within it, so that a warm run watches the member's own Cargo.toml.
    member: str | None = None

    def entry(self, published: Published) -> dict[str, Any]:
        return {
            "table": published.table, "from": written(published), "package": self.package,
            "version": self.version, "source": self.source, "checksum": self.checksum,
            "commit": self.commit, "bin": self.bin, "description": self.description, "asks": self.asks,
            "packages": self.packages, "member": self.member,
        }  # fmt: skip


def build_directory(build_root: Path, published: Published) -> Path:
    """One private directory per declaring manifest and table."""
    import hashlib
    import re

    digest = hashlib.sha256(f"{published.manifest}\0{published.table}".encode("utf-8", "surrogateescape"))
    readable = re.sub(r"[^A-Za-z0-9_-]+", "-", published.table.rpartition(".")[2])[:32]
    return build_root / "published" / f"{readable}-{digest.hexdigest()[:16]}"


def _resolver_manifest(published: Published, pinned: dict[str, Any] | None) -> str:
    from cargo_task.scaffold import toml_value

    spec = {k: v for k, v in written(published).items() if k not in ("crate", "bin", "features", "default-features")}
    spec["package"] = published.crate
    if pinned is not None:
        if published.kind == "registry":
            spec["version"] = f"={pinned['version']}"
        elif pinned.get("commit") and not isinstance(pinned.get("packages"), list):  # else its lock pins it
            for key in ("branch", "tag"):
                spec.pop(key, None)
            spec["rev"] = pinned["commit"]
    return (
        "# Generated by cargo-task-wasm to resolve a task's `from` table. Edits are overwritten.\n"
        '[package]\nname = "cargo-task-resolver"\nversion = "0.0.0"\nedition = "2021"\npublish = false\n\n'
        f"[dependencies]\ntask = {toml_value(spec)}\n\n[workspace]\n"
    )


def resolve(published: Published, name: str, directory: Path, toolchain: Toolchain,
            pinned: dict[str, Any] | None) -> Resolved:  # fmt: skip
    """The package the table names, as an exact version with its source at hand."""
    if published.kind == "path":
        return _from_path(published, name, toolchain)
    from cargo_task import build
    from cargo_task.files import remove_tree, write_atomic

    table = f"[{published.table}]"
    resolver = directory / "resolve"
    vendor, fresh = directory / "vendor", directory / "vendor.new"
    try:
        write_atomic(resolver / "Cargo.toml", _resolver_manifest(published, pinned).encode())
        write_atomic(resolver / "src" / "lib.rs", b"")
        for stale in (resolver / "Cargo.lock", fresh):
            if os.path.lexists(stale):
                remove_tree(stale) if stale.is_dir() else stale.unlink()
        if pinned is not None and isinstance(pinned.get("packages"), list):  # the dependencies as locked
            write_atomic(resolver / "Cargo.lock", _lock_text(pinned["packages"]).encode())
    except OSError as e:
        raise BuildError(f"{table}: could not prepare the resolution in `{directory}`: {e.strerror}") from None
    code, messages = build.resolve_with_cargo(toolchain, [
        "vendor", "--versioned-dirs", "--respect-source-config", "--quiet",
        "--manifest-path", str(resolver / "Cargo.toml"), str(fresh)])  # fmt: skip
    if code != 0:
        raise _resolution_error(published, name, messages)
    locked = _locked_package(resolver / "Cargo.lock", published.crate or "")
    if locked is None:
        raise BuildError(f"{table}: cargo resolved no package `{published.crate}`",
                         help="check `crate` in the `from` table")  # fmt: skip
    version, source = str(locked["version"]), str(locked.get("source", ""))
    commit = source.rpartition("#")[2] if source.startswith("git+") else None
    shipped = (fresh / f"{published.crate}-{version}" / "Cargo.lock").is_file()
    packages = None if shipped else _parsed(resolver / "Cargo.lock").get("package", [])
    if pinned is not None:  # checked before the copy replaces the one built before
        mismatch = _disagreement(pinned, str(locked["name"]), version, locked.get("checksum"), commit)
        if not mismatch and pinned.get("packages") is not None and pinned.get("packages") != packages:
            mismatch = "its dependencies are not the ones locked"
        if mismatch:
            raise BuildError(
                f"{table}: {mismatch}: the package is not the one `{lockfile.lock_path(published.manifest)}` pins",
                help=f"if the change is expected, run `cargo task --update {name}` and review the lock file's diff",
            )  # fmt: skip
    try:
        if vendor.exists():
            remove_tree(vendor)
        os.replace(fresh, vendor)
    except OSError as e:
        raise BuildError(f"{table}: could not keep the package's source in `{vendor}`: {e.strerror}") from None
    root = vendor / f"{published.crate}-{version}"
    _own_workspace(root / "Cargo.toml")
    if packages is not None:  # `cargo fetch` keeps these versions while it makes the copy the root
        try:
            (root / "Cargo.lock").write_text(_lock_text(packages))
        except OSError as e:
            raise BuildError(f"{table}: could not write `{root / 'Cargo.lock'}`: {e.strerror}") from None
    resolved = _from_copy(published, table, toolchain, root, package=str(locked["name"]), version=version,
                          source=source, checksum=locked.get("checksum"), commit=commit, packages=packages)  # fmt: skip
    try:
        (vendor / PIN).write_text(_pin_text(resolved.package, version, resolved.checksum, commit))
    except OSError:
        pass  # the next cold build resolves again
    return resolved


# Beside the copy: which pin it was made for, so that a rebuild of a pinned package (a new
# toolchain, a changed configuration) reuses it and needs no network. The copy lives in
# cargo's output under the target directory, which no task and no build may write.
PIN = ".cargo-task-pin"


def _pin_text(package: str, version: str, checksum: str | None, commit: str | None) -> str:
    return f"{package}\n{version}\n{checksum or ''}\n{commit or ''}\n"


def reuse(published: Published, directory: Path, toolchain: Toolchain, entry: dict[str, Any]) -> Resolved | None:
    """The copy made for exactly this lock entry, if it is still there; else None."""
    vendor = directory / "vendor"
    package, version = str(entry.get("package")), str(entry.get("version"))
    try:
        made_for = (vendor / PIN).read_text()
    except OSError:
        return None
    if made_for != _pin_text(package, version, entry.get("checksum"), entry.get("commit")):
        return None
    return _from_copy(published, f"[{published.table}]", toolchain, vendor / f"{package}-{version}",
                      package=package, version=version, source=str(entry.get("source", "")),
                      checksum=entry.get("checksum"), commit=entry.get("commit"),
                      packages=entry.get("packages") if isinstance(entry.get("packages"), list) else None)  # fmt: skip


def _lock_text(packages: list[dict[str, Any]]) -> str:
    """A Cargo.lock (version 3, read by every cargo since 1.53) of these packages."""
    from cargo_task.scaffold import toml_key, toml_value

    parts = ["# Written by cargo-task-wasm from cargo-task.lock.\nversion = 3\n"]
    for package in packages:
        if isinstance(package, dict):
            parts.append("\n[[package]]\n" + "".join(f"{toml_key(k)} = {toml_value(v)}\n" for k, v in package.items()))
    return "".join(parts)


def _from_copy(published: Published, table: str, toolchain: Toolchain, root: Path, **pin: Any) -> Resolved:
    metadata = _package_metadata(toolchain, root / "Cargo.toml", published, table)
    return Resolved(
        **pin, manifest=root / "Cargo.toml", readable=(), bin=_choose_bin(metadata, published, table),
        description=_described(metadata), asks=asked_grants(metadata.get("metadata")),
    )  # fmt: skip


def _from_path(published: Published, name: str, toolchain: Toolchain) -> Resolved:
    assert published.path is not None
    table = f"[{published.table}]"
    manifest = published.path / "Cargo.toml"
    if not manifest.is_file():
        raise ConfigError(f"{table}: `path = \"{published.get('path')}\"` has no Cargo.toml ({manifest})",
                          help="point `path` at the directory of the task's package")  # fmt: skip
    metadata = _package_metadata(toolchain, manifest, published, table)
    root = Path(metadata["__workspace_root"])
    member = os.path.relpath(os.path.realpath(Path(metadata["manifest_path"]).parent), os.path.realpath(published.path))
    return Resolved(
        package=metadata["name"], version=metadata["version"], source=f"path+{published.get('path')}",
        checksum=None, commit=None, manifest=Path(metadata["manifest_path"]),
        readable=(Path(metadata["manifest_path"]).parent, root),
        bin=_choose_bin(metadata, published, table), description=_described(metadata),
        asks=asked_grants(metadata.get("metadata")), member=None if member == "." else member,
    )  # fmt: skip


def _described(metadata: dict[str, Any]) -> str:
    return self_description({"package": {"metadata": metadata.get("metadata"),
                                          "description": metadata.get("description")}})  # fmt: skip


def _parsed(path: Path) -> dict[str, Any]:
    """A file of our own private directory, parsed once (not kept in the cache)."""
    import tomllib

    with path.open("rb") as file:
        return tomllib.load(file)


def _own_workspace(manifest: Path) -> None:
    """A vendored copy lives under the project's target directory: without a `[workspace]`
    of its own, cargo would take it for a stray member of the project's workspace."""
    data = _parsed(manifest)
    if "workspace" not in data:
        with manifest.open("a", encoding="utf-8") as file:
            file.write("\n# Added by cargo-task-wasm: this copy is built on its own.\n[workspace]\n")


def _locked_package(lock: Path, crate: str) -> dict[str, Any] | None:
    try:
        packages = _parsed(lock).get("package", [])
    except (OSError, ValueError):
        return None
    # The resolver's own dependency, as its entry names it ("NAME", "NAME VERSION" or "NAME
    # VERSION (SOURCE)" when ambiguous): a package may depend on another version of itself.
    root = next((p for p in packages if p.get("name") == "cargo-task-resolver" and not p.get("source")), {})
    named = next((d.split() for d in root.get("dependencies", []) if d.split()[0] == crate), [crate])
    version, source = (named[1:2] or [None])[0], " ".join(named[2:]).strip("()") or None
    return next((p for p in packages if p.get("name") == crate and p.get("source")
                 and version in (None, p.get("version")) and source in (None, p.get("source"))), None)  # fmt: skip


def _package_metadata(toolchain: Toolchain, manifest: Path, published: Published, table: str) -> dict[str, Any]:
    """cargo's view of the package (`cargo metadata --no-deps`): name, version, binaries,
    `[package.metadata]`; the chosen one when the manifest is a workspace's."""
    from cargo_task.build import cargo_metadata

    try:
        data = cargo_metadata(toolchain, manifest)  # started in the project, not the package
    except BuildError as e:
        detail = [line for line in e.message.partition(":\n")[2].splitlines() if line.strip()]
        raise BuildError(f"{table}: cargo cannot read the package at `{manifest.parent}`"
                         + (f": {detail[0].strip()}" if detail else ""),
                         help="fix the package's Cargo.toml (a path package inside another "
                         "workspace needs a `[workspace]` table of its own or an `exclude` entry)") from None  # fmt: skip
    packages = data.get("packages", [])
    crate = published.crate
    chosen = [p for p in packages if p.get("name") == crate] if crate else [
        p for p in packages if Path(p.get("manifest_path", "")) == manifest] or packages  # fmt: skip
    if len(chosen) != 1:
        names = ", ".join(sorted(p.get("name", "?") for p in packages))
        raise ConfigError(
            f"{table}: " + (f"no package `{crate}` at `{manifest.parent}`" if crate or not chosen
                            else f"`{manifest.parent}` is a workspace of several packages"),
            help=f'name one with `crate = "..."`: {names}' if names else "check the `from` table",
        )  # fmt: skip
    return {**chosen[0], "__workspace_root": data.get("workspace_root", str(manifest.parent))}


def _choose_bin(metadata: dict[str, Any], published: Published, table: str) -> str:
    bins = sorted(t["name"] for t in metadata.get("targets", []) if "bin" in t.get("kind", []))
    label = f"package `{metadata.get('name')} {metadata.get('version')}`"
    if published.bin is not None:
        if published.bin in bins:
            return published.bin
        raise ConfigError(f"{table}: {label} has no binary `{published.bin}`",
                          help=f"its binaries: {', '.join(bins)}" if bins else "it has no binary at all")  # fmt: skip
    if len(bins) == 1:
        return bins[0]
    if not bins:
        raise ConfigError(f"{table}: {label} has no binary, so it cannot be a task",
                          help="a task comes from a package with a `src/main.rs` or a `[[bin]]` target")  # fmt: skip
    raise ConfigError(f"{table}: {label} has several binaries: {', '.join(bins)}",
                      help=f'pick one with `bin = "{bins[0]}"` in the `from` table')  # fmt: skip


_NETWORK = ("Could not resolve host", "failed to connect", "Couldn't connect", "network failure",
            "spurious network error", "failed to download", "timed out", "SSL", "Connection refused",
            "failed to query replaced source", "failed to fetch", "failed to clone")  # fmt: skip


def _resolution_error(published: Published, name: str, messages: str) -> BuildError:
    import re

    table = f"[{published.table}]"
    lines = [line.strip() for line in messages.splitlines() if line.strip()]
    said = " ".join(lines)
    crate, wanted = published.crate, published.get("version")
    offline = "offline" in said and ("--offline" in said or "offline mode" in said)
    if offline and "no matching package named" not in said and "failed to select a version" not in said:
        return BuildError(f"{table}: `{crate}` must be downloaded, but cargo is offline",
                          help="connect to the network and run again, or unset CARGO_NET_OFFLINE / `net.offline`")  # fmt: skip
    if "no matching package named" in said:
        return BuildError(f"{table}: no crate `{crate}` in the registry",
                          help="check `crate` in the `from` table (cargo's name, as on crates.io)"
                          + ("; cargo is offline, so it knows only what it downloaded before" if offline else ""))  # fmt: skip
    if "failed to select a version" in said or "candidate versions found" in said:
        candidates = re.search(r"candidate versions found which didn't match: ([^\n]+?)(?: location|$| +\S+ searched)", said)
        return BuildError(f"{table}: no version of `{crate}` matches `{wanted}`",
                          help=f"versions there: {candidates.group(1).strip()}" if candidates
                          else "check `version` in the `from` table (cargo's semver syntax)")  # fmt: skip
    if any(marker in said for marker in _NETWORK):
        where = published.get("git") or published.get("registry") or "crates.io"
        detail = next((line for line in reversed(lines) if any(m in line for m in _NETWORK)), lines[-1])
        return BuildError(f"{table}: could not reach `{where}` to resolve `{crate}` ({detail})",
                          help="check the network (and `git`, `tag`, `branch`, `rev` for a git source), then run again")  # fmt: skip
    detail = lines[-1] if lines else "no message"
    return BuildError(f"{table}: cargo could not resolve `{crate}`: {detail}",
                      help=f"check the `from` table; `cargo task --update {name}` resolves it again")  # fmt: skip


def _disagreement(entry: dict[str, Any], package: str, version: str, checksum: str | None,
                 commit: str | None) -> str | None:  # fmt: skip
    """How a pinned resolution differs from the lock entry it was pinned by, or None."""
    import json

    for key, said in (("package", package), ("version", version), ("checksum", checksum), ("commit", commit)):
        if entry.get(key) != said:  # the lock's value as a JSON string: no line of its own
            return f"its {key} is `{said}`, the lock file says {json.dumps(entry.get(key))}"
    return None
