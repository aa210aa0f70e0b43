//! Generate the parser's syntax kinds: crates/gql-syntax/src/generated/syntax_kind.rs
//!
//! Written as an xtask's codegen job is (`cargo xtask codegen`): clap for the arguments,
//! the project's root from `CARGO_MANIFEST_DIR`, absolute paths from there. Moved from
//! `xtask/src/main.rs` to `tasks/codegen/main.rs`, one line changed: `root_path()` no longer
//! takes the parent, because an xtask crate lives one level below the root while a task's
//! `CARGO_MANIFEST_DIR` is the root itself.

mod kinds_src;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::{env, fs};

use clap::Parser;

use crate::kinds_src::{KindsSrc, KINDS_SRC};

/// Generate the parser's syntax kinds from tasks/codegen/kinds_src.rs
#[derive(Debug, Parser)]
#[command(name = "codegen")]
struct Codegen {
    /// Fail instead of writing when the generated file is out of date (for CI)
    #[arg(long)]
    check: bool,

    /// Say which files were compared
    #[arg(long, short = 'v')]
    verbose: bool,
}

fn main() -> ExitCode {
    let args = Codegen::parse();
    match args.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

impl Codegen {
    fn run(&self) -> Result<(), String> {
        let syntax_kind_path = root_path().join("crates/gql-syntax/src/generated/syntax_kind.rs");
        if self.verbose {
            eprintln!("project root: {}", root_path().display());
        }
        ensure_file_contents(&syntax_kind_path, &generate_kinds(&KINDS_SRC), self.check)
    }
}

/// The workspace root. In `xtask/` this ended with `.ancestors().nth(1)`.
fn root_path() -> PathBuf {
    Path::new(&env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_owned()))
        .to_path_buf()
}

/// Leave `file` alone if it already says `contents`; otherwise rewrite it, or with `--check`
/// fail without touching it.
fn ensure_file_contents(file: &Path, contents: &str, check: bool) -> Result<(), String> {
    let shown = file.strip_prefix(root_path()).unwrap_or(file).display();
    match fs::read_to_string(file) {
        Ok(old) if normalize_newlines(&old) == normalize_newlines(contents) => {
            eprintln!("{shown} is up to date");
            return Ok(());
        }
        _ => {}
    }
    if check {
        return Err(format!("{shown} is not up to date: run `cargo task codegen` and commit it"));
    }
    if let Some(parent) = file.parent() {
        fs::create_dir_all(parent).map_err(|e| format!("could not create {}: {e}", parent.display()))?;
    }
    fs::write(file, contents).map_err(|e| format!("could not write {}: {e}", file.display()))?;
    eprintln!("{shown} was out of date and has been updated");
    Ok(())
}

fn normalize_newlines(s: &str) -> String {
    s.replace("\r\n", "\n")
}

/// The `SyntaxKind` enum and its lookups, laid out readably as they are written (the xtask
/// piped its output through `rustfmt`, which a task may run only with a `commands` grant).
fn generate_kinds(kinds: &KindsSrc<'_>) -> String {
    let punct: Vec<&str> = kinds.punct.iter().map(|(_, name)| *name).collect();
    let keywords: Vec<String> = kinds.keywords.iter().map(|kw| format!("{}_KW", kw.to_uppercase())).collect();
    let sections: [(&str, Vec<String>); 5] = [
        ("punctuation", punct.iter().map(|s| s.to_string()).collect()),
        ("keywords", keywords.clone()),
        ("literals", kinds.literals.iter().map(|s| s.to_string()).collect()),
        ("tokens", kinds.tokens.iter().map(|s| s.to_string()).collect()),
        ("nodes", kinds.nodes.iter().map(|s| s.to_string()).collect()),
    ];

    let mut out = String::new();
    out.push_str("//! This is a generated file, please do not edit manually. Change\n");
    out.push_str("//! tasks/codegen/kinds_src.rs and run `cargo task codegen`.\n\n");
    out.push_str("#![allow(bad_style, missing_docs, unreachable_pub)]\n");
    out.push_str("/// The kind of a token or of a node of the syntax tree.\n");
    out.push_str("#[non_exhaustive]\n");
    out.push_str("#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]\n");
    out.push_str("#[repr(u16)]\npub enum SyntaxKind {\n");
    out.push_str("    #[doc(hidden)]\n    TOMBSTONE,\n    #[doc(hidden)]\n    EOF,\n");
    for (title, names) in &sections {
        writeln!(out, "    // {title}").unwrap();
        for name in names {
            writeln!(out, "    {name},").unwrap();
        }
    }
    out.push_str("    #[doc(hidden)]\n    __LAST,\n}\n\nuse self::SyntaxKind::*;\n\nimpl SyntaxKind {\n");
    let is = |out: &mut String, what: &str, names: &[String]| {
        writeln!(out, "    pub fn is_{what}(self) -> bool {{\n        matches!(\n            self,").unwrap();
        for (i, name) in names.iter().enumerate() {
            let bar = if i == 0 { "  " } else { "| " };
            writeln!(out, "            {bar}{name}").unwrap();
        }
        out.push_str("        )\n    }\n\n");
    };
    is(&mut out, "punct", &sections[0].1);
    is(&mut out, "keyword", &sections[1].1);
    is(&mut out, "literal", &sections[2].1);
    out.push_str("    pub fn from_keyword(ident: &str) -> Option<SyntaxKind> {\n        let kw = match ident {\n");
    for (text, name) in kinds.keywords.iter().zip(&keywords) {
        writeln!(out, "            {text:?} => {name},").unwrap();
    }
    out.push_str("            _ => return None,\n        };\n        Some(kw)\n    }\n\n");
    out.push_str("    pub fn from_char(c: char) -> Option<SyntaxKind> {\n        let tok = match c {\n");
    for (text, name) in kinds.punct.iter().filter(|(text, _)| text.chars().count() == 1) {
        writeln!(out, "            {:?} => {name},", text.chars().next().unwrap()).unwrap();
    }
    out.push_str("            _ => return None,\n        };\n        Some(tok)\n    }\n}\n");
    out
}
