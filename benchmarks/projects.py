"""Generated projects for the benchmark: written into a scratch directory, never committed.

Every generated project carries the same trivial task, `print`, which prints one line
(`PRINT_LINE`); the native baselines print the same line.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

PRINT_LINE = "print: hello from a task"
PRINT_RS = f'//! Print one line.\nfn main() {{\n    println!("{PRINT_LINE}");\n}}\n'
# The profile cargo-task builds tasks with (src/cargo_task/scaffold.py): a baseline that
# builds "the same task" by hand uses it too, so that both sides compile the same thing.
PROFILE_TABLE = '[profile.dev]\ndebug = false\nstrip = "debuginfo"\n'


def write(path: Path, text: str) -> None:
    """Write unless the file already says exactly this (keeps mtimes, so builds stay warm)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        if path.read_text() == text:
            return
    except OSError:
        pass
    path.write_text(text)


def task_names(count: int) -> list[str]:
    """`print` plus count-1 filler tasks."""
    return ["print"] + [f"t{i:03}" for i in range(1, count)]


def workspace(root: Path, tasks: int, members: int) -> Path:
    """A virtual workspace of `members` packages, one of them the classic `xtask` binary
    (`cargo xtask NAME` = `cargo run --package xtask -- NAME`), and `tasks` tasks in the
    root's tasks/ directory that the xtask binary also knows, doing the same work."""
    names = task_names(tasks)
    libs = [f"crates/m{i:03}" for i in range(1, members)]
    member_list = ", ".join(json.dumps(m) for m in ["xtask", *libs])
    write(root / "Cargo.toml", f'[workspace]\nmembers = [{member_list}]\nresolver = "2"\n')
    write(root / ".cargo" / "config.toml", '[alias]\nxtask = "run --package xtask --"\n')
    for i, lib in enumerate(libs, start=1):
        name = f"m{i:03}"
        write(
            root / lib / "Cargo.toml",
            f'[package]\nname = "{name}"\nversion = "0.1.0"\nedition = "2021"\npublish = false\n',
        )
        write(root / lib / "src" / "lib.rs", f"pub fn id() -> u32 {{\n    {i}\n}}\n")
    write(
        root / "xtask" / "Cargo.toml",
        '[package]\nname = "xtask"\nversion = "0.1.0"\nedition = "2021"\npublish = false\n',
    )
    arms = "".join(
        f'        "{n}" => println!("{PRINT_LINE if n == "print" else n + ": filler task"}"),\n'
        for n in names
    )
    write(
        root / "xtask" / "src" / "main.rs",
        "fn main() {\n"
        '    let task = std::env::args().nth(1).unwrap_or_default();\n'
        "    match task.as_str() {\n"
        f"{arms}"
        '        _ => {\n            eprintln!("unknown task `{task}`");\n'
        "            std::process::exit(1);\n        }\n"
        "    }\n}\n",
    )
    tasks_dir = root / "tasks"
    if tasks_dir.is_dir():  # a reused work directory may hold a case with more tasks
        for stale in tasks_dir.glob("*.rs"):
            if stale.stem not in names:
                stale.unlink()
    for n in names:
        text = PRINT_RS if n == "print" else (
            f'//! Filler task {n}: prints its name.\nfn main() {{\n    println!("{n}: filler task");\n}}\n'
        )
        write(tasks_dir / f"{n}.rs", text)
    return root


def single_package(root: Path) -> Path:
    """One package with tasks/print.rs: the shape the original cargo-task-wasm 0.2.0
    understands (it reads only the nearest Cargo.toml, which must have a [package])."""
    write(
        root / "Cargo.toml",
        '[package]\nname = "single"\nversion = "0.1.0"\nedition = "2021"\npublish = false\n',
    )
    write(root / "src" / "lib.rs", "")
    write(root / "tasks" / "print.rs", PRINT_RS)
    return root


def standalone(root: Path, name: str, source: Path, dependencies: dict[str, str]) -> Path:
    """A plain package that builds one task file as a binary, as a user would by hand:
    the baseline for a cold run (same file, same dependencies, same profile)."""
    deps = "".join(f"{k} = {json.dumps(v)}\n" for k, v in sorted(dependencies.items()))
    write(
        root / "Cargo.toml",
        f'[package]\nname = "standalone-{name}"\nversion = "0.0.0"\nedition = "2021"\n'
        "publish = false\nautobins = false\n\n"
        f"[dependencies]\n{deps}\n{PROFILE_TABLE}\n[workspace]\n\n"
        f"[[bin]]\nname = {json.dumps(name)}\npath = {json.dumps(str(source))}\n",
    )
    return root


def copy_demo(source: Path, root: Path) -> Path:
    """The repository's examples/demo, copied without its target/ (so nothing of the
    checkout's own builds is reused, and nothing is written into the checkout)."""
    if root.exists():
        for path in root.iterdir():
            if path.name != "target":
                shutil.rmtree(path) if path.is_dir() else path.unlink()
    shutil.copytree(source, root, ignore=shutil.ignore_patterns("target"), dirs_exist_ok=True)
    return root
