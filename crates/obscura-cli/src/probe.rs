//! `obscura probe`: arguments, the terminal table, JSON, the exit status.

use anyhow::{Context, Result};
use clap::Args;
use obscura_probe::{parse_target, ProbeOptions, Severity};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Arguments of `obscura probe`.
#[derive(Args)]
pub struct ProbeArgs {
    /// Endpoints to audit, HOST[:PORT]; without a port the DICOM ports
    /// 104, 11112, 2761, 2762, 4242 and the HTTP(S) ports 80, 443, 8042,
    /// 8080 are tried. Probe only what you run.
    #[arg(required = true)]
    targets: Vec<String>,
    /// Write the full report as JSON here (counts and keyed hashes, no values).
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write a self-contained HTML report here (inline CSS, no external resources).
    #[arg(long)]
    html: Option<PathBuf>,
    /// Exit 1 if any high or critical finding is made (for CI pipelines).
    #[arg(long)]
    expect_secure: bool,
    /// A called AE title to try before the common ones (repeatable).
    #[arg(long = "called-ae")]
    called_ae: Vec<String>,
    /// At most this many associations started per second.
    #[arg(long, default_value_t = 10)]
    rate: u32,
    /// Time budget per endpoint, seconds.
    #[arg(long, default_value_t = 10)]
    budget: u64,
}

/// Run `obscura probe`.
pub fn run(args: ProbeArgs) -> Result<ExitCode> {
    let mut targets = Vec::new();
    for t in &args.targets {
        targets.extend(parse_target(t)?);
    }
    let mut options = ProbeOptions::new();
    options.max_associations_per_second = args.rate.clamp(1, 10);
    options.endpoint_budget = Duration::from_secs(args.budget.clamp(1, 60));
    options.called_ae_titles = args.called_ae.clone();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let report = runtime.block_on(obscura_probe::probe(&targets, &options));
    print!("{}", obscura_probe::table(&report));
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&report)?;
        std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &args.html {
        std::fs::write(path, obscura_probe::html(&report))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if args.expect_secure && report.count_at_least(Severity::High) > 0 {
        eprintln!(
            "obscura probe: {} high or critical finding(s)",
            report.count_at_least(Severity::High)
        );
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}
