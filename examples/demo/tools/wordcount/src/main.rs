//! Count the lines and words of the files named on the command line (read-only: the
//! default grants are enough).
fn main() {
    let mut failed = false;
    for path in std::env::args().skip(1) {
        match std::fs::read_to_string(&path) {
            Ok(text) => println!("{:>6} lines {:>6} words  {path}", text.lines().count(), text.split_whitespace().count()),
            Err(e) => {
                eprintln!("{path}: {e}");
                failed = true;
            }
        }
    }
    std::process::exit(failed as i32);
}
