"""Task output made harmless for a terminal: no OSC, cursor moves or screen clears.

Pure. Used only when the task's stdout or stderr is a terminal; piped output stays exact.
"""

from __future__ import annotations

import re

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
