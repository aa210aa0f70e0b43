"""Every grant works end to end from Cargo.toml, and --explain shows it."""

from __future__ import annotations

import http.server
import threading

import pytest

from tests.e2e.conftest import TASKS


HTTP_TASK = """
//! Fetch http://AUTHORITY/ through wasi:http and print the status and body.
use wasi::http::outgoing_handler;
use wasi::http::types::{Fields, OutgoingRequest, Scheme};

fn main() {
    let authority = std::env::args().nth(1).unwrap();
    let request = OutgoingRequest::new(Fields::new());
    request.set_scheme(Some(&Scheme::Http)).unwrap();
    request.set_authority(Some(&authority)).unwrap();
    request.set_path_with_query(Some("/hello")).unwrap();
    let response = match outgoing_handler::handle(request, None) {
        Ok(future) => {
            future.subscribe().block();
            future.get().unwrap().unwrap()
        }
        Err(e) => return println!("request failed: {e:?}"),
    };
    match response {
        Ok(response) => {
            let body = response.consume().unwrap();
            let stream = body.stream().unwrap();
            let mut bytes = Vec::new();
            while let Ok(chunk) = stream.blocking_read(65536) {
                bytes.extend(chunk);
            }
            println!("status {} body {}", response.status(), String::from_utf8_lossy(&bytes));
        }
        Err(e) => println!("http error: {e:?}"),
    }
}
"""

DNS_TASK = """
//! Resolve a name through wasi:sockets/ip-name-lookup.
use wasi::sockets::{instance_network::instance_network, ip_name_lookup::resolve_addresses};

fn main() {
    let network = instance_network();
    let addresses = match resolve_addresses(&network, "localhost") {
        Ok(stream) => stream,
        Err(e) => return println!("lookup failed: {e:?}"),
    };
    let mut count = 0;
    loop {
        match addresses.resolve_next_address() {
            Ok(Some(_)) => count += 1,
            Ok(None) => break,
            Err(wasi::sockets::network::ErrorCode::WouldBlock) => addresses.subscribe().block(),
            Err(e) => return println!("lookup failed: {e:?}"),
        }
    }
    println!("resolved {}", count > 0);
}
"""


@pytest.fixture(scope="module")
def granted(tmp_path_factory):
    from tests.conftest import Project

    base = tmp_path_factory.mktemp("grants")
    project = Project(base / "project")
    project.manifest("""
        [package.metadata.tasks]
        files = { read = ["../shared-data"], write = ["out"], tmp = true }
        dangerous = { path = "tasks/files.rs", write = ["."], allow-write-manifest = true }
        quiet = { stdin = false, timeout = "2s" }
        slow = { timeout = "1s" }
        hungry = { memory = "16MiB" }
        fetch = { network = true, description = "Fetch over HTTP" }
        nofetch = { path = "tasks/fetch.rs" }
        dns = { network = true }
        nodns = { path = "tasks/dns.rs" }
        vars = { inherit-env = ["KEEP_*"], env = { MODE = "fixed" } }

        [package.metadata.task-dependencies]
        wasi = "0.14"
    """, name="granted")  # fmt: skip
    project.write("src/lib.rs", "")
    project.write("out/.keep", "")
    (base / "shared-data").mkdir()
    (base / "shared-data" / "fact.txt").write_text("outside the project\n")
    project.write("tasks/files.rs", TASKS["files.rs"])
    project.write("tasks/quiet.rs", """
        use std::io::Read;
        fn main() {
            let mut s = String::new();
            let n = std::io::stdin().read_to_string(&mut s).unwrap();
            println!("read {n} bytes");
        }
    """)  # fmt: skip
    project.write("tasks/slow.rs", "fn main() { std::thread::sleep(std::time::Duration::from_secs(600)); }\n")
    project.write("tasks/hungry.rs", """
        fn main() {
            let mut blocks = Vec::new();
            for i in 0.. {
                blocks.push(vec![1u8; 1 << 20]);
                println!("allocated {} MiB", i + 1);
            }
        }
    """)  # fmt: skip
    project.write("tasks/fetch.rs", HTTP_TASK)
    project.write("tasks/dns.rs", DNS_TASK)
    project.write("tasks/vars.rs", 'fn main() { let mut v: Vec<_> = std::env::vars().collect(); v.sort(); println!("{v:?}"); }\n')
    return project


