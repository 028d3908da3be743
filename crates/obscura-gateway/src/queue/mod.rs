//! The queue: one row per received instance, one job per (destination,
//! original SOP Instance UID): a re-sent instance finds its jobs already
//! there and adds none. Two backends behind [`Queue`]: SQLite in the data
//! folder (the embedded default, one process) and PostgreSQL (several
//! `obscura serve` processes sharing one database; a job is claimed by one of
//! them under a lease).

mod postgres;
mod sqlite;

pub use self::postgres::{PgQueue, PgSettings};
pub use self::sqlite::SqliteQueue;

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A queue error (the database's message: table and constraint names, no data).
pub type Result<T> = std::result::Result<T, String>;

/// Seconds since the epoch.
pub fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

/// A job to deliver one instance to one destination.
#[derive(Debug, Clone)]
pub struct Job {
    /// Job id.
    pub id: i64,
    /// Instance id.
    pub instance: i64,
    /// Destination name.
    pub destination: String,
    /// Spool file name.
    pub spool: String,
    /// Hash of the original SOP Instance UID.
    pub uid_hash: String,
    /// Attempts so far.
    pub attempts: u32,
    /// When the instance was received.
    pub received_at: f64,
}

/// Per-destination counts, for status and metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DestinationState {
    /// Destination name.
    pub destination: String,
    /// Waiting or being delivered.
    pub pending: u64,
    /// Of the pending, how many have failed at least once.
    pub retrying: u64,
    /// Delivered.
    pub done: u64,
    /// Gave up after the maximum attempts.
    pub failed: u64,
    /// Kept in quarantine, not forwarded.
    pub quarantined: u64,
    /// The most recent error (no PHI).
    pub last_error: Option<String>,
}

/// What enqueueing a received instance did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enqueued {
    /// New jobs were created (how many).
    Jobs(usize),
    /// Every destination already had this SOP Instance UID: nothing new.
    Duplicate,
}

/// An audit record made durable in the queue's own transaction, until the
/// audit log has it: the log's origin and the event as JSON (keyed hashes
/// only, no PHI).
#[derive(Debug, Clone, Copy)]
pub struct AuditRow<'a> {
    /// The origin of the log it belongs to (the process's signing key name).
    pub log: &'a str,
    /// The event ([`obscura_audit::AuditEvent::to_json`]).
    pub event: &'a str,
}

/// One count of jobs: (destination, state, failed at least once, count).
pub type StateRow = (String, String, bool, u64);

/// What the gateway asks of its queue. Job states: `pending`, `running`
/// (claimed), `done`, `failed` (gave up), `quarantined`.
pub trait Queue: Send {
    /// After a restart: jobs that were being delivered (by this process, or,
    /// on a shared queue, by one whose lease ran out) are pending again.
    fn recover(&mut self) -> Result<usize>;

    /// Spool file names the queue knows (and has not removed).
    fn spool_files(&mut self) -> Result<Vec<String>>;

    /// Record a durable instance, a job per destination and its audit
    /// record (pending until [`Queue::audit_appended`]; kept for a
    /// duplicate too), in one transaction committed durably before this
    /// returns; idempotent by destination and `uid_hash`.
    fn enqueue(
        &mut self,
        uid_hash: &str,
        spool: &str,
        peer: &str,
        bytes: u64,
        destinations: &[String],
        audit: Option<AuditRow<'_>>,
    ) -> Result<Enqueued>;

    /// Up to `limit` pending audit records of log `log`, oldest first:
    /// (row id, event JSON).
    fn audit_pending(&mut self, log: &str, limit: usize) -> Result<Vec<(i64, String)>>;

    /// Pending audit records now durable in the log: delete them.
    fn audit_appended(&mut self, ids: &[i64]) -> Result<()>;

    /// Claim up to `limit` ready jobs of one destination (the one whose
    /// oldest ready job is oldest), marking them running. A job is claimed
    /// by one caller only.
    fn claim(&mut self, limit: usize) -> Result<Vec<Job>>;

    /// Mark claimed jobs delivered.
    fn done(&mut self, ids: &[i64]) -> Result<()>;

    /// Mark a claimed job quarantined, with a reason code (no PHI).
    fn quarantined(&mut self, id: i64, reason: &str) -> Result<()>;

    /// A delivery failed: retry after `backoff`, or give up after
    /// `max_attempts` (returns whether it gave up).
    fn failed(
        &mut self,
        job: &Job,
        message: &str,
        backoff: Duration,
        max_attempts: u32,
    ) -> Result<bool>;

    /// Extend the leases of the jobs this process holds (a shared queue;
    /// nothing to do for the embedded one). Returns how many.
    fn renew_leases(&mut self) -> Result<u64>;

