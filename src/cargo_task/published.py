"""Tasks from crates.io, git and path: a package's binary as a task (`from = {...}`).

Three steps, each with its own rights:

- resolution (`resolve`): a private resolver package under `<target>/cargo-task/published/`
  whose one dependency is the `from` table, handed to `cargo vendor`. cargo resolves the
  version (or the git commit), downloads, checks the checksum and copies the package into a
  directory of ours, so nothing here knows cargo's registry or git layout. Unconfined but
  running no build code; the only step that may use the network. The resolver's Cargo.lock
  says the exact version, source and checksum; `cargo-task.lock` keeps them (`lockfile`).
  Later resolutions pin them (`version = "=x.y.z"`, `rev = COMMIT`) and must agree.
- build: the package as its own cargo project, in a private target directory, by
  `build.build_task` exactly as a local task is built (fetch unconfined, then a confined
  `--offline --locked` build that may write only the private target directory). A `path`
  source builds in place; its files join the protected set.
- run: exactly like a local task (`pipeline.run`): argv[0] is the task's name, the grants
  are the task table's, `CARGO_MANIFEST_DIR` the declaring owner's directory.

A package may describe itself in `[package.metadata.task]`: `description`, and the grants
it asks for. Asked-for grants are recorded and shown, never applied.
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
    from cargo_task.discovery import Task
    from cargo_task.pipeline import Request, Selection
    from cargo_task.terminal import Reporter

# Keys of `[package.metadata.task]` that ask for grants (a task table's, minus the ones
# that only the user's manifest can say).
ASKABLE = ("read", "write", "allow-write-manifest", "network", "stdin", "tmp", "timeout", "memory",
           "env", "inherit-env", "commands", "allow-unconfined-commands")  # fmt: skip
_PROFILE = ("--config", "profile.dev.debug=false", "--config", 'profile.dev.strip="debuginfo"')


def task_source(published: Published) -> Path:
    """What `Task.source` names for a published task: the path package's manifest, or the
    lock file that pins the package (so that no `write` grant may cover either)."""
    if published.path is not None:
        return published.path / "Cargo.toml"
    return lockfile.lock_path(published.manifest)


def table_name(task: Task) -> str:
    published = task.settings.published
    assert published is not None
    return f"[{published.table}]"


def written(published: Published) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in published.written}


def lock_entry(published: Published) -> dict[str, Any] | None:
    return lockfile.read(lockfile.lock_path(published.manifest)).get(published.table)


def description(task: Task) -> str:
    """For the listing: what the package says of itself; never an error (the run says it)."""
    published = task.settings.published
    assert published is not None
    try:
        if published.path is not None:
            return _self_description(_manifest_data(published.path / "Cargo.toml"))
        entry = lock_entry(published)
    except (ConfigError, OSError, ValueError):
        return ""
    if entry is None:
        return f"(from `{published.crate}`, not resolved yet: `cargo task --update {task.name}`)"
    return str(entry.get("description", ""))


def _manifest_data(path: Path) -> dict[str, Any]:
    from cargo_task.workspace import read_toml

    try:
        return read_toml(path)
    except ConfigError as e:
        raise ValueError(e.message) from None


def _self_description(data: dict[str, Any]) -> str:
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
    from cargo_task.config import _KEYS

    asks = {}
    for key, value in _asks_table(metadata).items():
        if key in ASKABLE:
            try:
                _KEYS[key][1](value)
            except ValueError:
                continue
            asks[key] = value
    return asks


# -- resolution ------------------------------------------------------------------------


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

    def entry(self, published: Published) -> dict[str, Any]:
        return {
            "table": published.table, "from": written(published), "package": self.package,
            "version": self.version, "source": self.source, "checksum": self.checksum,
            "commit": self.commit, "bin": self.bin, "description": self.description, "asks": self.asks,
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
        elif pinned.get("commit"):
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
    if pinned is not None:  # checked before the copy replaces the one built before
        mismatch = _disagreement(pinned, str(locked["name"]), version, locked.get("checksum"), commit)
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
    metadata = _package_metadata(toolchain, root / "Cargo.toml", published, table)
    return Resolved(
        package=str(locked["name"]), version=version, source=source,
        checksum=locked.get("checksum"), commit=commit, manifest=root / "Cargo.toml", readable=(),
        bin=_choose_bin(metadata, published, table), description=_described(metadata),
        asks=asked_grants(metadata.get("metadata")),
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
    return Resolved(
        package=metadata["name"], version=metadata["version"], source=f"path+{published.get('path')}",
        checksum=None, commit=None, manifest=Path(metadata["manifest_path"]),
        readable=(Path(metadata["manifest_path"]).parent, root),
        bin=_choose_bin(metadata, published, table), description=_described(metadata),
        asks=asked_grants(metadata.get("metadata")),
    )  # fmt: skip


def _described(metadata: dict[str, Any]) -> str:
    return _self_description({"package": {"metadata": metadata.get("metadata"),
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
    return next((p for p in packages if p.get("name") == crate and p.get("source")), None)


def _package_metadata(toolchain: Toolchain, manifest: Path, published: Published, table: str) -> dict[str, Any]:
    """cargo's view of the package (`cargo metadata --no-deps`): name, version, binaries,
    `[package.metadata]`; the chosen one when the manifest is a workspace's."""
    from cargo_task.build import cargo_metadata

    try:
        data = cargo_metadata(toolchain.env | {"CARGO": toolchain.cargo}, manifest)
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


