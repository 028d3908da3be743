//! The shared queue: PostgreSQL, for several `obscura serve` processes on
//! one database. A claim is one statement (`FOR UPDATE SKIP LOCKED`) that
//! marks the jobs running under this process's lease; the process renews
//! its leases while it lives, and a job whose lease ran out (its process
//! died) is claimable again by any process. Times are the database's clock,
//! so the processes' clocks need not agree.

use super::{AuditRow, Enqueued, Job, Queue, Result, StateRow};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio_postgres::{Client, NoTls, Row};

/// The database's clock, in epoch seconds.
const NOW: &str = "extract(epoch from clock_timestamp())::float8";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS gateway_instances(
  id BIGSERIAL PRIMARY KEY,
  uid_hash TEXT NOT NULL,
  spool TEXT NOT NULL,
  peer TEXT NOT NULL,
  bytes BIGINT NOT NULL,
  received_at DOUBLE PRECISION NOT NULL,
  removed BOOLEAN NOT NULL DEFAULT false
);
CREATE TABLE IF NOT EXISTS gateway_jobs(
  id BIGSERIAL PRIMARY KEY,
  instance BIGINT NOT NULL REFERENCES gateway_instances(id),
  destination TEXT NOT NULL,
  uid_hash TEXT NOT NULL,
  state TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  next_at DOUBLE PRECISION NOT NULL,
  last_error TEXT,
  reason TEXT,
  finished_at DOUBLE PRECISION,
  owner TEXT,
  lease_until DOUBLE PRECISION,
  UNIQUE(destination, uid_hash)
);
CREATE INDEX IF NOT EXISTS gateway_jobs_ready ON gateway_jobs(state, next_at);
CREATE INDEX IF NOT EXISTS gateway_jobs_instance ON gateway_jobs(instance);
CREATE INDEX IF NOT EXISTS gateway_instances_kept ON gateway_instances(id) WHERE NOT removed;
CREATE TABLE IF NOT EXISTS gateway_audit_pending(
  id BIGSERIAL PRIMARY KEY,
  log TEXT NOT NULL,
  event TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS gateway_audit_pending_log ON gateway_audit_pending(log, id);
CREATE TABLE IF NOT EXISTS gateway_errors(
  id BIGSERIAL PRIMARY KEY,
  at DOUBLE PRECISION NOT NULL,
  destination TEXT NOT NULL,
  message TEXT NOT NULL
);
";

/// Whether a job may be claimed: pending and due, or running under a lease
/// that ran out.
const READY: &str = "((state='pending' AND next_at<=extract(epoch from clock_timestamp())::float8)
  OR (state='running' AND lease_until<extract(epoch from clock_timestamp())::float8))";

/// How to reach the database, and this process's identity in it.
#[derive(Clone)]
pub struct PgSettings {
    /// Host, port, user, database, password (never from argv).
    pub config: tokio_postgres::Config,
    /// TLS to the server (its CA), or `None` for a local connection.
    pub tls: Option<Arc<obscura_dimse::rustls::ClientConfig>>,
    /// A claimed job stays with this process this long after its last renewal.
    pub lease: Duration,
    /// This process's lease owner token (random per start).
    pub owner: String,
    /// The runtime that drives every connection of this process (the
    /// callers are plain threads that wait for each statement).
    pub runtime: Arc<tokio::runtime::Runtime>,
}

impl PgSettings {
    /// Settings with a fresh owner token and a one-thread runtime.
    pub fn new(
        config: tokio_postgres::Config,
        tls: Option<Arc<obscura_dimse::rustls::ClientConfig>>,
        lease: Duration,
    ) -> Result<PgSettings> {
        let mut token = [0u8; 12];
        getrandom::getrandom(&mut token).map_err(|e| format!("queue: no randomness: {e}"))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("queue")
            .enable_all()
            .build()
            .map_err(|e| format!("queue: cannot start its runtime: {e}"))?;
        Ok(PgSettings {
            config,
            tls,
            lease,
            owner: token.iter().map(|b| format!("{b:02x}")).collect(),
            runtime: Arc::new(runtime),
        })
    }
}

/// A connection to the shared queue (reconnects when the connection drops).
pub struct PgQueue {
    settings: PgSettings,
    client: Client,
}

