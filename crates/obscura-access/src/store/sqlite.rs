//! The store's SQLite database: `access.sqlite` in the archive's data
//! folder (WAL, fsync on commit), shared by the processes of one host.

use super::{Db, SealKey, SqlStore, StoreError, Val};
use rusqlite::types::ValueRef;
use rusqlite::Connection;
use std::path::Path;
use std::sync::Mutex;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS grants (
    id TEXT PRIMARY KEY,
    principal TEXT NOT NULL,
    tenant TEXT NOT NULL,
    studies BLOB,            -- the sealed scope; NULL = the whole tenant
    actions TEXT NOT NULL,
    view TEXT NOT NULL,
    expires INTEGER,
    created INTEGER NOT NULL,
    revoked INTEGER
);
CREATE INDEX IF NOT EXISTS grants_principal ON grants (principal);
CREATE TABLE IF NOT EXISTS revoked_tokens (
    jti TEXT PRIMARY KEY,
    revoked INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS labels (
    tenant TEXT NOT NULL,
    name TEXT NOT NULL,
    studies BLOB NOT NULL,   -- sealed JSON list
    count INTEGER NOT NULL,
    PRIMARY KEY (tenant, name)
);
CREATE TABLE IF NOT EXISTS quota_usage (
    grant_id TEXT NOT NULL,
    day INTEGER NOT NULL,
    study BLOB NOT NULL,     -- keyed hash
    PRIMARY KEY (grant_id, day, study)
);
";

/// Columns added to `grants` after its first version.
const ADDED: [(&str, &str); 2] = [("quota", "INTEGER"), ("secret", "BLOB")];

/// One SQLite connection.
pub struct SqliteDb(Mutex<Connection>);

impl SqlStore<SqliteDb> {
    /// Open (creating) the store at `path`, sealing under `key`.
    pub fn open(path: &Path, key: SealKey) -> Result<SqlStore<SqliteDb>, StoreError> {
        let conn = Connection::open(path).map_err(db)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(db)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(db)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(db)?;
        conn.execute_batch(SCHEMA).map_err(db)?;
        let have: Vec<String> = conn
            .prepare("SELECT name FROM pragma_table_info('grants')")
            .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
            .map_err(db)?;
        for (col, ty) in ADDED {
            if !have.iter().any(|h| h == col) {
                conn.execute_batch(&format!("ALTER TABLE grants ADD COLUMN {col} {ty}"))
                    .map_err(db)?;
            }
        }
        Ok(SqlStore::over(SqliteDb(Mutex::new(conn)), key))
    }
}

fn db(e: rusqlite::Error) -> StoreError {
    StoreError::Db(e.to_string())
}

impl rusqlite::ToSql for Val {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        match self {
            Val::Int(v) => v.to_sql(),
            Val::Text(v) => v.to_sql(),
            Val::Blob(v) => v.to_sql(),
        }
    }
}

impl SqliteDb {
    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// `$n` parameters as SQLite's `?n`.
fn numbered(sql: &str) -> String {
    sql.replace('$', "?")
}

impl Db for SqliteDb {
    fn rows(&self, sql: &str, args: &[Val]) -> Result<Vec<Vec<Val>>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&numbered(sql)).map_err(db)?;
        let n = stmt.column_count();
        let rows = stmt
            .query_map(rusqlite::params_from_iter(args), |r| {
                (0..n)
                    .map(|i| {
                        Ok(match r.get_ref(i)? {
                            ValueRef::Null => Val::Int(None),
                            ValueRef::Integer(v) => Val::Int(Some(v)),
                            ValueRef::Real(v) => Val::Int(Some(v as i64)),
                            ValueRef::Text(t) => {
                                Val::Text(Some(String::from_utf8_lossy(t).into_owned()))
                            }
                            ValueRef::Blob(b) => Val::Blob(Some(b.to_vec())),
                        })
                    })
                    .collect::<rusqlite::Result<Vec<Val>>>()
            })
            .map_err(db)?;
        rows.collect::<rusqlite::Result<_>>().map_err(db)
    }

    fn exec(&self, sql: &str, args: &[Val]) -> Result<u64, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&numbered(sql)).map_err(db)?;
        Ok(stmt.execute(rusqlite::params_from_iter(args)).map_err(db)? as u64)
    }
}
