//! The index: SQLite in the data folder (the default), or PostgreSQL shared
//! by several processes. Either keeps no identifying value in clear: keyed
//! hashes and sealed records are computed here, and a backend only stores
//! and selects bytes.
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

pub(crate) mod postgres;
mod query;
mod sqlite;

pub use postgres::Database;
pub(crate) use postgres::PgIndex;
pub use query::Query;
pub(crate) use query::{parse_query, Filter, Matcher};
pub(crate) use sqlite::Index;

use crate::attrs::{trim, Attr, Attributes, Level};
use crate::keys::{TenantKeys, MATCH_LEN};
use crate::VaultError;
use std::collections::{HashMap, HashSet};

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

fn seal(t: &Scope, table: Table, uid_h: &[u8], attrs: &Attributes) -> Result<Vec<u8>, VaultError> {
    Ok(t.keys
        .seal_record(&record_aad(&t.id, table.name(), uid_h), &attrs.encode())?)
}

fn open(t: &Scope, table: Table, uid_h: &[u8], sealed: &[u8]) -> Result<Attributes, VaultError> {
    t.keys
        .open_record(&record_aad(&t.id, table.name(), uid_h), sealed)
        .and_then(|plain| Attributes::decode(&plain))
        .ok_or(VaultError::Tampered("index record"))
}

/// What inserting an instance's rows did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Inserted {
    /// New rows.
    New,
    /// The tenant already has this SOP Instance UID.
    Duplicate,
}

/// Re-wraps a tenant's wrapped key (given its id) under a new master key.
pub(crate) type Rewrap<'a> = dyn Fn(&str, &[u8]) -> Result<Vec<u8>, VaultError> + 'a;

/// What the vault needs of its index database, over one connection (the
/// vault keeps one that writes and a few that read). SQLite ([`Index`]) and
/// PostgreSQL ([`PgIndex`]) implement it with the same tables; what rows are
/// written ([`insert_all`]) and how a search is planned and its rows
/// decrypted and filtered ([`plan_search`]) is shared.
pub(crate) trait IndexBackend: Send {
    /// Set a value of the meta table unless it has one; the value it has then.
    fn init_meta(&mut self, key: &str, value: &[u8]) -> Result<Vec<u8>, VaultError>;

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

    /// Delete a tenant's rows and its wrapped key, and leave as little of
    /// them as the database allows (SQLite: pages zeroed by secure_delete,
    /// WAL truncated; PostgreSQL: the tenants table rewritten). `false` if
    /// there was no such tenant.
    fn delete_tenant(&mut self, tenant: &str) -> Result<bool, VaultError>;

    /// The object name and size of an instance, by SOP Instance UID hash.
    fn instance_object(
        &mut self,
        t: &Scope,
        uid_h: &[u8],
    ) -> Result<Option<(String, u64)>, VaultError>;

    /// Insert instances (and their studies and series if new) in one
    /// transaction: all or none, the tenant's writes serialized (SQLite's
    /// write lock; PostgreSQL locks the tenant's row). The first instance
    /// of a study or series sets its record; a new series adds its modality
    /// to the study's ModalitiesInStudy. If a study record is inserted or
    /// changed, the tenant's study generation goes up by one and those rows
    /// carry the new generation (the search cache fetches rows newer than
    /// its own).
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
    /// master check value with `check`, in one transaction; then leave as
    /// little of the old wrapped keys as the database allows (as
    /// [`delete_tenant`](Self::delete_tenant)).
    fn rewrap_tenant_keys(
        &mut self,
        rewrap: &Rewrap<'_>,
        check: &[u8],
    ) -> Result<usize, VaultError>;

    /// Every tenant id.
    fn tenant_ids(&mut self) -> Result<HashSet<String>, VaultError>;

    /// The object names a tenant's instances refer to (none for an unknown tenant).
    fn object_names(&mut self, tenant: &str) -> Result<HashSet<String>, VaultError>;

