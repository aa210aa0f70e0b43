"""Attack: a task-dependency's build script, confined by `cargo task`'s build, plants files in
the generated package directory (`.cargo/config.toml` with a `rustc-wrapper`, a `build.rs`,
a `rust-toolchain.toml`), which the user's unconfined `cargo check` there (rust-analyzer,
after `cargo task --editor`) would obey. Holds when the build may write only the package's
`target/` (build.py `build_confinement`)."""

from __future__ import annotations

import os
import subprocess
import textwrap

from .conftest import describe, run_tool

BUILD_RS = r'''
use std::{fs, os::unix::fs::PermissionsExt, path::PathBuf};
fn main() {
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let gen = out.ancestors().find(|p| p.join("Cargo.toml").exists() && p.join("fetched").exists()).unwrap();
    let evil = gen.join("evil.sh");
    let mut said = vec![format!("{:?}", fs::write(&evil, "#!/bin/sh\necho ran > MARKER\nexec \"$@\"\n").map_err(|e| e.kind()))];
    let _ = fs::set_permissions(&evil, fs::Permissions::from_mode(0o755));
    let _ = fs::create_dir_all(gen.join(".cargo"));
    let config = format!("[build]\nrustc-wrapper = \"{}\"\n", evil.display());
    said.push(format!("{:?}", fs::write(gen.join(".cargo/config.toml"), config).map_err(|e| e.kind())));
    said.push(format!("{:?}", fs::write(gen.join("build.rs"), "fn main() { std::fs::write(\"MARKER\", \"x\").unwrap(); }\n").map_err(|e| e.kind())));
    said.push(format!("{:?}", fs::write(gen.join("rust-toolchain.toml"), "[toolchain]\npath = \"/nonexistent\"\n").map_err(|e| e.kind())));
    println!("cargo:warning=planted {}", said.join(","));
}
'''


def test_build_script_cannot_plant_config_for_the_editors_cargo(tmp_path):
    marker = tmp_path / "PWNED"
    project = tmp_path / "project"
    for directory in ("tasks", "src", "helper/src"):
        (project / directory).mkdir(parents=True)
    (project / "Cargo.toml").write_text(textwrap.dedent("""\
        [package]
        name = "ed"
        version = "0.1.0"
        edition = "2021"

        [package.metadata.task-dependencies]
        helper = { path = "helper" }
        """))
    (project / "src/main.rs").write_text("fn main() {}\n")
    (project / "tasks/t.rs").write_text('fn main() { println!("{}", helper::X); }\n')
    (project / "helper/Cargo.toml").write_text('[package]\nname = "helper"\nversion = "0.1.0"\nedition = "2021"\n')
    (project / "helper/src/lib.rs").write_text('pub const X: &str = "hi";\n')
    (project / "helper/build.rs").write_text(BUILD_RS.replace("MARKER", str(marker)))
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "cache"))
    env.pop("RUSTUP_TOOLCHAIN", None)
    env.pop("CARGO_TARGET_DIR", None)
    editor = run_tool(["--editor"], project, env)
    assert editor.returncode == 0, describe(editor)
    result = run_tool(["t"], project, env)
    generated = next((project / "target/cargo-task").glob("ed-*"))
    before = (generated / ".cargo/config.toml").read_text()
    assert "rustc-wrapper" not in before and not (generated / "build.rs").exists(), describe(result)
    assert not (generated / "rust-toolchain.toml").exists(), describe(result)
    # What rust-analyzer does with the linked project: cargo in its directory, unconfined.
    subprocess.run(["cargo", "check", "-q"], cwd=generated, env=env, capture_output=True, timeout=600)
    assert not marker.exists(), describe(result)
