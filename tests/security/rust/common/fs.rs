//! File-system probe: every argument is one attempt, `OP:PATH` or `OP:PATH:PATH2`.
//! Prints `ARG => OK <detail>` or `ARG => ERR <io::ErrorKind> (<message>)`, one line each.
use std::fs::{self, File, FileTimes, OpenOptions};
use std::io::{self, Write};
use std::time::{Duration, SystemTime};

fn show(data: &[u8]) -> String {
    let head = &data[..data.len().min(200)];
    format!("{} bytes {:?}", data.len(), String::from_utf8_lossy(head))
}

fn attempt(op: &str, a: &str, b: &str) -> io::Result<String> {
    let stamp = FileTimes::new()
        .set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(86_400))
        .set_accessed(SystemTime::UNIX_EPOCH + Duration::from_secs(86_400));
    Ok(match op {
        "read" => show(&fs::read(a)?),
        "readdir" => {
            let mut names = fs::read_dir(a)?
                .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
                .collect::<io::Result<Vec<_>>>()?;
            names.sort();
            names.join(",")
        }
        "stat" => format!("{:?}", fs::metadata(a)?.file_type()),
        "lstat" => format!("{:?}", fs::symlink_metadata(a)?.file_type()),
        "readlink" => fs::read_link(a)?.display().to_string(),
        "write" => {
            fs::write(a, b"written by the task\n")?;
            "written".into()
        }
        "append" => {
            OpenOptions::new().append(true).open(a)?.write_all(b"appended by the task\n")?;
            "appended".into()
        }
        "create" => {
            OpenOptions::new().write(true).create_new(true).open(a)?;
            "created".into()
        }
        "truncate" => {
            OpenOptions::new().write(true).truncate(true).open(a)?;
            "truncated".into()
        }
        "setlen" => {
            File::open(a)?.set_len(0)?;
            "set_len(0)".into()
        }
        "settimes" => {
            File::open(a)?.set_times(stamp)?;
            "times set".into()
        }
        "settimes-w" => {
            OpenOptions::new().write(true).open(a)?.set_times(stamp)?;
            "times set".into()
        }
        "unlink" => {
            fs::remove_file(a)?;
            "removed".into()
        }
        "rmdir" => {
            fs::remove_dir(a)?;
            "removed".into()
        }
        "rmtree" => {
            fs::remove_dir_all(a)?;
            "removed".into()
        }
        "mkdir" => {
            fs::create_dir(a)?;
            "made".into()
        }
        "rename" => {
            fs::rename(a, b)?;
            "renamed".into()
        }
        "hardlink" => {
            fs::hard_link(a, b)?;
            "linked".into()
        }
        "symlink" => {
            #[allow(deprecated)] // std::os::wasi::fs::symlink_path is unstable on wasip2
            fs::soft_link(a, b)?;
            "symlinked".into()
        }
        "copy" => {
            fs::copy(a, b)?;
            "copied".into()
        }
        _ => return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("unknown op {op}"))),
    })
}

pub fn main() {
    for spec in std::env::args().skip(1) {
        let mut parts = spec.splitn(3, ':');
        let op = parts.next().unwrap_or("");
        let a = parts.next().unwrap_or("");
        let b = parts.next().unwrap_or("");
        match attempt(op, a, b) {
            Ok(detail) => println!("{spec} => OK {detail}"),
            Err(e) => println!("{spec} => ERR {:?} ({e})", e.kind()),
        }
    }
}
