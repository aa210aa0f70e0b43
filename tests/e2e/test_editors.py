"""Editors, end to end: `cargo task --editor` and the real rust-analyzer, and the README's
`cargo xtask` alias through the real cargo."""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

CASE_TASK = """
    //! Snake-case the arguments.
    use cargo_task::process::Command;
    use heck::ToSnakeCase;
    mod shared;

    fn main() {
        for arg in std::env::args().skip(1) {
            println!("{}", shared::tidy(&arg.to_snake_case()));
        }
        let _unused = Command::new("git").arg("describe");
    }

    #[cfg(not(target_os = "wasi"))]
    fn host_only() {}
"""

MANIFEST = """
    [package.metadata.task-dependencies]
    heck = "0.5"

    [package.metadata.tasks]
    case = { commands = ["git describe"] }
"""


def _tree(root: Path) -> dict[str, tuple[int, int]]:
    """Every file of the project outside target/, with its size and mtime."""
    found = {}
    for directory, dirs, files in os.walk(root):
        if Path(directory) == root:
            dirs[:] = [d for d in dirs if d != "target"]
        for name in files:
            st = os.stat(Path(directory) / name)
            found[str(Path(directory, name).relative_to(root))] = (st.st_size, st.st_mtime_ns)
    return found


def _case_project(project):
    project.manifest(MANIFEST)
    project.write("tasks/case.rs", CASE_TASK)
    project.write("tasks/shared/mod.rs", "pub fn tidy(s: &str) -> String { s.trim().to_string() }\n")
    return project


def test_editor_writes_the_package_builds_use_and_prints_its_manifest(project, cargo, cargo_task):
    _case_project(project)
    project.write("data/words.txt", "from the project\n")
    project.write("tasks/root.rs", """
        //! Find the project as an xtask does.
        const WORDS: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/data/words.txt"));
        fn main() { print!("{WORDS}"); }
    """)  # fmt: skip
    before = _tree(project.root)
    result = cargo("task", "--editor", cwd=project.root)
    assert result.returncode == 0, result.stderr
    [line] = result.stdout.splitlines()
    generated = Path(line)
    assert generated.is_file() and generated.parent.parent == project.root / "target" / "cargo-task"
    assert _tree(project.root) == before  # nothing written into the user's project

    # The ready-to-paste snippet, on stderr: the user's own manifest first.
    assert '"rust-analyzer.linkedProjects": [' in result.stderr
    assert f'    "{project.root / "Cargo.toml"}",\n    "{generated}"\n  ]' in result.stderr
    assert cargo_task("--editor", "-q", cwd=project.root).stderr == ""

    # A stable path: from a subdirectory, as JSON, and again.
    listing = json.loads(cargo_task("--editor", "--json", cwd=project.root / "src").stdout)
    assert listing["linkedProjects"] == [str(project.root / "Cargo.toml"), str(generated)]
    assert listing["packages"] == [{"owner": str(project.root / "Cargo.toml"), "manifest": str(generated),
                                    "target": "wasm32-wasip2", "tasks": ["case", "root"]}]  # fmt: skip

    # rust-analyzer analyses for wasm32-wasip2 (in a target directory of its own); cargo-task's
    # builds do not read this file.
    config = (generated.parent / ".cargo" / "config.toml").read_text()
    assert 'target = "wasm32-wasip2"' in config and 'target-dir = "editor-target"' in config

    # The build uses the same package: the task runs, and the manifest is not rewritten.
    stamp = generated.stat().st_mtime_ns
    run = cargo_task("case", "HelloWorld", cwd=project.root)
    assert run.returncode == 0, run.stderr
    assert run.stdout == "hello_world\n"
    assert generated.stat().st_mtime_ns == stamp
    assert not (generated.parent / "editor-target").exists()

    # What rust-analyzer runs on save, in the generated package: `env!("CARGO_MANIFEST_DIR")`
    # names the project there too.
    check = cargo("check", "--message-format", "short", cwd=generated.parent)
    assert check.returncode == 0, check.stderr
    assert (generated.parent / "editor-target" / "wasm32-wasip2").is_dir()
    assert cargo_task("root", cwd=project.root).stdout == "from the project\n"
    assert generated.stat().st_mtime_ns == stamp


