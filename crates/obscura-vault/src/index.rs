//! The index: SQLite (WAL, synchronous=FULL, secure_delete) in the data
//! folder. It keeps no identifying value in clear.
//!
//! Tables: `tenants` (id, name, wrapped key, created), `studies`, `series`,
//! `instances`. Each study, series and instance row holds:
//!
//! - `record`: every attribute of its level, encrypted (AES-256-GCM under the
//!   tenant's index subkey, bound to the tenant, the table and the row's UID
//!   hash, so a record cannot be moved to another row) and padded to a
//!   multiple of 64 bytes;
//! - match columns: HMAC-SHA256 (truncated to 128 bits) under the tenant's
//!   match subkey, for the values searched by exact match: the three UIDs,
//!   SOP Class UID, PatientID, AccessionNumber, StudyID and Modality. UIDs
//!   are looked up by keyed hash only.
//!
//! Searching: the match columns narrow the rows in SQL; every other key
//! (names and wildcards, dates and date ranges, times, descriptions, numbers)
//! is matched by decrypting the candidate rows of that tenant and filtering.
//! This reveals no order and no value to someone holding the database, at the
//! price of a scan of the tenant's candidate rows; when every key is a match
//! column, limit and offset run in SQL and only the returned rows are
//! decrypted. Wildcards on a match-column attribute also fall back to
//! decrypting.
//!
//! What the database shows without the keys: the tenants (ids, names,
//! creation times); per tenant, how many studies, series and instances,
//! which belong together, object sizes, record lengths to 64 bytes, and
//! equality of match values within the tenant (e.g. that two studies share a
//! Patient ID, or how many series share a modality), never across tenants.

use crate::attrs::{record_get, trim, Attr, Attributes, Kind, Level};
use crate::keys::{TenantKeys, MATCH_LEN};
use crate::VaultError;
use rusqlite::types::Value;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use std::collections::HashMap;
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

/// A tenant as listed (no key material).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantRow {
    /// Its id (32 hex digits).
    pub id: String,
    /// Its name (an organisation's, not a patient's: kept in clear).
    pub name: String,
    /// When it was created, seconds since the epoch.
    pub created: i64,
}

/// One tenant's rows and keys, as every row operation needs them.
pub(crate) struct Scope {
    /// The tenant's row number (rows refer to it, not to the 32-digit id).
    pub(crate) pk: i64,
    /// The tenant's id (bound into every record's AAD).
    pub(crate) id: String,
    /// The tenant's subkeys.
    pub(crate) keys: TenantKeys,
}

/// The table and column holding an attribute's keyed hash, if it has one.
fn match_column(attr: Attr) -> Option<(&'static str, &'static str)> {
    Some(match attr {
        Attr::StudyInstanceUID => ("st", "uid_h"),
        Attr::PatientID => ("st", "patient_id_h"),
        Attr::AccessionNumber => ("st", "accession_h"),
        Attr::StudyID => ("st", "study_id_h"),
        Attr::SeriesInstanceUID => ("se", "uid_h"),
        Attr::Modality => ("se", "modality_h"),
        Attr::SOPInstanceUID => ("i", "uid_h"),
        Attr::SOPClassUID => ("i", "sop_class_h"),
        _ => return None,
    })
}

/// The keyed hash of an attribute's value (its keyword is the domain).
pub(crate) fn hash(keys: &TenantKeys, attr: Attr, value: &str) -> [u8; MATCH_LEN] {
    keys.match_hash(attr.keyword().as_bytes(), trim(value).as_bytes())
}

fn record_aad(tenant: &str, table: &str, uid_h: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(64);
    aad.extend_from_slice(b"obscura-vault/v1/record\0");
    aad.extend_from_slice(table.as_bytes());
    aad.push(0);
    aad.extend_from_slice(tenant.as_bytes());
    aad.push(0);
    aad.extend_from_slice(uid_h);
    aad
}

fn seal(t: &Scope, table: &str, uid_h: &[u8], attrs: &Attributes) -> Result<Vec<u8>, VaultError> {
    Ok(t.keys
        .seal_record(&record_aad(&t.id, table, uid_h), &attrs.encode())?)
}

