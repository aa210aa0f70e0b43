"""Time one Wasmtime compile of a WASI component: `python compile_component.py FILE.wasm`.

Prints the seconds that compiling and serializing the component took, excluding the
interpreter's start, the loading of Wasmtime and the engine's creation: the "one Wasmtime
compile" that a cold `cargo task` run is compared with. It is cargo-task's own
(`sandbox.compile_component`, with `sandbox.engine()`) when cargo_task can be imported, so
both sides generate the same code; otherwise the `wasmtime` package's
`Component(engine, wasm).serialize()` with the same engine settings.
"""

import sys
import time
from pathlib import Path


def compiler(wasm: bytes):
    try:
        from cargo_task import sandbox
    except ImportError:
        import wasmtime
        from wasmtime import component

        config = wasmtime.Config()
        config.epoch_interruption = True  # what cargo-task 0.3 sets
        engine = wasmtime.Engine(config)
        return lambda: component.Component(engine, wasm).serialize()
    sandbox.engine()  # loaded and created before the clock starts
    return lambda: sandbox.compile_component(wasm, "bench")


def main() -> None:
    compile_once = compiler(Path(sys.argv[1]).read_bytes())
    start = time.perf_counter()
    compile_once()
    print(f"{time.perf_counter() - start:.6f}")


if __name__ == "__main__":
    main()
