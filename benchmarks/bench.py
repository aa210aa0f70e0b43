#!/usr/bin/env python3
"""The cargo-task benchmark: one invocation builds every case, then reports medians as
ratios against baselines measured in the same run, as a Markdown table.

    .venv/bin/python benchmarks/bench.py            # the full run (about 2.5 minutes)
    .venv/bin/python benchmarks/bench.py --quick    # fewer repetitions (about 1 minute)

Run it with the interpreter cargo-task is installed in: the floors (`python -c ...`) use
that interpreter and `cargo-task` is the one next to it. Cases are generated in a scratch
directory (a new temporary one unless --workdir), and cargo-task's cache is pointed at a
directory in it, so the user's own cache and the checkout are never touched. What each
number measures and what limits it: BENCHMARKS.md.

Sections (the issue's numbering):
  1. warm `cargo-task print` vs `python -c "import wasmtime"`          target <= 1.3x
  2. warm `cargo task print` vs native `cargo xtask print`             target < 1x at 50 members
  3. warm run, 1/10/100 tasks x 1/10/50 members                        target: flat, within 10%
  4. cold first run vs `cargo build` + one Wasmtime compile            target <= 1.1x
  5. listing 100 tasks vs `python -c pass`                             target <= 3x
  6. the original Rust cargo-task-wasm 0.2.0, warm, same task          (reported)
  7. the realistic workspace of issue 10 (benchmarks/realistic.py rows A-E, its own report)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

import projects  # noqa: E402

TARGET = "wasm32-wasip2"
ORIGINAL_VERSION = "0.2.0"
GRID_TASKS = (1, 10, 100)
GRID_MEMBERS = (1, 10, 50)
STARTED = time.monotonic()


def log(message: str) -> None:
    print(f"[bench {time.monotonic() - STARTED:6.1f}s] {message}", file=sys.stderr, flush=True)


class BenchError(Exception):
    pass


# -- running and timing ----------------------------------------------------------------


@dataclass
class Command:
    argv: list[str]
    cwd: Path
    env: dict[str, str]

    def run(self, capture: bool = False) -> subprocess.CompletedProcess:
        out = subprocess.PIPE if capture else subprocess.DEVNULL
        return subprocess.run(
            self.argv, cwd=self.cwd, env=self.env, stdin=subprocess.DEVNULL,
            stdout=out, stderr=out, text=capture,
        )  # fmt: skip

    def checked(self) -> subprocess.CompletedProcess:
        result = self.run(capture=True)
        if result.returncode != 0:
            raise BenchError(
                f"`{' '.join(self.argv)}` in {self.cwd} exited with {result.returncode}:\n"
                f"{result.stdout}{result.stderr}"
            )
        return result

    def timed(self) -> float:
        start = time.perf_counter()
        result = self.run()
        elapsed = time.perf_counter() - start
        if result.returncode != 0:
            self.checked()  # raises, with the command's output
        return elapsed


@dataclass
class Probe:
    """One thing that is timed: a command, optionally with untimed preparation, or any
    function returning seconds (for a baseline made of two steps)."""

    name: str
    command: Command | None = None
    prepare: Callable[[], None] | None = None
    expect: str | None = None  # text the check run must print on stdout
    sample_fn: Callable[[], float] | None = None
    extras: dict[str, list[float]] = field(default_factory=dict)

    def check(self) -> None:
        if self.command is None:
            return
        if self.prepare:
            self.prepare()
        result = self.command.checked()
        if self.expect is not None and self.expect not in result.stdout:
            raise BenchError(
                f"{self.name}: expected {self.expect!r} on stdout, got:\n{result.stdout}{result.stderr}"
            )

    def sample(self) -> float:
        if self.sample_fn is not None:
            return self.sample_fn()
        if self.prepare:
            self.prepare()
        return self.command.timed()


def measure(probes: list[Probe], runs: int, warmup: int, rotate: bool = True) -> dict[str, list[float]]:
    """Check each probe, warm it up, then time `runs` rounds; each round runs every probe
    once, in an order rotated from round to round (unless rotate is False), so that drift
    in the machine's load reaches all of them alike."""
    for probe in probes:
        probe.check()
        for _ in range(warmup):
            probe.sample()
    samples: dict[str, list[float]] = {p.name: [] for p in probes}
    for r in range(runs):
        shift = r % len(probes) if rotate else 0
        for probe in probes[shift:] + probes[:shift]:
            samples[probe.name].append(probe.sample())
    return samples


