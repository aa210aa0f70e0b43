fn main() {
    let who = std::env::args().nth(1).unwrap_or_else(|| "world".into());
    println!("Greetings, {who}! (from the greeter member's own task)");
}