/// The database's code and message only (a DETAIL may quote row values);
/// for a connection error, its cause too (refused, a certificate...).
fn e(err: tokio_postgres::Error) -> String {
    match (err.as_db_error(), std::error::Error::source(&err)) {
        (Some(d), _) => format!("queue (PostgreSQL): {} ({})", d.message(), d.code().code()),
        (None, Some(cause)) => format!("queue (PostgreSQL): {err}: {cause}"),
        (None, None) => format!("queue (PostgreSQL): {err}"),
    }
}

fn count(n: i64) -> u64 {
    n.max(0) as u64
}

impl PgQueue {
    /// Connect and create the tables if needed (once, under an advisory
    /// lock: processes may start together).
    pub fn open(settings: &PgSettings) -> Result<PgQueue> {
        let mut q = PgQueue::connect(settings)?;
        q.run(|c| async move {
            let tx = c.transaction().await?;
            tx.execute("SELECT pg_advisory_xact_lock(4771220601)", &[])
                .await?;
            tx.batch_execute(SCHEMA).await?;
            tx.commit().await
        })?;
        Ok(q)
    }

    /// Connect to a queue that must exist already (`obscura status`).
    pub fn open_existing(settings: &PgSettings) -> Result<PgQueue> {
        let mut q = PgQueue::connect(settings)?;
        let row = q.one("SELECT to_regclass('gateway_jobs') IS NOT NULL", &[])?;
        if !row.get::<_, bool>(0) {
            return Err(
                "no queue in the database (has `obscura serve` run with this config?)".into(),
            );
        }
        Ok(q)
    }

    fn connect(settings: &PgSettings) -> Result<PgQueue> {
        Ok(PgQueue {
            settings: settings.clone(),
            client: new_client(settings)?,
        })
    }

