"""Resources and processes: runaway CPU, blocking host calls, memory, stack, output floods,
Ctrl-C, and spawning programs. The tool must survive each with a clear message and exit code.
"""

from __future__ import annotations

import signal
import subprocess
import threading
import time

import pytest

from .conftest import CARGO_TASK, describe

TIMEOUT_EXIT = 124


def _clean(result) -> None:
    """The tool reported the failure itself: no Python traceback, no internal error."""
    assert "Traceback" not in result.stderr, describe(result)
    assert "internal error" not in result.stderr, describe(result)
    assert "panic in a function that cannot unwind" not in result.stderr, describe(result)


def _built(arena, task):
    """Build (and compile) a task before a timed run, so that only the run is timed."""
    result = arena.run(task, options=["--timeout", "0.05s"], stdin=b"")
    assert "could not compile" not in result.stderr, describe(result)


@pytest.mark.parametrize(("task", "said"), [("spin", "spinning"), ("sleeper", "sleeping")])
def test_infinite_loop_and_sleep_forever_end_at_the_timeout(arena, task, said):
    """A busy loop (the epoch interrupts it) and a sleep (only the watchdog ends it)."""
    _built(arena, task)
    result = arena.run(task, timeout=60)  # a hang fails the test (TimeoutExpired); no timing is asserted
    assert result.returncode == TIMEOUT_EXIT, describe(result)
    assert f"error: task `{task}` did not finish within its time limit of 1s" in result.stderr
    assert result.stdout == f"{said}\n"
    _clean(result)


