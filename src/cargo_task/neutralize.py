"""Task output made harmless for a terminal: no OSC, cursor moves or screen clears.

`Neutralizer` is pure; `TerminalFilter` runs it on a thread between the task and a terminal.
Used only when the task's stdout or stderr is a terminal; piped output stays exact.
"""

from __future__ import annotations

import os
import re
import threading

DRAIN_SECONDS = 5.0  # how long the filter may take to pass on what the task wrote

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


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view) :]
        except BlockingIOError:  # a terminal left in non-blocking mode
            import select

            select.select([], [fd], [], 1.0)


class TerminalFilter:
    """A pipe whose far end Wasmtime writes; a thread neutralizes it onto a terminal."""

    def __init__(self, target: int):
        self._read_end, self.write_end = os.pipe()
        self.path = f"/dev/fd/{self.write_end}"
        self._guest_done = threading.Event()
        self.thread = threading.Thread(target=self._pump, args=(target,), daemon=True)
        self.thread.start()

    def _pump(self, target: int) -> None:
        import select

        neutralizer = Neutralizer()
        try:
            while True:
                if select.select([self._read_end], [], [], 0.05)[0]:
                    chunk = os.read(self._read_end, 65536)
                    if not chunk:
                        break
                    _write_all(target, neutralizer.feed(chunk))
                elif self._guest_done.is_set():  # its writes were synchronous: all read now
                    break
            _write_all(target, neutralizer.flush())
        except OSError:
            pass  # the terminal went away: there is no one left to show the output to
        finally:
            os.close(self._read_end)

    def opened(self) -> None:
        os.close(self.write_end)  # Wasmtime holds its own descriptor now

    def finish(self) -> None:
        self._guest_done.set()
        self.thread.join(timeout=DRAIN_SECONDS)
