"""The one kind of error users see: a message, an optional hint and an exit code."""

from __future__ import annotations


class TaskError(Exception):
    """A failure to report as `error: <message>` (and `help: <hint>`), never a traceback."""

    exit_code = 1

    def __init__(self, message: str, help: str | None = None, exit_code: int | None = None,
                 verbose: tuple[str, str | None] | None = None):  # fmt: skip
        super().__init__(message)
        self.message = message
        self.help = help
        self.verbose = verbose  # (message, help) shown instead with -v, e.g. with a backtrace
        if exit_code is not None:
            self.exit_code = exit_code


class ConfigError(TaskError):
    """Cargo.toml or the tasks/ directory says something we cannot accept."""


class BuildError(TaskError):
    """cargo could not build the task."""


class SandboxError(TaskError):
    """The task could not be started, or ended abnormally, inside Wasmtime."""

    exit_code = 101