def test_blocking_read_of_a_silent_stdin_ends_at_the_timeout(arena):
    _built(arena, "stdin_read")
    process = subprocess.Popen(
        [CARGO_TASK, "stdin_read"], cwd=arena.project, env=arena.env,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:  # stdin stays open and silent until the tool has exited
        stdout, stderr = _wait_silent(process)
    finally:
        process.kill()
        process.stdin.close()
    assert process.returncode == TIMEOUT_EXIT, (process.returncode, stdout, stderr)
    assert "error: task `stdin_read` did not finish within its time limit of 1s" in stderr
    assert stdout == "reading stdin\n"


def _wait_silent(process):
    """Wait for the process without ever writing to or closing its stdin."""
    chunks = {"out": b"", "err": b""}

    def drain(name, stream):
        chunks[name] = stream.read()

    threads = [threading.Thread(target=drain, args=("out", process.stdout)),
               threading.Thread(target=drain, args=("err", process.stderr))]  # fmt: skip
    for thread in threads:
        thread.start()
    process.wait(timeout=60)
    for thread in threads:
        thread.join(timeout=10)
    return chunks["out"].decode(), chunks["err"].decode()


def test_stdin_grant_false_gives_an_empty_stdin(arena):
    result = arena.run("stdin_none", stdin=b"typed by the user: hunter2\n")
    assert result.returncode == 0, describe(result)
    assert result.stdout == 'reading stdin\nstdin => OK 0 bytes ""\n', describe(result)


def test_memory_growth_ends_at_the_memory_limit(arena):
    result = arena.run("hog", timeout=120)
    assert result.returncode == 101, describe(result)
    assert "error: task `hog` ran out of memory" in result.stderr, describe(result)
    assert "memory limit is 64 MiB" in result.stderr, describe(result)
    assert "memory allocation of" in result.stderr  # the task's own report of the failure
    assert "hog: holding 64 MiB" not in result.stderr
    _clean(result)


def test_allocation_failure_is_seen_by_the_task_at_the_limit(arena):
    result = arena.run("hog", "try", timeout=120)
    assert result.returncode == 0, describe(result)
    refused = result.stdout.strip()
    assert refused.startswith("hog => ERR allocation refused after "), describe(result)
    mib = int(refused.split("after ")[1].split(" MiB")[0])
    assert 32 <= mib < 64, refused


def test_deep_recursion_traps_cleanly(arena):
    for variant in ((), ("light",)):
        result = arena.run("recurse", *variant, timeout=120)
        assert result.returncode == 101, describe(result)
        assert "error: task `recurse` overflowed its stack" in result.stderr, describe(result)
        assert "recurse => OK" not in result.stdout
        _clean(result)


def test_output_flood_on_a_pipe(arena):
    arena.run("flood", "1", text=False)
    result = arena.run("flood", "50", text=False, timeout=120)
    assert result.returncode == 0, (result.returncode, result.stderr[-2000:])
    assert len(result.stdout) == 50 << 20
    assert result.stdout[:32] == b"0123456789abcdef" * 2
    assert result.stdout[-16:] == b"0123456789abcdef"

    result = arena.run("flood", "10", "stderr", text=False, timeout=120)
    assert result.returncode == 0, result.returncode
    assert result.stderr.count(b"0123456789abcdef") == (10 << 20) // 16


def test_output_flood_into_a_closed_pipe(arena):
    """`cargo task flood | head -c 100`: the reader goes away; the tool must not hang."""
    process = subprocess.Popen(
        [CARGO_TASK, "-q", "flood", "200"], cwd=arena.project, env=arena.env,
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    head = process.stdout.read(100)
    process.stdout.close()
    try:
        process.wait(timeout=60)
    finally:
        process.kill()
    stderr = process.stderr.read().decode()
    assert head == b"0123456789abcdef" * 6 + b"0123"
    assert "Traceback" not in stderr and "internal error" not in stderr, stderr


def _interrupt_once(arena, task: str, delay: float, outcomes: list) -> None:
    process = subprocess.Popen(
        [CARGO_TASK, task], cwd=arena.project, env=arena.env,
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        line = process.stdout.readline()  # the guest is running
        time.sleep(delay)
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)  # a hang fails the test; no timing is asserted
        outcomes.append((process.returncode, line, process.stderr.read().decode()))
    finally:
        process.kill()


def test_ctrl_c_stops_the_task(arena):
    """Ctrl-C at any moment of the run: exit 130 with the tool's message, never a crash.
    An interrupt right after the guest starts and a later one take different paths, and
    races show only sometimes: so thirty runs, ten side by side, are each interrupted once."""
    _built(arena, "sleeper_long")
    outcomes: list = []
    for _ in range(3):
        threads = [threading.Thread(target=_interrupt_once, args=(arena, "sleeper_long", delay, outcomes))
                   for delay in [0.0] * 7 + [0.05, 0.3, 0.6]]  # fmt: skip
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    assert len(outcomes) == 30
    assert all(line == b"sleeping\n" for _, line, _ in outcomes), outcomes
    failures = [(code, stderr) for code, _, stderr in outcomes
                if code != 130 or "error: task `sleeper_long` was interrupted" not in stderr]  # fmt: skip
    assert not failures, (
        f"{len(failures)} of {len(outcomes)} interrupts did not end with exit 130 and the "
        "message (a negative code is the signal that killed the tool, -11 = SIGSEGV):\n"
        + "\n".join(f"exit {code}: {stderr[-600:]}" for code, stderr in failures)
    )


def test_spawning_processes_fails(arena):
    marker = arena.tmpdir.parent / "spawned-marker"
    with arena.unchanged():
        result = arena.run("spawn", str(marker))
    assert result.returncode == 0, describe(result)
    seen = dict(line.split(" => ", 1) for line in result.stdout.splitlines())
    for attempt in ("spawn-sh", "spawn-true", "spawn-output"):
        assert seen[attempt].startswith("ERR Unsupported"), (attempt, seen[attempt])
    assert not marker.exists()


@pytest.mark.parametrize("compiler", ["cranelift", "winch"])
def test_limits_and_ctrl_c_hold_on_each_compilers_code(arena, compiler):
    """The epoch (timeout, Ctrl-C), the memory limit and the stack guard stop a task the same
    way whichever compiler made its machine code (the suite runs Winch's by default)."""
    chosen = {"CARGO_TASK_COMPILER": compiler}
    spin = arena.run("spin", timeout=60, extra_env=chosen)
    assert spin.returncode == TIMEOUT_EXIT, describe(spin)
    assert "error: task `spin` did not finish within its time limit of 1s" in spin.stderr
    hog = arena.run("hog", timeout=120, extra_env=chosen)
    assert hog.returncode == 101 and "error: task `hog` ran out of memory" in hog.stderr, describe(hog)
    recurse = arena.run("recurse", timeout=120, extra_env=chosen)
    assert recurse.returncode == 101 and "overflowed its stack" in recurse.stderr, describe(recurse)
    for result in (spin, hog, recurse):
        _clean(result)
    # Ctrl-C while the guest spins in wasm code: only the epoch can stop it.
    process = subprocess.Popen(
        [CARGO_TASK, "--timeout", "60s", "spin"], cwd=arena.project, env={**arena.env, **chosen},
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert process.stdout.readline() == b"spinning\n"
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
    finally:
        process.kill()
    stderr = process.stderr.read().decode()
    assert process.returncode == 130 and "error: task `spin` was interrupted" in stderr, stderr
