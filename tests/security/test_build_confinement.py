"""The build itself is confined (Landlock): compile-time code of a task and of its
task-dependencies reads only the project, the toolchain and cargo's sources, writes only
the generated package's directory, and connects nowhere.

Each test attempts the escape for real in a task build and asserts that it failed, that no
secret reached the output, and that nothing changed on the host.
"""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path

import pytest

from cargo_task import confine

from .conftest import SECRET, describe, diff, snapshot

pytestmark = pytest.mark.skipif(confine.abi_version() == 0, reason="this kernel offers no Landlock")

BUILD_RS = r'''
use std::io::Read;
fn main() {
    let mut said = Vec::new();
    let read = std::fs::read_to_string(env!("PROBE_SECRET_FILE").to_string());
    said.push(format!("read-outside:{}", match read { Ok(s) => format!("OK {}", s.trim()), Err(e) => format!("{:?}", e.kind()) }));
    let home = std::fs::read_to_string(format!("{}/secret-in-home.txt", std::env::var("HOME").unwrap()));
    said.push(format!("read-home:{}", match home { Ok(s) => format!("OK {}", s.trim()), Err(e) => format!("{:?}", e.kind()) }));
    let write = std::fs::write(concat!(env!("PROBE_OUTSIDE_W"), "/pwned-by-build-script"), "x");
    said.push(format!("write-outside:{}", match write { Ok(_) => "OK".into(), Err(e) => format!("{:?}", e.kind()) }));
    let tcp = std::net::TcpStream::connect(env!("PROBE_LISTENER")).map(|mut s| { let mut b = String::new(); let _ = s.read_to_string(&mut b); b });
    said.push(format!("tcp:{}", match tcp { Ok(s) => format!("OK {}", s.trim()), Err(e) => format!("{:?}", e.kind()) }));
    println!("cargo:rustc-env=PROBE_RESULTS={}", said.join(";"));
}
'''


