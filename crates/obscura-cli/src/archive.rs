//! The archive from the command line: its master key (a key file readable
//! by its owner only, never argv) and `obscura tenant create|list|shred`.

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use obscura_vault::{MasterKey, TenantId, Vault};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

/// Load the archive's master key, refusing a file others can read.
pub fn master_key(path: &Path) -> Result<MasterKey> {
    let exposed = obscura_batch::paths::readable_by_others(path)
        .with_context(|| format!("cannot read master key file {}", path.display()))?;
    if exposed {
        bail!(
            "master key file {} is readable by others: run chmod 600 on it",
            path.display()
        );
    }
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read master key file {}", path.display()))?;
    MasterKey::from_hex(&text).with_context(|| {
        format!(
            "master key file {} is not a key (64 hex digits; obscura keygen)",
            path.display()
        )
    })
}

/// Open the archive in `data_dir` with the master key in `key_file`.
pub fn open(data_dir: &Path, key_file: &Path) -> Result<Vault> {
    let key = master_key(key_file)?;
    Vault::open(data_dir, key).with_context(|| format!("archive {}", data_dir.display()))
}

/// Which archive: the serve config's `[archive]`, or the two paths.
#[derive(Args)]
pub struct ArchiveArgs {
    /// The `obscura serve` config whose [archive] section to use.
    #[arg(long, conflicts_with_all = ["data_dir", "master_key_file"])]
    config: Option<PathBuf>,
    /// The archive's data folder.
    #[arg(long, requires = "master_key_file")]
    data_dir: Option<PathBuf>,
    /// The archive's master key file (mode 0600).
    #[arg(long, requires = "data_dir")]
    master_key_file: Option<PathBuf>,
}

impl ArchiveArgs {
    /// The archive's data folder and master key file.
    pub fn paths(&self) -> Result<(PathBuf, PathBuf)> {
        match (&self.config, &self.data_dir, &self.master_key_file) {
            (Some(c), _, _) => {
                let config = obscura_gateway::Config::load(c)?;
                config
                    .archive_paths()
                    .with_context(|| format!("{} has no [archive] section", c.display()))
            }
            (None, Some(d), Some(k)) => Ok((d.clone(), k.clone())),
            _ => bail!("name the archive: --config, or --data-dir and --master-key-file"),
        }
    }

    /// Open the archive.
    pub fn open(&self) -> Result<Vault> {
        let (dir, key) = self.paths()?;
        open(&dir, &key)
    }
}

/// The archive's grant store (`access.sqlite` in its data folder), its
/// study lists sealed under a key derived from the master key.
pub fn grant_store(data_dir: &Path, key_file: &Path) -> Result<obscura_access::SqliteStore> {
    let master = crate::keys::load(key_file).context("the archive's master key")?;
    let seal = obscura_access::SealKey::derive(&master.derive("obscura-access/grant-studies", b""));
    obscura_access::SqliteStore::open(&data_dir.join("access.sqlite"), seal)
        .with_context(|| format!("grant store in {}", data_dir.display()))
}

/// The tenant named `name_or_id`.
pub fn find_tenant(vault: &Vault, name_or_id: &str) -> Result<obscura_vault::Tenant> {
    vault
        .list_tenants()?
        .into_iter()
        .find(|t| t.id.as_str() == name_or_id || t.name == name_or_id)
        .with_context(|| format!("no tenant `{name_or_id}` (obscura tenant list)"))
}

/// `obscura tenant ...`.
#[derive(Subcommand)]
pub enum TenantCommand {
    /// Create a tenant (a provider organisation) with its own key; prints its id.
    Create {
        /// Its name (an organisation's: kept in clear).
        name: String,
        #[command(flatten)]
        archive: ArchiveArgs,
    },
    /// List the tenants: id, creation time, name.
    List {
        #[command(flatten)]
        archive: ArchiveArgs,
    },
    /// Destroy a tenant: its key, index rows and objects. Irreversible.
    Shred {
        /// The tenant's id or name.
        tenant: String,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
        #[command(flatten)]
        archive: ArchiveArgs,
    },
}

/// Run a tenant command.
pub fn run(cmd: &TenantCommand) -> Result<()> {
    match cmd {
        TenantCommand::Create { name, archive } => {
            let id = archive.open()?.create_tenant(name)?;
            println!("{id}");
            Ok(())
        }
        TenantCommand::List { archive } => {
            for t in archive.open()?.list_tenants()? {
                println!("{}\t{}\t{}", t.id, t.created, t.name);
            }
            Ok(())
        }
        TenantCommand::Shred {
            tenant,
            yes,
            archive,
        } => {
            let vault = archive.open()?;
            let found = find_tenant(&vault, tenant)?;
            if !yes {
                eprint!(
                    "shred tenant {} ({}): its key, index and objects are destroyed for good.\ntype the tenant's name to confirm: ",
                    found.name, found.id
                );
                std::io::stderr().flush().ok();
                let mut line = String::new();
                std::io::stdin().lock().read_line(&mut line)?;
                if line.trim() != found.name {
                    bail!("not confirmed: nothing shredded");
                }
            }
            let id: TenantId = found.id;
            vault.shred_tenant(&id)?;
            eprintln!("shredded tenant {}", found.name);
            Ok(())
        }
    }
}