    /// Run `f` on the connection (made again first if it dropped: a
    /// database restart), waiting for it.
    fn run<'a, T, F>(&'a mut self, f: impl FnOnce(&'a mut Client) -> F) -> Result<T>
    where
        F: Future<Output = std::result::Result<T, tokio_postgres::Error>> + 'a,
    {
        if self.client.is_closed() {
            self.client = new_client(&self.settings)?;
        }
        let rt = Arc::clone(&self.settings.runtime);
        rt.block_on(f(&mut self.client)).map_err(e)
    }

    fn query(
        &mut self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<Row>> {
        self.run(|c| async move { c.query(sql, params).await })
    }

    fn one(
        &mut self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Row> {
        self.run(|c| async move { c.query_one(sql, params).await })
    }

    fn execute(
        &mut self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<u64> {
        self.run(|c| async move { c.execute(sql, params).await })
    }

    fn lease_secs(&self) -> f64 {
        self.settings.lease.as_secs_f64()
    }
}

/// A new connection (over TLS when the settings say so), its driver
/// spawned on the settings' runtime.
/// A new connection, with `synchronous_commit` on whatever the server's
/// default: a commit (a queue row with its audit record) is durable when
/// it returns, before the sender is answered Success.
fn new_client(settings: &PgSettings) -> Result<Client> {
    let (config, rt) = (&settings.config, &settings.runtime);
    let client = match &settings.tls {
        Some(tls) => {
            let tls = tokio_postgres_rustls::MakeRustlsConnect::new((**tls).clone());
            drive(rt, rt.block_on(config.connect(tls)))
        }
        None => drive(rt, rt.block_on(config.connect(NoTls))),
    }?;
    rt.block_on(client.batch_execute("SET synchronous_commit = on"))
        .map_err(e)?;
    Ok(client)
}

/// Spawn a connection's driver; hand back its client.
fn drive<C>(
    rt: &tokio::runtime::Runtime,
    connected: std::result::Result<(Client, C), tokio_postgres::Error>,
) -> Result<Client>
where
    C: Future<Output = std::result::Result<(), tokio_postgres::Error>> + Send + 'static,
{
    let (client, connection) = connected.map_err(e)?;
    rt.spawn(async move {
        if let Err(err) = connection.await {
            crate::log(&format!("queue: the database connection ended: {}", e(err)));
        }
    });
    Ok(client)
}

impl Queue for PgQueue {
    fn recover(&mut self) -> Result<usize> {
        let sql = format!(
            "UPDATE gateway_jobs SET state='pending', owner=NULL WHERE state='running' AND lease_until<{NOW}"
        );
        Ok(self.execute(&sql, &[])? as usize)
    }

    fn spool_files(&mut self) -> Result<Vec<String>> {
        let rows = self.query("SELECT spool FROM gateway_instances WHERE NOT removed", &[])?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
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
        let add_instance = format!(
            "INSERT INTO gateway_instances(uid_hash, spool, peer, bytes, received_at)
             VALUES ($1,$2,$3,$4,{NOW}) RETURNING id"
        );
        let add_job = format!(
            "INSERT INTO gateway_jobs(instance, destination, uid_hash, state, next_at)
             VALUES ($1,$2,$3,'pending',{NOW}) ON CONFLICT (destination, uid_hash) DO NOTHING"
        );
        let created = self.run(|c| async move {
            let tx = c.transaction().await?;
            if let Some(a) = audit {
                tx.execute(
                    "INSERT INTO gateway_audit_pending(log, event) VALUES ($1,$2)",
                    &[&a.log, &a.event],
                )
                .await?;
            }
            let instance: i64 = tx
                .query_one(&add_instance, &[&uid_hash, &spool, &peer, &(bytes as i64)])
                .await?
                .get(0);
            let mut created = 0;
            for d in destinations {
                created += tx.execute(&add_job, &[&instance, d, &uid_hash]).await?;
            }
            if created == 0 {
                tx.execute("DELETE FROM gateway_instances WHERE id=$1", &[&instance])
                    .await?;
            }
            tx.commit().await?;
            Ok(created)
        })?;
        Ok(if created == 0 {
            Enqueued::Duplicate
        } else {
            Enqueued::Jobs(created as usize)
        })
    }

    fn audit_pending(&mut self, log: &str, limit: usize) -> Result<Vec<(i64, String)>> {
        let rows = self.query(
            "SELECT id, event FROM gateway_audit_pending WHERE log=$1 ORDER BY id LIMIT $2",
            &[&log, &(limit as i64)],
        )?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    fn audit_appended(&mut self, ids: &[i64]) -> Result<()> {
        self.execute(
            "DELETE FROM gateway_audit_pending WHERE id = ANY($1)",
            &[&ids],
        )
        .map(|_| ())
    }

    fn claim(&mut self, limit: usize) -> Result<Vec<Job>> {
        let owner = self.settings.owner.clone();
        let lease = self.lease_secs();
        let sql = format!(
            "WITH pick AS (
               SELECT id FROM gateway_jobs
               WHERE {READY} AND destination = (
                 SELECT destination FROM gateway_jobs WHERE {READY} ORDER BY next_at, id LIMIT 1)
               ORDER BY next_at, id LIMIT $3
               FOR UPDATE SKIP LOCKED
             ), claimed AS (
               UPDATE gateway_jobs j SET state='running', owner=$1, lease_until={NOW} + $2
               FROM pick WHERE j.id=pick.id
               RETURNING j.id, j.instance, j.destination, j.uid_hash, j.attempts, j.next_at
             )
             SELECT c.id, c.instance, c.destination, i.spool, c.uid_hash, c.attempts, i.received_at
             FROM claimed c JOIN gateway_instances i ON i.id=c.instance
             ORDER BY c.next_at, c.id"
        );
        let rows = self.query(&sql, &[&owner, &lease, &(limit as i64)])?;
        Ok(rows
            .iter()
            .map(|r| Job {
                id: r.get(0),
                instance: r.get(1),
                destination: r.get(2),
                spool: r.get(3),
                uid_hash: r.get(4),
                attempts: r.get::<_, i32>(5).max(0) as u32,
                received_at: r.get(6),
            })
            .collect())
    }

    fn done(&mut self, ids: &[i64]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let owner = self.settings.owner.clone();
        let sql = format!(
            "UPDATE gateway_jobs SET state='done', finished_at={NOW}, last_error=NULL, owner=NULL
             WHERE id = ANY($1) AND state='running' AND owner=$2"
        );
        self.execute(&sql, &[&ids, &owner]).map(|_| ())
    }

    fn quarantined(&mut self, id: i64, reason: &str) -> Result<()> {
        let owner = self.settings.owner.clone();
        let sql = format!(
            "UPDATE gateway_jobs SET state='quarantined', reason=$2, finished_at={NOW}, owner=NULL
             WHERE id=$1 AND state='running' AND owner=$3"
        );
        self.execute(&sql, &[&id, &reason, &owner]).map(|_| ())
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
        let owner = self.settings.owner.clone();
        let update = format!(
            "UPDATE gateway_jobs SET state=$2, attempts=$3, next_at={NOW} + $4, last_error=$5,
               finished_at=CASE WHEN $6 THEN {NOW} END, owner=NULL
             WHERE id=$1 AND state='running' AND owner=$7"
        );
        let log_error =
            format!("INSERT INTO gateway_errors(at, destination, message) VALUES ({NOW},$1,$2)");
        let state = if give_up { "failed" } else { "pending" };
        let wait = backoff.as_secs_f64();
        let changed = self.run(|c| async move {
            let tx = c.transaction().await?;
            let changed = tx
                .execute(
                    &update,
                    &[
                        &job.id,
                        &state,
                        &(attempts as i32),
                        &wait,
                        &message,
                        &give_up,
                        &owner,
                    ],
                )
                .await?;
            tx.execute(&log_error, &[&job.destination, &message])
                .await?;
            tx.execute(
                "DELETE FROM gateway_errors WHERE id <= (SELECT MAX(id) FROM gateway_errors) - 100",
                &[],
            )
            .await?;
            tx.commit().await?;
            Ok(changed)
        })?;
        Ok(give_up && changed > 0)
    }

    fn renew_leases(&mut self) -> Result<u64> {
        let owner = self.settings.owner.clone();
        let lease = self.lease_secs();
        let sql = format!(
            "UPDATE gateway_jobs SET lease_until={NOW} + $2 WHERE state='running' AND owner=$1"
        );
        self.execute(&sql, &[&owner, &lease])
    }

    fn expired(&mut self, older_than: f64, limit: usize) -> Result<Vec<(i64, String)>> {
        let rows = self.query(
            "SELECT i.id, i.spool FROM gateway_instances i WHERE NOT i.removed AND NOT EXISTS
               (SELECT 1 FROM gateway_jobs j WHERE j.instance=i.id AND
                 (j.state NOT IN ('done','quarantined') OR j.finished_at > $1))
             LIMIT $2",
            &[&older_than, &(limit as i64)],
        )?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    fn removed(&mut self, ids: &[i64]) -> Result<()> {
        self.execute(
            "UPDATE gateway_instances SET removed=true WHERE id = ANY($1)",
            &[&ids],
        )
        .map(|_| ())
    }

    fn state_rows(&mut self) -> Result<Vec<StateRow>> {
        let rows = self.query(
            "SELECT destination, state, attempts>0, COUNT(*) FROM gateway_jobs
             GROUP BY destination, state, attempts>0",
            &[],
        )?;
        Ok(rows
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), count(r.get(3))))
            .collect())
    }

    fn last_error(&mut self, destination: &str) -> Result<Option<String>> {
        let rows = self.query(
            "SELECT message FROM gateway_errors WHERE destination=$1 ORDER BY id DESC LIMIT 1",
            &[&destination],
        )?;
        Ok(rows.first().map(|r| r.get(0)))
    }

    fn quarantine_reasons(&mut self) -> Result<Vec<(String, String, u64)>> {
        let rows = self.query(
            "SELECT destination, COALESCE(reason,''), COUNT(*) FROM gateway_jobs
             WHERE state='quarantined' GROUP BY destination, reason ORDER BY destination, reason",
            &[],
        )?;
        Ok(rows
            .iter()
            .map(|r| (r.get(0), r.get(1), count(r.get(2))))
            .collect())
    }

    fn depth(&mut self) -> Result<u64> {
        let row = self.one(
            "SELECT COUNT(*) FROM gateway_jobs WHERE state IN ('pending','running')",
            &[],
        )?;
        Ok(count(row.get(0)))
    }

    fn instance_counts(&mut self) -> Result<(u64, u64)> {
        let row = self.one(
            "SELECT COUNT(*), COUNT(*) FILTER (WHERE NOT removed) FROM gateway_instances",
            &[],
        )?;
        Ok((count(row.get(0)), count(row.get(1))))
    }

    fn recent_errors(&mut self, n: usize) -> Result<Vec<(f64, String, String)>> {
        let rows = self.query(
            "SELECT at, destination, message FROM gateway_errors ORDER BY id DESC LIMIT $1",
            &[&(n as i64)],
        )?;
        Ok(rows
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::QueueBackend;
    use std::path::{Path, PathBuf};
    use std::process::Command;

    /// A throwaway cluster (Debian's `postgresql`: initdb + pg_ctl in a temp
    /// folder, trust on 127.0.0.1), stopped on drop.
    struct Cluster {
        _dir: tempfile::TempDir,
        data: PathBuf,
        pg_ctl: PathBuf,
        port: u16,
    }

    fn as_postgres(cmd: &Path) -> Command {
        // initdb and postgres refuse to run as root
        if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(cmd);
            c
        } else {
            Command::new(cmd)
        }
    }

    fn is_root() -> bool {
        Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
    }

    /// A CA and a server certificate for `localhost` (PEM).
    struct Pki {
        ca: String,
        cert: String,
        key: String,
    }

    fn pki() -> Pki {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(vec![]).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        let cert = params.signed_by(&key, &issuer).unwrap();
        Pki {
            ca: ca.pem(),
            cert: cert.pem(),
            key: key.serialize_pem(),
        }
    }

    impl Cluster {
        /// Start a cluster (with TLS from `tls`), or `None` when PostgreSQL
        /// is not installed.
        fn start(tls: Option<&Pki>) -> Option<Cluster> {
            let bin = std::fs::read_dir("/usr/lib/postgresql")
                .ok()?
                .flatten()
                .map(|e| e.path().join("bin"))
                .filter(|b| b.join("initdb").exists())
                .max()?;
            let dir = tempfile::tempdir().unwrap();
            let (data, sock) = (dir.path().join("pgdata"), dir.path().join("sock"));
            std::fs::create_dir(&sock).unwrap();
            let (cert, key) = (dir.path().join("server.pem"), dir.path().join("server.key"));
            let mut ssl = String::new();
            if let Some(t) = tls {
                use std::os::unix::fs::PermissionsExt;
                std::fs::write(&cert, &t.cert).unwrap();
                std::fs::write(&key, &t.key).unwrap();
                std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
                ssl = format!(
                    " -c ssl=on -c ssl_cert_file={} -c ssl_key_file={}",
                    cert.display(),
                    key.display()
                );
            }
            if is_root() {
                let out = Command::new("id")
                    .args(["-u", "postgres"])
                    .output()
                    .unwrap();
                let uid: u32 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
                for p in [dir.path(), &sock, &cert, &key] {
                    if p.exists() {
                        std::os::unix::fs::chown(p, Some(uid), None).unwrap();
                    }
                }
            }
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let ok = as_postgres(&bin.join("initdb"))
                .args([
                    "-A",
                    "trust",
                    "-U",
                    "obscura",
                    "-E",
                    "UTF8",
                    "--no-locale",
                    "-D",
                ])
                .arg(&data)
                .output()
                .unwrap();
            assert!(ok.status.success(), "initdb failed");
            let options = format!(
                "-k {} -p {port} -c listen_addresses=127.0.0.1{ssl}",
                sock.display()
            );
            let ok = as_postgres(&bin.join("pg_ctl"))
                .arg("-D")
                .arg(&data)
                .args(["-o", &options, "-w", "-l"])
                .arg(dir.path().join("log"))
                .arg("start")
                .output()
                .unwrap();
            assert!(ok.status.success(), "pg_ctl start failed");
            Some(Cluster {
                data,
                pg_ctl: bin.join("pg_ctl"),
                port,
                _dir: dir,
            })
        }

        fn settings(&self, lease: Duration) -> PgSettings {
            let url = format!("postgres://obscura@127.0.0.1:{}/postgres", self.port);
            PgSettings::new(url.parse().unwrap(), None, lease).unwrap()
        }
    }

    impl Drop for Cluster {
        fn drop(&mut self) {
            let _ = as_postgres(&self.pg_ctl)
                .arg("-D")
                .arg(&self.data)
                .args(["-m", "immediate", "-w", "stop"])
                .output();
        }
    }

    #[test]
    fn shared_queue_semantics_claims_and_leases() {
        let Some(cluster) = Cluster::start(None) else {
            eprintln!("skipped: PostgreSQL server not installed (apt-get install postgresql)");
            return;
        };
        let settings = cluster.settings(Duration::from_secs(3));
        let mut q = PgQueue::open(&settings).unwrap();
        let reopen = || Box::new(PgQueue::open(&settings).unwrap()) as Box<dyn Queue>;
        crate::queue::tests::exercise(&mut q, &reopen);

        // many claimers at once (two "processes", four connections each):
        // every job is claimed by exactly one of them
        let dests = vec!["c".to_string()];
        for i in 0..300 {
            q.enqueue(&format!("u{i}"), &format!("f{i}"), "p", 1, &dests, None)
                .unwrap();
        }
        let other = cluster.settings(Duration::from_secs(3));
        let claimed: Vec<i64> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|i| {
                    let st = if i % 2 == 0 { &settings } else { &other };
                    s.spawn(move || {
                        let mut q = PgQueue::open(st).unwrap();
                        let mut mine = Vec::new();
                        loop {
                            let jobs = q.claim(7).unwrap();
                            if jobs.is_empty() {
                                return mine;
                            }
                            mine.extend(jobs.iter().map(|j| j.id));
                        }
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap())
                .collect()
        });
        let unique: std::collections::HashSet<_> = claimed.iter().collect();
        assert_eq!(claimed.len(), 300);
        assert_eq!(unique.len(), 300);

        // a process that stops renewing loses its jobs after the lease; the
        // late owner can no longer finish them, the new one can
        let mut late = PgQueue::open(&other).unwrap();
        let mut live = PgQueue::open(&settings).unwrap();
        live.done(&claimed).unwrap();
        late.done(&claimed).unwrap();
        late.enqueue("lease", "fl", "p", 1, &dests, None).unwrap();
        let held = late.claim(10).unwrap();
        assert_eq!(held.len(), 1);
        assert!(live.claim(10).unwrap().is_empty(), "leased");
        std::thread::sleep(Duration::from_millis(1500));
        assert_eq!(late.renew_leases().unwrap(), 1);
        std::thread::sleep(Duration::from_millis(2000));
        assert!(live.claim(10).unwrap().is_empty(), "renewed");
        std::thread::sleep(Duration::from_millis(1500));
        let taken = live.claim(10).unwrap();
        assert_eq!(taken.len(), 1, "the lease ran out");
        assert_eq!(taken[0].id, held[0].id);
        late.done(&[held[0].id]).unwrap();
        let c = |q: &mut PgQueue| {
            q.states(&dests)
                .unwrap()
                .into_iter()
                .find(|s| s.destination == "c")
                .unwrap()
        };
        assert_eq!(c(&mut live).pending, 1, "not the late owner's");
        live.done(&[taken[0].id]).unwrap();
        let s = c(&mut live);
        assert_eq!((s.pending, s.done), (0, 301));
    }

    #[test]
    fn tls_to_the_database_from_the_config() {
        let (pki, other) = (pki(), pki());
        let Some(cluster) = Cluster::start(Some(&pki)) else {
            eprintln!("skipped: PostgreSQL server not installed (apt-get install postgresql)");
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.pem"), &pki.ca).unwrap();
        std::fs::write(dir.path().join("other-ca.pem"), &other.ca).unwrap();
        let config = |ca: &str| {
            // a host name to verify, the address to reach it at
            let text = format!(
                r#"
[server]
ae_title = "OBSCURA"
listen = "127.0.0.1:11112"
data_dir = "data"
spool_dir = "spool"
database_url = "postgres://obscura@localhost:{}/postgres?hostaddr=127.0.0.1"
database_ca_file = "{ca}"
"#,
                cluster.port
            );
            let c = crate::Config::parse(&text, dir.path()).unwrap();
            let data = crate::spool::DataDir::open(&c.data_dir(), &c.spool_dir()).unwrap();
            QueueBackend::from_config(&c, &data).unwrap()
        };
        let mut q = config("ca.pem").open().unwrap();
        assert_eq!(
            q.enqueue("h", "s", "p", 1, &["a".to_string()], None)
                .unwrap(),
            Enqueued::Jobs(1)
        );
        let QueueBackend::Postgres(settings) = config("ca.pem") else {
            panic!("not the shared queue")
        };
        let mut pg = PgQueue::open_existing(&settings).unwrap();
        let ssl = pg
            .one(
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                &[],
            )
            .unwrap();
        assert!(ssl.get::<_, bool>(0), "the connection is TLS");
        // a server whose certificate another CA signed is refused
        let err = config("other-ca.pem").open().err().unwrap();
        assert!(
            err.contains("queue (PostgreSQL)") && err.contains("certificate"),
            "{err}"
        );
    }
}
