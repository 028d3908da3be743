//! [`Auditor`]: one open log shared by the parts of a running service (the
//! DIMSE gateway, the DICOMweb layer), with the site audit key that turns
//! identifiers into [`SubjectRef`]s. Those parts depend on this crate; this
//! crate never calls back into them.
//!
//! Durable appends use group commit: a record is written under the log's
//! lock, then one waiting thread at a time (the leader) fsyncs everything
//! written so far *outside* that lock, while the others append and wait on
//! a condition variable; each fsync releases every record it covers. So a
//! durable append waits for at most the fsync in progress and the next one,
//! and concurrent writers share fsyncs instead of queueing one each.

use crate::event::{AuditEvent, AuditKey, Record, SubjectKind, SubjectRef};
use crate::log::{AuditLog, LogConfig, OpenReport, SyncPolicy};
use crate::note::{Checkpoint, Signer};
use crate::Error;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};

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
    origin: String,
    key: AuditKey,
    sync: SyncPolicy,
    taps: RwLock<Vec<Arc<dyn Tap>>>,
    commit: Mutex<Commit>,
    committed: Condvar,
}

/// Group commit state (see the module documentation).
#[derive(Debug, Default)]
struct Commit {
    /// Records known to be on disk.
    synced: u64,
    /// A thread is running an fsync outside the log's lock.
    leader: bool,
    /// fsyncs run by group commit.
    fsyncs: u64,
    /// An fsync failed. Linux may drop the pages it covered and report the
    /// next fsync as successful ("fsyncgate"), so from then on no record is
    /// taken: the service refuses what it would have acknowledged until a
    /// restart re-reads the log from disk.
    failed: bool,
}

