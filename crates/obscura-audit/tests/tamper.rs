//! Fault injection (issue 12): 100 seeded logs for each of 10 kinds of
//! tampering. Each altered log is verified twice: with the witness's
//! checkpoints newer than the change (must be `Tampered`, every time), and
//! with only those older than the change (must never be `Ok`: `Unanchored`,
//! or `Tampered` when the stored checkpoints or the files already show it).
//! Seeds run in parallel, on tmpfs when there is one.
//!
//! The attacker is careful where it can be: records inserted, deleted or
//! swapped are renumbered and re-serialised canonically, segments rewritten
//! under consistent names, and the stored checkpoints that would betray the
//! change removed (the latest one replaced by the newest that survives). The
//! fork is made by an insider holding the signing key: every stored
//! checkpoint of the forked history is validly signed.

mod common;

use common::*;
use obscura_audit::merkle::leaf_hash;
use obscura_audit::{verify, Record, Signer, Verdict};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const SEEDS: u64 = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    FlipRecordByte,
    FlipStoredHash,
    DeleteRecord,
    InsertRecord,
    SwapRecords,
    TruncateTail,
    RemoveSegment,
    Fork,
    ForeignKey,
    ReplayOldCheckpoint,
}

const KINDS: [Kind; 10] = [
    Kind::FlipRecordByte,
    Kind::FlipStoredHash,
    Kind::DeleteRecord,
    Kind::InsertRecord,
    Kind::SwapRecords,
    Kind::TruncateTail,
    Kind::RemoveSegment,
    Kind::Fork,
    Kind::ForeignKey,
    Kind::ReplayOldCheckpoint,
];

struct Pristine {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    witness: PathBuf,
    events: usize,
    every: u64,
    seg: u64,
}

