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


# cargo runs the wrapper in place of rustc for the generated package alone
# (RUSTC_WORKSPACE_WRAPPER applies to workspace members, never to a dependency); it sets
# CARGO_MANIFEST_DIR to this variable's value, the owner's directory. Not named `CARGO_*`:
# compiler caches such as sccache hash those variables for every crate.
MANIFEST_DIR_VARIABLE = "__CARGO_TASK_MANIFEST_DIR"


def manifest_dir_wrapper() -> Path:
    """The wrapper shipped with cargo-task: at a fixed path (cargo keys the package's
    artefacts on it, so builds stay fresh), outside anything a build or a task may write."""
    return Path(__file__).resolve().parent / "manifest-dir-wrapper.sh"


def wrapper_environment(scaffold: Scaffold) -> dict[str, str]:
    """What makes `env!("CARGO_MANIFEST_DIR")` in a task name its owner's directory."""
    if scaffold.manifest_dir is None:
        return {}
    wrapper = manifest_dir_wrapper()
    if not os.access(wrapper, os.X_OK):
        raise BuildError(
            f"cargo-task's rustc wrapper `{wrapper}` is missing or not executable",
            help="reinstall cargo-task-wasm (for example `pipx reinstall cargo-task-wasm`)",
        )
    return {"RUSTC_WORKSPACE_WRAPPER": str(wrapper), MANIFEST_DIR_VARIABLE: str(scaffold.manifest_dir)}


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


