"""The private Cargo package that builds an owner's tasks to WASI components.

One `[[bin]]` per task pointing at the user's own file (so diagnostics name the user's
paths and `mod shared;` works), the task-dependencies as `[dependencies]`, the owner's
directory (what `CARGO_MANIFEST_DIR` names in the tasks), and an empty `[workspace]` so it
never joins the user's workspace. Rendering reads only the cargo configuration files of
the owner's tree (which build directory it may share); `write` only
touches the file when its content changes, so cargo keeps seeing unchanged tasks as fresh.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any, NamedTuple

from cargo_task.discovery import Owner
from cargo_task.files import write_atomic

TARGET = "wasm32-wasip2"
# The `dev` profile, chosen by measurement (ARCHITECTURE.md), without debug info: a 25th of
# the size, and Wasmtime compiles it in a fraction of the time. The task-dependencies that
# reach the wasm are optimised (opt-level 1: half the component, twice as fast to compile
# with Wasmtime, 3x faster to run); the tasks' own crate (`task_profile`) and what runs only
# at build time (proc-macros, build scripts: `build-override`) are not, which keeps the
# edit-then-run loop and the cold build short.
PROFILE_DIR = "debug"
PROFILE_TABLE = ('[profile.dev]\ndebug = false\nstrip = "debuginfo"\nopt-level = 1\n\n'
                 "[profile.dev.build-override]\nopt-level = 0\n")


def task_profile(package: str) -> str:
    """The tasks' own crate, and the guest crate every task builds (glue, no computing: at
    opt-level 1 it took 1.3 s instead of 0.3 s, on every owner's first build), at 0."""
    return (f"\n[profile.dev.package.{json.dumps(package)}]\nopt-level = 0\n"
            f"\n[profile.dev.package.{json.dumps(GUEST_CRATE)}]\nopt-level = 0\n")


class Scaffold(NamedTuple):
    directory: Path
    common: str  # everything but the [[bin]] sections
    bins: dict[str, str]
    path_dependencies: tuple[Path, ...]
    # The owner's directory: what `env!("CARGO_MANIFEST_DIR")` names in its tasks (the
    # build's rustc wrapper sets it for this package alone; dependencies keep their own).
    manifest_dir: Path | None = None
    # Where cargo's build directories (`build.build-dir`: dependencies, fingerprints,
    # incremental state) are, shared by the owners that build the same crates the same way
    # (`build_dir`), and the `[dependencies]` text that decides it.
    build_root: Path | None = None
    dependencies: str = ""

    @property
    def manifest(self) -> Path:
        return self.directory / "Cargo.toml"

    @property
    def target_dir(self) -> Path:
        return self.directory / "target"

    @property
    def build_dir(self) -> Path:
        """cargo's build directory, shared by every owner whose build would be the same:
        the same `[dependencies]` text (specs, features, paths, the guest crate of this
        installation) and profile, the same cargo configuration and toolchain files up its
        tree (a member's `[patch]` builds other crates from the same text), and the same
        crates pinned by the generated Cargo.lock (the same text resolved at another time
        locks others). Their build scripts and proc-macros are then the same crates, so none
        can plant code into the build of an owner that does not already run it (cargo
        hard-links each bin's wasm from the build directory: a write there is a write to an
        owner's task). Worked out at build time only (it reads those files)."""
        if self.build_root is None or self.manifest_dir is None:
            return self.target_dir
        digest = hashlib.sha256(f"{self.dependencies}\0{PROFILE_TABLE}\0".encode("utf-8", "surrogatepass"))
        digest.update(_tree_configuration(self.manifest_dir))
        digest.update(_locked_packages(self.directory / "Cargo.lock"))
        return self.build_root / f"build-{digest.hexdigest()[:16]}"

    def text(self) -> str:
        return self.common + "".join(self.bins[name] for name in sorted(self.bins))

    def wasm(self, task: str) -> Path:
        return self.target_dir / TARGET / PROFILE_DIR / f"{task}.wasm"

    def dep_info(self, task: str) -> Path:
        return self.target_dir / TARGET / PROFILE_DIR / f"{task}.d"


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string is a JSON string
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


# What of a package's name may appear in a path or in cargo's `Compiling` line: the name
# comes from the user's manifest and may hold `../`, a `/`, terminal escapes or a NUL.
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")
_READABLE = 32


def _readable(key: str) -> str:
    return _UNSAFE.sub("-", key).strip("-_")[:_READABLE].rstrip("-_")


def package_name(owner: Owner) -> str:
    readable = _readable(owner.key)
    return "cargo-task-" + (readable or "tasks")


