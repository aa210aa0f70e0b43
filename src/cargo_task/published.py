"""Tasks from crates.io, git and path: a package's binary as a task (`from = {...}`).

Three steps, each with its own rights:

- resolution (`resolution.py`): unconfined, running no build code, the only step that may
  use the network; only on a cold build whose lock entry is missing or stale, or on
  `--update`. `locked_resolution` keeps `cargo-task.lock` (`lockfile`): a pinned
  resolution must agree with it, and `--locked` or CI forbid changing it.
- build: the package as its own cargo project, in a private target directory, by
  `build.build_task` exactly as a local task is built (fetch unconfined, then a confined
  `--offline --locked` build that may write only the private target directory). A `path`
  source builds in place; its directory joins the protected set (`buildview`).
- run: exactly like a local task (`pipeline.run`): argv[0] is the task's name, the grants
  are the task table's, `CARGO_MANIFEST_DIR` the declaring owner's directory.

A package may describe itself in `[package.metadata.task]`: `description`, and the grants
it asks for. Asked-for grants are recorded and shown, never applied.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, NamedTuple

from cargo_task import lockfile
from cargo_task.config import Published
from cargo_task.errors import BuildError, ConfigError
from cargo_task.resolution import Resolved, asked_grants, build_directory, resolve, reuse, self_description, written

if TYPE_CHECKING:
    from cargo_task.build import Toolchain
    from cargo_task.discovery import Task
    from cargo_task.pipeline import Request, Selection
    from cargo_task.sandbox import Compiled
    from cargo_task.terminal import Reporter

# Local tasks' profile (`scaffold.PROFILE_TABLE`) as cargo configuration, which outranks
# the package's own `[profile.dev]`: no debug info, what reaches the wasm at opt-level 1,
# what runs at build time at 0. Unlike a local task's own crate, the package's is at 1 too:
# nobody edits it between runs, so there is no edit-run loop to keep fast.
_PROFILE = ("--config", "profile.dev.debug=false", "--config", 'profile.dev.strip="debuginfo"',
            "--config", "profile.dev.opt-level=1", "--config", "profile.dev.build-override.opt-level=0")


def task_source(published: Published) -> Path:
    """What `Task.source` names for a published task: the path package's manifest, or the
    lock file that pins the package (so that no `write` grant may cover either)."""
    if published.path is not None:
        return published.path / "Cargo.toml"
    return lockfile.lock_path(published.manifest)


def lock_entry(published: Published) -> dict[str, Any] | None:
    return lockfile.read(lockfile.lock_path(published.manifest)).get(published.table)


def path_manifest(published: Published, entry: dict[str, Any] | None) -> Path:
    """A path source's own Cargo.toml: the member's, when the path is a workspace and the
    lock says which member (`crate`) it resolved to."""
    assert published.path is not None
    member = entry.get("member") if entry else None
    if isinstance(member, str) and not os.path.isabs(member) and ".." not in Path(member).parts:
        return published.path / member / "Cargo.toml"
    return published.path / "Cargo.toml"


def description(task: Task) -> str:
    """For the listing: what the package says of itself; never an error (the run says it)."""
    published = task.settings.published
    assert published is not None
    try:
        entry = lock_entry(published)
        if published.path is not None:
            return self_description(_manifest_data(path_manifest(published, entry)))
    except (ConfigError, OSError, ValueError):
        return ""
    if entry is None:
        return f"(from `{published.crate}`, not resolved yet: `cargo task --update {task.name}`)"
    return " ".join(str(entry.get("description", "")).split())  # one line, whatever the lock says


def _manifest_data(path: Path) -> dict[str, Any]:
    from cargo_task.workspace import read_toml

    try:
        return read_toml(path)
    except ConfigError as e:
        raise ValueError(e.message) from None


# -- lock file -------------------------------------------------------------------------


def _refusal(published: Published, name: str, why: str, refuse: str) -> ConfigError:
    lock = lockfile.lock_path(published.manifest)
    return ConfigError(
        f"[{published.table}]: `{lock}` must change ({why}), but {refuse} forbids it",
        help=f"run `cargo task --update {name}` and commit `{lockfile.NAME}`",
    )


@contextmanager
def one_run_at_a_time(published: Published, directory: Path) -> Iterator[None]:
    """Runs of one table take turns (an editor's `--build` and a terminal's run, say), from
    resolving to the end of the build: resolving replaces the private copy another run may
    be building from. A path package has no copy."""
    from cargo_task.files import lock_directory

    if published.kind == "path":
        yield
        return
    try:
        held = lock_directory(directory)
    except OSError as e:
        raise BuildError(f"[{published.table}]: could not prepare `{directory}`: {e.strerror}") from None
    try:
        yield
    finally:
        os.close(held)  # releases the lock


def locked_resolution(task: Task, directory: Path, toolchain: Toolchain, request: Request,
                      reporter: Reporter, update: bool = False) -> Resolved:  # fmt: skip
    """The task's package as the lock file pins it, resolving afresh when the entry is
    missing, stale or `update` says so, and writing the lock file then (never under
    `--locked` or CI). A pinned resolution that disagrees with the lock is an error.
    Called within `one_run_at_a_time`."""
    published = task.settings.published
    assert published is not None
    refuse = lockfile.refuses_changes(request.locked, request.environ)
    entry = lock_entry(published)
    stale = "`--update` asked for it" if update else lockfile.stale_reason(entry, written(published))
    if stale and refuse:
        raise _refusal(published, task.name, stale, refuse)
    kept = reuse(published, directory, toolchain, entry) if not stale and entry and published.kind != "path" else None
    resolved = kept or resolve(published, task.name, directory, toolchain, None if stale else entry)
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
    with one_run_at_a_time(published, directory):
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

    @property
    def build_dir(self) -> Path:
        """Its own: a published package shares built dependencies with no other build."""
        return self.target_dir

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
        return PackageBuild(directory, path_manifest(published, entry))
    return PackageBuild(directory, directory / "vendor" / f"{entry['package']}-{entry['version']}" / "Cargo.toml")


def wasm_file(selection: Selection) -> Path | None:
    """Where the published task's wasm is, once built as its lock entry pins it."""
    published = selection.task.settings.published
    entry = lock_entry(published) if published is not None else None
    if published is None or entry is None or not entry.get("bin"):
        return None
    return _plan(build_directory(selection.build_root, published), published, entry).wasm(entry["bin"])


