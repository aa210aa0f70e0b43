//! Raw WASI 0.2 file-system calls through the `wasi` crate, below std and wasi-libc: the
//! calls the 2026 Wasmtime advisories were about. Arguments: `OP|PREOPEN|PATH[|...]`.
use wasi::filesystem::preopens::get_directories;
use wasi::filesystem::types::{Descriptor, DescriptorFlags, ErrorCode, NewTimestamp, OpenFlags, PathFlags};

fn attempt(dirs: &[(Descriptor, String)], op: &str, p: &[&str]) -> Result<String, String> {
    let pre = |name: &str| -> Result<&Descriptor, String> {
        dirs.iter().find(|(_, n)| n == name).map(|(d, _)| d).ok_or_else(|| format!("no-preopen {name:?}"))
    };
    let e = |c: ErrorCode| c.name().to_string();
    let when = NewTimestamp::Timestamp(wasi::clocks::wall_clock::Datetime { seconds: 86_400, nanoseconds: 0 });
    let follow = PathFlags::SYMLINK_FOLLOW;
    let opened = |_| "opened".to_string();
    match op {
        "preopens" => Ok(dirs.iter().map(|(_, n)| n.clone()).collect::<Vec<_>>().join(",")),
        "flags" => pre(p[0])?.get_flags().map(|f| format!("{f:?}")).map_err(e),
        "open-trunc" => pre(p[0])?.open_at(follow, p[1], OpenFlags::TRUNCATE, DescriptorFlags::READ).map(opened).map_err(e),
        "open-trunc-nofollow" => pre(p[0])?.open_at(PathFlags::empty(), p[1], OpenFlags::TRUNCATE, DescriptorFlags::READ).map(opened).map_err(e),
        "open-create" => pre(p[0])?.open_at(follow, p[1], OpenFlags::CREATE, DescriptorFlags::READ).map(opened).map_err(e),
        "open-write" => pre(p[0])?.open_at(follow, p[1], OpenFlags::empty(), DescriptorFlags::WRITE).map(opened).map_err(e),
        "open-read" => pre(p[0])?.open_at(follow, p[1], OpenFlags::empty(), DescriptorFlags::READ).map(opened).map_err(e),
        "read" => {
            let f = pre(p[0])?.open_at(follow, p[1], OpenFlags::empty(), DescriptorFlags::READ).map_err(e)?;
            let (data, _) = f.read(4096, 0).map_err(e)?;
            Ok(format!("{} bytes {:?}", data.len(), String::from_utf8_lossy(&data)))
        }
        "readdir" => {
            let d = pre(p[0])?.open_at(follow, p[1], OpenFlags::DIRECTORY, DescriptorFlags::READ).map_err(e)?;
            let stream = d.read_directory().map_err(e)?;
            let mut names = Vec::new();
            while let Some(entry) = stream.read_directory_entry().map_err(e)? {
                names.push(entry.name);
            }
            names.sort();
            Ok(names.join(","))
        }
        "mutdir" => {
            let d = pre(p[0])?
                .open_at(PathFlags::empty(), p[1], OpenFlags::DIRECTORY, DescriptorFlags::READ | DescriptorFlags::MUTATE_DIRECTORY)
                .map_err(e)?;
            let flags = d.get_flags().map_err(e)?;
            let mkdir = d.create_directory_at("made-by-task").map(|_| "ok".to_string()).map_err(e);
            let create = d
                .open_at(PathFlags::empty(), "created-by-task", OpenFlags::CREATE, DescriptorFlags::READ | DescriptorFlags::WRITE)
                .map(opened)
                .map_err(e);
            let trunc = d.open_at(PathFlags::empty(), p[2], OpenFlags::TRUNCATE, DescriptorFlags::READ).map(opened).map_err(e);
            let unlink = d.unlink_file_at(p[2]).map(|_| "ok".to_string()).map_err(e);
            Ok(format!("flags={flags:?} mkdir={mkdir:?} create={create:?} trunc={trunc:?} unlink={unlink:?}"))
        }
        "settimes-at" => pre(p[0])?.set_times_at(PathFlags::empty(), p[1], when, when).map(|_| "set".into()).map_err(e),
        "settimes-fd" => {
            let f = pre(p[0])?.open_at(PathFlags::empty(), p[1], OpenFlags::empty(), DescriptorFlags::READ).map_err(e)?;
            f.set_times(when, when).map(|_| "set".into()).map_err(e)
        }
        "setsize-fd" => {
            let f = pre(p[0])?.open_at(PathFlags::empty(), p[1], OpenFlags::empty(), DescriptorFlags::READ).map_err(e)?;
            f.set_size(0).map(|_| "truncated".into()).map_err(e)
        }
        "write-fd" => {
            let f = pre(p[0])?.open_at(PathFlags::empty(), p[1], OpenFlags::empty(), DescriptorFlags::READ).map_err(e)?;
            f.write(b"written by the task", 0).map(|n| format!("wrote {n}")).map_err(e)
        }
        "link" => pre(p[0])?.link_at(PathFlags::empty(), p[1], pre(p[2])?, p[3]).map(|_| "linked".into()).map_err(e),
        "rename" => pre(p[0])?.rename_at(p[1], pre(p[2])?, p[3]).map(|_| "renamed".into()).map_err(e),
        "symlink" => pre(p[0])?.symlink_at(p[1], p[2]).map(|_| "symlinked".into()).map_err(e),
        "unlink" => pre(p[0])?.unlink_file_at(p[1]).map(|_| "unlinked".into()).map_err(e),
        "mkdir" => pre(p[0])?.create_directory_at(p[1]).map(|_| "made".into()).map_err(e),
        _ => Err(format!("unknown op {op}")),
    }
}

fn main() {
    let dirs = get_directories();
    for spec in std::env::args().skip(1) {
        let parts: Vec<&str> = spec.split('|').collect();
        match attempt(&dirs, parts[0], &parts[1..]) {
            Ok(detail) => println!("{spec} => OK {detail}"),
            Err(code) => println!("{spec} => ERR {code}"),
        }
    }
}
