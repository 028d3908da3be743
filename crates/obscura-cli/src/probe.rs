//! `obscura probe`: arguments, the terminal table, JSON, the exit status.

use anyhow::{Context, Result};
use clap::Args;
use obscura_probe::{
    parse_target, parse_targets_file, target_addresses, AllowList, ProbeOptions, Severity,
    TrustStore, CONFIRM_ABOVE_ADDRESSES,
};
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Arguments of `obscura probe`.
#[derive(Args)]
pub struct ProbeArgs {
    /// Endpoints to audit, HOST[:PORT] or a CIDR range ADDRESS/PREFIX[:PORT]
    /// (at most 4,096 addresses; above 256 in all, --yes or a confirmation);
    /// without a port the DICOM ports 104, 11112, 2761, 2762, 4242 and the
    /// HTTP(S) ports 80, 443, 8042, 8080 are tried. Probe only what you run.
    #[arg(required_unless_present = "targets_file")]
    targets: Vec<String>,
    /// Read targets from this file: one HOST[:PORT] or range a line, `#` comments.
    #[arg(long)]
    targets_file: Option<PathBuf>,
    /// Probe more than 256 addresses from ranges without asking.
    #[arg(long)]
    yes: bool,
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
    /// The site's CA certificate(s), PEM, trusted beside the system's roots
    /// when verifying server certificate chains (repeatable).
    #[arg(long = "ca-file")]
    ca_file: Vec<PathBuf>,
    /// Verify chains against the --ca-file certificates only, not the system's roots.
    #[arg(long)]
    no_system_roots: bool,
    /// Also run the intrusive checks (a synthetic, marked C-STORE; documented
    /// default web passwords), on the --allow targets only.
    #[arg(long, requires = "allow")]
    intrusive: bool,
    /// A target the intrusive checks may touch: HOST (every port) or HOST:PORT (repeatable).
    #[arg(long, requires = "intrusive")]
    allow: Vec<String>,
}

/// Run `obscura probe`.
pub fn run(args: ProbeArgs) -> Result<ExitCode> {
    let mut given = args.targets.clone();
    if let Some(path) = &args.targets_file {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        given.extend(parse_targets_file(&text));
    }
    let mut targets = Vec::new();
    let mut range_addresses = 0u128;
    for t in &given {
        targets.extend(parse_target(t)?);
        if t.contains('/') {
            range_addresses += target_addresses(t)?;
        }
    }
    if targets.is_empty() {
        eprintln!("obscura probe: no targets");
        return Ok(ExitCode::from(2));
    }
    if range_addresses > CONFIRM_ABOVE_ADDRESSES
        && !args.yes
        && !confirm(range_addresses, targets.len())
    {
        eprintln!(
            "obscura probe: {range_addresses} addresses from ranges (more than {CONFIRM_ABOVE_ADDRESSES}): \
             confirm with --yes"
        );
        return Ok(ExitCode::from(2));
    }
    let mut trust = if args.no_system_roots {
        TrustStore::empty()
    } else {
        TrustStore::system()
    };
    for path in &args.ca_file {
        trust
            .add_pem_file(path)
            .map_err(|e| anyhow::anyhow!("--ca-file {e}"))?;
    }
    let mut options = ProbeOptions::new();
    options.trust = trust;
    if args.intrusive {
        options.intrusive = Some(AllowList::new(&args.allow)?);
    }
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

/// Asks on the terminal whether to probe that many addresses; `false`
/// without a terminal on stdin or on any answer but y/yes.
fn confirm(addresses: u128, endpoints: usize) -> bool {
    if !std::io::stdin().is_terminal() {
        return false;
    }
    eprint!("Probe {addresses} addresses ({endpoints} endpoints)? Only what you run. [y/N] ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    if std::io::stdin().lock().read_line(&mut line).is_err() {
        return false;
    }
    matches!(line.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}
