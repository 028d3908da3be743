//! Where grants, labels, share links' secrets, quota use and revoked
//! tokens live: [`GrantStore`], what the decision asks of a database, and
//! [`SqlStore`], its one implementation over two databases: SQLite
//! (`access.sqlite` in the archive's data folder; WAL, shared by every
//! `obscura serve` and `obscura grant` on the host) and, when the archive's
//! index is on PostgreSQL, that database (schema `obscura_access`), shared
//! by every `obscura serve` on every host. Nothing is cached: every request
//! asks, so a revocation holds from the next request on, everywhere.
//!
//! Study UIDs and query values are identifying: a grant's scope and a
//! label's studies are sealed (AES-256-GCM, ring; the grant's id or the
//! label's tenant and name as associated data) under a key derived from the
//! archive's master key, never stored in clear; quota use keeps a keyed
//! hash of the study. Principals, tenant ids, label names, actions and
//! times are in clear. A share link's secret is kept as its SHA-256 only.

mod postgres;
mod sqlite;

pub use postgres::PgDb;
pub use sqlite::SqliteDb;

use crate::grant::{Actions, Grant, NewGrant, Scope, StudyQuery, View};
use hmac::{Hmac, Mac};
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use std::collections::{BTreeMap, BTreeSet};

/// A store failure (names the operation, never a study).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed.
    #[error("grant store: {0}")]
    Db(String),
    /// A sealed value did not open (wrong key, or altered).
    #[error("grant store: {0} does not open with this archive's key")]
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
    /// Store a share link's grant, its principal `share:<id>`, with the
    /// SHA-256 of the link's secret.
    fn add_link(
        &self,
        grant: NewGrant,
        secret_sha256: [u8; 32],
        now: i64,
    ) -> Result<Grant, StoreError>;
    /// The SHA-256 of a share link's secret, by the link's grant id.
    fn link_secret(&self, id: &str) -> Result<Option<[u8; 32]>, StoreError>;
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
    /// The studies of a tenant's label (none if there is no such label).
    fn label(&self, tenant: &str, name: &str) -> Result<BTreeSet<String>, StoreError>;
    /// Set a label's studies (none removes it).
    fn set_label(
        &self,
        tenant: &str,
        name: &str,
        studies: &BTreeSet<String>,
    ) -> Result<(), StoreError>;
    /// A tenant's labels and how many studies each has.
    fn labels(&self, tenant: &str) -> Result<Vec<(String, usize)>, StoreError>;
    /// Count a read of `study` against grant `id`'s quota for the UTC day
    /// of `now`: true if the study was already read that day or there is
    /// room for it (then it is counted), false if the quota is used up.
    fn charge(&self, id: &str, study: &str, quota: u32, now: i64) -> Result<bool, StoreError>;
}

/// The keys of the store: one seals scopes and labels, one hashes the
/// studies counted against quotas.
pub struct SealKey {
    aead: LessSafeKey,
    mac: [u8; 32],
}

fn hmac(key: &[u8], label: &[u8]) -> [u8; 32] {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).expect("any key length");
    mac.update(label);
    mac.finalize().into_bytes().into()
}

impl SealKey {
    /// Derive them from the archive's master key (HMAC-SHA256, labels of
    /// their own, so they are none of the vault's keys).
    pub fn derive(master: &[u8; 32]) -> SealKey {
        let key = hmac(master, b"obscura-access/grant-studies/v1");
        SealKey {
            aead: LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &key).expect("32 bytes")),
            mac: hmac(master, b"obscura-access/quota-studies/v1"),
        }
    }

    fn seal(&self, aad: &str, plain: &[u8]) -> Result<Vec<u8>, StoreError> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::getrandom(&mut nonce).map_err(|e| StoreError::Random(e.to_string()))?;
        let mut buf = plain.to_vec();
        self.aead
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad.as_bytes()),
                &mut buf,
            )
            .map_err(|_| StoreError::Sealed(aad.to_string()))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buf);
        Ok(out)
    }

    fn open(&self, aad: &str, sealed: &[u8]) -> Result<Vec<u8>, StoreError> {
        let bad = || StoreError::Sealed(aad.to_string());
        if sealed.len() < NONCE_LEN {
            return Err(bad());
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| bad())?;
        let mut buf = body.to_vec();
        let plain = self
            .aead
            .open_in_place(nonce, Aad::from(aad.as_bytes()), &mut buf)
            .map_err(|_| bad())?;
        Ok(plain.to_vec())
    }

    /// The keyed hash of a study within a grant's quota.
    fn study_mac(&self, grant: &str, study: &str) -> Vec<u8> {
        let mut m = Hmac::<sha2::Sha256>::new_from_slice(&self.mac).expect("any key length");
        m.update(grant.as_bytes());
        m.update(&[0]);
        m.update(study.as_bytes());
        m.finalize().into_bytes().to_vec()
    }
}

