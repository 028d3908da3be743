//! A tamper-evident audit trail for Obscura.
//!
//! Events ([`AuditEvent`]) carry no PHI: patients and studies appear only as
//! keyed hashes ([`SubjectRef`]). They are appended as canonical JSON lines
//! to segment files ([`AuditLog`]); each line is a leaf of an RFC 6962
//! Merkle tree ([`merkle`]). Signed checkpoints (C2SP signed notes,
//! [`note`]) are written every N events or T seconds and copied to a
//! witness folder. [`verify()`] recomputes the tree, checks every stored
//! checkpoint and proves consistency with checkpoints kept elsewhere.
//!
//! This crate is told about events; it never calls into the vault, the
//! gateway or the web layer. See `docs/audit.md`.

#![warn(missing_docs)]

pub mod event;
pub mod inbox;
mod keyfile;
pub mod log;
pub mod merkle;
pub mod note;
mod sink;
pub mod verify;

pub use event::{
    Actor, AuditEvent, AuditKey, EventKind, Outcome, Record, SubjectKind, SubjectRef, WebAction,
    VIEW_DEIDENTIFIED,
};
pub use log::{AuditLog, LogConfig, LogReader, OpenReport, PendingSync, SyncPolicy, TornTail};
pub use merkle::{verify_consistency, verify_inclusion, Hash};
pub use note::{Checkpoint, Signer, Verifier};
pub use sink::{Auditor, Tap};
pub use verify::{verify, Finding, Report, Verdict};

use std::path::PathBuf;

/// Errors of the audit crate. They name files, sizes and indexes, never
/// the content of a record.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file operation failed.
    #[error("{0}: {1}")]
    Io(PathBuf, #[source] std::io::Error),
    /// A key file is readable by group or others.
    #[error("key file {0} is readable by others: run chmod 600 on it")]
    KeyExposed(PathBuf),
    /// A key is not in the expected format.
    #[error("not a key in the expected format")]
    KeyFormat,
    /// The OS random source failed.
    #[error("the OS random source failed")]
    Random,
    /// The last line of the last segment is incomplete (a crash while
    /// writing). Open with recovery to set it aside.
    #[error("torn last record in {} at byte {} ({} bytes): open with recovery to set it aside", .0.segment.display(), .0.offset, .0.len)]
    TornTail(TornTail),
    /// The log on disk is not what this writer left: a record that does not
    /// parse or is out of sequence, or a checkpoint that does not match.
    #[error("the log is damaged or altered: {0} (run `obscura audit verify`)")]
    Damaged(String),
    /// The log was created with another origin or key.
    #[error("the log at {0} belongs to another origin or key")]
    Foreign(PathBuf),
}