impl Commit {
    fn refuse_if_failed(&self) -> Result<(), Error> {
        if self.failed {
            return Err(Error::Damaged(
                "an fsync of the audit log failed: no record is taken until the service \
                 restarts and re-reads the log"
                    .into(),
            ));
        }
        Ok(())
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
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
        let origin = signer.name().to_string();
        let (log, report) = AuditLog::open_recover(cfg, signer)?;
        Ok((
            Auditor {
                commit: Mutex::new(Commit {
                    synced: log.synced(),
                    ..Commit::default()
                }),
                log: Mutex::new(Some(log)),
                origin,
                key,
                sync,
                taps: RwLock::new(Vec::new()),
                committed: Condvar::new(),
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
        let mut g = lock(&self.log);
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

    /// Append under the lock, telling the taps of the record; a durable
    /// append (or any under [`SyncPolicy::Always`]) then waits for its
    /// group commit.
    fn append(&self, event: AuditEvent, durable: bool) -> Result<u64, Error> {
        self.append_all(vec![event], durable)?
            .ok_or_else(|| Error::Damaged("no record appended".into()))
    }

    /// [`append`](Self::append) for several events in order: durable ones
    /// wait for one group commit that covers the lot. Returns the last
    /// index (`None` for no event); on an error some may be written, none
    /// is known durable.
    fn append_all(&self, events: Vec<AuditEvent>, durable: bool) -> Result<Option<u64>, Error> {
        let durable = durable || self.sync == SyncPolicy::Always;
        let mut last = None;
        for e in events {
            last = Some(self.write(e, durable)?);
        }
        if let (true, Some(seq)) = (durable, last) {
            self.wait_durable(seq)?;
        }
        Ok(last)
    }

    /// Write `event` under the lock and tell the taps; `unsynced`: leave
    /// its fsync to `wait_durable`, else follow the sync policy.
    fn write(&self, event: AuditEvent, unsynced: bool) -> Result<u64, Error> {
        lock(&self.commit).refuse_if_failed()?;
        let tapped = !self
            .taps
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .is_empty();
        self.with(|log| {
            let copy = tapped.then(|| event.clone());
            let seq = if unsynced {
                log.append_unsynced(event)?
            } else {
                log.append(event)?
            };
            if let Some(event) = copy {
                let record = Record { seq, event };
                self.each_tap(|t| t.record(&record));
            }
            Ok(seq)
        })
    }

    /// Return once record `seq` is on disk: lead an fsync of everything
    /// written so far if none is running, else wait for the running one.
    /// Fails if an fsync failed (then no record is taken any more).
    fn wait_durable(&self, seq: u64) -> Result<(), Error> {
        let mut c = lock(&self.commit);
        while c.synced <= seq {
            c.refuse_if_failed()?;
            if c.leader {
                c = self.committed.wait(c).unwrap_or_else(|p| p.into_inner());
                continue;
            }
            c.leader = true;
            drop(c);
            let result = self.group_sync();
            c = lock(&self.commit);
            c.leader = false;
            c.failed |= result.is_err();
            self.committed.notify_all();
            let (upto, ran) = result?;
            c.synced = c.synced.max(upto);
            c.fsyncs += u64::from(ran);
        }
        Ok(())
    }

    /// Flush under the log's lock, fsync outside it; returns the records
    /// on disk and whether an fsync ran.
    fn group_sync(&self) -> Result<(u64, bool), Error> {
        let (pending, synced) = self.with(|log| Ok((log.begin_sync()?, log.synced())))?;
        let Some(pending) = pending else {
            return Ok((synced, false));
        };
        let upto = pending.run()?;
        self.with(|log| {
            log.end_sync(upto);
            Ok((log.synced(), true))
        })
    }

    /// Append an event under the log's sync policy; returns its index.
    pub fn record(&self, event: AuditEvent) -> Result<u64, Error> {
        self.append(event, false)
    }

    /// Append an event and return only once it is on disk (fsync'd),
    /// whatever the sync policy: for events that must be durable before
    /// the action they record is acknowledged. Concurrent callers share
    /// fsyncs (group commit).
    pub fn record_durable(&self, event: AuditEvent) -> Result<u64, Error> {
        self.append(event, true)
    }

    /// Append events in order under the log's sync policy; under
    /// `sync_every = 1` one group commit covers the lot (a forwarder's
    /// batch) before this returns. Returns how many.
    pub fn record_all(&self, events: Vec<AuditEvent>) -> Result<usize, Error> {
        let n = events.len();
        self.append_all(events, false).map(|_| n)
    }

    /// Append events in order and return once all are on disk (one group
    /// commit for the lot, whatever the sync policy); returns how many.
    /// For records kept durable elsewhere until the log has them (the
    /// gateway's pending rows): on an error some may be written, none is
    /// known durable.
    pub fn record_all_durable(&self, events: Vec<AuditEvent>) -> Result<usize, Error> {
        let n = events.len();
        self.append_all(events, true).map(|_| n)
    }

    /// Whether the log takes records: `Err` once it is closed or an fsync
    /// failed (from then on it takes nothing until a restart).
    pub fn accepting(&self) -> Result<(), Error> {
        lock(&self.commit).refuse_if_failed()?;
        self.with(|_| Ok(()))
    }

    /// The log's origin (its signing key's name).
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Write a checkpoint if one is due; a timer calls it.
    pub fn tick(&self) -> Result<(), Error> {
        self.with(|log| log.tick())
    }

    /// Sync, checkpoint what is unsigned and close; later calls fail.
    pub fn close(&self) -> Result<Checkpoint, Error> {
        let mut g = lock(&self.log);
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

    /// Records known to be on disk (every index below it was fsync'd), and
    /// the fsyncs group commit ran for them.
    pub fn durable(&self) -> (u64, u64) {
        let synced = self.with(|log| Ok(log.synced())).unwrap_or(0);
        let c = lock(&self.commit);
        (synced.max(c.synced), c.fsyncs)
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

    fn open(dir: &std::path::Path, sync: SyncPolicy) -> Auditor {
        let mut cfg = LogConfig::new(dir.join("log"));
        cfg.sync = sync;
        let signer = Signer::generate("test/audit").unwrap();
        Auditor::open(cfg, signer, AuditKey::from_bytes([7; 32]))
            .unwrap()
            .0
    }

    fn received(i: u64) -> AuditEvent {
        let mut e = AuditEvent::new(
            std::time::SystemTime::now(),
            EventKind::InstanceReceived,
            Actor::default(),
            Outcome::Success,
        );
        e.count = Some(i);
        e
    }

    /// Complete lines in the log's segments.
    fn lines_on_disk(dir: &std::path::Path) -> usize {
        crate::log::list_segments(&dir.join("log"))
            .unwrap()
            .iter()
            .map(|(_, p)| std::fs::read(p).unwrap())
            .map(|b| b.iter().filter(|&&c| c == b'\n').count())
            .sum()
    }

    #[test]
    fn after_a_failed_fsync_no_record_is_taken() {
        let dir = tempfile::tempdir().unwrap();
        let a = open(dir.path(), SyncPolicy::Batched(1000));
        a.record(received(0)).unwrap();
        // what `wait_durable` records when the leader's fsync fails
        lock(&a.commit).failed = true;
        for durable in [false, true] {
            let e = a.append(received(1), durable).unwrap_err().to_string();
            assert!(e.contains("fsync of the audit log failed"), "{e}");
        }
        assert!(a.record_all_durable(vec![received(1)]).is_err());
        assert!(a.accepting().is_err(), "the log says it takes nothing");
        assert!(a.wait_durable(0).is_err(), "a waiter is refused too");
        assert_eq!(a.size(), 1, "nothing appended after the failure");
    }

    #[test]
    fn one_fsync_makes_everything_queued_durable() {
        let dir = tempfile::tempdir().unwrap();
        let a = open(dir.path(), SyncPolicy::Batched(1000));
        for i in 0..10 {
            a.record(received(i)).unwrap();
        }
        assert_eq!(a.durable(), (0, 0));
        assert_eq!(a.record_durable(received(10)).unwrap(), 10);
        assert_eq!(a.durable(), (11, 1));
        assert_eq!(lines_on_disk(dir.path()), 11);
        // nothing new: no fsync
        a.wait_durable(10).unwrap();
        assert_eq!(a.durable(), (11, 1));
    }

    #[test]
    fn a_batch_is_durable_after_one_fsync() {
        let dir = tempfile::tempdir().unwrap();
        let a = open(dir.path(), SyncPolicy::Batched(1000));
        a.accepting().unwrap();
        assert_eq!(a.record_all_durable(Vec::new()).unwrap(), 0);
        assert_eq!(a.durable(), (0, 0), "nothing to sync");
        assert_eq!(
            a.record_all_durable((0..5).map(received).collect())
                .unwrap(),
            5
        );
        assert_eq!(a.durable(), (5, 1));
        assert_eq!(lines_on_disk(dir.path()), 5);
        // under the policy: batched, no fsync yet
        assert_eq!(a.record_all((5..8).map(received).collect()).unwrap(), 3);
        assert_eq!(a.durable(), (5, 1));
        let every = open(&dir.path().join("every"), SyncPolicy::Always);
        assert_eq!(every.record_all((0..4).map(received).collect()).unwrap(), 4);
        assert_eq!(every.durable(), (4, 1), "one fsync for the lot");
        a.close().unwrap();
        assert!(a.accepting().is_err(), "closed");
    }

    #[test]
    fn concurrent_durable_appends_share_fsyncs() {
        const THREADS: u64 = 16;
        const EACH: u64 = 25;
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let a = open(root, SyncPolicy::Always);
        let start = std::sync::Barrier::new(THREADS as usize);
        let seqs: Vec<u64> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..THREADS)
                .map(|t| {
                    let (a, start) = (&a, &start);
                    s.spawn(move || {
                        start.wait();
                        (0..EACH)
                            .map(|i| {
                                let seq = a.record(received(t * EACH + i)).unwrap();
                                // durable when the call returns
                                assert!(a.durable().0 > seq, "record {seq} not fsync'd");
                                assert!(lines_on_disk(root) as u64 > seq);
                                seq
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap())
                .collect()
        });
        let total = THREADS * EACH;
        let distinct: std::collections::BTreeSet<u64> = seqs.into_iter().collect();
        assert_eq!(distinct, (0..total).collect());
        let (synced, fsyncs) = a.durable();
        assert_eq!(synced, total);
        assert!(
            (1..total).contains(&fsyncs),
            "{fsyncs} fsyncs for {total} records: no group commit"
        );
        a.close().unwrap();
        let reader = crate::LogReader::open(&root.join("log")).unwrap();
        assert_eq!(reader.size(), total);
    }
}