/// A value bound to or read from a statement.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    /// An integer (BIGINT), or NULL.
    Int(Option<i64>),
    /// Text, or NULL.
    Text(Option<String>),
    /// Bytes (BLOB / BYTEA), or NULL.
    Blob(Option<Vec<u8>>),
}

impl Val {
    fn text(s: &str) -> Val {
        Val::Text(Some(s.to_string()))
    }
    fn int(&self) -> Option<i64> {
        match self {
            Val::Int(i) => *i,
            _ => None,
        }
    }
    fn into_text(self) -> Option<String> {
        match self {
            Val::Text(t) => t,
            _ => None,
        }
    }
    fn into_blob(self) -> Option<Vec<u8>> {
        match self {
            Val::Blob(b) => b,
            _ => None,
        }
    }
}

/// The few things the store asks of a database. Statements number their
/// parameters `$1`, `$2`...
pub trait Db: Send + Sync {
    /// Run a query; its rows.
    fn rows(&self, sql: &str, args: &[Val]) -> Result<Vec<Vec<Val>>, StoreError>;
    /// Run a statement; how many rows it changed.
    fn exec(&self, sql: &str, args: &[Val]) -> Result<u64, StoreError>;
}

/// The grant store over a database `D` ([`SqliteStore`] or [`PgStore`]).
pub struct SqlStore<D> {
    db: D,
    key: SealKey,
}

/// Grants in SQLite (`access.sqlite`).
pub type SqliteStore = SqlStore<SqliteDb>;
/// Grants in the archive's PostgreSQL database.
pub type PgStore = SqlStore<PgDb>;

const COLUMNS: &str =
    "id, principal, tenant, studies, actions, view, expires, created, revoked, quota";

impl<D: Db> SqlStore<D> {
    /// The store over `db` (its tables created), sealing under `key`.
    pub fn over(db: D, key: SealKey) -> SqlStore<D> {
        SqlStore { db, key }
    }

    fn select(&self, filter: &str, args: &[Val]) -> Result<Vec<Grant>, StoreError> {
        let rows = self.db.rows(
            &format!("SELECT {COLUMNS} FROM grants {filter} ORDER BY created, id"),
            args,
        )?;
        rows.into_iter().map(|r| self.grant(r)).collect()
    }

    fn grant(&self, row: Vec<Val>) -> Result<Grant, StoreError> {
        let [id, principal, tenant, studies, actions, view, expires, created, revoked, quota]: [Val;
            10] = row
            .try_into()
            .map_err(|_| StoreError::Db("a grant row of the wrong shape".into()))?;
        let id = id.into_text().unwrap_or_default();
        let corrupt = |m: &str| StoreError::Corrupt(id.clone(), m.to_string());
        let scope = match studies.into_blob() {
            None => Scope::Tenant,
            Some(sealed) => {
                let plain = self.key.open(&id, &sealed)?;
                decode_scope(&plain).ok_or_else(|| corrupt("scope"))?
            }
        };
        let actions = actions.into_text().unwrap_or_default();
        let view = view.into_text().unwrap_or_default();
        Ok(Grant {
            grant: NewGrant {
                principal: principal.into_text().ok_or_else(|| corrupt("principal"))?,
                tenant: tenant.into_text().ok_or_else(|| corrupt("tenant"))?,
                scope,
                actions: Actions::parse([actions.as_str()]).map_err(|_| corrupt("actions"))?,
                view: View::parse(&view).map_err(|_| corrupt("view"))?,
                expires: expires.int(),
                quota: quota
                    .int()
                    .map(u32::try_from)
                    .transpose()
                    .map_err(|_| corrupt("quota"))?,
            },
            created: created.int().unwrap_or_default(),
            revoked: revoked.int(),
            id,
        })
    }

