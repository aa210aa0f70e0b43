"""Running cargo: the one step that runs on the host, outside the sandbox.

The only module that starts cargo or rustc. Their environment is scrubbed to what cargo,
rustup and the toolchain need, so `env!("SECRET")` in a task does not compile.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import NamedTuple

from cargo_task.errors import BuildError
from cargo_task.scaffold import TARGET, Scaffold

# The variables cargo, rustup and rustc need. Nothing else reaches the build: not tokens,
# not cloud credentials, not the user's own variables.
BUILD_ENV = frozenset((
    "PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "LC_CTYPE", "TERM", "TMPDIR", "TZ",
    "CARGO_HOME", "RUSTUP_HOME", "RUSTUP_TOOLCHAIN", "RUSTUP_DIST_SERVER",
    "RUSTUP_UPDATE_ROOT", "RUSTUP_AUTO_INSTALL", "RUSTC", "RUSTC_WRAPPER",
    "CARGO_BUILD_JOBS", "CARGO_INCREMENTAL", "NO_PROXY", "no_proxy",
    "SSL_CERT_FILE", "SSL_CERT_DIR", "SSH_AUTH_SOCK",
))  # fmt: skip
# Proxy URLs often carry a password: cargo gets them in a private config file, which rustc
# never sees (so `env!` in a task cannot capture them) and other users cannot read (as they
# could a command line). In cargo's order of precedence.
PROXY_ENV = ("CARGO_HTTP_PROXY", "HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy",
             "ALL_PROXY", "all_proxy")  # fmt: skip
BUILD_ENV_PREFIXES = ("CARGO_NET_", "CARGO_HTTP_")
# Where a registry is and how to talk to it; never its token.
REGISTRY_PREFIX, REGISTRY_SUFFIXES = "CARGO_REGISTRIES_", ("_INDEX", "_PROTOCOL")


def needed_by_the_build(name: str) -> bool:
    return (
        name in BUILD_ENV
        or name.startswith(BUILD_ENV_PREFIXES) and name not in PROXY_ENV
        or name.startswith(REGISTRY_PREFIX) and name.endswith(REGISTRY_SUFFIXES)
    )


def proxy_url(environ: dict[str, str]) -> str | None:
    return next((environ[name] for name in PROXY_ENV if environ.get(name)), None)


def build_environment(environ: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in environ.items() if needed_by_the_build(k)}


class Toolchain(NamedTuple):
    cargo: str
    rustc: str
    env: dict[str, str]
    cwd: Path
    proxy: str | None  # the user's proxy, for cargo alone

    @classmethod
    def from_environment(cls, environ: dict[str, str], cwd: Path) -> Toolchain:
        """The cargo that invoked us (`CARGO`, so `cargo +nightly task` works), else PATH's."""
        return cls(
            cargo=environ.get("CARGO") or "cargo",
            rustc=environ.get("RUSTC") or "rustc",
            env=build_environment(environ),
            cwd=cwd,
            proxy=proxy_url(environ),
        )


def _run_or_explain(toolchain: Toolchain, command: list[str], **options):
    import subprocess  # only cold runs start programs: keep it off the warm path

    try:
        # A session of its own, so that stopping it stops everything it started (rustc, build
        # scripts); Ctrl-C reaches cargo-task, which then stops the session.
        return subprocess.Popen(
            command, env=toolchain.env, cwd=toolchain.cwd, start_new_session=True, **options
        )
    except FileNotFoundError:
        raise BuildError(
            f"could not run `{command[0]}`: no such program",
            help="install Rust with rustup (https://rustup.rs), or run this through `cargo task`",
        ) from None


