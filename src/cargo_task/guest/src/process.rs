//! Running a program on the host, as the task's `commands` grant allows.
//!
//! [`Command`] mirrors [`std::process::Command`] for what makes sense from inside the
//! sandbox: a program, its arguments, a working directory and extra environment variables;
//! [`Command::output`] collects the program's output and [`Command::status`] lets it
//! stream to the task's own stdout and stderr. The program reads no input.
//!
//! The host runs the program only if one of the task's `commands` entries matches it: the
//! entry's program name followed by its leading arguments, for example `"git rev-parse"`
//! allows `Command::new("git").args(["rev-parse", "HEAD"])`. Anything else fails with
//! [`io::ErrorKind::PermissionDenied`] and a message naming the grant to add. The program
//! runs confined like the task: it may write only what the task may write.
//!
//! ```no_run
//! use cargo_task::process::Command;
//!
//! # fn main() -> std::io::Result<()> {
//! let status = Command::new("rustfmt").arg("src/generated.rs").status()?;
//! assert!(status.success(), "rustfmt failed: {status}");
//! # Ok(())
//! # }
//! ```

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// A program to run on the host, built up like [`std::process::Command`].
///
/// ```no_run
/// use cargo_task::process::Command;
///
/// # fn main() -> std::io::Result<()> {
/// let head = Command::new("git")
///     .args(["rev-parse", "HEAD"])
///     .current_dir("crates/core")
///     .env("GIT_OPTIONAL_LOCKS", "0")
///     .output()?;
/// println!("{}", String::from_utf8_lossy(&head.stdout).trim());
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Command {
    program: OsString,
    args: Vec<OsString>,
    cwd: Option<PathBuf>,
    env: Vec<(OsString, OsString)>,
}

impl Command {
    /// A command for `program`, with no arguments, the host's choice of working directory
    /// and only the environment the host gives every granted program.
    ///
    /// The name is looked up on the host as the grant describes (for example on the host's
    /// `PATH`); it must be the program name of one of the task's `commands` entries.
    pub fn new<S: AsRef<OsStr>>(program: S) -> Command {
        Command {
            program: program.as_ref().to_owned(),
            args: Vec::new(),
            cwd: None,
            env: Vec::new(),
        }
    }

    /// Adds one argument.
    pub fn arg<S: AsRef<OsStr>>(&mut self, arg: S) -> &mut Command {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    /// Adds several arguments.
    pub fn args<I, S>(&mut self, args: I) -> &mut Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Runs the program in `dir`, named as the task sees it (the same path the task would
    /// give to `std::fs`). It must be inside the project or a directory the task is granted.
    pub fn current_dir<P: AsRef<Path>>(&mut self, dir: P) -> &mut Command {
        self.cwd = Some(dir.as_ref().to_owned());
        self
    }

    /// Sets an environment variable for the program, replacing an earlier value of `key`.
    ///
    /// It is added to the little the host passes on (`PATH`, `HOME`, the toolchain's
    /// variables and the task's own environment grants); the host may refuse variables
    /// that would change which program runs or what it may do.
    pub fn env<K, V>(&mut self, key: K, val: V) -> &mut Command
    where
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        let (key, val) = (key.as_ref(), val.as_ref().to_owned());
        match self.env.iter_mut().find(|(k, _)| k == key) {
            Some(entry) => entry.1 = val,
            None => self.env.push((key.to_owned(), val)),
        }
        self
    }

    /// Sets several environment variables, as [`Command::env`] does for each.
    pub fn envs<I, K, V>(&mut self, vars: I) -> &mut Command
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        for (key, val) in vars {
            self.env(key, val);
        }
        self
    }

    /// The program name given to [`Command::new`].
    pub fn get_program(&self) -> &OsStr {
        &self.program
    }

    /// The arguments added so far.
    pub fn get_args(&self) -> impl Iterator<Item = &OsStr> {
        self.args.iter().map(|a| a.as_os_str())
    }

