//! Audit records of what the command line changes or runs (grants,
//! labels, tenants, share links, keys; `deid` and `scan` runs), and of the
//! changes it refused: posted to the audit log's inbox, which the running
//! `obscura serve` (or the next one to start) appends to the log. See
//! docs/audit.md.

use anyhow::{Context, Result};
use obscura_audit::{Actor, AuditEvent, AuditKey, EventKind, Outcome, SubjectRef};
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

/// Where this process's audit records go: the `[audit]` log of a serve config.
pub struct AdminAudit {
    dir: PathBuf,
    key_file: PathBuf,
}

impl AdminAudit {
    /// The `[audit]` log of the serve config at `path`; `None` without one.
    /// Creates the log's inbox now, so an unwritable one fails before any change.
    pub fn from_config(path: &Path) -> Result<Option<Self>> {
        let config = obscura_gateway::Config::load(path)?;
        let Some(a) = &config.audit else {
            return Ok(None);
        };
        Self::at(config.path(&a.dir), config.path(&a.key_file)).map(Some)
    }

    /// The log `serve` named in the archive folder `data_dir` (for admin
    /// commands given `--data-dir` rather than a config); `None` if it
    /// named none.
    pub fn from_data_dir(data_dir: &Path) -> Result<Option<Self>> {
        let pointer = data_dir.join(POINTER);
        let text = match std::fs::read_to_string(&pointer) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", pointer.display())),
        };
        let v: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not JSON", pointer.display()))?;
        let path = |k: &str| {
            v[k].as_str()
                .map(PathBuf::from)
                .with_context(|| format!("{}: no `{k}`", pointer.display()))
        };
        Self::at(path("dir")?, path("key_file")?).map(Some)
    }

    /// The log in `dir` with the site audit key in `key_file`; creates its
    /// inbox now, so an unwritable one fails before any change.
    fn at(dir: PathBuf, key_file: PathBuf) -> Result<Self> {
        let inbox = obscura_audit::inbox::inbox_dir(&dir);
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&inbox)
            .with_context(|| format!("cannot create the audit inbox {}", inbox.display()))?;
        Ok(AdminAudit { dir, key_file })
    }

    /// The keyed references of these studies (the site audit key's).
    pub fn studies<'a>(&self, uids: impl IntoIterator<Item = &'a str>) -> Result<Vec<SubjectRef>> {
        let key = AuditKey::load(&self.key_file).context("[audit] key_file")?;
        Ok(uids
            .into_iter()
            .map(|u| SubjectRef::study(&key, u))
            .collect())
    }

    /// Post a successful `kind` event by the OS user: `route`, `detail`
    /// (ids and settings, no PHI), `count` and `subjects`.
    pub fn post(
        &self,
        kind: EventKind,
        route: &str,
        detail: &[(&str, String)],
        count: Option<u64>,
        subjects: Vec<SubjectRef>,
    ) -> Result<()> {
        let e = AuditEvent::new(
            std::time::SystemTime::now(),
            kind,
            os_user(),
            Outcome::Success,
        );
        self.send(e, route, detail, count, subjects)
    }

    /// Post a `kind` event by the OS user for a change it refused or that
    /// failed: `reason` a short code, `detail` what was asked.
    fn post_failure(
        &self,
        kind: EventKind,
        route: &str,
        reason: &str,
        detail: &[(&str, String)],
    ) -> Result<()> {
        let mut e = AuditEvent::new(
            std::time::SystemTime::now(),
            kind,
            os_user(),
            Outcome::Failure,
        );
        e.reason = Some(reason.into());
        self.send(e, route, detail, None, Vec::new())
    }

    fn send(
        &self,
        mut e: AuditEvent,
        route: &str,
        detail: &[(&str, String)],
        count: Option<u64>,
        subjects: Vec<SubjectRef>,
    ) -> Result<()> {
        e.route = Some(route.to_string());
        e.detail = detail
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        e.count = count;
        e.subjects = subjects;
        obscura_audit::inbox::post(&self.dir, &e).with_context(|| {
            format!("done, but its audit record ({route}) could not be written")
        })?;
        Ok(())
    }
}

/// The `[audit]` log of `--audit-config`, if given: it must have one.
pub fn for_run(config: Option<&Path>) -> Result<Option<AdminAudit>> {
    let Some(path) = config else {
        return Ok(None);
    };
    AdminAudit::from_config(path)?
        .with_context(|| format!("--audit-config {}: no [audit] section", path.display()))
        .map(Some)
}

/// The file `serve` writes in its archive's data folder to name its audit
/// log (`dir`, `key_file`: absolute paths), so that admin commands given
/// `--data-dir` instead of `--config` post to it too.
pub const POINTER: &str = "audit-log.json";

/// Name the log `dir` (with the site key `key_file`) in the archive
/// folder `data_dir` (see [`POINTER`]); mode 0600, atomically.
pub fn write_pointer(data_dir: &Path, dir: &Path, key_file: &Path) -> Result<()> {
    let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let body = serde_json::json!({
        "dir": abs(dir).to_string_lossy(),
        "key_file": abs(key_file).to_string_lossy(),
    });
    let path = data_dir.join(POINTER);
    obscura_audit::log::write_atomic_mode(&path, body.to_string().as_bytes(), 0o600)
        .with_context(|| format!("cannot write {}", path.display()))
}

