//! The queue: SQLite in the data folder (WAL, synchronous=FULL). One row per
//! received instance, one job per (destination, original SOP Instance UID):
//! a re-sent instance finds its jobs already there and adds none.

use rusqlite::{params, Connection, OptionalExtension};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A queue error (SQLite's message: table and constraint names, no data).
pub type Result<T> = std::result::Result<T, String>;

fn e(err: rusqlite::Error) -> String {
    format!("queue: {err}")
}

/// Seconds since the epoch.
pub fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

/// A connection to the queue.
pub struct Queue {
    conn: Connection,
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

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS instances(
  id INTEGER PRIMARY KEY,
  uid_hash TEXT NOT NULL,
  spool TEXT NOT NULL,
  peer TEXT NOT NULL,
  bytes INTEGER NOT NULL,
  received_at REAL NOT NULL,
  removed INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS jobs(
  id INTEGER PRIMARY KEY,
  instance INTEGER NOT NULL REFERENCES instances(id),
  destination TEXT NOT NULL,
  uid_hash TEXT NOT NULL,
  state TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  next_at REAL NOT NULL,
  last_error TEXT,
  reason TEXT,
  finished_at REAL,
  UNIQUE(destination, uid_hash)
);
CREATE INDEX IF NOT EXISTS jobs_ready ON jobs(state, next_at);
CREATE INDEX IF NOT EXISTS jobs_instance ON jobs(instance);
CREATE TABLE IF NOT EXISTS errors(
  id INTEGER PRIMARY KEY,
  at REAL NOT NULL,
  destination TEXT NOT NULL,
  message TEXT NOT NULL
);
";

impl Queue {
    /// Open (creating) the queue database.
    pub fn open(path: &Path) -> Result<Queue> {
        let conn = Connection::open(path).map_err(e)?;
        conn.busy_timeout(Duration::from_secs(30)).map_err(e)?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(e)?;
        conn.pragma_update(None, "synchronous", "FULL").map_err(e)?;
        conn.execute_batch(SCHEMA).map_err(e)?;
        Ok(Queue { conn })
    }

    /// Open an existing queue for reading only (`obscura status`).
    pub fn open_read_only(path: &Path) -> Result<Queue> {
        let conn = Connection::open_with_flags(
            path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(e)?;
        conn.busy_timeout(Duration::from_secs(5)).map_err(e)?;
        Ok(Queue { conn })
    }

    /// After a restart: jobs that were being delivered are pending again.
    pub fn recover(&self) -> Result<usize> {
        self.conn
            .execute("UPDATE jobs SET state='pending' WHERE state='running'", [])
            .map_err(e)
    }

    /// Spool file names the queue knows (and has not removed).
    pub fn spool_files(&self) -> Result<Vec<String>> {
        let mut st = self
            .conn
            .prepare("SELECT spool FROM instances WHERE removed=0")
            .map_err(e)?;
        let rows = st.query_map([], |r| r.get(0)).map_err(e)?;
        rows.collect::<std::result::Result<Vec<String>, _>>()
            .map_err(e)
    }

    /// Record a durable instance and a job per destination, in one
    /// transaction (committed durably before this returns).
    pub fn enqueue(
        &mut self,
        uid_hash: &str,
        spool: &str,
        peer: &str,
        bytes: u64,
        destinations: &[String],
    ) -> Result<Enqueued> {
        let t = now();
        let tx = self.conn.transaction().map_err(e)?;
        tx.execute(
            "INSERT INTO instances(uid_hash, spool, peer, bytes, received_at) VALUES (?1,?2,?3,?4,?5)",
            params![uid_hash, spool, peer, bytes as i64, t],
        )
        .map_err(e)?;
        let instance = tx.last_insert_rowid();
        let mut created = 0;
        for d in destinations {
            created += tx
                .execute(
                    "INSERT OR IGNORE INTO jobs(instance, destination, uid_hash, state, next_at)
                     VALUES (?1,?2,?3,'pending',?4)",
                    params![instance, d, uid_hash, t],
                )
                .map_err(e)?;
        }
        if created == 0 {
            tx.execute("DELETE FROM instances WHERE id=?1", params![instance])
                .map_err(e)?;
        }
        tx.commit().map_err(e)?;
        Ok(if created == 0 {
            Enqueued::Duplicate
        } else {
            Enqueued::Jobs(created)
        })
    }

    /// Claim up to `limit` ready jobs of one destination (the one whose
    /// oldest ready job is oldest), marking them running.
    pub fn claim(&mut self, limit: usize) -> Result<Vec<Job>> {
        let t = now();
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(e)?;
        let dest: Option<String> = tx
            .query_row(
                "SELECT destination FROM jobs WHERE state='pending' AND next_at<=?1 ORDER BY next_at, id LIMIT 1",
                params![t],
                |r| r.get(0),
            )
            .optional()
            .map_err(e)?;
        let Some(dest) = dest else {
            return Ok(Vec::new());
        };
        let jobs = {
            let mut st = tx
                .prepare(
                    "SELECT j.id, j.instance, j.destination, i.spool, j.uid_hash, j.attempts, i.received_at
                     FROM jobs j JOIN instances i ON i.id=j.instance
                     WHERE j.state='pending' AND j.next_at<=?1 AND j.destination=?2
                     ORDER BY j.next_at, j.id LIMIT ?3",
                )
                .map_err(e)?;
            let rows = st
                .query_map(params![t, dest, limit as i64], |r| {
                    Ok(Job {
                        id: r.get(0)?,
                        instance: r.get(1)?,
                        destination: r.get(2)?,
                        spool: r.get(3)?,
                        uid_hash: r.get(4)?,
                        attempts: r.get::<_, i64>(5)? as u32,
                        received_at: r.get(6)?,
                    })
                })
                .map_err(e)?;
            rows.collect::<std::result::Result<Vec<Job>, _>>()
                .map_err(e)?
        };
        for j in &jobs {
            tx.execute("UPDATE jobs SET state='running' WHERE id=?1", params![j.id])
                .map_err(e)?;
        }
        tx.commit().map_err(e)?;
        Ok(jobs)
    }

    /// Mark jobs delivered.
    pub fn done(&mut self, ids: &[i64]) -> Result<()> {
        let t = now();
        let tx = self.conn.transaction().map_err(e)?;
        for id in ids {
            tx.execute(
                "UPDATE jobs SET state='done', finished_at=?2, last_error=NULL WHERE id=?1",
                params![id, t],
            )
            .map_err(e)?;
        }
        tx.commit().map_err(e)
    }

    /// Mark a job quarantined, with a reason code (no PHI).
    pub fn quarantined(&mut self, id: i64, reason: &str) -> Result<()> {
        self.conn
            .execute(
                "UPDATE jobs SET state='quarantined', reason=?2, finished_at=?3 WHERE id=?1",
                params![id, reason, now()],
            )
            .map_err(e)
            .map(|_| ())
    }

    /// A delivery failed: retry after a backoff, or give up after `max_attempts`.
    pub fn failed(
        &mut self,
        job: &Job,
        message: &str,
        backoff: Duration,
        max_attempts: u32,
    ) -> Result<bool> {
        let attempts = job.attempts + 1;
        let give_up = attempts >= max_attempts;
        let t = now();
        let tx = self.conn.transaction().map_err(e)?;
        tx.execute(
            "UPDATE jobs SET state=?2, attempts=?3, next_at=?4, last_error=?5, finished_at=?6 WHERE id=?1",
            params![
                job.id,
                if give_up { "failed" } else { "pending" },
                attempts as i64,
                t + backoff.as_secs_f64(),
                message,
                if give_up { Some(t) } else { None }
            ],
        )
        .map_err(e)?;
        tx.execute(
            "INSERT INTO errors(at, destination, message) VALUES (?1,?2,?3)",
            params![t, job.destination, message],
        )
        .map_err(e)?;
        tx.execute(
            "DELETE FROM errors WHERE id <= (SELECT MAX(id) FROM errors) - 100",
            [],
        )
        .map_err(e)?;
        tx.commit().map_err(e)?;
        Ok(give_up)
    }

    /// Instances whose every job is finished (done or quarantined) since
    /// before `older_than` (epoch seconds), and not yet removed from the spool.
    pub fn expired(&self, older_than: f64, limit: usize) -> Result<Vec<(i64, String)>> {
        let mut st = self
            .conn
            .prepare(
                "SELECT i.id, i.spool FROM instances i WHERE i.removed=0 AND NOT EXISTS
                   (SELECT 1 FROM jobs j WHERE j.instance=i.id AND
                     (j.state NOT IN ('done','quarantined') OR j.finished_at > ?1))
                 LIMIT ?2",
            )
            .map_err(e)?;
        let rows = st
            .query_map(params![older_than, limit as i64], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .map_err(e)?;
        rows.collect::<std::result::Result<Vec<_>, _>>().map_err(e)
    }

    /// Record that an instance's spool file is gone.
    pub fn removed(&mut self, ids: &[i64]) -> Result<()> {
        let tx = self.conn.transaction().map_err(e)?;
        for id in ids {
            tx.execute("UPDATE instances SET removed=1 WHERE id=?1", params![id])
                .map_err(e)?;
        }
        tx.commit().map_err(e)
    }

    /// Counts per destination (every destination named in `names`, plus any
    /// the queue still holds).
    pub fn states(&self, names: &[String]) -> Result<Vec<DestinationState>> {
        let mut by: std::collections::BTreeMap<String, DestinationState> = names
            .iter()
            .map(|n| {
                (
                    n.clone(),
                    DestinationState {
                        destination: n.clone(),
                        ..Default::default()
                    },
                )
            })
            .collect();
        let mut st = self
            .conn
            .prepare(
                "SELECT destination, state, attempts>0, COUNT(*) FROM jobs GROUP BY destination, state, attempts>0",
            )
            .map_err(e)?;
        let rows = st
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, bool>(2)?,
                    r.get::<_, i64>(3)? as u64,
                ))
            })
            .map_err(e)?;
        for row in rows {
            let (d, state, retried, n) = row.map_err(e)?;
            let s = by.entry(d.clone()).or_insert_with(|| DestinationState {
                destination: d,
                ..Default::default()
            });
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
            s.last_error = self
                .conn
                .query_row(
                    "SELECT message FROM errors WHERE destination=?1 ORDER BY id DESC LIMIT 1",
                    params![s.destination],
                    |r| r.get(0),
                )
                .optional()
                .map_err(e)?;
        }
        Ok(by.into_values().collect())
    }

    /// Quarantined jobs: (destination, reason, count).
    pub fn quarantine_reasons(&self) -> Result<Vec<(String, String, u64)>> {
        let mut st = self
            .conn
            .prepare(
                "SELECT destination, COALESCE(reason,''), COUNT(*) FROM jobs WHERE state='quarantined'
                 GROUP BY destination, reason ORDER BY destination, reason",
            )
            .map_err(e)?;
        let rows = st
            .query_map([], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? as u64))
            })
            .map_err(e)?;
        rows.collect::<std::result::Result<Vec<_>, _>>().map_err(e)
    }

    /// Jobs waiting or being delivered.
    pub fn depth(&self) -> Result<u64> {
        self.conn
            .query_row(
                "SELECT COUNT(*) FROM jobs WHERE state IN ('pending','running')",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n as u64)
            .map_err(e)
    }

    /// Instances received, and spool files still held.
    pub fn instance_counts(&self) -> Result<(u64, u64)> {
        self.conn
            .query_row(
                "SELECT COUNT(*), COALESCE(SUM(removed=0),0) FROM instances",
                [],
                |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64)),
            )
            .map_err(e)
    }

    /// Recent errors: (epoch seconds, destination, message).
    pub fn recent_errors(&self, n: usize) -> Result<Vec<(f64, String, String)>> {
        let mut st = self
            .conn
            .prepare("SELECT at, destination, message FROM errors ORDER BY id DESC LIMIT ?1")
            .map_err(e)?;
        let rows = st
            .query_map(params![n as i64], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map_err(e)?;
        rows.collect::<std::result::Result<Vec<_>, _>>().map_err(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dedupe_claim_retry_done_expire() {
        let dir = tempfile::tempdir().unwrap();
        let mut q = Queue::open(&dir.path().join("q.sqlite")).unwrap();
        let dests = vec!["a".to_string(), "b".to_string()];
        assert_eq!(
            q.enqueue("h1", "s1", "p", 10, &dests).unwrap(),
            Enqueued::Jobs(2)
        );
        assert_eq!(
            q.enqueue("h1", "s2", "p", 10, &dests).unwrap(),
            Enqueued::Duplicate
        );
        assert_eq!(q.spool_files().unwrap(), vec!["s1".to_string()]);
        let jobs = q.claim(10).unwrap();
        assert_eq!(jobs.len(), 1, "one destination at a time");
        let other = q.claim(10).unwrap();
        assert_eq!(other.len(), 1);
        assert_ne!(jobs[0].destination, other[0].destination);
        assert!(q.claim(10).unwrap().is_empty());
        // a failure retries later; recovery after a crash resets running jobs
        assert!(!q
            .failed(&jobs[0], "refused", Duration::from_secs(3600), 5)
            .unwrap());
        assert_eq!(q.recover().unwrap(), 1);
        let states = q.states(&dests).unwrap();
        assert_eq!(states.iter().map(|s| s.pending).sum::<u64>(), 2);
        assert_eq!(states.iter().map(|s| s.retrying).sum::<u64>(), 1);
        let again = q.claim(10).unwrap();
        q.done(&again.iter().map(|j| j.id).collect::<Vec<_>>())
            .unwrap();
        assert!(
            q.expired(now() + 1.0, 10).unwrap().is_empty(),
            "one job still waits"
        );
        // give up after max attempts
        let mut j = jobs[0].clone();
        j.attempts = 4;
        assert!(q.failed(&j, "refused", Duration::ZERO, 5).unwrap());
        let states = q.states(&dests).unwrap();
        assert_eq!(states.iter().map(|s| s.failed).sum::<u64>(), 1);
        assert_eq!(
            states
                .iter()
                .find(|s| s.failed == 1)
                .unwrap()
                .last_error
                .as_deref(),
            Some("refused")
        );
        // quarantined counts as finished
        let mut q2 = Queue::open(&dir.path().join("q.sqlite")).unwrap();
        q2.enqueue("h2", "s3", "p", 10, &dests[..1]).unwrap();
        let j = q2.claim(10).unwrap();
        q2.quarantined(j[0].id, "burned_in").unwrap();
        let exp = q2.expired(now() + 1.0, 10).unwrap();
        assert_eq!(exp.len(), 1);
        q2.removed(&[exp[0].0]).unwrap();
        assert_eq!(q2.instance_counts().unwrap(), (2, 1));
        assert_eq!(
            q2.quarantine_reasons().unwrap(),
            vec![("a".into(), "burned_in".into(), 1)]
        );
    }
}
