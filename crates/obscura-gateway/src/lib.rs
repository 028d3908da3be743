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

use queue::{Enqueued, Queue, QueueBackend};
use spool::{uid_hash, uid_tag, write_dataset, DataDir};
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

    /// Record events in `auditor` from now on (once; later calls are ignored).
    pub fn set_audit(&self, auditor: Arc<obscura_audit::Auditor>) {
        let _ = self.audit.set(auditor);
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
        let name = format!(
            "{}-{}-{}.dcm",
            self.node,
            queue::now() as u64,
            self.seq.fetch_add(1, Ordering::Relaxed)
        );
        let (file, bytes) = match write_dataset(
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
        let path = match self.commit_audited(file, peer, sop_instance_uid) {
            Ok(p) => p,
            Err(e) => {
                log(&format!("instance {tag} from {peer} not acknowledged: {e}"));
                return STATUS_OUT_OF_RESOURCES;
            }
        };
        let hash = uid_hash(sop_instance_uid);
        let enqueued = match self.receiver.lock() {
            Ok(mut q) => q.enqueue(&hash, &name, peer, bytes, dests),
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

    /// Make a received instance durable in the spool and, when the audit
    /// log is on, its `instance-received` record too: the record is
    /// appended from the written file's header, then its fsync (group
    /// commit) runs on another thread while the spool file and folder are
    /// fsync'd, so the C-STORE waits for the slower of the two, not both in
    /// turn. The caller acknowledges only if both succeed: the record is
    /// durable before the queue row, so an instance is never acknowledged
    /// without it (a record of an instance the sender must re-send is
    /// harmless).
    fn commit_audited(
        &self,
        file: spool::Unsynced,
        peer: &str,
        sop_instance_uid: &str,
    ) -> Result<std::path::PathBuf, String> {
        let Some(a) = self.auditor() else {
            return file.commit();
        };
        let event = audit::received(a, peer, sop_instance_uid, file.temp_path());
        let seq = a
            .append_pending(event)
            .map_err(|e| format!("audit log: {e}"))?;
        let (committed, recorded) = std::thread::scope(|s| {
            let recorded = s.spawn(|| a.wait_durable(seq));
            let committed = file.commit();
            (committed, recorded.join())
        });
        let path = committed?;
        match recorded {
            Ok(Ok(())) => Ok(path),
            failed => {
                let _ = std::fs::remove_file(&path);
                Err(match failed {
                    Ok(Err(e)) => format!("audit log: {e}"),
                    _ => "audit log: its fsync thread panicked".into(),
                })
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