# -- lock file -------------------------------------------------------------------------


def _refusal(published: Published, name: str, why: str, refuse: str) -> ConfigError:
    lock = lockfile.lock_path(published.manifest)
    return ConfigError(
        f"[{published.table}]: `{lock}` must change ({why}), but {refuse} forbids it",
        help=f"run `cargo task --update {name}` and commit `{lockfile.NAME}`",
    )


def locked_resolution(task: Task, directory: Path, toolchain: Toolchain, request: Request,
                      reporter: Reporter, update: bool = False) -> Resolved:  # fmt: skip
    """The task's package as the lock file pins it, resolving afresh when the entry is
    missing, stale or `update` says so, and writing the lock file then (never under
    `--locked` or CI). A pinned resolution that disagrees with the lock is an error."""
    published = task.settings.published
    assert published is not None
    refuse = lockfile.refuses_changes(request.locked, request.environ)
    entry = lock_entry(published)
    stale = "`--update` asked for it" if update else lockfile.stale_reason(entry, written(published))
    if stale and refuse:
        raise _refusal(published, task.name, stale, refuse)
    resolved = resolve(published, task.name, directory, toolchain, None if stale else entry)
    if not stale and entry is not None and published.kind != "path":
        # Pinned by `rev`, cargo names the source by it; the lock keeps the table's own form.
        resolved = resolved._replace(source=str(entry.get("source", resolved.source)))
    new = resolved.entry(published)
    if entry != {k: v for k, v in new.items() if v not in (None, {}, "")}:
        if refuse:
            raise _refusal(published, task.name, stale or "the package changed what it says of itself", refuse)
        lockfile.write_entry(lockfile.lock_path(published.manifest), new)
        reporter.status("Locking", f"`{task.name}` to {resolved.package} v{resolved.version} ({_shown_source(resolved)})")
    return resolved


def _disagreement(entry: dict[str, Any], package: str, version: str, checksum: str | None,
                 commit: str | None) -> str | None:  # fmt: skip
    """How a pinned resolution differs from the lock entry it was pinned by, or None."""
    for key, said in (("package", package), ("version", version), ("checksum", checksum), ("commit", commit)):
        if entry.get(key) != said:
            return f"its {key} is `{said}`, the lock file says `{entry.get(key)}`"
    return None


def _shown_source(resolved: Resolved | dict[str, Any]) -> str:
    source = resolved.source if isinstance(resolved, Resolved) else str(resolved.get("source", ""))
    commit = resolved.commit if isinstance(resolved, Resolved) else resolved.get("commit")
    if source == "registry+https://github.com/rust-lang/crates.io-index":
        return "crates.io"
    if source.startswith("git+"):
        return f"{source[4:].partition('#')[0]} at {str(commit)[:12]}"
    return source.partition("+")[2] or source


