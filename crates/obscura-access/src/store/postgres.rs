//! The store in the archive's PostgreSQL database (schema
//! `obscura_access`), for `obscura serve` processes on several hosts
//! sharing the index: the connection settings and runtime are the vault's
//! ([`obscura_vault::pg::PgSession`]), not a copy.

use super::{Db, SealKey, SqlStore, StoreError, Val};
use obscura_vault::pg::{PgSession, ToSql, Type};
use obscura_vault::Database;

const SCHEMA: &str = "
SET LOCAL client_min_messages = warning;
SELECT pg_advisory_xact_lock(7017377963151390061);
CREATE SCHEMA IF NOT EXISTS obscura_access;
SET LOCAL search_path TO obscura_access;
CREATE TABLE IF NOT EXISTS grants (
    id TEXT PRIMARY KEY,
    principal TEXT NOT NULL,
    tenant TEXT NOT NULL,
    studies BYTEA,
    actions TEXT NOT NULL,
    view TEXT NOT NULL,
    expires BIGINT,
    created BIGINT NOT NULL,
    revoked BIGINT,
    quota BIGINT,
    secret BYTEA
);
CREATE INDEX IF NOT EXISTS grants_principal ON grants (principal);
CREATE TABLE IF NOT EXISTS revoked_tokens (
    jti TEXT PRIMARY KEY,
    revoked BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS labels (
    tenant TEXT NOT NULL,
    name TEXT NOT NULL,
    studies BYTEA NOT NULL,
    count BIGINT NOT NULL,
    PRIMARY KEY (tenant, name)
);
CREATE TABLE IF NOT EXISTS quota_usage (
    grant_id TEXT NOT NULL,
    day BIGINT NOT NULL,
    study BYTEA NOT NULL,
    PRIMARY KEY (grant_id, day, study)
)
";

/// The archive's PostgreSQL database.
pub struct PgDb(PgSession);

impl SqlStore<PgDb> {
    /// Connect to the archive's database (creating the schema and tables
    /// if missing), sealing under `key`.
    pub fn connect(db: &Database, key: SealKey) -> Result<SqlStore<PgDb>, StoreError> {
        let session = PgSession::open(db, "obscura_access", SCHEMA).map_err(err)?;
        Ok(SqlStore::over(PgDb(session), key))
    }
}

fn err(e: obscura_vault::VaultError) -> StoreError {
    StoreError::Db(e.to_string())
}

fn params(args: &[Val]) -> Vec<&(dyn ToSql + Sync)> {
    args.iter()
        .map(|a| match a {
            Val::Int(v) => v as &(dyn ToSql + Sync),
            Val::Text(v) => v as &(dyn ToSql + Sync),
            Val::Blob(v) => v as &(dyn ToSql + Sync),
        })
        .collect()
}

impl Db for PgDb {
    fn rows(&self, sql: &str, args: &[Val]) -> Result<Vec<Vec<Val>>, StoreError> {
        let rows = self.0.query(sql, &params(args)).map_err(err)?;
        let bad = |e: obscura_vault::pg::Error| StoreError::Db(e.to_string());
        rows.iter()
            .map(|r| {
                (0..r.len())
                    .map(|i| {
                        let ty = r.columns()[i].type_();
                        Ok(if *ty == Type::BYTEA {
                            Val::Blob(r.try_get(i).map_err(bad)?)
                        } else if *ty == Type::INT8 {
                            Val::Int(r.try_get(i).map_err(bad)?)
                        } else if *ty == Type::INT4 {
                            Val::Int(r.try_get::<_, Option<i32>>(i).map_err(bad)?.map(i64::from))
                        } else {
                            Val::Text(r.try_get(i).map_err(bad)?)
                        })
                    })
                    .collect()
            })
            .collect()
    }

    fn exec(&self, sql: &str, args: &[Val]) -> Result<u64, StoreError> {
        self.0.execute(sql, &params(args)).map_err(err)
    }
}
