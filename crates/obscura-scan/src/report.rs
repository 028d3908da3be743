//! The aggregate of a scan: counts, charts' data, patients, riskiest files.

use crate::{Category, FileScan, FileStatus, Patient};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// How many riskiest files the summary lists.
pub const RISKIEST: usize = 10;

/// One private creator (in one group) across the scan.
#[derive(Debug, Clone, Serialize)]
pub struct CreatorCount {
    /// The private creator as written.
    pub creator: String,
    /// Its group, e.g. `0029`.
    pub group: String,
    /// Whether the safe-private dictionary knows attributes of it.
    pub known_safe: bool,
    /// Files holding it.
    pub files: u64,
    /// Its elements, over all files.
    pub elements: u64,
}

/// One distinct patient across the scan.
#[derive(Debug, Clone, Serialize)]
pub struct PatientEntry {
    /// Name, ID and birth date as the headers hold them.
    pub patient: Patient,
    /// Files of this patient.
    pub files: u64,
    /// Distinct studies of this patient.
    pub studies: u64,
}

/// The figures of a scan.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    /// Files walked.
    pub files: u64,
    /// Files read and scanned.
    pub scanned: u64,
    /// Files skipped (not DICOM, empty, DICOMDIR).
    pub skipped: u64,
    /// DICOM files that could not be parsed.
    pub unreadable: u64,
    /// Bytes of all files walked.
    pub bytes: u64,
    /// Distinct patients.
    pub patients: u64,
    /// Distinct studies.
    pub studies: u64,
    /// Findings of every category.
    pub findings: u64,
    /// Findings that are identity (all but burned-in risk).
    pub identity_findings: u64,
    /// Files with at least one identity finding.
    pub files_with_identity: u64,
    /// Files whose pixels may carry burned-in identity.
    pub burned_in_files: u64,
    /// Files marked de-identified that still hold identity.
    pub claims_clean_files: u64,
    /// Files with an encapsulated document.
    pub document_files: u64,
    /// Structured reports.
    pub sr_files: u64,
    /// Findings by category (every category present, zeros included).
    pub by_category: BTreeMap<&'static str, u64>,
    /// Identity findings by modality (`none` without one).
    pub by_modality: BTreeMap<String, u64>,
}

/// The whole scan: figures and every file.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The figures.
    pub summary: Summary,
    /// Private creators, most elements first.
    pub private_creators: Vec<CreatorCount>,
    /// Distinct patients, most files first.
    pub patients: Vec<PatientEntry>,
    /// Indexes into `files` of the riskiest files, riskiest first.
    pub riskiest: Vec<usize>,
    /// Every file.
    pub files: Vec<FileScan>,
}

impl Report {
    /// Aggregate the scans of files.
    pub fn new(files: Vec<FileScan>) -> Report {
        let mut s = Summary::default();
        for c in Category::ALL {
            s.by_category.insert(c.as_str(), 0);
        }
        let mut studies = BTreeSet::new();
        let mut patients: BTreeMap<Patient, (u64, BTreeSet<String>)> = BTreeMap::new();
        let mut creators: BTreeMap<(String, u16), CreatorCount> = BTreeMap::new();
        for f in &files {
            s.files += 1;
            s.bytes += f.bytes;
            match f.status {
                FileStatus::Scanned => s.scanned += 1,
                FileStatus::Skipped => s.skipped += 1,
                FileStatus::Unreadable(_) => s.unreadable += 1,
            }
            if let Some(study) = &f.study {
                studies.insert(study.clone());
            }
            if let Some(p) = &f.patient {
                let e = patients.entry(p.clone()).or_default();
                e.0 += 1;
                if let Some(study) = &f.study {
                    e.1.insert(study.clone());
                }
            }
            for (c, g, safe, n) in &f.creators {
                let e = creators
                    .entry((c.clone(), *g))
                    .or_insert_with(|| CreatorCount {
                        creator: c.clone(),
                        group: format!("{g:04X}"),
                        known_safe: *safe,
                        files: 0,
                        elements: 0,
                    });
                e.files += 1;
                e.elements += n;
            }
            let mut identity = 0;
            for x in &f.findings {
                s.findings += 1;
                *s.by_category.entry(x.category.as_str()).or_default() += 1;
                if x.category.is_identity() {
                    identity += 1;
                }
                match x.category {
                    Category::BurnedIn => s.burned_in_files += 1,
                    Category::ClaimsClean => s.claims_clean_files += 1,
                    _ => {}
                }
            }
            s.identity_findings += identity;
            if identity > 0 {
                s.files_with_identity += 1;
                let m = f.modality.clone().unwrap_or_else(|| "none".into());
                *s.by_modality.entry(m).or_default() += identity;
            }
            s.document_files += u64::from(f.has_document);
            s.sr_files += u64::from(f.is_sr);
        }
        s.studies = studies.len() as u64;
        s.patients = patients.len() as u64;
        let mut patients: Vec<PatientEntry> = patients
            .into_iter()
            .map(|(patient, (files, st))| PatientEntry {
                patient,
                files,
                studies: st.len() as u64,
            })
            .collect();
        patients.sort_by(|a, b| {
            b.files
                .cmp(&a.files)
                .then_with(|| a.patient.cmp(&b.patient))
        });
        let mut private_creators: Vec<CreatorCount> = creators.into_values().collect();
        private_creators.sort_by(|a, b| {
            b.elements
                .cmp(&a.elements)
                .then_with(|| a.creator.cmp(&b.creator))
        });
        let mut riskiest: Vec<usize> = (0..files.len()).filter(|&i| files[i].score() > 0).collect();
        riskiest.sort_by(|&a, &b| files[b].score().cmp(&files[a].score()).then(a.cmp(&b)));
        riskiest.truncate(RISKIEST);
        Report {
            summary: s,
            private_creators,
            patients,
            riskiest,
            files,
        }
    }
}