    /// Instances whose every job is finished (done or quarantined) since
    /// before `older_than` (epoch seconds), and not yet removed from the spool.
    fn expired(&mut self, older_than: f64, limit: usize) -> Result<Vec<(i64, String)>>;

    /// Record that instances' spool files are gone.
    fn removed(&mut self, ids: &[i64]) -> Result<()>;

    /// Job counts by destination, state and whether they failed before.
    fn state_rows(&mut self) -> Result<Vec<StateRow>>;

    /// The most recent error of a destination.
    fn last_error(&mut self, destination: &str) -> Result<Option<String>>;

    /// Quarantined jobs: (destination, reason, count).
    fn quarantine_reasons(&mut self) -> Result<Vec<(String, String, u64)>>;

    /// Jobs waiting or being delivered.
    fn depth(&mut self) -> Result<u64>;

    /// Instances received, and spool files still held.
    fn instance_counts(&mut self) -> Result<(u64, u64)>;

    /// Recent errors: (epoch seconds, destination, message).
    fn recent_errors(&mut self, n: usize) -> Result<Vec<(f64, String, String)>>;

    /// Counts per destination (every destination named in `names`, plus any
    /// the queue still holds).
    fn states(&mut self, names: &[String]) -> Result<Vec<DestinationState>> {
        let blank = |n: &str| DestinationState {
            destination: n.to_string(),
            ..Default::default()
        };
        let mut by: std::collections::BTreeMap<String, DestinationState> =
            names.iter().map(|n| (n.clone(), blank(n))).collect();
        for (d, state, retried, n) in self.state_rows()? {
            let s = by.entry(d.clone()).or_insert_with(|| blank(&d));
            match state.as_str() {
                "pending" | "running" => {
                    s.pending += n;
                    if retried {
                        s.retrying += n;
                    }
                }
                "done" => s.done += n,
                "failed" => s.failed += n,
                "quarantined" => s.quarantined += n,
                _ => {}
            }
        }
        for s in by.values_mut() {
            s.last_error = self.last_error(&s.destination)?;
        }
        Ok(by.into_values().collect())
    }
}

/// Where the queue lives, for opening connections (one per worker).
#[derive(Clone)]
pub enum QueueBackend {
    /// SQLite in the data folder (WAL, synchronous=FULL): one process.
    Sqlite(PathBuf),
    /// PostgreSQL, shared by every process configured with it.
    Postgres(Box<PgSettings>),
}

impl QueueBackend {
    /// The queue `config` names: PostgreSQL with `database_url`, else SQLite
    /// in the data folder.
    pub fn from_config(
        config: &crate::Config,
        data: &crate::spool::DataDir,
    ) -> Result<QueueBackend> {
        Ok(match config.database().map_err(|e| e.to_string())? {
            Some(db) => {
                let tls = match &config.server.database_ca_file {
                    Some(ca) => Some(
                        obscura_dimse::tls::client_config(&config.path(ca), None)
                            .map_err(|e| format!("database_ca_file: {e}"))?,
                    ),
                    None => None,
                };
                let lease = Duration::from_secs(config.server.lease_secs);
                QueueBackend::Postgres(Box::new(PgSettings::new(db, tls, lease)?))
            }
            None => QueueBackend::Sqlite(data.queue_db()),
        })
    }

    /// Open a connection, creating the tables if needed.
    pub fn open(&self) -> Result<Box<dyn Queue>> {
        Ok(match self {
            QueueBackend::Sqlite(path) => Box::new(SqliteQueue::open(path)?),
            QueueBackend::Postgres(s) => Box::new(PgQueue::open(s)?),
        })
    }

    /// Open an existing queue to read it (`obscura status`).
    pub fn open_read_only(&self) -> Result<Box<dyn Queue>> {
        Ok(match self {
            QueueBackend::Sqlite(path) => {
                if !path.exists() {
                    return Err(format!(
                        "no queue at {} (has `obscura serve` run with this config?)",
                        path.display()
                    ));
                }
                Box::new(SqliteQueue::open_read_only(path)?)
            }
            QueueBackend::Postgres(s) => Box::new(PgQueue::open_existing(s)?),
        })
    }

    /// Whether other processes may claim from this queue (leases, a shared
    /// spool).
    pub fn shared(&self) -> bool {
        matches!(self, QueueBackend::Postgres(_))
    }