@dataclass
class Stat:
    samples: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def runs(self) -> int:
        return len(self.samples)

    @property
    def spread(self) -> float:
        """Interquartile range relative to the median: how noisy the number is."""
        if len(self.samples) < 4:
            return (max(self.samples) - min(self.samples)) / self.median
        q = statistics.quantiles(self.samples, n=4)
        return (q[2] - q[0]) / self.median

    def show(self) -> str:
        return (f"{fmt_seconds(self.median)} (n={self.runs}, min {fmt_seconds(min(self.samples))}, "
                f"IQR {self.spread * 100:.0f}%)")  # fmt: skip


def fmt_seconds(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 10 else f"{seconds:.1f} s"


@dataclass
class Row:
    section: str
    what: str
    value: Stat | None
    baseline_name: str = ""
    baseline: Stat | None = None
    target: str = ""
    limit: float | None = None  # ratio the target allows (ratio <= limit)
    strict: bool = False  # ratio must be < limit
    note: str = ""
    judged: bool = True

    @property
    def ratio(self) -> float | None:
        if self.value is None or self.baseline is None:
            return None
        return self.value.median / self.baseline.median

    @property
    def min_ratio(self) -> float | None:
        """Ratio of the fastest runs: less sensitive to other load on the machine."""
        if self.value is None or self.baseline is None:
            return None
        return min(self.value.samples) / min(self.baseline.samples)

    @property
    def met(self) -> str:
        if self.ratio is None or self.limit is None or not self.judged:
            return ""
        ok = self.ratio < self.limit if self.strict else self.ratio <= self.limit
        return "yes" if ok else "**no**"

    def as_dict(self) -> dict:
        return {
            "section": self.section, "what": self.what,
            "median_s": self.value.median if self.value else None,
            "samples_s": self.value.samples if self.value else None,
            "baseline": self.baseline_name,
            "baseline_median_s": self.baseline.median if self.baseline else None,
            "baseline_samples_s": self.baseline.samples if self.baseline else None,
            "ratio": self.ratio, "min_ratio": self.min_ratio, "target": self.target,
            "met": self.met, "note": self.note,
        }  # fmt: skip


# -- the environment -------------------------------------------------------------------


@dataclass
class Setup:
    python: str
    cargo_task: Path
    cargo: str
    workdir: Path
    env: dict[str, str]  # for every timed command
    bytecode_env_was_set: bool


def make_setup(workdir: Path) -> Setup:
    python = sys.executable
    cargo_task = Path(python).parent / "cargo-task"
    if not cargo_task.exists():
        raise BenchError(
            f"no cargo-task next to {python}; run this with the interpreter it is installed "
            "in: `bash scripts/setup.sh && .venv/bin/python benchmarks/bench.py`"
        )
    cargo = shutil.which("cargo")
    if cargo is None:
        raise BenchError("no cargo on PATH (source .venv/cargo-task.env, or install rustup)")
    env = dict(os.environ)
    # What a user's warm run sees: bytecode cached. With PYTHONDONTWRITEBYTECODE=1 (set on
    # some CI and agent machines) an editable install recompiles cargo_task on every run;
    # section 1 measures that case separately.
    bytecode_env_was_set = bool(env.pop("PYTHONDONTWRITEBYTECODE", None))
    for name in ("CARGO_TARGET_DIR", "CARGO_BUILD_TARGET_DIR", "CARGO", "CARGO_TERM_COLOR",
                 "NO_COLOR", "CARGO_NET_OFFLINE"):  # fmt: skip
        env.pop(name, None)
    env["PATH"] = str(cargo_task.parent) + os.pathsep + env.get("PATH", "")
    env["XDG_CACHE_HOME"] = str(workdir / "xdg-cache")
    return Setup(python, cargo_task, cargo, workdir, env, bytecode_env_was_set)


def version_of(argv: list[str], env: dict[str, str]) -> str:
    try:
        result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
        return (result.stdout or result.stderr).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "unknown"


def machine_info(setup: Setup) -> dict[str, str]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = "unknown"
    try:
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f"{kib / (1 << 20):.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    commit = version_of(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], setup.env)
    diff = subprocess.run(["git", "-C", str(REPO), "diff", "HEAD", "--", "src"],
                          capture_output=True).stdout  # fmt: skip
    dirty = f" (+ uncommitted changes to src/, diff sha256 {hashlib.sha256(diff).hexdigest()[:12]})" if diff else ""
    from importlib.metadata import version

    return {
        "cpu": f"{cpu}, {os.cpu_count()} logical cores",
        "memory": memory,
        "os": platform.platform(),
        "python": f"{platform.python_implementation()} {platform.python_version()} ({setup.python})",
        "wasmtime (PyPI)": version("wasmtime"),
        "cargo-task": version_of([str(setup.cargo_task), "--version"], setup.env),
        "cargo": version_of([setup.cargo, "--version"], setup.env),
        "rustc": version_of(["rustc", "--version"], setup.env),
        "checkout": commit + dirty,
        "load average at start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


# -- cases -----------------------------------------------------------------------------


class Cases:
    """Builds every project once, lazily, and hands out commands on them."""

    def __init__(self, setup: Setup):
        self.setup = setup
        self.work = setup.workdir
        self._built: set[str] = set()

    def cargo_task(self, root: Path, *args: str, env: dict[str, str] | None = None) -> Command:
        return Command([str(self.setup.cargo_task), *args], root, env or self.setup.env)

    def cargo(self, root: Path, *args: str, env: dict[str, str] | None = None) -> Command:
        return Command([self.setup.cargo, *args], root, env or self.setup.env)

    def python(self, *args: str) -> Command:
        return Command([self.setup.python, *args], self.work, self.setup.env)

    def grid(self, tasks: int, members: int) -> Path:
        root = self.work / f"ws-{tasks}t-{members}m"
        key = root.name
        if key not in self._built:
            projects.workspace(root, tasks, members)
            log(f"building {key}: `cargo-task print` (first run builds and compiles it)")
            self.cargo_task(root, "print").checked()
            self._built.add(key)
        return root

    def xtask(self, root: Path) -> Path:
        key = f"xtask:{root.name}"
        if key not in self._built:
            log(f"building {root.name}: `cargo xtask print`")
            self.cargo(root, "xtask", "print").checked()
            self._built.add(key)
        return root

    def demo(self) -> Path:
        root = self.work / "demo"
        if "demo" not in self._built:
            projects.copy_demo(REPO / "examples" / "demo", root)
            log("building the demo (a copy of examples/demo): `cargo-task hello`")
            self.cargo_task(root, "hello").checked()
            self._built.add("demo")
        return root

    def twin(self) -> Path:
        """The large case's shape in a directory of its own."""
        root = self.work / "twin-100t-50m"
        if "twin" not in self._built:
            projects.workspace(root, 100, 50)
            log("building twin-100t-50m: `cargo-task print`")
            self.cargo_task(root, "print").checked()
            self._built.add("twin")
        return root

    def single(self) -> Path:
        root = self.work / "single"
        if "single" not in self._built:
            projects.single_package(root)
            self.cargo_task(root, "print").checked()
            self._built.add("single")
        return root


def print_probe(cases: Cases, name: str, root: Path, task: str = "print", expect: str | None = None,
                env: dict[str, str] | None = None) -> Probe:  # fmt: skip
    return Probe(name, cases.cargo_task(root, task, env=env),
                 expect=projects.PRINT_LINE if expect is None else expect)  # fmt: skip


# -- sections --------------------------------------------------------------------------


def package_copy(cases: Cases, name: str) -> Path:
    """A copy of the cargo_task package without its __pycache__, for PYTHONPATH."""
    import cargo_task

    root = cases.work / name
    _remove(root)
    shutil.copytree(Path(cargo_task.__file__).parent, root / "cargo_task",
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    return root


def section_floor(cases: Cases, runs: int, warmup: int) -> list[Row]:
    demo, large = cases.demo(), cases.grid(100, 50)
    # An editable install (scripts/setup.sh) under PYTHONDONTWRITEBYTECODE=1 never caches
    # cargo_task's bytecode: compare two copies of the package run the same way, one
    # whose .pyc files get written and one that is compiled from source on every run.
    module = [cases.setup.python, "-m", "cargo_task", "print"]
    with_pyc = dict(cases.setup.env, PYTHONPATH=str(package_copy(cases, "pkg-pyc")))
    without_pyc = dict(cases.setup.env, PYTHONPATH=str(package_copy(cases, "pkg-nopyc")),
                       PYTHONDONTWRITEBYTECODE="1")  # fmt: skip
    probes = [
        Probe("floor", cases.python("-c", "import wasmtime")),
        print_probe(cases, "demo", demo, "hello", expect="Hello from `hello`"),
        print_probe(cases, "large", large),
        Probe("pyc", Command(module, large, with_pyc), expect=projects.PRINT_LINE),
        Probe("nopyc", Command(module, large, without_pyc), expect=projects.PRINT_LINE),
    ]
    log(f"1. warm run vs `python -c 'import wasmtime'` ({runs} rounds)")
    s = {k: Stat(v) for k, v in measure(probes, runs, warmup).items()}
    floor = 'python -c "import wasmtime"'
    return [
        Row("1", "warm `cargo-task hello`, demo (copy of examples/demo)", s["demo"], floor,
            s["floor"], "<= 1.3x", 1.3),
        Row("1", "warm `cargo-task print`, 50 members / 100 tasks", s["large"], floor,
            s["floor"], "<= 1.3x", 1.3),
        Row("1", "same as `python -m cargo_task` with PYTHONDONTWRITEBYTECODE=1 and no .pyc "
            "(what an editable install costs where that variable is set)", s["nopyc"],
            "same with .pyc", s["pyc"], "(info)", None),
    ]  # fmt: skip


def section_xtask(cases: Cases, runs: int, warmup: int) -> list[Row]:
    setup = cases.setup
    ours = version_of([str(setup.cargo_task), "--version"], setup.env)
    through_cargo = version_of([setup.cargo, "task", "--version"], setup.env)
    if through_cargo != ours:  # cargo searches $CARGO_HOME/bin before PATH
        raise BenchError(f"`cargo task` runs another cargo-task ({through_cargo}), not {ours}")
    rows = []
    for members in GRID_MEMBERS:
        root = cases.xtask(cases.grid(100, members))
        probes = [
            Probe("task", cases.cargo(root, "task", "print"), expect=projects.PRINT_LINE),
            Probe("xtask", cases.cargo(root, "xtask", "print"), expect=projects.PRINT_LINE),
        ]
        log(f"2. `cargo task print` vs `cargo xtask print`, {members} members ({runs} rounds)")
        s = {k: Stat(v) for k, v in measure(probes, runs, warmup).items()}
        rows.append(Row(
            "2", f"warm `cargo task print`, {members} member(s) / 100 tasks", s["task"],
            "`cargo xtask print` (warm)", s["xtask"], "< 1x at 50 members", 1.0, strict=True,
            judged=members == 50,
        ))  # fmt: skip
    # Both entry points on one project, alternately: does each keep the other's run warm?
    # A twin of the large case takes them in turns; the large case itself sees only
    # `cargo task`, in the same rounds (fixed order, so the twin strictly alternates).
    twin = cases.twin()
    alternating = [
        Probe("twin", cases.cargo(twin, "task", "print"), expect=projects.PRINT_LINE),
        Probe("clean", cases.cargo(cases.grid(100, 50), "task", "print"), expect=projects.PRINT_LINE),
        print_probe(cases, "twin-direct", twin),
    ]
    log(f"2. `cargo task print` and `cargo-task print` in turns on one project ({runs} rounds)")
    s = {k: Stat(v) for k, v in measure(alternating, runs, warmup, rotate=False).items()}
    rows.append(Row(
        "2", "`cargo task print` when `cargo-task print` ran in between (50 members)", s["twin"],
        "`cargo task print` alone (same rounds)", s["clean"], "(info: 1x = both stay warm)", None,
    ))  # fmt: skip
    return rows


def section_grid(cases: Cases, runs: int, warmup: int) -> tuple[list[Row], str]:
    cells = [(t, m) for m in GRID_MEMBERS for t in GRID_TASKS]
    probes = [print_probe(cases, f"{t}t-{m}m", cases.grid(t, m)) for t, m in cells]
    # A/A: the first cell once more, as a separate probe: how far apart two measurements of
    # the same thing land in this run (the noise a 10% target has to be read against).
    probes.append(print_probe(cases, "again", cases.grid(1, 1)))
    log(f"3. warm `cargo-task print` over {len(cells)} workspace sizes ({runs} rounds)")
    s = {k: Stat(v) for k, v in measure(probes, runs, warmup).items()}
    base = s["1t-1m"]
    rows = []
    for t, m in cells:
        if (t, m) == (1, 1):
            continue
        rows.append(Row("3", f"warm `cargo-task print`, {t} task(s), {m} member(s)", s[f"{t}t-{m}m"],
                        "1 task, 1 member", base, "<= 1.1x", 1.1))  # fmt: skip
    rows.append(Row("3", "A/A check: 1 task, 1 member measured again (noise)", s["again"],
                    "1 task, 1 member", base, "(noise)", None))  # fmt: skip
    medians = [v.median for k, v in s.items() if k != "again"]
    # Max over min of nine noisy medians exceeds 1 even when every cell costs the same.
    rows.append(Row("3", "spread: slowest / fastest of the 9 cells (biased up by noise)",
                    Stat([max(medians)]), "fastest cell", Stat([min(medians)]), "(info)", None))  # fmt: skip
    grid = ["| warm `cargo-task print` | " + " | ".join(f"{t} task(s)" for t in GRID_TASKS) + " |",
            "|---|" + "---|" * len(GRID_TASKS)]  # fmt: skip
    for m in GRID_MEMBERS:
        grid.append(f"| {m} member(s) | " + " | ".join(
            f"{fmt_seconds(s[f'{t}t-{m}m'].median)} ({s[f'{t}t-{m}m'].median / base.median:.2f}x)"
            for t in GRID_TASKS) + " |")  # fmt: skip
    return rows, "\n".join(grid)


def _remove(*paths: Path) -> None:
    for path in paths:
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def cold_probes(cases: Cases, label: str, root: Path, task: str, source: Path,
                dependencies: dict[str, str], expect: str) -> tuple[Probe, Probe]:  # fmt: skip
    """cargo-task's first run with none of its state, and the same work done by hand."""
    setup = cases.setup
    # Offline: both sides resolve dependencies from the local index cache, so the run does
    # not time crates.io. cargo-task passes CARGO_NET_* on to cargo.
    xdg = cases.work / f"xdg-cold-{label}"
    env = dict(setup.env, XDG_CACHE_HOME=str(xdg), CARGO_NET_OFFLINE="true")
    tool = Probe(
        f"{label}-tool", cases.cargo_task(root, task, env=env), expect=expect,
        prepare=lambda: _remove(root / "target" / "cargo-task", xdg / "cargo-task-wasm"),
    )  # fmt: skip
    package = projects.standalone(cases.work / f"standalone-{label}", task, source, dependencies)
    build = Command([setup.cargo, "build", "--target", TARGET, "--bin", task], package, env)
    wasm = package / "target" / TARGET / "debug" / f"{task}.wasm"
    compile_ = Command([setup.python, str(HERE / "compile_component.py"), str(wasm)], package, env)
    baseline = Probe(f"{label}-base")
    baseline.extras = {"cargo build": [], "wasmtime compile": []}

    def by_hand() -> float:
        _remove(package / "target", package / "Cargo.lock")
        built = build.timed()
        compiled = float(compile_.checked().stdout.strip())
        baseline.extras["cargo build"].append(built)
        baseline.extras["wasmtime compile"].append(compiled)
        return built + compiled

    baseline.sample_fn = by_hand
    return tool, baseline


def section_cold(cases: Cases, runs: int) -> tuple[list[Row], list[str]]:
    demo, large = cases.demo(), cases.grid(100, 50)
    demo_deps = {"heck": "0.5"}  # examples/demo's [package.metadata.task-dependencies]
    pairs = [
        ("demo", "`cargo-task hello`, demo (builds its task-dependency `heck` too)",
         cold_probes(cases, "demo", demo, "hello", demo / "tasks" / "hello.rs", demo_deps,
                     "Hello from `hello`")),
        ("large", "`cargo-task print`, 50 members / 100 tasks",
         cold_probes(cases, "large", large, "print", large / "tasks" / "print.rs", {},
                     projects.PRINT_LINE)),
    ]  # fmt: skip
    rows, notes = [], []
    for label, what, (tool, base) in pairs:
        log(f"4. cold first run vs cargo build + one Wasmtime compile, {label} ({runs} rounds)")
        s = {k: Stat(v) for k, v in measure([tool, base], runs, warmup=0).items()}
        rows.append(Row("4", f"cold {what}", s[tool.name],
                        "`cargo build --target wasm32-wasip2` + 1 Wasmtime compile",
                        s[base.name], "<= 1.1x", 1.1))  # fmt: skip
        parts = ", ".join(f"{k} {fmt_seconds(statistics.median(v))}" for k, v in base.extras.items())
        notes.append(f"cold {label}: baseline = {parts} (medians)")
    return rows, notes


def section_list(cases: Cases, runs: int, warmup: int) -> list[Row]:
    large, demo = cases.grid(100, 50), cases.demo()
    probes = [
        Probe("floor", cases.python("-c", "pass")),
        Probe("large", cases.cargo_task(large), expect="t099"),
        Probe("demo", cases.cargo_task(demo), expect="hello"),
    ]
    log(f"5. listing vs `python -c pass` ({runs} rounds)")
    s = {k: Stat(v) for k, v in measure(probes, runs, warmup).items()}
    return [
        Row("5", "`cargo-task` listing 100 tasks (50 members)", s["large"], "`python -c pass`",
            s["floor"], "<= 3x", 3.0),
        Row("5", "`cargo-task` listing the demo's 9 tasks (2 from packages)", s["demo"], "`python -c pass`",
            s["floor"], "<= 3x", 3.0),
    ]  # fmt: skip


# -- the original cargo-task-wasm 0.2.0 ------------------------------------------------


def tool_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "cargo-task-wasm-bench"


def install_original(setup: Setup, allow_install: bool) -> tuple[Path | None, str]:
    """-> (the original's binary, or None; why not)."""
    root = tool_cache() / f"original-{ORIGINAL_VERSION}"
    binary = root / "bin" / "cargo-task"
    if binary.exists():
        return binary, ""
    if not allow_install:
        return None, (f"not installed in {root}; add --install-original to build it once "
                      "(`cargo install`, about 15 CPU-minutes)")
    root.parent.mkdir(parents=True, exist_ok=True)
    log_path = root.parent / f"original-{ORIGINAL_VERSION}-install.log"
    command = [setup.cargo, "install", "--version", ORIGINAL_VERSION, "cargo-task-wasm",
               "--root", str(root)]  # fmt: skip
    log(f"installing the original tool once (several minutes): {' '.join(command)}")
    env = {k: v for k, v in setup.env.items() if k != "XDG_CACHE_HOME"}
    with open(log_path, "w") as out:
        result = subprocess.run(command, env=env, cwd=root.parent, stdout=out, stderr=out,
                                stdin=subprocess.DEVNULL)  # fmt: skip
    if result.returncode != 0 or not binary.exists():
        errors = [ln for ln in log_path.read_text().splitlines() if ln.startswith("error")]
        return None, f"`cargo install` failed: {errors[0] if errors else 'see ' + str(log_path)}"
    return binary, ""


def beta_shim(setup: Setup) -> tuple[Path | None, str]:
    """0.2.0 runs `cargo +beta build`. Without a beta toolchain (none can be downloaded
    here) a shim on PATH drops `+beta`, so the stable toolchain builds the tasks."""
    try:
        toolchains = subprocess.run(["rustup", "toolchain", "list"], capture_output=True,
                                    text=True).stdout  # fmt: skip
    except OSError:  # no rustup: `cargo +beta` cannot work either
        toolchains = ""
    if any(line.startswith("beta") for line in toolchains.splitlines()):
        return None, ""
    shim_dir = setup.workdir / "beta-shim"
    shim_dir.mkdir(parents=True, exist_ok=True)
    shim = shim_dir / "cargo"
    shim.write_text(f'#!/bin/sh\n[ "$1" = "+beta" ] && shift\nexec "{setup.cargo}" "$@"\n')
    shim.chmod(0o755)
    return shim_dir, "no beta toolchain here: a PATH shim turns its `cargo +beta build` into the stable `cargo build`"


def section_original(cases: Cases, runs: int, warmup: int, allow_install: bool) -> tuple[list[Row], list[str]]:
    setup = cases.setup
    binary, why = install_original(setup, allow_install)
    what = f"warm `cargo-task print` vs the original cargo-task-wasm {ORIGINAL_VERSION}, one package"
    if binary is None:
        return [Row("6", what, None, note=f"not measured: {why}")], [f"original: {why}"]
    shim_dir, shim_note = beta_shim(setup)
    env = dict(setup.env)
    if shim_dir is not None:
        env["PATH"] = str(shim_dir) + os.pathsep + env["PATH"]
    root = cases.single()
    original = Probe("original", Command([str(binary), "task", "print"], root, env),
                     expect=projects.PRINT_LINE)  # fmt: skip
    ours = print_probe(cases, "ours", root)
    # Is the original's second run warm? It re-copies tasks/ every run (new mtimes).
    original.check()
    again = original.command.run(capture=True)
    rebuilds = "Compiling" in again.stderr
    log(f"6. ours vs the original {ORIGINAL_VERSION} ({runs} rounds)")
    s = {k: Stat(v) for k, v in measure([ours, original], runs, warmup).items()}
    notes = [n for n in (shim_note,) if n]
    notes.append(
        "the original's warm run " + ("rebuilds the task with cargo every time (it re-copies "
        "tasks/ before building, so cargo sees new mtimes) and " if rebuilds else "")
        + "compiles the component with Cranelift on every run (no cache of native code)"
    )  # fmt: skip
    return [Row("6", what, s["ours"], f"original {ORIGINAL_VERSION} `cargo-task task print` (warm)",
                s["original"], "(reported)", None)], notes  # fmt: skip


# -- report ----------------------------------------------------------------------------


def table(rows: list[Row]) -> str:
    lines = [
        "| # | measurement | median | baseline | baseline median | ratio | ratio of mins "
        "| target | met |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        ratio = f"**{row.ratio:.2f}x**" if row.ratio is not None else ""
        min_ratio = f"{row.min_ratio:.2f}x" if row.min_ratio is not None and row.value.runs > 1 else ""
        value = row.value.show() if row.value and row.value.runs > 1 else (
            fmt_seconds(row.value.median) if row.value else row.note)  # fmt: skip
        base = row.baseline.show() if row.baseline and row.baseline.runs > 1 else (
            fmt_seconds(row.baseline.median) if row.baseline else "")  # fmt: skip
        lines.append(f"| {row.section} | {row.what} | {value} | {row.baseline_name} | {base} "
                     f"| {ratio} | {min_ratio} | {row.target} | {row.met} |")  # fmt: skip
    return "\n".join(lines)



@contextmanager
def work_directory(requested: Path | None, prefix: str):
    """The scratch directory: the one asked for (created, kept), else a temporary one,
    removed afterwards whatever happens."""
    if requested is not None:
        requested = requested.resolve()
        requested.mkdir(parents=True, exist_ok=True)
        yield requested
        return
    scratch = tempfile.mkdtemp(prefix=prefix)
    try:
        yield Path(scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (7 warm, 2 cold)")
    parser.add_argument("--runs", type=int, help="rounds for warm measurements (default 21)")
    parser.add_argument("--cold-runs", type=int, help="rounds for cold measurements (default 5)")
    parser.add_argument("--sections", default="1,2,3,4,5,6,7", help="which sections, e.g. 1,5")
    parser.add_argument("--workdir", type=Path, help="reuse this scratch directory (kept)")
    parser.add_argument("--install-original", action="store_true",
                        help="`cargo install` the original 0.2.0 into the benchmark's cache "
                        "when it is missing (once; about 15 CPU-minutes)")
    parser.add_argument("--markdown", type=Path, help="also write the report here")
    parser.add_argument("--json", type=Path, help="write every sample here")
    args = parser.parse_args(argv)
    runs = args.runs or (7 if args.quick else 21)
    cold_runs = args.cold_runs or (2 if args.quick else 5)
    warmup = 1 if args.quick else 2
    sections = set(args.sections.split(","))

    with work_directory(args.workdir, "cargo-task-bench-") as workdir:
        setup = make_setup(workdir)
        info = machine_info(setup)
        log(f"work directory {workdir}; {runs} warm rounds, {cold_runs} cold rounds")
        cases = Cases(setup)
        rows: list[Row] = []
        notes: list[str] = []
        grid_table = ""
        if "1" in sections:
            rows += section_floor(cases, runs, warmup)
        if "2" in sections:
            rows += section_xtask(cases, runs, warmup)
        if "3" in sections:
            grid_rows, grid_table = section_grid(cases, runs, warmup)
            rows += grid_rows
        if "4" in sections:
            cold_rows, cold_notes = section_cold(cases, cold_runs)
            rows += cold_rows
            notes += cold_notes
        if "5" in sections:
            rows += section_list(cases, runs, warmup)
        if "6" in sections:
            original_rows, original_notes = section_original(cases, runs, warmup, args.install_original)
            rows += original_rows
            notes += original_notes
        realistic_report = section_realistic(workdir, args.quick) if "7" in sections else ""
        info["load average at end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
        info["benchmark wall time"] = f"{time.monotonic() - STARTED:.0f} s"
        if setup.bytecode_env_was_set:
            notes.append("PYTHONDONTWRITEBYTECODE was set in the caller's environment; it is "
                         "removed for the timed commands except where a row says otherwise")  # fmt: skip

    python = os.path.relpath(sys.executable, Path.cwd()) if sys.executable.startswith(str(Path.cwd())) else sys.executable
    command = " ".join([python, os.path.relpath(__file__), *(sys.argv[1:] if argv is None else argv)])
    report = [f"Command: `{command}`", "", table(rows), ""]
    if grid_table:
        report += ["Section 3 as a grid (ratio to 1 task, 1 member):", "", grid_table, ""]
    if notes:
        report += ["Notes:", ""] + [f"- {n}" for n in notes] + [""]
    if realistic_report:
        report += ["Section 7, the realistic workspace of issue 10 (`benchmarks/realistic.py`, rows A-E):", "",
                   realistic_report, ""]  # fmt: skip
    report += ["Machine:", ""] + [f"- {k}: {v}" for k, v in info.items()] + [""]
    text = "\n".join(report)
    print(text)
    if args.markdown:
        args.markdown.write_text(text)
    if args.json:
        args.json.write_text(json.dumps({"machine": info, "notes": notes,
                                         "rows": [r.as_dict() for r in rows]}, indent=2))  # fmt: skip
    return 0


def section_realistic(workdir: Path, quick: bool) -> str:
    """Section 7: the 50-member workspace against its `cargo xtask` twin, rows A-E of
    `realistic.py` (warm, edit-then-run, cold, a second owner, compute-heavy), run by it."""
    import realistic

    out = workdir / "realistic.md"
    rounds = "3,2,1,1" if quick else "5,3,2,1"
    realistic.main(["--sections", "C,A,B,E,D", "--rounds", rounds, "--workdir", str(workdir / "realistic"),
                    "--markdown", str(out)])  # fmt: skip
    return out.read_text()


def run_script(main: Callable[[], int], name: str) -> None:
    """A benchmark script's exit: its code, one `error:` line for a BenchError, 130 on Ctrl-C."""
    try:
        sys.exit(main())
    except BenchError as e:
        print(f"{name}: error: {e}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    run_script(main, "bench")
