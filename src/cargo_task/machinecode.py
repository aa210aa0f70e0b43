"""A task's machine code: which Wasmtime compiler makes it, from the cache or compiled now.

`tiered` (the default): Winch for code that was just built, Cranelift's code (compiled in
the background after the run, `tierup.py`) once it is in the cache. `winch` or `cranelift`
(`CARGO_TASK_COMPILER`) use that compiler alone (tests, measurements). Local and published
tasks alike get their code here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from cargo_task.errors import ConfigError, TaskError

if TYPE_CHECKING:
    from cargo_task.cache import Cache
    from cargo_task.sandbox import Compiled
    from cargo_task.terminal import Reporter

COMPILER_VARIABLE = "CARGO_TASK_COMPILER"
# Each choice, and the compilers whose code it takes from the cache, preferred first; the
# last is the one that compiles what was just built.
COMPILERS = {"tiered": ("cranelift", "winch"), "winch": ("winch",), "cranelift": ("cranelift",)}


def compiler_choice(environ: dict[str, str]) -> str:
    choice = environ.get(COMPILER_VARIABLE) or "tiered"
    if choice not in COMPILERS:
        raise ConfigError(f"{COMPILER_VARIABLE}={choice!r} is not a compiler cargo-task knows",
                          help="use `tiered` (the default), `winch` or `cranelift`")  # fmt: skip
    return choice


def compiler_for_build(compiler: str) -> str:
    """`--build` makes the code warm runs prefer: Cranelift's, unless one compiler was chosen."""
    return "cranelift" if compiler == "tiered" else compiler


def cached_code(cache: Cache, wasm: str, compiler: str) -> Compiled | None:
    """The machine code of the wasm with SHA-256 `wasm`, from the first strategy the choice
    prefers that has it in the cache."""
    from cargo_task import sandbox
    from cargo_task.cache import component_key

    for strategy in COMPILERS[compiler]:
        code = cache.load_component(component_key(wasm, sandbox.engine_id(strategy)))
        if code is not None:
            return sandbox.Compiled(code, strategy, wasm)
    return None


def compile_wasm(cache: Cache, wasm: bytes, name: str, compiler: str, reporter: Reporter,
                 trust_cache: bool) -> Compiled:  # fmt: skip
    """The machine code of a just-built wasm: from the cache when the same wasm was compiled
    before, else compiled now (tiered: Winch now, Cranelift after the run) and kept."""
    from cargo_task import sandbox
    from cargo_task.cache import component_key, wasm_digest

    digest = wasm_digest(wasm)
    payload = cached_code(cache, digest, compiler) if trust_cache else None
    if payload is None:
        strategy = COMPILERS[compiler][-1]
        reporter.status("Compiling", f"`{name}` to native code with Wasmtime ({strategy})")
        try:
            code = sandbox.compile_component(wasm, name, strategy)
        except TaskError:
            if strategy == "cranelift" or compiler == "winch":
                raise
            strategy = "cranelift"  # Winch does not support every feature Cranelift does
            code = sandbox.compile_component(wasm, name, strategy)
        payload = sandbox.Compiled(code, strategy, digest)
        key = component_key(digest, sandbox.engine_id(strategy))
        keep_in_cache(reporter, lambda: cache.save_component(key, payload.code))
    return payload


def keep_in_cache(reporter: Reporter, save: Callable[[], None]) -> None:
    """A cache that cannot be written costs the next run a rebuild, not this run its task."""
    try:
        save()
    except OSError as e:
        reporter.warning(f"could not write cargo-task's cache ({e.filename}: {e.strerror}); "
                         "the next run will build again")  # fmt: skip
