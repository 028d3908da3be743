//! The PostgreSQL index, for several `obscura serve` processes sharing one
//! database: SQLite's tables in a schema of their own (`obscura_vault`),
//! created on open under an advisory lock.
//!
//! Writes to a tenant's rows are serialized by locking the tenant's row
//! (`SELECT ... FOR UPDATE`) where SQLite takes its write lock, so study
//! generations commit in order whichever process writes; an instance's
//! row is unique by (tenant, UID hash) and inserted with `ON CONFLICT DO
//! NOTHING`, so a second store of one SOP Instance UID, from any process,
//! is a duplicate, never a second row.
//!
//! The connection is TLS (rustls, the configured CA) unless the server is
//! on a loopback address or a Unix socket.

use super::{
    insert_all, open_study, plan_search, Attributes, IndexBackend, Inserted, InstanceRow, Matcher,
    Param, Query, Rewrap, RowTx, Scope, SearchRow, SeriesRow, StudyRow, Table, TenantRow,
};
use crate::driver::Driver;
use crate::VaultError;
use futures::{pin_mut, TryStreamExt};
use std::collections::HashSet;
use std::path::PathBuf;
use tokio_postgres::config::Host;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, IsolationLevel, Row};

/// A PostgreSQL database for the index.
#[derive(Clone)]
pub struct Database {
    /// `postgres://user@host:port/database[?options]`, without a password.
    pub url: String,
    /// The password, if the server asks for one (from a file or the
    /// environment, never the URL or argv).
    pub password: Option<String>,
    /// The CA certificate(s) (PEM) that sign the server's certificate:
    /// required for a server on another host (TLS), unused on loopback.
    pub ca_file: Option<PathBuf>,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("password", &self.password.as_ref().map(|_| "…"))
            .field("ca_file", &self.ca_file)
            .finish_non_exhaustive()
    }
}

impl From<tokio_postgres::Error> for VaultError {
    /// The SQLSTATE and message only: a server's DETAIL may quote values.
    fn from(e: tokio_postgres::Error) -> Self {
        VaultError::Database(match e.as_db_error() {
            Some(db) => format!("{} ({})", db.message(), db.code().code()),
            None => e.to_string(),
        })
    }
}

