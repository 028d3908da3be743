//! `obscura scan`: arguments, progress, reports and the exit status.

use crate::progress;
use anyhow::{Context, Result};
use clap::Args;
use obscura_audit::EventKind;
use obscura_scan::{render, Report};
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `obscura scan`.
#[derive(Args)]
pub struct ScanArgs {
    /// DICOM files, or folders walked recursively.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Worker threads (default: all cores).
    #[arg(long)]
    jobs: Option<usize>,
    /// Write every finding as JSON here (values masked unless --show-values).
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write a self-contained HTML report here (values masked).
    #[arg(long)]
    html: Option<PathBuf>,
    /// Write the distinct patients found (name, ID, birth date) as CSV here:
    /// PHI, written mode 0600.
    #[arg(long)]
    patients: Option<PathBuf>,
    /// Show the values found in the JSON report (it is then PHI).
    #[arg(long)]
    show_values: bool,
    /// Read every file's frames for burned-in text too (OCR; slow): each
    /// text Clean Pixel Data would redact is a finding (frame, place,
    /// reason; never the words read).
    #[arg(long)]
    pixels: bool,
    /// Exit 1, listing every finding, if any identity is found; 0 otherwise.
    #[arg(long)]
    expect_clean: bool,
    /// Record the run (counts and options; no file names) in the audit log
    /// of this `obscura serve` config's [audit].
    #[arg(long)]
    audit_config: Option<PathBuf>,
}

/// Run `obscura scan`.
pub fn run(args: ScanArgs) -> Result<ExitCode> {
    let jobs = args.jobs.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    let audit = crate::admin_audit::for_run(args.audit_config.as_deref())?;
    let files = obscura_scan::discover(&args.paths)?;
    let bar = progress::files_bar();
    bar.set_length(files.len() as u64);
    let scans = obscura_scan::scan(&files, jobs, args.pixels, || bar.inc(1))?;
    bar.finish_and_clear();
    let report = Report::new(scans);
    if let Some(path) = &args.json {
        let json = serde_json::to_vec_pretty(&render::json(&report, args.show_values))
            .context("cannot encode the JSON report")?;
        render::write_private(path, &json)?;
    }
    if let Some(path) = &args.html {
        render::write_private(path, render::html(&report).as_bytes())?;
    }
    if let Some(path) = &args.patients {
        render::write_private(path, render::patients_csv(&report).as_bytes())?;
    }
    print!("{}", render::summary_text(&report));
    if let Some(a) = &audit {
        let s = &report.summary;
        let detail = [
            ("scanned", s.scanned.to_string()),
            ("unreadable", s.unreadable.to_string()),
            ("identity_findings", s.identity_findings.to_string()),
            ("pixels", args.pixels.to_string()),
        ];
        a.post(
            EventKind::ScanRun,
            "run:scan",
            &detail,
            Some(s.files),
            Vec::new(),
        )?;
    }
    if args.expect_clean {
        if report.summary.identity_findings > 0 {
            println!("\nnot clean: identity found (file, tag path, category, detector):");
            print!("{}", render::identity_listing(&report));
            return Ok(ExitCode::from(1));
        }
        println!("\nclean: no identity found");
    }
    Ok(ExitCode::SUCCESS)
}