def update(selection: Selection, request: Request, reporter: Reporter) -> Resolved:
    """`--update`: resolve the task afresh and write its lock entry."""
    from cargo_task import build

    task = selection.task
    published = task.settings.published
    assert published is not None
    directory = build_directory(selection.build_root, published)
    toolchain = build.Toolchain.from_environment(request.environ, task.owner.root)
    resolved = locked_resolution(task, directory, toolchain, request, reporter, update=True)
    reporter.status("Locked", f"`{task.name}`: {resolved.package} v{resolved.version} ({_shown_source(resolved)})")
    return resolved


# -- build -----------------------------------------------------------------------------


class PackageBuild(NamedTuple):
    """The plan `build.build_task` follows for a published package (a generated package's
    `Scaffold` for a local task): its manifest, and a private directory whose `target` is
    the only place its confined build may write."""

    directory: Path
    manifest: Path
    manifest_dir: Path | None = None  # no rustc wrapper: the package keeps its own
    path_dependencies: tuple[Path, ...] = ()

    @property
    def target_dir(self) -> Path:
        return self.directory / "target"

    def text(self) -> str:
        """What `cargo fetch` is rerun for: the package's manifest and lock file."""
        from cargo_task.fingerprint import stamp

        return f"{self.manifest}\0{stamp(self.manifest)}\0{stamp(self.manifest.parent / 'Cargo.lock')}"

    def wasm(self, bin: str) -> Path:
        from cargo_task.scaffold import PROFILE_DIR, TARGET

        return self.target_dir / TARGET / PROFILE_DIR / f"{bin}.wasm"

    def dep_info(self, bin: str) -> Path:
        from cargo_task.scaffold import PROFILE_DIR, TARGET

        return self.target_dir / TARGET / PROFILE_DIR / f"{bin}.d"


def build_arguments(published: Published) -> tuple[str, ...]:
    """The profile of local tasks (dev without debug info), and the table's features."""
    extra = list(_PROFILE)
    if published.get("features"):
        extra += ["--features", ",".join(published.get("features"))]
    if published.get("default-features") is False:
        extra.append("--no-default-features")
    return tuple(extra)


def static_fingerprint(entry: dict[str, Any], published: Published, toolchain: Toolchain, engine: str,
                       plan: PackageBuild) -> str:  # fmt: skip
    import hashlib
    import json

    from cargo_task import __version__
    from cargo_task.fingerprint import TOOLCHAIN_ENV, cargo_config_files, stamp

    digest = hashlib.sha256()
    for part in (
        __version__, engine, "published", json.dumps(entry, sort_keys=True), *build_arguments(published),
        *(f"{k}={toolchain.env.get(k, '')}" for k in TOOLCHAIN_ENV), str(plan.manifest),
        repr(stamp(plan.manifest)), repr(stamp(plan.manifest.parent / "Cargo.lock")),
        repr(stamp(plan.manifest.parent / "build.rs")),
        *(repr(stamp(f)) for f in cargo_config_files(toolchain.cwd, toolchain.env)),
    ):
        digest.update(part.encode("utf-8", "surrogateescape") + b"\0")
    return digest.hexdigest()


def _plan(directory: Path, published: Published, entry: dict[str, Any]) -> PackageBuild:
    """The build as the lock entry says, known without cargo (a warm run's check). A path
    source is planned at its directory's manifest (a workspace's member is built from
    there too: `cargo metadata` finds it)."""
    if published.path is not None:
        return PackageBuild(directory, published.path / "Cargo.toml")
    return PackageBuild(directory, directory / "vendor" / f"{entry['package']}-{entry['version']}" / "Cargo.toml")


