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
    write_members(root, libs, lambda name, i: f"pub fn id() -> u32 {{\n    {i}\n}}\n")
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


def write_members(root: Path, libs: list[str], lib_rs) -> None:
    """The workspace's library members `m001`... at `libs`, each with `lib_rs(name, number)`."""
    for i, lib in enumerate(libs, start=1):
        name = f"m{i:03}"
        write(
            root / lib / "Cargo.toml",
            f'[package]\nname = "{name}"\nversion = "0.1.0"\nedition = "2021"\npublish = false\n',
        )
        write(root / lib / "src" / "lib.rs", lib_rs(name, i))


# -- the realistic workspace (issue 10) ---------------------------------------------------
#
# 50 members; the root's tasks/ holds `lines` (walk the workspace, count lines per member,
# print JSON) and `manpage` (compute-heavy: render a generated clap command tree of 200
# subcommands as Markdown, parse an argument vector for each, round-trip the pages through
# JSON), both using the task-dependencies clap (derive), anyhow, serde_json and walkdir.
# The `xtask` member is their exact twin: the same code, as `mod lines` inline in its
# main.rs and `mod manpage` in manpage.rs, with the same dependencies. Member `crates/m001`
# owns a task of its own, `mlines` (the same code as `lines`), to show whether a second
# owner rebuilds the dependencies.

REALISTIC_DEPENDENCIES = {
    "anyhow": '"1"',
    "clap": '{ version = "4", features = ["derive"] }',
    "serde_json": '"1"',
    "walkdir": '"2"',
}
REALISTIC_MEMBER = "crates/m001"  # the second owner: it has tasks/ of its own
LINES_EXPECT = '"total_lines"'
MANPAGE_EXPECT = "manpage: 200 pages"

LINES_CODE = r'''use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result};
use clap::Parser;
use walkdir::WalkDir;

/// Count the lines of the workspace's Rust sources, per member, as JSON.
#[derive(Parser, Debug)]
pub struct LinesArgs {
    /// The directory to walk (the workspace root).
    #[arg(long, default_value = ".")]
    pub root: PathBuf,
    /// Count the files with this extension.
    #[arg(long, default_value = "rs")]
    pub ext: String,
    /// Pretty-print the JSON.
    #[arg(long)]
    pub pretty: bool,
}

/// The member a file belongs to: `crates/NAME`, or its first directory (`.` for the root).
fn member_of(relative: &Path) -> String {
    let parts: Vec<String> = relative
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect();
    match parts.as_slice() {
        [first, second, _, ..] if first == "crates" => format!("{first}/{second}"),
        [first, _, ..] => first.clone(),
        _ => ".".to_string(),
    }
}

pub fn lines(args: LinesArgs) -> Result<()> {
    let mut members: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let walk = WalkDir::new(&args.root).sort_by_file_name().into_iter().filter_entry(|e| {
        let name = e.file_name().to_string_lossy();
        e.depth() == 0 || !(name == "target" || name.starts_with('.'))
    });
    for entry in walk {
        let entry = entry.context("walking the workspace")?;
        let path = entry.path();
        if !entry.file_type().is_file() || path.extension().and_then(|e| e.to_str()) != Some(args.ext.as_str()) {
            continue;
        }
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let relative = path.strip_prefix(&args.root).unwrap_or(path);
        let slot = members.entry(member_of(relative)).or_default();
        slot.0 += 1;
        slot.1 += text.lines().count() as u64;
    }
    let total: u64 = members.values().map(|m| m.1).sum();
    let per_member: serde_json::Map<String, serde_json::Value> = members
        .iter()
        .map(|(name, (files, lines))| (name.clone(), serde_json::json!({ "files": files, "lines": lines })))
        .collect();
    let report = serde_json::json!({ "members": per_member, "member_count": members.len(), "total_lines": total });
    let text = if args.pretty { serde_json::to_string_pretty(&report)? } else { serde_json::to_string(&report)? };
    println!("{text}");
    Ok(())
}
'''

