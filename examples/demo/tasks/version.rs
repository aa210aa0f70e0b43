//! Print the project's version from git (`git describe`, `git rev-parse`).
use cargo_task::process::Command;

fn git(args: &[&str]) -> std::io::Result<String> {
    let out = Command::new("git").args(args).output()?;
    if !out.status.success() {
        let why = String::from_utf8_lossy(&out.stderr);
        return Err(std::io::Error::other(format!("git {}: {}", args.join(" "), why.trim())));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn main() -> std::io::Result<()> {
    println!("commit:   {}", git(&["rev-parse", "--short", "HEAD"])?);
    // No `--dirty`: the demo sits below its repository's root, and the task (like its git)
    // sees only the demo's files, so everything else would look changed (see the README).
    println!("describe: {}", git(&["describe", "--always"])?);
    // Not granted: refused with a message that names the grant to add.
    match Command::new("git").args(["log", "-1"]).output() {
        Err(e) => println!("git log:  refused ({:?}): {e}", e.kind()),
        Ok(_) => println!("git log:  ran?!"),
    }
    Ok(())
}