def prepare(selection: Selection, request: Request, reporter: Reporter, trust_cache: bool = True) -> bytes:
    """The published task's compiled component: from the cache when its lock entry, build
    settings and every file its build read are unchanged (no cargo, no registry), else
    resolved as the lock pins it, built and compiled."""
    from cargo_task import build, fingerprint, sandbox
    from cargo_task.cache import Cache
    from cargo_task.files import cache_dir

    task = selection.task
    published = task.settings.published
    assert published is not None
    directory = build_directory(selection.build_root, published)
    toolchain = build.Toolchain.from_environment(request.environ, task.owner.root)
    engine = sandbox.engine_id()
    cache = Cache(cache_dir(request.environ))
    record_name = f"{task.name}.{fingerprint.toolchain_variant(toolchain)}"
    entry = lock_entry(published)
    if entry is not None and trust_cache and not lockfile.stale_reason(entry, written(published)) and entry.get("bin"):
        plan = _plan(directory, published, entry)
        record = cache.load_record(directory, record_name)
        if (record is not None
                and record.fingerprint == static_fingerprint(entry, published, toolchain, engine, plan)
                and fingerprint.still_fresh(record.stamps)):  # fmt: skip
            payload = cache.load_component(record.component)
            if payload is not None:
                reporter.note(f"`{task.name}` is fresh; using its compiled component")
                return payload
    return _build(selection, request, reporter, directory, toolchain, engine, cache, record_name, trust_cache)


def _build(selection: Selection, request: Request, reporter: Reporter, directory: Path, toolchain: Toolchain,
           engine: str, cache, record_name: str, trust_cache: bool) -> bytes:  # fmt: skip
    from cargo_task import build, confine, fingerprint, sandbox
    from cargo_task.buildview import check_task_inputs
    from cargo_task.cache import Record, component_key
    from cargo_task.discovery import discover_everywhere

    task = selection.task
    published = task.settings.published
    assert published is not None
    resolved = locked_resolution(task, directory, toolchain, request, reporter)
    entry = lock_entry(published) or resolved.entry(published)
    plan = PackageBuild(directory, resolved.manifest)
    fingerprint_plan = _plan(directory, published, entry)
    try:
        plan.target_dir.mkdir(parents=True, exist_ok=True)
        started = _mark(directory)
    except OSError as e:
        raise BuildError(f"[{published.table}]: could not prepare `{directory}`: {e.strerror}") from None
    if not confine.available():
        reporter.warning("the build is not confined: this system offers no Landlock, so the "
                         "package's build scripts and proc-macros run with your rights")  # fmt: skip
    reporter.status("Building", f"task `{task.name}` from {resolved.package} v{resolved.version} ({_shown_source(resolved)})")
    try:
        sysroot = build.build_task(toolchain, plan, resolved.bin, request.verbosity, request.color,
                                   readable=list(resolved.readable), extra=build_arguments(published))  # fmt: skip
    except BuildError as e:
        if not e.message.startswith("could not compile"):
            raise
        raise BuildError(
            f"[{published.table}]: package `{resolved.package} {resolved.version}` does not build for "
            f"wasm32-wasip2 ({e.message.partition('(')[2].rstrip(')') or 'cargo failed'})",
            help="the compiler's messages above name the problem; a task's package must build with "
            "`cargo build --target wasm32-wasip2` and read nothing outside its own sources",
        ) from None
    sources = fingerprint.dep_info_sources(plan.dep_info(resolved.bin), toolchain.cwd)
    check_task_inputs(task, sources, discover_everywhere(selection.project), selection.project_root)
    wasm = plan.wasm(resolved.bin).read_bytes()
    key = component_key(wasm, engine)
    payload = cache.load_component(key) if trust_cache else None
    if payload is None:
        reporter.status("Compiling", f"`{task.name}` to native code with Wasmtime")
        payload = sandbox.compile_component(wasm, task.name)
        _keep(reporter, lambda: cache.save_component(key, payload))
    stamps = [fingerprint.stamp(s) for s in sources] + fingerprint.toolchain_stamps(sysroot)
    if all(size >= 0 for _, _, size in stamps) and all(mtime < started for _, mtime, _ in stamps[: len(sources)]):
        static = static_fingerprint(entry, published, toolchain, engine, fingerprint_plan)
        _keep(reporter, lambda: cache.save_record(directory, record_name, Record(static, stamps, key)))
    return payload