def test_read_write_and_tmp_grants(granted, cargo_task):
    root = granted.root
    result = cargo_task(
        "files", "r:../shared-data/fact.txt", "w:out/result.txt", "r:out/result.txt",
        "w:/tmp/scratch.txt", "r:/tmp/scratch.txt", "w:../shared-data/x", "w:src/x.rs",
        cwd=root,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "r:../shared-data/fact.txt -> ok outside the project" in out
    assert "w:out/result.txt -> ok ok" in out and "r:out/result.txt -> ok written" in out
    assert "w:/tmp/scratch.txt -> ok ok" in out and "r:/tmp/scratch.txt -> ok written" in out
    assert "w:../shared-data/x -> err PermissionDenied" in out
    assert "w:src/x.rs -> err PermissionDenied" in out
    assert (root / "out" / "result.txt").read_text() == "written"
    assert not (root.parent / "shared-data" / "x").exists()


def test_the_scratch_directory_is_fresh_each_run(granted, cargo_task):
    cargo_task("files", "w:/tmp/left-behind", cwd=granted.root)
    assert "r:/tmp/left-behind -> err NotFound" in cargo_task("files", "r:/tmp/left-behind", cwd=granted.root).stdout


def test_allow_write_manifest_works_and_warns_every_run(granted, cargo_task):
    for _ in range(2):
        result = cargo_task("dangerous", "w:notes.txt", cwd=granted.root)
        assert result.returncode == 0, result.stderr
        assert "warning: task `dangerous` may write" in result.stderr
        assert "Cargo.toml" in result.stderr
    assert (granted.root / "notes.txt").read_text() == "written"


def test_stdin_false_gives_an_empty_stdin(granted, cargo_task):
    result = cargo_task("quiet", cwd=granted.root, stdin="secret typed text\n")
    assert result.stdout.strip() == "read 0 bytes"


def test_timeout_ends_a_blocked_task_with_124(granted, cargo_task):
    result = cargo_task("slow", cwd=granted.root)
    assert result.returncode == 124
    assert "error: task `slow` did not finish within its time limit of 1s" in result.stderr
    overridden = cargo_task("--timeout", "500ms", "slow", cwd=granted.root)
    assert overridden.returncode == 124 and "time limit of 500ms" in overridden.stderr


def test_memory_limit_stops_the_task_and_is_reported(granted, cargo_task):
    result = cargo_task("hungry", cwd=granted.root)
    assert result.returncode == 101
    assert "allocated 8 MiB" in result.stdout and "allocated 20 MiB" not in result.stdout
    assert "memory limit is 16 MiB" in result.stderr
    more = cargo_task("--memory", "64MiB", "hungry", cwd=granted.root)
    assert "allocated 40 MiB" in more.stdout and "memory limit is 64 MiB" in more.stderr


def test_a_memory_limit_too_small_to_start_says_so(granted, cargo_task):
    result = cargo_task("--memory", "64KiB", "hungry", cwd=granted.root)
    assert result.returncode == 1
    assert "error: task `hungry` could not start" in result.stderr
    assert "help: its memory limit (64 KiB) is below what it needs to start" in result.stderr


def test_environment_allowlist_and_fixed_values(granted, cargo_task):
    result = cargo_task("vars", cwd=granted.root, KEEP_A="1", KEEP_B="2", DROP_C="3")
    assert result.stdout.strip() == (f'[("CARGO_MANIFEST_DIR", "{granted.root}"), '
                                     '("KEEP_A", "1"), ("KEEP_B", "2"), ("MODE", "fixed")]')


@pytest.fixture
def http_server():
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = f"you asked for {self.path}".encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_network_grant_allows_http(granted, cargo_task, http_server):
    result = cargo_task("fetch", http_server, cwd=granted.root)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "status 200 body you asked for /hello"


def test_without_the_grant_http_fails_naming_the_grant(granted, cargo_task, http_server):
    result = cargo_task("nofetch", http_server, cwd=granted.root)
    assert result.returncode == 1
    assert "error: task `nofetch` uses the network (wasi:http), but it has no network grant" in result.stderr
    assert "help: add `network = true`" in result.stderr


def test_dns_needs_the_network_grant(granted, cargo_task):
    assert cargo_task("dns", cwd=granted.root).stdout.strip() == "resolved true"
    denied = cargo_task("nodns", cwd=granted.root).stdout.strip()
    assert denied.startswith("lookup failed")


def test_explain_shows_every_grant_without_building(granted, cargo_task, tmp_path):
    result = cargo_task("--explain", "files", cwd=granted.root, CARGO="/nonexistent/cargo")
    assert result.returncode == 0, result.stderr
    root = granted.root.resolve()
    out = result.stdout
    assert f"read-only  {root} -> /" in out
    assert f"read-only  {root.parent / 'shared-data'} -> ../shared-data" in out
    assert f"writable   {root / 'out'} -> out" in out
    assert "-> /tmp" in out
    assert "environment: none" in out and "network: none" in out
    assert "limits: time none, memory 1 GiB" in out

    net = cargo_task("--explain", "fetch", cwd=granted.root, KEEP_ME="x").stdout
    assert "network: outbound HTTP and HTTPS (wasi:http) and DNS lookups" in net
    assert "task-dependencies: wasi" in net

    env = cargo_task("--explain", "vars", cwd=granted.root, KEEP_ME="secret-value").stdout
    assert "environment: inherit-env = [KEEP_*] (set now: KEEP_ME); fixed: MODE" in env
    assert "secret-value" not in env

    dangerous = cargo_task("--explain", "dangerous", cwd=granted.root).stdout
    assert f"warning: may change {root / 'Cargo.toml'} (allow-write-manifest = true)" in dangerous

    limits = cargo_task("--explain", "quiet", "--timeout", "3s", cwd=granted.root).stdout
    assert "stdin: empty" in limits


def test_a_proxy_password_never_reaches_task_code(project, cargo_task):
    project.manifest()
    project.write("tasks/leak.rs", 'fn main() { println!("{:?} {:?}", option_env!("HTTPS_PROXY"), option_env!("CARGO_HTTP_PROXY")); }\n')
    secret = "http://user:hunter2@127.0.0.1:9"
    result = cargo_task("leak", cwd=project.root, HTTPS_PROXY=secret, CARGO_HTTP_PROXY=secret)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "None None\n"
    assert "hunter2" not in result.stderr


def test_the_private_tmp_is_removed_even_when_a_stuck_task_is_abandoned(project, cargo_task, tmp_path):
    project.manifest('[package.metadata.tasks]\nstuck = { tmp = true, timeout = "1s" }\n')
    project.write("tasks/stuck.rs", """
        fn main() {
            std::fs::write("/tmp/marker", "x").unwrap();
            std::thread::sleep(std::time::Duration::from_secs(600));
        }
    """)  # fmt: skip
    scratch_parent = tmp_path / "host-tmp"
    scratch_parent.mkdir()
    result = cargo_task("stuck", cwd=project.root, TMPDIR=str(scratch_parent))
    assert result.returncode == 124, result.stderr
    assert list(scratch_parent.iterdir()) == []


def test_build_output_and_modules_of_tasks_elsewhere_are_protected(project, cargo_task):
    project.manifest("""
        [package.metadata.tasks]
        report = { path = "tools/report.rs" }
        dist = { write = ["target/debug"] }
        hop = { write = ["tools/helper"] }
    """)  # fmt: skip
    project.write("tools/report.rs", "mod helper;\nfn main() { helper::hi(); }\n")
    project.write("tools/helper/mod.rs", 'pub fn hi() { println!("hi"); }\n')
    project.write("target/debug/.keep", "")
    project.write("tasks/dist.rs", "fn main() {}\n")
    project.write("tasks/hop.rs", "fn main() {}\n")
    for task, protected in (("dist", "target"), ("hop", "tools")):
        result = cargo_task("--explain", task, cwd=project.root)
        assert result.returncode == 1, result.stdout
        assert "would let the task change" in result.stderr and protected in result.stderr
