"""Time one Wasmtime compile of a WASI component: `python compile_component.py FILE.wasm`.

Prints the seconds that `Component(engine, wasm).serialize()` took, excluding the
interpreter's start and the import of wasmtime: the "one Wasmtime compile" that a cold
`cargo task` run is compared with. The engine is cargo-task's own (`sandbox.engine()`)
when it can be imported, so both sides generate the same code.
"""

import sys
import time
from pathlib import Path


def engine():
    try:
        from cargo_task.sandbox import engine as cargo_task_engine
    except ImportError:
        import wasmtime

        config = wasmtime.Config()
        config.epoch_interruption = True  # what cargo-task 0.3 sets
        return wasmtime.Engine(config)
    return cargo_task_engine()


def main() -> None:
    from wasmtime import component

    wasm = Path(sys.argv[1]).read_bytes()
    chosen = engine()
    start = time.perf_counter()
    component.Component(chosen, wasm).serialize()
    print(f"{time.perf_counter() - start:.6f}")


if __name__ == "__main__":
    main()
