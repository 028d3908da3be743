//! The log folder's `inbox/`: events from other processes (the command
//! line's grant, tenant and share changes, `deid` and `scan` runs), which
//! cannot append to a log that the running `obscura serve` owns. The
//! poster writes each event as a file (temp file, fsync, rename; mode
//! 0600); the writer appends them in name order and removes each file only
//! once its record is on disk. A crash between the two appends that event
//! again at the next drain (at least once, never lost).

use crate::event::{AuditEvent, EventKind};
use crate::log::write_atomic_mode;
use crate::sink::Auditor;
use crate::Error;
use std::fs;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// The inbox folder of the log at `log_dir`.
pub fn inbox_dir(log_dir: &Path) -> PathBuf {
    log_dir.join("inbox")
}

/// The largest inbox file read; a larger one is set aside.
const MAX_FILE: u64 = 64 * 1024;

/// Kinds another process may post: administrative changes and runs.
pub fn postable(kind: EventKind) -> bool {
    matches!(
        kind,
        EventKind::GrantChange
            | EventKind::TenantChange
            | EventKind::KeyChange
            | EventKind::ConfigChange
            | EventKind::DeidRun
            | EventKind::ScanRun
    )
}

/// Post `event` to the inbox of the log at `log_dir` (created, mode 0700,
/// if missing): durable when this returns. Returns the file's path.
pub fn post(log_dir: &Path, event: &AuditEvent) -> Result<PathBuf, Error> {
    if !postable(event.kind) {
        return Err(Error::Damaged(format!(
            "{:?} events cannot be posted to the inbox",
            event.kind
        )));
    }
    let dir = inbox_dir(log_dir);
    let io = |p: &Path| {
        let p = p.to_path_buf();
        move |e| Error::Io(p, e)
    };
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(io(&dir))?;
    static POSTED: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let name = format!(
        "{nanos:020}-{:010}-{:04}.json",
        std::process::id(),
        POSTED.fetch_add(1, Ordering::Relaxed)
    );
    let path = dir.join(&name);
    let body = serde_json::to_vec(event).expect("an event is always JSON");
    write_atomic_mode(&path, &body, 0o600)?;
    Ok(path)
}

/// What a drain did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Drained {
    /// Events appended to the log (and their files removed).
    pub appended: u64,
    /// Files set aside in `inbox/rejected/`: unreadable, too large, not an
    /// event, or of a kind that may not be posted.
    pub rejected: u64,
}

/// Append every event in the inbox of the log at `log_dir` to `auditor`,
/// in name order, each durable before its file is removed. Stops at the
/// first append that fails (the rest wait for the next drain).
pub fn drain(auditor: &Auditor, log_dir: &Path) -> Result<Drained, Error> {
    let dir = inbox_dir(log_dir);
    let mut names: Vec<String> = match fs::read_dir(&dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| n.ends_with(".json") && !n.starts_with('.'))
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Drained::default()),
        Err(e) => return Err(Error::Io(dir, e)),
    };
    names.sort();
    let mut out = Drained::default();
    for name in names {
        let path = dir.join(&name);
        match read_event(&path) {
            Some(mut event) => {
                event.restamp(SystemTime::now(), COMMAND_TIME);
                auditor.record_durable(event)?;
                fs::remove_file(&path).map_err(|e| Error::Io(path.clone(), e))?;
                out.appended += 1;
            }
            None => {
                let aside = dir.join("rejected");
                fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(&aside)
                    .map_err(|e| Error::Io(aside.clone(), e))?;
                fs::rename(&path, aside.join(&name)).map_err(|e| Error::Io(path.clone(), e))?;
                out.rejected += 1;
            }
        }
    }
    Ok(out)
}

/// The detail key that keeps an inbox event's own time (the command's):
/// a command's file may wait in the inbox while the log goes on.
pub const COMMAND_TIME: &str = "command_time";