fn pristine(seed: u64) -> Pristine {
    let tmp = scratch();
    let (dir, witness) = (tmp.path().join("log"), tmp.path().join("witness"));
    let mut rng = Rng(seed);
    let events = rng.range(60, 160) as usize;
    let every = rng.range(8, 25);
    let seg = rng.range(20, 45);
    let evs: Vec<_> = (0..events as u64).map(|i| event(&mut rng, i)).collect();
    write_log(config(&dir, &witness, every, seg), signer(), &evs);
    Pristine {
        _tmp: tmp,
        dir,
        witness,
        events,
        every,
        seg,
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

fn sorted_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

fn size_of(note: &Path) -> u64 {
    note.file_stem().unwrap().to_str().unwrap().parse().unwrap()
}

fn read_lines(dir: &Path) -> Vec<String> {
    sorted_files(&dir.join("segments"))
        .iter()
        .flat_map(|p| {
            std::fs::read_to_string(p)
                .unwrap()
                .lines()
                .map(String::from)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Rewrite the segments as the writer would have: renumbered, canonical,
/// `seg` records per file named by their first index.
fn write_lines(dir: &Path, lines: &[String], seg: u64) {
    let sd = dir.join("segments");
    std::fs::remove_dir_all(&sd).unwrap();
    std::fs::create_dir_all(&sd).unwrap();
    for (k, chunk) in lines.chunks(seg as usize).enumerate() {
        let first = k as u64 * seg;
        let mut text = String::new();
        for (j, line) in chunk.iter().enumerate() {
            let mut r = Record::from_line(line.as_bytes()).unwrap();
            r.seq = first + j as u64;
            text.push_str(&r.to_line());
            text.push('\n');
        }
        std::fs::write(sd.join(format!("{first:020}.jsonl")), text).unwrap();
    }
}

/// Remove the stored checkpoints that cover record `p` (size > p) and make
/// the newest survivor the latest.
fn drop_checkpoints_covering(dir: &Path, p: u64) {
    let mut newest = None;
    for f in sorted_files(&dir.join("checkpoints")) {
        if size_of(&f) > p {
            std::fs::remove_file(&f).unwrap();
        } else {
            newest = Some(f);
        }
    }
    match newest {
        Some(f) => {
            std::fs::copy(f, dir.join("checkpoint")).unwrap();
        }
        None => std::fs::remove_file(dir.join("checkpoint")).unwrap(),
    }
}

fn forged(rng: &mut Rng, i: u64) -> String {
    let mut e = event(rng, i);
    e.actor.principal = "mallory".into();
    Record { seq: i, event: e }.to_line()
}

/// Rebuild the whole log from (altered) records with `signer`, as an
/// insider would: every stored checkpoint validly signed by it.
fn rebuild(p: &Pristine, dir: &Path, lines: &[String], signer: Signer) {
    let events: Vec<_> = lines
        .iter()
        .map(|l| Record::from_line(l.as_bytes()).unwrap().event)
        .collect();
    std::fs::remove_dir_all(dir).unwrap();
    let throwaway = dir.with_extension("witness-of-fork");
    write_log(config(dir, &throwaway, p.every, p.seg), signer, &events);
}

/// Apply one tampering to a copy at `dir`; returns the index of the first
/// record the change affects (a checkpoint of size > it is "newer").
fn tamper(kind: Kind, p: &Pristine, dir: &Path, rng: &mut Rng) -> u64 {
    let n = p.events as u64;
    let mut lines = read_lines(dir);
    match kind {
        Kind::FlipRecordByte => {
            let r = rng.below(n);
            let segs = sorted_files(&dir.join("segments"));
            let (path, first) = segs
                .iter()
                .map(|s| (s.clone(), size_of(s)))
                .rev()
                .find(|(_, first)| *first <= r)
                .unwrap();
            let mut bytes = std::fs::read(&path).unwrap();
            let start: usize = lines[first as usize..r as usize]
                .iter()
                .map(|l| l.len() + 1)
                .sum();
            let at = start + rng.below(lines[r as usize].len() as u64) as usize;
            bytes[at] ^= 1 << rng.below(7);
            std::fs::write(&path, bytes).unwrap();
            drop_checkpoints_covering(dir, r);
            r
        }
        Kind::FlipStoredHash => {
            let cps = sorted_files(&dir.join("checkpoints"));
            let f = &cps[rng.below(cps.len() as u64) as usize];
            let text = std::fs::read_to_string(f).unwrap();
            let mut parts: Vec<String> = text.split('\n').map(String::from).collect();
            use base64::Engine;
            let b64 = base64::engine::general_purpose::STANDARD;
            let mut root = b64.decode(&parts[2]).unwrap();
            root[rng.below(32) as usize] ^= 1 << rng.below(8);
            parts[2] = b64.encode(root);
            std::fs::write(f, parts.join("\n")).unwrap();
            size_of(f) - 1
        }
        Kind::DeleteRecord => {
            let r = rng.below(n);
            lines.remove(r as usize);
            write_lines(dir, &lines, p.seg);
            drop_checkpoints_covering(dir, r);
            r
        }
        Kind::InsertRecord => {
            let r = rng.below(n + 1).min(n - 1);
            lines.insert(r as usize, forged(rng, r));
            write_lines(dir, &lines, p.seg);
            drop_checkpoints_covering(dir, r);
            r
        }
        Kind::SwapRecords => {
            let r = rng.below(n - 1);
            lines.swap(r as usize, r as usize + 1);
            write_lines(dir, &lines, p.seg);
            drop_checkpoints_covering(dir, r);
            r
        }
        Kind::TruncateTail => {
            let t = rng.range(1, n);
            lines.truncate(t as usize);
            write_lines(dir, &lines, p.seg);
            drop_checkpoints_covering(dir, t);
            t
        }
        Kind::RemoveSegment => {
            let segs = sorted_files(&dir.join("segments"));
            let s = &segs[rng.below(segs.len() as u64) as usize];
            std::fs::remove_file(s).unwrap();
            size_of(s)
        }
        Kind::Fork => {
            let f = rng.below(n);
            lines[f as usize] = forged(rng, f);
            rebuild(p, dir, &lines, signer());
            f
        }
        Kind::ForeignKey => {
            let f = rng.below(n);
            lines[f as usize] = forged(rng, f);
            rebuild(p, dir, &lines, Signer::from_seed(ORIGIN, [7; 32]).unwrap());
            f
        }
        Kind::ReplayOldCheckpoint => {
            // Roll the log back to an old checkpoint: records after it cut,
            // later checkpoints removed, the old one made the latest again.
            let cps: Vec<u64> = sorted_files(&dir.join("checkpoints"))
                .iter()
                .map(|f| size_of(f))
                .filter(|&s| s < n)
                .collect();
            let m = cps[rng.below(cps.len() as u64) as usize];
            lines.truncate(m as usize);
            write_lines(dir, &lines, p.seg);
            drop_checkpoints_covering(dir, m);
            m
        }
    }
}

#[derive(Default, Debug, Clone, Copy)]
struct Tally {
    newer_detected: u32,
    newer_cases: u32,
    older_tampered: u32,
    older_unanchored: u32,
    older_ok: u32,
}

/// One seed: a pristine log, each kind of tampering applied to a copy and
/// verified with the newer and the older outside checkpoints.
fn run_seed(seed: u64, tally: &mut BTreeMap<Kind, Tally>) {
    let verifier = signer().verifier();
    let p = pristine(1000 + seed);
    let clean = verify(&p.dir, &sorted_files(&p.witness), &verifier).unwrap();
    assert_eq!(
        clean.verdict,
        Verdict::Ok,
        "seed {seed}: {:?}",
        clean.findings
    );
    for (k, kind) in KINDS.iter().enumerate() {
        let mut rng = Rng(seed * 100 + k as u64);
        let case = p.dir.with_extension(format!("case{k}"));
        copy_dir(&p.dir, &case);
        let at = tamper(*kind, &p, &case, &mut rng);
        let witness = sorted_files(&p.witness);
        let newer: Vec<PathBuf> = witness
            .iter()
            .filter(|f| size_of(f) > at)
            .cloned()
            .collect();
        let older: Vec<PathBuf> = witness
            .iter()
            .filter(|f| size_of(f) < at)
            .cloned()
            .collect();
        assert!(!newer.is_empty());
        let t = tally.entry(*kind).or_default();

        let r = verify(&case, &newer, &verifier).unwrap();
        t.newer_cases += 1;
        if r.verdict == Verdict::Tampered {
            t.newer_detected += 1;
        } else {
            eprintln!("MISSED {kind:?} seed {seed} at {at}: {r:?}");
        }
        let r = verify(&case, &older, &verifier).unwrap();
        match r.verdict {
            Verdict::Tampered => t.older_tampered += 1,
            Verdict::Unanchored { .. } => t.older_unanchored += 1,
            Verdict::Ok => {
                t.older_ok += 1;
                eprintln!("OK for {kind:?} seed {seed} at {at}: {r:?}");
            }
        }
        std::fs::remove_dir_all(&case).unwrap();
        let _ = std::fs::remove_dir_all(case.with_extension("witness-of-fork"));
    }
}

#[test]
fn every_tampering_is_detected_when_an_outside_checkpoint_covers_it() {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get()) as u64;
    let tallies: Vec<BTreeMap<Kind, Tally>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|w| {
                s.spawn(move || {
                    let mut tally = BTreeMap::new();
                    for seed in (w..SEEDS).step_by(threads as usize) {
                        run_seed(seed, &mut tally);
                    }
                    tally
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut tally: BTreeMap<Kind, Tally> = BTreeMap::new();
    for part in tallies {
        for (kind, t) in part {
            let all = tally.entry(kind).or_default();
            all.newer_detected += t.newer_detected;
            all.newer_cases += t.newer_cases;
            all.older_tampered += t.older_tampered;
            all.older_unanchored += t.older_unanchored;
            all.older_ok += t.older_ok;
        }
    }
    eprintln!("kind                  newer: detected   older: tampered unanchored ok");
    for (kind, t) in &tally {
        eprintln!(
            "{:<22}{:>3}/{:<3}            {:>3}      {:>3}      {:>3}",
            format!("{kind:?}"),
            t.newer_detected,
            t.newer_cases,
            t.older_tampered,
            t.older_unanchored,
            t.older_ok
        );
    }
    assert_eq!(tally.len(), KINDS.len());
    for (kind, t) in &tally {
        assert_eq!(t.newer_cases as u64, SEEDS, "{kind:?}");
        assert_eq!(t.newer_detected, t.newer_cases, "{kind:?}");
        assert_eq!(t.older_ok, 0, "{kind:?}");
    }
}

/// A leaf is the line's bytes: changing any byte of any record changes the
/// root, so every stored checkpoint after it stops matching.
#[test]
fn any_byte_changes_the_leaf() {
    let line = forged(&mut Rng(9), 3);
    let h = leaf_hash(line.as_bytes());
    for i in 0..line.len() {
        let mut b = line.clone().into_bytes();
        b[i] ^= 0x20;
        assert_ne!(leaf_hash(&b), h);
    }
}
