//! The SQLite index (WAL, synchronous=FULL, secure_delete) in the data
//! folder: the default, nothing to set up.

use super::{
    insert_all, open_study, plan_search, Attributes, IndexBackend, Inserted, InstanceRow, Matcher,
    Param, Query, Rewrap, RowTx, Scope, SearchRow, SeriesRow, StudyRow, Table, TenantRow,
};
use crate::VaultError;
use rusqlite::types::Value;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta(
  key TEXT PRIMARY KEY,
  value BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS tenants(
  pk INTEGER PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  name TEXT NOT NULL UNIQUE,
  wrapped_key BLOB NOT NULL,
  created INTEGER NOT NULL,
  gen INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS studies(
  pk INTEGER PRIMARY KEY,
  tenant INTEGER NOT NULL REFERENCES tenants(pk),
  uid_h BLOB NOT NULL,
  patient_id_h BLOB,
  accession_h BLOB,
  study_id_h BLOB,
  record BLOB NOT NULL,
  gen INTEGER NOT NULL DEFAULT 0,
  UNIQUE(tenant, uid_h)
);
CREATE INDEX IF NOT EXISTS studies_tenant ON studies(tenant);
CREATE INDEX IF NOT EXISTS studies_patient ON studies(tenant, patient_id_h);
CREATE INDEX IF NOT EXISTS studies_accession ON studies(tenant, accession_h);
CREATE INDEX IF NOT EXISTS studies_study_id ON studies(tenant, study_id_h);
CREATE TABLE IF NOT EXISTS series(
  pk INTEGER PRIMARY KEY,
  tenant INTEGER NOT NULL REFERENCES tenants(pk),
  study INTEGER NOT NULL REFERENCES studies(pk),
  uid_h BLOB NOT NULL,
  modality_h BLOB,
  record BLOB NOT NULL,
  UNIQUE(tenant, uid_h)
);
CREATE INDEX IF NOT EXISTS series_study ON series(study, modality_h);
CREATE INDEX IF NOT EXISTS series_tenant ON series(tenant);
CREATE INDEX IF NOT EXISTS series_modality ON series(tenant, modality_h);
CREATE TABLE IF NOT EXISTS instances(
  pk INTEGER PRIMARY KEY,
  tenant INTEGER NOT NULL REFERENCES tenants(pk),
  series INTEGER NOT NULL REFERENCES series(pk),
  uid_h BLOB NOT NULL,
  sop_class_h BLOB,
  object TEXT NOT NULL,
  bytes INTEGER NOT NULL,
  record BLOB NOT NULL,
  UNIQUE(tenant, uid_h)
);
CREATE INDEX IF NOT EXISTS instances_series ON instances(series);
CREATE INDEX IF NOT EXISTS instances_tenant ON instances(tenant);
CREATE INDEX IF NOT EXISTS instances_class ON instances(tenant, sop_class_h);
";

/// The index database.
pub(crate) struct Index {
    conn: Connection,
}

impl Index {
    /// Open (creating) the index at `path`.
    pub(crate) fn open(path: &Path) -> Result<Index, VaultError> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(30))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "secure_delete", "ON")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.execute_batch(SCHEMA)?;
        // Vaults made before the study generation counters.
        for table in ["tenants", "studies"] {
            let has_gen: bool = conn.query_row(
                "SELECT count(*) FROM pragma_table_info(?1) WHERE name = 'gen'",
                [table],
                |r| r.get::<_, i64>(0).map(|n| n > 0),
            )?;
            if !has_gen {
                conn.execute_batch(&format!(
                    "ALTER TABLE {table} ADD COLUMN gen INTEGER NOT NULL DEFAULT 0"
                ))?;
            }
        }
        conn.execute_batch("CREATE INDEX IF NOT EXISTS studies_gen ON studies(tenant, gen)")?;
        Ok(Index { conn })
    }

    /// Open another connection to the index at `path`, for reads beside the
    /// writer (WAL: readers do not wait for a writer's transaction).
    pub(crate) fn open_reader(path: &Path) -> Result<Index, VaultError> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(30))?;
        conn.pragma_update(None, "query_only", "ON")?;
        Ok(Index { conn })
    }

    /// Checkpoint the WAL, truncating it: what secure_delete zeroed in the
    /// database file is then all that is left.
    fn truncate_wal(&self) -> Result<(), VaultError> {
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(())
    }
}

/// `?n`.
fn ph(n: usize) -> String {
    format!("?{n}")
}