fn open(t: &Scope, table: &str, uid_h: &[u8], sealed: &[u8]) -> Result<Attributes, VaultError> {
    t.keys
        .open_record(&record_aad(&t.id, table, uid_h), sealed)
        .and_then(|plain| Attributes::decode(&plain))
        .ok_or(VaultError::Tampered("index record"))
}

/// A search: keys in QIDO's matching syntax, at one level. Its `Debug`
/// prints keywords only: values may identify a patient.
#[derive(Clone)]
pub struct Query {
    /// Studies, series or instances.
    pub level: Level,
    /// Matching keys: an attribute of this level or above, and its value in
    /// QIDO syntax: exact, wildcard (`*`, `?`; names case-insensitive),
    /// range for dates and times (`a-b`, `a-`, `-b`), UID list (`a\b`). An
    /// empty value matches everything.
    pub keys: Vec<(Attr, String)>,
    /// At most this many results.
    pub limit: Option<usize>,
    /// Skip this many matches first.
    pub offset: usize,
}

impl std::fmt::Debug for Query {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Query")
            .field("level", &self.level)
            .field(
                "keys",
                &self.keys.iter().map(|(a, _)| *a).collect::<Vec<_>>(),
            )
            .field("limit", &self.limit)
            .field("offset", &self.offset)
            .finish()
    }
}

impl Query {
    /// A query at `level` with no keys.
    pub fn new(level: Level) -> Self {
        Query {
            level,
            keys: Vec::new(),
            limit: None,
            offset: 0,
        }
    }

    /// Add a matching key.
    pub fn with(mut self, attr: Attr, value: &str) -> Self {
        self.keys.push((attr, value.to_string()));
        self
    }
}

/// One key, parsed.
pub(crate) enum Matcher {
    /// By keyed hash in SQL: any of these values (trimmed; hashed when the
    /// SQL is built, compared as they are against a cached record).
    Hashes(Attr, Vec<String>),
    /// ModalitiesInStudy: any series of the study has one of these modalities.
    StudyModality(Vec<String>),
    /// After decrypting.
    Filter(Attr, Filter),
}

impl Matcher {
    /// Whether a study record (as [`Attributes::encode_compact`] writes it)
    /// matches: the answer the SQL path gives for the same row. Equal hashes
    /// are equal trimmed values; a study's ModalitiesInStudy holds exactly
    /// the modalities of its series.
    pub(crate) fn matches_record(&self, rec: &[u8]) -> bool {
        match self {
            Matcher::Hashes(attr, values) => {
                record_get(rec, *attr).is_some_and(|v| values.iter().any(|w| w == v))
            }
            Matcher::StudyModality(values) => record_get(rec, Attr::ModalitiesInStudy)
                .is_some_and(|m| m.split('\\').any(|v| values.iter().any(|w| w == v))),
            Matcher::Filter(attr, f) => f.matches(attr.kind(), record_get(rec, *attr)),
        }
    }

    /// Whether it is matched after decrypting.
    pub(crate) fn is_filter(&self) -> bool {
        matches!(self, Matcher::Filter(..))
    }
}

/// A key matched after decrypting.
pub(crate) enum Filter {
    Exact(String),
    /// Case-insensitive exact match (person names); the value lowercased.
    ExactFolded(String),
    /// The pattern (lowercased if folded) as chars and as text, and whether
    /// it is case-insensitive.
    Wildcard(Vec<char>, String, bool),
    /// Inclusive bounds on normalized values.
    Range(Option<String>, Option<String>),
}

/// Parse every key of a query.
pub(crate) fn parse_query(query: &Query) -> Result<Vec<Matcher>, VaultError> {
    let mut out = Vec::new();
    for (attr, value) in &query.keys {
        if let Some(m) = parse_key(query.level, *attr, value)? {
            out.push(m);
        }
    }
    Ok(out)
}

