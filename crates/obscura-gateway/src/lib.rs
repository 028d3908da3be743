//! `obscura serve`: a store-and-forward DICOM gateway. It admits known peers
//! only (default deny), makes every received instance durable before it is
//! acknowledged, queues a job per destination in SQLite, and forwards
//! de-identified copies (each destination with its own profile and key) to
//! folders or remote SCPs, retrying until delivered. The protocol itself
//! (Upper Layer, DIMSE, TLS) is `obscura-dimse`'s; this crate is the policy,
//! the spool, the queue, the forwarder, status and metrics.

pub mod audit;
pub mod config;
pub mod forward;
pub mod metrics;
pub mod net;
pub mod policy;
pub mod queue;
pub mod spool;
pub mod status;

pub use config::{
    ArchiveSection, AuditSection, Config, ConfigError, Delivery, ObjectStoreSection, ProfileSource,
};
pub use forward::{ArchiveTarget, Destination, NoTransport, OutFile, Transport};
pub use metrics::Metrics;
pub use policy::{Caller, Policy};

use queue::{AuditRow, Enqueued, Queue, QueueBackend};
use spool::{persist_dataset, uid_hash, uid_tag, DataDir};
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// DIMSE status: Success.
pub const STATUS_SUCCESS: u16 = 0x0000;
/// DIMSE status: Refused, out of resources (the sender may retry).
pub const STATUS_OUT_OF_RESOURCES: u16 = 0xA700;
/// DIMSE status: Refused, not authorized.
pub const STATUS_NOT_AUTHORIZED: u16 = 0x0124;
/// DIMSE status: Error, cannot understand.
pub const STATUS_CANNOT_UNDERSTAND: u16 = 0xC000;

/// Print one log line (never PHI: AE titles, hashed UIDs, counts, codes),
/// stamped in RFC 3339 UTC with milliseconds (the audit log's formatter).
pub fn log(msg: &str) {
    eprintln!(
        "{} obscura serve: {msg}",
        log_line_time(std::time::SystemTime::now())
    );
}

/// A log line's time: RFC 3339 UTC with milliseconds, e.g.
/// `2026-12-05T13:04:05.123Z`.
pub fn log_line_time(t: std::time::SystemTime) -> String {
    obscura_audit::event::rfc3339(t)
}

/// On a shared spool, how old a file without a queue row must be before a
/// starting process takes it for a leftover (a receipt takes seconds).
const SHARED_LEFTOVER_AGE: Duration = Duration::from_secs(600);

/// Pending audit records moved into the log per group commit.
const AUDIT_BATCH: usize = 500;

/// How often the audit thread moves pending records into the log.
const AUDIT_EVERY: Duration = Duration::from_millis(250);

/// The running gateway's shared state.
pub struct Gateway {
    config: Config,
    data: DataDir,
    policy: Policy,
    routes: HashMap<String, Vec<String>>,
    destinations: BTreeMap<String, Destination>,
    backend: QueueBackend,
    receiver: Mutex<Box<dyn Queue>>,
    node: String,
    transport: Box<dyn Transport>,
    /// The counters served on `/metrics`.
    pub metrics: Arc<Metrics>,
    wake: (Mutex<u64>, Condvar),
    stop: AtomicBool,
    seq: AtomicU64,
    audit: OnceLock<Arc<obscura_audit::Auditor>>,
    /// Held while pending records are moved into the log (one mover at a
    /// time); the ids of rows appended whose deletion failed, deleted
    /// before anything more is appended (never appended twice meanwhile).
    audit_moved: Mutex<Vec<i64>>,
}

/// A failure to start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The data folder.
    #[error("data folder {0}: {1}")]
    Data(std::path::PathBuf, std::io::Error),
    /// The queue.
    #[error("{0}")]
    Queue(String),
    /// A destination named in the config has no engine.
    #[error("destination `{0}` has no engine")]
    MissingDestination(String),
}

