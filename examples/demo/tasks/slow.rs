//! Sleep longer than its 2s time limit allows: shows the sandbox stopping it.
fn main() {
    println!("sleeping for a minute...");
    std::thread::sleep(std::time::Duration::from_secs(60));
    println!("never printed");
}
