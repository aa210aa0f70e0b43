"""A shared project for end-to-end tests that only read it: one build per task per session."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tests.conftest import Project

TASKS = {
    "hello.rs": """
        //! Print the arguments.
        fn main() {
            let args: Vec<String> = std::env::args().collect();
            println!("argv={args:?}");
        }
    """,
    "env.rs": """
        //! Print the environment.
        fn main() {
            let mut vars: Vec<_> = std::env::vars().collect();
            vars.sort();
            println!("vars={vars:?}");
        }
    """,
    "files.rs": """
        //! Try file operations named on the command line: r:PATH, w:PATH, ls:PATH.
        fn main() {
            for arg in std::env::args().skip(1) {
                let (op, path) = arg.split_once(':').unwrap();
                let result = match op {
                    "r" => std::fs::read_to_string(path).map(|s| s.trim().to_string()),
                    "w" => std::fs::write(path, "written").map(|_| "ok".into()),
                    "ls" => std::fs::read_dir(path).map(|d| {
                        let mut names: Vec<_> = d.map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
                        names.sort();
                        names.join(",")
                    }),
                    _ => panic!("unknown op {op}"),
                };
                match result {
                    Ok(v) => println!("{arg} -> ok {v}"),
                    Err(e) => println!("{arg} -> err {:?}", e.kind()),
                }
            }
        }
    """,
    "stdin.rs": """
        //! Echo stdin.
        use std::io::Read;
        fn main() {
            let mut text = String::new();
            std::io::stdin().read_to_string(&mut text).unwrap();
            println!("stdin={text:?}");
        }
    """,
    "fail.rs": """
        //! Return an error from main.
        fn main() -> Result<(), String> { Err("it went wrong".into()) }
    """,
    "exit.rs": """
        //! Exit with the code given.
        fn main() { std::process::exit(std::env::args().nth(1).unwrap().parse().unwrap()) }
    """,
    "panic.rs": """
        //! Panic.
        fn main() { panic!("boom at the task level") }
    """,
    "spin.rs": """
        //! Loop forever, announcing it.
        fn main() {
            println!("spinning");
            let mut x: u64 = 0;
            loop { x = x.wrapping_add(1); std::hint::black_box(x); }
        }
    """,
    "helper.rs": """
        //! Use a shared module.
        mod shared;
        fn main() { println!("{}", shared::greeting()); }
    """,
    "shared/mod.rs": """
        pub fn greeting() -> &'static str { "hello from the shared module" }
    """,
}

MANIFEST = """
[package.metadata.tasks]
env = { inherit-env = ["ALLOWED_*", "PLAIN", "UNSET_NAME"], env = { FIXED = "from-toml" } }
"""


def make_basic(root: Path) -> Project:
    project = Project(root)
    project.manifest(MANIFEST, name="basic")
    project.write("src/lib.rs", "")
    project.write("data/hello.txt", "hi from data\n")
    for name, text in TASKS.items():
        project.write(f"tasks/{name}", textwrap.dedent(text))
    return project


@pytest.fixture(scope="session")
def basic(tmp_path_factory) -> Project:
    """A package with one task per behaviour; tests must not change it."""
    return make_basic(tmp_path_factory.mktemp("basic") / "basic")
