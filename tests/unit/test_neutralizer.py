"""terminal.Neutralizer: task output cannot drive the terminal, but colours survive."""

import pytest

from cargo_task.neutralize import Neutralizer
from cargo_task.terminal import use_color


def neutralize(*chunks: bytes) -> bytes:
    n = Neutralizer()
    return b"".join(n.feed(c) for c in chunks) + n.flush()


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        (b"plain text\n", b"plain text\n"),
        (b"\x1b[1;31mred\x1b[0m\n", b"\x1b[1;31mred\x1b[0m\n"),
        (b"tab\tand\r\n", b"tab\tand\r\n"),
        (b"\x1b]52;c;aGVsbG8=\x07", b"^[]52;c;aGVsbG8=^G"),  # OSC 52 clipboard write
        (b"\x1b]0;fake title\x1b\\", b"^[]0;fake title^[\\"),
        (b"\x1b[2J\x1b[H", b"^[[2J^[[H"),  # clear screen, cursor home
        (b"\x1b[5A", b"^[[5A"),  # cursor up: could overwrite the tool's lines
        (b"bell\x07", b"bell^G"),
        (b"\xc2\x9b31m", b"^[[31m"),  # 8-bit CSI
        ("héllo ✓\n".encode(), "héllo ✓\n".encode()),
    ],
)
def test_sequences(raw, shown):
    assert neutralize(raw) == shown


def test_a_colour_split_across_chunks_survives():
    assert neutralize(b"a\x1b[3", b"2mgreen\x1b", b"[0m") == b"a\x1b[32mgreen\x1b[0m"


def test_a_forbidden_sequence_split_across_chunks_is_neutralized():
    assert neutralize(b"x\x1b[", b"2J") == b"x^[[2J"


def test_a_dangling_escape_at_the_end_is_shown():
    assert neutralize(b"end\x1b") == b"end^["


def test_an_endless_sequence_does_not_grow_without_bound():
    out = Neutralizer().feed(b"\x1b[" + b"1" * 100)
    assert out.startswith(b"^[[111")


class FakeTTY:
    def __init__(self, tty: bool):
        self.tty = tty

    def isatty(self):
        return self.tty


@pytest.mark.parametrize(
    ("choice", "environ", "tty", "expected"),
    [
        (None, {}, True, True),
        (None, {}, False, False),
        ("always", {"NO_COLOR": "1"}, False, True),
        ("never", {}, True, False),
        (None, {"NO_COLOR": "1"}, True, False),
        (None, {"CARGO_TERM_COLOR": "always"}, False, True),
        (None, {"CARGO_TERM_COLOR": "never"}, True, False),
        (None, {"TERM": "dumb"}, True, False),
    ],
)
def test_colour_choice_follows_cargo(choice, environ, tty, expected):
    assert use_color(choice, environ, FakeTTY(tty)) is expected
