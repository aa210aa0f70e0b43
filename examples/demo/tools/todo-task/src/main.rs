//! List the TODO comments of the Rust files under the directories named (default: `src`).
use std::path::Path;

fn visit(path: &Path, found: &mut Vec<String>) {
    if path.is_dir() {
        let mut entries: Vec<_> = std::fs::read_dir(path).into_iter().flatten().flatten().map(|e| e.path()).collect();
        entries.sort();
        for entry in entries {
            visit(&entry, found);
        }
    } else if path.extension().is_some_and(|e| e == "rs") {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        for (number, line) in text.lines().enumerate() {
            if let Some(at) = line.find("TODO") {
                found.push(format!("{}:{}: {}", path.display(), number + 1, line[at..].trim()));
            }
        }
    }
}

fn main() {
    let mut roots: Vec<String> = std::env::args().skip(1).collect();
    if roots.is_empty() {
        roots.push("src".into());
    }
    let mut found = Vec::new();
    for root in &roots {
        visit(Path::new(root), &mut found);
    }
    for line in &found {
        println!("{line}");
    }
    println!("{} TODO comment(s) under {}", found.len(), roots.join(", "));
}
