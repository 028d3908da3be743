//! `obscura breach-report` and `obscura audit verify-report`: the
//! breach-impact report from a serve config's audit log and archive, and
//! its offline check (see docs/audit.md).

use anyhow::{bail, Context, Result};
use obscura_breach::{output, time, Request};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::SystemTime;

/// Arguments of `obscura breach-report`.
#[derive(clap::Args)]
pub struct BreachArgs {
    /// The `obscura serve` config: its [audit] log and keys, its [archive].
    #[arg(long)]
    config: PathBuf,
    /// The principal: `name@tenant` (DICOMweb; `name` alone: in every
    /// tenant), a DICOM peer, or a destination instances were forwarded to.
    #[arg(long)]
    principal: String,
    /// The window's start (RFC 3339 or YYYY-MM-DD, UTC unless an offset is given).
    #[arg(long)]
    from: String,
    /// The window's end, included.
    #[arg(long)]
    to: String,
    /// When the breach was discovered (default: now); deadlines run from it.
    #[arg(long)]
    discovered: Option<String>,
    /// Resolve against this tenant (id or name); repeatable. Default: the
    /// principal's tenant if it names one, else every tenant.
    #[arg(long = "tenant")]
    tenants: Vec<String>,
    /// A checkpoint kept outside the log (a witness copy); repeatable.
    #[arg(long = "checkpoint", value_name = "FILE")]
    checkpoints: Vec<PathBuf>,
    /// A destination that receives originals, not de-identified copies; repeatable.
    #[arg(long = "identified-destination", value_name = "NAME")]
    identified_destinations: Vec<String>,
    /// The folder to write breach-report.json, .html and notify.csv to (mode 0600).
    #[arg(long)]
    out: PathBuf,
}

fn instant(text: &str, what: &str) -> Result<SystemTime> {
    time::parse(text).with_context(|| format!("--{what}: not a date or RFC 3339 time"))
}

/// `obscura breach-report`.
pub fn report(args: BreachArgs) -> Result<ExitCode> {
    let config = obscura_gateway::Config::load(&args.config)?;
    let audit = config
        .audit
        .as_ref()
        .with_context(|| format!("{} has no [audit] section", args.config.display()))?;
    let archive = config
        .archive()
        .with_context(|| format!("{} has no [archive] section", args.config.display()))?;
    let signer = obscura_audit::Signer::load(&config.path(&audit.signing_key))
        .context("[audit] signing_key")?;
    let key =
        obscura_audit::AuditKey::load(&config.path(&audit.key_file)).context("[audit] key_file")?;
    let (from, to) = (instant(&args.from, "from")?, instant(&args.to, "to")?);
    if from > to {
        bail!("--from is after --to");
    }
    let discovered = match &args.discovered {
        Some(d) => instant(d, "discovered")?,
        None => SystemTime::now(),
    };
    let mut outside = Vec::new();
    for p in &args.checkpoints {
        let text =
            std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?;
        outside.push((p.display().to_string(), text));
    }
    let vault = crate::archive::open_section(&archive)?;
    let mut names = args.tenants.clone();
    if names.is_empty() {
        if let Some((_, t)) = args.principal.rsplit_once('@') {
            names.push(t.to_string());
        }
    }
    let tenants = names
        .iter()
        .map(|n| crate::archive::find_tenant(&vault, n).map(|t| t.id))
        .collect::<Result<Vec<_>>>()?;
    let owner = obscura_breach::owner_records(&vault, &tenants)?;
    let req = Request {
        log_dir: config.path(&audit.dir),
        verifier: signer.verifier(),
        outside,
        principal: args.principal.clone(),
        from,
        to,
        discovered,
        identified_destinations: args.identified_destinations.iter().cloned().collect(),
    };
    let (report, rows) = obscura_breach::build(&req, &key, &owner)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let json = args.out.join("breach-report.json");
    output::write_private(&json, output::json(&report).as_bytes())?;
    output::write_private(
        &args.out.join("breach-report.html"),
        output::html(&report).as_bytes(),
    )?;
    output::write_private(&args.out.join("notify.csv"), output::csv(&rows).as_bytes())?;
    let unresolved = report.patients.iter().filter(|p| !p.resolved).count();
    println!(
        "{} events of {}: {} patients ({} not resolved), {} studies, {} providers; {} notices; written to {}",
        report.events.len(),
        report.principal,
        report.patients.len(),
        unresolved,
        report.studies.len(),
        report.providers.len(),
        report.notices.len(),
        args.out.display()
    );
    if report.log.unsigned_events > 0 {
        println!(
            "UNSIGNED: {} events are covered by no checkpoint yet (no proof)",
            report.log.unsigned_events
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Arguments of `obscura audit verify-report`.
#[derive(clap::Args)]
pub struct VerifyReportArgs {
    /// The report (breach-report.json).
    report: PathBuf,
    /// The log's public key (`name+id+base64`).
    #[arg(long, value_name = "FILE")]
    public_key: PathBuf,
    /// The log folder: also show that the report holds every event of the
    /// principal in the window.
    #[arg(long, value_name = "DIR")]
    log: Option<PathBuf>,
}

/// `obscura audit verify-report`: exit 0 if the report is what it says, 1 if not.
pub fn verify_report(args: VerifyReportArgs) -> Result<ExitCode> {
    let verifier = obscura_audit::Verifier::load(&args.public_key)
        .with_context(|| format!("cannot load public key {}", args.public_key.display()))?;
    let text = std::fs::read_to_string(&args.report)
        .with_context(|| format!("cannot read {}", args.report.display()))?;
    let report =
        obscura_breach::check::parse(&text).with_context(|| args.report.display().to_string())?;
    let c = obscura_breach::check::check(&report, &verifier, args.log.as_deref().map(Path::new))?;
    for p in &c.problems {
        println!("  - {p}");
    }
    let complete = match c.complete {
        Some(true) => "; complete against the log",
        Some(false) => "; INCOMPLETE against the log",
        None => "",
    };
    let summary = format!(
        "{} events proven against the checkpoint of size {}, {} not yet covered{complete}",
        c.proven, c.checkpoint_size, c.unsigned
    );
    if c.problems.is_empty() {
        println!("OK: {summary}");
        Ok(ExitCode::SUCCESS)
    } else {
        println!("FAILED: {} problems ({summary})", c.problems.len());
        Ok(ExitCode::from(1))
    }
}
