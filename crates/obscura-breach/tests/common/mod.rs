//! What the ground-truth test and the `gen_log` example share: a seeded
//! generator and the devset's files.
#![allow(dead_code)]

use std::path::PathBuf;

/// splitmix64: a small seeded generator, no dependency.
pub struct Rng(pub u64);

impl Rng {
    /// A number below `n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) % n
    }
}

/// The devset's DICOM files (real files nobody here wrote), sorted.
pub fn devset() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/devset/data/data");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("the devset")
        .map(|e| e.expect("a folder entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "dcm"))
        .collect();
    files.sort();
    files
}
