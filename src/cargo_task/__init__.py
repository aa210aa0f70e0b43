"""cargo-task-wasm: run a Rust project's `tasks/` in a WebAssembly sandbox."""

__version__ = "0.5.0"
