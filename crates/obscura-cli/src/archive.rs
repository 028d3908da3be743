//! The archive from the command line: its master key and the scale-out
//! backends' secrets (files readable by their owner only, or the
//! environment; never argv) and `obscura tenant create|list|shred`.

use crate::admin_audit::{self, AdminAudit, Change, Refusal};
use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use obscura_audit::EventKind;
use obscura_gateway::ArchiveSection;
use obscura_vault::{Database, MasterKey, S3Config, S3Credentials, Storage, TenantId, Vault};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Read a secret file (`what` names it in errors), refusing one others can read.
fn secret_file(path: &Path, what: &str) -> Result<String> {
    let exposed = obscura_batch::paths::readable_by_others(path)
        .with_context(|| format!("cannot read {what} {}", path.display()))?;
    if exposed {
        return Err(Refusal::KeyExposed.error(format!(
            "{what} {} is readable by others: run chmod 600 on it",
            path.display()
        )));
    }
    std::fs::read_to_string(path).with_context(|| format!("cannot read {what} {}", path.display()))
}

/// Load the archive's master key, refusing a file others can read.
pub fn master_key(path: &Path) -> Result<MasterKey> {
    let text = secret_file(path, "master key file")?;
    MasterKey::from_hex(&text).with_context(|| {
        format!(
            "master key file {} is not a key (64 hex digits; obscura keygen)",
            path.display()
        )
    })
}

/// Open the archive a serve config's `[archive]` describes (paths resolved).
pub fn open_section(a: &ArchiveSection) -> Result<Vault> {
    let key = master_key(&a.master_key_file)?;
    let storage = storage(a)?;
    Vault::open_at(&storage, key).with_context(|| describe(a))
}

/// Where `[archive]` keeps things, for messages (no credentials).
pub fn describe(a: &ArchiveSection) -> String {
    let index = match a.database_url {
        Some(_) => "index in PostgreSQL".to_string(),
        None => format!("index in {}", a.data_dir.display()),
    };
    match &a.object_store {
        Some(o) => format!("archive ({index}, objects in bucket {})", o.bucket),
        None => format!("archive ({index}, objects in {})", a.data_dir.display()),
    }
}

/// The archive's PostgreSQL database from `[archive]`, if it has one (the
/// password from its file or the environment): the index's, and the
/// grant store's.
fn database(a: &ArchiveSection) -> Result<Option<Database>> {
    Ok(match &a.database_url {
        Some(url) => Some(Database {
            url: url.clone(),
            password: match &a.database_password_file {
                Some(p) => Some(secret_file(p, "database password file")?.trim().to_string()),
                None => std::env::var("PGPASSWORD").ok(),
            },
            ca_file: a.database_ca_file.clone(),
        }),
        None => None,
    })
}

/// The vault's storage from `[archive]`: secrets from their files or the
/// environment.
fn storage(a: &ArchiveSection) -> Result<Storage> {
    let database = database(a)?;
    let object_store = match &a.object_store {
        Some(o) => Some(S3Config {
            endpoint: o.endpoint.clone(),
            bucket: o.bucket.clone(),
            region: o.region.clone(),
            prefix: o.prefix.clone(),
            credentials: match &o.credentials_file {
                Some(p) => Some(s3_credentials(p)?),
                None => None,
            },
        }),
        None => None,
    };
    Ok(Storage {
        data_dir: a.data_dir.clone(),
        database,
        object_store,
    })
}

