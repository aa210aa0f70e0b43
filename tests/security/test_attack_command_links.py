"""Attack: a granted host program follows a link planted where a nested grant was.

The task may write `out` and read `out/ref`. A granted program replaces `out/ref` with a
symbolic link to a directory outside the project; the next program's Landlock rules are
built from the grant's *path*, so its read rule lands on the link's target and it reads
the outside file. (The same works for a nested `write` grant: write anywhere.)
"""

from __future__ import annotations

import os
import textwrap

from .conftest import describe, run_tool

SECRET = "SECRET-BEYOND-A-PLANTED-LINK-4e1b"


def test_command_cannot_follow_a_link_swapped_into_a_nested_grant(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text(SECRET + "\n")
    project = tmp_path / "project"
    for directory in ("tasks", "src", "out/ref"):
        (project / directory).mkdir(parents=True)
    (project / "Cargo.toml").write_text(textwrap.dedent("""\
        [package]
        name = "links"
        version = "0.1.0"
        edition = "2021"

        [package.metadata.tasks]
        t = { write = ["out"], read = ["out/ref"], commands = ["sh -c"] }
        """))
    (project / "src/main.rs").write_text("fn main() {}\n")
    (project / "tasks/t.rs").write_text(textwrap.dedent(f"""\
        use cargo_task::process::Command;
        fn sh(script: &str) {{
            match Command::new("sh").args(["-c", script]).output() {{
                Ok(o) => println!("{{}}{{}}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)),
                Err(e) => println!("ERR {{e}}"),
            }}
        }}
        fn main() {{
            sh("rm -r out/ref && ln -s {outside} out/ref && echo planted");
            sh("cat out/ref/secret.txt");
        }}
        """))
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "cache"))
    env.pop("RUSTUP_TOOLCHAIN", None)
    result = run_tool(["t"], project, env)
    assert "planted" in result.stdout, describe(result)  # the setup step itself is allowed
    assert SECRET not in result.stdout + result.stderr, describe(result)
