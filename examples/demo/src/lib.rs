//! The demo crate: its tasks live in `tasks/`, and `cargo task codegen` writes
//! `src/generated/tasks.rs`.

pub mod generated;

// TODO: say something about the data in data/ (listed by `cargo task todo`).
