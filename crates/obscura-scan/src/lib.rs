//! `obscura scan`: finds the identity an archive of DICOM files holds and
//! reports the exposure.
//!
//! Every file is read up to its pixel data (never decoded); every value at
//! every depth that can hold text is read by `obscura-detect`'s detectors,
//! wherever it is, and classified with the engine's table (PS3.15 Table
//! E.1-1, the safe-private dictionary, the burned-in rule), which names the
//! categories but never decides where the scan looks. [`scan`] walks files in
//! parallel; [`Report`] aggregates the findings; [`render`] writes them for
//! people (terminal, HTML) and machines (JSON, CSV). Knows nothing of
//! command lines.

mod classify;
mod detect;
mod inspect;
pub mod render;
mod report;

pub use classify::is_placeholder;
pub use inspect::inspect_file;
pub use report::{CreatorCount, PatientEntry, Report, Summary};

use rayon::prelude::*;
use serde::Serialize;
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use thiserror::Error;

/// A failure of the scan as a whole (a file that cannot be read is a
/// [`FileStatus`] instead).
#[derive(Debug, Error)]
pub enum ScanError {
    /// An input path cannot be read.
    #[error("cannot read input {0}: {1}")]
    Input(PathBuf, String),
    /// The worker pool could not start.
    #[error("cannot start worker threads: {0}")]
    Threads(String),
    /// A report cannot be written.
    #[error("cannot write {0}: {1}")]
    Output(PathBuf, std::io::Error),
}

/// What a finding is about: the categories of the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// Patient names, IDs, other IDs, SSNs, addresses, phone numbers, e-mail.
    DirectIdentifier,
    /// Birth date, sex, age, size, weight, ethnic group, residence.
    QuasiIdentifier,
    /// Dates and times of the study, series, acquisition...
    DateTime,
    /// Institution, physician, operator, station and device identity.
    InstitutionDevice,
    /// Identity inside descriptions, comments and other free text.
    FreeText,
    /// Attributes of a private creator not known to be safe.
    PrivateAttribute,
    /// Identity in an encapsulated document (PDF, CDA), or one that cannot be read.
    EmbeddedDocument,
    /// Identity in a structured report's content tree.
    StructuredReport,
    /// Pixels that may show burned-in identity (a risk, not a found value).
    BurnedIn,
    /// De-identification markers claim clean, yet identity is found.
    ClaimsClean,
}

impl Category {
    /// Every category, in report order.
    pub const ALL: [Category; 10] = [
        Category::DirectIdentifier,
        Category::QuasiIdentifier,
        Category::DateTime,
        Category::InstitutionDevice,
        Category::FreeText,
        Category::PrivateAttribute,
        Category::EmbeddedDocument,
        Category::StructuredReport,
        Category::BurnedIn,
        Category::ClaimsClean,
    ];

    /// The snake_case name used in JSON and CSV.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::DirectIdentifier => "direct_identifier",
            Category::QuasiIdentifier => "quasi_identifier",
            Category::DateTime => "date_time",
            Category::InstitutionDevice => "institution_device",
            Category::FreeText => "free_text",
            Category::PrivateAttribute => "private_attribute",
            Category::EmbeddedDocument => "embedded_document",
            Category::StructuredReport => "structured_report",
            Category::BurnedIn => "burned_in",
            Category::ClaimsClean => "claims_clean",
        }
    }

    /// A heading for people.
    pub fn label(self) -> &'static str {
        match self {
            Category::DirectIdentifier => "Direct identifiers",
            Category::QuasiIdentifier => "Quasi-identifiers",
            Category::DateTime => "Dates and times",
            Category::InstitutionDevice => "Institution, staff, device",
            Category::FreeText => "Identity in free text",
            Category::PrivateAttribute => "Private attributes (not known safe)",
            Category::EmbeddedDocument => "Embedded documents",
            Category::StructuredReport => "Structured reports",
            Category::BurnedIn => "Burned-in risk",
            Category::ClaimsClean => "Claims clean but is not",
        }
    }

    /// Whether a finding of this category is identity found (what
    /// `--expect-clean` fails on); burned-in risk is a risk only.
    pub fn is_identity(self) -> bool {
        self != Category::BurnedIn
    }

    /// Weight of one finding in a file's risk score.
    pub fn weight(self) -> u64 {
        match self {
            Category::DirectIdentifier | Category::EmbeddedDocument => 5,
            Category::ClaimsClean => 10,
            Category::FreeText | Category::StructuredReport | Category::BurnedIn => 4,
            Category::QuasiIdentifier | Category::PrivateAttribute => 2,
            Category::DateTime | Category::InstitutionDevice => 1,
        }
    }
}

