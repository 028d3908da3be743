//! Decrypted study records kept in memory, per tenant, for study searches
//! that filter on decrypted values (names, dates, descriptions, wildcards).
//!
//! Without it such a search decrypts every study record of the tenant
//! (1–2.5 µs each). With it, the first such search of a tenant decrypts
//! them once; later ones filter the plaintext in memory. Each search first
//! brings the cache up to date with one indexed query: the tenant's study
//! generation goes up by one in every transaction that inserts or changes
//! one of its study records, those rows carry it, and the cache fetches
//! (and decrypts) the rows newer than its own generation, in one read
//! snapshot. So stores by this process, another connection or another
//! process are all seen, and a cache never needs rebuilding while stores
//! go on. Shredding a tenant drops its cache.
//!
//! Memory: each study costs its record's compact plaintext (about 150–250
//! bytes for the attributes kept) plus about 40 bytes; the caches of all
//! tenants together stay under a limit (least recently used tenants are
//! dropped first; a tenant larger than the limit is never cached and
//! searched the slow way). Records are zeroed when dropped. The plaintext
//! lives in the process that already holds the tenant's keys, so it grants
//! nothing new to whoever can read that process's memory.

use crate::attrs::Attributes;
use crate::index::Matcher;
use crate::TenantId;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use zeroize::Zeroize;

/// Default limit on the memory all study caches together may use.
pub(crate) const DEFAULT_LIMIT: usize = 256 << 20;

/// Per-entry cost beyond the record's bytes (row number, boxed slice, Vec slot).
const ENTRY_OVERHEAD: usize = 40;

/// One tenant's study records: compact plaintext, by row number.
pub(crate) struct StudyCache {
    /// The tenant's study generation these records are at: every study row
    /// written up to it is here.
    pub(crate) gen: i64,
    entries: Vec<(i64, Box<[u8]>)>,
    bytes: usize,
}

impl StudyCache {
    /// A cache of `records` (in row order) at generation `gen`.
    pub(crate) fn new(gen: i64, records: Vec<(i64, Attributes)>) -> Self {
        let mut c = StudyCache {
            gen,
            entries: Vec::with_capacity(records.len()),
            bytes: 0,
        };
        for (pk, rec) in records {
            c.upsert(pk, &rec);
        }
        c
    }

    /// Bytes of memory this cache holds, roughly.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Insert or replace the record of study row `pk`.
    pub(crate) fn upsert(&mut self, pk: i64, rec: &Attributes) {
        let compact = rec.encode_compact().into_boxed_slice();
        self.bytes += compact.len();
        match self.entries.binary_search_by_key(&pk, |(k, _)| *k) {
            Ok(i) => {
                let mut old = std::mem::replace(&mut self.entries[i].1, compact);
                self.bytes -= old.len();
                old.zeroize();
            }
            Err(i) => {
                self.bytes += ENTRY_OVERHEAD;
                self.entries.insert(i, (pk, compact));
            }
        }
    }

    /// The studies matching every matcher, in row order, after skipping
    /// `offset` matches and up to `limit`: what the SQL path returns.
    pub(crate) fn search(
        &self,
        matchers: &[Matcher],
        offset: usize,
        limit: Option<usize>,
    ) -> Vec<Attributes> {
        let mut out = Vec::new();
        let mut skipped = 0;
        for (_, rec) in &self.entries {
            if limit.is_some_and(|l| out.len() >= l) {
                break;
            }
            if !matchers.iter().all(|m| m.matches_record(rec)) {
                continue;
            }
            if skipped < offset {
                skipped += 1;
                continue;
            }
            out.push(Attributes::decode(rec).expect("cached records were encoded here"));
        }
        out
    }
}

impl Drop for StudyCache {
    fn drop(&mut self) {
        for (_, rec) in &mut self.entries {
            rec.zeroize();
        }
    }
}

/// The study caches of all tenants, under one memory limit.
pub(crate) struct Caches {
    limit: usize,
    tick: u64,
    tenants: HashMap<TenantId, (Arc<RwLock<StudyCache>>, u64)>,
}

impl Caches {
    /// No caches yet, at most `limit` bytes.
    pub(crate) fn new(limit: usize) -> Self {
        Caches {
            limit,
            tick: 0,
            tenants: HashMap::new(),
        }
    }

    /// The limit in bytes (0: no caching).
    pub(crate) fn limit(&self) -> usize {
        self.limit
    }

    /// Change the limit, dropping caches until they fit.
    pub(crate) fn set_limit(&mut self, limit: usize) {
        self.limit = limit;
        self.fit(None);
    }

    /// The tenant's cache, if it has one (perhaps behind the database: see
    /// [`StudyCache::gen`]).
    pub(crate) fn get(&mut self, tenant: &TenantId) -> Option<Arc<RwLock<StudyCache>>> {
        self.tick += 1;
        let tick = self.tick;
        let (cache, used) = self.tenants.get_mut(tenant)?;
        *used = tick;
        Some(cache.clone())
    }

    /// Keep `cache` for `tenant` if it fits (dropping the least recently
    /// used others); returns it either way, for the search at hand.
    pub(crate) fn insert(
        &mut self,
        tenant: &TenantId,
        cache: StudyCache,
    ) -> Arc<RwLock<StudyCache>> {
        let fits = cache.bytes() <= self.limit;
        let cache = Arc::new(RwLock::new(cache));
        self.tenants.remove(tenant);
        if fits {
            self.tick += 1;
            self.tenants
                .insert(tenant.clone(), (cache.clone(), self.tick));
            self.fit(Some(tenant));
        }
        cache
    }

    /// Drop the tenant's cache.
    pub(crate) fn remove(&mut self, tenant: &TenantId) {
        self.tenants.remove(tenant);
    }

    /// Drop least recently used caches (`keep` last) until all fit. The
    /// caller holds no cache's lock.
    pub(crate) fn fit(&mut self, keep: Option<&TenantId>) {
        loop {
            let used: usize = self.tenants.values().map(|(c, _)| read(c).bytes()).sum();
            if used <= self.limit {
                return;
            }
            let victim = self
                .tenants
                .iter()
                .min_by_key(|(t, (_, tick))| (Some(*t) == keep, *tick))
                .map(|(t, _)| t.clone());
            match victim {
                Some(t) => {
                    self.tenants.remove(&t);
                }
                None => return,
            }
        }
    }
}

/// Read-lock a cache (a poisoned lock still holds consistent records:
/// `upsert` cannot panic half-way through a record).
pub(crate) fn read(c: &RwLock<StudyCache>) -> std::sync::RwLockReadGuard<'_, StudyCache> {
    c.read().unwrap_or_else(|p| p.into_inner())
}
