#!/usr/bin/env python3
"""Issue 10, measured: `cargo task` against its exact `cargo xtask` twin on a realistic workspace.

    .venv/bin/python benchmarks/realistic.py                  # ~5 minutes (277-300 s, 2 shared cores)
    .venv/bin/python benchmarks/realistic.py --rounds 9,5,3,2 # warm, edit, cold, one-off builds
    .venv/bin/python benchmarks/realistic.py --sections A,B   # some sections only

One invocation generates the workspace (`projects.realistic_workspace`: 50 members, tasks
`lines` and `manpage` using clap (derive), anyhow, serde_json and walkdir as
`[workspace.metadata.task-dependencies]`, and an `xtask` member with the same code), then
times paired, interleaved rounds (task, xtask, task, xtask, ...) and prints medians and
ratios as Markdown:

  A. warm run                  `cargo task lines` vs `cargo xtask lines`          goal <= 1.5x
  B. edit, then run            tasks/lines.rs / xtask's main.rs edited, then run  <= 1.5x
                               (B1: a comment appended; B2: a field added to the JSON)
  C. cold first run            task state removed / the xtask's target/ removed   <= 1.3x
  D. a second owner, cold      member crates/m001's own task, same dependencies: rebuilt?
  E. compute-heavy, warm       `cargo task manpage` vs `cargo xtask manpage`      <= 1.3x
  F. levers (measured only)    Cranelift vs Winch: compile time, precompiled size, run
                               time of `manpage`; task-dependencies at opt-level 1: cold
                               build, component size, compile and run time; the native
                               twin with the same choice

Crates come from crates.io (one `cargo fetch`); the cold rounds run with
CARGO_NET_OFFLINE=true. cargo-task's cache is `XDG_CACHE_HOME` inside the scratch
directory. Run it with the interpreter cargo-task is installed in.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import resource
import shutil
import statistics
import sys
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import projects  # noqa: E402
from bench import BenchError, Command, Stat, fmt_seconds, log, machine_info, make_setup, run_script, work_directory  # noqa: E402

TARGET = "wasm32-wasip2"
DEFAULT_ROUNDS = (5, 3, 2, 1)  # warm, edit, cold, one-off builds (row D, the levers)
# wasmtime_strategy_t and wasmtime_opt_level_t of the C API (wasmtime/config.h)
STRATEGIES = {
    "cranelift": (1, None),
    "cranelift, opt none": (1, 0),
    "winch": (2, None),
}
OPT1_TABLE = '\n[profile.dev.package."*"]\nopt-level = 1\n'
NATIVE_OPT1 = 'profile.dev.package."*".opt-level=1'


# -- timing -------------------------------------------------------------------------------


@dataclass
class Step:
    """One timed command, with untimed preparation and cleanup around it; every run is
    checked (exit code 0 and `expect` on stdout)."""

    name: str
    command: Command
    expect: str
    prepare: Callable[[], None] | None = None
    cleanup: Callable[[], None] | None = None
    last_stderr: str = ""
    settle: Callable[[], None] | None = None  # after the run, untimed (background work)
    cargo_builds: list[float] = field(default_factory=list)  # cargo's own `Finished ... in Xs`
    cpu: list[float] = field(default_factory=list)  # user + system time of the command's processes

    def sample(self) -> float:
        if self.prepare:
            self.prepare()
        try:
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            result = self.command.run(capture=True)
            elapsed = time.perf_counter() - start
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            self.cpu.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
            if self.settle:
                self.settle()
        finally:
            if self.cleanup:
                self.cleanup()
        if result.returncode != 0 or self.expect not in result.stdout:
            raise BenchError(
                f"{self.name}: `{' '.join(self.command.argv)}` in {self.command.cwd} exited with "
                f"{result.returncode}, expected {self.expect!r} on stdout:\n"
                f"{result.stdout[-2000:]}{result.stderr[-4000:]}"
            )
        self.last_stderr = result.stderr
        finished = FINISHED.search(result.stderr)
        if finished:
            self.cargo_builds.append(float(finished.group(1)))
        return elapsed


FINISHED = re.compile(r"Finished `dev` profile .* in ([0-9.]+)s")
COMPILING = re.compile(r"^\s*Compiling (\S+) v", re.MULTILINE)


def cpu_note(key: str, task: Step, baseline: Step) -> str:
    """CPU time does not depend on what else runs on the machine as wall time does."""
    ours, theirs = statistics.median(task.cpu), statistics.median(baseline.cpu)
    return (f"{key}: CPU time (user + system of every process the command waited for; the "
            f"background Cranelift compile is not among them) `{task.name}` {fmt_seconds(ours)}, "
            f"`{baseline.name}` {fmt_seconds(theirs)} (medians): **{ours / theirs:.2f}x**")


def paired(steps: list[Step], rounds: int, what: str) -> dict[str, Stat]:
    """`rounds` rounds, each running every step once in the given order."""
    samples: dict[str, list[float]] = {s.name: [] for s in steps}
    for r in range(rounds):
        for step in steps:
            samples[step.name].append(step.sample())
        log(f"{what}: round {r + 1}/{rounds}: "
            + ", ".join(f"{k} {fmt_seconds(v[-1])}" for k, v in samples.items()))  # fmt: skip
    return {k: Stat(v) for k, v in samples.items()}


@dataclass
class Row:
    key: str
    what: str
    task: Stat | None
    baseline_name: str
    baseline: Stat | None
    goal: str = ""
    limit: float | None = None
    note: str = ""

    def cells(self) -> list[str]:
        ratio = self.task.median / self.baseline.median if self.task and self.baseline else None
        mins = min(self.task.samples) / min(self.baseline.samples) if self.task and self.baseline else None
        met = "" if ratio is None or self.limit is None else ("yes" if ratio <= self.limit else "**no**")
        return [
            self.key, self.what, show(self.task), f"{self.baseline_name}: {show(self.baseline)}",
            f"**{ratio:.2f}x**" if ratio is not None else "", f"{mins:.2f}x" if mins is not None else "",
            self.goal, met or self.note,
        ]  # fmt: skip


def show(stat: Stat | None) -> str:
    if stat is None:
        return ""
    if stat.runs == 1:
        return fmt_seconds(stat.median)
    return f"{fmt_seconds(stat.median)} (n={stat.runs}, min {fmt_seconds(min(stat.samples))})"


def markdown(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def size_text(size: int) -> str:
    return f"{size / (1 << 20):.2f} MiB" if size >= 1 << 20 else f"{size / 1024:.0f} KiB"


def remove(*paths: Path) -> None:
    for path in paths:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()


# -- the workspace ------------------------------------------------------------------------


class Realistic:
    def __init__(self, setup, root: Path):
        self.setup = setup
        self.root = root
        self.work = setup.workdir
        self.xdg = Path(setup.env["XDG_CACHE_HOME"])
        self.offline = dict(setup.env, CARGO_NET_OFFLINE="true")

    def cargo(self, *args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> Command:
        return Command([self.setup.cargo, *args], cwd or self.root, env or self.setup.env)

    def task(self, name: str, expect: str, cwd: Path | None = None, env=None, label: str = "") -> Step:
        step = Step(label or f"task {name}", self.cargo("task", name, cwd=cwd, env=env), expect)
        step.settle = wait_for_tier_up
        return step

    def xtask(self, name: str, expect: str, env=None, label: str = "") -> Step:
        return Step(label or f"xtask {name}", self.cargo("xtask", name, env=env), expect)

    def owner_dirs(self, bin_name: str) -> list[Path]:
        """The generated packages under target/cargo-task/ that build `bin_name`."""
        found = []
        for manifest in (self.root / "target" / "cargo-task").glob("*/Cargo.toml"):
            if f'name = "{bin_name}"' in manifest.read_text():
                found.append(manifest.parent)
        return found

    def owner_dir(self, bin_name: str) -> Path:
        found = self.owner_dirs(bin_name)
        if len(found) != 1:
            raise BenchError(f"expected one generated package building `{bin_name}`, found {found}")
        return found[0]

    def remove_task_state(self) -> None:
        remove(self.root / "target" / "cargo-task", self.xdg / "cargo-task-wasm")

    def remove_xtask_state(self) -> None:
        """All of target/ but cargo-task's part: what `rm -r target` does to the xtask."""
        target = self.root / "target"
        if target.is_dir():
            for entry in target.iterdir():
                if entry.name != "cargo-task":
                    remove(entry)


