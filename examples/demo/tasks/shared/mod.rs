//! Code shared by several tasks (a module, not a task).

/// The names listed in `data/names.txt`, one per line.
pub fn names() -> std::io::Result<Vec<String>> {
    let text = std::fs::read_to_string("data/names.txt")?;
    Ok(text.lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect())
}
