//! `obscura audit`: checking an audit log offline.

use anyhow::{Context, Result};
use obscura_audit::{Verdict, Verifier};
use std::path::PathBuf;
use std::process::ExitCode;

/// The `audit` subcommands.
#[derive(clap::Subcommand)]
pub enum AuditCommand {
    /// Recompute an audit log's Merkle tree, check its signed checkpoints and
    /// its consistency with checkpoints kept elsewhere. Exit 0: OK; 1:
    /// tampered, or records no outside checkpoint covers (unanchored); 2: error.
    Verify(VerifyArgs),
    /// Write a new checkpoint signing key (mode 0600, never overwritten) and
    /// its public key. NAME is the log's origin, e.g. `pacs.example/audit`.
    Keygen {
        /// The log's origin and key name (no spaces, no `+`).
        name: String,
        /// The signing key file to create.
        key_file: PathBuf,
        /// The public key file to write.
        public_file: PathBuf,
    },
}

/// Arguments of `obscura audit verify`.
#[derive(clap::Args)]
pub struct VerifyArgs {
    /// The log folder.
    log_dir: PathBuf,
    /// A checkpoint kept outside the log (a witness copy); repeatable.
    #[arg(long = "checkpoint", value_name = "FILE")]
    checkpoints: Vec<PathBuf>,
    /// The log's public key (`name+id+base64`).
    #[arg(long, value_name = "FILE")]
    public_key: PathBuf,
}

/// Run a subcommand; the exit status is the verdict.
pub fn run(cmd: AuditCommand) -> Result<ExitCode> {
    let args = match cmd {
        AuditCommand::Verify(args) => args,
        AuditCommand::Keygen {
            name,
            key_file,
            public_file,
        } => {
            let signer = obscura_audit::Signer::generate(&name)?;
            signer.save(&key_file, &public_file)?;
            eprintln!(
                "wrote {} (secret) and {} (public: give it to whoever verifies)",
                key_file.display(),
                public_file.display()
            );
            return Ok(ExitCode::SUCCESS);
        }
    };
    let verifier = Verifier::load(&args.public_key)
        .with_context(|| format!("cannot load public key {}", args.public_key.display()))?;
    let report = obscura_audit::verify(&args.log_dir, &args.checkpoints, &verifier)?;
    for f in &report.findings {
        println!("  - {f}");
    }
    let summary = format!(
        "{} records; {} stored checkpoints, latest valid at {}; {} outside checkpoints, latest valid at {}",
        report.records,
        report.stored_checkpoints,
        report.signed,
        report.outside_checkpoints,
        report.anchored
    );
    Ok(match report.verdict {
        Verdict::Ok => {
            println!("OK: {summary}");
            ExitCode::SUCCESS
        }
        Verdict::Unanchored { anchored, records } => {
            if anchored < records {
                println!(
                    "UNANCHORED: records {}..{} are covered by no outside checkpoint; they could have been changed or cut unseen ({summary})",
                    anchored + 1,
                    records
                );
            } else {
                println!("UNANCHORED: see above ({summary})");
            }
            ExitCode::from(1)
        }
        Verdict::Tampered => {
            println!("TAMPERED: {} findings ({summary})", report.findings.len());
            ExitCode::from(1)
        }
    })
}
