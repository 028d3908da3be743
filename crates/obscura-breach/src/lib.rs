//! The breach-impact report: given a principal and a time window, the
//! exact patients, studies and providers its events touched (from the
//! audit log's keyed hashes, resolved through the archive's index for the
//! data owner), split by exposure, counted by state of residence, with the
//! notices the law then calls for, and the signed checkpoint with an
//! inclusion proof of every event used. [`check`] verifies a report
//! offline. See `docs/audit.md`.

#![warn(missing_docs)]

pub mod check;
pub mod law;
pub mod output;
mod resolve;
pub mod select;
pub mod time;
pub mod touch;

pub use resolve::{owner_records, OwnerRecords};
pub use touch::Exposure;

use obscura_audit::merkle::{Hash, Tree};
use obscura_audit::{AuditKey, Checkpoint, Verifier};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Errors of the report. They name files, record indexes and counts, never
/// a patient's data.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file operation failed.
    #[error("{0}: {1}")]
    Io(PathBuf, #[source] std::io::Error),
    /// The log cannot be read as a log.
    #[error("the audit log cannot be read: {0}")]
    Log(String),
    /// The log does not match its signed checkpoints: no report on it.
    #[error("the audit log is altered: {0} (run `obscura audit verify`)")]
    Tampered(String),
    /// The audit crate failed.
    #[error(transparent)]
    Audit(#[from] obscura_audit::Error),
    /// The archive failed.
    #[error(transparent)]
    Vault(#[from] obscura_vault::VaultError),
    /// A report that is not a report of this format.
    #[error("not a breach report: {0}")]
    Format(String),
}

/// The format name in every report.
pub const FORMAT: &str = "obscura-breach-report/1";

/// What to report on.
#[derive(Debug, Clone)]
pub struct Request {
    /// The audit log folder.
    pub log_dir: PathBuf,
    /// The log's checkpoint key.
    pub verifier: Verifier,
    /// Checkpoints kept outside the log (label, signed note).
    pub outside: Vec<(String, String)>,
    /// The principal (see [`select::Principal`]).
    pub principal: String,
    /// The window's start.
    pub from: SystemTime,
    /// The window's end (included).
    pub to: SystemTime,
    /// When the breach was discovered (deadlines run from it).
    pub discovered: SystemTime,
    /// Destinations that receive originals (not de-identified).
    pub identified_destinations: BTreeSet<String>,
}

/// The report (JSON). No names, IDs or UIDs: patients, studies and
/// providers as keyed hashes; the notification list with names is the CSV.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// [`FORMAT`].
    pub format: String,
    /// The principal.
    pub principal: String,
    /// The window's start (RFC 3339).
    pub from: String,
    /// The window's end (RFC 3339).
    pub to: String,
    /// When the breach was discovered (RFC 3339).
    pub discovered: String,
    /// When the report was made (RFC 3339).
    pub generated: String,
    /// Destinations taken as receiving originals.
    pub identified_destinations: Vec<String>,
    /// The log the report was made from.
    pub log: LogState,
    /// The principal's events in the window, by `kind outcome`.
    pub activity: BTreeMap<String, u64>,
    /// Patients touched.
    pub patients: Vec<Subject>,
    /// Studies touched.
    pub studies: Vec<Subject>,
    /// Providers (referring physicians) of the resolved studies touched.
    pub providers: Vec<Provider>,
    /// Patients with identifiable data exposed, by state of residence.
    pub states: Vec<law::StateCount>,
    /// The notices due.
    pub notices: Vec<law::Notice>,
    /// Every event used, with its inclusion proof.
    pub events: Vec<ProvenEvent>,
}

/// The log at the time of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogState {
    /// Records in the log.
    pub records: u64,
    /// The newest signed checkpoint (C2SP signed note); the proofs are
    /// against it.
    pub checkpoint: String,
    /// Its size.
    pub checkpoint_size: u64,
    /// The largest outside checkpoint that matched (0: none given).
    pub anchored: u64,
    /// Events used that no checkpoint covers yet (no proof).
    pub unsigned_events: u64,
}

/// A patient or study touched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subject {
    /// Its keyed hash in the audit log.
    #[serde(rename = "ref")]
    pub hash: String,
    /// Its worst exposure.
    pub exposure: Exposure,
    /// Whether the archive's index resolved it.
    pub resolved: bool,
    /// Its tenant, when resolved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// A patient's state of residence, when resolved (`unknown` if the
    /// archive has none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// The events that touched it.
    pub events: Vec<u64>,
}

/// A provider of a study touched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provider {
    /// Its keyed hash (provider kind).
    #[serde(rename = "ref")]
    pub hash: String,
    /// The worst exposure of its studies.
    pub exposure: Exposure,
    /// Its studies touched.
    pub studies: u64,
}

/// An event and its inclusion proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProvenEvent {
    /// Its index in the log.
    pub seq: u64,
    /// The record's line, as stored.
    pub line: String,
    /// Its audit path to the checkpoint's root (hex, leaf side first);
    /// absent when no checkpoint covers it yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proof: Option<Vec<String>>,
}

