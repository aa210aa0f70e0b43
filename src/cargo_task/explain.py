"""`cargo task --explain TASK`: exactly what a task may do, before it is built or run.

Reads only files (the last build's Cargo.lock and the dependencies' manifests in cargo's
source cache); starts neither cargo nor Wasmtime.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

from cargo_task.config import human_duration, human_size
from cargo_task.grants import runs_anything, MANIFEST_DIR, Grants
from cargo_task.pipeline import Selection


def _package_manifest(package: dict, cargo_home: Path, path_deps: dict[str, str]) -> Path | None:
    name, version, source = package.get("name", ""), package.get("version", ""), package.get("source")
    if source is None:
        directory = path_deps.get(name)
        return Path(directory) / "Cargo.toml" if directory else None
    if str(source).startswith("registry+") or str(source).startswith("sparse+"):
        for registry in sorted((cargo_home / "registry" / "src").glob("*")):
            candidate = registry / f"{name}-{version}" / "Cargo.toml"
            if candidate.is_file():
                return candidate
    return None  # a git checkout, or not downloaded: unknown


def _runs_at_build(manifest: Path) -> list[str]:
    try:
        data = tomllib.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
        return ["unknown (its manifest could not be read)"]
    kinds = []
    build = data.get("package", {}).get("build")
    if build is not False and (isinstance(build, str) or (manifest.parent / "build.rs").is_file()):
        kinds.append("build script")
    lib = data.get("lib", {})
    if lib.get("proc-macro") or lib.get("proc_macro"):
        kinds.append("proc-macro")
    return kinds


def build_time_code(selection: Selection, environ: dict[str, str]) -> list[str] | None:
    """Dependencies that run code on the host while the task builds; None until the last
    build's Cargo.lock covers every task-dependency the manifests name now."""
    from cargo_task.scaffold import package_name

    owner = selection.task.owner
    lock = selection.scaffold().directory / "Cargo.lock"
    try:
        packages = tomllib.loads(lock.read_text(encoding="utf-8")).get("package", [])
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
        return None
    crate = {name: spec.get("package", name) for name, spec in owner.dependencies.items()}
    if not set(crate.values()) <= {p.get("name") for p in packages}:
        return None
    cargo_home = Path(environ.get("CARGO_HOME") or os.path.expanduser("~/.cargo"))
    from cargo_task.scaffold import GUEST_CRATE, guest_crate

    path_deps = {crate[n]: spec["path"] for n, spec in owner.dependencies.items() if "path" in spec}
    path_deps.setdefault(GUEST_CRATE, str(guest_crate()))
    found = []
    for package in packages:
        if package.get("name") == package_name(owner) and "source" not in package:
            continue
        manifest = _package_manifest(package, cargo_home, path_deps)
        kinds = _runs_at_build(manifest) if manifest else ["unknown: its source is not at hand"]
        if kinds:
            found.append(f"{package['name']} {package.get('version', '')} ({', '.join(kinds)})")
    return found


def _environment(settings, grants: Grants) -> str:
    """What the grant says, and which names it matches now; never the values."""
    fixed = [name for name, _ in settings.env or ()]
    inherited = [name for name, _ in grants.env if name not in fixed and name != MANIFEST_DIR]
    said = []
    if settings.inherit_env is True:
        said.append("the whole host environment (inherit-env = true)")
    elif settings.inherit_env:
        now = ", ".join(inherited) if inherited else "none of them"
        said.append(f"inherit-env = [{', '.join(settings.inherit_env)}] (set now: {now})")
    if fixed:
        said.append(f"fixed: {', '.join(fixed)}")
    return "; ".join(said) or "none granted"


def explain_text(selection: Selection, grants: Grants, environ: dict[str, str] | None = None) -> str:
    task = selection.task
    environ = dict(os.environ) if environ is None else environ
    lines = [f"task `{task.name}`: {task.description or '(no description)'}",
             f"  source:   {task.source}",
             f"  manifest: {task.owner.manifest}",
             "files (path on the host -> path seen by the task):"]  # fmt: skip
    if task.settings.published is not None:
        from cargo_task.published import explain_lines

        lines[1:3] = [lines[2], *explain_lines(task)]  # where it comes from, in place of a file
    seen_at: dict[tuple[Path, bool], list[str]] = {}
    for mount in grants.mounts:  # at the grant's path, and again at the host path
        seen_at.setdefault((mount.host, mount.writable), []).append(mount.guest)
    for (host, writable), guests in seen_at.items():
        access = "writable " if writable else "read-only"
        lines.append(f"  {access}  {host} -> {' and '.join(guests)}")
    for file in grants.files:
        access = "writable " if file.writable else "read-only"
        guests = " and ".join(os.path.normpath(os.path.join(g, file.host.name)) for g in file.guests)
        seen = ("a copy that is written back when it ends" if file.writable else "a copy of it")
        if not file.host.exists():
            seen = "none yet: what it creates is written back when it ends"
        lines.append(f"  {access}  {file.host} -> {guests} (this file alone; the task sees {seen})")
    if grants.files:
        lines.append("  read-only  the other files beside a granted file, as copies (where the task "
                     "may read them)")
    if grants.tmp:
        lines.append("  writable   a fresh private directory, removed after the run -> /tmp")
    lines.append("  nothing else of the host's file system")
    for path in grants.writes_protected:
        lines.append(f"  warning: may change {path} (allow-write-manifest = true)")
    lines.append(f"environment: {_environment(task.settings, grants)}; and always {MANIFEST_DIR}={task.owner.root}")
    lines.append(
        "network: outbound HTTP and HTTPS (wasi:http) and DNS lookups; no raw TCP/UDP sockets"
        if grants.network
        else "network: none"
    )
    lines.append("stdin: " + ("the terminal's" if grants.stdin else "empty"))
    timeout = human_duration(grants.timeout) if grants.timeout else "none"
    lines.append(f"limits: time {timeout}, memory {human_size(grants.memory)}")
    lines += _processes(grants)
    if task.settings.published is not None:  # built on its own: no task-dependencies, no wrapper
        from cargo_task.published import build_lines

        return "\n".join(lines + build_lines(selection, _build_confinement())) + "\n"
    deps = sorted(task.owner.dependencies)
    lines.append("task-dependencies: " + (", ".join(deps) if deps else "none"))
    confined = _build_confinement()
    if deps:
        runs = build_time_code(selection, environ)
        where = "confined as the build is" if confined else "NOT confined"
        if runs is None:
            lines.append("  code run on the host at build time: not known until the task is built once")
        else:
            lines.append(f"  code run on the host at build time ({where}): "
                         + (", ".join(runs) if runs else "none"))  # fmt: skip
    lines += _build_lines(selection, environ, confined)
    return "\n".join(lines) + "\n"


