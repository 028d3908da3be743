//! Where grants and revoked tokens live: [`GrantStore`], what the decision
//! asks of a database, and its SQLite implementation (`access.sqlite` in
//! the archive's data folder; WAL, so every `obscura serve` and `obscura
//! grant` on the host share it, and a revocation holds from the next
//! request on). A PostgreSQL implementation can follow behind the same trait.
//!
//! Study UIDs are identifying: a grant's study list is sealed
//! (AES-256-GCM, ring; the grant's id as associated data) under a key
//! derived from the archive's master key, never stored in clear.
//! Principals, tenant ids, actions and times are in clear.

use crate::grant::{Actions, Grant, NewGrant, Scope, View};
use hmac::{Hmac, Mac};
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use rusqlite::{params, Connection, OptionalExtension};
use std::path::Path;
use std::sync::Mutex;

/// A store failure (names the operation, never a study).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed.
    #[error("grant store: {0}")]
    Db(#[from] rusqlite::Error),
    /// A sealed study list did not open (wrong key, or altered).
    #[error("grant store: grant {0} does not open with this archive's key")]
    Sealed(String),
    /// A row this version cannot read.
    #[error("grant store: grant {0}: {1}")]
    Corrupt(String, String),
    /// Randomness was unavailable.
    #[error("grant store: no randomness: {0}")]
    Random(String),
}

/// What the decision asks of the database.
pub trait GrantStore: Send + Sync {
    /// Store a new grant; returns it with its id.
    fn add(&self, grant: NewGrant, now: i64) -> Result<Grant, StoreError>;
    /// Every grant (revoked and expired included), or those of one principal.
    fn list(&self, principal: Option<&str>) -> Result<Vec<Grant>, StoreError>;
    /// One grant by id.
    fn get(&self, id: &str) -> Result<Option<Grant>, StoreError>;
    /// Revoke a grant; false if there is none of that id or it was already revoked.
    fn revoke(&self, id: &str, now: i64) -> Result<bool, StoreError>;
    /// Revoke a token by its `jti`; false if it already was.
    fn revoke_token(&self, jti: &str, now: i64) -> Result<bool, StoreError>;
    /// Whether a token's `jti` was revoked.
    fn token_revoked(&self, jti: &str) -> Result<bool, StoreError>;
    /// The grants of `principal` that hold at `now`.
    fn live(&self, principal: &str, now: i64) -> Result<Vec<Grant>, StoreError>;
}

/// The key that seals grants' study lists.
pub struct SealKey(LessSafeKey);

impl SealKey {
    /// Derive it from the archive's master key (HMAC-SHA256, its own label,
    /// so it is none of the vault's keys).
    pub fn derive(master: &[u8; 32]) -> SealKey {
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(master).expect("any key length");
        mac.update(b"obscura-access/grant-studies/v1");
        let key = mac.finalize().into_bytes();
        SealKey(LessSafeKey::new(
            UnboundKey::new(&AES_256_GCM, &key).expect("32 bytes"),
        ))
    }

    fn seal(&self, id: &str, plain: &[u8]) -> Result<Vec<u8>, StoreError> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::getrandom(&mut nonce).map_err(|e| StoreError::Random(e.to_string()))?;
        let mut buf = plain.to_vec();
        self.0
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(id.as_bytes()),
                &mut buf,
            )
            .map_err(|_| StoreError::Sealed(id.to_string()))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buf);
        Ok(out)
    }

    fn open(&self, id: &str, sealed: &[u8]) -> Result<Vec<u8>, StoreError> {
        let bad = || StoreError::Sealed(id.to_string());
        if sealed.len() < NONCE_LEN {
            return Err(bad());
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| bad())?;
        let mut buf = body.to_vec();
        let plain = self
            .0
            .open_in_place(nonce, Aad::from(id.as_bytes()), &mut buf)
            .map_err(|_| bad())?;
        Ok(plain.to_vec())
    }
}

