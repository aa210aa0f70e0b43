"""`cargo task [OPTIONS] [TASK] [ARGS]...`: the command line, and the only place that prints
diagnostics or exits.

cargo runs `cargo-task task ...` for `cargo task ...`; the leading `task` is dropped. The
first word that is not one of our options names the task; everything after it belongs to
the task, `--help` included.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, NamedTuple, NoReturn, Sequence

from cargo_task import __version__
from cargo_task.config import Overrides, parse_duration, parse_size
from cargo_task.errors import TaskError
from cargo_task.terminal import Reporter, printable, use_color

HELP = """\
Run the project's tasks (tasks/NAME.rs) in a WebAssembly sandbox.

Usage: cargo task [OPTIONS] [TASK] [ARGS]...

Arguments:
  [TASK]     The task to run; without one, list the tasks
  [ARGS]...  Passed to the task verbatim, --help included

Options:
      --list                List the tasks (the default without TASK)
      --json                List the tasks as JSON, for editors and CI
      --explain <TASK>      Show what TASK may do, without building or running it
      --build [TASK]...     Build the tasks named (default: all) without running them
      --editor              Write the task packages for rust-analyzer; print their manifests
      --add <CRATE[@VERSION]|PATH> [NAME]
                            Add a task from a crate (or a package's directory) to Cargo.toml
      --update [TASK]...    Resolve tasks with a `from` table afresh; rewrite cargo-task.lock
      --locked              Fail rather than change cargo-task.lock (the default when CI=true)
      --timeout <DURATION>  Wall-clock limit for this run, e.g. 30s
      --memory <SIZE>       Memory limit for this run, e.g. 512MiB
  -p, --package <SPEC>      Package whose tasks to use (NAME or NAME@VERSION)
      --manifest-path <PATH>
                            Path to Cargo.toml
  -q, --quiet               Do not print cargo-task's or cargo's status lines
  -v, --verbose             Use verbose output (-vv very verbose)
      --color <WHEN>        Coloring: auto, always, never
  -h, --help                Print help
  -V, --version             Print version

A task sees the project read-only and its arguments, nothing else, unless its table in
[package.metadata.tasks] grants more: see what with --explain TASK.
"""

_FLAGS = {"-h": "help", "--help": "help", "-V": "version", "--version": "version",
          "--list": "list", "--json": "json", "-q": "quiet", "--quiet": "quiet",
          "--editor": "editor", "--build": "build", "--update": "update", "--locked": "locked"}  # fmt: skip
_VALUES = {"--explain": "explain", "--timeout": "timeout", "--memory": "memory", "-p": "package",
           "--package": "package", "--manifest-path": "manifest_path", "--color": "color", "--add": "add"}  # fmt: skip
_CONVERT = {"timeout": parse_duration, "memory": parse_size}


class Options(NamedTuple):
    help: bool = False
    version: bool = False
    list: bool = False
    json: bool = False
    editor: bool = False
    build: bool = False
    update: bool = False
    locked: bool = False
    add: str | None = None
    quiet: bool = False
    verbose: int = 0
    explain: str | None = None
    timeout: float | None = None
    memory: int | None = None
    package: str | None = None
    manifest_path: str | None = None
    color: str | None = None


def _task_names(flag: str, task: str | None, task_args: list[str], others) -> list[str]:
    """The task names after a flag that takes them (`--build`, `--update`, `--add`), checked:
    no flag it cannot be used with, no option among them."""
    other = next((f for f, on in others if on), None)
    if other:
        raise _usage_error(f"`{flag}` cannot be used with `{other}`")
    names = [task, *task_args] if task is not None else []
    stray = next((name for name in names if name.startswith("-")), None)
    if stray:
        raise _usage_error(f"unexpected argument `{stray}` after the task names: options go first")
    return names


def _usage_error(message: str) -> TaskError:
    return TaskError(message, help="for more information, try `cargo task --help`")


def parse_options(words: Sequence[str]) -> Options:
    """Our options (everything before the task name) -> Options, cargo-style errors."""
    said: dict[str, Any] = {"verbose": 0}
    words = list(words)
    while words:
        word = words.pop(0)
        name, equals, value = word.partition("=") if word.startswith("--") else (word, "", "")
        if word.startswith("-p") and len(word) > 2:
            name, equals, value = "-p", "=", word[2:]
        if name in _FLAGS and not equals:
            said[_FLAGS[name]] = True
        elif word == "--verbose":
            said["verbose"] += 1
        elif word.startswith("-v") and word.strip("v") == "-":  # -v, -vv, -vvv
            said["verbose"] += len(word) - 1
        elif name in _VALUES:
            if not equals:
                if not words:
                    if name == "--explain":
                        raise TaskError("a value is required for `--explain` but none was supplied",
                                        help="name a task: `cargo task` lists them")  # fmt: skip
                    raise _usage_error(f"a value is required for `{name}` but none was supplied")
                value = words.pop(0)
            key = _VALUES[name]
            try:
                said[key] = _CONVERT[key](value) if key in _CONVERT else value
            except ValueError as e:
                raise _usage_error(f"invalid value `{value}` for `{name}`: expected {e}") from None
        else:
            raise _usage_error(f"unexpected argument `{word}` found")
    if said.get("color") not in (None, "auto", "always", "never"):
        raise _usage_error(
            f"invalid value `{said['color']}` for `--color`: expected auto, always or never"
        )
    return Options(**said)


def split_arguments(argv: Sequence[str]) -> tuple[list[str], str | None, list[str]]:
    """-> (our options, the task name or None, the task's arguments)."""
    argv = list(argv)
    if argv[:1] == ["task"]:
        argv = argv[1:]
    options: list[str] = []
    i = 0
    while i < len(argv):
        word = argv[i]
        if word == "--":
            return options, (argv[i + 1] if i + 1 < len(argv) else None), argv[i + 2 :]
        if not word.startswith("-") or word == "-":
            return options, word, argv[i + 1 :]
        options.append(word)
        if word in _VALUES and i + 1 < len(argv):
            options.append(argv[i + 1])
            i += 1
        i += 1
    return options, None, []


def _render_list(tasks, members: list[str], reporter: Reporter, as_json: bool) -> None:
    if as_json:
        import json

        rows = [
            {"name": t.name, "description": t.description, "source": str(t.source),
             "manifest": str(t.owner.manifest)}  # fmt: skip
            | ({"from": dict(t.settings.published.written)} if t.settings.published else {})
            for t in tasks
        ]
        print(json.dumps(rows, indent=2))
        return
    if tasks:
        width = max(len(t.name) for t in tasks)
        print("Tasks (cargo task NAME [ARGS]...):")
        for task in tasks:
            print(printable(f"    {task.name.ljust(width)}    {task.description}".rstrip()))
    elif not members:
        reporter.warning("no tasks found")
        print("help: a task is a file `tasks/NAME.rs` with a `fn main()`", file=sys.stderr)
    if members:
        shown = ", ".join(f"{m} (cargo task -p {m})" for m in members)
        print(printable(f"Workspace members with tasks of their own: {shown}"))


def console_main() -> NoReturn:
    """The `cargo-task` command. Ends without tearing the interpreter down, which cost tens
    of milliseconds a run and does nothing we need: every file is already written whole."""
    code = main()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe, a hung-up terminal (EIO)
            pass
    os._exit(code)


def main(argv: Sequence[str] | None = None) -> int:
    environ = dict(os.environ)
    reporter = Reporter(sys.stderr, use_color(None, environ, sys.stderr), verbosity=0)
    try:
        return _main(sys.argv[1:] if argv is None else argv, environ, reporter)
    except TaskError as e:
        _report(reporter, e)
        return e.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # the reader went away (`cargo task | head`): not an error
        sys.stdout = open(os.devnull, "w")  # so that the final flush does not fail again
        return 0
    except Exception as e:  # a bug in cargo-task: say so on one screen
        if reporter.verbosity > 0:
            import traceback

            traceback.print_exc()
        reporter.error(
            f"internal error in cargo-task-wasm {__version__}: {type(e).__name__}: {e}",
            help="this is a bug; rerun with -v for a traceback and report it",
        )
        return 101


def _report(reporter: Reporter, error: TaskError) -> None:
    """`error:` and `help:`; after SIGHUP the terminal may be gone, and the exit code is all
    that is left to say. With -v, an error's `verbose` form (message, help) if it has one:
    a trap's Wasm backtrace."""
    message, help = error.message, error.help
    if reporter.verbosity > 0 and error.verbose:
        message, help = error.verbose
    try:
        reporter.error(message, help)
    except OSError:
        pass


def _main(argv: Sequence[str], environ: dict[str, str], reporter: Reporter) -> int:
    from cargo_task import pipeline

    options, task, task_args = split_arguments(argv)
    ns = parse_options(options)
    if ns.help:
        print(HELP, end="")
        return 0
    if ns.version:
        print(f"cargo-task-wasm {__version__}")
        return 0
    verbosity = -1 if ns.quiet else ns.verbose
    color = ns.color or environ.get("CARGO_TERM_COLOR") or "auto"
    reporter.color = use_color(color, environ, sys.stderr)
    reporter.verbosity = verbosity
    try:
        cwd = Path.cwd()
    except OSError as e:
        raise TaskError(f"could not read the current directory: {e.strerror}") from None
    request = pipeline.Request(
        cwd=cwd,
        environ=environ,
        task=ns.explain or task,
        args=tuple(task_args),
        manifest_path=ns.manifest_path,
        package=ns.package,
        verbosity=verbosity,
        color="always" if reporter.color else "never",
        overrides=Overrides(timeout=ns.timeout, memory=ns.memory),
        locked=ns.locked,
    )
    if ns.add is not None or ns.update:
        flag = "--add" if ns.add is not None else "--update"
        names = _task_names(flag, task, task_args, (("--update", ns.add is not None and ns.update),
                            ("--explain", ns.explain), ("--list", ns.list), ("--json", ns.json),
                            ("--editor", ns.editor), ("--build", ns.build)))  # fmt: skip
        if ns.add is not None:
            if len(names) > 1:
                raise _usage_error(f"unexpected argument `{names[1]}`: `--add CRATE[@VERSION] [NAME]` adds one task")
            return pipeline.add(request, ns.add, names[0] if names else None, reporter)
        return pipeline.update(request, names, reporter)
    if ns.build:  # every word after the options names a task to build
        names = _task_names("--build", task, task_args, (("--explain", ns.explain), ("--list", ns.list),
                            ("--json", ns.json), ("--editor", ns.editor)))  # fmt: skip
        return pipeline.build(request, names, reporter)
    if task is not None and (ns.explain or ns.list or ns.json):
        flag = "--explain" if ns.explain else "--list" if ns.list else "--json"
        raise TaskError(
            f"unexpected argument `{task}` after `{flag}`",
            help="run a task with `cargo task NAME`, or give --explain the task's name only",
        )
    if ns.editor:
        from cargo_task import editors

        if task is not None:
            raise _usage_error(f"unexpected argument `{task}` after `--editor`")
        setup = editors.prepare(request)
        print(editors.render_json(setup) if ns.json else editors.render_paths(setup), end="")
        if not ns.json and verbosity >= 0:
            print(editors.render_help(setup), end="", file=sys.stderr)
        return 0
    if ns.explain:
        from cargo_task.explain import explain_text

        text = explain_text(*pipeline.explain(request), environ)
        print("".join(printable(line) + "\n" for line in text.splitlines()), end="")
        return 0
    if task is None or ns.list or ns.json:
        _render_list(*pipeline.list_tasks(request), reporter, ns.json)
        return 0

    def abandon(error: TaskError) -> NoReturn:
        try:
            _report(reporter, error)
        finally:
            os._exit(error.exit_code)

    return pipeline.run(request, reporter, abandon)