impl IndexBackend for Index {
    fn init_meta(&mut self, key: &str, value: &[u8]) -> Result<Vec<u8>, VaultError> {
        self.conn.execute(
            "INSERT OR IGNORE INTO meta(key, value) VALUES (?1, ?2)",
            params![key, value],
        )?;
        Ok(self
            .conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))?)
    }

    fn insert_tenant(
        &mut self,
        id: &str,
        name: &str,
        wrapped: &[u8],
        created: i64,
    ) -> Result<bool, VaultError> {
        let n = self.conn.execute(
            "INSERT OR IGNORE INTO tenants(id, name, wrapped_key, created) VALUES (?1, ?2, ?3, ?4)",
            params![id, name, wrapped, created],
        )?;
        Ok(n == 1)
    }

    fn tenants(&mut self) -> Result<Vec<TenantRow>, VaultError> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, name, created FROM tenants ORDER BY created, pk")?;
        let rows = stmt.query_map([], |r| {
            Ok(TenantRow {
                id: r.get(0)?,
                name: r.get(1)?,
                created: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn wrapped_key(&mut self, tenant: &str) -> Result<Option<(i64, Vec<u8>)>, VaultError> {
        Ok(self
            .conn
            .query_row(
                "SELECT pk, wrapped_key FROM tenants WHERE id = ?1",
                [tenant],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
    }

    fn delete_tenant(&mut self, tenant: &str) -> Result<bool, VaultError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let pk: Option<i64> = tx
            .query_row("SELECT pk FROM tenants WHERE id = ?1", [tenant], |r| {
                r.get(0)
            })
            .optional()?;
        let Some(pk) = pk else {
            return Ok(false);
        };
        tx.execute("DELETE FROM instances WHERE tenant = ?1", [pk])?;
        tx.execute("DELETE FROM series WHERE tenant = ?1", [pk])?;
        tx.execute("DELETE FROM studies WHERE tenant = ?1", [pk])?;
        tx.execute("DELETE FROM tenants WHERE pk = ?1", [pk])?;
        tx.commit()?;
        self.truncate_wal()?;
        Ok(true)
    }

    fn instance_object(
        &mut self,
        t: &Scope,
        uid_h: &[u8],
    ) -> Result<Option<(String, u64)>, VaultError> {
        // cached statements: every retrieval asks, parsing SQL each time showed
        Ok(self
            .conn
            .prepare_cached("SELECT object, bytes FROM instances WHERE tenant = ?1 AND uid_h = ?2")?
            .query_row(params![t.pk, uid_h], |r| {
                Ok((r.get(0)?, r.get::<_, i64>(1)? as u64))
            })
            .optional()?)
    }

    fn insert_instances(
        &mut self,
        t: &Scope,
        items: &[(&Attributes, &str, u64)],
    ) -> Result<Vec<Inserted>, VaultError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let gen: i64 = tx.query_row("SELECT gen FROM tenants WHERE pk = ?1", [t.pk], |r| {
            r.get(0)
        })?;
        let next = gen + 1;
        let (out, studies_changed) = insert_all(&mut SqliteTx(&tx), t, items, next)?;
        if studies_changed {
            tx.execute(
                "UPDATE tenants SET gen = ?1 WHERE pk = ?2",
                params![next, t.pk],
            )?;
        }
        tx.commit()?;
        Ok(out)
    }

    fn search(
        &mut self,
        t: &Scope,
        query: &Query,
        matchers: Vec<Matcher>,
    ) -> Result<Vec<Attributes>, VaultError> {
        let (sql, params, mut found) = plan_search(t, query, matchers, ph);
        let values = params.into_iter().map(|p| match p {
            Param::Int(i) => Value::Integer(i),
            Param::Blob(b) => Value::Blob(b),
            Param::Limit(l) => Value::Integer(l.unwrap_or(-1)),
        });
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let mut rows = stmt.query(rusqlite::params_from_iter(values))?;
        let level = found.level();
        while let Some(row) = rows.next()? {
            if found.full() {
                break;
            }
            let row = SearchRow::read(level, |i| row.get(i), |i| row.get(i))?;
            found.push(t, row)?;
        }
        Ok(found.finish())
    }

    fn rewrap_tenant_keys(
        &mut self,
        rewrap: &Rewrap<'_>,
        check: &[u8],
    ) -> Result<usize, VaultError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let tenants: Vec<(i64, String, Vec<u8>)> = {
            let mut stmt = tx.prepare("SELECT pk, id, wrapped_key FROM tenants")?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            rows.collect::<Result<_, _>>()?
        };
        for (pk, id, wrapped) in &tenants {
            tx.execute(
                "UPDATE tenants SET wrapped_key = ?1 WHERE pk = ?2",
                params![rewrap(id, wrapped)?, pk],
            )?;
        }
        tx.execute(
            "INSERT OR REPLACE INTO meta(key, value) VALUES (?1, ?2)",
            params![crate::MASTER_CHECK, check],
        )?;
        tx.commit()?;
        self.truncate_wal()?;
        Ok(tenants.len())
    }

    fn tenant_ids(&mut self) -> Result<HashSet<String>, VaultError> {
        let mut stmt = self.conn.prepare("SELECT id FROM tenants")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn object_names(&mut self, tenant: &str) -> Result<HashSet<String>, VaultError> {
        let mut stmt = self.conn.prepare(
            "SELECT i.object FROM instances i JOIN tenants t ON t.pk = i.tenant WHERE t.id = ?1",
        )?;
        let rows = stmt.query_map([tenant], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn studies_since(
        &mut self,
        t: &Scope,
        since: Option<i64>,
    ) -> Result<(i64, Vec<(i64, Attributes)>), VaultError> {
        let tx = self.conn.unchecked_transaction()?;
        let gen: i64 = tx.query_row("SELECT gen FROM tenants WHERE pk = ?1", [t.pk], |r| {
            r.get(0)
        })?;
        let mut stmt = tx.prepare(
            "SELECT pk, uid_h, record FROM studies WHERE tenant = ?1 AND gen > ?2 ORDER BY pk",
        )?;
        let mut rows = stmt.query(params![t.pk, since.unwrap_or(i64::MIN)])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let uid_h: Vec<u8> = row.get(1)?;
            let rec: Vec<u8> = row.get(2)?;
            out.push(open_study(t, row.get(0)?, &uid_h, &rec)?);
        }
        drop(rows);
        drop(stmt);
        tx.commit()?;
        Ok((gen, out))
    }
}

/// The row operations inside a SQLite write transaction.
struct SqliteTx<'a>(&'a rusqlite::Transaction<'a>);

impl RowTx for SqliteTx<'_> {
    fn pk_by_uid(
        &mut self,
        table: Table,
        tenant: i64,
        uid_h: &[u8],
    ) -> Result<Option<i64>, VaultError> {
        Ok(self
            .0
            .query_row(
                &format!(
                    "SELECT pk FROM {} WHERE tenant = ?1 AND uid_h = ?2",
                    table.name()
                ),
                params![tenant, uid_h],
                |r| r.get(0),
            )
            .optional()?)
    }

    fn insert_study(&mut self, r: StudyRow<'_>) -> Result<i64, VaultError> {
        self.0.execute(
            "INSERT INTO studies(tenant, uid_h, patient_id_h, accession_h, study_id_h, record, gen)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                r.tenant,
                r.uid_h,
                r.patient_id_h,
                r.accession_h,
                r.study_id_h,
                r.record,
                r.gen
            ],
        )?;
        Ok(self.0.last_insert_rowid())
    }

    fn insert_series(&mut self, r: SeriesRow<'_>) -> Result<i64, VaultError> {
        self.0.execute(
            "INSERT INTO series(tenant, study, uid_h, modality_h, record)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![r.tenant, r.study, r.uid_h, r.modality_h, r.record],
        )?;
        Ok(self.0.last_insert_rowid())
    }

    fn study_record(&mut self, pk: i64) -> Result<Vec<u8>, VaultError> {
        Ok(self
            .0
            .query_row("SELECT record FROM studies WHERE pk = ?1", [pk], |r| {
                r.get(0)
            })?)
    }

    fn update_study(&mut self, pk: i64, record: &[u8], gen: i64) -> Result<(), VaultError> {
        self.0.execute(
            "UPDATE studies SET record = ?1, gen = ?2 WHERE pk = ?3",
            params![record, gen, pk],
        )?;
        Ok(())
    }

    fn insert_instance(&mut self, r: InstanceRow<'_>) -> Result<bool, VaultError> {
        let n = self.0.execute(
            "INSERT INTO instances(tenant, series, uid_h, sop_class_h, object, bytes, record)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT(tenant, uid_h) DO NOTHING",
            params![
                r.tenant,
                r.series,
                r.uid_h,
                r.sop_class_h,
                r.object,
                r.bytes,
                r.record
            ],
        )?;
        Ok(n == 1)
    }
}
