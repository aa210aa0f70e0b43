"""Terminal escape sequences: a task's output on a terminal cannot drive it (OSC 52
clipboard writes, title changes, clears, cursor moves, C1 controls) while colours survive;
piped output stays byte-exact; and the tool itself does not replay hostile text it read
from the project or the command line. Arguments: argv[0] is the task name; non-UTF-8
arguments are handled or rejected clearly.
"""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import time
import tty

from .conftest import CARGO_TASK, describe

SGR = re.compile(rb"\x1b\[[0-9;:]*m")
# the table in tests/security/rust/common/res.rs, as the task prints it
ESCAPES = [
    ("osc52", "\x1b]52;c;cHduZWQgY2xpcGJvYXJk\x07"),
    ("title", "\x1b]0;fake title\x1b\\"),
    ("clear", "\x1b[2J\x1b[H"),
    ("cursor", "\x1b[1A\x1b[2K"),
    ("c1-csi", "\u009b2J"),
    ("bell", "\x07"),
    ("color", "\x1b[1;31mRED\x1b[0m"),
]
PRINTED = "".join(f"<{name}>{sequence}</{name}>\n" for name, sequence in ESCAPES).encode()


def run_on_terminal(args, cwd, env, timeout: float = 120) -> tuple[int, bytes]:
    """Run the tool with stdout and stderr on a pseudo-terminal; -> (exit code, bytes seen)."""
    master, slave = pty.openpty()
    tty.setraw(slave)  # no newline translation: compare bytes as written
    process = subprocess.Popen([CARGO_TASK, *args], cwd=cwd, env={**env, "TERM": "xterm-256color"},
                               stdin=subprocess.DEVNULL, stdout=slave, stderr=slave)  # fmt: skip
    os.close(slave)
    seen = bytearray()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: every writer has gone
                    break
                if not chunk:
                    break
                seen += chunk
            elif process.poll() is not None:
                break
        return process.wait(timeout=10), bytes(seen)
    finally:
        process.kill()
        os.close(master)


def hostile_escapes(data: bytes) -> list[bytes]:
    """Control sequences other than colours (SGR) that reached the terminal."""
    rest = SGR.sub(b"", data)
    found = [m.group() for m in re.finditer(rb"\x1b.{0,8}|\xc2[\x80-\x9f]|\x07", rest, re.S)]
    return found


def test_task_output_on_a_terminal_is_neutralised(arena):
    arena.run("escapes")  # build first
    code, seen = run_on_terminal(["escapes"], arena.project, arena.env)
    assert code == 0, seen
    assert hostile_escapes(seen) == [], seen
    for visible in (b"<osc52>^[]52;c;cHduZWQgY2xpcGJvYXJk^G</osc52>", b"<clear>^[[2J^[[H</clear>",
                    b"<cursor>^[[1A^[[2K</cursor>", b"<c1-csi>^[[2J</c1-csi>", b"<bell>^G</bell>",
                    b"<title>^[]0;fake title^[\\</title>"):  # fmt: skip
        assert seen.count(visible) == 2, (visible, seen)  # once from stdout, once from stderr
    assert seen.count(b"<color>\x1b[1;31mRED\x1b[0m</color>") == 2, seen  # colours survive


def test_piped_output_is_byte_exact(arena):
    result = arena.run("escapes", options=["-q"], text=False)
    assert result.returncode == 0, result
    assert result.stdout == PRINTED
    assert result.stderr == PRINTED


def test_flood_through_the_terminal_filter(arena):
    arena.run("flood", "1", text=False)
    code, seen = run_on_terminal(["-q", "flood", "8"], arena.project, arena.env)
    assert code == 0
    assert len(seen) == 8 << 20, len(seen)


def test_tool_does_not_replay_escape_sequences_from_project_text(small_project):
    """Task descriptions come from the project (a `//!` line, or `description`): listing
    them on a terminal must not let an untrusted repository drive the terminal."""
    small_project.tasks(
        {
            "described": '{ description = "build \\u001b]52;c;cHduZWQ=\\u0007 \\u001b[2J docs" }',
            "documented": "{}",
        },
        documented="//! lint \x1b]0;owned\x07 \x1b[1A\x1b[2K fake prompt\nfn main() {}\n",
    )
    for args in (["--list"], ["--explain", "described"], ["--explain", "documented"]):
        code, seen = run_on_terminal(args, small_project.root, small_project.env)
        assert code == 0, seen
        assert hostile_escapes(seen) == [], (args, seen)


def test_tool_does_not_replay_escape_sequences_from_arguments(arena):
    """The `Running task ...` status line echoes the arguments; on a terminal it must not
    send them raw (the task itself still receives them exactly)."""
    arena.run("args")
    hostile = "\x1b]52;c;cHduZWQ=\x07\x1b[2J"
    code, seen = run_on_terminal(["args", hostile], arena.project, arena.env)
    assert code == 0, seen
    assert b'argv[1] = "\\u{1b}]52;c;cHduZWQ=\\u{7}\\u{1b}[2J"' in seen, seen
    assert hostile_escapes(seen) == [], seen


def test_argv0_is_the_task_name_and_arguments_arrive_intact(arena):
    result = arena.run("args", "--help", "two words", "ünïcödé", "")
    assert result.returncode == 0, describe(result)
    assert result.stdout.splitlines() == [
        'argv[0] = "args"',
        'argv[1] = "--help"',
        'argv[2] = "two words"',
        'argv[3] = "ünïcödé"',
        'argv[4] = ""',
    ]


def test_non_utf8_arguments_are_handled_or_rejected_clearly(arena):
    arena.run("args")
    result = subprocess.run([CARGO_TASK, "args", b"ok", b"bad-\xff\xfe"], cwd=arena.project,
                            env=arena.env, capture_output=True)  # fmt: skip
    stderr = result.stderr.decode("utf-8", "replace")
    assert "Traceback" not in stderr and "internal error" not in stderr, (
        "a non-UTF-8 argument crashed the tool\n" + stderr
    )
    if result.returncode != 0:
        assert "UTF-8" in stderr, stderr