    fn insert(
        &self,
        mut grant: NewGrant,
        secret: Option<[u8; 32]>,
        now: i64,
    ) -> Result<Grant, StoreError> {
        let mut raw = [0u8; 8];
        getrandom::getrandom(&mut raw).map_err(|e| StoreError::Random(e.to_string()))?;
        let id = format!("g-{}", crate::hex(&raw));
        if secret.is_some() {
            grant.principal = format!("share:{id}");
        }
        let studies = match encode_scope(&grant.scope) {
            None => None,
            Some(plain) => Some(self.key.seal(&id, &plain)?),
        };
        self.db.exec(
            "INSERT INTO grants (id, principal, tenant, studies, actions, view, expires, created, quota, secret) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            &[
                Val::text(&id),
                Val::text(&grant.principal),
                Val::text(&grant.tenant),
                Val::Blob(studies),
                Val::text(&grant.actions.to_string()),
                Val::text(&grant.view.spec()),
                Val::Int(grant.expires),
                Val::Int(Some(now)),
                Val::Int(grant.quota.map(i64::from)),
                Val::Blob(secret.map(|s| s.to_vec())),
            ],
        )?;
        Ok(Grant {
            id,
            grant,
            created: now,
            revoked: None,
        })
    }

    fn exists(&self, sql: &str, args: &[Val]) -> Result<bool, StoreError> {
        Ok(!self.db.rows(sql, args)?.is_empty())
    }
}

/// A scope's sealed form: a JSON list of studies (as the first version
/// wrote), `{"label": name}` or `{"query": {keyword: value}}`; none for
/// the whole tenant.
fn encode_scope(scope: &Scope) -> Option<Vec<u8>> {
    let json = match scope {
        Scope::Tenant => return None,
        Scope::Studies(s) => serde_json::json!(s),
        Scope::Label(l) => serde_json::json!({ "label": l }),
        Scope::Query(q) => {
            let keys: BTreeMap<&str, &str> = q.keys().collect();
            serde_json::json!({ "query": keys })
        }
    };
    Some(json.to_string().into_bytes())
}

fn decode_scope(plain: &[u8]) -> Option<Scope> {
    match serde_json::from_slice::<serde_json::Value>(plain).ok()? {
        serde_json::Value::Array(list) => {
            let uids: Option<Vec<&str>> = list.iter().map(|v| v.as_str()).collect();
            Scope::studies(uids?).ok()
        }
        serde_json::Value::Object(o) => {
            if let Some(l) = o.get("label") {
                return Scope::label(l.as_str()?).ok();
            }
            let keys = o.get("query")?.as_object()?;
            let pairs: Option<Vec<(&str, &str)>> = keys
                .iter()
                .map(|(k, v)| Some((k.as_str(), v.as_str()?)))
                .collect();
            StudyQuery::new(pairs?).ok().map(Scope::Query)
        }
        _ => None,
    }
}

impl<D: Db> GrantStore for SqlStore<D> {
    fn add(&self, grant: NewGrant, now: i64) -> Result<Grant, StoreError> {
        self.insert(grant, None, now)
    }

    fn add_link(
        &self,
        grant: NewGrant,
        secret_sha256: [u8; 32],
        now: i64,
    ) -> Result<Grant, StoreError> {
        self.insert(grant, Some(secret_sha256), now)
    }

    fn link_secret(&self, id: &str) -> Result<Option<[u8; 32]>, StoreError> {
        let rows = self
            .db
            .rows("SELECT secret FROM grants WHERE id = $1", &[Val::text(id)])?;
        Ok(rows
            .into_iter()
            .next()
            .and_then(|r| r.into_iter().next()?.into_blob())
            .and_then(|b| b.try_into().ok()))
    }

    fn list(&self, principal: Option<&str>) -> Result<Vec<Grant>, StoreError> {
        match principal {
            Some(p) => self.select("WHERE principal = $1", &[Val::text(p)]),
            None => self.select("", &[]),
        }
    }

    fn get(&self, id: &str) -> Result<Option<Grant>, StoreError> {
        Ok(self
            .select("WHERE id = $1", &[Val::text(id)])?
            .into_iter()
            .next())
    }