fn parse_key(level: Level, attr: Attr, value: &str) -> Result<Option<Matcher>, VaultError> {
    if attr.level() > level || attr == Attr::TransferSyntaxUID {
        return Err(VaultError::InvalidQuery(attr, "not a key at this level"));
    }
    let value = trim(value);
    if value.is_empty() || value == "*" {
        return Ok(None);
    }
    let kind = attr.kind();
    let wildcard = value.contains(['*', '?']);
    if kind == Kind::Uid || (matches!(attr, Attr::Modality | Attr::ModalitiesInStudy) && !wildcard)
    {
        if wildcard {
            return Err(VaultError::InvalidQuery(attr, "no wildcards in UIDs"));
        }
        let values = value.split('\\').map(|v| trim(v).to_string()).collect();
        return Ok(Some(if attr == Attr::ModalitiesInStudy {
            Matcher::StudyModality(values)
        } else {
            Matcher::Hashes(attr, values)
        }));
    }
    if matches!(kind, Kind::Date | Kind::Time) {
        let norm = |s: &str| (!s.is_empty()).then(|| normalize(kind, s).into_owned());
        return Ok(Some(Matcher::Filter(
            attr,
            match value.split_once('-') {
                Some((lo, hi)) => Filter::Range(norm(lo.trim()), norm(hi.trim())),
                None => Filter::Range(norm(value), norm(value)),
            },
        )));
    }
    if wildcard {
        let folded = kind == Kind::Name;
        let pattern = if folded {
            value.to_lowercase()
        } else {
            value.to_string()
        };
        return Ok(Some(Matcher::Filter(
            attr,
            Filter::Wildcard(pattern.chars().collect(), pattern, folded),
        )));
    }
    if match_column(attr).is_some() {
        return Ok(Some(Matcher::Hashes(attr, vec![value.to_string()])));
    }
    Ok(Some(Matcher::Filter(
        attr,
        if kind == Kind::Name {
            Filter::ExactFolded(value.to_lowercase())
        } else {
            Filter::Exact(value.to_string())
        },
    )))
}

/// A date or time in a form that compares as a string: `YYYYMMDD`
/// (`YYYY.MM.DD` accepted), `HHMMSS.FFFFFF` (missing parts as zeros, colons
/// accepted). Borrowed when already in that form (dates of 8 digits).
fn normalize(kind: Kind, v: &str) -> std::borrow::Cow<'_, str> {
    if kind == Kind::Date {
        if v.len() == 8 && v.bytes().all(|b| b.is_ascii_digit()) {
            return v.into();
        }
        return v
            .chars()
            .filter(char::is_ascii_digit)
            .collect::<String>()
            .into();
    }
    let v: String = v.chars().filter(|c| *c != ':').collect();
    let (whole, frac) = v.split_once('.').unwrap_or((&v, ""));
    format!("{whole:0<6}.{frac:0<6}").into()
}

impl Filter {
    fn matches(&self, kind: Kind, value: Option<&str>) -> bool {
        let Some(value) = value else {
            return false;
        };
        match self {
            Filter::Exact(want) => value == want,
            Filter::ExactFolded(want) => {
                if value.is_ascii() && want.is_ascii() {
                    value.eq_ignore_ascii_case(want)
                } else {
                    value.to_lowercase() == *want
                }
            }
            Filter::Wildcard(pattern, text, folded) => {
                if value.is_ascii() && text.is_ascii() {
                    // Bytes, folded on the fly: no allocation.
                    let fold = |b: u8| if *folded { b.to_ascii_lowercase() } else { b };
                    wildcard(text.as_bytes(), value.as_bytes(), b'*', b'?', fold)
                } else {
                    let v: Vec<char> = if *folded {
                        value.to_lowercase().chars().collect()
                    } else {
                        value.chars().collect()
                    };
                    wildcard(pattern, &v, '*', '?', |c| c)
                }
            }
            Filter::Range(lo, hi) => {
                let v = normalize(kind, value);
                let v = v.as_ref();
                lo.as_deref().is_none_or(|lo| v >= lo) && hi.as_deref().is_none_or(|hi| v <= hi)
            }
        }
    }
}

