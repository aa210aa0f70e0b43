//! What a task run by `cargo task` can ask of the tool that runs it.
//!
//! Every task can use this crate without declaring it: `cargo task` adds it to the package
//! it builds the tasks in. It has one module, [`process`], which runs a program on the host
//! as the task's `commands` grant allows, with an API shaped like [`std::process::Command`]
//! (inside the sandbox `std::process` can start nothing).
//!
//! ```no_run
//! use cargo_task::process::Command;
//!
//! fn main() -> std::io::Result<()> {
//!     let out = Command::new("git").args(["describe", "--tags"]).output()?;
//!     if !out.status.success() {
//!         eprint!("{}", String::from_utf8_lossy(&out.stderr));
//!         std::process::exit(out.status.code().unwrap_or(1));
//!     }
//!     print!("version {}", String::from_utf8_lossy(&out.stdout));
//!     Ok(())
//! }
//! ```
//!
//! with the grant in the project's `Cargo.toml`:
//!
//! ```toml
//! [package.metadata.tasks]
//! version = { commands = ["git describe"] }
//! ```
//!
//! A program the task was not granted fails with an [`std::io::Error`] of kind
//! [`PermissionDenied`](std::io::ErrorKind::PermissionDenied) whose message names the grant
//! to add.
//!
//! The crate builds for any target, so editors and `cargo check` on the host see it too;
//! outside a `wasm32-wasip2` task every call fails with
//! [`Unsupported`](std::io::ErrorKind::Unsupported).

#![warn(missing_docs)]

pub mod process;
