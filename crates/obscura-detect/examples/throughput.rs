//! Rough throughput of `find` over descriptor-like strings.
//! `cargo run -p obscura-detect --release --example throughput`

use std::time::Instant;

use obscura_detect::{find, Kind, Known};

fn main() {
    let texts = [
        "CT CHEST W CONTRAST",
        "AX T2 FLAIR",
        "SAG T1 MPRAGE",
        "No acute intracranial hemorrhage.",
        "CT chest for John Doe MRN 12345",
        "Read by Dr. Rosalind Inglethorpe on 03/21/2016 at 14:05",
        "PET/CT SKULL BASE TO MID THIGH",
        "Outside films from Mercy General Hospital, (717) 555-0180",
    ];
    let mut known = Known::default();
    known.add(Kind::Name, "DOE^JOHN");
    known.add(Kind::Id, "12345");
    known.add(Kind::Date, "20160321");
    let n = 200_000;
    let start = Instant::now();
    let mut spans = 0;
    for i in 0..n {
        spans += find(texts[i % texts.len()], &known).len();
    }
    let s = start.elapsed().as_secs_f64();
    println!(
        "{n} texts in {s:.2} s: {:.1} µs/text ({spans} spans)",
        s * 1e6 / n as f64
    );
}