impl Gateway {
    /// Open the data folder and queue, recover from a previous run (jobs
    /// that were in flight are pending again; spool files never
    /// acknowledged are removed), and get ready to receive.
    pub fn open(
        config: Config,
        destinations: Vec<Destination>,
        transport: Box<dyn Transport>,
    ) -> Result<Arc<Gateway>, StartError> {
        let root = config.data_dir();
        let data = DataDir::open(&root, &config.spool_dir())
            .map_err(|e| StartError::Data(root.clone(), e))?;
        data.clean_transient();
        let backend = QueueBackend::from_config(&config, &data).map_err(StartError::Queue)?;
        let mut queue = backend.open().map_err(StartError::Queue)?;
        if let QueueBackend::Postgres(p) = &backend {
            log(&format!(
                "queue: shared (PostgreSQL), lease {} s, this process's lease owner {}; spool {}",
                p.lease.as_secs(),
                p.owner,
                data.spool().display()
            ));
        }
        let recovered = queue.recover().map_err(StartError::Queue)?;
        if recovered > 0 {
            log(&format!(
                "{recovered} jobs in flight at the last stop will be delivered again"
            ));
        }
        // files another process sharing the spool is writing or queueing
        // right now are young: on a shared queue only old files are left over
        let leftover = |e: &std::fs::DirEntry| {
            !backend.shared()
                || e.metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age > SHARED_LEFTOVER_AGE)
        };
        // a spool file without a queue row was never acknowledged: the
        // sender got no Success and will send it again
        let known: std::collections::HashSet<String> = queue
            .spool_files()
            .map_err(StartError::Queue)?
            .into_iter()
            .collect();
        let mut orphans = 0;
        if let Ok(entries) = std::fs::read_dir(data.spool()) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if !known.contains(&name) && leftover(&e) {
                    let _ = std::fs::remove_file(e.path());
                    orphans += 1;
                }
            }
        }
        if orphans > 0 {
            log(&format!("removed {orphans} unacknowledged spool files"));
        }
        // temporary files a killed run left in destination folders (never
        // renamed into place, so never delivered): the jobs run again
        for d in &destinations {
            if let Delivery::Folder(dir) = &d.delivery {
                if let Ok(entries) = std::fs::read_dir(dir) {
                    for e in entries.flatten() {
                        let n = e.file_name().to_string_lossy().into_owned();
                        if n.starts_with(".obscura-") && n.ends_with(".tmp") && leftover(&e) {
                            let _ = std::fs::remove_file(e.path());
                        }
                    }
                }
            }
        }
        let destinations: BTreeMap<String, Destination> = destinations
            .into_iter()
            .map(|d| (d.name.clone(), d))
            .collect();
        for d in &config.destinations {
            if !destinations.contains_key(&d.name) {
                return Err(StartError::MissingDestination(d.name.clone()));
            }
        }
        let routes = config
            .peers
            .iter()
            .map(|p| (p.name.clone(), config.routes_for(&p.name)))
            .collect();
        let metrics = Arc::new(Metrics::new(destinations.keys().cloned()));
        Ok(Arc::new(Gateway {
            policy: Policy::new(&config),
            config,
            data,
            routes,
            destinations,
            node: match &backend {
                QueueBackend::Postgres(p) => p.owner.clone(),
                QueueBackend::Sqlite(_) => std::process::id().to_string(),
            },
            backend,
            receiver: Mutex::new(queue),
            transport,
            metrics,
            wake: (Mutex::new(0), Condvar::new()),
            stop: AtomicBool::new(false),
            seq: AtomicU64::new(0),
            audit: OnceLock::new(),
            audit_moved: Mutex::new(Vec::new()),
        }))
    }

    /// The config it runs.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The data folder's layout.
    pub fn data(&self) -> &DataDir {
        &self.data
    }

    /// Record events in `auditor` from now on (once; later calls are
    /// ignored), first appending the `instance-received` records a previous
    /// run left pending in the queue (a crash between its commit and the
    /// append).
    pub fn set_audit(&self, auditor: Arc<obscura_audit::Auditor>) {
        if self.audit.set(auditor).is_ok() {
            match self.flush_audit() {
                Ok(0) => {}
                Ok(n) => log(&format!(
                    "audit log: {n} records pending since the last run appended"
                )),
                Err(e) => log(&format!("audit log: pending records not appended: {e}")),
            }
        }
    }

    /// Append every pending `instance-received` record of this log to it
    /// now (at start, and for tests); returns how many.
    pub fn flush_audit(&self) -> Result<usize, String> {
        let mut q = self
            .receiver
            .lock()
            .map_err(|_| "queue lock poisoned".to_string())?;
        self.append_audit(q.as_mut())
    }

    /// Every [`AUDIT_EVERY`] until stopped, then once more: move the pending
    /// records into the log, on a queue connection of its own (so a
    /// C-STORE never waits for the log). A failure is logged once and
    /// tried again; the records stay in the queue meanwhile.
    fn append_audit_until_stopped(&self) {
        let mut queue: Option<Box<dyn Queue>> = None;
        let mut failing = false;
        loop {
            let last = self.stopping();
            let moved = match &mut queue {
                Some(q) => self.append_audit(q.as_mut()).map(|_| ()),
                None => self.backend.open().map(|q| queue = Some(q)),
            };
            match moved {
                Ok(()) => failing = false,
                Err(e) if !failing => {
                    failing = true;
                    log(&format!("audit log: pending records not appended: {e}"));
                }
                Err(_) => {}
            }
            if last {
                return;
            }
            self.wait_for_stop(AUDIT_EVERY);
        }
    }

    /// Move the pending `instance-received` records of this log from the
    /// queue into the log: a batch at a time, each made durable by one
    /// group commit, then deleted from the queue. A crash between the two
    /// appends them again at the next start (at least once, as the inbox);
    /// a deletion that fails is retried before anything more is appended.
    /// A row that is unreadable or not an `instance-received` record is
    /// not appended: it is deleted with its batch and counted in a
    /// `log-recovered` record (an alert), so it can neither forge a record
    /// nor hold up the rows after it.
    fn append_audit(&self, queue: &mut dyn Queue) -> Result<usize, String> {
        let Some(a) = self.auditor() else {
            return Ok(0);
        };
        let mut undeleted = self
            .audit_moved
            .lock()
            .map_err(|_| "audit mover lock poisoned".to_string())?;
        if !undeleted.is_empty() {
            queue.audit_appended(&undeleted)?;
            undeleted.clear();
        }
        let mut total = 0;
        loop {
            let rows = queue.audit_pending(a.origin(), AUDIT_BATCH)?;
            let ids: Vec<i64> = rows.iter().map(|(id, _)| *id).collect();
            let mut events = Vec::with_capacity(rows.len());
            for (_, text) in &rows {
                match obscura_audit::AuditEvent::from_json(text) {
                    Ok(mut e) if audit::is_pending_kind(&e) => {
                        e.restamp(std::time::SystemTime::now(), audit::RECEIVED_TIME);
                        events.push(e);
                    }
                    _ => {}
                }
            }
            let rejected = rows.len() - events.len();
            if rejected > 0 {
                log(&format!(
                    "audit log: {rejected} pending rows set aside (unreadable or not an instance-received record)"
                ));
                events.push(audit::pending_rejected(rejected));
            }
            total += a
                .record_all_durable(events)
                .map_err(|e| format!("audit log: {e}"))?;
            if !ids.is_empty() {
                if let Err(e) = queue.audit_appended(&ids) {
                    *undeleted = ids;
                    return Err(e);
                }
            }
            if rows.len() < AUDIT_BATCH {
                return Ok(total);
            }
        }
    }

    /// The audit log, when `[audit]` is on.
    pub fn auditor(&self) -> Option<&Arc<obscura_audit::Auditor>> {
        self.audit.get()
    }

    /// Admit or reject an association (an audit line either way, and an
    /// audit record when the audit log is on).
    pub fn admit(&self, caller: &Caller) -> Result<String, String> {
        let verdict = self.policy.admit(caller);
        if let Some(a) = self.auditor() {
            if let Err(e) = a.record(audit::association(caller, &verdict)) {
                log(&format!("audit log: cannot record the association: {e}"));
            }
        }
        let who = format!(
            "(calling {:?}, called {:?}, {}, {})",
            caller.calling_ae,
            caller.called_ae,
            caller.address,
            if caller.tls { "tls" } else { "plain" }
        );
        match &verdict {
            Ok(peer) => {
                self.metrics.associations.fetch_add(1, Ordering::Relaxed);
                log(&format!(
                    "audit: accepted association from peer {peer} {who}"
                ));
            }
            Err(why) => {
                self.metrics.rejected.fetch_add(1, Ordering::Relaxed);
                log(&format!("audit: rejected association {who}: {why}"));
            }
        }
        verdict
    }

    /// A C-STORE from admitted `peer`: make the data set durable, queue a job
    /// per routed destination, and only then answer Success.
    pub fn receive(
        &self,
        peer: &str,
        sop_class_uid: &str,
        sop_instance_uid: &str,
        transfer_syntax_uid: &str,
        dataset: &mut File,
    ) -> u16 {
        let started = Instant::now();
        let status = self.receive_inner(
            peer,
            sop_class_uid,
            sop_instance_uid,
            transfer_syntax_uid,
            dataset,
        );
        if status == STATUS_SUCCESS {
            self.metrics
                .store_latency
                .observe(started.elapsed().as_secs_f64());
        } else {
            self.metrics.store_failures.fetch_add(1, Ordering::Relaxed);
        }
        status
    }

    fn receive_inner(
        &self,
        peer: &str,
        sop_class_uid: &str,
        sop_instance_uid: &str,
        transfer_syntax_uid: &str,
        dataset: &mut File,
    ) -> u16 {
        let tag = uid_tag(sop_instance_uid);
        let Some(dests) = self.routes.get(peer).filter(|d| !d.is_empty()) else {
            log(&format!(
                "instance {tag} from {peer} refused: no route for this peer"
            ));
            return STATUS_NOT_AUTHORIZED;
        };
        if sop_instance_uid.trim_end_matches(['\0', ' ']).is_empty() {
            return STATUS_CANNOT_UNDERSTAND;
        }
        // a log that stopped (closed, or an fsync failed) takes nothing
        // until a restart: refuse rather than pile up records it cannot sign
        if let Err(e) = self.auditor().map_or(Ok(()), |a| a.accepting()) {
            log(&format!(
                "instance {tag} from {peer} refused: audit log: {e}"
            ));
            return STATUS_OUT_OF_RESOURCES;
        }
        let name = format!(
            "{}-{}-{}.dcm",
            self.node,
            queue::now() as u64,
            self.seq.fetch_add(1, Ordering::Relaxed)
        );
        let (path, bytes) = match persist_dataset(
            &self.data.spool(),
            &name,
            dataset,
            sop_class_uid,
            sop_instance_uid,
            transfer_syntax_uid,
        ) {
            Ok(r) => r,
            Err(e) => {
                log(&format!("instance {tag} from {peer} not stored: {e}"));
                return STATUS_OUT_OF_RESOURCES;
            }
        };
        // the `instance-received` record is committed with the queue row
        // (same transaction): acknowledged means audited, with no fsync of
        // the log here; `append_audit` moves it into the log
        let record = self.auditor().map(|a| {
            (
                a.origin(),
                audit::received(a, peer, sop_instance_uid, &path).to_json(),
            )
        });
        let audit = record.as_ref().map(|(log, event)| AuditRow { log, event });
        let hash = uid_hash(sop_instance_uid);
        let enqueued = match self.receiver.lock() {
            Ok(mut q) => q.enqueue(&hash, &name, peer, bytes, dests, audit),
            Err(_) => Err("queue lock poisoned".into()),
        };
        match enqueued {
            Ok(Enqueued::Jobs(_)) => {
                self.metrics.received.fetch_add(1, Ordering::Relaxed);
                self.metrics
                    .received_bytes
                    .fetch_add(bytes, Ordering::Relaxed);
                self.notify();
                STATUS_SUCCESS
            }
            Ok(Enqueued::Duplicate) => {
                let _ = std::fs::remove_file(&path);
                self.metrics.duplicates.fetch_add(1, Ordering::Relaxed);
                log(&format!(
                    "instance {tag} from {peer} already queued: not forwarded again"
                ));
                STATUS_SUCCESS
            }
            Err(e) => {
                let _ = std::fs::remove_file(&path);
                log(&format!("instance {tag} from {peer} not queued: {e}"));
                STATUS_OUT_OF_RESOURCES
            }
        }
    }

    fn notify(&self) {
        let (m, c) = &self.wake;
        if let Ok(mut n) = m.lock() {
            *n += 1;
            c.notify_all();
        }
    }

    fn wait_for_work(&self, timeout: Duration) {
        let (m, c) = &self.wake;
        if let Ok(g) = m.lock() {
            let seen = *g;
            let _ = c.wait_timeout_while(g, timeout, |n| *n == seen && !self.stopping());
        }
    }

    /// Sleep `timeout`, or until [`stop`](Self::stop).
    fn wait_for_stop(&self, timeout: Duration) {
        let end = Instant::now() + timeout;
        while !self.stopping() {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            self.wait_for_work(left);
        }
    }

    /// Ask the workers to stop after their current batch.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        self.notify();
    }

    /// Whether [`stop`](Self::stop) was called.
    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod log_time_tests {
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn log_lines_are_stamped_in_rfc3339_utc_with_milliseconds() {
        let t = UNIX_EPOCH + Duration::from_millis(1_796_475_845_123);
        assert_eq!(super::log_line_time(t), "2026-12-05T13:04:05.123Z");
    }
}
