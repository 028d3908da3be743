//! Finding, creating and loading the secret key. A key never goes on the
//! command line: it lives in a file readable by its owner only.

use anyhow::{Context, Result};
use obscura_deid::SecretKey;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Create a new key file at `path` (mode 0600); never overwrite one.
/// Returns its id (see [`key_id`]).
pub fn keygen(path: &Path) -> Result<String> {
    let mut bytes = [0u8; obscura_deid::key::KEY_LEN];
    getrandom::getrandom(&mut bytes)
        .map_err(|e| anyhow::anyhow!("the OS random source failed: {e}"))?;
    let key = SecretKey::from_bytes(bytes);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| key_file_error(e, path))?;
    writeln!(f, "{}", key.to_hex()).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(key_id(&key))
}

/// Why a new key file at `path` could not be created: an existing one
/// (never overwritten) is refused as [`Refusal::KeyExists`](crate::admin_audit::Refusal).
pub fn key_file_error(e: std::io::Error, path: &Path) -> anyhow::Error {
    if e.kind() == std::io::ErrorKind::AlreadyExists {
        return crate::admin_audit::Refusal::KeyExists.error(format!(
            "key file {} exists (an existing key is never overwritten)",
            path.display()
        ));
    }
    anyhow::Error::new(e).context(format!("cannot create key file {}", path.display()))
}

/// A key's public id for audit records: 16 hex digits of an HMAC under the
/// key of a fixed label (tells keys apart, reveals nothing of the key).
pub fn key_id(key: &SecretKey) -> String {
    obscura_audit::event::hex(&key.derive("obscura-key-id", b"")[..8])
}

/// `obscura keygen PATH [--audit-config FILE]`: write the key; with a
/// serve config, post a `key-change` record (the key's path and id).
pub fn keygen_command(path: &Path, audit_config: Option<&Path>) -> Result<()> {
    let audit = crate::admin_audit::for_run(audit_config)?;
    crate::admin_audit::record(
        audit.as_ref(),
        obscura_audit::EventKind::KeyChange,
        "admin:keygen",
        &[("key_file", path.display().to_string())],
        || {
            let id = keygen(path)?;
            eprintln!("wrote a new key to {}", path.display());
            Ok(Some(crate::admin_audit::Change::new(vec![
                ("key_file", path.display().to_string()),
                ("key_id", id),
            ])))
        },
    )
}

/// Load the key from `path`, refusing one that others can read.
pub fn load(path: &Path) -> Result<SecretKey> {
    let exposed = obscura_batch::paths::readable_by_others(path)
        .with_context(|| format!("cannot read key file {}", path.display()))?;
    if exposed {
        return Err(crate::admin_audit::Refusal::KeyExposed.error(format!(
            "key file {} is readable by others: run chmod 600 on it",
            path.display()
        )));
    }
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read key file {}", path.display()))?;
    SecretKey::from_hex(&text).with_context(|| format!("key file {} is not a key", path.display()))
}

/// The key to use: the given file, or the default one under the user's config
/// folder, created on first use (its path printed once, when created).
pub fn resolve(explicit: Option<&Path>) -> Result<SecretKey> {
    if let Some(p) = explicit {
        return load(p);
    }
    let path = default_key_path()?;
    if !path.exists() {
        keygen(&path)?;
        eprintln!(
            "created a new key at {} (keep it: the same key gives the same pseudonyms)",
            path.display()
        );
    }
    load(&path)
}

fn default_key_path() -> Result<PathBuf> {
    let dir = dirs::config_dir().context("no config folder for this user: pass --key-file")?;
    Ok(dir.join("obscura").join("key"))
}
