//! [`Auditor`]: one open log shared by the parts of a running service (the
//! DIMSE gateway, the DICOMweb layer), with the site audit key that turns
//! identifiers into [`SubjectRef`]s. Those parts depend on this crate; this
//! crate never calls back into them.

use crate::event::{AuditEvent, AuditKey, Record, SubjectKind, SubjectRef};
use crate::log::{AuditLog, LogConfig, OpenReport, SyncPolicy};
use crate::note::{Checkpoint, Signer};
use crate::Error;
use std::sync::{Arc, Mutex, RwLock};

/// Told of every record once it is written and of every checkpoint once it
/// is signed, in log order (under the log's lock): exporters and alerting.
/// Must not block: queue the work and return.
pub trait Tap: Send + Sync {
    /// A record was appended.
    fn record(&self, record: &Record);
    /// A checkpoint was signed: the signed note's text.
    fn checkpoint(&self, checkpoint: &Checkpoint, note: &str);
}

/// A shared, thread-safe writer: the log behind a mutex and the site key.
pub struct Auditor {
    log: Mutex<Option<AuditLog>>,
    key: AuditKey,
    sync: SyncPolicy,
    taps: RwLock<Vec<Arc<dyn Tap>>>,
}

impl std::fmt::Debug for Auditor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auditor")
            .field("log", &self.log)
            .field("sync", &self.sync)
            .finish_non_exhaustive()
    }
}

impl Auditor {
    /// Open (or create) the log at `cfg.dir`, setting a torn tail aside
    /// (recorded in the log itself).
    pub fn open(
        cfg: LogConfig,
        signer: Signer,
        key: AuditKey,
    ) -> Result<(Auditor, OpenReport), Error> {
        let sync = cfg.sync;
        let (log, report) = AuditLog::open_recover(cfg, signer)?;
        Ok((
            Auditor {
                log: Mutex::new(Some(log)),
                key,
                sync,
                taps: RwLock::new(Vec::new()),
            },
            report,
        ))
    }

    /// Tell `tap` of every record and checkpoint from now on.
    pub fn add_tap(&self, tap: Arc<dyn Tap>) {
        self.taps
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push(tap);
    }

    /// Run `f` on the open log; then tell the taps of the checkpoints it
    /// signed.
    fn with<T>(&self, f: impl FnOnce(&mut AuditLog) -> Result<T, Error>) -> Result<T, Error> {
        let mut g = self.log.lock().unwrap_or_else(|p| p.into_inner());
        let log = g
            .as_mut()
            .ok_or_else(|| Error::Damaged("the log is closed".into()))?;
        let signed = log.signed_size();
        let out = f(log);
        if log.signed_size() != signed {
            if let Some((cp, note)) = log.last_checkpoint() {
                self.each_tap(|t| t.checkpoint(cp, note));
            }
        }
        out
    }

    fn each_tap(&self, f: impl Fn(&dyn Tap)) {
        for t in self.taps.read().unwrap_or_else(|p| p.into_inner()).iter() {
            f(t.as_ref());
        }
    }

    /// Append under the lock, telling the taps of the record.
    fn append(&self, event: AuditEvent, durable: bool) -> Result<u64, Error> {
        let tapped = !self
            .taps
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .is_empty();
        self.with(|log| {
            let copy = tapped.then(|| event.clone());
            let seq = log.append(event)?;
            if durable && self.sync != SyncPolicy::Always {
                log.sync()?;
            }
            if let Some(event) = copy {
                let record = Record { seq, event };
                self.each_tap(|t| t.record(&record));
            }
            Ok(seq)
        })
    }

    /// Append an event under the log's sync policy; returns its index.
    pub fn record(&self, event: AuditEvent) -> Result<u64, Error> {
        self.append(event, false)
    }

    /// Append an event and return only once it is on disk (fsync'd),
    /// whatever the sync policy: for events that must be durable before
    /// the action they record is acknowledged.
    pub fn record_durable(&self, event: AuditEvent) -> Result<u64, Error> {
        self.append(event, true)
    }

    /// Write a checkpoint if one is due; a timer calls it.
    pub fn tick(&self) -> Result<(), Error> {
        self.with(|log| log.tick())
    }

    /// Sync, checkpoint what is unsigned and close; later calls fail.
    pub fn close(&self) -> Result<Checkpoint, Error> {
        let mut g = self.log.lock().unwrap_or_else(|p| p.into_inner());
        let mut log = g
            .take()
            .ok_or_else(|| Error::Damaged("the log is closed".into()))?;
        let signed = log.signed_size();
        let cp = log.checkpoint()?;
        if let Some((cp, note)) = log.last_checkpoint().filter(|_| cp.size != signed) {
            self.each_tap(|t| t.checkpoint(cp, note));
        }
        Ok(cp)
    }

    /// Records in the log.
    pub fn size(&self) -> u64 {
        self.with(|log| Ok(log.size())).unwrap_or(0)
    }

    /// The site audit key's reference to `id` as a `kind`.
    pub fn subject(&self, kind: SubjectKind, id: &str) -> SubjectRef {
        SubjectRef::new(&self.key, kind, id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Actor, EventKind, Outcome};

    #[test]
    fn shared_writer_appends_and_closes() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = LogConfig::new(dir.path().join("log"));
        cfg.sync = SyncPolicy::Batched(100);
        cfg.witness_dir = Some(dir.path().join("w"));
        let signer = Signer::generate("test/audit").unwrap();
        let (a, _) = Auditor::open(cfg, signer, AuditKey::from_bytes([7; 32])).unwrap();
        let ev = |k| {
            AuditEvent::new(
                std::time::SystemTime::now(),
                k,
                Actor::default(),
                Outcome::Success,
            )
        };
        assert_eq!(a.record(ev(EventKind::WebRequest)).unwrap(), 0);
        assert_eq!(
            a.record_durable(ev(EventKind::InstanceReceived)).unwrap(),
            1
        );
        a.tick().unwrap();
        let cp = a.close().unwrap();
        assert_eq!(cp.size, 2);
        assert!(a.record(ev(EventKind::WebRequest)).is_err());
        let s = a.subject(SubjectKind::Patient, "X");
        assert_eq!(s, SubjectRef::patient(&AuditKey::from_bytes([7; 32]), "X"));
    }
}
