//! Resource exhaustion, processes, environment and output.
use std::hint::black_box;
use std::io::{self, Read, Write};
use std::time::Duration;

pub fn spin() {
    println!("spinning");
    let mut n: u64 = 0;
    loop {
        n = black_box(n.wrapping_add(1));
    }
}

pub fn sleep_forever() {
    println!("sleeping");
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

pub fn read_stdin() {
    println!("reading stdin");
    let mut data = Vec::new();
    match io::stdin().read_to_end(&mut data) {
        Ok(n) => println!("stdin => OK {n} bytes {:?}", String::from_utf8_lossy(&data)),
        Err(e) => println!("stdin => ERR {:?} ({e})", e.kind()),
    }
}

/// `try`: grow with try_reserve and report where the allocator gave up;
/// otherwise grow until the allocation fails (an abort, so a trap).
pub fn hog() {
    let careful = std::env::args().nth(1).as_deref() == Some("try");
    let mut blocks: Vec<Vec<u8>> = Vec::new();
    for mib in 1..=4096usize {
        let mut block: Vec<u8> = Vec::new();
        if careful {
            if let Err(e) = block.try_reserve_exact(1 << 20) {
                println!("hog => ERR allocation refused after {} MiB ({e})", mib - 1);
                return;
            }
        } else {
            block.reserve_exact(1 << 20);
        }
        block.resize(1 << 20, mib as u8);
        blocks.push(black_box(block));
        if mib % 16 == 0 {
            eprintln!("hog: holding {mib} MiB");
        }
    }
    println!("hog => OK holding 4096 MiB");
}

fn dive(depth: u64) -> u64 {
    let frame = black_box([depth as u8; 512]);
    if depth == u64::MAX {
        return 0;
    }
    dive(depth + 1).wrapping_add(frame[(depth % 512) as usize] as u64)
}

fn dive_light(depth: u64) -> u64 {
    if black_box(depth) == u64::MAX {
        return 0;
    }
    dive_light(depth + 1).wrapping_add(1)
}

pub fn recurse() {
    let light = std::env::args().nth(1).as_deref() == Some("light");
    println!("recursing");
    let n = if light { dive_light(0) } else { dive(0) };
    println!("recurse => OK returned {n}");
}

/// `flood MIB [stderr]`: write MIB mebibytes of a known pattern.
pub fn flood() {
    let mib: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(50);
    let to_stderr = std::env::args().nth(2).as_deref() == Some("stderr");
    let chunk: Vec<u8> = (0..1usize << 20).map(|i| b"0123456789abcdef"[i % 16]).collect();
    let result = if to_stderr {
        let mut out = io::stderr().lock();
        (0..mib).try_for_each(|_| out.write_all(&chunk)).and_then(|_| out.flush())
    } else {
        let mut out = io::stdout().lock();
        (0..mib).try_for_each(|_| out.write_all(&chunk)).and_then(|_| out.flush())
    };
    if let Err(e) = result {
        eprintln!("flood => ERR {:?} ({e})", e.kind());
    }
}

pub fn spawn() {
    let marker = std::env::args().nth(1).unwrap_or_else(|| "/tmp/cargo-task-spawned".into());
    let attempts: [(&str, io::Result<String>); 3] = [
        (
            "sh",
            std::process::Command::new("/bin/sh")
                .args(["-c", &format!("echo spawned > {marker}")])
                .status()
                .map(|s| s.to_string()),
        ),
        (
            "true",
            std::process::Command::new("true").spawn().map(|c| format!("pid {}", c.id())),
        ),
        (
            "output",
            std::process::Command::new("id").output().map(|o| String::from_utf8_lossy(&o.stdout).into_owned()),
        ),
    ];
    for (what, result) in attempts {
        match result {
            Ok(detail) => println!("spawn-{what} => OK {detail}"),
            Err(e) => println!("spawn-{what} => ERR {:?} ({e})", e.kind()),
        }
    }
}

pub fn env_vars() {
    let mut vars: Vec<(String, String)> = std::env::vars().collect();
    vars.sort();
    if vars.is_empty() {
        println!("(no environment variables)");
    }
    for (name, value) in vars {
        println!("{name}={value}");
    }
}

pub fn args() {
    for (i, arg) in std::env::args_os().enumerate() {
        println!("argv[{i}] = {arg:?}");
    }
}

/// Sequences a hostile task might send a terminal, then ordinary coloured text.
pub const ESCAPES: &[(&str, &str)] = &[
    ("osc52", "\x1b]52;c;cHduZWQgY2xpcGJvYXJk\x07"),
    ("title", "\x1b]0;fake title\x1b\\"),
    ("clear", "\x1b[2J\x1b[H"),
    ("cursor", "\x1b[1A\x1b[2K"),
    ("c1-csi", "\u{9b}2J"),
    ("bell", "\x07"),
    ("color", "\x1b[1;31mRED\x1b[0m"),
];

pub fn escapes() {
    let mut all = String::new();
    for (name, sequence) in ESCAPES {
        all.push_str(&format!("<{name}>{sequence}</{name}>\n"));
    }
    print!("{all}");
    io::stdout().flush().unwrap();
    eprint!("{all}");
}