    /// Runs the program, waits for it and collects everything it wrote.
    ///
    /// An exit code other than 0 is not an error: look at [`Output::status`]. The error
    /// cases are the host's: [`io::ErrorKind::PermissionDenied`] when no grant matches (the
    /// message names the grant to add), [`io::ErrorKind::NotFound`] when the program does
    /// not exist on the host, [`io::ErrorKind::InvalidInput`] for a name, argument or
    /// directory the host cannot accept (or that is not valid UTF-8),
    /// [`io::ErrorKind::TimedOut`] when the task's time ran out while the program ran.
    pub fn output(&mut self) -> io::Result<Output> {
        let reply = self.run(false)?;
        Ok(Output {
            status: ExitStatus(reply.code),
            stdout: reply.stdout,
            stderr: reply.stderr,
        })
    }

    /// Runs the program and waits for it, its output streaming to the task's own stdout
    /// and stderr. Errors as for [`Command::output`].
    pub fn status(&mut self) -> io::Result<ExitStatus> {
        Ok(ExitStatus(self.run(true)?.code))
    }

    fn run(&self, inherit_output: bool) -> io::Result<abi::Reply> {
        let cwd = match &self.cwd {
            Some(dir) => Some(utf8("the working directory", dir.as_os_str())?),
            None => None,
        };
        let request = abi::Request {
            program: utf8("the program name", &self.program)?,
            args: self
                .args
                .iter()
                .map(|a| utf8("an argument", a))
                .collect::<io::Result<_>>()?,
            cwd,
            env: self
                .env
                .iter()
                .map(|(k, v)| Ok((utf8("a variable name", k)?, utf8("a variable's value", v)?)))
                .collect::<io::Result<_>>()?,
            inherit_output,
        };
        abi::run(&request)
    }
}

/// The host's interface carries strings, so what the task passes must be UTF-8.
fn utf8<'a>(what: &str, value: &'a OsStr) -> io::Result<&'a str> {
    value.to_str().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{what} is not valid UTF-8: {value:?}"),
        )
    })
}

/// What a finished program left: its exit status and everything it wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// How the program ended.
    pub status: ExitStatus,
    /// Everything the program wrote to its standard output.
    pub stdout: Vec<u8>,
    /// Everything the program wrote to its standard error.
    pub stderr: Vec<u8>,
}

/// How a program ended: its exit code, if it had one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ExitStatus(Option<i32>);

impl ExitStatus {
    /// Whether the program exited with code 0.
    pub fn success(&self) -> bool {
        self.0 == Some(0)
    }

    /// The program's exit code, or `None` if it was ended by a signal.
    pub fn code(&self) -> Option<i32> {
        self.0
    }
}

/// `exit status: 1`, or `terminated by a signal`, as std writes them on Unix.
impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(code) => write!(f, "exit status: {code}"),
            None => f.write_str("terminated by a signal"),
        }
    }
}

/// The canonical-ABI call of the host's `cargo-task:host/process@0.1.0#run` (wit/host.wit),
/// written by hand so that tasks need no bindings generator.
mod abi {
    use std::io;

