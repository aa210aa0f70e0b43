"""What cargo reads and runs to build the project and its tasks: what no task may write.

Learned from cargo itself, not from well-known names: `cargo metadata` for the whole
workspace and for every path task-dependency (every package built from a path, its
manifest, build script and proc-macro sources, the target directory as configured), the
dep-info cargo wrote for the build-time code of the project's builds (build scripts and
what they `include!` or watch, proc-macros), and the dep-info of every task build the tool
recorded. Each part is kept in the cache with stamps of the files it came from, so a warm
run starts no cargo.

Deliberately not protected: ordinary library and binary sources of the user's own
packages. Writing them is what code generation is for; that code runs when the user runs
the program, not while anything is built and not inside another task.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Iterable, NamedTuple

from cargo_task.discovery import Task
from cargo_task.files import write_atomic
from cargo_task.fingerprint import Stamp, dep_info_sources, stamp, still_fresh
from cargo_task.workspace import Project

_VERSION = 2
# `cargo metadata` target kinds of code that runs on the host at build time.
BUILD_SCRIPT, PROC_MACRO = "custom-build", "proc-macro"


def _is(target: dict, kind: str) -> bool:
    return kind in target.get("kind", [])


class Protected(NamedTuple):
    path: Path  # real path
    why: str  # what it is, for the message: "the build script of package `foo`"


def _real(path: Path | str) -> Path:
    return Path(os.path.realpath(path))


def _source_dir(src_path: Path, package_root: Path) -> Path:
    """Where a target's modules live: its file's directory, or the file alone when that is
    the package root (a build.rs at the root must not protect the whole package)."""
    return src_path if src_path.parent == package_root else src_path.parent


def from_metadata(metadata: dict, task_dependency_roots: Iterable[Path] = ()) -> list[Protected]:
    """Protected paths in one `cargo metadata` answer: every package built from a path, and
    every target directory."""
    dependency_roots = {_real(r) for r in task_dependency_roots}
    found: list[Protected] = []
    for package in metadata.get("packages", []):
        if package.get("source") is not None:
            continue  # from a registry or git: lives in CARGO_HOME, protected whole
        manifest = Path(package["manifest_path"])
        root, name = manifest.parent, package.get("name", "?")
        found.append(Protected(_real(manifest), f"the manifest of package `{name}`"))
        found.append(Protected(_real(root / "Cargo.lock"), f"the lock file of package `{name}`"))
        feeds_tasks = _real(root) in dependency_roots
        for target in package.get("targets", []):
            source = Path(target["src_path"])
            if _is(target, BUILD_SCRIPT):
                found.append(Protected(_real(source), f"the build script of package `{name}`, "
                                       "which runs on the host at every build"))  # fmt: skip
                found.append(Protected(_real(_source_dir(source, root)),
                                       f"the build script's sources of package `{name}`"))  # fmt: skip
            elif _is(target, PROC_MACRO):
                found.append(Protected(_real(_source_dir(source, root)), f"the sources of "
                                       f"proc-macro package `{name}`, which runs on the host at build time"))  # fmt: skip
            elif feeds_tasks:
                found.append(Protected(_real(_source_dir(source, root)), f"the sources of "
                                       f"package `{name}`, which tasks are built from"))  # fmt: skip
    for key in ("target_directory", "build_directory"):
        if metadata.get(key):
            found += cargo_output(Path(metadata[key]))
    return found


def cargo_output(target: Path) -> list[Protected]:
    """What cargo runs or trusts in a target directory: its profile and target-triple
    directories (build scripts, binaries, fingerprints) and cargo-task's own. Other
    subdirectories (`target/dist`, `target/doc`) may be granted."""
    named = [target / n for n in ("cargo-task", "debug", "release", ".rustc_info.json", "build")]
    try:
        entries = [e for e in target.iterdir() if e.is_dir()]
    except OSError:
        entries = []
    used = [e for e in entries if any((e / n).exists() for n in (".fingerprint", "debug", "release", "deps"))]
    why = f"cargo's build output in `{target}`, which it runs and trusts"
    return [Protected(_real(p), why) for p in dict.fromkeys(named + used)]


def build_time_sources(target_dirs: Iterable[Path], workspace_root: Path, proc_macros: set[str],
                       package_roots: dict[str, list[str]],
                       build_scripts: dict[str, list[str]] | None = None) -> tuple[list[Protected], list[Stamp]]:
    """Files the project's build-time code was built from or watches, from cargo's dep-info:
    build scripts (and what they `include!`), their `rerun-if-changed` files, proc-macros.
    Also the stamps that say when to look again (cargo adds entries to these directories)."""
    build_scripts = build_scripts or {}
    found: list[Protected] = []
    target_dirs = list(target_dirs)
    # A new profile or target-triple directory must make this stale, even from nothing.
    stamps: list[Stamp] = [stamp(t) for t in target_dirs]
    stamps += [stamp(child) for t in target_dirs for child in _children(t)]
    built: set[str] = set()
    for profile in _profile_dirs(target_dirs):
        build, deps = profile / "build", profile / "deps"
        stamps += [stamp(profile), stamp(build), stamp(deps)]
        for script in _children(build):
            stamps.append(stamp(script))
            for entry in _files(script):
                if entry.name.startswith("build_script_") and entry.suffix == ".d":
                    built.add(script.name.rpartition("-")[0])
                    why = f"a file the build script `{script.name}` was built from"
                    found += _dep_info(entry, workspace_root, why)
                elif entry.name == "output":
                    package = script.name.rpartition("-")[0]
                    found += _rerun_if_changed(entry, package_roots.get(package, []))
        for entry in _files(deps):
            crate = entry.name.rpartition("-")[0]
            if entry.suffix == ".d" and crate in proc_macros:
                found += _dep_info(entry, workspace_root, f"a source of proc-macro `{crate}`")
    # A build script cargo has not built yet may `include!` or `#[path]` anything: until
    # its dep-info says what, its whole package is protected.
    for package, roots in build_scripts.items():
        if package.replace("-", "_") not in {b.replace("-", "_") for b in built}:
            found += [Protected(_real(r), f"package `{package}`, whose build script has not been "
                                "built yet (what it reads is known after one `cargo build`)")
                      for r in roots]  # fmt: skip
    return found, stamps


def _profile_dirs(target_dirs: Iterable[Path]) -> list[Path]:
    """`target/debug`, `target/release`, `target/<triple>/debug`, ...: where cargo built."""
    found = []
    for target in target_dirs:
        for candidate in (target, *_children(target)):
            for profile in _children(candidate):
                if (profile / ".fingerprint").is_dir() and (profile / "deps").is_dir():
                    found.append(profile)
    return list(dict.fromkeys(found))


def _children(directory: Path) -> list[Path]:
    try:
        return [e for e in directory.iterdir() if e.is_dir() and not e.is_symlink()] if directory.is_dir() else []
    except OSError:
        return []


def _files(directory: Path) -> list[Path]:
    try:
        return [e for e in directory.iterdir() if not e.is_dir()]
    except OSError:
        return []


def _dep_info(path: Path, workspace_root: Path, why: str) -> list[Protected]:
    try:  # relative entries are relative to the workspace root, where cargo ran rustc
        return [Protected(_real(s), why) for s in dep_info_sources(path, workspace_root)]
    except (OSError, UnicodeError):
        return []


def _rerun_if_changed(output: Path, package_roots: list[str]) -> list[Protected]:
    """The files a build script watches; relative ones are relative to its package."""
    try:
        lines = output.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []
    found = []
    for line in lines:
        for prefix in ("cargo:rerun-if-changed=", "cargo::rerun-if-changed="):
            if line.startswith(prefix):
                watched = line[len(prefix):]
                bases = [""] if os.path.isabs(watched) else package_roots
                found += [Protected(_real(os.path.join(b, watched)), "a file a build script watches")
                          for b in bases]  # fmt: skip
    return found


def task_build_sources(records: Iterable[tuple[str, list[Stamp]]]) -> list[Protected]:
    """Every file a recorded task build read (modules, `include!`, path dependencies)."""
    return [
        Protected(_real(path), f"a file task `{task}` is built from")
        for task, stamps in records
        for path, _, _ in stamps
    ]


# -- what is kept between runs ----------------------------------------------------------


class CargoView(NamedTuple):
    """What `cargo metadata` said, reduced to what the checks need."""

    protected: list[Protected]
    proc_macros: list[str]  # crate names, as in `deps/NAME-HASH.d`
    package_roots: dict[str, list[str]]  # package name -> directories (for build outputs)
    target_dirs: list[str]
    build_scripts: dict[str, list[str]]  # packages with a build script -> their directories


def _load(entry: Path) -> dict | None:
    from cargo_task.files import PrivateTree

    try:
        raw = PrivateTree(entry.parent.parent).read(entry)  # decides grants: only if private
        if raw is None:
            return None
        data = json.loads(raw)
        stamps = [(str(p), int(m), int(s)) for p, m, s in data["stamps"]]
        if data.get("version") == _VERSION and still_fresh(stamps):
            return data
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return None


def _save(entry: Path, stamps: list[Stamp], value: dict) -> None:
    try:
        write_atomic(entry, json.dumps({"version": _VERSION, "stamps": stamps, **value}).encode())
    except OSError:
        pass  # the next run works it out again


def _entry(cache_root: Path, kind: str, key: str) -> Path:
    digest = hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()[:20]
    return cache_root / "views" / f"{kind}-{digest}.json"


def _pairs(protected: list[Protected]) -> list[tuple[str, str]]:
    return [(str(p.path), p.why) for p in protected]


def _unpairs(pairs: list) -> list[Protected]:
    return [Protected(Path(p), str(w)) for p, w in pairs]


def cargo_view(root_manifest: Path, dependencies: list[Path], environ: dict[str, str], cache_root: Path) -> CargoView:
    """What cargo says of the workspace and of everything built from a path, kept while
    their manifests and cargo's configuration are unchanged.

    `cargo metadata --no-deps` for the workspace, then for every path dependency (of its
    packages, of the path task-dependencies, and of `[patch]` tables), transitively: it
    resolves nothing, so it needs no network and never writes the project's Cargo.lock.
    """
    entry = _entry(cache_root, "cargo", "\0".join(map(str, [root_manifest, *dependencies])))
    data = _load(entry)
    if data is not None:
        return CargoView(_unpairs(data["protected"]), data["proc_macros"], data["package_roots"],
                         data["target_dirs"], data["build_scripts"])  # fmt: skip
    from cargo_task import build
    from cargo_task.fingerprint import cargo_config_files

    protected: list[Protected] = []
    macros: set[str] = set()
    roots: dict[str, list[str]] = {}
    scripts: dict[str, list[str]] = {}
    targets: list[str] = []
    inputs = [str(f) for f in cargo_config_files(root_manifest.parent, environ)]
    toolchain = build.Toolchain.from_environment(environ, root_manifest.parent)
    queue = [root_manifest, *(d / "Cargo.toml" for d in dependencies), *_patched(root_manifest)]
    seen: set[str] = set()
    while queue:
        manifest = queue.pop(0)
        if str(_real(manifest)) in seen or not manifest.is_file():
            continue
        metadata = build.cargo_metadata(toolchain, manifest)
        protected += from_metadata(metadata, dependencies)
        targets += [metadata[k] for k in ("target_directory", "build_directory") if metadata.get(k)]
        inputs.append(os.path.join(metadata.get("workspace_root", str(manifest.parent)), "Cargo.lock"))
        for package in metadata.get("packages", []):
            seen.add(str(_real(package["manifest_path"])))
            inputs.append(package["manifest_path"])
            roots.setdefault(package["name"], []).append(str(Path(package["manifest_path"]).parent))
            if any(_is(t, BUILD_SCRIPT) for t in package.get("targets", [])):
                scripts.setdefault(package["name"], []).append(str(Path(package["manifest_path"]).parent))
            macros |= {t["name"].replace("-", "_") for t in package.get("targets", [])
                       if _is(t, PROC_MACRO)}  # fmt: skip
            queue += [Path(d["path"]) / "Cargo.toml" for d in package.get("dependencies", []) if d.get("path")]
        seen.add(str(_real(manifest)))
    view = CargoView(protected, sorted(macros), roots, sorted(set(targets)), scripts)
    _save(entry, [stamp(p) for p in sorted(set(inputs))],
          {"protected": _pairs(protected), "proc_macros": view.proc_macros,
           "package_roots": roots, "target_dirs": view.target_dirs,
           "build_scripts": scripts})  # fmt: skip
    return view


def _patched(manifest: Path) -> list[Path]:
    """Manifests of `[patch.*]` and `[replace]` entries built from a path."""
    from cargo_task.workspace import read_manifest

    try:
        data = read_manifest(manifest).data
    except Exception:  # cargo metadata reports a broken manifest better
        return []
    tables = [t for t in (data.get("patch") or {}).values() if isinstance(t, dict)]
    tables.append(data.get("replace") or {})
    return [
        _real(manifest.parent / spec["path"]) / "Cargo.toml"
        for table in tables for spec in table.values()
        if isinstance(spec, dict) and isinstance(spec.get("path"), str)
    ]  # fmt: skip


def build_outputs(view: CargoView, workspace_root: Path, cache_root: Path) -> list[Protected]:
    """`build_time_sources` of the project's target directories, kept while cargo has not
    built anything new there."""
    entry = _entry(cache_root, "outputs", str(workspace_root))
    data = _load(entry)
    if data is not None:
        return _unpairs(data["protected"])
    found, stamps = build_time_sources([Path(t) for t in view.target_dirs], workspace_root,
                                       set(view.proc_macros), view.package_roots,
                                       view.build_scripts)  # fmt: skip
    _save(entry, stamps, {"protected": _pairs(found)})
    return found


# -- the whole set -----------------------------------------------------------------------

# At every package root and workspace root: what grants rights or runs code when written.
_AT_ROOTS = {
    "Cargo.toml": "a manifest: it grants tasks their rights",
    "Cargo.lock": "a lock file",
    ".cargo": "cargo configuration, which can run programs on the host at the next build",
    ".git": "version control (hooks run on the host)",
    "tasks": "the tasks' own code",
    "build.rs": "a build script, which runs on the host at every build",
    "rust-toolchain": "the toolchain selection",
    "rust-toolchain.toml": "the toolchain selection",
}
_UP_THE_TREE = (".cargo", ".git", "rust-toolchain", "rust-toolchain.toml")


def protected(project: Project, tasks: list[Task], environ: dict[str, str], cache_root: Path) -> list[Protected]:
    """Everything a `write` grant must not cover, for the whole workspace whatever the
    current directory; `tasks` are every task of every owner in it."""
    from cargo_task.cache import Cache
    from cargo_task.scaffold import render

    roots = [*project.roots(), *(t.owner.root for t in tasks)]
    found = well_known(roots, tasks, environ, project.target_dir)
    manifest = (project.workspace or project.package).path  # type: ignore[union-attr]
    dependencies = sorted(
        {Path(s["path"]) for t in tasks for s in t.owner.dependencies.values() if "path" in s}
        | {t.settings.published.path for t in tasks  # a path package, with its workspace
           if t.settings.published is not None and t.settings.published.path is not None}
    )
    view = cargo_view(manifest, dependencies, environ, cache_root)
    found += view.protected + build_outputs(view, manifest.parent, cache_root)
    cache = Cache(cache_root)
    build_root = project.target_dir / "cargo-task"
    owners = {t.owner.root: t.owner for t in tasks}.values()
    found += task_build_sources(
        (name.partition(".")[0], record.stamps)
        for o in owners for name, record in cache.records_of(render(o, build_root).directory)
    )
    return list(dict.fromkeys(found))


def well_known(package_roots: list[Path], tasks: list[Task], environ: dict[str, str], target_dir: Path) -> list[Protected]:
    """What is protected by its place, before cargo is asked: manifests, configuration and
    version control at and above every package, cargo's and rustup's homes, every task's
    source, and cargo's output in the target directory."""
    roots = sorted({_real(r) for r in package_roots})
    found = [Protected(root / name, why) for root in roots for name, why in _AT_ROOTS.items()]
    for ancestor in sorted({a for root in roots for a in root.parents}):
        found += [Protected(ancestor / name, _AT_ROOTS[name]) for name in _UP_THE_TREE]
    home = os.path.expanduser("~")
    found.append(Protected(_real(environ.get("CARGO_HOME") or os.path.join(home, ".cargo")),
                           "cargo's home: its programs, configuration and sources"))  # fmt: skip
    found.append(Protected(_real(environ.get("RUSTUP_HOME") or os.path.join(home, ".rustup")),
                           "rustup's toolchains"))  # fmt: skip
    for task in tasks:
        found.append(Protected(_real(task.source), f"the source of task `{task.name}`"))
        if task.settings.published is not None and task.settings.published.path is not None:
            found.append(Protected(_real(task.settings.published.path),
                                   f"the package task `{task.name}` is built from"))  # fmt: skip
        directory = _real(task.source.parent)
        if not any(directory == r or directory in r.parents for r in roots):
            found.append(Protected(directory, f"the modules of task `{task.name}`"))
    return found + cargo_output(target_dir)


