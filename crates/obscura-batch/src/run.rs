//! A whole run: every file of the input, in parallel, into the output.

use crate::outcome::{FileReport, Outcome, RunReport};
use crate::paths::{check_separate, discover};
use crate::process::{process_file, write_atomically, FileSettings, Mappings};
use crate::BatchError;
use obscura_deid::Deidentifier;
use rayon::prelude::*;
use std::io::Write;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

/// What a run reads, writes and allows.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// A file, or a folder walked recursively.
    pub input: PathBuf,
    /// The folder that mirrors the input's relative paths.
    pub output: PathBuf,
    /// Where quarantined originals are also copied, if anywhere.
    pub quarantine: Option<PathBuf>,
    /// Worker threads.
    pub jobs: usize,
    /// Per-file settings.
    pub settings: FileSettings,
}

/// The result of a run: the report and the pseudonym mappings it made.
pub struct RunResult {
    /// The report (no PHI).
    pub report: RunReport,
    /// The mappings (PHI: they re-identify).
    pub mappings: Mappings,
}

/// Run the engine over every file of `config.input`. `on_file` is called once
/// per file, from worker threads, as each finishes (for progress display).
pub fn run(
    config: &RunConfig,
    engine: &Deidentifier,
    on_total: impl FnOnce(u64),
    on_file: impl Fn(&FileReport) + Sync,
) -> Result<RunResult, BatchError> {
    let started = Instant::now();
    check_separate(&config.input, &config.output)?;
    if let Some(q) = &config.quarantine {
        check_separate(&config.input, q)?;
    }
    let files = discover(&config.input)?;
    on_total(files.len() as u64);
    std::fs::create_dir_all(&config.output)
        .map_err(|e| BatchError::Output(config.output.clone(), e))?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(config.jobs.max(1))
        .build()
        .map_err(|e| BatchError::Threads(e.to_string()))?;
    let merged = Mutex::new(Mappings::default());
    let mut reports: Vec<FileReport> = pool.install(|| {
        files
            .par_iter()
            .map(|(path, rel)| {
                let mut mappings = Mappings::default();
                // a panic (a bug) quarantines this one file, not the batch
                let output = config.output.join(rel);
                let outcome = catch_unwind(AssertUnwindSafe(|| {
                    process_file(engine, config.settings, path, &output, &mut mappings)
                }))
                .unwrap_or_else(|_| Outcome::internal_error());
                if let (Outcome::Quarantined { .. }, Some(q)) = (&outcome, &config.quarantine) {
                    copy_to_quarantine(path, &q.join(rel));
                }
                if let Ok(mut m) = merged.lock() {
                    m.uids.extend(mappings.uids);
                    m.patients.extend(mappings.patients);
                }
                let report = FileReport {
                    path: rel.to_string_lossy().into_owned(),
                    outcome,
                };
                on_file(&report);
                report
            })
            .collect()
    });
    pool.broadcast(|_| obscura_redact::release_engine());
    reports.sort_by(|a, b| a.path.cmp(&b.path));
    let profile = engine.profile();
    let report = RunReport::tally(
        profile.method_description(),
        profile
            .codes()
            .iter()
            .map(|c| c.value.to_string())
            .collect(),
        obscura_deid::table::EDITION,
        reports,
        started.elapsed().as_secs_f64(),
    );
    let mappings = merged.into_inner().unwrap_or_default();
    Ok(RunResult { report, mappings })
}

/// Copy a quarantined original (best effort: the report already says why it
/// was quarantined, and the original stays where it was).
fn copy_to_quarantine(from: &Path, to: &Path) {
    let _ = write_atomically(to, |mut out| {
        let mut f = std::fs::File::open(from).map_err(|e| e.to_string())?;
        std::io::copy(&mut f, &mut out).map_err(|e| e.to_string())
    });
}

/// Write `uid_mapping.csv` and `patid_mapping.csv` (`id_old,id_new`) into
/// `dir`, readable by the owner only: they re-identify.
pub fn write_mappings(dir: &Path, mappings: &Mappings) -> Result<(), BatchError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir).map_err(|e| BatchError::Output(dir.to_path_buf(), e))?;
    for (name, map) in [
        ("uid_mapping.csv", &mappings.uids),
        ("patid_mapping.csv", &mappings.patients),
    ] {
        let path = dir.join(name);
        let mut text = String::from("id_old,id_new\n");
        for (old, new) in map {
            text.push_str(&csv_field(old.trim_start_matches('\u{1}')));
            text.push(',');
            text.push_str(&csv_field(new));
            text.push('\n');
        }
        write_atomically(&path, |mut w| {
            w.write_all(text.as_bytes()).map_err(|e| e.to_string())
        })
        .map_err(|e| BatchError::Output(path.clone(), std::io::Error::other(e)))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| BatchError::Output(path.clone(), e))?;
    }
    Ok(())
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}
