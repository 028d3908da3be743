//! `obscura deid`: arguments, progress and the summary.

use crate::admin_audit;
use crate::explain;
use crate::keys;
use crate::profile_args::ProfileArgs;
use crate::progress;
use anyhow::{Context, Result};
use clap::Args;
use obscura_audit::EventKind;
use obscura_batch::{
    run as run_batch, write_mappings, FileSettings, Outcome, RunConfig, RunReport,
};
use obscura_deid::{Deidentifier, Pseudonymizer};
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `obscura deid`.
#[derive(Args)]
pub struct DeidArgs {
    /// A DICOM file, or a folder walked recursively.
    input: PathBuf,
    /// The output folder; it mirrors the input's relative paths.
    #[arg(required_unless_present = "explain")]
    output: Option<PathBuf>,
    /// Write nothing: print, for the one input file, every element's action
    /// and the rule that chose it (values are not shown).
    #[arg(long)]
    explain: bool,
    #[command(flatten)]
    profile: ProfileArgs,
    /// The secret key file (64 hex digits; see `obscura keygen`). Default: a
    /// key created on first use under your config folder.
    #[arg(long, env = "OBSCURA_KEY_FILE")]
    key_file: Option<PathBuf>,
    /// Worker threads (default: all cores).
    #[arg(long)]
    jobs: Option<usize>,
    /// Also copy quarantined originals into this folder.
    #[arg(long)]
    quarantine: Option<PathBuf>,
    /// Write files whose pixels may carry burned-in identity anyway.
    #[arg(long)]
    allow_burned_in: bool,
    /// Write the run report (JSON, no PHI) here.
    #[arg(long)]
    report: Option<PathBuf>,
    /// Write uid_mapping.csv and patid_mapping.csv here (they re-identify: mode 0600).
    #[arg(long)]
    mapping_out: Option<PathBuf>,
    /// Record the run (counts, profile, options, the output folder; no file
    /// names) in the audit log of this `obscura serve` config's [audit].
    #[arg(long)]
    audit_config: Option<PathBuf>,
}

/// Run `obscura deid`.
pub fn run(args: DeidArgs) -> Result<ExitCode> {
    let key = keys::resolve(args.key_file.as_deref())?;
    let audit = admin_audit::for_run(args.audit_config.as_deref())?;
    let profile = args.profile.load()?;
    let settings = [
        ("profile", profile.name.clone()),
        (
            "options",
            profile
                .options()
                .map(|o| o.name())
                .collect::<Vec<_>>()
                .join(","),
        ),
    ];
    let engine = Deidentifier::new(profile, Pseudonymizer::new(key));
    let Some(output) = args.output.clone().filter(|_| !args.explain) else {
        explain::run(&engine, &args.input)?;
        return Ok(ExitCode::SUCCESS);
    };
    let jobs = args.jobs.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    let config = RunConfig {
        input: args.input.clone(),
        output,
        quarantine: args.quarantine.clone(),
        jobs,
        settings: FileSettings {
            allow_burned_in: args.allow_burned_in,
            limits: Default::default(),
        },
    };
    let bar = progress::files_bar();
    let result = run_batch(&config, &engine, |n| bar.set_length(n), |_| bar.inc(1))?;
    bar.finish_and_clear();
    if let Some(path) = &args.report {
        let json = serde_json::to_vec_pretty(&result.report).context("cannot encode the report")?;
        std::fs::write(path, json)
            .with_context(|| format!("cannot write report {}", path.display()))?;
    }
    if let Some(dir) = &args.mapping_out {
        write_mappings(dir, &result.mappings)?;
    }
    print_summary(&result.report);
    if let Some(a) = &audit {
        let c = &result.report.counts;
        let mut detail = settings.to_vec();
        detail.extend([
            ("output", config.output.display().to_string()),
            ("written", c.written.to_string()),
            ("quarantined", c.quarantined.to_string()),
            ("skipped", c.skipped.to_string()),
            ("allow_burned_in", args.allow_burned_in.to_string()),
        ]);
        a.post(
            EventKind::DeidRun,
            "run:deid",
            &detail,
            Some(c.files),
            Vec::new(),
        )?;
    }
    Ok(if result.report.counts.quarantined > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn print_summary(report: &RunReport) {
    let c = &report.counts;
    let secs = report.elapsed_seconds.max(1e-9);
    eprintln!(
        "written {} of {} files ({:.1} MB in, {:.1} MB out) in {:.2} s, {:.0} files/s",
        c.written,
        c.files,
        c.bytes_in as f64 / 1e6,
        c.bytes_out as f64 / 1e6,
        secs,
        c.files as f64 / secs
    );
    for (reason, n) in &report.quarantined_by_reason {
        eprintln!("quarantined {n}: {}", reason.code());
    }
    for (reason, n) in &report.skipped_by_reason {
        eprintln!("skipped {n}: {}", reason.code());
    }
    for f in report
        .files
        .iter()
        .filter(|f| matches!(f.outcome, Outcome::Quarantined { .. }))
    {
        if let Outcome::Quarantined { detail, .. } = &f.outcome {
            eprintln!("  quarantined {}: {detail}", f.path);
        }
    }
}
