"""Wasmtime's trap message -> what happened, in the task's terms: a panic, an allocation
beyond the memory limit, a stack overflow (Wasm's or Rust's in linear memory), an abort.

Pure text work on the message and its `wasm backtrace` (the build keeps function names):
knows nothing of Wasmtime's API. With -v the error's `verbose` form adds the backtrace.
"""

from __future__ import annotations

from cargo_task.config import human_size
from cargo_task.errors import SandboxError

# Frames that tell why a task executed `unreachable`. Wasmtime names frames from the
# component's name section, which the build keeps (`strip = "debuginfo"` keeps symbols).
_ALLOC_FAILED = {"__rust_alloc_error_handler", "handle_alloc_error", "rust_oom", "__rdl_oom"}
_PANICKED = {"__rust_start_panic", "rust_panic", "rust_begin_unwind", "begin_panic", "panic_fmt"}
_NO_RUST_BACKTRACE = "RUST_BACKTRACE cannot work in a task: wasm32-wasip2's std takes no backtraces"


def explain_trap(task: str, message: str, memory: int) -> SandboxError:
    """Wasmtime's trap message -> what happened, in the task's terms. The error's `verbose`
    form, shown with -v, adds the Wasm backtrace after the error line."""
    import re

    reason = _trap_reason(message)
    frames = _frames(message)
    called = {word for _, name, _ in frames for word in re.findall(r"\w+", name)}
    see = f"run with `cargo task -v {task}` to see the Wasm backtrace"
    hint: str | None = see
    verbose_hint: str | None = None
    if "call stack exhausted" in reason or _out_of_linear_stack(message, reason, frames):
        where = "" if "call stack exhausted" in reason else " in linear memory"
        what = f"task `{task}` overflowed its stack{where} ({reason})"
        verbose_hint = "look for deep or endless recursion, or large values kept on the stack"
        hint = f"{verbose_hint}; {see}"
    elif "unreachable" not in reason:
        what = f"task `{task}` was stopped by a trap: {reason}"
    elif called & _ALLOC_FAILED:  # before panics: an allocation may fail while panicking
        what = f"task `{task}` ran out of memory: an allocation failed; its memory limit is {human_size(memory)}"
        hint = verbose_hint = "raise the limit with `memory = \"...\"` in the task's table, or --memory for one run"
    elif called & _PANICKED:  # its message is already on stderr, printed by the task
        what = f"task `{task}` panicked"
        hint, verbose_hint = f"{see} ({_NO_RUST_BACKTRACE})", f"{_NO_RUST_BACKTRACE}; the frames above are Wasmtime's"
    elif any(not name.startswith("<wasm function") for _, name, _ in frames):
        what = f"task `{task}` aborted ({reason})"
        hint = f"it called `std::process::abort` or reached `unreachable`; {see}"
    else:  # no function names (a stripped build): the frames cannot tell which
        what = f"task `{task}` was stopped by a trap: {reason}"
        hint = ("the task panicked or aborted; a failed allocation aborts too: its memory "
                f"limit is {human_size(memory)} (`memory = \"...\"` or --memory)")  # fmt: skip
    verbose = (f"{what}\n{_render_backtrace(frames)}", verbose_hint) if frames else None
    return SandboxError(what, help=hint, verbose=verbose)


def _frames(message: str) -> list[tuple[int, str, list[str]]]:
    """Wasmtime's `wasm backtrace` -> (index, readable function name, source locations),
    innermost first. Names lose their module (`x-0123.wasm!`) and the hashes that only
    tell crate versions apart (`std[d123b7a1a2ed1472]::`, `::h0123456789abcdef`)."""
    import re

    frames: list[tuple[int, str, list[str]]] = []
    for line in message.splitlines():
        text = line.strip()
        if text == "Caused by:":  # numbered too, but causes, not frames
            break
        frame = re.match(r"(\d+):\s*(?:0x[0-9a-fA-F]+ - )?(.+)", text)
        if frame:
            index, name = int(frame[1]), frame[2]
        elif frames and text.startswith("- "):  # an inlined function, with debug info
            index, name = frames[-1][0], text[2:]
        elif frames and text.startswith("at "):
            frames[-1][2].append(text)
            continue
        else:
            continue
        module, bang, function = name.partition("!")
        if bang and (module == "<unknown>" or not re.search(r"[\s:<>]", module)):
            name = function
        name = re.sub(r"(?<=\w)\[[0-9a-f]{5,16}\]", "", name)
        frames.append((index, re.sub(r"::h[0-9a-f]{16}$", "", name), []))
    return frames


def _render_backtrace(frames: list[tuple[int, str, list[str]]]) -> str:
    """Rust's short backtrace, from Wasmtime's frames: what lies between the panic machinery
    (`__rust_end_short_backtrace`) and the runtime's start (`__rust_begin_short_backtrace`),
    a run of frames of one function counted rather than listed."""
    names = [name for _, name, _ in frames]
    start = max((i + 1 for i, name in enumerate(names) if "__rust_end_short_backtrace" in name), default=0)
    end = next((i for i in range(start, len(names)) if "__rust_begin_short_backtrace" in names[i]), len(names))
    lines = ["wasm backtrace (innermost call first):"]
    i = start
    while i < end:
        index, name, places = frames[i]
        lines.append(f"{index:>6}: {name}")
        lines += [f"            {place}" for place in places]
        same = i + 1
        while same < end and frames[same][1] == name and frames[same][2] == places:
            same += 1
        if same - i > 1:
            lines.append(f"        ... {same - i - 1} more frames of `{name}`")
        i = same
    if end == len(names) and names and names[-1] != "_start":  # Wasmtime keeps the innermost 20
        lines.append("        ... the outer frames were not recorded")
    return "\n".join(lines)


def _trap_reason(message: str) -> str:
    """`wasm trap: ...` from Wasmtime's message: the causes after the last `Caused by:`
    (numbered or not), never the backtrace above it, whose function names are the task's
    to choose (a name may even hold a newline and a forged `wasm trap:` line)."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    if "Caused by:" in lines:
        lines = lines[len(lines) - lines[::-1].index("Caused by:"):]
    elif lines:
        lines = lines[-1:]
    for line in lines:
        cause = line.partition(": ")[2] if line.partition(":")[0].isdigit() else line
        if cause.startswith("wasm trap:"):
            return cause.removeprefix("wasm trap:").strip()
    return lines[-1] if lines else "unknown"


def _out_of_linear_stack(message: str, reason: str, frames: list[tuple[int, str, list[str]]]) -> bool:
    """An out-of-bounds access that is Rust's stack in linear memory running out: that stack
    lies at the bottom of memory and grows down, so a stack pointer run past address 0
    wraps to just below 4 GiB (the stack is 1 MiB unless the linker was told otherwise:
    16 MiB of margin), and when Wasmtime names no address, the frames show deep recursion.
    Safe Rust has no other way to access memory out of bounds."""
    import re

    if "out of bounds memory access" not in reason:
        return False
    fault = re.search(r"memory fault at wasm address 0x([0-9a-fA-F]+)", message)
    if fault is not None:
        return int(fault[1], 16) >= (1 << 32) - (16 << 20)
    names = [name for _, name, _ in frames]
    return any(names.count(name) >= 8 for name in set(names))
