"""What makes a built task fresh, decided without starting cargo.

A fingerprint has two halves. The static half is known before any build: the tool's
version, the generated manifest's text for this task, the generated Cargo.lock, the cargo
and rustup configuration files and toolchain selection that cargo would read. The recorded
half is written after a build: every file rustc read (from cargo's dep-info, so modules,
`include_str!` targets and path dependencies count) and the toolchain's sysroot. A warm
run re-stats both; any difference means cargo must run again.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from cargo_task import __version__
from cargo_task.build import Toolchain
from cargo_task.scaffold import TARGET, Scaffold

Stamp = tuple[str, int, int]  # path, mtime in ns, size; (path, -1, -1) when missing

# The build environment variables whose values change what cargo produces.
TOOLCHAIN_ENV = ("RUSTUP_TOOLCHAIN", "RUSTC", "RUSTC_WRAPPER")


def stamp(path: Path | str) -> Stamp:
    try:
        st = os.stat(path)
    except OSError:
        return (str(path), -1, -1)
    return (str(path), st.st_mtime_ns, st.st_size)


def tree_config_files(cwd: Path) -> list[Path]:
    """Files in `cwd` and above that choose the toolchain or configure cargo there."""
    files = []
    for directory in (cwd, *cwd.parents):
        files += [directory / "rust-toolchain", directory / "rust-toolchain.toml"]
        files += [directory / ".cargo" / "config", directory / ".cargo" / "config.toml"]
    return files


def cargo_config_files(cwd: Path, environ: dict[str, str]) -> list[Path]:
    """Files that choose the toolchain or configure cargo for a command run in `cwd`."""
    files = tree_config_files(cwd)
    home = Path(os.path.expanduser("~"))
    cargo_home = Path(environ.get("CARGO_HOME") or home / ".cargo")
    rustup_home = Path(environ.get("RUSTUP_HOME") or home / ".rustup")
    return files + [cargo_home / "config", cargo_home / "config.toml", rustup_home / "settings.toml"]


def config_files(scaffold: Scaffold, toolchain: Toolchain) -> list[Path]:
    """The configuration files of a build run in `toolchain.cwd`, and the manifests of path
    dependencies (their sources are in the dep-info, these are not)."""
    files = cargo_config_files(toolchain.cwd, toolchain.env)
    for dependency in scaffold.path_dependencies:
        files += [dependency / "Cargo.toml", dependency / "build.rs"]
    return files


def toolchain_variant(toolchain: Toolchain) -> str:
    """Names the record of a build with this toolchain selection, so that `cargo task` (which
    sets RUSTUP_TOOLCHAIN) and `cargo-task` run directly each stay fresh side by side."""
    selection = "\0".join(toolchain.env.get(k, "") for k in TOOLCHAIN_ENV)
    return hashlib.sha256(selection.encode("utf-8", "surrogateescape")).hexdigest()[:12]


def static_fingerprint(scaffold: Scaffold, task: str, toolchain: Toolchain, engine: str) -> str:
    """`engine` identifies the Wasmtime that would load the cached machine code."""
    digest = hashlib.sha256()
    for part in (
        __version__,
        engine,
        scaffold.common,
        scaffold.bins[task],
        *(f"{k}={toolchain.env.get(k, '')}" for k in TOOLCHAIN_ENV),
        repr(stamp(scaffold.directory / "Cargo.lock")),
        *(repr(stamp(f)) for f in config_files(scaffold, toolchain)),
    ):
        digest.update(part.encode("utf-8", "surrogateescape") + b"\0")
    return digest.hexdigest()


def _unescape_split(text: str) -> list[str]:
    """Split a Makefile dependency list on unescaped blanks (`\\ ` is a space in a path)."""
    words, current, i = [], [], 0
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text) and text[i + 1] in " \\#:":
            current.append(text[i + 1])
            i += 2
            continue
        if char in " \t\n":
            if current:
                words.append("".join(current))
                current = []
        else:
            current.append(char)
        i += 1
    if current:
        words.append("".join(current))
    return words


def dep_info_sources(dep_info: Path, base: Path) -> list[str]:
    """The files cargo says the artifact was built from (relative ones taken from `base`)."""
    sources: list[str] = []
    text = dep_info.read_text(encoding="utf-8", errors="surrogateescape")
    for line in text.replace("\\\n", " ").splitlines():
        _, colon, deps = line.partition(": ")
        if colon:
            found = (os.path.join(base, d) for d in _unescape_split(deps))
            sources += [d for d in found if d not in sources]
    return sources


def toolchain_stamps(sysroot: Path) -> list[Stamp]:
    """Installing, updating or rebuilding the toolchain or its wasm std changes these."""
    return [
        stamp(sysroot / "lib" / "rustlib" / TARGET / "lib"),
        stamp(sysroot / "lib" / "rustlib"),
        stamp(sysroot / "bin" / "rustc"),
    ]


def stamps_of_steady_build(sources: list[str], sysroot: Path, configuration: list[Path],
                           started: int) -> list[Stamp] | None:  # fmt: skip
    """The stamps to record for a build: of every file rustc read and of the toolchain; None
    when the build can never be fresh: a file it cannot find again, or a source or
    configuration file changed while cargo was building (what was compiled may be the
    version before the change)."""
    stamps = [stamp(s) for s in sources] + toolchain_stamps(sysroot)
    changing = stamps[: len(sources)] + [stamp(f) for f in configuration]
    if all(size >= 0 for _, _, size in stamps) and all(mtime < started for _, mtime, _ in changing):
        return stamps
    return None


def still_fresh(stamps: list[Stamp]) -> bool:
    return all(stamp(path) == (path, mtime, size) for path, mtime, size in stamps)