    /// How long a claimed job stays with its process without a renewal.
    pub fn lease(&self) -> Option<Duration> {
        match self {
            QueueBackend::Sqlite(_) => None,
            QueueBackend::Postgres(s) => Some(s.lease),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The life of jobs on any backend: dedupe, one destination per claim,
    /// retry, give up, done, quarantine, expiry, counts. `reopen` gives
    /// another connection to the same queue.
    pub(crate) fn exercise(q: &mut dyn Queue, reopen: &dyn Fn() -> Box<dyn Queue>) {
        let dests = vec!["a".to_string(), "b".to_string()];
        assert_eq!(
            q.enqueue("h1", "s1", "p", 10, &dests, None).unwrap(),
            Enqueued::Jobs(2)
        );
        assert_eq!(
            q.enqueue("h1", "s2", "p", 10, &dests, None).unwrap(),
            Enqueued::Duplicate
        );
        assert_eq!(q.spool_files().unwrap(), vec!["s1".to_string()]);
        let jobs = q.claim(10).unwrap();
        assert_eq!(jobs.len(), 1, "one destination at a time");
        let other = reopen().claim(10).unwrap();
        assert_eq!(other.len(), 1, "the other connection gets the other job");
        assert_ne!(jobs[0].destination, other[0].destination);
        assert!(q.claim(10).unwrap().is_empty());
        // a failure retries later
        assert!(!q
            .failed(&jobs[0], "refused", Duration::from_secs(3600), 5)
            .unwrap());
        let states = q.states(&dests).unwrap();
        assert_eq!(states.iter().map(|s| s.pending).sum::<u64>(), 2);
        assert_eq!(states.iter().map(|s| s.retrying).sum::<u64>(), 1);
        assert_eq!(q.depth().unwrap(), 2);
        assert!(
            q.claim(10).unwrap().is_empty(),
            "the retry waits its backoff"
        );
        let mut q2 = reopen();
        q2.done(&other.iter().map(|j| j.id).collect::<Vec<_>>())
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            q.expired(now() + 1.0, 10).unwrap().is_empty(),
            "one job still waits"
        );
        // give up after max attempts
        q.enqueue("h9", "s9", "p", 10, &dests[..1], None).unwrap();
        let mut j = q.claim(10).unwrap().remove(0);
        j.attempts = 4;
        assert!(q.failed(&j, "refused", Duration::ZERO, 5).unwrap());
        let states = q.states(&dests).unwrap();
        assert_eq!(states.iter().map(|s| s.failed).sum::<u64>(), 1);
        assert_eq!(states.iter().map(|s| s.done).sum::<u64>(), 1);
        assert_eq!(
            states
                .iter()
                .find(|s| s.failed == 1)
                .unwrap()
                .last_error
                .as_deref(),
            Some("refused")
        );
        assert_eq!(q.recent_errors(5).unwrap().len(), 2);
        assert_eq!(q.depth().unwrap(), 1);
        // quarantined counts as finished
        q2.enqueue("h2", "s3", "p", 10, &dests[..1], None).unwrap();
        let j = q2.claim(10).unwrap();
        assert_eq!(j.len(), 1);
        q2.quarantined(j[0].id, "burned_in").unwrap();
        let exp = q2.expired(now() + 1.0, 10).unwrap();
        assert_eq!(exp.len(), 1);
        q2.removed(&[exp[0].0]).unwrap();
        assert_eq!(q2.instance_counts().unwrap(), (3, 2));
        assert_eq!(
            q2.quarantine_reasons().unwrap(),
            vec![("a".into(), "burned_in".into(), 1)]
        );
        // audit records pending with their instance (a duplicate's too),
        // per log, oldest first, until appended
        let row = |log, event| Some(AuditRow { log, event });
        let one = &dests[..1];
        let (first, second) = (r#"{"n":1}"#, r#"{"n":2}"#);
        assert_eq!(
            q.enqueue("h5", "s5", "p", 10, one, row("site/a", first))
                .unwrap(),
            Enqueued::Jobs(1)
        );
        assert_eq!(
            q.enqueue("h5", "s6", "p", 10, one, row("site/a", second))
                .unwrap(),
            Enqueued::Duplicate
        );
        q.enqueue("h6", "s7", "p", 10, one, row("site/b", "{}"))
            .unwrap();
        let pending = reopen().audit_pending("site/a", 10).unwrap();
        let events: Vec<&str> = pending.iter().map(|(_, e)| e.as_str()).collect();
        assert_eq!(events, [first, second]);
        assert_eq!(q.audit_pending("site/a", 1).unwrap(), pending[..1]);
        q2.audit_appended(&[pending[0].0]).unwrap();
        assert_eq!(q.audit_pending("site/a", 10).unwrap(), pending[1..]);
        assert_eq!(q.audit_pending("site/b", 10).unwrap().len(), 1);
        let jobs: Vec<i64> = q.claim(10).unwrap().iter().map(|j| j.id).collect();
        assert_eq!(jobs.len(), 2);
        q.done(&jobs).unwrap();
    }
}
