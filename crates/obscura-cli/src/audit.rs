//! `obscura audit`: checking an audit log offline.

use anyhow::{Context, Result};
use obscura_audit::{Verdict, Verifier};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The `audit` subcommands.
#[derive(clap::Subcommand)]
pub enum AuditCommand {
    /// Recompute an audit log's Merkle tree, check its signed checkpoints and
    /// its consistency with checkpoints kept elsewhere. Exit 0: OK; 1:
    /// tampered, or records no outside checkpoint covers (unanchored); 2: error.
    Verify(VerifyArgs),
    /// Write a log's records to standard output, one per line: JSON lines
    /// (the records as stored) or DICOM PS3.15 A.5 audit messages (XML,
    /// one per patient per IHE BALP). Keyed hashes only, no PHI.
    Export(ExportArgs),
    /// Check a breach report offline: its checkpoint's signature, every
    /// event's inclusion proof, and what it derives from them (with --log,
    /// also that it holds every event of the principal in the window).
    /// Exit 0: OK; 1: not what it says; 2: error.
    VerifyReport(crate::breach::VerifyReportArgs),
    /// Write a new checkpoint signing key (mode 0600, never overwritten) and
    /// its public key. NAME is the log's origin, e.g. `pacs.example/audit`.
    /// With --audit-config, post a `key-change` record (the key's id and
    /// public key fingerprint, never the key) to that config's log.
    Keygen {
        /// The log's origin and key name (no spaces, no `+`).
        name: String,
        /// The signing key file to create.
        key_file: PathBuf,
        /// The public key file to write.
        public_file: PathBuf,
        /// A serve config whose `[audit]` log records the new key.
        #[arg(long, value_name = "FILE")]
        audit_config: Option<PathBuf>,
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

/// Arguments of `obscura audit export`.
#[derive(clap::Args)]
pub struct ExportArgs {
    /// The log folder.
    log_dir: PathBuf,
    /// `json` (JSON lines) or `dicom` (A.5 XML, one message per line).
    #[arg(long, default_value = "json", value_parser = ["json", "dicom"])]
    format: String,
    /// The first record to write (its index).
    #[arg(long, default_value_t = 0)]
    from: u64,
    /// AuditSourceID of the DICOM messages (default: the log's origin).
    #[arg(long)]
    source_id: Option<String>,
}

/// `obscura audit export`.
fn export(args: ExportArgs) -> Result<ExitCode> {
    use std::io::Write;
    let reader = obscura_audit::LogReader::open(&args.log_dir)
        .with_context(|| format!("cannot read the log at {}", args.log_dir.display()))?;
    let origin = std::fs::read_to_string(args.log_dir.join("checkpoint"))
        .ok()
        .and_then(|t| t.lines().next().map(str::to_string))
        .unwrap_or_else(|| "obscura".into());
    let source = obscura_audit_export::AuditSource {
        id: args.source_id.unwrap_or(origin),
        site: None,
    };
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut failed = None;
    reader.for_each_record(args.from, |r| {
        let lines = match args.format.as_str() {
            "dicom" => obscura_audit_export::dicom::messages(&r, &source),
            _ => vec![r.to_line()],
        };
        for l in lines {
            if failed.is_none() {
                failed = writeln!(out, "{l}").err();
            }
        }
    })?;
    match failed {
        Some(e) => Err(e).context("cannot write to standard output"),
        None => {
            out.flush().context("cannot write to standard output")?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The SHA-256 (hex) of a signing key's public key text (`name+id+base64`,
/// the line of its public key file): its fingerprint in audit records.
pub fn public_key_sha256(verifier: &obscura_audit::Verifier) -> String {
    use sha2::{Digest, Sha256};
    obscura_audit::event::hex(&Sha256::digest(verifier.to_text().as_bytes()))
}

/// `obscura audit keygen`: write the signing key and its public key; with
/// a serve config, post a `key-change` record to its log (`admin:audit-keygen`).
fn keygen(
    name: &str,
    key_file: &Path,
    public_file: &Path,
    audit_config: Option<&Path>,
) -> Result<()> {
    let audit = crate::admin_audit::for_run(audit_config)?;
    let path = key_file.display().to_string();
    crate::admin_audit::record(
        audit.as_ref(),
        obscura_audit::EventKind::KeyChange,
        "admin:audit-keygen",
        &[("key_file", path.clone())],
        || {
            let signer = obscura_audit::Signer::generate(name)?;
            signer.save(key_file, public_file).map_err(|e| match e {
                obscura_audit::Error::Io(p, io) if p == key_file => {
                    crate::keys::key_file_error(io, key_file)
                }
                e => e.into(),
            })?;
            eprintln!(
                "wrote {} (secret) and {} (public: give it to whoever verifies)",
                key_file.display(),
                public_file.display()
            );
            let v = signer.verifier();
            Ok(Some(crate::admin_audit::Change::new(vec![
                ("key_file", path),
                ("public_file", public_file.display().to_string()),
                ("key_name", name.to_string()),
                ("key_id", format!("{:08x}", v.key_id())),
                ("public_key_sha256", public_key_sha256(&v)),
            ])))
        },
    )
}

/// Run a subcommand; the exit status is the verdict.
pub fn run(cmd: AuditCommand) -> Result<ExitCode> {
    let args = match cmd {
        AuditCommand::Verify(args) => args,
        AuditCommand::Export(args) => return export(args),
        AuditCommand::VerifyReport(args) => return crate::breach::verify_report(args),
        AuditCommand::Keygen {
            name,
            key_file,
            public_file,
            audit_config,
        } => {
            keygen(&name, &key_file, &public_file, audit_config.as_deref())?;
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