MANPAGE_CODE = r'''use anyhow::{ensure, Context, Result};
use clap::{Arg, ArgAction, Command, Parser};

/// Render a generated command tree as Markdown man pages, parse a command line for each
/// subcommand, and round-trip the pages through JSON.
#[derive(Parser, Debug)]
pub struct ManpageArgs {
    /// Subcommands in the generated tree.
    #[arg(long, default_value_t = 200)]
    pub commands: usize,
    /// Options per subcommand.
    #[arg(long, default_value_t = 12)]
    pub options: usize,
    /// How many times the whole job is done.
    #[arg(long, default_value_t = 2)]
    pub rounds: usize,
}

fn leak(text: String) -> &'static str {
    Box::leak(text.into_boxed_str())
}

fn tree(commands: usize, options: usize) -> Command {
    let mut root = Command::new("bigtool")
        .version("1.0.0")
        .about("A generated command tree")
        .subcommand_required(true)
        .disable_help_subcommand(true);
    for i in 0..commands {
        let mut sub = Command::new(leak(format!("sub{i:03}")))
            .about(leak(format!("Subcommand {i}: transforms inputs of kind {}", i % 7)))
            .long_about(leak(format!(
                "Subcommand {i} reads its inputs, applies transformation number {i} and writes the result. {}",
                "It honours every option below. ".repeat(1 + i % 4)
            )))
            .arg(Arg::new("inputs").num_args(0..).value_name("FILE").help("Input files"));
        for j in 0..options {
            let long = leak(format!("option-{j}"));
            let arg = Arg::new(long)
                .long(long)
                .help(leak(format!("Option {j} of subcommand {i}")))
                .long_help(leak(format!("Option {j} of subcommand {i}. {}", "Explained at length. ".repeat(1 + j % 3))));
            sub = sub.arg(match j % 3 {
                0 => arg.action(ArgAction::SetTrue),
                1 => arg.value_name("VALUE").default_value("auto"),
                _ => arg.value_name("N").action(ArgAction::Append),
            });
        }
        root = root.subcommand(sub);
    }
    root
}

fn checksum(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3))
}

pub fn manpage(args: ManpageArgs) -> Result<()> {
    ensure!(args.options >= 3, "--options must be at least 3");
    let mut summary = (0, 0, 0, 0);
    for _ in 0..args.rounds {
        let mut root = tree(args.commands, args.options);
        root.build();
        let mut markdown = String::from("# bigtool\n\n");
        let mut pages = Vec::new();
        for sub in root.get_subcommands_mut() {
            let name = sub.get_name().to_string();
            let usage = sub.render_usage().to_string();
            let help = sub.render_long_help().to_string();
            markdown.push_str(&format!("## bigtool {name}\n\n```text\n{help}\n```\n\n"));
            let options: Vec<serde_json::Value> = sub
                .get_arguments()
                .map(|a| serde_json::json!({
                    "id": a.get_id().as_str(),
                    "long": a.get_long(),
                    "help": a.get_help().map(|h| h.to_string()),
                    "positional": a.is_positional(),
                }))
                .collect();
            pages.push(serde_json::json!({ "name": name, "usage": usage, "options": options }));
        }
        let mut parsed = 0;
        for i in 0..args.commands {
            let sub = format!("sub{i:03}");
            let argv = ["bigtool", &sub, "--option-0", "--option-1", "fast", "--option-2", "3", "--option-2", "4", "a.txt", "b.txt"];
            let matches = root.try_get_matches_from_mut(argv).context("parsing a command line")?;
            let (_, sub_matches) = matches.subcommand().context("no subcommand")?;
            parsed += sub_matches.get_many::<String>("option-2").map(|v| v.count()).unwrap_or(0);
        }
        let json = serde_json::to_string_pretty(&serde_json::json!({ "command": "bigtool", "pages": pages }))?;
        let back: serde_json::Value = serde_json::from_str(&json)?;
        ensure!(back["pages"].as_array().map(|p| p.len()) == Some(args.commands), "the JSON round trip lost pages");
        summary = (pages.len(), markdown.len(), json.len(), checksum(&markdown) ^ checksum(&json) ^ parsed as u64);
    }
    println!(
        "manpage: {} pages, {} bytes of Markdown, {} bytes of JSON, checksum {:016x}",
        summary.0, summary.1, summary.2, summary.3
    );
    Ok(())
}
'''