    // Outside a task nothing reads a request (see the `run` below).
    #[cfg_attr(
        not(all(target_arch = "wasm32", target_os = "wasi", target_env = "p2")),
        allow(dead_code)
    )]
    pub(super) struct Request<'a> {
        pub program: &'a str,
        pub args: Vec<&'a str>,
        pub cwd: Option<&'a str>,
        pub env: Vec<(&'a str, &'a str)>,
        pub inherit_output: bool,
    }

    pub(super) struct Reply {
        pub code: Option<i32>,
        pub stdout: Vec<u8>,
        pub stderr: Vec<u8>,
    }

    /// `error-kind`, in the order of its cases.
    #[cfg_attr(
        not(all(target_arch = "wasm32", target_os = "wasi", target_env = "p2")),
        allow(dead_code)
    )]
    fn error_kind(case: u8) -> io::ErrorKind {
        match case {
            0 => io::ErrorKind::PermissionDenied,
            1 => io::ErrorKind::NotFound,
            2 => io::ErrorKind::InvalidInput,
            3 => io::ErrorKind::TimedOut,
            _ => io::ErrorKind::Other,
        }
    }

    #[cfg(all(target_arch = "wasm32", target_os = "wasi", target_env = "p2"))]
    pub(super) fn run(request: &Request<'_>) -> io::Result<Reply> {
        imp::run(request)
    }

    #[cfg(not(all(target_arch = "wasm32", target_os = "wasi", target_env = "p2")))]
    pub(super) fn run(_request: &Request<'_>) -> io::Result<Reply> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "cargo_task::process runs programs only from a task run by `cargo task`",
        ))
    }

    #[cfg(all(target_arch = "wasm32", target_os = "wasi", target_env = "p2"))]
    mod imp {
        use super::{error_kind, Reply, Request};
        use std::io;

        // The import's WIT types for wasm-component-ld, in a custom section. Included here,
        // not as a module of its own: the linker takes an object file of the crate only
        // when one of its symbols is needed, and rustc puts a module's items in the same
        // object, so the section is linked exactly when a task calls `run`.
        include!("component_type.rs");

        /// `string`: pointer and length of UTF-8 bytes (8 bytes, align 4).
        #[repr(C)]
        struct Str {
            ptr: *const u8,
            len: usize,
        }

        /// `tuple<string, string>` (16 bytes, align 4).
        #[repr(C)]
        struct Pair {
            key: Str,
            value: Str,
        }

        /// `result<output, error>`: the case in byte 0, the payload from byte 4.
        /// `output`: option<s32> at 4 (case) and 8, stdout at 12/16, stderr at 20/24.
        /// `error`: error-kind at 4, message at 8/12.
        #[repr(C, align(4))]
        struct ReturnArea([u8; 28]);

        // `command` flattens to 10 core values (within the 16 that are passed flat); the
        // result does not fit the one flat result value, so the caller passes a return area.
        #[link(wasm_import_module = "cargo-task:host/process@0.1.0")]
        extern "C" {
            #[link_name = "run"]
            fn host_run(
                program_ptr: *const u8,
                program_len: usize,
                args_ptr: *const Str,
                args_len: usize,
                cwd_is_some: i32,
                cwd_ptr: *const u8,
                cwd_len: usize,
                env_ptr: *const Pair,
                env_len: usize,
                inherit_output: i32,
                ret: *mut ReturnArea,
            );
        }

        fn lower(s: &str) -> Str {
            Str {
                ptr: s.as_ptr(),
                len: s.len(),
            }
        }

        pub(in super::super) fn run(request: &Request<'_>) -> io::Result<Reply> {
            let args: Vec<Str> = request.args.iter().map(|a| lower(a)).collect();
            let env: Vec<Pair> = request
                .env
                .iter()
                .map(|(k, v)| Pair {
                    key: lower(k),
                    value: lower(v),
                })
                .collect();
            let (cwd_is_some, cwd) = match request.cwd {
                Some(dir) => (1, lower(dir)),
                None => (0, lower("")),
            };
            let mut ret = ReturnArea([0; 28]);
            // SAFETY: every pointer refers to memory borrowed for the whole call; the host
            // only reads it and writes the return area.
            unsafe {
                host_run(
                    request.program.as_ptr(),
                    request.program.len(),
                    args.as_ptr(),
                    args.len(),
                    cwd_is_some,
                    cwd.ptr,
                    cwd.len,
                    env.as_ptr(),
                    env.len(),
                    i32::from(request.inherit_output),
                    &mut ret,
                )
            };
            let ret = &ret.0;
            let word =
                |at: usize| u32::from_le_bytes([ret[at], ret[at + 1], ret[at + 2], ret[at + 3]]);
            // SAFETY: the host lowered these lists into this module's memory through
            // `cabi_realloc`, and hands them over: each is read exactly once here.
            unsafe {
                if ret[0] == 0 {
                    Ok(Reply {
                        code: (ret[4] != 0).then(|| word(8) as i32),
                        stdout: take_bytes(word(12), word(16)),
                        stderr: take_bytes(word(20), word(24)),
                    })
                } else {
                    let message = take_bytes(word(8), word(12));
                    let message = String::from_utf8(message)
                        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
                    Err(io::Error::new(error_kind(ret[4]), message))
                }
            }
        }

        /// Owns a list of bytes the host allocated in this module's memory.
        ///
        /// std's `cabi_realloc` for wasm32-wasip2 (library/std/src/sys/pal/wasip2/
        /// cabi_realloc.rs) allocates with the global allocator and the alignment it is
        /// given, 1 for bytes and strings, and returns a dangling pointer without
        /// allocating for length 0: exactly what a `Vec<u8>` of that capacity frees.
        unsafe fn take_bytes(ptr: u32, len: u32) -> Vec<u8> {
            if len == 0 {
                return Vec::new();
            }
            Vec::from_raw_parts(ptr as usize as *mut u8, len as usize, len as usize)
        }
    }
}