def tier_up_processes() -> list[int]:
    """cargo-task's background Cranelift compiles (`cargo_task.tierup`) now running."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if b"cargo_task.tierup" in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


TIER_UP_SECONDS: list[float] = []  # how long each run's background compile went on after it


def wait_for_tier_up() -> None:
    """A run that compiled with Winch leaves Cranelift's compile to a background process:
    it must not run into the next timed command (the xtask's, say), so wait, untimed."""
    start = time.perf_counter()
    waited = False
    while tier_up_processes():
        waited = True
        time.sleep(0.02)
    if waited:
        TIER_UP_SECONDS.append(time.perf_counter() - start)


def comment_edit(text: str, mark: int) -> str:
    """A comment line appended: rustc rebuilds, but the wasm comes out byte for byte the
    same (no debug info, no line moved), so cargo-task finds its machine code cached."""
    return text + f"// edit {mark}\n"


CODE_SITE = '"total_lines": total'


def code_edit(text: str, mark: int) -> str:
    """A field added to the JSON: new code, a new wasm, a new Wasmtime compile."""
    if CODE_SITE not in text:
        raise BenchError(f"no `{CODE_SITE}` to edit")
    return text.replace(CODE_SITE, f'{CODE_SITE}, "edit": {mark}u64', 1)


def edited(path: Path, change: Callable[[str, int], str]) -> tuple[Callable[[], None], Callable[[], None]]:
    """(edit, restore the original text); every edit is a text never seen before (a
    cache keyed by content must not know it, even in a reused --workdir)."""
    original = path.read_text()

    def edit() -> None:
        path.write_text(change(original, time.time_ns()))

    def restore() -> None:
        path.write_text(original)

    return edit, restore


def crate_versions(lock: Path) -> dict[str, str]:
    wanted = set(projects.REALISTIC_DEPENDENCIES)
    return {p["name"]: p["version"] for p in tomllib.loads(lock.read_text()).get("package", [])
            if p["name"] in wanted}  # fmt: skip


# -- sections -------------------------------------------------------------------------------


def section_cold(ws: Realistic, rounds: int) -> tuple[Row, list[str]]:
    task = ws.task("lines", projects.LINES_EXPECT, env=ws.offline, label="task cold")
    task.prepare = ws.remove_task_state
    xtask = ws.xtask("lines", projects.LINES_EXPECT, env=ws.offline, label="xtask cold")
    xtask.prepare = ws.remove_xtask_state
    s = paired([task, xtask], rounds, "C. cold")
    row = Row("C", "cold first run: `cargo task lines` after `rm -r target/cargo-task "
              "$XDG_CACHE_HOME/cargo-task-wasm` vs `cargo xtask lines` after removing the rest of "
              "`target/` (both CARGO_NET_OFFLINE=true; Cargo.lock kept)",
              s["task cold"], "`cargo xtask lines`", s["xtask cold"], "<= 1.3x", 1.3)  # fmt: skip
    generated = ws.owner_dir("lines")
    ours, theirs = crate_versions(generated / "Cargo.lock"), crate_versions(ws.root / "Cargo.lock")
    same = "the same" if ours == theirs else f"DIFFERENT (task {ours}, xtask {theirs})"
    return row, [f"crate versions: both sides build {same}: " + ", ".join(f"{k} {v}" for k, v in sorted(ours.items())),
                 cpu_note("C", task, xtask)]


def section_warm(ws: Realistic, rounds: int) -> Row:
    task, xtask = ws.task("lines", projects.LINES_EXPECT), ws.xtask("lines", projects.LINES_EXPECT)
    for step in (task, xtask):  # the earlier section may have left either side stale
        step.sample()
    s = paired([task, xtask], rounds, "A. warm")
    return Row("A", "warm run: `cargo task lines` vs `cargo xtask lines`", s["task lines"],
               "`cargo xtask lines`", s["xtask lines"], "<= 1.5x", 1.5)  # fmt: skip


def section_edit(ws: Realistic, rounds: int) -> tuple[list[Row], list[str]]:
    rows, notes = [], []
    kinds = (
        ("B1", comment_edit, "append a comment line `// edit N`"),
        ("B2", code_edit, f"add a field to the JSON (`{CODE_SITE}` -> `{CODE_SITE}, \"edit\": Nu64`)"),
    )
    for key, change, what in kinds:
        task, xtask = ws.task("lines", projects.LINES_EXPECT), ws.xtask("lines", projects.LINES_EXPECT)
        task.prepare, task.cleanup = edited(ws.root / "tasks" / "lines.rs", change)
        xtask.prepare, xtask.cleanup = edited(ws.root / "xtask" / "src" / "main.rs", change)
        s = paired([task, xtask], rounds, f"{key}. edit-then-run")
        rows.append(Row(key, f"edit, then run: {what} in tasks/lines.rs, then `cargo task lines`, vs "
                        "the same edit in xtask/src/main.rs, then `cargo xtask lines` (the file is "
                        "restored after each run, untimed)", s["task lines"], "`cargo xtask lines`",
                        s["xtask lines"], "<= 1.5x", 1.5))  # fmt: skip
        notes.append(cpu_note(key, task, xtask))
        if task.cargo_builds:
            notes.append(f"{key}: of `cargo task lines`, cargo's build (its `Finished ... in`) took "
                         f"{fmt_seconds(statistics.median(task.cargo_builds))} (median); the rest is "
                         "the tool, the Wasmtime compile when the wasm changed, and the run")  # fmt: skip
    return rows, notes


def section_heavy(ws: Realistic, rounds: int) -> Row:
    task, xtask = ws.task("manpage", projects.MANPAGE_EXPECT), ws.xtask("manpage", projects.MANPAGE_EXPECT)
    for step in (task, xtask):  # the first run builds `manpage` (untimed)
        step.sample()
    s = paired([task, xtask], rounds, "E. compute-heavy")
    return Row("E", "compute-heavy, after its first run: `cargo task manpage` vs `cargo xtask "
               "manpage` (200 subcommands rendered as Markdown, 200 command lines parsed, JSON "
               "round trip; twice)", s["task manpage"], "`cargo xtask manpage`",
               s["xtask manpage"], "<= 1.3x", 1.3)  # fmt: skip


# The profile choices of the generated package (scaffold.PROFILE_TABLE): dependencies at
# opt-level 1, the program's own crate and build-time code at 0; for the native twin.
SAME_PROFILE = ("profile.dev.opt-level=1", "profile.dev.package.xtask.opt-level=0",
                "profile.dev.build-override.opt-level=0")


def section_heavy_same_profile(ws: Realistic, rounds: int) -> Row:
    """Row E against the native twin built with cargo-task's profile choices."""
    env = dict(ws.setup.env, CARGO_TARGET_DIR=str(ws.work / "xtask-same-profile"))
    configs = [a for c in SAME_PROFILE for a in ("--config", c)]
    native = Step("xtask same profile", ws.cargo("run", "-q", "-p", "xtask", *configs, "--", "manpage", env=env),
                  projects.MANPAGE_EXPECT)  # fmt: skip
    task = ws.task("manpage", projects.MANPAGE_EXPECT)
    for step in (task, native):  # the first run builds (untimed)
        step.sample()
    s = paired([task, native], rounds, "E2. compute-heavy, same profile")
    return Row("E2", "compute-heavy, after its first run: `cargo task manpage` vs its native twin "
               f"built with the same profile choices: `cargo run -q -p xtask {' '.join(configs)} -- manpage` "
               "(own CARGO_TARGET_DIR)", s["task manpage"], "native twin, same profile",
               s["xtask same profile"], "<= 1.3x", 1.3)  # fmt: skip



def section_member(ws: Realistic, rounds: int) -> tuple[Row, list[str]]:
    member = ws.root / projects.REALISTIC_MEMBER
    xdg = ws.work / "xdg-member"
    env = dict(ws.offline, XDG_CACHE_HOME=str(xdg))
    task = ws.task("mlines", projects.LINES_EXPECT, cwd=member, env=env, label="member cold")

    def prepare() -> None:
        for directory in ws.owner_dirs("mlines"):
            remove(directory)
        remove(xdg)

    task.prepare = prepare
    # What a second binary costs where the dependencies are shared: the xtask rebuilding
    # only its own crate (the same edit as row B2).
    xtask = ws.xtask("lines", projects.LINES_EXPECT, label="xtask edit")
    xtask.prepare, xtask.cleanup = edited(ws.root / "xtask" / "src" / "main.rs", code_edit)
    s = paired([task, xtask], rounds, "D. second owner")
    rebuilt = sorted(set(COMPILING.findall(task.last_stderr)) - {"cargo-task"})
    deps = [c for c in rebuilt if not c.startswith("cargo-task-")]
    verdict = (f"**no**: rebuilt {len(deps)} crates" if {"clap", "serde_json"} & set(deps)
               else "yes: dependencies reused")  # fmt: skip
    row = Row("D", f"second owner, cold: `cargo task mlines` in {projects.REALISTIC_MEMBER} (its own "
              "task, the workspace's task-dependencies; root task built and warm; its package "
              "dir and a cache of its own removed) vs an xtask rebuild of one crate on built "
              "dependencies (row B2's edit)", s["member cold"], "`cargo xtask lines` after an edit",
              s["xtask edit"], "no rebuild of the dependencies", None, verdict)  # fmt: skip
    return row, [f"second owner's cold run compiled: {', '.join(rebuilt) or 'nothing'}"]


# -- levers -------------------------------------------------------------------------------


def child(argv: list[str]) -> int:
    """`realistic.py child STRATEGY WASM RUNS OUT`: compile WASM with cargo-task's engine
    settings and the given strategy (timed), then run it as the `manpage` task RUNS times
    (each timed: deserialize, instantiate, run); JSON to OUT."""
    name, wasm_path, runs, out = argv[0], Path(argv[1]), int(argv[2]), Path(argv[3])
    from ctypes import POINTER, c_uint8

    from cargo_task import sandbox
    from cargo_task import wasmtime_c as C
    from cargo_task.grants import Grants

    lib = C.lib()
    config = lib.wasm_config_new()
    lib.wasmtime_config_epoch_interruption_set(config, True)  # as sandbox.engine()
    strategy, opt_level = STRATEGIES[name]
    # Neither setter is in _wasmtime_abi.SIGNATURES: declared here, from the C header.
    for function, value in (("wasmtime_config_strategy_set", strategy),
                            ("wasmtime_config_cranelift_opt_level_set", opt_level)):  # fmt: skip
        if value is not None:
            setter = lib[function]
            setter.restype, setter.argtypes = None, [POINTER(C.wasm_config_t), c_uint8]
            setter(config, value)
    # what sandbox.engine() returns for Cranelift's code (Compiled's default strategy)
    sandbox._engines["cranelift"] = lib.wasm_engine_new_with_config(config)
    wasm = wasm_path.read_bytes()
    start = time.perf_counter()
    payload = sandbox.Compiled(sandbox.compile_component(wasm, "bench"))
    result = {"compile": time.perf_counter() - start, "precompiled": len(payload.code), "runs": []}
    start = time.perf_counter()
    hashlib.sha256(payload.code).digest()  # what a warm run does to the cached code before loading it
    result["sha256"] = time.perf_counter() - start
    grants = Grants(argv=("manpage",), env=(), mounts=(), tmp=False, network=False, stdin=False,
                    timeout=None, memory=1 << 30, writes_protected=())  # fmt: skip
    for _ in range(runs):
        start = time.perf_counter()
        code = sandbox.run("manpage", payload, grants, lambda e: os._exit(3))
        result["runs"].append(time.perf_counter() - start)
        if code != 0:
            raise SystemExit(f"manpage exited with {code}")
    sys.stdout.flush()
    out.write_text(json.dumps(result))
    return 0


def run_child(ws: Realistic, strategy: str, wasm: Path, runs: int) -> dict:
    out = ws.work / "child.json"
    remove(out)
    command = Command([sys.executable, str(Path(__file__).resolve()), "child", strategy, str(wasm),
                       str(runs), str(out)], ws.work, ws.setup.env)  # fmt: skip
    result = command.run(capture=True)
    if result.returncode != 0 or not out.exists() or (runs and projects.MANPAGE_EXPECT not in result.stdout):
        raise BenchError(f"the lever child ({strategy}, {wasm.name}) failed with {result.returncode}:\n"
                         f"{result.stdout[-2000:]}{result.stderr[-4000:]}")  # fmt: skip
    return json.loads(out.read_text())


def build_time_crates(ws: Realistic, directory: Path) -> list[str]:
    """Crates built only to run on the host while building (proc-macros, build
    dependencies, and what they use): `cargo metadata` of the package for the wasm target."""
    command = Command([ws.setup.cargo, "metadata", "--format-version", "1", "--filter-platform",
                       TARGET, "--offline"], directory, ws.offline)  # fmt: skip
    meta = json.loads(command.checked().stdout)
    packages = {p["id"]: p for p in meta["packages"]}
    nodes = {n["id"]: n for n in meta["resolve"]["nodes"]}
    macros = {i for i, p in packages.items() if any("proc-macro" in t["kind"] for t in p["targets"])}
    builds = {d["pkg"] for n in nodes.values() for d in n["deps"]
              if any(k["kind"] == "build" for k in d["dep_kinds"])}  # fmt: skip

    def reach(starts: set[str], follow: Callable[[dict], bool], stop: set[str]) -> set[str]:
        seen: set[str] = set()
        todo = list(starts)
        while todo:
            node = todo.pop()
            if node in seen or node in stop:
                continue
            seen.add(node)
            todo += [d["pkg"] for d in nodes[node]["deps"] if follow(d)]
        return seen

    normal = lambda d: any(k["kind"] is None for k in d["dep_kinds"])  # noqa: E731
    in_wasm = reach({meta["resolve"]["root"]}, normal, stop=macros)
    on_host = reach(macros | builds, lambda d: True, stop=set())
    return sorted(packages[i]["name"] for i in on_host - in_wasm)


def hand_packages(ws: Realistic) -> tuple[dict[str, Path], list[str]]:
    """The generated package of the root's tasks, copied (manifest and lock): as it is; with
    `[profile.dev.package."*"] opt-level = 1`; and with that but the build-time crates
    (proc-macros and their dependencies, which never reach the wasm) kept at opt-level 0."""
    generated = ws.owner_dir("lines")
    manifest, lock = (generated / "Cargo.toml").read_text(), (generated / "Cargo.lock").read_text()
    base = ws.work / "hand-opt0"
    base.mkdir(parents=True, exist_ok=True)
    (base / "Cargo.toml").write_text(manifest)
    (base / "Cargo.lock").write_text(lock)
    host_only = build_time_crates(ws, base)
    keep = "".join(f'\n[profile.dev.package.{json.dumps(n)}]\nopt-level = 0\n' for n in host_only)
    packages = {PROFILES[0]: base}
    for profile, directory, extra in ((PROFILES[1], "hand-opt1", OPT1_TABLE),
                                      (PROFILES[2], "hand-opt1-wasm-only", OPT1_TABLE + keep)):  # fmt: skip
        path = ws.work / directory
        path.mkdir(parents=True, exist_ok=True)
        (path / "Cargo.toml").write_text(manifest + extra)
        (path / "Cargo.lock").write_text(lock)
        packages[profile] = path
    return packages, host_only


PROFILES = ("deps opt 0 (today)", 'deps opt 1 (`package."*"`)', "deps opt 1, build-time crates opt 0")


def section_levers(ws: Realistic, compile_rounds: int, run_rounds: int, build_rounds: int) -> list[str]:
    out: list[str] = []
    generated = ws.owner_dir("lines")
    tool_wasm = {n: generated / "target" / TARGET / "debug" / f"{n}.wasm" for n in ("lines", "manpage")}

    # 1. The same package by hand under each profile choice: cold builds, rounds interleaved.
    packages, host_only = hand_packages(ws)
    builds: dict[str, dict[str, list[float]]] = {p: {"lines": [], "manpage": []} for p in packages}
    for r in range(build_rounds):
        for profile, directory in packages.items():
            remove(directory / "target")
            for name in ("lines", "manpage"):  # `lines` from scratch, then `manpage` on built deps
                command = Command([ws.setup.cargo, "build", "-q", "--target", TARGET, "--bin", name],
                                  directory, ws.offline)  # fmt: skip
                builds[profile][name].append(command.timed())
            log(f"F. hand build, {profile}, round {r + 1}/{build_rounds}: lines "
                f"{fmt_seconds(builds[profile]['lines'][-1])}, then manpage {fmt_seconds(builds[profile]['manpage'][-1])}")
    wasm = {p: {n: d / "target" / TARGET / "debug" / f"{n}.wasm" for n in ("lines", "manpage")}
            for p, d in packages.items()}  # fmt: skip
    variants = [(wasm[PROFILES[1]][n], wasm[PROFILES[2]][n]) for n in ("lines", "manpage")]
    if all(a.read_bytes() == b.read_bytes() for a, b in variants):
        same = "byte-identical components: the rows below stand for both."
    else:
        apart = max(abs(a.stat().st_size - b.stat().st_size) for a, b in variants)
        same = (f"components within {apart} bytes of each other in size, not byte-identical (a "
                "crate's metadata hash, in its symbols' names, covers its profile); the rows below "
                "are of the first.")  # fmt: skip
    out += ["Task-dependencies' optimisation: the root's generated package (`target/cargo-task/<root>/"
            "Cargo.toml` and its `Cargo.lock`) copied and built by hand, `cargo build -q --target "
            f"{TARGET} --bin lines` from scratch, then `--bin manpage`. Build-time crates: "
            f"{', '.join(host_only)}.", ""]  # fmt: skip
    out.append(markdown(
        ["task-dependencies", "cold build of `lines`", "then `manpage`", "lines.wasm", "manpage.wasm"],
        [[p, show(Stat(b["lines"])), show(Stat(b["manpage"])),
          size_text(wasm[p]["lines"].stat().st_size), size_text(wasm[p]["manpage"].stat().st_size)]
         for p, b in builds.items()]
        + [["the tool's own build (opt 0)", "", "", size_text(tool_wasm["lines"].stat().st_size),
            size_text(tool_wasm["manpage"].stat().st_size)]],
    ))  # fmt: skip
    out += ["", f"The two opt-level 1 variants give {same}", ""]
    profiles = PROFILES[:2]

    # 2. Wasmtime: compile time and precompiled size per strategy, rounds interleaved.
    compiles: dict[tuple[str, str, str], list[float]] = {}
    sizes: dict[tuple[str, str, str], int] = {}
    hashes: dict[tuple[str, str, str], list[float]] = {}
    for r in range(compile_rounds):
        for profile in profiles:
            for name in ("lines", "manpage"):
                for strategy in STRATEGIES:
                    result = run_child(ws, strategy, wasm[profile][name], 0)
                    compiles.setdefault((profile, name, strategy), []).append(result["compile"])
                    sizes[(profile, name, strategy)] = result["precompiled"]
                    hashes.setdefault((profile, name, strategy), []).append(result["sha256"])
        log(f"F. Wasmtime compiles, round {r + 1}/{compile_rounds}")
    # 3. The compute-heavy component's run time under each, in-process (no tool start).
    runs: dict[tuple[str, str], list[float]] = {}
    for profile in profiles:
        for strategy in STRATEGIES:
            runs[(profile, strategy)] = run_child(ws, strategy, wasm[profile]["manpage"], run_rounds)["runs"]
        log(f"F. manpage runs under each strategy, {profile}")
    out += ["Wasmtime strategies, with cargo-task's engine settings (epoch interruption) plus "
            "`wasmtime_config_strategy_set` (1 Cranelift, 2 Winch) or "
            "`wasmtime_config_cranelift_opt_level_set` (0 none), through `sandbox.compile_component` "
            f"and `sandbox.run` in a child process ({compile_rounds} compiles each; the run, "
            f"{run_rounds} times, is deserialize + instantiate + run of `manpage`, no tool start):", ""]  # fmt: skip
    rows = []
    for profile in profiles:
        for name in ("lines", "manpage"):
            for strategy in STRATEGIES:
                key = (profile, name, strategy)
                run = show(Stat(runs[(profile, strategy)])) if name == "manpage" else ""
                rows.append([profile, f"{name}.wasm ({size_text(wasm[profile][name].stat().st_size)})", strategy,
                             show(Stat(compiles[key])), size_text(sizes[key]),
                             fmt_seconds(statistics.median(hashes[key])), run])  # fmt: skip
    out.append(markdown(["task-dependencies", "component", "strategy", "compile", "precompiled",
                         "its SHA-256", "`manpage` run"], rows))  # fmt: skip
    out.append("")

    # 4. The native twin with the same profile choice (runtime crates at opt-level 1, the
    # build-time ones at 0, as the wasm-only variant), its binary run directly.
    native_dir = ws.work / "xtask-opt1-target"
    remove(native_dir)
    env = dict(ws.offline, CARGO_TARGET_DIR=str(native_dir))
    configs = [NATIVE_OPT1] + [f"profile.dev.package.{json.dumps(n)}.opt-level=0" for n in host_only]
    argv = [ws.setup.cargo, "build", "-q", "-p", "xtask"] + [a for c in configs for a in ("--config", c)]
    built = Command(argv, ws.root, env).timed()
    binaries = {profiles[0]: ws.root / "target" / "debug" / "xtask", profiles[1]: native_dir / "debug" / "xtask"}
    steps = [Step(f"native {p}", Command([str(b), "manpage"], ws.root, ws.setup.env), projects.MANPAGE_EXPECT)
             for p, b in binaries.items()]  # fmt: skip
    native = paired(steps, run_rounds, "F. native manpage")
    out += ["The native twin's `manpage` with the same choice, its binary run directly (no cargo):", ""]
    out.append(markdown(
        ["task-dependencies", "native `xtask manpage`", "in Wasmtime, Cranelift", "in Wasmtime, Winch",
         "Cranelift / native", "Winch / native"],
        [[p, show(native[f"native {p}"]), show(Stat(runs[(p, "cranelift")])), show(Stat(runs[(p, "winch")])),
          f"{statistics.median(runs[(p, 'cranelift')]) / native[f'native {p}'].median:.2f}x",
          f"{statistics.median(runs[(p, 'winch')]) / native[f'native {p}'].median:.2f}x"]
         for p in binaries],
    ))  # fmt: skip
    out += ["", f"(the native opt-level 1 build, `{' '.join(argv[1:])}` into a target directory of "
            f"its own, took {fmt_seconds(built)} from scratch)", ""]
    return out


# -- main ---------------------------------------------------------------------------------


def parse_rounds(text: str) -> tuple[int, int, int, int]:
    values = [int(v) for v in text.split(",") if v.strip()]
    if not 1 <= len(values) <= 4 or min(values) < 1:
        raise argparse.ArgumentTypeError("WARM[,EDIT[,COLD[,BUILDS]]], each >= 1")
    return tuple(values + list(DEFAULT_ROUNDS[len(values):]))  # type: ignore[return-value]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["child"]:
        return child(argv[1:])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=parse_rounds, default=DEFAULT_ROUNDS,
                        help="WARM[,EDIT[,COLD[,BUILDS]]] rounds (default 5,3,2,1): WARM also "
                        "for row E and the levers' runs, EDIT for the levers' compiles, BUILDS for "
                        "row D and the levers' cold builds")
    parser.add_argument("--sections", default="C,A,B,E,D,F", help="which sections, in this order")
    parser.add_argument("--workdir", type=Path, help="use (and keep) this scratch directory")
    parser.add_argument("--markdown", type=Path, help="also write the report here")
    args = parser.parse_args(argv)
    warm, edit, cold, builds = args.rounds
    sections = [s.strip().upper() for s in args.sections.split(",")]

    with work_directory(args.workdir, "cargo-task-realistic-") as workdir:
        setup = make_setup(workdir)
        info = machine_info(setup)
        through_cargo = Command([setup.cargo, "task", "--version"], workdir, setup.env).checked().stdout.strip()
        direct = Command([str(setup.cargo_task), "--version"], workdir, setup.env).checked().stdout.strip()
        if through_cargo != direct:  # cargo searches $CARGO_HOME/bin before PATH
            raise BenchError(f"`cargo task` runs another cargo-task ({through_cargo}), not {direct}")
        root = projects.realistic_workspace(workdir / "realistic")
        ws = Realistic(setup, root)
        log(f"work directory {workdir}; rounds: warm {warm}, edit {edit}, cold {cold}, one-off builds {builds}")
        ws.cargo("fetch").checked()  # crates.io, once: the timed runs are offline or fresh
        rows: dict[str, Row] = {}
        notes: list[str] = []
        levers: list[str] = []
        for section in sections:
            if section == "C":
                rows["C"], more = section_cold(ws, cold)
                notes += more
            elif section == "A":
                rows["A"] = section_warm(ws, warm)
            elif section == "B":
                edit_rows, more = section_edit(ws, edit)
                rows.update((r.key, r) for r in edit_rows)
                notes += more
            elif section == "E":
                rows["E"] = section_heavy(ws, warm)
                rows["E2"] = section_heavy_same_profile(ws, warm)
            elif section == "D":
                rows["D"], more = section_member(ws, builds)
                notes += more
            elif section == "F":
                if not ws.owner_dirs("manpage") or not (ws.root / "target" / "debug" / "xtask").exists():
                    section_heavy(ws, 1)  # the levers need both sides of `manpage` built
                levers = section_levers(ws, edit, warm, builds)
            else:
                raise BenchError(f"unknown section {section!r} (A-F)")
        info["load average at end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
        info["benchmark wall time"] = f"{time.monotonic() - START:.0f} s"

    python = os.path.relpath(sys.executable) if sys.executable.startswith(os.getcwd()) else sys.executable
    command = " ".join([python, os.path.relpath(__file__), *argv])
    table = markdown(["#", "measurement (exact commands, paired rounds: task, xtask, task, ...)",
                      "cargo task", "baseline", "ratio", "ratio of mins", "goal", "met"],
                     [rows[k].cells() for k in ("A", "B1", "B2", "C", "D", "E", "E2") if k in rows])  # fmt: skip
    report = [f"Command: `{command}`", "", table, ""]
    if TIER_UP_SECONDS:
        notes.append(f"background Cranelift compiles (tiering) went on for {fmt_seconds(statistics.median(TIER_UP_SECONDS))} "
                     f"(median of {len(TIER_UP_SECONDS)}) after the runs that started one; the script waits for them, untimed")
    if notes:
        report += ["Notes:", ""] + [f"- {n}" for n in notes] + [""]
    report += levers
    report += ["Machine:", ""] + [f"- {k}: {v}" for k, v in info.items()] + [""]
    text = "\n".join(report)
    print(text)
    if args.markdown:
        args.markdown.write_text(text)
    return 0


START = time.monotonic()

if __name__ == "__main__":
    run_script(main, "realistic")