/// `star` any run of symbols, `any` any one symbol, others equal to
/// `fold` of the value's (iterative, linear in practice: backtracks only to
/// the last star).
fn wildcard<T: Copy + Eq>(p: &[T], v: &[T], star_sym: T, any: T, fold: impl Fn(T) -> T) -> bool {
    let (mut pi, mut vi) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while vi < v.len() {
        if pi < p.len() && (p[pi] == any || p[pi] == fold(v[vi])) {
            pi += 1;
            vi += 1;
        } else if pi < p.len() && p[pi] == star_sym {
            star = Some((pi, vi));
            pi += 1;
        } else if let Some((sp, sv)) = star {
            pi = sp + 1;
            vi = sv + 1;
            star = Some((sp, sv + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == star_sym)
}

/// What inserting an instance's rows did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Inserted {
    /// New rows.
    New,
    /// The tenant already has this SOP Instance UID.
    Duplicate,
}

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
}

/// Re-wraps a tenant's wrapped key (given its id) under a new master key.
pub(crate) type Rewrap<'a> = dyn Fn(&str, &[u8]) -> Result<Vec<u8>, VaultError> + 'a;

/// What the vault needs of its index database, over one connection (the
/// vault keeps one that writes and a few that read). SQLite ([`Index`])
/// implements it; a PostgreSQL backend implements the same operations with
/// the same tables (keyed hashes and sealed records are computed here, so a
/// backend only stores and selects bytes), `$n` placeholders, and
/// `SELECT ... FOR UPDATE` of the tenant row where SQLite takes its write
/// lock (`BEGIN IMMEDIATE`).
pub(crate) trait IndexBackend: Send {
    /// A value of the meta table.
    fn meta(&mut self, key: &str) -> Result<Option<Vec<u8>>, VaultError>;

    /// Set a value of the meta table.
    fn set_meta(&mut self, key: &str, value: &[u8]) -> Result<(), VaultError>;

    /// Add a tenant; `false` if the name is taken.
    fn insert_tenant(
        &mut self,
        id: &str,
        name: &str,
        wrapped: &[u8],
        created: i64,
    ) -> Result<bool, VaultError>;

    /// Every tenant, oldest first.
    fn tenants(&mut self) -> Result<Vec<TenantRow>, VaultError>;

    /// A tenant's row number and wrapped key.
    fn wrapped_key(&mut self, tenant: &str) -> Result<Option<(i64, Vec<u8>)>, VaultError>;

    /// Delete a tenant's rows and its wrapped key, then checkpoint the WAL
    /// (truncating it) so the deleted pages, zeroed by secure_delete, are
    /// what remains in the database file. `false` if there was no such tenant.
    fn delete_tenant(&mut self, tenant: &str) -> Result<bool, VaultError>;

    /// The object name and size of an instance, by SOP Instance UID hash.
    fn instance_object(
        &mut self,
        t: &Scope,
        uid_h: &[u8],
    ) -> Result<Option<(String, u64)>, VaultError>;

    /// Insert instances (and their studies and series if new) in one
    /// transaction: all or none. The first instance of a study or series
    /// sets its record; a new series adds its modality to the study's
    /// ModalitiesInStudy. If a study record is inserted or changed, the
    /// tenant's study generation goes up by one and those rows carry the
    /// new generation (the search cache fetches rows newer than its own).
    fn insert_instances(
        &mut self,
        t: &Scope,
        items: &[(&Attributes, &str, u64)],
    ) -> Result<Vec<Inserted>, VaultError>;

    /// Run a search for one tenant.
    fn search(
        &mut self,
        t: &Scope,
        query: &Query,
        matchers: Vec<Matcher>,
    ) -> Result<Vec<Attributes>, VaultError>;

    /// Replace every tenant's wrapped key with `rewrap(id, wrapped)` and the
    /// master check value with `check`, in one transaction; then checkpoint
    /// the WAL (truncating it), so the old wrapped keys are overwritten
    /// (secure_delete) in the database file and gone from the WAL.
    fn rewrap_tenant_keys(
        &mut self,
        rewrap: &Rewrap<'_>,
        check: &[u8],
    ) -> Result<usize, VaultError>;

    /// Every tenant id.
    fn tenant_ids(&mut self) -> Result<std::collections::HashSet<String>, VaultError>;

    /// The object names a tenant's instances refer to (none for an unknown tenant).
    fn object_names(
        &mut self,
        tenant: &str,
    ) -> Result<std::collections::HashSet<String>, VaultError>;

    /// The study records of a tenant written after generation `since` (all
    /// of them if `None`), decrypted, by row number, and the generation the
    /// tenant is at (one read transaction: a consistent snapshot).
    fn studies_since(
        &mut self,
        t: &Scope,
        since: Option<i64>,
    ) -> Result<(i64, Vec<(i64, Attributes)>), VaultError>;
}

impl IndexBackend for Index {
    /// A value of the meta table.
    fn meta(&mut self, key: &str) -> Result<Option<Vec<u8>>, VaultError> {
        Ok(self
            .conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()?)
    }

    /// Set a value of the meta table.
    fn set_meta(&mut self, key: &str, value: &[u8]) -> Result<(), VaultError> {
        self.conn.execute(
            "INSERT OR REPLACE INTO meta(key, value) VALUES (?1, ?2)",
            params![key, value],
        )?;
        Ok(())
    }

    /// Add a tenant; `false` if the name is taken.
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

    /// Every tenant, oldest first.
    fn tenants(&mut self) -> Result<Vec<TenantRow>, VaultError> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, name, created FROM tenants ORDER BY created, rowid")?;
        let rows = stmt.query_map([], |r| {
            Ok(TenantRow {
                id: r.get(0)?,
                name: r.get(1)?,
                created: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// A tenant's row number and wrapped key.
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

    /// Delete a tenant's rows and its wrapped key, then checkpoint the WAL
    /// (truncating it) so the deleted pages, zeroed by secure_delete, are
    /// what remains in the database file. `false` if there was no such tenant.
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
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(true)
    }

    /// The object name and size of an instance, by SOP Instance UID hash.
    fn instance_object(
        &mut self,
        t: &Scope,
        uid_h: &[u8],
    ) -> Result<Option<(String, u64)>, VaultError> {
        Ok(self
            .conn
            .query_row(
                "SELECT object, bytes FROM instances WHERE tenant = ?1 AND uid_h = ?2",
                params![t.pk, uid_h],
                |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)),
            )
            .optional()?)
    }

    /// Insert instances (and their studies and series if new) in one
    /// transaction: all or none. The first instance of a study or series
    /// sets its record; a new series adds its modality to the study's
    /// ModalitiesInStudy. If a study record is inserted or changed, the
    /// tenant's study generation goes up by one and those rows carry the
    /// new generation (the search cache fetches rows newer than its own).
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
        let mut studies_changed = false;
        let mut out = Vec::with_capacity(items.len());
        for (attrs, object, bytes) in items {
            out.push(insert_one(
                &tx,
                t,
                attrs,
                object,
                *bytes,
                next,
                &mut studies_changed,
            )?);
        }
        if studies_changed {
            tx.execute(
                "UPDATE tenants SET gen = ?1 WHERE pk = ?2",
                params![next, t.pk],
            )?;
        }
        tx.commit()?;
        Ok(out)
    }

    /// Run a search for one tenant.
    fn search(
        &mut self,
        t: &Scope,
        query: &Query,
        matchers: Vec<Matcher>,
    ) -> Result<Vec<Attributes>, VaultError> {
        let (select, from, alias) = match query.level {
            Level::Study => (
                "st.pk, st.uid_h, st.record, NULL, NULL, NULL, NULL, NULL",
                "studies st",
                "st",
            ),
            Level::Series => (
                "st.pk, st.uid_h, st.record, se.uid_h, se.record, NULL, NULL, NULL",
                "series se JOIN studies st ON st.pk = se.study",
                "se",
            ),
            Level::Instance => (
                "st.pk, st.uid_h, st.record, se.uid_h, se.record, i.uid_h, i.record, se.pk",
                "instances i JOIN series se ON se.pk = i.series JOIN studies st ON st.pk = se.study",
                "i",
            ),
        };
        // The tenant on every joined table lets SQLite use the (tenant, hash)
        // indexes from whichever side the keys are on.
        let tenants = match query.level {
            Level::Study => "st.tenant = ?1",
            Level::Series => "st.tenant = ?1 AND se.tenant = ?1",
            Level::Instance => "st.tenant = ?1 AND se.tenant = ?1 AND i.tenant = ?1",
        };
        let mut sql = format!("SELECT {select} FROM {from} WHERE {tenants}");
        let mut values: Vec<Value> = vec![Value::Integer(t.pk)];
        let mut filters = Vec::new();
        for m in matchers {
            match m {
                Matcher::Hashes(attr, plain) => {
                    let (a, col) = match_column(attr).expect("hashed attributes have a column");
                    sql.push_str(&format!(
                        " AND {a}.{col} IN ({})",
                        placeholders(plain.len())
                    ));
                    values.extend(
                        plain
                            .iter()
                            .map(|v| Value::Blob(hash(&t.keys, attr, v).to_vec())),
                    );
                }
                Matcher::StudyModality(plain) => {
                    sql.push_str(&format!(
                        " AND EXISTS (SELECT 1 FROM series m WHERE m.study = st.pk AND m.modality_h IN ({}))",
                        placeholders(plain.len())
                    ));
                    values.extend(
                        plain
                            .iter()
                            .map(|v| Value::Blob(hash(&t.keys, Attr::Modality, v).to_vec())),
                    );
                }
                Matcher::Filter(attr, f) => filters.push((attr, f)),
            }
        }
        sql.push_str(&format!(" ORDER BY {alias}.pk"));
        // Without filters on decrypted values, SQL pages the results.
        if filters.is_empty() {
            sql.push_str(" LIMIT ? OFFSET ?");
            values.push(Value::Integer(query.limit.map_or(-1, |l| l as i64)));
            values.push(Value::Integer(query.offset as i64));
        }
        let mut stmt = self.conn.prepare(&sql)?;
        let mut rows = stmt.query(rusqlite::params_from_iter(values))?;
        let mut studies: HashMap<i64, Attributes> = HashMap::new();
        let mut series_cache: HashMap<i64, Attributes> = HashMap::new();
        let mut out = Vec::new();
        let mut skipped = 0;
        let skip = if filters.is_empty() { 0 } else { query.offset };
        while let Some(row) = rows.next()? {
            if query.limit.is_some_and(|l| out.len() >= l) {
                break;
            }
            let study_pk: i64 = row.get(0)?;
            // Series and instances share their study's record: decrypted once.
            let mut attrs = match studies.get(&study_pk) {
                Some(s) => s.clone(),
                None => {
                    let uid_h: Vec<u8> = row.get(1)?;
                    let rec: Vec<u8> = row.get(2)?;
                    let s = open(t, "studies", &uid_h, &rec)?;
                    if query.level > Level::Study {
                        studies.insert(study_pk, s.clone());
                    }
                    s
                }
            };
            if query.level >= Level::Series {
                let uid_h: Vec<u8> = row.get(3)?;
                let rec: Vec<u8> = row.get(4)?;
                let series = if query.level == Level::Instance {
                    let series_pk: i64 = row.get(7)?;
                    match series_cache.get(&series_pk) {
                        Some(s) => s.clone(),
                        None => {
                            let s = open(t, "series", &uid_h, &rec)?;
                            series_cache.insert(series_pk, s.clone());
                            s
                        }
                    }
                } else {
                    open(t, "series", &uid_h, &rec)?
                };
                attrs.merge(series);
            }
            if query.level == Level::Instance {
                let uid_h: Vec<u8> = row.get(5)?;
                let rec: Vec<u8> = row.get(6)?;
                attrs.merge(open(t, "instances", &uid_h, &rec)?);
            }
            if !filters
                .iter()
                .all(|(a, f)| f.matches(a.kind(), attrs.get(*a)))
            {
                continue;
            }
            if skipped < skip {
                skipped += 1;
                continue;
            }
            out.push(attrs);
        }
        Ok(out)
    }

    /// Replace every tenant's wrapped key with `rewrap(id, wrapped)` and the
    /// master check value with `check`, in one transaction; then checkpoint
    /// the WAL (truncating it), so the old wrapped keys are overwritten
    /// (secure_delete) in the database file and gone from the WAL.
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
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(tenants.len())
    }

    /// Every tenant id.
    fn tenant_ids(&mut self) -> Result<std::collections::HashSet<String>, VaultError> {
        let mut stmt = self.conn.prepare("SELECT id FROM tenants")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The object names a tenant's instances refer to (none for an unknown tenant).
    fn object_names(
        &mut self,
        tenant: &str,
    ) -> Result<std::collections::HashSet<String>, VaultError> {
        let mut stmt = self.conn.prepare(
            "SELECT i.object FROM instances i JOIN tenants t ON t.pk = i.tenant WHERE t.id = ?1",
        )?;
        let rows = stmt.query_map([tenant], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The study records of a tenant written after generation `since` (all
    /// of them if `None`), decrypted, by row number, and the generation the
    /// tenant is at (one read transaction: a consistent snapshot).
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
            let pk: i64 = row.get(0)?;
            let uid_h: Vec<u8> = row.get(1)?;
            let rec: Vec<u8> = row.get(2)?;
            out.push((pk, open(t, "studies", &uid_h, &rec)?));
        }
        drop(rows);
        drop(stmt);
        tx.commit()?;
        Ok((gen, out))
    }
}

/// Insert one instance inside `tx`; a study record written carries
/// generation `gen` and sets `studies_changed`.
fn insert_one(
    tx: &rusqlite::Transaction<'_>,
    t: &Scope,
    attrs: &Attributes,
    object: &str,
    bytes: u64,
    gen: i64,
    studies_changed: &mut bool,
) -> Result<Inserted, VaultError> {
    let h = |a: Attr| attrs.get(a).map(|v| hash(&t.keys, a, v).to_vec());
    let need = |a: Attr| h(a).ok_or(VaultError::MissingAttribute(a));
    let study_h = need(Attr::StudyInstanceUID)?;
    let series_h = need(Attr::SeriesInstanceUID)?;
    let sop_h = need(Attr::SOPInstanceUID)?;
    let exists = pk_by_uid(tx, "instances", t, &sop_h)?;
    if exists.is_some() {
        return Ok(Inserted::Duplicate);
    }
    let study = pk_by_uid(tx, "studies", t, &study_h)?;
    let study_pk = match study {
        Some(pk) => pk,
        None => {
            let mut rec = attrs.at_level(Level::Study);
            rec.set(Attr::ModalitiesInStudy, "");
            tx.execute(
                "INSERT INTO studies(tenant, uid_h, patient_id_h, accession_h, study_id_h, record, gen)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    t.pk,
                    study_h,
                    h(Attr::PatientID),
                    h(Attr::AccessionNumber),
                    h(Attr::StudyID),
                    seal(t, "studies", &study_h, &rec)?,
                    gen
                ],
            )?;
            *studies_changed = true;
            tx.last_insert_rowid()
        }
    };
    let series = pk_by_uid(tx, "series", t, &series_h)?;
    let series_pk = match series {
        Some(pk) => pk,
        None => {
            tx.execute(
                "INSERT INTO series(tenant, study, uid_h, modality_h, record)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    t.pk,
                    study_pk,
                    series_h,
                    h(Attr::Modality),
                    seal(t, "series", &series_h, &attrs.at_level(Level::Series))?
                ],
            )?;
            let pk = tx.last_insert_rowid();
            if let Some(modality) = attrs.get(Attr::Modality) {
                if add_modality(tx, t, study_pk, &study_h, modality, gen)? {
                    *studies_changed = true;
                }
            }
            pk
        }
    };
    let rec = attrs.at_level(Level::Instance);
    tx.execute(
        "INSERT INTO instances(tenant, series, uid_h, sop_class_h, object, bytes, record)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            t.pk,
            series_pk,
            sop_h,
            h(Attr::SOPClassUID),
            object,
            bytes as i64,
            seal(t, "instances", &sop_h, &rec)?
        ],
    )?;
    Ok(Inserted::New)
}

