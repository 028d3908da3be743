//! Fuzz target: any bytes → read → de-identify → write → read back
//! (see ../roundtrip.rs). Errors are fine; a panic, abort, timeout, OOM or a
//! written output that does not read back is a finding.

#![no_main]

#[path = "../roundtrip.rs"]
mod roundtrip;

use libfuzzer_sys::fuzz_target;
use obscura_deid::Deidentifier;
use std::sync::OnceLock;

fuzz_target!(|data: &[u8]| {
    static ENGINES: OnceLock<[Deidentifier; 2]> = OnceLock::new();
    let engines = ENGINES.get_or_init(roundtrip::engines);
    if let Err(e) = roundtrip::roundtrip(engines, data) {
        panic!("{e}");
    }
});
