//! Print a greeting and the arguments the task was given.
fn main() {
    let args: Vec<String> = std::env::args().collect();
    println!("Hello from `{}` inside the sandbox!", args[0]);
    for (i, arg) in args.iter().enumerate().skip(1) {
        println!("  arg {i}: {arg}");
    }
}
