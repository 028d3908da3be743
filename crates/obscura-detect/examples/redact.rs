//! Redact each line of standard input and print it: a quick way to see what
//! the detectors do to a phrase (`cargo run --release --example redact`).

use std::io::BufRead;

fn main() {
    let known = obscura_detect::Known::default();
    for line in std::io::stdin().lock().lines().map_while(Result::ok) {
        let findings = obscura_detect::find(&line, &known);
        println!("{}", obscura_detect::redact(&line, &findings));
    }
}
