//! `verify`: recompute the tree from the records as they are on disk, check
//! every stored checkpoint (signature, origin, root at its size) and every
//! outside checkpoint against the same recomputed roots.
//!
//! Recomputing the root at an outside checkpoint's size from the records,
//! and finding the log's later checkpoints signed over the same records, is
//! what a consistency proof between the two would show (and more: the
//! proof's hashes are not taken on trust, they are recomputed). A third
//! party without the records checks [`crate::LogReader::consistency_proof`]
//! instead.

use crate::event::{Record, RecordError};
use crate::log::{list_checkpoints, list_segments, read_segment};
use crate::merkle::{empty_root, leaf_hash, Frontier, Hash};
use crate::note::{Checkpoint, NoteError, Verifier};
use crate::Error;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// One thing verification found wrong or incomplete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// A line that is not a record.
    BadRecord {
        /// Its index.
        index: u64,
    },
    /// A record not in canonical form (bytes changed inside a value or
    /// around it).
    NonCanonical {
        /// Its index.
        index: u64,
    },
    /// A record whose own sequence number is not its position (a record
    /// deleted, inserted or moved before it).
    OutOfSequence {
        /// Its position.
        index: u64,
        /// The sequence number it carries.
        seq: u64,
    },
    /// A segment file whose name is not the index of its first record (a
    /// segment removed, added or renamed), or a stray file among them.
    SegmentMisplaced {
        /// The file.
        path: PathBuf,
        /// The index at which it is read.
        expected: u64,
    },
    /// An incomplete line (a crash while writing, or a cut).
    TornTail {
        /// The segment.
        path: PathBuf,
        /// Whether it is in the last segment (a crash leaves it only there).
        last: bool,
    },
    /// A stored or outside checkpoint that is not a valid checkpoint of this
    /// log's key (foreign key, bad signature, other origin, malformed).
    InvalidCheckpoint {
        /// Where it came from.
        source: String,
        /// Why.
        why: NoteError,
    },
    /// A stored checkpoint whose file name is not its size.
    MisnamedCheckpoint {
        /// The file.
        source: String,
        /// The size it states.
        size: u64,
    },
    /// The latest-checkpoint file is not the newest stored checkpoint (an
    /// old checkpoint replayed as the latest).
    LatestNotNewest {
        /// Its size.
        latest: u64,
        /// The newest stored size.
        newest: u64,
    },
    /// A valid checkpoint covering more records than the log holds (records
    /// removed from the tail).
    BeyondLog {
        /// Where it came from.
        source: String,
        /// Its size.
        size: u64,
    },
    /// A valid checkpoint whose root is not the root of the records at its
    /// size (records altered, or a forked history).
    RootMismatch {
        /// Where it came from.
        source: String,
        /// Its size.
        size: u64,
    },
}

impl Finding {
    /// Whether the finding shows alteration (as opposed to an incomplete
    /// last line, which a crash leaves).
    pub fn is_tamper(&self) -> bool {
        !matches!(self, Finding::TornTail { last: true, .. })
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Finding::BadRecord { index } => write!(f, "record {index} is not a record"),
            Finding::NonCanonical { index } => {
                write!(f, "record {index} is not in canonical form (altered)")
            }
            Finding::OutOfSequence { index, seq } => write!(
                f,
                "record {index} says it is record {seq} (records deleted, inserted or moved)"
            ),
            Finding::SegmentMisplaced { path, expected } => write!(
                f,
                "segment {} is read at record {expected} but its name says otherwise (segment removed, added or renamed)",
                path.display()
            ),
            Finding::TornTail { path, last: true } => write!(
                f,
                "incomplete last line in {} (a crash while writing: opening the log for writing sets it aside)",
                path.display()
            ),
            Finding::TornTail { path, last: false } => {
                write!(f, "incomplete line inside {}", path.display())
            }
            Finding::InvalidCheckpoint { source, why } => {
                write!(f, "checkpoint {source} is refused: {why}")
            }
            Finding::MisnamedCheckpoint { source, size } => {
                write!(f, "checkpoint {source} states size {size}, not its file name")
            }
            Finding::LatestNotNewest { latest, newest } => write!(
                f,
                "the latest checkpoint is of size {latest}, but one of size {newest} is stored (an old checkpoint replayed)"
            ),
            Finding::BeyondLog { source, size } => write!(
                f,
                "checkpoint {source} covers {size} records, more than the log holds (records removed)"
            ),
            Finding::RootMismatch { source, size } => write!(
                f,
                "checkpoint {source} does not match the records at size {size} (records altered or history forked)"
            ),
        }
    }
}

/// The conclusion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every record is covered by an outside checkpoint, and everything matches.
    Ok,
    /// Nothing wrong was found, but records after `anchored` are covered by
    /// no outside checkpoint: they could have been changed or cut unseen.
    Unanchored {
        /// The largest outside checkpoint that matched (0 if none).
        anchored: u64,
        /// The records in the log.
        records: u64,
    },
    /// Alteration found: see the findings.
    Tampered,
}

/// What `verify` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Records read (lines, valid or not).
    pub records: u64,
    /// The root of the records as they are.
    pub root: Hash,
    /// Stored checkpoints read.
    pub stored_checkpoints: usize,
    /// The largest stored checkpoint that verified and matched.
    pub signed: u64,
    /// Outside checkpoints that verified (signature and origin).
    pub outside_checkpoints: usize,
    /// The largest outside checkpoint that verified and matched.
    pub anchored: u64,
    /// Everything wrong or incomplete, in the order found.
    pub findings: Vec<Finding>,
    /// The conclusion.
    pub verdict: Verdict,
}