/// A row of the notification list: a patient and one of its studies (or
/// none), with names, for the data owner only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyRow {
    /// The patient's keyed hash.
    pub patient_ref: String,
    /// Patient ID (empty if unresolved).
    pub patient_id: String,
    /// Patient's Name.
    pub patient_name: String,
    /// Patient's Birth Date.
    pub birth_date: String,
    /// State of residence, or `unknown`.
    pub state: String,
    /// The patient's worst exposure.
    pub exposure: Exposure,
    /// Study Instance UID (empty: none resolved).
    pub study_uid: String,
    /// The study's exposure, when it was touched.
    pub study_exposure: Option<Exposure>,
    /// Referring Physician's Name.
    pub referring_physician: String,
    /// The tenant.
    pub tenant: String,
}

/// Make the report and the notification list.
pub fn build(
    req: &Request,
    key: &AuditKey,
    owner: &OwnerRecords,
) -> Result<(Report, Vec<NotifyRow>), Error> {
    let who = select::Principal(req.principal.clone());
    let (from, to) = (time::format(req.from), time::format(req.to));
    let scan = select::scan(&req.log_dir, &who)?;
    let proven = Proven::new(&req.log_dir, &req.verifier, &req.outside, scan.leaves)?;
    let records = select::select(scan.candidates, &who, &from, &to)?;

    let mut activity = BTreeMap::new();
    for (r, _) in &records {
        let k = serde_json::to_value((r.event.kind, r.event.outcome)).expect("JSON");
        *activity
            .entry(format!(
                "{} {}",
                k[0].as_str().unwrap_or(""),
                k[1].as_str().unwrap_or("")
            ))
            .or_insert(0) += 1;
    }
    let touched = touch::touched(records.iter().map(|(r, _)| r), &req.identified_destinations);
    let resolved = resolve::resolve(&touched, key, owner);
    let notices = law::notices(&resolved.states, req.discovered);
    let mut unsigned = 0;
    let events = records
        .into_iter()
        .map(|(r, line)| {
            let proof = proven.proof(r.seq);
            unsigned += u64::from(proof.is_none());
            ProvenEvent {
                seq: r.seq,
                line,
                proof,
            }
        })
        .collect();
    let report = Report {
        format: FORMAT.into(),
        principal: req.principal.clone(),
        from,
        to,
        discovered: time::format(req.discovered),
        generated: time::format(SystemTime::now()),
        identified_destinations: req.identified_destinations.iter().cloned().collect(),
        log: LogState {
            records: proven.tree.size(),
            checkpoint: proven.note.clone(),
            checkpoint_size: proven.checkpoint.size,
            anchored: proven.anchored,
            unsigned_events: unsigned,
        },
        activity,
        patients: resolved.patients,
        studies: resolved.studies,
        providers: resolved.providers,
        states: resolved.states,
        notices,
        events,
    };
    Ok((report, resolved.rows))
}

/// The log's tree, checked against its newest signed checkpoint and the
/// outside ones.
struct Proven {
    tree: Tree,
    checkpoint: Checkpoint,
    note: String,
    anchored: u64,
}

impl Proven {
    fn new(
        dir: &Path,
        verifier: &Verifier,
        outside: &[(String, String)],
        leaves: Vec<Hash>,
    ) -> Result<Self, Error> {
        let tree = Tree::from_leaves(leaves);
        let read = |p: &Path| std::fs::read_to_string(p).map_err(|e| Error::Io(p.to_path_buf(), e));
        let latest_path = dir.join("checkpoint");
        let note = read(&latest_path)?;
        let matches = |label: &str, note: &str| -> Result<Checkpoint, Error> {
            let cp = verifier
                .open_checkpoint(note)
                .map_err(|e| Error::Tampered(format!("checkpoint {label}: {e}")))?;
            match tree.root(cp.size) {
                Some(root) if root == cp.root => Ok(cp),
                Some(_) => Err(Error::Tampered(format!(
                    "checkpoint {label} does not match the records at size {}",
                    cp.size
                ))),
                None => Err(Error::Tampered(format!(
                    "checkpoint {label} covers {} records, the log holds {}",
                    cp.size,
                    tree.size()
                ))),
            }
        };
        let checkpoint = matches(&latest_path.display().to_string(), &note)?;
        let stored = obscura_audit::log::list_checkpoints(dir)?;
        if let Some((_, newest)) = stored.last() {
            let cp = matches(&newest.display().to_string(), &read(newest)?)?;
            if cp.size > checkpoint.size {
                return Err(Error::Tampered(format!(
                    "the latest checkpoint is of size {}, but one of size {} is stored (an old checkpoint replayed)",
                    checkpoint.size, cp.size
                )));
            }
        }
        let mut anchored = 0;
        for (label, text) in outside {
            anchored = anchored.max(matches(label, text)?.size);
        }
        Ok(Proven {
            tree,
            checkpoint,
            note,
            anchored,
        })
    }

    fn proof(&self, seq: u64) -> Option<Vec<String>> {
        let p = self.tree.inclusion_proof(seq, self.checkpoint.size)?;
        Some(p.iter().map(|h| obscura_audit::event::hex(h)).collect())
    }
}