/// What an admin command changed, to be recorded on success under the
/// kind and route [`record`] was given.
pub struct Change {
    /// Ids and settings (no PHI).
    pub detail: Vec<(&'static str, String)>,
    /// Keyed studies it names.
    pub subjects: Vec<SubjectRef>,
}

impl Change {
    /// A change with no subjects.
    pub fn new(detail: Vec<(&'static str, String)>) -> Self {
        Change {
            detail,
            subjects: Vec::new(),
        }
    }
}

/// Run the admin command `change` and, if `audit` is set, record what it
/// did: its [`Change`] when it succeeds (`None`: nothing changed, nothing
/// recorded), or a `failure` record when it fails (refused or not done),
/// under `kind` and `route` with `asked` (what was asked: ids, names of
/// organisations, no PHI) and a short code for why. If the record cannot
/// be posted after a change, the command says so and fails.
pub fn record(
    audit: Option<&AdminAudit>,
    kind: EventKind,
    route: &str,
    asked: &[(&str, String)],
    change: impl FnOnce() -> Result<Option<Change>>,
) -> Result<()> {
    match (change(), audit) {
        (Ok(Some(c)), Some(a)) => a.post(kind, route, &c.detail, None, c.subjects),
        (Ok(_), _) => Ok(()),
        (Err(e), Some(a)) => {
            if let Err(post) = a.post_failure(kind, route, failure_code(&e), asked) {
                eprintln!("obscura: the refusal's audit record could not be written: {post:#}");
            }
            Err(e)
        }
        (Err(e), None) => Err(e),
    }
}

/// Why an admin command was refused: the reason code of its `failure`
/// record, carried by the error itself (never read from its message).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No tenant has the id or name given.
    UnknownTenant,
    /// No grant has the id given.
    UnknownGrant,
    /// The tenant holds no such study.
    UnknownStudy,
    /// The principal already acts for another tenant.
    OtherTenant,
    /// The user did not confirm.
    NotConfirmed,
    /// A key file is readable by others.
    KeyExposed,
    /// A key file exists already (keys are never overwritten).
    KeyExists,
}

impl Refusal {
    /// The reason code recorded.
    pub fn code(self) -> &'static str {
        match self {
            Refusal::UnknownTenant => "unknown-tenant",
            Refusal::UnknownGrant => "unknown-grant",
            Refusal::UnknownStudy => "unknown-study",
            Refusal::OtherTenant => "other-tenant",
            Refusal::NotConfirmed => "not-confirmed",
            Refusal::KeyExposed => "key-exposed",
            Refusal::KeyExists => "key-exists",
        }
    }

    /// An error saying `message` to the user and carrying this refusal.
    pub fn error(self, message: impl std::fmt::Display) -> anyhow::Error {
        anyhow::Error::new(Refused {
            why: self,
            message: message.to_string(),
        })
    }
}

/// An error carrying its [`Refusal`].
#[derive(Debug)]
struct Refused {
    why: Refusal,
    message: String,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Refused {}

/// The refusal an error (or any error it wraps) carries: ours, or one the
/// libraries' error types name.
fn refusal(e: &anyhow::Error) -> Option<Refusal> {
    e.chain().find_map(|c| {
        if let Some(r) = c.downcast_ref::<Refused>() {
            return Some(r.why);
        }
        match (
            c.downcast_ref::<obscura_vault::VaultError>(),
            c.downcast_ref::<obscura_audit::Error>(),
        ) {
            (Some(obscura_vault::VaultError::UnknownTenant), _) => Some(Refusal::UnknownTenant),
            (_, Some(obscura_audit::Error::KeyExposed(_))) => Some(Refusal::KeyExposed),
            _ => None,
        }
    })
}

/// A short code for why an admin command failed (never its message,
/// which may name a study): its [`Refusal`], else `refused`.
fn failure_code(e: &anyhow::Error) -> &'static str {
    refusal(e).map_or("refused", Refusal::code)
}

/// The OS account running this process, as `os:NAME` (`os:uid-N` when
/// /etc/passwd does not name it): taken from the process's real owner,
/// not from the environment.
fn os_user() -> Actor {
    let uid = std::fs::metadata("/proc/self").map(|m| m.uid()).ok();
    let name = uid.and_then(|uid| {
        std::fs::read_to_string("/etc/passwd")
            .ok()?
            .lines()
            .find_map(|l| {
                let mut f = l.split(':');
                let name = f.next()?;
                (f.nth(1)?.parse::<u32>().ok()? == uid).then(|| name.to_string())
            })
    });
    Actor {
        principal: match (name, uid) {
            (Some(n), _) => format!("os:{n}"),
            (None, Some(u)) => format!("os:uid-{u}"),
            (None, None) => "os:unknown".into(),
        },
        ..Actor::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_codes_come_from_the_error_types_not_their_text() {
        use anyhow::Context;
        // ours, under any wording and any context added on the way out
        let e = Refusal::UnknownGrant.error("grant g-1: gone");
        let e = Err::<(), _>(e).context("revoking").unwrap_err();
        assert_eq!(failure_code(&e), "unknown-grant");
        // the libraries' typed errors
        let e = anyhow::Error::new(obscura_vault::VaultError::UnknownTenant).context("grant add");
        assert_eq!(failure_code(&e), "unknown-tenant");
        let e = anyhow::Error::new(obscura_audit::Error::KeyExposed("/k".into()))
            .context("[audit] key_file");
        assert_eq!(failure_code(&e), "key-exposed");
        // an existing key file, whatever the OS says
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        std::fs::write(&path, "x").unwrap();
        let e = crate::keys::keygen(&path).unwrap_err();
        assert_eq!(failure_code(&e), "key-exists");
        // the old messages' words, with no type behind them, are not a code
        for text in [
            "no tenant `x`",
            "no grant `g`",
            "not confirmed",
            "is readable by others",
        ] {
            assert_eq!(failure_code(&anyhow::anyhow!("{text}")), "refused");
        }
    }
}