def package_dir_name(owner: Owner) -> str:
    """A digest of the owner (its directory and name) and of where this cargo-task is
    installed, after a readable, sanitised prefix: one file-name component whatever the
    package is called. The generated manifest names files of the installation (the guest
    crate, the rustc wrapper), so two installations used on one project (a pipx one and a
    development one) each keep their own package warm instead of rebuilding each other's."""
    digest = hashlib.sha256(os.fsencode(owner.root) + b"\0" + owner.key.encode("utf-8", "surrogatepass")
                            + b"\0" + os.fsencode(guest_crate()))  # fmt: skip
    readable = _readable(owner.key)
    return f"{readable}-{digest.hexdigest()[:16]}" if readable else digest.hexdigest()[:16]


# The crate every task may `use cargo_task::...` without declaring it (`guest/`, shipped
# inside this package): `cargo_task::process::Command` runs granted host programs.
GUEST_CRATE = "cargo-task"


def guest_crate() -> Path:
    return Path(__file__).resolve().parent / "guest"


def render(owner: Owner, build_root: Path) -> Scaffold:
    directory = build_root / package_dir_name(owner)
    if directory.parent != build_root or directory.name in ("", ".", ".."):
        raise AssertionError(f"the generated package left {build_root}: {directory}")  # a bug
    specs = dict(owner.dependencies)
    if not {GUEST_CRATE, GUEST_CRATE.replace("-", "_")} & set(specs):  # the user's own wins
        specs[GUEST_CRATE] = {"path": str(guest_crate())}
    dependencies = "".join(
        f"{toml_key(name)} = {toml_value(spec)}\n" for name, spec in sorted(specs.items())
    )
    common = (
        "# Generated by cargo-task-wasm from the tasks of\n"
        f"# {json.dumps(str(owner.manifest))}\n# Edits are overwritten.\n"
        "[package]\n"
        f"name = {json.dumps(package_name(owner))}\n"
        'version = "0.0.0"\n'
        f"edition = {json.dumps(owner.edition)}\n"
        "publish = false\n"
        "autobins = false\nautoexamples = false\nautotests = false\nautobenches = false\n"
        "build = false\n\n"
        "# What `env!(\"CARGO_MANIFEST_DIR\")` names in the tasks (cargo-task's rustc wrapper sets it).\n"
        f"[package.metadata.cargo-task]\nmanifest-dir = {json.dumps(str(owner.root))}\n\n"
        f"[dependencies]\n{dependencies}\n"
        f"{PROFILE_TABLE}{task_profile(package_name(owner))}\n"
        "[workspace]\n"
    )
    bins = {
        name: (
            f"\n[[bin]]\nname = {json.dumps(name)}\npath = {json.dumps(str(source))}\n"
            "test = false\nbench = false\ndoc = false\n"
        )
        for name, source in owner.sources
    }
    paths = tuple(Path(s["path"]) for _, s in sorted(specs.items()) if "path" in s)
    return Scaffold(directory, common, bins, paths, owner.root, build_root, dependencies)


def _locked_packages(lock: Path) -> bytes:
    """The crates a Cargo.lock pins from registries and git (name, version, source,
    checksum, dependencies), leaving out path packages (the generated package's own entry
    differs for every owner)."""
    import tomllib

    try:
        packages = tomllib.loads(lock.read_text(encoding="utf-8")).get("package", [])
    except (OSError, ValueError):
        packages = []
    pinned = sorted(json.dumps(p, sort_keys=True) for p in packages if isinstance(p, dict) and p.get("source"))
    return "\n".join(pinned).encode()


def _tree_configuration(owner_root: Path) -> bytes:
    """Where and what the cargo configuration and toolchain files are that a build run in
    the owner's directory reads from its tree (a member's own `.cargo/config.toml`; another
    project sharing CARGO_TARGET_DIR). CARGO_HOME's is the same for every owner."""
    import stat

    from cargo_task.fingerprint import tree_config_files

    parts = []
    for path in tree_config_files(owner_root):
        try:  # a FIFO planted in a shared parent (/tmp/.cargo) must not hang a build
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            continue
        with os.fdopen(fd, "rb") as file:
            content = file.read() if stat.S_ISREG(os.fstat(fd).st_mode) else b"not a file"
        parts.append(os.fsencode(path) + b"\0" + hashlib.sha256(content).digest())
    return b"\0".join(parts)


def mark_build_start(directory: Path) -> int:
    """A timestamp from the file system's own clock, taken in a build's private `directory`:
    a source with this mtime or later was saved while cargo built, so the build may not
    include it."""
    mark = directory / "build-started"
    mark.touch()
    return mark.stat().st_mtime_ns


def write(scaffold: Scaffold) -> None:
    """Write the manifest unless it already says exactly this."""
    text = scaffold.text()
    try:
        if scaffold.manifest.read_text(encoding="utf-8") == text:
            return
    except OSError:
        pass
    write_atomic(scaffold.manifest, text.encode())