def _processes(grants: Grants) -> list[str]:
    if not grants.commands:
        return ["processes: none (a task cannot start programs; grant some with `commands`)"]
    from cargo_task import confine

    lines = ["processes: these host programs, with any further arguments:"]
    lines += [f"  {' '.join(words)} ..." for words in grants.commands]
    for words in grants.commands:
        wrapper = runs_anything(words)
        if wrapper:
            lines.append(f"  warning: `{wrapper}` runs whatever it is told to: the grant reaches "
                         "every program on PATH (confined as below)")  # fmt: skip
    writable = list(dict.fromkeys(str(m.host) for m in grants.mounts if m.writable))  # once, not per path
    writable += [str(f.host) for f in grants.files if f.writable]
    if confine.available():
        lines.append("  confined: they read the project, the task's read grants, the toolchain and "
                     "system directories; write only " + (", ".join(writable) + " and " if writable else "")
                     + "a private temp dir; " + ("may" if grants.network else "may not")
                     + " open network connections; see only PATH, HOME (private), the toolchain's "
                     "variables and the task's environment grant")  # fmt: skip
    else:
        lines.append("  NOT confined: this system offers no Landlock (allow-unconfined-commands = true)")
    if any(words[0] == "cargo" for words in grants.commands):
        lines.append("  `cargo` builds in a private target directory and runs the project's build "
                     "scripts and proc-macros there, confined as above")  # fmt: skip
    return lines


def _build_confinement() -> int:
    from cargo_task import confine

    return confine.abi_version()


def _build_lines(selection: Selection, environ: dict[str, str], abi: int) -> list[str]:
    """How the task is built: confined or not, and what of the user's configuration runs
    on the host or reaches the compiler."""
    from cargo_task import build

    toolchain = build.Toolchain.from_environment(environ, selection.task.owner.root)
    plan = selection.scaffold()
    directory = f"{plan.target_dir} and {plan.build_dir} (shared by the owners with the same task-dependencies)"
    if abi:
        lines = [f"build: confined (Landlock ABI {abi}): cargo, rustc, build scripts and proc-macros "
                 "read only the project, the toolchain, cargo's downloaded sources and system "
                 f"directories, write only {directory} and a private temp dir, and open no "
                 "network connection; crates are fetched beforehand, running no build code"]  # fmt: skip
    else:
        lines = ["build: NOT confined: this system offers no Landlock (Linux 5.13+), so cargo, "
                 "build scripts and proc-macros of task-dependencies run with your rights"]  # fmt: skip
    lines.append(f"  runs on the host: `{toolchain.cargo}` and `{toolchain.rustc}`"
                 + (f" (toolchain `{environ['RUSTUP_TOOLCHAIN']}`)" if environ.get("RUSTUP_TOOLCHAIN") else ""))
    lines.append(f"  runs on the host: `{build.manifest_dir_wrapper()}` in place of rustc for the tasks' "
                 f"own crate (not its dependencies), setting CARGO_MANIFEST_DIR={selection.task.owner.root}")
    for line in _configured_programs(toolchain):
        lines.append(f"  runs on the host: {line}")
    names = build.config_env_names(toolchain)
    if names:
        lines.append(f"  cargo [env] entries blanked for the build: {', '.join(names)}")
    return lines


def _configured_programs(toolchain) -> list[str]:
    """Programs and flags that cargo configuration or the toolchain files add to a build."""
    from cargo_task.build import cargo_configs
    from cargo_task.fingerprint import cargo_config_files

    found = [f"the toolchain that `{path}` selects"
             for path in cargo_config_files(toolchain.cwd, toolchain.env)
             if path.name.startswith("rust-toolchain") and path.is_file()]  # fmt: skip
    for path, data in cargo_configs(toolchain):
        build = data.get("build") if isinstance(data.get("build"), dict) else {}
        for key in ("rustc", "rustc-wrapper", "rustc-workspace-wrapper", "rustflags"):
            if key in build:
                found.append(f"build.{key} = {build[key]!r} (from `{path}`)"
                             + (": not for tasks, cargo-task's own takes its place"
                                if key == "rustc-workspace-wrapper" else ""))  # fmt: skip
        targets = data.get("target") if isinstance(data.get("target"), dict) else {}
        for triple, table in targets.items():
            if isinstance(table, dict):
                for key in ("linker", "runner", "rustflags"):
                    if key in table:
                        found.append(f"target.{triple}.{key} = {table[key]!r} (from `{path}`)")
    if toolchain.env.get("RUSTC_WRAPPER"):
        found.append(f"RUSTC_WRAPPER = {toolchain.env['RUSTC_WRAPPER']!r} (from the environment)")
    return found
