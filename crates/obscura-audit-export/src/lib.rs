//! Audit records out in the ecosystem's formats: DICOM PS3.15 A.5 audit
//! messages (XML, [`dicom`]) and JSON lines, over syslog (RFC 5424,
//! [`syslog`]) with TLS and octet-counting framing (RFC 5425), sent by a
//! [`SyslogExporter`] fed by the audit log as a [`obscura_audit::Tap`].
//! Nothing here reads PHI: records hold keyed hashes only. See
//! `docs/audit.md`.

#![warn(missing_docs)]

mod config;
pub mod dicom;
mod sender;
pub mod syslog;

pub use config::SyslogSection;
pub use dicom::AuditSource;
pub use sender::{Format, Stats, SyslogConfig, SyslogExporter, CHECKPOINT_MSGID};

/// Errors of the exporter: configuration only (delivery failures are retried).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A setting is wrong.
    #[error("{0}")]
    Config(String),
}