/// `AWS_ACCESS_KEY_ID=…`, `AWS_SECRET_ACCESS_KEY=…` and optionally
/// `AWS_SESSION_TOKEN=…` lines (`#` comments), from a file only its owner reads.
fn s3_credentials(path: &Path) -> Result<S3Credentials> {
    let text = secret_file(path, "object store credentials file")?;
    let mut c = S3Credentials::default();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (k, v) = line
            .split_once('=')
            .with_context(|| format!("{}: a line is not KEY=VALUE", path.display()))?;
        let v = v.trim().trim_matches('"').to_string();
        match k.trim() {
            "AWS_ACCESS_KEY_ID" => c.access_key_id = v,
            "AWS_SECRET_ACCESS_KEY" => c.secret_access_key = v,
            "AWS_SESSION_TOKEN" => c.session_token = Some(v),
            other => bail!("{}: unknown key {other}", path.display()),
        }
    }
    if c.access_key_id.is_empty() || c.secret_access_key.is_empty() {
        bail!(
            "{}: needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
            path.display()
        );
    }
    Ok(c)
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
    /// The `[archive]` section of the config (paths resolved), or one of
    /// the two paths alone (SQLite and a folder).
    pub fn section(&self) -> Result<ArchiveSection> {
        match (&self.config, &self.data_dir, &self.master_key_file) {
            (Some(c), _, _) => {
                let config = obscura_gateway::Config::load(c)?;
                config
                    .archive()
                    .with_context(|| format!("{} has no [archive] section", c.display()))
            }
            (None, Some(d), Some(k)) => Ok(ArchiveSection {
                data_dir: d.clone(),
                master_key_file: k.clone(),
                database_url: None,
                database_password_file: None,
                database_ca_file: None,
                object_store: None,
            }),
            _ => bail!("name the archive: --config, or --data-dir and --master-key-file"),
        }
    }

    /// The `[web]` section of the serve config, if there is a config with one.
    pub fn web_section(&self) -> Result<Option<obscura_web::WebConfig>> {
        let Some(c) = &self.config else {
            return Ok(None);
        };
        let config = obscura_gateway::Config::load(c)?;
        match config.web {
            Some(w) => Ok(Some(obscura_web::WebConfig::from_toml(
                w,
                &config.base_dir,
            )?)),
            None => Ok(None),
        }
    }

    /// Where to post audit records of changes: the config's `[audit]` log,
    /// if there is a config with one.
    /// With `--data-dir`, the log `serve` named in that folder.
    pub fn audit(&self) -> Result<Option<AdminAudit>> {
        match (&self.config, &self.data_dir) {
            (Some(c), _) => AdminAudit::from_config(c),
            (None, Some(d)) => AdminAudit::from_data_dir(d),
            (None, None) => Ok(None),
        }
    }

    /// Open the archive.
    pub fn open(&self) -> Result<Vault> {
        open_section(&self.section()?)
    }
}

/// The archive's grant store: in its PostgreSQL database when the index is
/// there (shared by every host), else `access.sqlite` in its data folder;
/// scopes sealed under a key derived from the master key.
pub fn grant_store(a: &ArchiveSection) -> Result<Arc<dyn obscura_access::GrantStore>> {
    let master = crate::keys::load(&a.master_key_file).context("the archive's master key")?;
    let seal = obscura_access::SealKey::derive(&master.derive("obscura-access/grant-studies", b""));
    Ok(match database(a)? {
        Some(db) => Arc::new(
            obscura_access::PgStore::connect(&db, seal)
                .context("grant store in the archive's PostgreSQL database")?,
        ),
        None => Arc::new(
            obscura_access::SqliteStore::open(&a.data_dir.join("access.sqlite"), seal)
                .with_context(|| format!("grant store in {}", a.data_dir.display()))?,
        ),
    })
}

/// The tenant named `name_or_id`.
pub fn find_tenant(vault: &Vault, name_or_id: &str) -> Result<obscura_vault::Tenant> {
    vault
        .list_tenants()?
        .into_iter()
        .find(|t| t.id.as_str() == name_or_id || t.name == name_or_id)
        .ok_or_else(|| {
            Refusal::UnknownTenant.error(format!("no tenant `{name_or_id}` (obscura tenant list)"))
        })
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
        TenantCommand::Create { name, archive } => admin_audit::record(
            archive.audit()?.as_ref(),
            EventKind::TenantChange,
            "admin:tenant-create",
            &[("name", name.clone())],
            || {
                let id = archive.open()?.create_tenant(name)?;
                println!("{id}");
                Ok(Some(Change::new(vec![
                    ("tenant", id.to_string()),
                    ("name", name.clone()),
                ])))
            },
        ),
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
        } => admin_audit::record(
            archive.audit()?.as_ref(),
            EventKind::TenantChange,
            "admin:tenant-shred",
            &[("tenant", tenant.clone())],
            || shred(archive, tenant, *yes).map(Some),
        ),
    }
}

/// Shred the tenant `name_or_id` (asking first unless `yes`); its change.
fn shred(archive: &ArchiveArgs, name_or_id: &str, yes: bool) -> Result<Change> {
    let vault = archive.open()?;
    let found = find_tenant(&vault, name_or_id)?;
    if !yes {
        eprint!(
            "shred tenant {} ({}): its key, index and objects are destroyed for good.\ntype the tenant's name to confirm: ",
            found.name, found.id
        );
        std::io::stderr().flush().ok();
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        if line.trim() != found.name {
            return Err(Refusal::NotConfirmed.error("not confirmed: nothing shredded"));
        }
    }
    let id: TenantId = found.id;
    vault.shred_tenant(&id)?;
    eprintln!("shredded tenant {}", found.name);
    Ok(Change::new(vec![
        ("tenant", id.to_string()),
        ("name", found.name),
    ]))
}
