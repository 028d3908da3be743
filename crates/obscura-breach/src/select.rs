//! One pass over the log: every leaf hash (for the proofs and the root),
//! and the records of one principal. Segments are read in parallel; the
//! principal is matched on the raw bytes before any JSON is parsed.

use crate::Error;
use memchr::memmem::Finder;
use obscura_audit::merkle::{leaf_hash, Hash};
use obscura_audit::{EventKind, Record};
use rayon::prelude::*;
use std::path::{Path, PathBuf};

/// Who the report is about: an audit principal (`name@tenant` for
/// DICOMweb; `name` alone matches it in every tenant), or a destination
/// that instances were forwarded to.
#[derive(Debug, Clone)]
pub struct Principal(pub String);

impl Principal {
    /// Whether a record's actor is this principal, or the record forwards
    /// instances to it.
    pub fn matches(&self, r: &Record) -> bool {
        let p = &r.event.actor.principal;
        let me = self.0.as_str();
        let actor = p == me
            || (!me.contains('@') && p.strip_prefix(me).is_some_and(|t| t.starts_with('@')));
        let destination = r.event.kind == EventKind::InstanceForwarded
            && r.event
                .route
                .as_deref()
                .and_then(|d| d.strip_prefix("dest:"))
                == Some(me);
        actor || destination
    }

    /// Byte strings one of which a matching record's line contains.
    fn needles(&self) -> Vec<Vec<u8>> {
        let quoted = serde_json::to_string(&self.0).expect("a string is JSON");
        let bare = &quoted[..quoted.len() - 1]; // without the closing quote
        let dest = serde_json::to_string(&format!("dest:{}", self.0)).expect("a string is JSON");
        vec![
            format!("\"principal\":{quoted}").into_bytes(),
            format!("\"principal\":{bare}@").into_bytes(),
            format!("\"route\":{dest}").into_bytes(),
        ]
    }
}

/// What the pass found.
#[derive(Debug, Default)]
pub struct Scan {
    /// The leaf hash of every record, in order.
    pub leaves: Vec<Hash>,
    /// The records whose line holds one of the principal's needles (to be
    /// matched exactly): index and line.
    pub candidates: Vec<(u64, Vec<u8>)>,
}

/// Read every segment of `log_dir`. A segment out of place, a torn line or
/// a record whose index is not its position is refused.
pub fn scan(log_dir: &Path, who: &Principal) -> Result<Scan, Error> {
    let segments = obscura_audit::log::list_segments(log_dir)?;
    let needles = who.needles();
    let finders: Vec<Finder> = needles.iter().map(Finder::new).collect();
    let parts: Vec<Part> = segments
        .par_iter()
        .map(|(first, path)| read_part(*first, path, &finders))
        .collect::<Result<_, _>>()?;
    let mut out = Scan::default();
    for (part, (first, path)) in parts.into_iter().zip(&segments) {
        if *first != out.leaves.len() as u64 {
            return Err(Error::Log(format!(
                "segment {} does not start at record {}",
                path.display(),
                out.leaves.len()
            )));
        }
        out.leaves.extend(part.leaves);
        out.candidates.extend(part.candidates);
    }
    Ok(out)
}

struct Part {
    leaves: Vec<Hash>,
    candidates: Vec<(u64, Vec<u8>)>,
}

fn read_part(first: u64, path: &PathBuf, finders: &[Finder]) -> Result<Part, Error> {
    let bytes = std::fs::read(path).map_err(|e| Error::Io(path.clone(), e))?;
    let mut part = Part {
        leaves: Vec::with_capacity(bytes.len() / 256),
        candidates: Vec::new(),
    };
    let mut start = 0;
    for nl in memchr::memchr_iter(b'\n', &bytes) {
        let line = &bytes[start..nl];
        let index = first + part.leaves.len() as u64;
        part.leaves.push(leaf_hash(line));
        if finders.iter().any(|f| f.find(line).is_some()) {
            part.candidates.push((index, line.to_vec()));
        }
        start = nl + 1;
    }
    if start < bytes.len() {
        return Err(Error::Log(format!(
            "incomplete last line in {} (open the log for writing to set it aside)",
            path.display()
        )));
    }
    Ok(part)
}

/// The candidates that are records of the principal in `[from, to]`
/// (RFC 3339 strings as the log writes them), parsed; a candidate that is
/// not a canonical record at its index is refused.
pub fn select(
    candidates: Vec<(u64, Vec<u8>)>,
    who: &Principal,
    from: &str,
    to: &str,
) -> Result<Vec<(Record, String)>, Error> {
    let mut out = Vec::new();
    for (index, line) in candidates {
        let r =
            Record::from_line(&line).map_err(|e| Error::Log(format!("record {index} is {e}")))?;
        if r.seq != index {
            return Err(Error::Log(format!(
                "record {index} says it is record {}",
                r.seq
            )));
        }
        let t = r.event.time.as_str();
        if who.matches(&r) && t >= from && t <= to {
            let line = String::from_utf8(line).expect("a record is UTF-8");
            out.push((r, line));
        }
    }
    Ok(out)
}
