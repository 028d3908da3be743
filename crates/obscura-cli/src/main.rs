//! `obscura`: the command line over the Obscura crates. Parsing arguments,
//! finding the key, showing progress and choosing the exit status are all
//! that happen here.

mod admin_audit;
mod alerts;
mod archive;
mod audit;
mod audit_syslog;
mod breach;
mod deid;
mod explain;
mod grant;
mod keys;
mod probe;
mod profile_args;
mod profile_show;
mod progress;
mod scan;
mod serve;
mod serve_alerts;
mod serve_audit;
mod share;
mod status;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// mimalloc: parsing headers allocates many small values, and glibc's
/// allocator took a third of a header-only scan's time.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Make medical images safe to share: de-identify DICOM per PS3.15 Annex E
/// (deid), find the identity an archive holds (scan), and run a
/// de-identifying DICOM gateway (serve), audit DICOM endpoints (probe).
#[derive(Parser)]
#[command(name = "obscura", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// De-identify a DICOM file or folder (walked recursively) into OUTPUT.
    Deid(deid::DeidArgs),
    /// Find the identity DICOM files hold (headers only) and report the exposure.
    Scan(scan::ScanArgs),
    /// Show profiles.
    #[command(subcommand)]
    Profile(ProfileCommand),
    /// Run the DICOM gateway: receive from known peers, de-identify per
    /// destination, forward (see docs/gateway.md).
    Serve(serve::ServeArgs),
    /// Audit your own DICOM and DICOMweb endpoints for open doors (AE titles,
    /// services, unauthenticated queries, QIDO/WADO/STOW, Orthanc's REST API,
    /// TLS, possible CVEs) without reading patient data (see docs/probe.md).
    Probe(probe::ProbeArgs),
    /// Show a gateway's queue: depth, per-destination state, recent errors.
    Status(status::StatusArgs),
    /// Manage the archive's tenants (create, list, shred).
    #[command(subcommand)]
    Tenant(archive::TenantCommand),
    /// Manage who may reach what in the archive over DICOMweb (add, list,
    /// show, revoke; see docs/access.md).
    #[command(subcommand)]
    Grant(grant::GrantCommand),
    /// Manage labels: named collections of a tenant's studies that grants
    /// can name (add, remove, list, show).
    #[command(subcommand)]
    Label(share::LabelCommand),
    /// Share one study with someone outside the identity provider: prints
    /// a capability URL (read-only, expiring, revocable).
    Share(share::ShareArgs),
    /// Check a tamper-evident audit log (see docs/audit.md).
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// The breach-impact report: what a principal touched in a time window,
    /// whom to notify and by when, with proofs (see docs/audit.md).
    BreachReport(breach::BreachArgs),
    /// Alerts on abnormal access from an audit log; the access simulator
    /// (see docs/alerts.md).
    #[command(subcommand)]
    Alerts(alerts::AlertsCommand),
    /// Write a new random key to PATH (readable by its owner only).
    Keygen {
        /// Where to write the key; an existing file is never overwritten.
        path: std::path::PathBuf,
        /// Record the new key (its path and id, never the key) in the audit
        /// log of this serve config's `[audit]` section.
        #[arg(long)]
        audit_config: Option<std::path::PathBuf>,
    },
}

#[derive(Subcommand)]
enum ProfileCommand {
    /// Print the effective table: every attribute of PS3.15 Table E.1-1, the
    /// action the profile applies and the rule that chose it.
    Show(profile_args::ProfileArgs),
}

/// Tesseract (linked with OpenMP) starts a team of threads in every OCR
/// call; with a worker per core they spin against each other, and a third
/// of a clean-pixel-data run's CPU went to the kernel. libgomp reads its
/// limit once, when the program is loaded: run again with one OpenMP
/// thread (each worker already has its own engine), unless the user set
/// it. If the re-run cannot start, carry on as we are.
fn one_openmp_thread() {
    use std::os::unix::process::CommandExt;
    if std::env::var_os("OMP_THREAD_LIMIT").is_some() {
        return;
    }
    let mut args = std::env::args_os();
    if let (Ok(exe), Some(arg0)) = (std::env::current_exe(), args.next()) {
        let _failed = std::process::Command::new(exe)
            .arg0(arg0)
            .args(args)
            .env("OMP_THREAD_LIMIT", "1")
            .exec();
    }
}

fn main() -> ExitCode {
    one_openmp_thread();
    // dicom-rs ends every data set it parses with an end-of-input error; with
    // RUST_BACKTRACE set, each such error would capture a backtrace (a few
    // percent of a whole run). Library errors never print one here, so their
    // capture is off unless asked for by RUST_LIB_BACKTRACE itself. Set
    // before any thread starts.
    if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        std::env::set_var("RUST_LIB_BACKTRACE", "0");
    }
    // A panic message could quote a value from a file: print only where it
    // happened, never what it said.
    std::panic::set_hook(Box::new(|info| {
        let at = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!("obscura: internal error at {at} (message withheld: it may quote PHI)");
    }));
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Deid(args) => deid::run(args),
        Command::Scan(args) => scan::run(args),
        Command::Profile(ProfileCommand::Show(args)) => {
            profile_show::run(&args).map(|()| ExitCode::SUCCESS)
        }
        Command::Serve(args) => serve::run(&args).map(|()| ExitCode::SUCCESS),
        Command::Probe(args) => probe::run(args),
        Command::Status(args) => status::run(&args).map(|()| ExitCode::SUCCESS),
        Command::Tenant(cmd) => archive::run(&cmd).map(|()| ExitCode::SUCCESS),
        Command::Grant(cmd) => grant::run(&cmd).map(|()| ExitCode::SUCCESS),
        Command::Label(cmd) => share::label(&cmd).map(|()| ExitCode::SUCCESS),
        Command::Share(args) => share::share(&args).map(|()| ExitCode::SUCCESS),
        Command::Audit(cmd) => audit::run(cmd),
        Command::Alerts(cmd) => alerts::run(cmd),
        Command::BreachReport(args) => breach::report(args),
        Command::Keygen { path, audit_config } => {
            keys::keygen_command(&path, audit_config.as_deref()).map(|()| ExitCode::SUCCESS)
        }
    };
    result.unwrap_or_else(|e| {
        let closed_pipe = e
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe);
        if closed_pipe {
            // `obscura profile show | head`: the reader has all it wants
            return ExitCode::SUCCESS;
        }
        eprintln!("obscura: error: {e:#}");
        ExitCode::from(2)
    })
}
