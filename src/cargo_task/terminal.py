"""The terminal: colour choice, cargo-style status lines, and task output made harmless.

Pure apart from `Reporter`, which writes to the stream it is given.
"""

from __future__ import annotations

import re
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
            self.stream.write(f"{self._paint(_BOLD_GREEN, verb.rjust(12))} {message}\n")
            self.stream.flush()

    def note(self, message: str) -> None:
        """Detail shown only with -v."""
        if self.verbosity > 0:
            self.status("Info", message)

    def warning(self, message: str) -> None:
        self.stream.write(f"{self._paint(_BOLD_YELLOW, 'warning')}{self._paint(_BOLD, ':')} {message}\n")
        self.stream.flush()

    def error(self, message: str, help: str | None = None) -> None:
        self.stream.write(f"{self._paint(_BOLD_RED, 'error')}{self._paint(_BOLD, ':')} {message}\n")
        if help:
            self.stream.write(f"{self._paint(_BOLD_CYAN, 'help')}{self._paint(_BOLD, ':')} {help}\n")
        self.stream.flush()


# SGR (colours and text style) is the one escape sequence a task may send to a terminal.
_SGR = re.compile(rb"\x1b\[[0-9;:]*m")
_ESCAPE_START = re.compile(rb"\x1b|\xc2[\x80-\x9f]|[\x00-\x08\x0b\x0c\x0e-\x1a\x1c-\x1f\x7f]")
_CSI_TAIL = re.compile(rb"\x1b\[[\x30-\x3f]*[\x20-\x2f]*")
_CARRY_LIMIT = 64


def _caret(byte: int) -> bytes:
    return b"^" + bytes([byte ^ 0x40])


class Neutralizer:
    """Task output -> output that cannot drive the terminal (no OSC, cursor moves, clears).

    Control characters other than tab, newline and carriage return become visible caret
    notation (`^[`), except for the colour sequences a well-behaved task prints. Feed it
    chunks in order: a sequence split across two chunks is still recognised.
    """

    def __init__(self) -> None:
        self._carry = b""

    def feed(self, chunk: bytes) -> bytes:
        data, self._carry = self._carry + chunk, b""
        out, position = [], 0
        for match in _ESCAPE_START.finditer(data):
            start = match.start()
            if start < position:
                continue
            out.append(data[position:start])
            position = start + len(match.group())
            if match.group() == b"\x1b":
                sgr = _SGR.match(data, start)
                if sgr:
                    out.append(sgr.group())
                    position = sgr.end()
                    continue
                partial = _CSI_TAIL.fullmatch(data, start) or data[start:] == b"\x1b"
                if partial and len(data) - start < _CARRY_LIMIT:
                    self._carry = data[start:]
                    return b"".join(out)
                out.append(b"^[")
            elif match.group().startswith(b"\xc2"):
                out.append(b"^[" + bytes([match.group()[1] - 0x40]))  # C1 as ESC + letter
            else:
                out.append(_caret(match.group()[0]))
        if data.endswith(b"\xc2") and position < len(data):
            out.append(data[position:-1])
            self._carry = b"\xc2"
        else:
            out.append(data[position:])
        return b"".join(out)

    def flush(self) -> bytes:
        rest, self._carry = self._carry, b""
        return rest.replace(b"\x1b", b"^[")