def test_editor_in_a_workspace_prepares_every_owner(project, cargo_task):
    project.write("Cargo.toml", """
        [workspace]
        members = ["crates/*"]
        resolver = "2"
    """)  # fmt: skip
    project.write("tasks/root.rs", "fn main() {}\n")
    for name in ("app", "quiet"):
        package = f'[package]\nname = "{name}"\nversion = "0.1.0"\nedition = "2021"\n'
        project.write(f"crates/{name}/Cargo.toml", package)
        project.write(f"crates/{name}/src/lib.rs", "")
    project.write("crates/app/tasks/own.rs", "fn main() {}\n")

    everywhere = json.loads(cargo_task("--editor", "--json", cwd=project.root).stdout)
    assert [p["tasks"] for p in everywhere["packages"]] == [["root"], ["own"]]
    assert [p["owner"] for p in everywhere["packages"]] == [
        str(project.root / "Cargo.toml"), str(project.root / "crates" / "app" / "Cargo.toml")]  # fmt: skip
    assert everywhere["linkedProjects"][0] == str(project.root / "Cargo.toml")
    # A member's view, from its directory, names the same packages.
    assert json.loads(cargo_task("--editor", "--json", cwd=project.root / "crates" / "app").stdout) == everywhere
    # -p: the packages that member sees; a member without tasks sees the workspace's.
    quiet = json.loads(cargo_task("--editor", "--json", "-p", "quiet", cwd=project.root).stdout)
    assert quiet["packages"] == everywhere["packages"][:1]


def test_editor_never_writes_through_a_link_a_build_planted(project, cargo_task, tmp_path):
    """A build script of a task-dependency tries to leave a link where `--editor` writes:
    the confined build may write only the generated package's target directory, so the link
    is never made; `--editor`, which opens without following links anyway, writes its own."""
    victim = tmp_path / "victim"
    victim.mkdir()
    project.manifest("""
        [package.metadata.task-dependencies]
        planter = { path = "planter" }
    """)  # fmt: skip
    project.write("planter/Cargo.toml", '[package]\nname = "planter"\nversion = "0.1.0"\nedition = "2021"\n')
    project.write("planter/src/lib.rs", "pub fn hi() -> &'static str { \"hi\" }\n")
    project.write("planter/build.rs", f"""
        fn main() {{
            // OUT_DIR is in the shared build directory, beside the generated packages.
            let out = std::path::PathBuf::from(std::env::var("OUT_DIR").unwrap());
            let root = out.ancestors()
                .find(|p| p.file_name().map_or(false, |n| n == "cargo-task"))
                .unwrap();
            for entry in std::fs::read_dir(root).unwrap().flatten() {{
                let package = entry.path();
                if package.join("Cargo.toml").exists() {{
                    let _ = std::fs::remove_dir_all(package.join(".cargo"));
                    let planted = std::os::unix::fs::symlink({json.dumps(str(victim))}, package.join(".cargo"));
                    println!("cargo:warning=planting the link: {{planted:?}}");
                }}
            }}
        }}
    """)  # fmt: skip
    project.write("tasks/hi.rs", "fn main() { println!(\"{}\", planter::hi()); }\n")
    built = cargo_task("hi", cwd=project.root)
    assert built.returncode == 0, built.stderr
    assert "planting the link: Err" in built.stderr and "PermissionDenied" in built.stderr, built.stderr
    [package] = (project.root / "target" / "cargo-task").glob("*/Cargo.toml")
    planted = package.parent / ".cargo"
    assert not planted.is_symlink()

    result = cargo_task("--editor", cwd=project.root)
    assert result.returncode == 0, result.stderr
    assert list(victim.iterdir()) == []
    assert not planted.is_symlink() and (planted / "config.toml").is_file()