def _sysroot(toolchain: Toolchain, probe) -> Path:
    """The toolchain's sysroot, after checking it has the wasm32-wasip2 standard library."""
    out, err = probe.communicate()
    if probe.returncode != 0:
        raise BuildError(f"`{toolchain.rustc} --print sysroot` failed:\n{err.strip()}")
    root = Path(out.strip())
    if not (root / "lib" / "rustlib" / TARGET / "lib").is_dir():
        name = toolchain.env.get("RUSTUP_TOOLCHAIN")
        raise BuildError(
            f"the `{TARGET}` target is not installed for the toolchain `{name or root}`",
            help=f"add it with `rustup target add {TARGET}"
            + (f" --toolchain {name}`" if name else "`"),
        )
    return root


class _Stopped(BaseException):
    """SIGTERM or SIGHUP while cargo builds: stop cargo too, then leave as if interrupted."""


def _stop_on(signum, frame) -> None:
    raise _Stopped()


def build_task(
    toolchain: Toolchain, scaffold: Scaffold, task: str, verbosity: int, color: str
) -> Path:
    """Build one task and return the sysroot it was built with.

    cargo's own diagnostics go straight to the terminal. The sysroot is asked of rustc while
    cargo works, so that a missing wasm target is reported plainly, and costs no time.
    Whatever stops this function (an error, Ctrl-C, SIGTERM or SIGHUP to this process
    alone) stops cargo and rustc too, and removes the private proxy configuration.
    """
    import signal
    import subprocess
    import tempfile
    import threading

    command = [
        toolchain.cargo, "build", "--manifest-path", str(scaffold.manifest),
        "--target", TARGET, "--bin", task, "--target-dir", str(scaffold.target_dir),
        "--color", color,
    ]  # fmt: skip
    if verbosity < 0:
        command.append("--quiet")
    elif verbosity > 1:
        command.append("-" + "v" * (verbosity - 1))
    on_main_thread = threading.current_thread() is threading.main_thread()
    previous = {s: signal.signal(s, _stop_on) for s in (signal.SIGTERM, signal.SIGHUP)} if on_main_thread else {}
    started: list = []
    private = None
    try:
        if toolchain.proxy:
            private = tempfile.TemporaryDirectory(prefix="cargo-task-")  # mode 0700
            config = Path(private.name) / "proxy.toml"
            config.write_text(f"[http]\nproxy = {json.dumps(toolchain.proxy)}\n")
            command += ["--config", str(config)]
        started.append(_run_or_explain(
            toolchain, [toolchain.rustc, "--print", "sysroot"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        ))  # fmt: skip
        started.append(_run_or_explain(toolchain, command, stdin=subprocess.DEVNULL))
        probe, cargo = started
        root = _sysroot(toolchain, probe)  # a missing target: cargo's errors would repeat it
        code = cargo.wait()
    except BaseException as e:
        for process in started:
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            process.wait()
        if isinstance(e, _Stopped):
            raise KeyboardInterrupt from None
        raise
    finally:
        if private is not None:
            private.cleanup()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if code != 0:
        raise BuildError(
            f"could not compile task `{task}` (cargo exited with {code})",
            help="the compiler's messages above name the problem",
        )
    return root


def cargo_metadata(environ: dict[str, str], manifest: Path) -> dict:
    """`cargo metadata --no-deps` for `manifest`: its workspace's packages, their targets
    and path dependencies, and the target directory as configured. Resolves nothing, so it
    needs no network and writes no lock file; no build code runs."""
    import subprocess

    toolchain = Toolchain.from_environment(environ, manifest.parent)
    command = [toolchain.cargo, "metadata", "--format-version", "1", "--no-deps", "--offline",
               "--manifest-path", str(manifest)]  # fmt: skip
    process = _run_or_explain(toolchain, command, stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    out, err = process.communicate()
    try:
        if process.returncode == 0:
            return json.loads(out)
    except ValueError:
        pass
    detail = err.decode("utf-8", "replace").strip()
    raise BuildError(
        f"`cargo metadata` failed for `{manifest}`, so cargo-task cannot tell what the "
        "project's builds read and run" + (f":\n{detail}" if detail else ""),
        help="fix what cargo reports; `cargo metadata` must work in this project",
    )
