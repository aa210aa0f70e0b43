"""Which cargo profile should tasks be built with? Cold cost = cargo build + one Wasmtime compile.

Builds the same task as a standalone wasm32-wasip2 package under four profiles, from
scratch each time, and reports medians. This is the measurement behind the "Build
profile" decision in ARCHITECTURE.md.

    .venv/bin/python benchmarks/profiles.py [--rounds N]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
from cargo_task import sandbox  # noqa: E402

PROFILES = {
    "dev (default)": ("", "debug"),
    "dev, debug = false (chosen)": ('[profile.dev]\ndebug = false\nstrip = "debuginfo"\n', "debug"),
    "dev, debug = false, opt-level = 1": (
        '[profile.dev]\ndebug = false\nstrip = "debuginfo"\nopt-level = 1\n', "debug"),
    "release": ("", "release"),
}  # fmt: skip

TASKS = {
    "hello world": ('fn main() { println!("hi {:?}", std::env::args().collect::<Vec<_>>()); }\n', ""),
    "one dependency (heck)": (
        "use heck::ToSnakeCase;\n"
        "fn main() { for a in std::env::args() { println!(\"{}\", a.to_snake_case()); } }\n",
        'heck = "0.5"\n'),
}  # fmt: skip


def cold(work: Path, source: str, dependencies: str, profile: str, directory: str) -> tuple[float, float, int]:
    shutil.rmtree(work, ignore_errors=True)
    (work / "src").mkdir(parents=True)
    (work / "Cargo.toml").write_text(
        f'[package]\nname = "t"\nversion = "0.1.0"\nedition = "2021"\n\n[dependencies]\n'
        f"{dependencies}\n{profile}\n[workspace]\n"
    )
    (work / "src" / "main.rs").write_text(source)
    command = ["cargo", "build", "-q", "--target", "wasm32-wasip2"]
    command += ["--release"] if directory == "release" else []
    start = time.perf_counter()
    subprocess.run(command, cwd=work, check=True)
    built = time.perf_counter() - start
    wasm = (work / "target" / "wasm32-wasip2" / directory / "t.wasm").read_bytes()
    start = time.perf_counter()
    sandbox.compile_component(wasm, "t")
    return built, time.perf_counter() - start, len(wasm)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    rounds = parser.parse_args().rounds
    with tempfile.TemporaryDirectory(prefix="cargo-task-profiles-") as scratch:
        print("| task | profile | cargo build | Wasmtime compile | total | wasm |")
        print("|---|---|---|---|---|---|")
        for task, (source, dependencies) in TASKS.items():
            for name, (profile, directory) in PROFILES.items():
                samples = [cold(Path(scratch) / "p", source, dependencies, profile, directory)
                           for _ in range(rounds)]  # fmt: skip
                build = statistics.median(s[0] for s in samples)
                compile_ = statistics.median(s[1] for s in samples)
                total = statistics.median(s[0] + s[1] for s in samples)
                print(f"| {task} | {name} | {build * 1000:.0f} ms | {compile_ * 1000:.0f} ms "
                      f"| {total * 1000:.0f} ms | {samples[0][2] // 1024} KiB |")  # fmt: skip


if __name__ == "__main__":
    main()
