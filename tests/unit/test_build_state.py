"""scaffold, fingerprint, cache: the generated package and what makes a build fresh."""

import os
import tomllib

from cargo_task.scaffold import guest_crate
from pathlib import Path


from cargo_task.build import Toolchain, build_environment, proxy_url
from cargo_task.cache import Cache, Record, component_key
from cargo_task.discovery import Owner
from cargo_task.fingerprint import dep_info_sources, static_fingerprint, still_fresh, stamp
from cargo_task.scaffold import render, write


def owner(root: Path, *names: str, deps=None) -> Owner:
    sources = tuple((n, root / "tasks" / f"{n}.rs") for n in names)
    return Owner(root, root / "Cargo.toml", "app", "2021", deps or {}, sources)


def test_the_generated_manifest_is_valid_toml_with_one_bin_per_task(tmp_path):
    o = owner(tmp_path, "b", "a", deps={"heck": {"version": "0.5"}, "my crate": {"path": "/x", "features": ["a"]}})
    plan = render(o, tmp_path / "target" / "cargo-task")
    data = tomllib.loads(plan.text())
    assert [b["name"] for b in data["bin"]] == ["a", "b"]
    assert data["bin"][0]["path"] == str(tmp_path / "tasks" / "a.rs")
    assert data["dependencies"] == {"heck": {"version": "0.5"}, "my crate": {"path": "/x", "features": ["a"]},
                                    "cargo-task": {"path": str(guest_crate())}}  # every task may use it
    assert data["workspace"] == {}
    assert data["package"]["edition"] == "2021"


def test_writing_an_unchanged_manifest_leaves_the_file_alone(tmp_path):
    plan = render(owner(tmp_path, "a"), tmp_path / "build")
    write(plan)
    before = plan.manifest.stat().st_mtime_ns
    os.utime(plan.manifest, ns=(before - 10**9, before - 10**9))
    write(plan)
    assert plan.manifest.stat().st_mtime_ns == before - 10**9


def toolchain(cwd: Path, **env) -> Toolchain:
    return Toolchain("cargo", "rustc", {"PATH": "/bin", **env}, cwd, None)


def test_the_fingerprint_changes_with_each_input_and_only_for_the_task_concerned(tmp_path):
    plan = render(owner(tmp_path, "a", "b"), tmp_path / "build")
    base = static_fingerprint(plan, "a", toolchain(tmp_path), "engine")
    assert base == static_fingerprint(plan, "a", toolchain(tmp_path), "engine")
    assert base != static_fingerprint(plan, "a", toolchain(tmp_path, RUSTUP_TOOLCHAIN="nightly"), "engine")
    with_dependency = render(owner(tmp_path, "a", "b", deps={"x": {"version": "1"}}), tmp_path / "build")
    assert base != static_fingerprint(with_dependency, "a", toolchain(tmp_path), "engine")
    # another task added: this task's build does not change
    assert base == static_fingerprint(render(owner(tmp_path, "a", "b", "c"), tmp_path / "build"), "a", toolchain(tmp_path), "engine")
    (tmp_path / "rust-toolchain.toml").write_text('[toolchain]\nchannel = "nightly"\n')
    assert base != static_fingerprint(plan, "a", toolchain(tmp_path), "engine")
    changed = static_fingerprint(plan, "a", toolchain(tmp_path), "engine")
    (tmp_path / ".cargo").mkdir()
    (tmp_path / ".cargo" / "config.toml").write_text("[build]\n")
    assert changed != static_fingerprint(plan, "a", toolchain(tmp_path), "engine")


def test_stamps_notice_an_edit(tmp_path):
    source = tmp_path / "a.rs"
    source.write_text("fn main() {}\n")
    stamps = [stamp(source)]
    assert still_fresh(stamps)
    source.write_text("fn main() { }\n")
    assert not still_fresh(stamps)
    source.unlink()
    assert not still_fresh(stamps)


def test_dep_info_lists_every_source_with_escaped_spaces(tmp_path):
    d = tmp_path / "a.d"
    d.write_text("/t/a.wasm: /p/tasks/a.rs /p/tasks/shared/mod.rs /p/my\\ docs/x.txt\n\n/p/tasks/a.rs:\n")
    assert dep_info_sources(d, Path("/base")) == ["/p/tasks/a.rs", "/p/tasks/shared/mod.rs", "/p/my docs/x.txt"]
    d.write_text("a.wasm: tasks/a.rs\n")  # build.dep-info-basedir makes paths relative
    assert dep_info_sources(d, Path("/base")) == ["/base/tasks/a.rs"]


def test_a_corrupt_or_foreign_component_is_never_returned(tmp_path):
    cache = Cache(tmp_path)
    cache.save_component("k", b"machine code")
    assert cache.load_component("k") == b"machine code"
    path = tmp_path / "components" / "k.cwasm"
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))
    assert cache.load_component("k") is None
    path.write_bytes(b"\0asm planted")
    assert cache.load_component("k") is None
    assert cache.load_component("absent") is None


def test_records_round_trip_and_garbage_is_ignored(tmp_path):
    cache = Cache(tmp_path)
    record = Record("f", [("/a", 1, 2)], "a" * 64)
    cache.save_record(tmp_path / "b", "t", record)
    assert cache.load_record(tmp_path / "b", "t") == record
    path = next((tmp_path / "records").rglob("t.json"))
    path.write_text("{not json")
    assert cache.load_record(tmp_path / "b", "t") is None
    path.write_text('{"version": 1, "fingerprint": "f", "stamps": [], "component": "../../elsewhere"}')
    assert cache.load_record(tmp_path / "b", "t") is None
    path.write_text("[]")
    assert cache.load_record(tmp_path / "b", "t") is None


def test_component_key_depends_on_the_engine():
    assert component_key("a" * 64, "wasmtime-50") != component_key("a" * 64, "wasmtime-51")
    assert component_key("a" * 64, "w;cranelift") != component_key("a" * 64, "w;winch")


def test_the_build_environment_keeps_only_what_cargo_needs():
    env = build_environment({"PATH": "/bin", "HOME": "/h", "AWS_SECRET_ACCESS_KEY": "s",
                             "CARGO_REGISTRIES_X_TOKEN": "t", "CARGO_REGISTRIES_X_INDEX": "i",
                             "RUSTUP_TOOLCHAIN": "stable", "GITHUB_TOKEN": "g", "RUSTFLAGS": "-Cx",
                             "HTTPS_PROXY": "http://u:pw@proxy", "CARGO_HTTP_PROXY": "http://u:pw@p",
                             "CARGO_HTTP_TIMEOUT": "30"})  # fmt: skip
    assert env == {"PATH": "/bin", "HOME": "/h", "CARGO_REGISTRIES_X_INDEX": "i",
                   "RUSTUP_TOOLCHAIN": "stable", "CARGO_HTTP_TIMEOUT": "30"}  # fmt: skip


def test_the_proxy_is_chosen_in_cargos_order():
    assert proxy_url({}) is None
    assert proxy_url({"http_proxy": "http://a", "HTTPS_PROXY": "http://u:pw@b"}) == "http://u:pw@b"
    assert proxy_url({"CARGO_HTTP_PROXY": "http://c", "HTTPS_PROXY": "http://b"}) == "http://c"
