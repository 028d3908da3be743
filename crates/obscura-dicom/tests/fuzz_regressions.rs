//! Replays, without libFuzzer, the fuzz target's pipeline (fuzz/roundtrip.rs)
//! on every input that once made it fail (fuzz/regressions/*.bin) and on the
//! repo's sample files: none may panic, every written output must read back.

#[path = "../../../fuzz/roundtrip.rs"]
mod roundtrip;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for path in entries.filter_map(|e| e.ok().map(|e| e.path())) {
        if path.is_dir() {
            files_under(&path, out);
        } else {
            out.push(path);
        }
    }
}

#[test]
fn fuzz_regressions_and_samples_roundtrip_without_panic() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut files = Vec::new();
    files_under(&root.join("fuzz/regressions"), &mut files);
    files_under(&root.join("samples"), &mut files);
    files.sort();
    assert!(files.len() >= 8, "the samples are missing");
    let engines = roundtrip::engines();
    let mut failures = Vec::new();
    for path in &files {
        let data = std::fs::read(path).expect("input is readable");
        match catch_unwind(AssertUnwindSafe(|| roundtrip::roundtrip(&engines, &data))) {
            Ok(Ok(())) => {}
            Ok(Err(reason)) => failures.push(format!("{}: {reason}", path.display())),
            Err(_) => failures.push(format!("{}: panicked", path.display())),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