    /// The study records of a tenant written after generation `since` (all
    /// of them if `None`), decrypted, by row number, and the generation the
    /// tenant is at (one read transaction: a consistent snapshot).
    fn studies_since(
        &mut self,
        t: &Scope,
        since: Option<i64>,
    ) -> Result<(i64, Vec<(i64, Attributes)>), VaultError>;
}

/// A table of per-tenant rows with a UID hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Table {
    /// `studies`.
    Studies,
    /// `series`.
    Series,
    /// `instances`.
    Instances,
}

impl Table {
    /// Its name in SQL (and in records' AAD).
    pub(crate) fn name(self) -> &'static str {
        match self {
            Table::Studies => "studies",
            Table::Series => "series",
            Table::Instances => "instances",
        }
    }
}

/// A new study row.
pub(crate) struct StudyRow<'a> {
    pub(crate) tenant: i64,
    pub(crate) uid_h: &'a [u8],
    pub(crate) patient_id_h: Option<Vec<u8>>,
    pub(crate) accession_h: Option<Vec<u8>>,
    pub(crate) study_id_h: Option<Vec<u8>>,
    pub(crate) record: Vec<u8>,
    pub(crate) gen: i64,
}

/// A new series row.
pub(crate) struct SeriesRow<'a> {
    pub(crate) tenant: i64,
    pub(crate) study: i64,
    pub(crate) uid_h: &'a [u8],
    pub(crate) modality_h: Option<Vec<u8>>,
    pub(crate) record: Vec<u8>,
}

/// A new instance row.
pub(crate) struct InstanceRow<'a> {
    pub(crate) tenant: i64,
    pub(crate) series: i64,
    pub(crate) uid_h: &'a [u8],
    pub(crate) sop_class_h: Option<Vec<u8>>,
    pub(crate) object: &'a str,
    pub(crate) bytes: i64,
    pub(crate) record: Vec<u8>,
}