def realistic_task_sources() -> dict[str, str]:
    """The root's tasks: each is the shared code plus a `main` (file name -> text)."""
    return {
        "lines.rs": "//! Count the workspace's lines of Rust per member, as JSON.\n"
        + LINES_CODE + "\nfn main() -> Result<()> {\n    lines(LinesArgs::parse())\n}\n",
        "manpage.rs": "//! Render a generated 200-subcommand CLI as Markdown man pages (compute-heavy).\n"
        + MANPAGE_CODE + "\nfn main() -> Result<()> {\n    manpage(ManpageArgs::parse())\n}\n",
    }


def _indent(code: str) -> str:
    return "".join(f"    {line}" if line.strip() else line for line in code.splitlines(keepends=True))


XTASK_MAIN = (
    "//! The workspace's tasks the `cargo xtask` way: `cargo xtask lines`, `cargo xtask manpage`.\n"
    "use clap::{Parser, Subcommand};\n\nmod manpage;\n\nmod lines {\n" + _indent(LINES_CODE) + "}\n\n"
    "#[derive(Parser)]\n#[command(name = \"xtask\")]\nstruct Cli {\n    #[command(subcommand)]\n"
    "    task: Task,\n}\n\n#[derive(Subcommand)]\nenum Task {\n    Lines(lines::LinesArgs),\n"
    "    Manpage(manpage::ManpageArgs),\n}\n\nfn main() -> anyhow::Result<()> {\n"
    "    match Cli::parse().task {\n        Task::Lines(args) => lines::lines(args),\n"
    "        Task::Manpage(args) => manpage::manpage(args),\n    }\n}\n"
)


def realistic_workspace(root: Path, members: int = 50) -> Path:
    """The realistic workspace of issue 10 (see above): `members` packages, `xtask` among
    them; `cargo task lines|manpage` and `cargo xtask lines|manpage` do the same work."""
    libs = [f"crates/m{i:03}" for i in range(1, members)]
    member_list = ", ".join(json.dumps(m) for m in ["xtask", *libs])
    deps = "".join(f"{name} = {spec}\n" for name, spec in REALISTIC_DEPENDENCIES.items())
    write(
        root / "Cargo.toml",
        f'[workspace]\nmembers = [{member_list}]\nresolver = "2"\n\n'
        f"[workspace.metadata.task-dependencies]\n{deps}",
    )
    write(root / ".cargo" / "config.toml", '[alias]\nxtask = "run -q -p xtask --"\n')
    write_members(root, libs, lambda name, i: (
        f"//! Member {name}.\n\n/// This member's number.\npub fn id() -> u32 {{\n    {i}\n}}\n\n"
        "#[cfg(test)]\nmod tests {\n    #[test]\n    fn id() {\n"
        f"        assert_eq!(super::id(), {i});\n    }}\n}}\n"
    ))
    write(
        root / "xtask" / "Cargo.toml",
        '[package]\nname = "xtask"\nversion = "0.1.0"\nedition = "2021"\npublish = false\n\n'
        f"[dependencies]\n{deps}",
    )
    write(root / "xtask" / "src" / "main.rs", XTASK_MAIN)
    write(root / "xtask" / "src" / "manpage.rs", MANPAGE_CODE)
    for name, text in realistic_task_sources().items():
        write(root / "tasks" / name, text)
    # The second owner: a member with a task of its own (the workspace's task-dependencies
    # are added to a member's own tasks).
    write(root / REALISTIC_MEMBER / "tasks" / "mlines.rs", realistic_task_sources()["lines.rs"])
    return root