def _mark(directory: Path) -> int:
    mark = directory / "build-started"
    mark.touch()
    return mark.stat().st_mtime_ns


def _keep(reporter: Reporter, save) -> None:
    try:
        save()
    except OSError as e:
        reporter.warning(f"could not write cargo-task's cache ({e.filename}: {e.strerror}); "
                         "the next run will build again")  # fmt: skip


# -- explain ---------------------------------------------------------------------------


def explain_lines(task: Task) -> list[str]:
    """Where the task comes from, and what it asks for beside what it is granted."""
    import json

    published = task.settings.published
    assert published is not None
    try:
        entry = lock_entry(published)
    except ConfigError as e:
        entry, problem = None, e.message
    else:
        problem = None
    lines = [f"from:     {published.kind} " + ", ".join(f"{k} = {json.dumps(v)}" for k, v in written(published).items())]
    if entry is None:
        lines.append(f"  locked:  {problem or 'not yet: the first run (or `cargo task --update ' + task.name + '`) resolves it'}")
        asks = {}
    else:
        pin = f"checksum {entry['checksum']}" if entry.get("checksum") else (
            f"commit {entry['commit']}" if entry.get("commit") else "path source (built from its files as they are)")  # fmt: skip
        lines.append(f"  locked:  {entry.get('package')} {entry.get('version')} from {_shown_source(entry)}; "
                     f"{pin}; binary `{entry.get('bin')}` ({lockfile.lock_path(published.manifest)})")  # fmt: skip
        asks = entry.get("asks", {}) if isinstance(entry.get("asks"), dict) else {}
    if published.path is not None:  # asks as the package says now
        try:
            asks = asked_grants(_manifest_data(published.path / "Cargo.toml").get("package", {}).get("metadata"))
        except (OSError, ValueError):
            pass
    granted = _granted(task)
    lines.append("grants the package asks for (never applied by itself) vs granted by the task's table:")
    for key in sorted(set(asks) | set(granted)):
        said = f"{key} = {_toml(asks[key])}" if key in asks else "-"
        lines.append(f"  asks {said:<36} granted {granted.get(key, 'no')}")
    if not asks and not granted:
        lines.append("  asks nothing; granted nothing beyond the default")
    return lines


def build_lines(selection: Selection, abi: int) -> list[str]:
    published = selection.task.settings.published
    assert published is not None
    target = build_directory(selection.build_root, published) / "target"
    fetched = ("resolved and downloaded beforehand (`cargo vendor`, then `cargo fetch`), unconfined "
               "but running no build code")  # fmt: skip
    if abi:
        return [f"build: the package on its own, confined (Landlock ABI {abi}): cargo, rustc, its "
                "build scripts and proc-macros read only its sources, the toolchain, cargo's "
                f"downloaded sources and system directories, write only {target} and a private "
                f"temp dir, and open no network connection; its crates are {fetched}"]  # fmt: skip
    return ["build: NOT confined: this system offers no Landlock (Linux 5.13+), so the package's "
            f"build scripts and proc-macros run with your rights; its crates are {fetched}"]


def _toml(value: Any) -> str:
    from cargo_task.scaffold import toml_value

    return toml_value(value)


def _granted(task: Task) -> dict[str, str]:
    """The grants of the task's table, as the user wrote them (near enough)."""
    s = task.settings
    shown = {
        "read": s.read and _toml([g.written for g in s.read]),
        "write": s.write and _toml([g.written for g in s.write]),
        "allow-write-manifest": s.allow_write_manifest and "true",
        "network": s.network and "true", "stdin": s.stdin and "true", "tmp": s.tmp and "true",
        "timeout": s.timeout and f"{s.timeout:g}s", "memory": s.memory and str(s.memory),
        "env": s.env and _toml(dict(s.env)),
        "inherit-env": s.inherit_env and (_toml(list(s.inherit_env)) if not isinstance(s.inherit_env, bool) else "true"),
        "commands": s.commands and _toml([" ".join(c) for c in s.commands]),
        "allow-unconfined-commands": s.allow_unconfined_commands and "true",
    }  # fmt: skip
    return {k: v for k, v in shown.items() if v}