/// The row operations of one write transaction, as inserting needs them.
pub(crate) trait RowTx {
    /// The row number of a tenant's row in `table` by its UID hash.
    fn pk_by_uid(
        &mut self,
        table: Table,
        tenant: i64,
        uid_h: &[u8],
    ) -> Result<Option<i64>, VaultError>;
    /// Insert a study; its row number.
    fn insert_study(&mut self, row: StudyRow<'_>) -> Result<i64, VaultError>;
    /// Insert a series; its row number.
    fn insert_series(&mut self, row: SeriesRow<'_>) -> Result<i64, VaultError>;
    /// A study's sealed record.
    fn study_record(&mut self, pk: i64) -> Result<Vec<u8>, VaultError>;
    /// Replace a study's sealed record, stamped with generation `gen`.
    fn update_study(&mut self, pk: i64, record: &[u8], gen: i64) -> Result<(), VaultError>;
    /// Insert an instance; `false` if the tenant has its UID already (a
    /// unique constraint decides, whoever inserted it).
    fn insert_instance(&mut self, row: InstanceRow<'_>) -> Result<bool, VaultError>;
}

/// Insert instances inside a transaction; study records written carry
/// generation `gen`. The results, and whether a study record was written.
pub(crate) fn insert_all(
    tx: &mut dyn RowTx,
    t: &Scope,
    items: &[(&Attributes, &str, u64)],
    gen: i64,
) -> Result<(Vec<Inserted>, bool), VaultError> {
    let mut studies_changed = false;
    let mut out = Vec::with_capacity(items.len());
    for (attrs, object, bytes) in items {
        out.push(insert_one(
            tx,
            t,
            attrs,
            object,
            *bytes,
            gen,
            &mut studies_changed,
        )?);
    }
    Ok((out, studies_changed))
}

/// Insert one instance; a study record written carries generation `gen`
/// and sets `studies_changed`.
fn insert_one(
    tx: &mut dyn RowTx,
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
    if tx.pk_by_uid(Table::Instances, t.pk, &sop_h)?.is_some() {
        return Ok(Inserted::Duplicate);
    }
    let study_pk = match tx.pk_by_uid(Table::Studies, t.pk, &study_h)? {
        Some(pk) => pk,
        None => {
            let mut rec = attrs.at_level(Level::Study);
            rec.set(Attr::ModalitiesInStudy, "");
            *studies_changed = true;
            tx.insert_study(StudyRow {
                tenant: t.pk,
                uid_h: &study_h,
                patient_id_h: h(Attr::PatientID),
                accession_h: h(Attr::AccessionNumber),
                study_id_h: h(Attr::StudyID),
                record: seal(t, Table::Studies, &study_h, &rec)?,
                gen,
            })?
        }
    };
    let series_pk = match tx.pk_by_uid(Table::Series, t.pk, &series_h)? {
        Some(pk) => pk,
        None => {
            let pk = tx.insert_series(SeriesRow {
                tenant: t.pk,
                study: study_pk,
                uid_h: &series_h,
                modality_h: h(Attr::Modality),
                record: seal(t, Table::Series, &series_h, &attrs.at_level(Level::Series))?,
            })?;
            if let Some(modality) = attrs.get(Attr::Modality) {
                if add_modality(tx, t, study_pk, &study_h, modality, gen)? {
                    *studies_changed = true;
                }
            }
            pk
        }
    };
    let inserted = tx.insert_instance(InstanceRow {
        tenant: t.pk,
        series: series_pk,
        uid_h: &sop_h,
        sop_class_h: h(Attr::SOPClassUID),
        object,
        bytes: bytes as i64,
        record: seal(
            t,
            Table::Instances,
            &sop_h,
            &attrs.at_level(Level::Instance),
        )?,
    })?;
    Ok(if inserted {
        Inserted::New
    } else {
        Inserted::Duplicate
    })
}

/// Add `modality` to a study's ModalitiesInStudy (re-sealing its record,
/// which then carries generation `gen`); whether it changed.
fn add_modality(
    tx: &mut dyn RowTx,
    t: &Scope,
    study_pk: i64,
    study_h: &[u8],
    modality: &str,
    gen: i64,
) -> Result<bool, VaultError> {
    let sealed = tx.study_record(study_pk)?;
    let mut rec = open(t, Table::Studies, study_h, &sealed)?;
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
    tx.update_study(study_pk, &seal(t, Table::Studies, study_h, &rec)?, gen)?;
    Ok(true)
}

/// A study row as read for the search cache: decrypted, by row number.
pub(crate) fn open_study(
    t: &Scope,
    pk: i64,
    uid_h: &[u8],
    record: &[u8],
) -> Result<(i64, Attributes), VaultError> {
    Ok((pk, open(t, Table::Studies, uid_h, record)?))
}

/// A value bound to a search's SQL.
pub(crate) enum Param {
    /// An integer (the tenant's row number, an offset).
    Int(i64),
    /// A keyed hash.
    Blob(Vec<u8>),
    /// A row limit; `None` for none.
    Limit(Option<i64>),
}

/// A search as SQL (placeholders written by the backend's `ph`), its
/// values, and what filters the rows it returns.
///
/// The SQL selects, in order: the study's row number, UID hash and record;
/// at the series and instance levels the series' UID hash, record and row
/// number; at the instance level the instance's UID hash and record.
pub(crate) fn plan_search(
    t: &Scope,
    query: &Query,
    matchers: Vec<Matcher>,
    ph: fn(usize) -> String,
) -> (String, Vec<Param>, Collector) {
    let (select, from, alias) = match query.level {
        Level::Study => ("st.pk, st.uid_h, st.record", "studies st", "st"),
        Level::Series => (
            "st.pk, st.uid_h, st.record, se.uid_h, se.record, se.pk",
            "series se JOIN studies st ON st.pk = se.study",
            "se",
        ),
        Level::Instance => (
            "st.pk, st.uid_h, st.record, se.uid_h, se.record, se.pk, i.uid_h, i.record",
            "instances i JOIN series se ON se.pk = i.series JOIN studies st ON st.pk = se.study",
            "i",
        ),
    };
    // The tenant on every joined table lets the database use the (tenant,
    // hash) indexes from whichever side the keys are on.
    let p1 = ph(1);
    let tenants = match query.level {
        Level::Study => format!("st.tenant = {p1}"),
        Level::Series => format!("st.tenant = {p1} AND se.tenant = {p1}"),
        Level::Instance => format!("st.tenant = {p1} AND se.tenant = {p1} AND i.tenant = {p1}"),
    };
    let mut sql = format!("SELECT {select} FROM {from} WHERE {tenants}");
    let mut params = vec![Param::Int(t.pk)];
    let list = |params: &mut Vec<Param>, attr: Attr, values: &[String]| {
        let first = params.len() + 1;
        params.extend(
            values
                .iter()
                .map(|v| Param::Blob(hash(&t.keys, attr, v).to_vec())),
        );
        (first..first + values.len())
            .map(ph)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut filters = Vec::new();
    for m in matchers {
        match m {
            Matcher::Hashes(attr, plain) => {
                let (a, col) = match_column(attr).expect("hashed attributes have a column");
                let list = list(&mut params, attr, &plain);
                sql.push_str(&format!(" AND {a}.{col} IN ({list})"));
            }
            Matcher::StudyModality(plain) => {
                let list = list(&mut params, Attr::Modality, &plain);
                sql.push_str(&format!(
                    " AND EXISTS (SELECT 1 FROM series m WHERE m.study = st.pk AND m.modality_h IN ({list}))"
                ));
            }
            Matcher::Filter(attr, f) => filters.push((attr, f)),
        }
    }
    sql.push_str(&format!(" ORDER BY {alias}.pk"));
    // Without filters on decrypted values, SQL pages the results. An
    // unbounded search (every retrieval) has no LIMIT: SQLite plans with a
    // bound LIMIT's value, so binding it re-parses the statement each time.
    let skip = if !filters.is_empty() {
        query.offset
    } else {
        if query.limit.is_some() || query.offset > 0 {
            let n = params.len();
            sql.push_str(&format!(" LIMIT {} OFFSET {}", ph(n + 1), ph(n + 2)));
            params.push(Param::Limit(query.limit.map(|l| l as i64)));
            params.push(Param::Int(query.offset as i64));
        }
        0
    };
    let collector = Collector {
        level: query.level,
        filters,
        limit: query.limit,
        skip,
        skipped: 0,
        studies: HashMap::new(),
        series: HashMap::new(),
        out: Vec::new(),
    };
    (sql, params, collector)
}

/// The sealed parts of one row a search's SQL returns.
pub(crate) struct SearchRow {
    /// The study's row number, UID hash and record.
    pub(crate) study: (i64, Vec<u8>, Vec<u8>),
    /// The series' UID hash, record and row number (series and instance levels).
    pub(crate) series: Option<(Vec<u8>, Vec<u8>, i64)>,
    /// The instance's UID hash and record (instance level).
    pub(crate) instance: Option<(Vec<u8>, Vec<u8>)>,
}

impl SearchRow {
    /// A row of a search at `level` from its columns, in the order
    /// [`plan_search`]'s SQL selects them: `bytes(i)` and `int(i)` read
    /// column `i`.
    pub(crate) fn read<E>(
        level: Level,
        bytes: impl Fn(usize) -> Result<Vec<u8>, E>,
        int: impl Fn(usize) -> Result<i64, E>,
    ) -> Result<SearchRow, E> {
        Ok(SearchRow {
            study: (int(0)?, bytes(1)?, bytes(2)?),
            series: match level >= Level::Series {
                true => Some((bytes(3)?, bytes(4)?, int(5)?)),
                false => None,
            },
            instance: match level == Level::Instance {
                true => Some((bytes(6)?, bytes(7)?)),
                false => None,
            },
        })
    }
}

/// Decrypts a search's rows, filters them, and pages the matches.
pub(crate) struct Collector {
    level: Level,
    filters: Vec<(Attr, Filter)>,
    limit: Option<usize>,
    skip: usize,
    skipped: usize,
    /// Series and instances share their study's record: decrypted once.
    studies: HashMap<i64, Attributes>,
    /// Instances share their series' record: decrypted once.
    series: HashMap<i64, Attributes>,
    out: Vec<Attributes>,
}

impl Collector {
    /// Whether it has all the results it wants.
    pub(crate) fn full(&self) -> bool {
        self.limit.is_some_and(|l| self.out.len() >= l)
    }

    /// Take one row.
    pub(crate) fn push(&mut self, t: &Scope, row: SearchRow) -> Result<(), VaultError> {
        let (study_pk, uid_h, rec) = row.study;
        let mut attrs = match self.studies.get(&study_pk) {
            Some(s) => s.clone(),
            None => {
                let s = open(t, Table::Studies, &uid_h, &rec)?;
                if self.level > Level::Study {
                    self.studies.insert(study_pk, s.clone());
                }
                s
            }
        };
        if let Some((uid_h, rec, series_pk)) = row.series {
            let series = if self.level == Level::Instance {
                match self.series.get(&series_pk) {
                    Some(s) => s.clone(),
                    None => {
                        let s = open(t, Table::Series, &uid_h, &rec)?;
                        self.series.insert(series_pk, s.clone());
                        s
                    }
                }
            } else {
                open(t, Table::Series, &uid_h, &rec)?
            };
            attrs.merge(series);
        }
        if let Some((uid_h, rec)) = row.instance {
            attrs.merge(open(t, Table::Instances, &uid_h, &rec)?);
        }
        if !self
            .filters
            .iter()
            .all(|(a, f)| f.matches(a.kind(), attrs.get(*a)))
        {
            return Ok(());
        }
        if self.skipped < self.skip {
            self.skipped += 1;
            return Ok(());
        }
        self.out.push(attrs);
        Ok(())
    }

    /// The matches.
    pub(crate) fn finish(self) -> Vec<Attributes> {
        self.out
    }

    /// Whether rows carry a series (and an instance) beside the study.
    pub(crate) fn level(&self) -> Level {
        self.level
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::KeyBytes;

    /// Placeholders numbered as PostgreSQL wants them: every value bound
    /// once, numbered 1..=n in order, whatever keys the query has.
    #[test]
    fn search_placeholders_match_the_values() {
        let scope = Scope {
            pk: 7,
            id: "ab".repeat(16),
            keys: TenantKeys::derive(&KeyBytes::random().unwrap()),
        };
        let queries = [
            Query::new(Level::Study),
            Query::new(Level::Series)
                .with(Attr::StudyInstanceUID, "1.2\\1.3\\1.4")
                .with(Attr::Modality, "CT"),
            Query::new(Level::Instance)
                .with(Attr::ModalitiesInStudy, "MR\\CT")
                .with(Attr::PatientName, "DOE*")
                .with(Attr::SOPClassUID, "1.2.840"),
        ];
        for mut q in queries {
            q.limit = Some(10);
            let (sql, params, found) =
                plan_search(&scope, &q, parse_query(&q).unwrap(), |n| format!("${n}"));
            let numbers: HashSet<usize> = sql
                .split('$')
                .skip(1)
                .map(|s| s.split(|c: char| !c.is_ascii_digit()).next().unwrap())
                .map(|n| n.parse().unwrap())
                .collect();
            assert_eq!(numbers, (1..=params.len()).collect(), "{sql}");
            assert_eq!(found.level(), q.level);
            // Paged in SQL only when nothing is filtered after decrypting.
            let filtered = q.keys.iter().any(|(a, _)| *a == Attr::PatientName);
            assert_eq!(sql.contains("LIMIT"), !filtered, "{sql}");
        }
    }
}