def check_task_inputs(task: Task, sources: list[str], tasks: list[Task], project_root: Path) -> None:
    """After a build: no file the task was built from may be writable by another task (it
    would run that task's code with this task's grants), nor by the task itself; a file reached through a symbolic link must stay inside the
    project and outside every writable grant (a link planted in one is a door to anywhere)."""
    from cargo_task.errors import BuildError

    # A task with `allow-write-manifest = true` is trusted with the build already (it may
    # rewrite any manifest and so any grant): its writes are not another task's door.
    writable = [
        (other, _real(grant.host))
        for other in tasks
        if not other.settings.allow_write_manifest
        for grant in other.settings.write or ()
    ]
    top = _real(project_root)
    for source in map(os.path.normpath, sources):
        real = _real(source)
        through_link = real != Path(source)
        for other, granted in writable:
            if real == granted or granted in real.parents:
                who = "itself" if other.name == task.name else f"task `{other.name}`"
                raise BuildError(
                    f"task `{task.name}` is built from `{source}`"
                    + (f" (a link to `{real}`)" if through_link else "")
                    + f", which {who} may write (`write` grant `{granted}` of task `{other.name}` "
                    f"in `{other.owner.manifest}`): that task could run its code with `{task.name}`'s grants",
                    help="move the shared code out of the writable directory, or narrow the grant",
                )
        if through_link and not (real == top or top in real.parents):
            raise BuildError(
                f"task `{task.name}` is built from `{source}`, a link to `{real}` outside the project",
                help="a task's sources must be inside the project; replace the link by the file",
            )
