//! Count the names in data/ with a module shared between tasks.
#[path = "../shared/mod.rs"]
mod shared;

fn main() -> std::io::Result<()> {
    let names = shared::names()?;
    println!("{} names in data/names.txt", names.len());
    Ok(())
}
