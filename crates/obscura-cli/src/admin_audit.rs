//! Audit records of what the command line changes or runs (grants,
//! tenants, share links; `deid` and `scan` runs): posted to the audit log's
//! inbox, which the running `obscura serve` (or the next one to start)
//! appends to the log. See docs/audit.md.

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
        let dir = config.path(&a.dir);
        let inbox = obscura_audit::inbox::inbox_dir(&dir);
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&inbox)
            .with_context(|| format!("cannot create the audit inbox {}", inbox.display()))?;
        Ok(Some(AdminAudit {
            dir,
            key_file: config.path(&a.key_file),
        }))
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
        let mut e = AuditEvent::new(
            std::time::SystemTime::now(),
            kind,
            os_user(),
            Outcome::Success,
        );
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

/// Post an event if `audit` is set (see [`AdminAudit::post`]).
pub fn post(
    audit: Option<&AdminAudit>,
    kind: EventKind,
    route: &str,
    detail: &[(&str, String)],
) -> Result<()> {
    match audit {
        Some(a) => a.post(kind, route, detail, None, Vec::new()),
        None => Ok(()),
    }
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