/// Verify a log folder against its public key and checkpoints kept
/// elsewhere (files). An unreadable outside file is an error.
pub fn verify(log_dir: &Path, outside: &[PathBuf], verifier: &Verifier) -> Result<Report, Error> {
    let mut notes = Vec::new();
    for p in outside {
        let text = std::fs::read(p).map_err(|e| Error::Io(p.clone(), e))?;
        notes.push((
            p.display().to_string(),
            String::from_utf8_lossy(&text).into_owned(),
        ));
    }
    verify_notes(log_dir, &notes, verifier)
}

/// [`verify()`] with the outside checkpoints given as (label, text).
pub fn verify_notes(
    log_dir: &Path,
    outside: &[(String, String)],
    verifier: &Verifier,
) -> Result<Report, Error> {
    if !log_dir.is_dir() {
        return Err(Error::Io(
            log_dir.to_path_buf(),
            std::io::Error::new(std::io::ErrorKind::NotFound, "not a folder"),
        ));
    }
    let mut findings = Vec::new();
    let open = |source: String, text: &str, findings: &mut Vec<Finding>| match verifier
        .open_checkpoint(text)
    {
        Ok(cp) => Some((source, cp)),
        Err(why) => {
            findings.push(Finding::InvalidCheckpoint { source, why });
            None
        }
    };

    // Stored checkpoints.
    let files = list_checkpoints(log_dir)?;
    let mut stored: Vec<(String, Checkpoint)> = Vec::new();
    for (n, path) in &files {
        let text = std::fs::read(path).map_err(|e| Error::Io(path.clone(), e))?;
        let source = path.display().to_string();
        if let Some((s, cp)) = open(source, &String::from_utf8_lossy(&text), &mut findings) {
            if cp.size != *n {
                findings.push(Finding::MisnamedCheckpoint {
                    source: s.clone(),
                    size: cp.size,
                });
            }
            stored.push((s, cp));
        }
    }
    let latest_path = log_dir.join("checkpoint");
    match std::fs::read(&latest_path) {
        Ok(text) => {
            let source = latest_path.display().to_string();
            if let Some((s, cp)) = open(source, &String::from_utf8_lossy(&text), &mut findings) {
                let newest = stored.iter().map(|(_, c)| c.size).max().unwrap_or(0);
                if cp.size < newest {
                    findings.push(Finding::LatestNotNewest {
                        latest: cp.size,
                        newest,
                    });
                }
                stored.push((s, cp));
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::Io(latest_path, e)),
    }
    let outside: Vec<(String, Checkpoint)> = outside
        .iter()
        .filter_map(|(label, text)| open(format!("(outside) {label}"), text, &mut findings))
        .collect();

    // The records as they are: one pass, roots kept at every checkpointed size.
    let mut wanted: BTreeMap<u64, Option<Hash>> = stored
        .iter()
        .chain(outside.iter())
        .map(|(_, c)| (c.size, None))
        .collect();
    wanted.insert(0, Some(empty_root()));
    let mut frontier = Frontier::new();
    let segments = list_segments(log_dir)?;
    for (i, (first, path)) in segments.iter().enumerate() {
        if *first != frontier.size() {
            findings.push(Finding::SegmentMisplaced {
                path: path.clone(),
                expected: frontier.size(),
            });
        }
        let torn = read_segment(path, |_, line| {
            let index = frontier.size();
            match Record::from_line(line) {
                Ok(r) if r.seq != index => {
                    findings.push(Finding::OutOfSequence { index, seq: r.seq })
                }
                Ok(_) => {}
                Err(RecordError::Unparsable) => findings.push(Finding::BadRecord { index }),
                Err(RecordError::NotCanonical) => findings.push(Finding::NonCanonical { index }),
            }
            frontier.push(leaf_hash(line));
            if let Some(slot) = wanted.get_mut(&frontier.size()) {
                *slot = Some(frontier.root());
            }
        })?;
        if let Some(t) = torn {
            findings.push(Finding::TornTail {
                path: t.segment,
                last: i + 1 == segments.len(),
            });
        }
    }
    let records = frontier.size();

    let check = |list: &[(String, Checkpoint)], findings: &mut Vec<Finding>| {
        let mut best = 0;
        for (source, cp) in list {
            match wanted.get(&cp.size).copied().flatten() {
                None => findings.push(Finding::BeyondLog {
                    source: source.clone(),
                    size: cp.size,
                }),
                Some(root) if root != cp.root => findings.push(Finding::RootMismatch {
                    source: source.clone(),
                    size: cp.size,
                }),
                Some(_) => best = best.max(cp.size),
            }
        }
        best
    };
    let signed = check(&stored, &mut findings);
    let anchored = check(&outside, &mut findings);

    let verdict = if findings.iter().any(Finding::is_tamper) {
        Verdict::Tampered
    } else if anchored == records && findings.is_empty() {
        Verdict::Ok
    } else {
        Verdict::Unanchored { anchored, records }
    };
    Ok(Report {
        records,
        root: frontier.root(),
        stored_checkpoints: files.len(),
        signed,
        outside_checkpoints: outside.len(),
        anchored,
        findings,
        verdict,
    })
}
