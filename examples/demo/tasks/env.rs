//! Show the environment variables the task was granted (an allowlist in Cargo.toml).
fn main() {
    let mut vars: Vec<(String, String)> = std::env::vars().collect();
    vars.sort();
    if vars.is_empty() {
        println!("(no environment variables)");
    }
    for (name, value) in vars {
        println!("{name}={value}");
    }
}