/// The row number of a tenant's row in `table` (instances, series or
/// studies) by its UID hash.
fn pk_by_uid(
    tx: &rusqlite::Transaction<'_>,
    table: &'static str,
    t: &Scope,
    uid_h: &[u8],
) -> Result<Option<i64>, VaultError> {
    Ok(tx
        .query_row(
            &format!("SELECT pk FROM {table} WHERE tenant = ?1 AND uid_h = ?2"),
            params![t.pk, uid_h],
            |r| r.get(0),
        )
        .optional()?)
}

/// Add `modality` to a study's ModalitiesInStudy (re-sealing its record,
/// which then carries generation `gen`); whether it changed.
fn add_modality(
    tx: &rusqlite::Transaction<'_>,
    t: &Scope,
    study_pk: i64,
    study_h: &[u8],
    modality: &str,
    gen: i64,
) -> Result<bool, VaultError> {
    let sealed: Vec<u8> = tx.query_row(
        "SELECT record FROM studies WHERE pk = ?1",
        [study_pk],
        |r| r.get(0),
    )?;
    let mut rec = open(t, "studies", study_h, &sealed)?;
    let mut all: Vec<String> = rec
        .get(Attr::ModalitiesInStudy)
        .map(|m| m.split('\\').map(str::to_string).collect())
        .unwrap_or_default();
    if all.iter().any(|m| m == modality) {
        return Ok(false);
    }
    all.push(modality.to_string());
    all.sort();
    rec.set(Attr::ModalitiesInStudy, &all.join("\\"));
    tx.execute(
        "UPDATE studies SET record = ?1, gen = ?2 WHERE pk = ?3",
        params![seal(t, "studies", study_h, &rec)?, gen, study_pk],
    )?;
    Ok(true)
}