def test_editor_errors(project, cargo_task):
    project.manifest()
    empty = cargo_task("--editor", cwd=project.root)
    assert empty.returncode == 1 and empty.stdout == ""
    assert "error: no tasks found" in empty.stderr and "help: a task is a file `tasks/NAME.rs`" in empty.stderr
    project.write("tasks/a.rs", "fn main() {}\n")
    named = cargo_task("--editor", "a", cwd=project.root)
    assert named.returncode == 1 and "error: unexpected argument `a` after `--editor`" in named.stderr


def test_cargo_xtask_alias_runs_tasks(project, cargo):
    """The README's tips for people used to cargo-xtask: `[alias] xtask = "task"`, and for
    an xtask kept as one task with subcommands (`tasks/xtask/main.rs` and its modules),
    an alias that names it."""
    project.manifest()
    project.write(".cargo/config.toml", '[alias]\nxtask = "task"\nwhole = "task xtask"\n')
    project.write("tasks/hello.rs", """
        //! Greet.
        fn main() { println!("hello {:?}", std::env::args().collect::<Vec<_>>()); }
    """)  # fmt: skip
    project.write("tasks/xtask/main.rs", """
        //! The old xtask, whole.
        mod codegen;
        fn main() {
            match std::env::args().nth(1).as_deref() {
                Some("codegen") => codegen::run(),
                other => panic!("unknown subcommand {other:?}"),
            }
        }
    """)  # fmt: skip
    project.write("tasks/xtask/codegen.rs", 'pub fn run() { println!("codegen ran"); }\n')
    result = cargo("xtask", "hello", "--flag", cwd=project.root / "src")
    assert result.returncode == 0, result.stderr
    assert result.stdout == 'hello ["hello", "--flag"]\n'
    listing = cargo("xtask", cwd=project.root)
    assert "hello    Greet." in listing.stdout and "xtask    The old xtask, whole." in listing.stdout
    whole = cargo("whole", "codegen", cwd=project.root)
    assert whole.returncode == 0, whole.stderr
    assert whole.stdout == "codegen ran\n"


# -- rust-analyzer -------------------------------------------------------------------


def _rust_analyzer(env) -> str | None:
    found = shutil.which("rust-analyzer", path=env.get("PATH"))
    if found is None:
        return None
    try:
        ok = subprocess.run([found, "--version"], env=env, capture_output=True, timeout=60).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return None
    return found if ok else None  # rustup's proxy fails for a toolchain without the component


