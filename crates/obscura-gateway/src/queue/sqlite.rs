//! The embedded queue: SQLite in the data folder (WAL, synchronous=FULL),
//! for one `obscura serve` process.

use rusqlite::{params, Connection, OptionalExtension};
use std::path::Path;
use std::time::Duration;

use super::{now, AuditRow, Enqueued, Job, Queue, Result, StateRow};

fn e(err: rusqlite::Error) -> String {
    format!("queue: {err}")
}

/// A connection to the SQLite queue.
pub struct SqliteQueue {
    conn: Connection,
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
CREATE TABLE IF NOT EXISTS audit_pending(
  id INTEGER PRIMARY KEY,
  log TEXT NOT NULL,
  event TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_pending_log ON audit_pending(log, id);
CREATE TABLE IF NOT EXISTS errors(
  id INTEGER PRIMARY KEY,
  at REAL NOT NULL,
  destination TEXT NOT NULL,
  message TEXT NOT NULL
);
";

impl SqliteQueue {
    /// Open (creating) the queue database.
    pub fn open(path: &Path) -> Result<SqliteQueue> {
        let conn = Connection::open(path).map_err(e)?;
        conn.busy_timeout(Duration::from_secs(30)).map_err(e)?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(e)?;
        conn.pragma_update(None, "synchronous", "FULL").map_err(e)?;
        conn.execute_batch(SCHEMA).map_err(e)?;
        Ok(SqliteQueue { conn })
    }

    /// Open an existing queue for reading only (`obscura status`).
    pub fn open_read_only(path: &Path) -> Result<SqliteQueue> {
        let conn = Connection::open_with_flags(
            path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(e)?;
        conn.busy_timeout(Duration::from_secs(5)).map_err(e)?;
        Ok(SqliteQueue { conn })
    }
}

impl Queue for SqliteQueue {
    fn recover(&mut self) -> Result<usize> {
        self.conn
            .execute("UPDATE jobs SET state='pending' WHERE state='running'", [])
            .map_err(e)
    }

    fn spool_files(&mut self) -> Result<Vec<String>> {
        let mut st = self
            .conn
            .prepare("SELECT spool FROM instances WHERE removed=0")
            .map_err(e)?;
        let rows = st.query_map([], |r| r.get(0)).map_err(e)?;
        rows.collect::<std::result::Result<Vec<String>, _>>()
            .map_err(e)
    }

    fn enqueue(
        &mut self,
        uid_hash: &str,
        spool: &str,
        peer: &str,
        bytes: u64,
        destinations: &[String],
        audit: Option<AuditRow<'_>>,
    ) -> Result<Enqueued> {
        let t = now();
        let tx = self.conn.transaction().map_err(e)?;
        if let Some(a) = audit {
            tx.execute(
                "INSERT INTO audit_pending(log, event) VALUES (?1,?2)",
                params![a.log, a.event],
            )
            .map_err(e)?;
        }
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

    fn audit_pending(&mut self, log: &str, limit: usize) -> Result<Vec<(i64, String)>> {
        let mut st = self
            .conn
            .prepare("SELECT id, event FROM audit_pending WHERE log=?1 ORDER BY id LIMIT ?2")
            .map_err(e)?;
        let rows = st
            .query_map(params![log, limit as i64], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(e)?;
        rows.collect::<std::result::Result<Vec<_>, _>>().map_err(e)
    }

    fn audit_appended(&mut self, ids: &[i64]) -> Result<()> {
        let tx = self.conn.transaction().map_err(e)?;
        for id in ids {
            tx.execute("DELETE FROM audit_pending WHERE id=?1", params![id])
                .map_err(e)?;
        }
        tx.commit().map_err(e)
    }

    fn claim(&mut self, limit: usize) -> Result<Vec<Job>> {
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

    fn done(&mut self, ids: &[i64]) -> Result<()> {
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

    fn quarantined(&mut self, id: i64, reason: &str) -> Result<()> {
        self.conn
            .execute(
                "UPDATE jobs SET state='quarantined', reason=?2, finished_at=?3 WHERE id=?1",
                params![id, reason, now()],
            )
            .map_err(e)
            .map(|_| ())
    }

    fn failed(
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

    fn expired(&mut self, older_than: f64, limit: usize) -> Result<Vec<(i64, String)>> {
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

    fn removed(&mut self, ids: &[i64]) -> Result<()> {
        let tx = self.conn.transaction().map_err(e)?;
        for id in ids {
            tx.execute("UPDATE instances SET removed=1 WHERE id=?1", params![id])
                .map_err(e)?;
        }
        tx.commit().map_err(e)
    }

    fn renew_leases(&mut self) -> Result<u64> {
        Ok(0)
    }

    fn state_rows(&mut self) -> Result<Vec<StateRow>> {
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
        rows.collect::<std::result::Result<Vec<_>, _>>().map_err(e)
    }

    fn last_error(&mut self, destination: &str) -> Result<Option<String>> {
        self.conn
            .query_row(
                "SELECT message FROM errors WHERE destination=?1 ORDER BY id DESC LIMIT 1",
                params![destination],
                |r| r.get(0),
            )
            .optional()
            .map_err(e)
    }

    fn quarantine_reasons(&mut self) -> Result<Vec<(String, String, u64)>> {
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

    fn depth(&mut self) -> Result<u64> {
        self.conn
            .query_row(
                "SELECT COUNT(*) FROM jobs WHERE state IN ('pending','running')",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n as u64)
            .map_err(e)
    }

    fn instance_counts(&mut self) -> Result<(u64, u64)> {
        self.conn
            .query_row(
                "SELECT COUNT(*), COALESCE(SUM(removed=0),0) FROM instances",
                [],
                |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64)),
            )
            .map_err(e)
    }

    fn recent_errors(&mut self, n: usize) -> Result<Vec<(f64, String, String)>> {
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
        let path = dir.path().join("q.sqlite");
        let mut q = SqliteQueue::open(&path).unwrap();
        let reopen = || Box::new(SqliteQueue::open(&path).unwrap()) as Box<dyn Queue>;
        super::super::tests::exercise(&mut q, &reopen);
    }

    #[test]
    fn recovery_after_a_crash_resets_running_jobs() {
        let dir = tempfile::tempdir().unwrap();
        let mut q = SqliteQueue::open(&dir.path().join("q.sqlite")).unwrap();
        q.enqueue("h1", "s1", "p", 10, &["a".to_string()], None)
            .unwrap();
        assert_eq!(q.claim(10).unwrap().len(), 1);
        assert!(q.claim(10).unwrap().is_empty());
        assert_eq!(q.recover().unwrap(), 1);
        assert_eq!(q.claim(10).unwrap().len(), 1);
    }

    #[test]
    fn an_audit_row_that_cannot_be_inserted_queues_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.sqlite");
        let mut q = SqliteQueue::open(&path).unwrap();
        let other = Connection::open(&path).unwrap();
        other
            .execute_batch("CREATE TRIGGER refuse BEFORE INSERT ON audit_pending BEGIN SELECT RAISE(ABORT, 'refused'); END")
            .unwrap();
        let row = AuditRow {
            log: "site/a",
            event: "{}",
        };
        let err = q
            .enqueue("h1", "s1", "p", 10, &["a".to_string()], Some(row))
            .unwrap_err();
        assert!(err.contains("refused"), "{err}");
        assert!(q.spool_files().unwrap().is_empty(), "no instance row");
        assert_eq!(q.depth().unwrap(), 0, "no job");
    }
}