fn placeholders(n: usize) -> String {
    vec!["?"; n].join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chars(s: &str) -> Vec<char> {
        s.chars().collect()
    }

    #[test]
    fn debug_prints_no_values() {
        let q = Query::new(Level::Study).with(Attr::PatientName, "DOE^JOHN");
        let text = format!("{q:?}");
        assert!(text.contains("PatientName") && !text.contains("DOE"));
    }

    #[test]
    fn vault_is_shared_between_threads() {
        fn shared<T: Send + Sync>() {}
        shared::<crate::Vault>();
    }

    #[test]
    fn wildcards() {
        let w = |p: &str, v: &str| {
            let by_chars = wildcard(&chars(p), &chars(v), '*', '?', |c| c);
            let by_bytes = wildcard(p.as_bytes(), v.as_bytes(), b'*', b'?', |b| b);
            assert_eq!(by_chars, by_bytes, "{p} {v}");
            by_chars
        };
        assert!(w("doe*", "doe^john"));
        assert!(w("*john", "doe^john"));
        assert!(w("d?e^*", "doe^john"));
        assert!(w("*", ""));
        assert!(w("*^*n", "doe^john"));
        assert!(!w("doe", "doe^john"));
        assert!(!w("?", ""));
        assert!(!w("*x*", "doe^john"));
    }

    #[test]
    fn ranges() {
        let f = Filter::Range(
            Some(normalize(Kind::Date, "20230101").into_owned()),
            Some(normalize(Kind::Date, "20231231").into_owned()),
        );
        assert!(f.matches(Kind::Date, Some("20230314")));
        assert!(!f.matches(Kind::Date, Some("20240101")));
        assert!(!f.matches(Kind::Date, None));
        let t = Filter::Range(Some(normalize(Kind::Time, "10").into_owned()), None);
        assert!(t.matches(Kind::Time, Some("103000.5")));
        assert!(!t.matches(Kind::Time, Some("0959")));
        let exact = Filter::Range(
            Some(normalize(Kind::Time, "1030").into_owned()),
            Some(normalize(Kind::Time, "1030").into_owned()),
        );
        assert!(exact.matches(Kind::Time, Some("10:30:00")));
    }
}