def prepare(selection: Selection, request: Request, reporter: Reporter, trust_cache: bool = True,
            for_build: bool = False) -> Compiled:  # fmt: skip
    """The published task's compiled component: from the cache when its lock entry, build
    settings and every file its build read are unchanged (no cargo, no registry), else
    resolved as the lock pins it, built and compiled."""
    from cargo_task import build, fingerprint, sandbox
    from cargo_task.cache import Cache
    from cargo_task.files import cache_dir
    from cargo_task.machinecode import cached_code, compiler_choice, compiler_for_build

    task = selection.task
    published = task.settings.published
    assert published is not None
    directory = build_directory(selection.build_root, published)
    toolchain = build.Toolchain.from_environment(request.environ, task.owner.root)
    engine = sandbox.engine_id()
    cache = Cache(cache_dir(request.environ))
    record_name = f"{task.name}.{fingerprint.toolchain_variant(toolchain)}"
    entry = lock_entry(published)
    compiler = compiler_choice(request.environ)
    compiler = compiler_for_build(compiler) if for_build else compiler
    if entry is not None and trust_cache and not lockfile.stale_reason(entry, written(published)) and entry.get("bin"):
        plan = _plan(directory, published, entry)
        record = cache.load_record(directory, record_name)
        if (record is not None
                and record.fingerprint == static_fingerprint(entry, published, toolchain, engine, plan)
                and fingerprint.still_fresh(record.stamps)):  # fmt: skip
            payload = cached_code(cache, record.wasm, compiler)
            if payload is not None:
                reporter.note(f"`{task.name}` is fresh; using its compiled component ({payload.strategy})")
                return payload
    return _build(selection, request, reporter, directory, toolchain, engine, cache, record_name,
                  trust_cache, compiler)  # fmt: skip


