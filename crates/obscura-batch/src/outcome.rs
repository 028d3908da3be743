//! What happened to each file, and the run report built from it.

use serde::Serialize;
use std::collections::BTreeMap;

/// The fate of one input file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// De-identified and written.
    Written {
        /// Size of the input file.
        bytes_in: u64,
        /// Size of the output file.
        bytes_out: u64,
    },
    /// Not written: it could not be made safe, or could not be read or written.
    Quarantined {
        /// A stable code for the kind of reason.
        reason: QuarantineReason,
        /// The detail (tags, offsets, sizes; never values).
        detail: String,
    },
    /// Not DICOM data that Obscura writes out.
    Skipped {
        /// Why.
        reason: SkipReason,
    },
}

impl Outcome {
    /// The outcome of a file whose processing panicked (a bug): quarantined,
    /// so the batch goes on.
    pub fn internal_error() -> Self {
        Outcome::Quarantined {
            reason: QuarantineReason::InternalError,
            detail: "internal error while processing this file (a bug: please report it)".into(),
        }
    }
}

/// Why a file was quarantined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum QuarantineReason {
    /// Pixels may carry burned-in identity.
    BurnedIn,
    /// The file could not be parsed safely.
    Unparseable,
    /// The de-identified object could not be written.
    Unwritable,
    /// Identity the profile keeps could not be shown to be clean (an
    /// encapsulated document holding the header's values).
    IdentityRemains,
    /// Obscura failed on this file (a bug); the batch went on.
    InternalError,
}

impl QuarantineReason {
    /// The stable code, as the report writes it (e.g. `burned_in`).
    pub fn code(self) -> &'static str {
        match self {
            QuarantineReason::BurnedIn => "burned_in",
            QuarantineReason::Unparseable => "unparseable",
            QuarantineReason::Unwritable => "unwritable",
            QuarantineReason::IdentityRemains => "identity_remains",
            QuarantineReason::InternalError => "internal_error",
        }
    }
}

/// Why a file was skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// Not a DICOM file.
    NotDicom,
    /// A zero-byte file.
    Empty,
    /// A DICOMDIR: its paths and patient records would leak, so it is not copied.
    Dicomdir,
}

impl SkipReason {
    /// The stable code, as the report writes it (e.g. `not_dicom`).
    pub fn code(self) -> &'static str {
        match self {
            SkipReason::NotDicom => "not_dicom",
            SkipReason::Empty => "empty",
            SkipReason::Dicomdir => "dicomdir",
        }
    }
}

/// One file's line in the report.
#[derive(Debug, Clone, Serialize)]
pub struct FileReport {
    /// Path relative to the input root.
    pub path: String,
    /// What happened.
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// Totals of a run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Counts {
    /// Files seen.
    pub files: u64,
    /// Files de-identified and written.
    pub written: u64,
    /// Files quarantined.
    pub quarantined: u64,
    /// Files skipped.
    pub skipped: u64,
    /// Bytes of the written files' inputs.
    pub bytes_in: u64,
    /// Bytes written.
    pub bytes_out: u64,
}

/// The run report: counts, per-file outcomes, profile and tool. Holds no PHI.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// The tool and its version.
    pub tool: String,
    /// The tool version.
    pub version: String,
    /// The profile applied, as written into DeidentificationMethod.
    pub profile: String,
    /// The CID 7050 codes of the profile and options applied.
    pub profile_codes: Vec<String>,
    /// The edition of PS3.15 Table E.1-1 used.
    pub table_edition: String,
    /// Totals.
    pub counts: Counts,
    /// Quarantined files by reason.
    pub quarantined_by_reason: BTreeMap<QuarantineReason, u64>,
    /// Skipped files by reason.
    pub skipped_by_reason: BTreeMap<SkipReason, u64>,
    /// Wall time of the run in seconds.
    pub elapsed_seconds: f64,
    /// Every file, in path order.
    pub files: Vec<FileReport>,
}

impl RunReport {
    /// Tally `files` into a report.
    pub fn tally(
        profile: String,
        profile_codes: Vec<String>,
        table_edition: &str,
        files: Vec<FileReport>,
        elapsed_seconds: f64,
    ) -> Self {
        let mut counts = Counts::default();
        let mut quarantined_by_reason = BTreeMap::new();
        let mut skipped_by_reason = BTreeMap::new();
        for f in &files {
            counts.files += 1;
            match &f.outcome {
                Outcome::Written {
                    bytes_in,
                    bytes_out,
                } => {
                    counts.written += 1;
                    counts.bytes_in += bytes_in;
                    counts.bytes_out += bytes_out;
                }
                Outcome::Quarantined { reason, .. } => {
                    counts.quarantined += 1;
                    *quarantined_by_reason.entry(*reason).or_insert(0) += 1;
                }
                Outcome::Skipped { reason } => {
                    counts.skipped += 1;
                    *skipped_by_reason.entry(*reason).or_insert(0) += 1;
                }
            }
        }
        RunReport {
            tool: "obscura".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            profile,
            profile_codes,
            table_edition: table_edition.into(),
            counts,
            quarantined_by_reason,
            skipped_by_reason,
            elapsed_seconds,
            files,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_the_report_s_names() {
        use QuarantineReason::*;
        for r in [
            BurnedIn,
            Unparseable,
            Unwritable,
            IdentityRemains,
            InternalError,
        ] {
            assert_eq!(
                serde_json::to_string(&r).unwrap(),
                format!("\"{}\"", r.code())
            );
        }
        for r in [
            SkipReason::NotDicom,
            SkipReason::Empty,
            SkipReason::Dicomdir,
        ] {
            assert_eq!(
                serde_json::to_string(&r).unwrap(),
                format!("\"{}\"", r.code())
            );
        }
    }
}