const SCHEMA: &str = "
SET LOCAL client_min_messages = warning;
SELECT pg_advisory_xact_lock(7017377963151390060);
CREATE SCHEMA IF NOT EXISTS obscura_vault;
SET search_path TO obscura_vault;
CREATE TABLE IF NOT EXISTS meta(
  key TEXT PRIMARY KEY,
  value BYTEA NOT NULL
);
CREATE TABLE IF NOT EXISTS tenants(
  pk BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  name TEXT NOT NULL UNIQUE,
  wrapped_key BYTEA NOT NULL,
  created BIGINT NOT NULL,
  gen BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS studies(
  pk BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  tenant BIGINT NOT NULL REFERENCES tenants(pk),
  uid_h BYTEA NOT NULL,
  patient_id_h BYTEA,
  accession_h BYTEA,
  study_id_h BYTEA,
  record BYTEA NOT NULL,
  gen BIGINT NOT NULL DEFAULT 0,
  UNIQUE(tenant, uid_h)
);
CREATE INDEX IF NOT EXISTS studies_patient ON studies(tenant, patient_id_h);
CREATE INDEX IF NOT EXISTS studies_accession ON studies(tenant, accession_h);
CREATE INDEX IF NOT EXISTS studies_study_id ON studies(tenant, study_id_h);
CREATE INDEX IF NOT EXISTS studies_gen ON studies(tenant, gen);
CREATE TABLE IF NOT EXISTS series(
  pk BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  tenant BIGINT NOT NULL REFERENCES tenants(pk),
  study BIGINT NOT NULL REFERENCES studies(pk),
  uid_h BYTEA NOT NULL,
  modality_h BYTEA,
  record BYTEA NOT NULL,
  UNIQUE(tenant, uid_h)
);
CREATE INDEX IF NOT EXISTS series_study ON series(study, modality_h);
CREATE INDEX IF NOT EXISTS series_modality ON series(tenant, modality_h);
CREATE TABLE IF NOT EXISTS instances(
  pk BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  tenant BIGINT NOT NULL REFERENCES tenants(pk),
  series BIGINT NOT NULL REFERENCES series(pk),
  uid_h BYTEA NOT NULL,
  sop_class_h BYTEA,
  object TEXT NOT NULL,
  bytes BIGINT NOT NULL,
  record BYTEA NOT NULL,
  UNIQUE(tenant, uid_h)
);
CREATE INDEX IF NOT EXISTS instances_series ON instances(series);
CREATE INDEX IF NOT EXISTS instances_class ON instances(tenant, sop_class_h);
";

/// One connection to the index database (reconnected if it was lost).
pub(crate) struct PgIndex {
    db: Database,
    client: Client,
    driver: Driver,
}

impl PgIndex {
    /// Connect; with `migrate`, create the schema and tables if missing.
    pub(crate) fn connect(db: &Database, migrate: bool) -> Result<PgIndex, VaultError> {
        let driver = Driver::get()?;
        let client = connect(db, driver)?;
        let mut index = PgIndex {
            db: db.clone(),
            client,
            driver,
        };
        if migrate {
            index.in_tx(|c, d| Ok(d.block_on(c.batch_execute(SCHEMA))?))?;
        } else {
            index.batch("SET search_path TO obscura_vault")?;
        }
        Ok(index)
    }

    /// The client, connected again first if the connection was lost.
    fn client(&mut self) -> Result<&mut Client, VaultError> {
        if self.client.is_closed() {
            self.client = connect(&self.db, self.driver)?;
            self.driver.block_on(
                self.client
                    .batch_execute("SET search_path TO obscura_vault"),
            )?;
        }
        Ok(&mut self.client)
    }

    /// Run a query; its rows.
    fn query(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>, VaultError> {
        let driver = self.driver;
        Ok(driver.block_on(self.client()?.query(sql, params))?)
    }

    /// Run a query; its row, if any.
    fn query_opt(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, VaultError> {
        let driver = self.driver;
        Ok(driver.block_on(self.client()?.query_opt(sql, params))?)
    }

    /// Run a statement; how many rows it changed.
    fn execute(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64, VaultError> {
        let driver = self.driver;
        Ok(driver.block_on(self.client()?.execute(sql, params))?)
    }

    /// Run statements without parameters.
    fn batch(&mut self, sql: &str) -> Result<(), VaultError> {
        let driver = self.driver;
        Ok(driver.block_on(self.client()?.batch_execute(sql))?)
    }

    /// Run `f` in a transaction (read committed), committed if it succeeds.
    fn in_tx<T>(
        &mut self,
        f: impl FnOnce(&tokio_postgres::Transaction<'_>, Driver) -> Result<T, VaultError>,
    ) -> Result<T, VaultError> {
        let driver = self.driver;
        let tx = driver.block_on(self.client()?.transaction())?;
        let out = f(&tx, driver)?;
        driver.block_on(tx.commit())?;
        Ok(out)
    }

    /// Rewrite the tenants table, so deleted or replaced wrapped keys are
    /// not left in its pages (they may remain in the WAL and in backups).
    fn compact_tenants(&mut self) -> Result<(), VaultError> {
        self.batch("VACUUM FULL tenants")
    }
}

/// Open a connection and spawn its task on the driver.
pub(crate) fn connect(db: &Database, driver: Driver) -> Result<Client, VaultError> {
    let bad = |m: &str| VaultError::DatabaseConfig(m.to_string());
    // The parser's error may quote the URL: say only what is wrong.
    let mut config: tokio_postgres::Config = db
        .url
        .parse()
        .map_err(|_| bad("database_url is not a postgres:// URL"))?;
    if config.get_password().is_some() {
        return Err(bad(
            "database_url holds a password: give it in a file (database_password_file) or PGPASSWORD",
        ));
    }
    if let Some(p) = &db.password {
        config.password(p.as_str());
    }
    config.application_name("obscura");
    let local = config.get_hosts().iter().all(|h| match h {
        Host::Unix(_) => true,
        Host::Tcp(name) => {
            name == "localhost"
                || name
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|a| a.is_loopback())
        }
    });
    let client = match (&db.ca_file, local) {
        (Some(ca), _) => {
            config.ssl_mode(tokio_postgres::config::SslMode::Require);
            let tls = tokio_postgres_rustls::MakeRustlsConnect::new(tls_config(ca)?);
            let (client, conn) = driver.block_on(config.connect(tls))?;
            driver.spawn(async move {
                let _ = conn.await;
            });
            client
        }
        (None, true) => {
            config.ssl_mode(tokio_postgres::config::SslMode::Disable);
            let (client, conn) = driver.block_on(config.connect(tokio_postgres::NoTls))?;
            driver.spawn(async move {
                let _ = conn.await;
            });
            client
        }
        (None, false) => {
            return Err(bad(
                "a database on another host is reached over TLS: set database_ca_file",
            ))
        }
    };
    Ok(client)
}

/// A rustls client configuration that trusts the CA certificates in `ca`.
fn tls_config(ca: &std::path::Path) -> Result<rustls::ClientConfig, VaultError> {
    use rustls_pki_types::pem::PemObject;
    let bad = |m: String| VaultError::DatabaseConfig(m);
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pki_types::CertificateDer::pem_file_iter(ca)
        .map_err(|e| bad(format!("database_ca_file {}: {e}", ca.display())))?
    {
        let cert = cert.map_err(|e| bad(format!("database_ca_file {}: {e}", ca.display())))?;
        roots
            .add(cert)
            .map_err(|e| bad(format!("database_ca_file {}: {e}", ca.display())))?;
    }
    if roots.is_empty() {
        return Err(bad(format!(
            "database_ca_file {}: no certificate",
            ca.display()
        )));
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

impl IndexBackend for PgIndex {
    fn init_meta(&mut self, key: &str, value: &[u8]) -> Result<Vec<u8>, VaultError> {
        self.execute(
            "INSERT INTO meta(key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
            &[&key, &value],
        )?;
        let row = self.query_opt("SELECT value FROM meta WHERE key = $1", &[&key])?;
        Ok(row.map(|r| r.try_get(0)).transpose()?.unwrap_or_default())
    }

    fn insert_tenant(
        &mut self,
        id: &str,
        name: &str,
        wrapped: &[u8],
        created: i64,
    ) -> Result<bool, VaultError> {
        let n = self.execute(
            "INSERT INTO tenants(id, name, wrapped_key, created) VALUES ($1, $2, $3, $4)
                 ON CONFLICT DO NOTHING",
            &[&id, &name, &wrapped, &created],
        )?;
        Ok(n == 1)
    }

    fn tenants(&mut self) -> Result<Vec<TenantRow>, VaultError> {
        let rows = self.query(
            "SELECT id, name, created FROM tenants ORDER BY created, pk",
            &[],
        )?;
        Ok(rows
            .iter()
            .map(|r| {
                Ok(TenantRow {
                    id: r.try_get(0)?,
                    name: r.try_get(1)?,
                    created: r.try_get(2)?,
                })
            })
            .collect::<Result<_, tokio_postgres::Error>>()?)
    }

    fn wrapped_key(&mut self, tenant: &str) -> Result<Option<(i64, Vec<u8>)>, VaultError> {
        let row = self.query_opt(
            "SELECT pk, wrapped_key FROM tenants WHERE id = $1",
            &[&tenant],
        )?;
        Ok(row
            .map(|r| Ok::<_, tokio_postgres::Error>((r.try_get(0)?, r.try_get(1)?)))
            .transpose()?)
    }

    fn delete_tenant(&mut self, tenant: &str) -> Result<bool, VaultError> {
        let deleted = self.in_tx(|tx, d| {
            let Some(row) = d.block_on(tx.query_opt(
                "SELECT pk FROM tenants WHERE id = $1 FOR UPDATE",
                &[&tenant],
            ))?
            else {
                return Ok(false);
            };
            let pk: i64 = row.try_get(0)?;
            for table in ["instances", "series", "studies"] {
                d.block_on(tx.execute(&format!("DELETE FROM {table} WHERE tenant = $1"), &[&pk]))?;
            }
            d.block_on(tx.execute("DELETE FROM tenants WHERE pk = $1", &[&pk]))?;
            Ok(true)
        })?;
        if deleted {
            self.compact_tenants()?;
        }
        Ok(deleted)
    }

    fn instance_object(
        &mut self,
        t: &Scope,
        uid_h: &[u8],
    ) -> Result<Option<(String, u64)>, VaultError> {
        let row = self.query_opt(
            "SELECT object, bytes FROM instances WHERE tenant = $1 AND uid_h = $2",
            &[&t.pk, &uid_h],
        )?;
        Ok(row
            .map(|r| {
                Ok::<_, tokio_postgres::Error>((r.try_get(0)?, r.try_get::<_, i64>(1)? as u64))
            })
            .transpose()?)
    }

    fn insert_instances(
        &mut self,
        t: &Scope,
        items: &[(&Attributes, &str, u64)],
    ) -> Result<Vec<Inserted>, VaultError> {
        self.in_tx(|tx, d| {
            // The tenant's row lock serializes its writers across processes.
            let gen: i64 = d
                .block_on(
                    tx.query_one("SELECT gen FROM tenants WHERE pk = $1 FOR UPDATE", &[&t.pk]),
                )?
                .try_get(0)?;
            let next = gen + 1;
            let (out, studies_changed) = insert_all(&mut PgTx { tx, d }, t, items, next)?;
            if studies_changed {
                d.block_on(
                    tx.execute("UPDATE tenants SET gen = $1 WHERE pk = $2", &[&next, &t.pk]),
                )?;
            }
            Ok(out)
        })
    }

    fn search(
        &mut self,
        t: &Scope,
        query: &Query,
        matchers: Vec<Matcher>,
    ) -> Result<Vec<Attributes>, VaultError> {
        let (sql, params, mut found) = plan_search(t, query, matchers, |n| format!("${n}"));
        let values: Vec<Box<dyn ToSql + Sync + Send>> = params
            .into_iter()
            .map(|p| -> Box<dyn ToSql + Sync + Send> {
                match p {
                    Param::Int(i) => Box::new(i),
                    Param::Blob(b) => Box::new(b),
                    Param::Limit(l) => Box::new(l),
                }
            })
            .collect();
        let level = found.level();
        let driver = self.driver;
        let client = self.client()?;
        driver.block_on(async {
            let rows = client
                .query_raw(
                    &sql,
                    values.iter().map(|v| v.as_ref() as &(dyn ToSql + Sync)),
                )
                .await?;
            pin_mut!(rows);
            // Rows stream in: a scan of a large tenant is never held whole.
            while let Some(row) = rows.try_next().await? {
                if found.full() {
                    break;
                }
                let row = SearchRow::read(level, |i| row.try_get(i), |i| row.try_get(i))?;
                found.push(t, row)?;
            }
            Ok::<_, VaultError>(())
        })?;
        Ok(found.finish())
    }

    fn rewrap_tenant_keys(
        &mut self,
        rewrap: &Rewrap<'_>,
        check: &[u8],
    ) -> Result<usize, VaultError> {
        let n = self.in_tx(|tx, d| {
            // No tenant is added under the old key while this runs.
            d.block_on(tx.batch_execute("LOCK TABLE tenants IN EXCLUSIVE MODE"))?;
            let rows = d.block_on(tx.query("SELECT pk, id, wrapped_key FROM tenants", &[]))?;
            for row in &rows {
                let (pk, id, wrapped): (i64, String, Vec<u8>) =
                    (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
                let new = rewrap(&id, &wrapped)?;
                d.block_on(tx.execute(
                    "UPDATE tenants SET wrapped_key = $1 WHERE pk = $2",
                    &[&new, &pk],
                ))?;
            }
            d.block_on(tx.execute(
                "INSERT INTO meta(key, value) VALUES ($1, $2)
                 ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                &[&crate::MASTER_CHECK, &check],
            ))?;
            Ok(rows.len())
        })?;
        self.compact_tenants()?;
        Ok(n)
    }

    fn tenant_ids(&mut self) -> Result<HashSet<String>, VaultError> {
        let rows = self.query("SELECT id FROM tenants", &[])?;
        Ok(rows
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()?)
    }

    fn object_names(&mut self, tenant: &str) -> Result<HashSet<String>, VaultError> {
        let rows = self.query(
            "SELECT i.object FROM instances i JOIN tenants t ON t.pk = i.tenant WHERE t.id = $1",
            &[&tenant],
        )?;
        Ok(rows
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()?)
    }

    fn studies_since(
        &mut self,
        t: &Scope,
        since: Option<i64>,
    ) -> Result<(i64, Vec<(i64, Attributes)>), VaultError> {
        let driver = self.driver;
        let client = self.client()?;
        let tx = driver.block_on(
            client
                .build_transaction()
                .isolation_level(IsolationLevel::RepeatableRead)
                .read_only(true)
                .start(),
        )?;
        let gen: i64 = driver
            .block_on(tx.query_one("SELECT gen FROM tenants WHERE pk = $1", &[&t.pk]))?
            .try_get(0)?;
        let rows = driver.block_on(tx.query(
            "SELECT pk, uid_h, record FROM studies WHERE tenant = $1 AND gen > $2 ORDER BY pk",
            &[&t.pk, &since.unwrap_or(i64::MIN)],
        ))?;
        driver.block_on(tx.commit())?;
        let out = rows
            .iter()
            .map(|r| open_study(t, r.try_get(0)?, r.try_get(1)?, r.try_get(2)?))
            .collect::<Result<_, _>>()?;
        Ok((gen, out))
    }
}

/// The row operations inside a PostgreSQL write transaction.
struct PgTx<'a, 'c> {
    tx: &'a tokio_postgres::Transaction<'c>,
    d: Driver,
}

impl RowTx for PgTx<'_, '_> {
    fn pk_by_uid(
        &mut self,
        table: Table,
        tenant: i64,
        uid_h: &[u8],
    ) -> Result<Option<i64>, VaultError> {
        let sql = format!(
            "SELECT pk FROM {} WHERE tenant = $1 AND uid_h = $2",
            table.name()
        );
        let row = self
            .d
            .block_on(self.tx.query_opt(&sql, &[&tenant, &uid_h]))?;
        Ok(row.map(|r| r.try_get(0)).transpose()?)
    }

    fn insert_study(&mut self, r: StudyRow<'_>) -> Result<i64, VaultError> {
        let row = self.d.block_on(self.tx.query_one(
            "INSERT INTO studies(tenant, uid_h, patient_id_h, accession_h, study_id_h, record, gen)
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING pk",
            &[
                &r.tenant,
                &r.uid_h,
                &r.patient_id_h,
                &r.accession_h,
                &r.study_id_h,
                &r.record,
                &r.gen,
            ],
        ))?;
        Ok(row.try_get(0)?)
    }

    fn insert_series(&mut self, r: SeriesRow<'_>) -> Result<i64, VaultError> {
        let row = self.d.block_on(self.tx.query_one(
            "INSERT INTO series(tenant, study, uid_h, modality_h, record)
             VALUES ($1, $2, $3, $4, $5) RETURNING pk",
            &[&r.tenant, &r.study, &r.uid_h, &r.modality_h, &r.record],
        ))?;
        Ok(row.try_get(0)?)
    }

    fn study_record(&mut self, pk: i64) -> Result<Vec<u8>, VaultError> {
        let row = self.d.block_on(
            self.tx
                .query_one("SELECT record FROM studies WHERE pk = $1", &[&pk]),
        )?;
        Ok(row.try_get(0)?)
    }

    fn update_study(&mut self, pk: i64, record: &[u8], gen: i64) -> Result<(), VaultError> {
        self.d.block_on(self.tx.execute(
            "UPDATE studies SET record = $1, gen = $2 WHERE pk = $3",
            &[&record, &gen, &pk],
        ))?;
        Ok(())
    }

    fn insert_instance(&mut self, r: InstanceRow<'_>) -> Result<bool, VaultError> {
        let n = self.d.block_on(self.tx.execute(
            "INSERT INTO instances(tenant, series, uid_h, sop_class_h, object, bytes, record)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (tenant, uid_h) DO NOTHING",
            &[
                &r.tenant,
                &r.series,
                &r.uid_h,
                &r.sop_class_h,
                &r.object,
                &r.bytes,
                &r.record,
            ],
        ))?;
        Ok(n == 1)
    }
}