/// Grants in SQLite.
pub struct SqliteStore {
    conn: Mutex<Connection>,
    key: SealKey,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS grants (
    id TEXT PRIMARY KEY,
    principal TEXT NOT NULL,
    tenant TEXT NOT NULL,
    studies BLOB,            -- sealed JSON list; NULL = the whole tenant
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
";

impl SqliteStore {
    /// Open (creating) the store at `path`, its study lists sealed under `key`.
    pub fn open(path: &Path, key: SealKey) -> Result<SqliteStore, StoreError> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.execute_batch(SCHEMA)?;
        Ok(SqliteStore {
            conn: Mutex::new(conn),
            key,
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn select(
        &self,
        filter: &str,
        args: &[&dyn rusqlite::ToSql],
    ) -> Result<Vec<Grant>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT id, principal, tenant, studies, actions, view, expires, created, revoked \
             FROM grants {filter} ORDER BY created, id"
        ))?;
        let rows = stmt.query_map(args, |r| {
            Ok(Row {
                id: r.get(0)?,
                principal: r.get(1)?,
                tenant: r.get(2)?,
                studies: r.get(3)?,
                actions: r.get(4)?,
                view: r.get(5)?,
                expires: r.get(6)?,
                created: r.get(7)?,
                revoked: r.get(8)?,
            })
        })?;
        let mut out = Vec::new();
        for row in rows {
            out.push(self.grant(row?)?);
        }
        Ok(out)
    }

    fn grant(&self, r: Row) -> Result<Grant, StoreError> {
        let corrupt = |m: &str| StoreError::Corrupt(r.id.clone(), m.to_string());
        let scope = match &r.studies {
            None => Scope::Tenant,
            Some(sealed) => {
                let plain = self.key.open(&r.id, sealed)?;
                let list: Vec<String> =
                    serde_json::from_slice(&plain).map_err(|_| corrupt("study list"))?;
                Scope::studies(list).map_err(|_| corrupt("study list"))?
            }
        };
        Ok(Grant {
            grant: NewGrant {
                principal: r.principal,
                tenant: r.tenant,
                scope,
                actions: Actions::parse([r.actions.as_str()]).map_err(|_| corrupt("actions"))?,
                view: View::parse(&r.view).map_err(|_| corrupt("view"))?,
                expires: r.expires,
            },
            id: r.id,
            created: r.created,
            revoked: r.revoked,
        })
    }
}

struct Row {
    id: String,
    principal: String,
    tenant: String,
    studies: Option<Vec<u8>>,
    actions: String,
    view: String,
    expires: Option<i64>,
    created: i64,
    revoked: Option<i64>,
}

impl GrantStore for SqliteStore {
    fn add(&self, grant: NewGrant, now: i64) -> Result<Grant, StoreError> {
        let mut raw = [0u8; 8];
        getrandom::getrandom(&mut raw).map_err(|e| StoreError::Random(e.to_string()))?;
        let id = format!("g-{}", crate::hex(&raw));
        let studies = match &grant.scope {
            Scope::Tenant => None,
            Scope::Studies(s) => Some(
                self.key
                    .seal(&id, &serde_json::to_vec(s).expect("a list of strings"))?,
            ),
        };
        self.conn().execute(
            "INSERT INTO grants (id, principal, tenant, studies, actions, view, expires, created) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                id,
                grant.principal,
                grant.tenant,
                studies,
                grant.actions.to_string(),
                grant.view.spec(),
                grant.expires,
                now
            ],
        )?;
        Ok(Grant {
            id,
            grant,
            created: now,
            revoked: None,
        })
    }

    fn list(&self, principal: Option<&str>) -> Result<Vec<Grant>, StoreError> {
        match principal {
            Some(p) => self.select("WHERE principal = ?1", &[&p]),
            None => self.select("", &[]),
        }
    }

    fn get(&self, id: &str) -> Result<Option<Grant>, StoreError> {
        Ok(self.select("WHERE id = ?1", &[&id])?.into_iter().next())
    }

    fn revoke(&self, id: &str, now: i64) -> Result<bool, StoreError> {
        let n = self.conn().execute(
            "UPDATE grants SET revoked = ?2 WHERE id = ?1 AND revoked IS NULL",
            params![id, now],
        )?;
        Ok(n == 1)
    }

    fn revoke_token(&self, jti: &str, now: i64) -> Result<bool, StoreError> {
        let n = self.conn().execute(
            "INSERT OR IGNORE INTO revoked_tokens (jti, revoked) VALUES (?1, ?2)",
            params![jti, now],
        )?;
        Ok(n == 1)
    }

    fn token_revoked(&self, jti: &str) -> Result<bool, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached("SELECT 1 FROM revoked_tokens WHERE jti = ?1")?;
        Ok(stmt.query_row([jti], |_| Ok(())).optional()?.is_some())
    }

    fn live(&self, principal: &str, now: i64) -> Result<Vec<Grant>, StoreError> {
        self.select(
            "WHERE principal = ?1 AND revoked IS NULL AND (expires IS NULL OR expires > ?2)",
            &[&principal, &now],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grant::Action;

    fn new(principal: &str, scope: Scope) -> NewGrant {
        NewGrant {
            principal: principal.into(),
            tenant: "t1".into(),
            scope,
            actions: Actions::default().with(Action::Read),
            view: View::Original,
            expires: Some(1000),
        }
    }

    #[test]
    fn grants_persist_sealed_and_revoke() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("access.sqlite");
        let s = SqliteStore::open(&path, SealKey::derive(&[1; 32])).unwrap();
        let g = s
            .add(new("kc:ai", Scope::studies(["1.2.840.99.1"]).unwrap()), 10)
            .unwrap();
        s.add(new("other", Scope::Tenant), 11).unwrap();
        assert_eq!(s.live("kc:ai", 500).unwrap(), vec![g.clone()]);
        assert!(s.live("kc:ai", 1000).unwrap().is_empty(), "expired");
        drop(s);
        let bytes = std::fs::read(&path).unwrap();
        let wal = std::fs::read(dir.path().join("access.sqlite-wal")).unwrap_or_default();
        for b in [&bytes, &wal] {
            assert!(
                !b.windows(12).any(|w| w == b"1.2.840.99.1"),
                "a study UID in clear"
            );
        }
        let s = SqliteStore::open(&path, SealKey::derive(&[1; 32])).unwrap();
        assert_eq!(s.get(&g.id).unwrap(), Some(g.clone()));
        assert_eq!(s.list(None).unwrap().len(), 2);
        assert!(s.revoke(&g.id, 20).unwrap());
        assert!(!s.revoke(&g.id, 21).unwrap());
        assert!(s.live("kc:ai", 30).unwrap().is_empty());
        assert!(!s.token_revoked("jti-1").unwrap());
        assert!(s.revoke_token("jti-1", 5).unwrap());
        assert!(s.token_revoked("jti-1").unwrap());
        drop(s);
        let wrong = SqliteStore::open(&path, SealKey::derive(&[2; 32])).unwrap();
        assert!(matches!(wrong.get(&g.id), Err(StoreError::Sealed(_))));
    }
}