@pytest.fixture
def listener():
    """A loopback server that would hand the secret to anyone who connects."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(30)
    accepted: list[bool] = []

    def serve():
        try:
            conn, _ = server.accept()
            accepted.append(True)
            conn.sendall(SECRET.encode())
            conn.close()
        except OSError:
            pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.getsockname()[1]}", accepted
    server.close()


def test_build_scripts_of_task_dependencies_cannot_read_write_or_connect(small_project, tmp_path, listener):
    address, accepted = listener
    outside = tmp_path / "outside"
    (outside / "w").mkdir(parents=True)
    (outside / "secret.txt").write_text(SECRET + "\n")
    home = tmp_path / "home"
    home.mkdir()
    (home / "secret-in-home.txt").write_text(SECRET + "\n")
    small_project.write("helper/Cargo.toml", '[package]\nname = "helper"\nversion = "0.1.0"\nedition = "2021"\n')
    small_project.write("helper/build.rs", BUILD_RS)
    small_project.write("helper/src/lib.rs", 'pub const RESULTS: &str = env!("PROBE_RESULTS");\n')
    small_project.write("Cargo.toml", '[package]\nname = "small"\nversion = "0.1.0"\nedition = "2021"\n\n'
                        '[package.metadata.task-dependencies]\nhelper = { path = "helper" }\n')  # fmt: skip
    small_project.write("tasks/probe.rs", 'fn main() { println!("{}", helper::RESULTS); }\n')
    (small_project.root / "target").mkdir()
    real_home = os.path.expanduser("~")
    env = {
        "PROBE_SECRET_FILE": str(outside / "secret.txt"), "PROBE_OUTSIDE_W": str(outside / "w"),
        "PROBE_LISTENER": address, "HOME": str(home),
        "CARGO_HOME": os.environ.get("CARGO_HOME", f"{real_home}/.cargo"),
        "RUSTUP_HOME": os.environ.get("RUSTUP_HOME", f"{real_home}/.rustup"),
    }  # fmt: skip
    # The build's environment is scrubbed: the probe's targets go into its source.
    build_rs = small_project.root / "helper" / "build.rs"
    text = build_rs.read_text()
    for name in ("PROBE_SECRET_FILE", "PROBE_OUTSIDE_W", "PROBE_LISTENER"):
        text = text.replace(f'env!("{name}")', f'"{env[name]}"')
    build_rs.write_text(text)
    before_outside, before_project = snapshot(outside), snapshot(small_project.root, ("target",))
    result = small_project.run("probe", extra_env=env)
    assert result.returncode == 0, describe(result)
    said = dict(item.split(":", 1) for item in result.stdout.strip().split(";"))
    assert said == {"read-outside": "PermissionDenied", "read-home": "PermissionDenied",
                    "write-outside": "PermissionDenied", "tcp": "PermissionDenied"}, describe(result)  # fmt: skip
    assert SECRET not in result.stdout + result.stderr
    assert not accepted
    assert not diff(before_outside, snapshot(outside))
    assert not diff(before_project, snapshot(small_project.root, ("target",)))


def test_include_str_of_a_host_file_fails_to_compile(small_project, tmp_path):
    secret = tmp_path / "outside" / "secret.txt"
    secret.parent.mkdir()
    secret.write_text(SECRET + "\n")
    small_project.tasks({"t": "{}"}, t=f'fn main() {{ println!("{{}}", include_str!("{secret}")); }}\n')
    result = small_project.run("t")
    assert result.returncode == 1, describe(result)
    assert "couldn't read" in result.stderr and str(secret) in result.stderr, describe(result)
    assert "error: could not compile task `t`" in result.stderr
    assert SECRET not in result.stdout + result.stderr


def test_cargo_env_tables_do_not_reach_env_macros(small_project):
    small_project.write(".cargo/config.toml", f'[env]\nCFG_SECRET = "{SECRET}"\n')
    small_project.tasks({"t": "{}"}, t='fn main() { println!("got={:?}", option_env!("CFG_SECRET")); }\n')
    result = small_project.run("t")
    assert result.returncode == 0, describe(result)
    assert 'got=Some("")' in result.stdout, describe(result)
    assert SECRET not in result.stdout + result.stderr


def test_explain_says_the_build_is_confined(small_project):
    small_project.tasks({"t": "{}"})
    result = small_project.run("--explain", "t")
    assert result.returncode == 0, describe(result)
    assert "build: confined (Landlock ABI" in result.stdout, describe(result)


def test_the_private_build_directory_is_the_only_thing_written(small_project):
    """Positive control: a build with a module and an include still works confined."""
    small_project.write("data/words.txt", "alpha\n")
    small_project.tasks({"t": "{}"}, t='mod m;\nfn main() { println!("{} {}", m::X, include_str!("../data/words.txt").trim()); }\n')
    small_project.write("tasks/m.rs", 'pub const X: &str = "module";\n')
    (small_project.root / "target").mkdir()
    before = snapshot(small_project.root, ("target",))
    result = small_project.run("t")
    assert result.returncode == 0 and result.stdout == "module alpha\n", describe(result)
    assert not diff(before, snapshot(small_project.root, ("target",)))
    assert Path(small_project.root / "target" / "cargo-task").is_dir()


def test_explain_lists_what_the_users_configuration_runs_at_build_time(small_project):
    small_project.write(".cargo/config.toml", '[build]\nrustflags = ["-Cdebug-assertions"]\n'
                        '[target.wasm32-wasip2]\nrunner = "my-runner"\n[env]\nFROM_CONFIG = "v"\n')  # fmt: skip
    small_project.write("rust-toolchain.toml", '[toolchain]\nchannel = "stable"\n')
    small_project.tasks({"t": "{}"})
    result = small_project.run("--explain", "t")
    assert result.returncode == 0, describe(result)
    root = small_project.root
    assert f"runs on the host: the toolchain that `{root / 'rust-toolchain.toml'}` selects" in result.stdout
    assert f"runs on the host: build.rustflags = ['-Cdebug-assertions'] (from `{root / '.cargo/config.toml'}`)" in result.stdout
    assert "runs on the host: target.wasm32-wasip2.runner = 'my-runner'" in result.stdout
    assert "cargo [env] entries blanked for the build: FROM_CONFIG" in result.stdout
