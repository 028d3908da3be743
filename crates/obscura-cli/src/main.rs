//! `obscura`: the command line over the Obscura crates. Parsing arguments,
//! finding the key, showing progress and choosing the exit status are all
//! that happen here.

mod audit;
mod deid;
mod explain;
mod keys;
mod profile_args;
mod profile_show;
mod progress;
mod scan;
mod serve;
mod status;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// mimalloc: parsing headers allocates many small values, and glibc's
/// allocator took a third of a header-only scan's time.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Make medical images safe to share: de-identify DICOM per PS3.15 Annex E
/// (deid), find the identity an archive holds (scan), and run a
/// de-identifying DICOM gateway (serve).
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
    /// Show a gateway's queue: depth, per-destination state, recent errors.
    Status(status::StatusArgs),
    /// Check a tamper-evident audit log (see docs/audit.md).
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Write a new random key to PATH (readable by its owner only).
    Keygen {
        /// Where to write the key; an existing file is never overwritten.
        path: std::path::PathBuf,
    },
}

#[derive(Subcommand)]
enum ProfileCommand {
    /// Print the effective table: every attribute of PS3.15 Table E.1-1, the
    /// action the profile applies and the rule that chose it.
    Show(profile_args::ProfileArgs),
}

fn main() -> ExitCode {
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
        Command::Status(args) => status::run(&args).map(|()| ExitCode::SUCCESS),
        Command::Audit(cmd) => audit::run(cmd),
        Command::Keygen { path } => keys::keygen(&path).map(|()| {
            eprintln!("wrote a new key to {}", path.display());
            ExitCode::SUCCESS
        }),
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
