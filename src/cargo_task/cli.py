"""`cargo task [OPTIONS] [TASK] [ARGS]...`: the command line, and the only place that prints
diagnostics or exits.

cargo runs `cargo-task task ...` for `cargo task ...`; the leading `task` is dropped. The
first word that is not one of our options names the task; everything after it belongs to
the task, `--help` included.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import NoReturn, Sequence

from cargo_task import __version__
from cargo_task.config import parse_duration, parse_size
from cargo_task.errors import TaskError
from cargo_task.grants import Overrides
from cargo_task.terminal import Reporter, use_color

USAGE = "cargo task [OPTIONS] [TASK] [ARGS]..."
DESCRIPTION = (
    "Run the project's tasks (tasks/NAME.rs) in a WebAssembly sandbox. "
    "Without TASK, list the tasks."
)
EPILOG = (
    "Everything after TASK is passed to the task, --help included.\n"
    "A task sees the project read-only and its arguments, nothing else, unless its table in\n"
    "[package.metadata.tasks] grants more. See what it may do with --explain TASK."
)
_TAKES_VALUE = {"--explain", "--timeout", "--memory", "-p", "--package", "--manifest-path", "--color"}


class _UsageError(TaskError):
    exit_code = 1


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _UsageError(message, help="for more information, try `cargo task --help`")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="cargo task", usage=USAGE, description=DESCRIPTION, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter, add_help=False,
    )  # fmt: skip
    add = parser.add_argument
    add("-h", "--help", action="help", help="Print help")
    add("-V", "--version", action="version", version=f"cargo-task-wasm {__version__}",
        help="Print version")  # fmt: skip
    add("--list", action="store_true", help="List the tasks (the default without TASK)")
    add("--json", action="store_true", help="List the tasks as JSON, for editors and CI")
    add("--explain", metavar="TASK", help="Show what TASK may do, without building or running it")
    add("--timeout", metavar="DURATION", type=_typed(parse_duration),
        help='Wall-clock limit for this run, e.g. "30s"')  # fmt: skip
    add("--memory", metavar="SIZE", type=_typed(parse_size),
        help='Memory limit for this run, e.g. "512MiB"')  # fmt: skip
    add("-p", "--package", metavar="SPEC", help="Package whose tasks to use")
    add("--manifest-path", metavar="PATH", help="Path to Cargo.toml")
    add("-q", "--quiet", action="store_true", help="Do not print cargo-task or cargo status")
    add("-v", "--verbose", action="count", default=0, help="Use verbose output (-vv: very verbose)")
    add("--color", choices=("auto", "always", "never"), metavar="WHEN",
        help="Coloring: auto, always, never")  # fmt: skip
    return parser


def _typed(parse):
    def convert(text: str):
        try:
            return parse(text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(f"expected {e}, not `{text}`") from None

    return convert


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
        if word in _TAKES_VALUE and i + 1 < len(argv):
            options.append(argv[i + 1])
            i += 1
        i += 1
    return options, None, []


def _render_list(tasks, reporter: Reporter, as_json: bool) -> None:
    if as_json:
        rows = [
            {"name": t.name, "description": t.description, "source": str(t.source),
             "manifest": str(t.owner.manifest)}  # fmt: skip
            for t in tasks
        ]
        print(json.dumps(rows, indent=2))
        return
    if not tasks:
        reporter.warning("no tasks found")
        print("help: a task is a file `tasks/NAME.rs` with a `fn main()`", file=sys.stderr)
        return
    width = max(len(t.name) for t in tasks)
    print("Tasks (cargo task NAME [ARGS]...):")
    for task in tasks:
        print(f"    {task.name.ljust(width)}    {task.description}".rstrip())


def main(argv: Sequence[str] | None = None) -> int:
    environ = dict(os.environ)
    reporter = Reporter(sys.stderr, use_color(None, environ, sys.stderr), verbosity=0)
    try:
        return _main(sys.argv[1:] if argv is None else argv, environ, reporter)
    except TaskError as e:
        reporter.error(e.message, e.help)
        return e.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        sys.stderr.close()  # the reader went away (`cargo task | head`): not an error
        return 0
    except Exception as e:  # a bug in cargo-task: say so on one screen
        if reporter.verbosity > 0:
            raise
        reporter.error(
            f"internal error in cargo-task-wasm {__version__}: {type(e).__name__}: {e}",
            help="this is a bug; rerun with -v for a traceback and report it",
        )
        return 101


def _main(argv: Sequence[str], environ: dict[str, str], reporter: Reporter) -> int:
    from cargo_task import pipeline

    options, task, task_args = split_arguments(argv)
    ns = _parser().parse_args(options)
    verbosity = -1 if ns.quiet else ns.verbose
    color = ns.color or environ.get("CARGO_TERM_COLOR") or "auto"
    reporter.color = use_color(color, environ, sys.stderr)
    reporter.verbosity = verbosity
    request = pipeline.Request(
        task=ns.explain or task,
        args=tuple(task_args),
        manifest_path=ns.manifest_path,
        package=ns.package,
        verbosity=verbosity,
        color="always" if reporter.color else "never",
        overrides=Overrides(timeout=ns.timeout, memory=ns.memory),
        environ=environ,
    )
    if ns.explain:
        from cargo_task.explain import explain_text

        print(explain_text(*pipeline.explain(request), environ), end="")
        return 0
    if task is None or ns.list or ns.json:
        _render_list(pipeline.list_tasks(request), reporter, ns.json)
        return 0

    def abandon(error: TaskError) -> NoReturn:
        reporter.error(error.message, error.help)
        os._exit(error.exit_code)

    return pipeline.run(request, reporter, abandon)
