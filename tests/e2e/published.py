"""Sources of published tasks for the tests, all offline: a package directory, a local git
repository (`file://`) and a local registry that cargo uses in place of crates.io through
source replacement, built from `cargo package` output with index entries and checksums."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import textwrap
from pathlib import Path

HELLO = """
fn main() {
    let args: Vec<String> = std::env::args().collect();
    println!("{} says {:?} from {}", env!("CARGO_PKG_NAME"), &args, std::env::var("CARGO_MANIFEST_DIR").unwrap());
}
"""


def package(directory: Path, name: str, version: str = "0.1.0", main: str = HELLO, extra: str = "",
            files: dict[str, str] | None = None) -> Path:
    """A tiny package with one binary (unless `extra` or `files` say otherwise)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "Cargo.toml").write_text(
        f'[package]\nname = "{name}"\nversion = "{version}"\nedition = "2021"\n'
        f'description = "the {name} package"\n\n[workspace]\n\n' + textwrap.dedent(extra))
    if main is not None:
        (directory / "src").mkdir(exist_ok=True)
        (directory / "src" / "main.rs").write_text(textwrap.dedent(main))
    for relative, text in (files or {}).items():
        (directory / relative).parent.mkdir(parents=True, exist_ok=True)
        (directory / relative).write_text(textwrap.dedent(text))
    return directory


def git(directory: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(directory), "-c", "user.name=t", "-c", "user.email=t@t", *args],
                          check=True, capture_output=True, text=True).stdout.strip()


def git_repository(directory: Path, tag: str | None = None) -> str:
    """Commit what `directory` holds (tagged if asked); its `file://` URL."""
    git(directory, "init", "-q", "-b", "main")
    git(directory, "add", "-A")
    git(directory, "commit", "-qm", "release")
    if tag:
        git(directory, "tag", tag)
    return directory.resolve().as_uri()


class LocalRegistry:
    """A `local-registry` directory: `.crate` files beside an index in crates.io's layout."""

    def __init__(self, root: Path):
        self.root = root
        (root / "index").mkdir(parents=True, exist_ok=True)

    def config(self) -> str:
        """cargo configuration that puts this registry in crates.io's place."""
        return (f'[source.crates-io]\nreplace-with = "local"\n\n'
                f'[source.local]\nlocal-registry = "{self.root}"\n')

    def _index_file(self, name: str) -> Path:
        n = name.lower()
        prefix = {1: "1", 2: "2", 3: f"3/{n[0]}"}.get(len(n), f"{n[:2]}/{n[2:4]}")
        return self.root / "index" / prefix / n

    def publish(self, source: Path, env: dict[str, str]) -> str:
        """`cargo package` the package at `source` into the registry; its checksum. A
        version published again replaces the first (a registry that changed under a lock)."""
        config = self.root / "config.toml"  # its dependencies come from this registry too
        config.write_text(self.config())
        subprocess.run(["cargo", "package", "--allow-dirty", "--no-verify", "--offline", "--quiet",
                        "--config", str(config), "--manifest-path", str(source / "Cargo.toml")],
                       check=True, env=env, capture_output=True)  # fmt: skip
        data = json.loads(subprocess.run(
            ["cargo", "metadata", "--no-deps", "--offline", "--format-version", "1",
             "--manifest-path", str(source / "Cargo.toml")], check=True, env=env, capture_output=True).stdout)
        meta = data["packages"][0]
        name, version = meta["name"], meta["version"]
        crate = source / "target" / "package" / f"{name}-{version}.crate"
        shutil.copy(crate, self.root / crate.name)
        checksum = hashlib.sha256(crate.read_bytes()).hexdigest()
        index = self._index_file(name)
        index.parent.mkdir(parents=True, exist_ok=True)
        lines = [l for l in (index.read_text().splitlines() if index.exists() else [])
                 if json.loads(l)["vers"] != version]
        deps = [{"name": d["name"], "req": d["req"], "features": d["features"], "optional": d["optional"],
                 "default_features": d["uses_default_features"], "target": d["target"], "kind": d["kind"]}
                for d in meta["dependencies"]]  # fmt: skip
        lines.append(json.dumps({"name": name, "vers": version, "deps": deps, "cksum": checksum,
                                 "features": {}, "yanked": False}))
        index.write_text("\n".join(lines) + "\n")
        shutil.rmtree(source / "target")
        return checksum