class LanguageServer:
    """Just enough of an LSP client: requests, answers to the server's requests, waits."""

    def __init__(self, command: list[str], env: dict[str, str], log: Path):
        self.log = log.open("wb")
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=self.log, env=env)  # fmt: skip
        self.inbox: queue.Queue = queue.Queue()
        self.next_id = 0
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        stream = self.process.stdout
        while True:
            length = None
            while (line := stream.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode().partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            if not line or length is None:
                self.inbox.put(None)
                return
            self.inbox.put(json.loads(stream.read(length)))

    def send(self, message: dict) -> None:
        body = json.dumps({"jsonrpc": "2.0", **message}).encode()
        self.process.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.process.stdin.flush()

    def wait(self, wanted, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                message = self.inbox.get(timeout=1)
            except queue.Empty:
                continue
            assert message is not None, f"rust-analyzer exited; see {self.log.name}"
            if "id" in message and "method" in message:  # a request to the client
                self.send({"id": message["id"], "result": None})
            elif wanted(message):
                return message
        pytest.fail(f"rust-analyzer did not answer in {timeout} s; see {self.log.name}")

    def request(self, method: str, params: dict, timeout: float = 120) -> dict:
        self.next_id += 1
        ident = self.next_id
        self.send({"id": ident, "method": method, "params": params})
        answer = self.wait(lambda m: m.get("id") == ident and "method" not in m, timeout)
        assert "error" not in answer, answer
        return answer["result"]

    def close(self) -> None:
        self.process.kill()
        self.process.wait()
        self.log.close()


def test_rust_analyzer_analyses_tasks_through_the_printed_linked_projects(project, cargo_task, env, tmp_path):
    analyzer = _rust_analyzer(env)
    if analyzer is None:
        pytest.skip("rust-analyzer is not installed: `rustup component add rust-analyzer rust-src` "
                    "(scripts/setup-toolchain.sh adds it where rustup can)")  # fmt: skip
    _case_project(project)
    # Types that rust-analyzer knows only if it resolved the guest crate and the dependency
    # (an unresolved type is `{unknown}`, which mismatches nothing).
    project.write("tasks/probe.rs", """
        use cargo_task::process::Command;
        use heck::ToSnakeCase;
        fn main() {
            let _command: u32 = Command::new("git");
            let _snake: u32 = "A".to_snake_case();
        }
    """)  # fmt: skip
    project.write("src/lib.rs", "#[cfg(target_os = \"wasi\")]\npub fn wasi_only() {}\n")
    built = cargo_task("case", "Done", cwd=project.root)  # builds and locks the dependencies
    assert built.returncode == 0, built.stderr
    linked = json.loads(cargo_task("--editor", "--json", cwd=project.root).stdout)["linkedProjects"]

    server = LanguageServer([analyzer], env, tmp_path / "rust-analyzer.log")
    try:
        server.request("initialize", {
            "processId": os.getpid(), "rootUri": project.root.as_uri(),
            "capabilities": {"experimental": {"serverStatusNotification": True},
                             "textDocument": {"hover": {"contentFormat": ["plaintext"]}, "diagnostic": {}}},
            "initializationOptions": {"linkedProjects": linked, "checkOnSave": False,
                                      "cachePriming": {"enable": False}},
        })  # fmt: skip
        server.send({"method": "initialized", "params": {}})
        server.wait(lambda m: m.get("method") == "experimental/serverStatus" and m["params"].get("quiescent"), 300)

        def opened(relative: str) -> tuple[str, str]:
            path = project.root / relative
            text = path.read_text()
            server.send({"method": "textDocument/didOpen", "params": {"textDocument": {
                "uri": path.as_uri(), "languageId": "rust", "version": 1, "text": text}}})  # fmt: skip
            return path.as_uri(), text

        def diagnostics(uri: str) -> list[str]:
            report = server.request("textDocument/diagnostic", {"textDocument": {"uri": uri}})
            return [f"{d.get('code')}: {d['message']}" for d in report["items"]]

        def hover(uri: str, text: str, word: str) -> str:
            line = next(i for i, l in enumerate(text.splitlines()) if word in l and "use " not in l)
            column = text.splitlines()[line].index(word) + 1
            position = {"line": line, "character": column}
            result = server.request("textDocument/hover", {"textDocument": {"uri": uri}, "position": position})
            return (result or {}).get("contents", {}).get("value", "")

        case_uri, case_text = opened("tasks/case.rs")
        shared_uri, _ = opened("tasks/shared/mod.rs")
        probe_uri, _ = opened("tasks/probe.rs")
        lib_uri, _ = opened("src/lib.rs")

        # The task's own code, its module, the guest crate and a task-dependency all resolve,
        # analysed for wasm32-wasip2: only the host-only function is inactive.
        assert diagnostics(case_uri) == [
            'inactive-code: code is inactive due to #[cfg] directives: target_os = "wasi" is enabled']
        assert diagnostics(shared_uri) == []
        assert "cargo_task::process" in hover(case_uri, case_text, "Command")
        assert "pub struct Command" in hover(case_uri, case_text, "Command")
        assert "heck" in hover(case_uri, case_text, "to_snake_case")
        assert "fn to_snake_case(&self) -> String" in hover(case_uri, case_text, "to_snake_case")
        assert sorted(diagnostics(probe_uri)) == [
            "E0308: expected u32, found Command", "E0308: expected u32, found String"]
        # The user's own crate, linked beside it, is still analysed for the host.
        assert diagnostics(lib_uri) == [
            'inactive-code: code is inactive due to #[cfg] directives: target_os = "wasi" is disabled']
    finally:
        server.close()