/// The event in an inbox file, if it is a regular file of a postable kind
/// with an RFC 3339 millisecond time.
fn read_event(path: &Path) -> Option<AuditEvent> {
    let meta = fs::symlink_metadata(path).ok()?;
    if !meta.is_file() || meta.len() > MAX_FILE {
        return None;
    }
    let event: AuditEvent = serde_json::from_slice(&fs::read(path).ok()?).ok()?;
    (postable(event.kind) && is_rfc3339_ms(&event.time)).then_some(event)
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ`, as [`crate::event::rfc3339`] writes it.
fn is_rfc3339_ms(t: &str) -> bool {
    let b = t.as_bytes();
    b.len() == 24
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'.',
            23 => *c == b'Z',
            _ => c.is_ascii_digit(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Actor, AuditKey, Outcome};
    use crate::log::{LogConfig, SyncPolicy};
    use crate::note::Signer;
    use std::os::unix::fs::PermissionsExt;

    fn event(kind: EventKind, grant: &str) -> AuditEvent {
        let mut e = AuditEvent::new(
            SystemTime::now(),
            kind,
            Actor {
                principal: "os:admin".into(),
                ..Actor::default()
            },
            Outcome::Success,
        );
        e.detail.insert("grant".into(), grant.into());
        e
    }

    #[test]
    fn posted_events_are_appended_in_order_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        let a = post(&log, &event(EventKind::GrantChange, "g1")).unwrap();
        post(&log, &event(EventKind::TenantChange, "g2")).unwrap();
        assert_eq!(
            fs::metadata(&a).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(post(&log, &event(EventKind::InstanceReceived, "x")).is_err());
        // a file of a kind the inbox refuses, and one that is not an event
        let mut forged = event(EventKind::InstanceReceived, "x");
        forged.detail.clear();
        fs::write(
            inbox_dir(&log).join("00000000000000000000-1.json"),
            serde_json::to_vec(&forged).unwrap(),
        )
        .unwrap();
        fs::write(inbox_dir(&log).join("zzz.json"), b"{not json").unwrap();
        let posted_at = event(EventKind::GrantChange, "g1").time;
        std::thread::sleep(std::time::Duration::from_millis(5));
        let mut cfg = LogConfig::new(log.clone());
        cfg.sync = SyncPolicy::Batched(100);
        let signer = Signer::generate("test/audit").unwrap();
        let (auditor, _) = Auditor::open(cfg, signer, AuditKey::from_bytes([1; 32])).unwrap();
        let d = drain(&auditor, &log).unwrap();
        assert_eq!(
            d,
            Drained {
                appended: 2,
                rejected: 2
            }
        );
        assert_eq!(auditor.durable().0, 2);
        assert_eq!(drain(&auditor, &log).unwrap(), Drained::default());
        auditor.close().unwrap();
        let reader = crate::LogReader::open(&log).unwrap();
        let records: Vec<_> = (0..reader.size())
            .map(|i| reader.record(i).unwrap().unwrap())
            .collect();
        let kinds: Vec<_> = records.iter().map(|r| r.event.kind).collect();
        assert_eq!(kinds, [EventKind::GrantChange, EventKind::TenantChange]);
        assert_eq!(records[0].event.detail["grant"], "g1");
        // appended at the drain's time, the command's time kept in detail
        let command_time = &records[0].event.detail[COMMAND_TIME];
        assert!(command_time <= &posted_at, "{command_time} {posted_at}");
        assert!(records[0].event.time > *command_time);
        assert!(records[0].event.time <= records[1].event.time);
        assert_eq!(
            fs::read_dir(inbox_dir(&log).join("rejected"))
                .unwrap()
                .count(),
            2
        );
    }

    #[test]
    fn time_shape() {
        assert!(is_rfc3339_ms("2025-01-31T09:08:07.123Z"));
        assert!(!is_rfc3339_ms("2025-01-31 09:08:07.123Z"));
        assert!(!is_rfc3339_ms("yesterday"));
    }
}
