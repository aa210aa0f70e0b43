"""The terminal: colour choice and cargo-style status lines on stderr."""

from __future__ import annotations

from typing import TextIO

_BOLD_GREEN, _BOLD_RED, _BOLD_YELLOW, _BOLD_CYAN, _BOLD, _RESET = (
    "\x1b[1;32m", "\x1b[1;31m", "\x1b[1;33m", "\x1b[1;36m", "\x1b[1m", "\x1b[0m",
)  # fmt: skip


def use_color(choice: str | None, environ: dict[str, str], stream: TextIO) -> bool:
    """cargo's rule: --color, else CARGO_TERM_COLOR, else NO_COLOR, else is it a terminal."""
    choice = choice or environ.get("CARGO_TERM_COLOR") or "auto"
    if choice == "always":
        return True
    if choice == "never" or environ.get("NO_COLOR"):
        return False
    return stream.isatty() and environ.get("TERM") != "dumb"


# Control characters in text the tool prints (task names, descriptions, paths, arguments)
# are shown, not obeyed: a repository must not drive the terminal just by being listed.
_VISIBLE = {c: "^" + chr(c ^ 0x40) for c in (*range(0x20), 0x7F) if c not in (0x09,)}
_VISIBLE.update({c: f"\\x{c:02x}" for c in range(0x80, 0xA0)})


def printable(text: str) -> str:
    return text.translate(_VISIBLE)


class Reporter:
    """Everything the tool itself says goes through here, to stderr, cargo-style."""

    def __init__(self, stream: TextIO, color: bool, verbosity: int):
        self.stream = stream
        self.color = color
        self.verbosity = verbosity

    def _paint(self, style: str, text: str) -> str:
        return f"{style}{text}{_RESET}" if self.color else text

    def status(self, verb: str, message: str) -> None:
        """`   Compiling foo` style progress; silent with -q."""
        if self.verbosity >= 0:
            self.stream.write(f"{self._paint(_BOLD_GREEN, verb.rjust(12))} {printable(message)}\n")
            self.stream.flush()

    def note(self, message: str) -> None:
        """Detail shown only with -v."""
        if self.verbosity > 0:
            self.status("Info", message)

    def warning(self, message: str) -> None:
        self.stream.write(f"{self._paint(_BOLD_YELLOW, 'warning')}{self._paint(_BOLD, ':')} {printable(message)}\n")
        self.stream.flush()

    def error(self, message: str, help: str | None = None) -> None:
        lines = [printable(line) for line in message.splitlines()] or [""]
        self.stream.write(f"{self._paint(_BOLD_RED, 'error')}{self._paint(_BOLD, ':')} ")
        self.stream.write("\n".join(lines) + "\n")
        if help:
            self.stream.write(f"{self._paint(_BOLD_CYAN, 'help')}{self._paint(_BOLD, ':')} {printable(help)}\n")
        self.stream.flush()