/// One identifying value (or span of a value) found in a file.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// Where: tags from the top level, e.g. `0040,0275[0]/0032,1060`;
    /// private tags as `0033,{CREATOR}10` (`0009,1010` without a creator).
    pub path: String,
    /// The attribute's keyword (`CREATOR:EE` for private ones).
    pub keyword: String,
    /// The report category.
    pub category: Category,
    /// What found it: `attribute` (the attribute itself identifies, by the
    /// table or its person's sequence), `value-type` (a PN, DA, DT or AE
    /// value, wherever it is), `contextual` (a value the header holds, found
    /// again), `learned-name` (a name the patterns found elsewhere in the
    /// file or in the patient's other files), a pattern detector's name
    /// (`name-cue`, `id-shape`, `phone`...), `private-creator`, `burned-in`,
    /// `burned-in-text` (text found in the pixels; the value says where and
    /// why), `pixels-unreadable`, `markers`, `document-unreadable`.
    pub detector: String,
    /// The kind of identity (`name`, `date`, `id`...), where known.
    pub kind: Option<&'static str>,
    /// The identifying text (the whole value, or the span a detector found).
    pub value: String,
}

/// The patient a file belongs to, as its header says.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Patient {
    /// Patient's Name.
    pub name: String,
    /// Patient ID.
    pub id: String,
    /// Patient's Birth Date.
    pub birth_date: String,
}

/// What became of one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FileStatus {
    /// Read and scanned.
    Scanned,
    /// Not DICOM, empty, or a DICOMDIR.
    Skipped,
    /// DICOM that cannot be parsed safely (reason without PHI).
    Unreadable(String),
}

/// Everything the scan found in one file.
#[derive(Debug, Clone, Serialize)]
pub struct FileScan {
    /// Its path as given or found by the walk.
    pub path: String,
    /// Whether it was scanned.
    pub status: FileStatus,
    /// Its size in bytes.
    pub bytes: u64,
    /// Modality (0008,0060), if any.
    pub modality: Option<String>,
    /// SOP Class UID, if any.
    pub sop_class: Option<String>,
    /// Study Instance UID, if any.
    pub study: Option<String>,
    /// Its patient, if the header names one (placeholders excluded).
    pub patient: Option<Patient>,
    /// PatientIdentityRemoved is YES.
    pub marked_deidentified: bool,
    /// Private creators seen: (creator, group, known safe, elements).
    pub creators: Vec<(String, u16, bool, u64)>,
    /// Whether an encapsulated document is present.
    pub has_document: bool,
    /// Whether it is a structured report (has a Content Sequence).
    pub is_sr: bool,
    /// Every finding.
    pub findings: Vec<Finding>,
    /// Whom it belongs to, for reading it again with the names found in
    /// the patient's other files: Patient ID as written (a pseudonym or a
    /// fake one too), else Patient's Name.
    #[serde(skip)]
    pub patient_key: Option<String>,
    /// Names the pattern detectors found in it (DICOM person names of
    /// folded words).
    #[serde(skip)]
    pub learned_names: Vec<String>,
    /// The folded words of every name it holds or the patterns found in it,
    /// sorted: a name of the patient's other files made only of these needs
    /// no second reading.
    #[serde(skip)]
    pub name_words: Vec<String>,
}