def _run_or_explain(toolchain: Toolchain, command: list[str], confinement=None, env=None, **options):
    """Start `command` in a session of its own, confined when `confinement` is given."""
    import subprocess  # only cold runs start programs: keep it off the warm path

    # A session of its own, so that stopping it stops everything it started (rustc, build
    # scripts); Ctrl-C reaches cargo-task, which then stops the session.
    options.update(env=toolchain.env if env is None else env, cwd=toolchain.cwd, start_new_session=True)
    try:
        if confinement is not None:
            from cargo_task import confine

            return confine.spawn(confinement, command, **options)
        return subprocess.Popen(command, **options)
    except FileNotFoundError:
        raise BuildError(
            f"could not run `{command[0]}`: no such program",
            help="install Rust with rustup (https://rustup.rs), or run this through `cargo task`",
        ) from None
    except PermissionError:
        raise BuildError(
            f"could not run `{command[0]}`: permission denied",
            help="the confined build runs programs from PATH, CARGO_HOME and RUSTUP_HOME only; "
            "check that CARGO_HOME and RUSTUP_HOME point at your toolchain",
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
    """SIGTERM or SIGHUP while cargo builds: stop cargo too, then leave with 128 + signal."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def _stop_on(signum, frame) -> None:
    raise _Stopped(signum)


def build_task(
    toolchain: Toolchain, scaffold: Scaffold, task: str, verbosity: int, color: str,
    readable: list[Path], extra: tuple[str, ...] = (),
) -> Path:
    """Build one task and return the sysroot it was built with.

    Crates are fetched first, unconfined but running no build code, and only when the
    generated manifest or its path dependencies changed. The build itself runs offline and,
    where Landlock is available, confined: it may write only the generated package's
    directory and a private temp dir, read only `readable` (the project), the toolchain,
    cargo's sources and system directories, and connect nowhere. The tasks' own crate is
    compiled through `manifest_dir_wrapper()` (`wrapper_environment`).

    cargo's own diagnostics go straight to the terminal. The sysroot is asked of rustc while
    cargo works, so that a missing wasm target is reported plainly, and costs no time.
    Whatever stops this function (an error, Ctrl-C, SIGTERM or SIGHUP to this process
    alone) stops cargo and rustc too, and removes the private directory.
    """
    import signal
    import subprocess
    import tempfile
    import threading

    from cargo_task import confine

    command = [
        toolchain.cargo, "build", "--manifest-path", str(scaffold.manifest),
        "--target", TARGET, "--bin", task, "--target-dir", str(scaffold.target_dir),
        "--color", color, "--offline", "--locked",  # the fetch before wrote the lock
        *extra,
    ]  # fmt: skip
    if verbosity < 0:
        command.append("--quiet")
    elif verbosity > 1:
        command.append("-" + "v" * (verbosity - 1))
    wrapper_env = wrapper_environment(scaffold)
    on_main_thread = threading.current_thread() is threading.main_thread()
    previous = {s: signal.signal(s, _stop_on) for s in (signal.SIGTERM, signal.SIGHUP)} if on_main_thread else {}
    started: list = []
    private = None
    try:
        private = tempfile.mkdtemp(prefix="cargo-task-build-")  # mode 0700
        config = Path(private) / "config.toml"
        config.write_text(private_config(toolchain))
        command += ["--config", str(config)]
        _fetch_if_needed(toolchain, scaffold, config, started)
        build_dir = scaffold.build_dir  # named after what the fetch locked
        if build_dir != scaffold.target_dir:
            command += ["--config", f"build.build-dir={json.dumps(str(build_dir))}"]
        scaffold.target_dir.mkdir(exist_ok=True)  # cargo would create it beside, out of reach
        build_dir.mkdir(exist_ok=True)
        scratch = Path(private) / "tmp"
        scratch.mkdir()
        # The agent's socket is for fetching git dependencies, not for build scripts.
        env = {k: v for k, v in toolchain.env.items() if k != "SSH_AUTH_SOCK"}
        env["TMPDIR"] = str(scratch)
        env.update(wrapper_env)
        wrapper = [Path(wrapper_env["RUSTC_WORKSPACE_WRAPPER"])] if wrapper_env else []
        confinement = (build_confinement(toolchain, scaffold, [*readable, config, *wrapper], [scratch, build_dir])
                       if confine.available() else None)  # fmt: skip
        started.append(_run_or_explain(
            toolchain, [toolchain.rustc, "--print", "sysroot"], confinement, env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        ))  # fmt: skip
        started.append(_run_or_explain(toolchain, command, confinement, env, stdin=subprocess.DEVNULL))
        probe, cargo = started[-2:]
        root = _sysroot(toolchain, probe)  # a missing target: cargo's errors would repeat it
        code = cargo.wait()
    except OSError as e:  # the private directory, the configuration, the target directory
        _stop_all(started)
        raise BuildError(f"could not prepare the build of task `{task}`: {e.strerror} ({e.filename})",
                         help="check that TMPDIR and the target directory are writable") from None  # fmt: skip
    except BaseException as e:
        _stop_all(started)
        if isinstance(e, _Stopped):
            name = signal.Signals(e.signum).name
            raise BuildError(f"the build of task `{task}` was terminated ({name})",
                             exit_code=128 + e.signum) from None  # fmt: skip
        raise
    finally:
        if private is not None:
            _remove_private(private)
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if code != 0:
        raise BuildError(
            f"could not compile task `{task}` (cargo exited with {code})",
            help="the compiler's messages above name the problem"
            + ("; a build reads only the project, the toolchain and cargo's sources "
               "(see `cargo task --explain`)" if confinement is not None else ""),
        )
    return root


def _stop_all(started: list) -> None:
    import signal

    for process in started:
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        process.wait()


def _remove_private(directory: str) -> None:
    """Whatever a build script left there (however deep) goes; never a reason to fail."""
    from cargo_task.files import remove_tree

    try:
        remove_tree(directory)
    except OSError:
        pass


def private_config(toolchain: Toolchain) -> str:
    """cargo configuration for cargo alone, in a private file: the proxy (which may carry a
    password), and every `[env]` entry of the configuration files blanked, so that neither
    reaches rustc's environment, where `env!` in a task would read it."""
    lines = []
    if toolchain.proxy:
        lines += ["[http]", f"proxy = {json.dumps(toolchain.proxy)}"]
    tables = config_env_tables(toolchain)
    if tables:
        # Blanked in the form the user wrote it: cargo cannot merge a string into a table.
        blank = {False: '""', True: '{ value = "", force = true, relative = false }'}
        lines += ["[env]"] + [f"{json.dumps(name)} = {blank[table]}" for name, table in sorted(tables.items())]
    return "\n".join(lines) + "\n"


def cargo_configs(toolchain: Toolchain) -> list[tuple[Path, dict]]:
    """The cargo configuration files a build in `toolchain.cwd` reads, parsed; a broken one
    is left out (cargo reports it itself)."""
    import tomllib

    from cargo_task.fingerprint import cargo_config_files

    found = []
    for path in cargo_config_files(toolchain.cwd, toolchain.env):
        if path.name.startswith("config") and path.is_file():
            try:
                found.append((path, tomllib.loads(path.read_text(encoding="utf-8"))))
            except (OSError, ValueError):
                continue
    return found


def config_env_tables(toolchain: Toolchain) -> dict[str, bool]:
    """The names set by `[env]` tables of the cargo configuration a build reads, each with
    whether it is written as a table (`{ value = ..., relative = true }`)."""
    tables: dict[str, bool] = {}
    for _, data in cargo_configs(toolchain):
        if isinstance(data.get("env"), dict):
            for name, value in data["env"].items():
                tables[name] = tables.get(name, False) or isinstance(value, dict)
    return tables


def config_env_names(toolchain: Toolchain) -> list[str]:
    """The names set by `[env]` tables of the cargo configuration a build reads."""
    return sorted(config_env_tables(toolchain))


def local_sources(toolchain: Toolchain) -> list[Path]:
    """Directories of `local-registry` and `directory` sources the cargo configuration
    declares (source replacement, vendoring): an offline build reads its crates there. A
    relative path is taken from the directory holding `.cargo/`, as cargo does."""
    found = []
    for path, data in cargo_configs(toolchain):
        sources = data.get("source") if isinstance(data.get("source"), dict) else {}
        for table in sources.values():
            for key in ("local-registry", "directory"):
                value = table.get(key) if isinstance(table, dict) else None
                if isinstance(value, str):
                    base = path.parent.parent if path.parent.name == ".cargo" else path.parent
                    found.append(Path(os.path.normpath(os.path.join(base, value))))
    return found


def build_confinement(toolchain: Toolchain, scaffold: Scaffold, readable: list[Path], writable: list[Path]):
    """What a confined task build may touch."""
    from cargo_task import confine
    from cargo_task.fingerprint import cargo_config_files

    home = os.path.expanduser("~")
    cargo_home = Path(toolchain.env.get("CARGO_HOME") or os.path.join(home, ".cargo"))
    rustup_home = Path(toolchain.env.get("RUSTUP_HOME") or os.path.join(home, ".rustup"))
    import shutil

    path = toolchain.env.get("PATH")
    programs = [Path(found) for p in (toolchain.cargo, toolchain.rustc, toolchain.env.get("RUSTC_WRAPPER"))
                if p and (found := shutil.which(p, path=path))]  # fmt: skip
    read = [
        *map(Path, confine.SYSTEM_READ), *readable, rustup_home, scaffold.directory, *local_sources(toolchain),
        *(cargo_home / n for n in ("bin", "registry", "git", "config", "config.toml")),
        *(f for f in cargo_config_files(toolchain.cwd, toolchain.env) if f.exists()),
        *(Path(os.path.realpath(p)).parent for p in programs),
    ]  # fmt: skip
    # Only its own target directory and the build directory of its dependency set: the
    # generated manifest and lock, and what `--editor` writes beside them (which
    # rust-analyzer's unconfined `cargo check` reads), stay out of reach of build scripts.
    write = [scaffold.target_dir, *writable, *map(Path, confine.SYSTEM_WRITE)]  # writable: the build dir too
    return confine.Confinement(read=tuple(read), write=tuple(write), network=False)


def _fetch_if_needed(toolchain: Toolchain, scaffold: Scaffold, config: Path, started: list) -> None:
    """`cargo fetch` when the generated manifest, its lock file or a path dependency's
    manifest changed since the last fetch: downloads and unpacks crates, runs no build code."""
    import hashlib
    import subprocess

    from cargo_task.fingerprint import stamp

    parts = [scaffold.text(), repr(stamp(scaffold.directory / "Cargo.lock"))]
    parts += [repr(stamp(d / "Cargo.toml")) for d in scaffold.path_dependencies]
    key = hashlib.sha256("\0".join(parts).encode("utf-8", "surrogateescape")).hexdigest()
    mark = scaffold.directory / "fetched"
    try:
        if mark.read_text() == key:
            return
    except OSError:
        pass
    command = [toolchain.cargo, "fetch", "--manifest-path", str(scaffold.manifest),
               "--target", TARGET, "--config", str(config), "--quiet"]  # fmt: skip
    started.append(_run_or_explain(toolchain, command, stdin=subprocess.DEVNULL))
    if started[-1].wait() != 0:
        raise BuildError(
            "could not fetch the task-dependencies (cargo fetch failed)",
            help="cargo's messages above name the problem; check the network or the versions",
        )
    parts[1] = repr(stamp(scaffold.directory / "Cargo.lock"))  # as fetch left it
    mark.write_text(hashlib.sha256("\0".join(parts).encode("utf-8", "surrogateescape")).hexdigest())


def cargo_metadata(toolchain: Toolchain, manifest: Path) -> dict:
    """`cargo metadata --no-deps` for `manifest`: its workspace's packages, their targets
    and path dependencies, and the target directory as configured. Resolves nothing, so it
    needs no network and writes no lock file; no build code runs. Started in the project
    (`toolchain.cwd`), never in the manifest's directory: there a path dependency's or a
    published package's `rust-toolchain.toml` or `.cargo/config.toml` would choose the
    programs that run (unconfined)."""
    import subprocess

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


def resolve_with_cargo(toolchain: Toolchain, args: list[str]) -> tuple[int, str]:
    """Run `cargo ARGS` unconfined for a published task's resolution (`cargo vendor`, which
    resolves, downloads and unpacks, running no build code): the one step that may use the
    network. Returns the exit code and cargo's messages."""
    import subprocess

    config = private_config(toolchain)
    private = None
    try:
        import tempfile

        private = tempfile.mkdtemp(prefix="cargo-task-resolve-")
        path = Path(private) / "config.toml"
        path.write_text(config)
        command = [toolchain.cargo, *args, "--config", str(path), "--color", "never"]
        process = _run_or_explain(toolchain, command, stdin=subprocess.DEVNULL,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
        try:
            _, err = process.communicate()
        except BaseException:
            _stop_all([process])
            raise
        return process.returncode, err.decode("utf-8", "replace")
    finally:
        if private is not None:
            _remove_private(private)