    fn revoke(&self, id: &str, now: i64) -> Result<bool, StoreError> {
        let n = self.db.exec(
            "UPDATE grants SET revoked = $2 WHERE id = $1 AND revoked IS NULL",
            &[Val::text(id), Val::Int(Some(now))],
        )?;
        Ok(n == 1)
    }

    fn revoke_token(&self, jti: &str, now: i64) -> Result<bool, StoreError> {
        let n = self.db.exec(
            "INSERT INTO revoked_tokens (jti, revoked) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            &[Val::text(jti), Val::Int(Some(now))],
        )?;
        Ok(n == 1)
    }

    fn token_revoked(&self, jti: &str) -> Result<bool, StoreError> {
        self.exists(
            "SELECT 1 FROM revoked_tokens WHERE jti = $1",
            &[Val::text(jti)],
        )
    }

    fn live(&self, principal: &str, now: i64) -> Result<Vec<Grant>, StoreError> {
        self.select(
            "WHERE principal = $1 AND revoked IS NULL AND (expires IS NULL OR expires > $2)",
            &[Val::text(principal), Val::Int(Some(now))],
        )
    }

    fn label(&self, tenant: &str, name: &str) -> Result<BTreeSet<String>, StoreError> {
        let rows = self.db.rows(
            "SELECT studies FROM labels WHERE tenant = $1 AND name = $2",
            &[Val::text(tenant), Val::text(name)],
        )?;
        let Some(sealed) = rows
            .into_iter()
            .next()
            .and_then(|r| r.into_iter().next()?.into_blob())
        else {
            return Ok(BTreeSet::new());
        };
        let aad = format!("label {tenant}/{name}");
        let plain = self.key.open(&aad, &sealed)?;
        serde_json::from_slice(&plain).map_err(|_| StoreError::Corrupt(aad, "studies".into()))
    }

    fn set_label(
        &self,
        tenant: &str,
        name: &str,
        studies: &BTreeSet<String>,
    ) -> Result<(), StoreError> {
        let args = [Val::text(tenant), Val::text(name)];
        self.db
            .exec("DELETE FROM labels WHERE tenant = $1 AND name = $2", &args)?;
        if !studies.is_empty() {
            let aad = format!("label {tenant}/{name}");
            let sealed = self
                .key
                .seal(&aad, &serde_json::to_vec(studies).expect("strings"))?;
            self.db.exec(
                "INSERT INTO labels (tenant, name, studies, count) VALUES ($1, $2, $3, $4)",
                &[
                    Val::text(tenant),
                    Val::text(name),
                    Val::Blob(Some(sealed)),
                    Val::Int(Some(studies.len() as i64)),
                ],
            )?;
        }
        Ok(())
    }

    fn labels(&self, tenant: &str) -> Result<Vec<(String, usize)>, StoreError> {
        let rows = self.db.rows(
            "SELECT name, count FROM labels WHERE tenant = $1 ORDER BY name",
            &[Val::text(tenant)],
        )?;
        Ok(rows
            .into_iter()
            .filter_map(|r| {
                let [name, count]: [Val; 2] = r.try_into().ok()?;
                Some((name.into_text()?, count.int()? as usize))
            })
            .collect())
    }

    fn charge(&self, id: &str, study: &str, quota: u32, now: i64) -> Result<bool, StoreError> {
        let day = now.div_euclid(86_400);
        let mac = self.key.study_mac(id, study);
        let this = [
            Val::text(id),
            Val::Int(Some(day)),
            Val::Blob(Some(mac.clone())),
        ];
        let counted = "SELECT 1 FROM quota_usage WHERE grant_id = $1 AND day = $2 AND study = $3";
        if self.exists(counted, &this)? {
            return Ok(true);
        }
        let used = self.db.rows(
            "SELECT count(*) FROM quota_usage WHERE grant_id = $1 AND day = $2",
            &[Val::text(id), Val::Int(Some(day))],
        )?;
        let used = used
            .first()
            .and_then(|r| r.first())
            .and_then(Val::int)
            .unwrap_or(0);
        if used >= i64::from(quota) {
            return Ok(false);
        }
        self.db.exec(
            "INSERT INTO quota_usage (grant_id, day, study) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            &this,
        )?;
        self.db.exec(
            "DELETE FROM quota_usage WHERE grant_id = $1 AND day < $2",
            &[Val::text(id), Val::Int(Some(day))],
        )?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests;