def _build(selection: Selection, request: Request, reporter: Reporter, directory: Path, toolchain: Toolchain,
           engine: str, cache, record_name: str, trust_cache: bool, compiler: str) -> Compiled:  # fmt: skip
    published = selection.task.settings.published
    assert published is not None
    with one_run_at_a_time(published, directory):
        return _resolve_and_build(selection, request, reporter, directory, toolchain, engine, cache,
                                  record_name, trust_cache, compiler)  # fmt: skip


def _resolve_and_build(selection: Selection, request: Request, reporter: Reporter, directory: Path,
                       toolchain: Toolchain, engine: str, cache, record_name: str, trust_cache: bool,
                       compiler: str) -> Compiled:  # fmt: skip
    from cargo_task import build, confine, fingerprint
    from cargo_task.buildview import check_task_inputs
    from cargo_task.cache import Record
    from cargo_task.discovery import discover_everywhere
    from cargo_task.machinecode import compile_wasm, keep_in_cache
    from cargo_task.scaffold import mark_build_start

    task = selection.task
    published = task.settings.published
    assert published is not None
    resolved = locked_resolution(task, directory, toolchain, request, reporter)
    entry = lock_entry(published) or resolved.entry(published)
    plan = PackageBuild(directory, resolved.manifest)
    fingerprint_plan = _plan(directory, published, entry)
    try:
        plan.target_dir.mkdir(parents=True, exist_ok=True)
        started = mark_build_start(directory)
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
    payload = compile_wasm(cache, plan.wasm(resolved.bin).read_bytes(), task.name, compiler, reporter, trust_cache)
    directory_of = fingerprint_plan.manifest.parent  # what the static fingerprint stamps
    configuration = [fingerprint_plan.manifest, directory_of / "build.rs",  # not Cargo.lock: the fetch may write it
                     *fingerprint.cargo_config_files(toolchain.cwd, toolchain.env)]  # fmt: skip
    stamps = fingerprint.stamps_of_steady_build(sources, sysroot, configuration, started)
    if stamps is not None:
        static = static_fingerprint(entry, published, toolchain, engine, fingerprint_plan)
        keep_in_cache(reporter, lambda: cache.save_record(directory, record_name, Record(static, stamps, payload.wasm)))
    return payload


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
    else:
        pin = f"checksum {entry['checksum']}" if entry.get("checksum") else (
            f"commit {entry['commit']}" if entry.get("commit") else "path source (built from its files as they are)")  # fmt: skip
        said = (f"{entry.get('package')} {entry.get('version')} from {_shown_source(entry)}; {pin}; "
                f"binary `{entry.get('bin')}`")  # as the lock says: one line whatever it holds
        lines.append(f"  locked:  {' '.join(said.split())} ({lockfile.lock_path(published.manifest)})")
    asks = _asks_now(published, entry)
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


def _asks_now(published: Published, entry: dict[str, Any] | None) -> dict[str, Any]:
    """What the package asks for: as it says now for a path package, else as locked."""
    if published.path is not None:
        try:
            data = _manifest_data(path_manifest(published, entry))
            return asked_grants(data.get("package", {}).get("metadata"))
        except (OSError, ValueError):
            pass
    locked = entry.get("asks", {}) if entry else {}
    return locked if isinstance(locked, dict) else {}


def ungranted_asks(task: Task) -> list[str]:
    """The grants a published task asks for that its table does not give (for the hint
    after it fails)."""
    published = task.settings.published
    if published is None:
        return []
    try:
        entry = lock_entry(published)
    except ConfigError:
        entry = None
    granted = _granted(task)
    return sorted(key for key in _asks_now(published, entry) if key not in granted)


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