impl FileScan {
    /// A file with nothing found yet.
    pub fn new(path: &Path, status: FileStatus, bytes: u64) -> FileScan {
        FileScan {
            path: path.display().to_string(),
            status,
            bytes,
            modality: None,
            sop_class: None,
            study: None,
            patient: None,
            marked_deidentified: false,
            creators: Vec::new(),
            has_document: false,
            is_sr: false,
            findings: Vec::new(),
            patient_key: None,
            learned_names: Vec::new(),
            name_words: Vec::new(),
        }
    }

    /// The file's risk score: the weighted count of its findings.
    pub fn score(&self) -> u64 {
        self.findings.iter().map(|f| f.category.weight()).sum()
    }

    /// Whether any finding is identity (not only a risk).
    pub fn has_identity(&self) -> bool {
        self.findings.iter().any(|f| f.category.is_identity())
    }
}

/// Every regular file under each of `paths` (or the path itself), sorted,
/// deduplicated.
pub fn discover(paths: &[PathBuf]) -> Result<Vec<PathBuf>, ScanError> {
    let mut out = Vec::new();
    for p in paths {
        let found = obscura_batch::paths::discover(p)
            .map_err(|e| ScanError::Input(p.clone(), e.to_string()))?;
        out.extend(found.into_iter().map(|(abs, _)| abs));
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// Scan `files` with `jobs` worker threads; `on_file` is called once per
/// file done (for a progress bar). Files come back in the order given.
/// With `pixels`, the frames of every file with pixel data are read for
/// burned-in text too (`obscura-redact`: the text Clean Pixel Data would
/// redact, each a finding with its frame, place and reason, never its
/// words).
///
/// Names the pattern detectors find in one file are the patient's: the
/// files of the same patient that do not hold them yet are read again
/// knowing them (`SZCZEPANSKI` alone in one file's description, after
/// `Leilani Szczepanski` in another's comments). Nothing is read again
/// where no pattern found a name.
pub fn scan(
    files: &[PathBuf],
    jobs: usize,
    pixels: bool,
    on_file: impl Fn() + Sync,
) -> Result<Vec<FileScan>, ScanError> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs.max(1))
        .build()
        .map_err(|e| ScanError::Threads(e.to_string()))?;
    let scans = pool.install(|| {
        let mut scans: Vec<FileScan> = files
            .par_iter()
            .map(|f| {
                let r = scan_one(f, &[], pixels);
                on_file();
                r
            })
            .collect();
        let mut names: HashMap<&str, BTreeSet<&str>> = HashMap::new();
        for s in &scans {
            if let (Some(key), false) = (&s.patient_key, s.learned_names.is_empty()) {
                let e = names.entry(key.as_str()).or_default();
                e.extend(s.learned_names.iter().map(String::as_str));
            }
        }
        let again: Vec<(usize, Vec<String>)> = scans
            .iter()
            .enumerate()
            .filter_map(|(i, s)| {
                let all = names.get(s.patient_key.as_deref()?)?;
                let missing: Vec<String> = all
                    .iter()
                    .filter(|n| {
                        n.split('^').any(|w| {
                            s.name_words
                                .binary_search_by(|x| x.as_str().cmp(w))
                                .is_err()
                        })
                    })
                    .map(|n| n.to_string())
                    .collect();
                (!missing.is_empty()).then_some((i, missing))
            })
            .collect();
        let rescans: Vec<(usize, FileScan)> = again
            .into_par_iter()
            .map(|(i, extra)| (i, scan_one(&files[i], &extra, pixels)))
            .collect();
        for (i, s) in rescans {
            scans[i] = s;
        }
        scans
    });
    // Tesseract engines, one per worker thread, freed before the pool is
    pool.broadcast(|_| obscura_redact::release_engine());
    Ok(scans)
}

/// One file, knowing `names` besides its own values; a panic in the parser
/// or a detector becomes an unreadable file, never the end of the scan.
fn scan_one(path: &Path, names: &[String], pixels: bool) -> FileScan {
    std::panic::catch_unwind(|| inspect::inspect_file_knowing(path, names, pixels)).unwrap_or_else(
        |_| {
            let status = FileStatus::Unreadable("internal error while scanning this file".into());
            FileScan::new(path, status, 0)
        },
    )
}
