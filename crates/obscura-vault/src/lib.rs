//! The vault: an archive's storage, with every object and every identifying
//! index value encrypted under its tenant's key.
//!
//! It knows nothing of HTTP or DIMSE. By default a [`Vault`] lives in a
//! data folder:
//!
//! ```text
//! data_dir/index.sqlite (+ -wal, -shm)   tenants, studies, series, instances (see `index`)
//! data_dir/objects/<tenant>/<xx>/<name>  encrypted objects (see `segment`, `objects`)
//! ```
//!
//! At scale ([`Storage`]), the index is in PostgreSQL and the objects in an
//! S3 bucket, shared by several processes.
//!
//! Keys: a master key (the caller reads it from a file readable by its owner
//! only) wraps one random key per tenant; each tenant key yields separate
//! subkeys for wrapping object data keys, sealing index records and keyed
//! match hashes (see `keys`). Shredding a tenant destroys its wrapped key,
//! its rows and its objects.

#![warn(missing_docs)]

pub mod attrs;
mod cache;
mod driver;
pub mod index;
pub mod keys;
pub mod objects;
pub mod pg;
#[cfg(feature = "unencrypted-objects-bench-only")]
pub mod plain;
pub mod residence;
mod s3;
pub mod segment;

pub use attrs::{Attr, Attributes, Level};
pub use index::{Database, Query};
pub use keys::MasterKey;
pub use objects::{FolderStore, ObjectInfo, ObjectKey, ObjectStore, ObjectWriter};
pub use s3::{S3Config, S3Credentials, S3Store};

use index::{Index, IndexBackend, Inserted, PgIndex, Scope};
use keys::{KeyBytes, TenantKeys};
use object_cipher::SeekableReader;
use obscura_dicom::{DicomInput, FileSource, Limits};
#[cfg(feature = "unencrypted-objects-bench-only")]
use plain as object_cipher;
/// How objects are sealed: `segment` (AEAD segments), or `plain` in a
/// benchmark-only build (feature `unencrypted-objects-bench-only`).
#[cfg(not(feature = "unencrypted-objects-bench-only"))]
use segment as object_cipher;
use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

/// What went wrong. Messages name attributes, tables and sizes, never values.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// The SQLite index failed.
    #[error("vault index: {0}")]
    Index(#[from] rusqlite::Error),
    /// The PostgreSQL index failed (its message and SQLSTATE, no detail).
    #[error("vault index (PostgreSQL): {0}")]
    Database(String),
    /// The PostgreSQL settings cannot be used as given.
    #[error("vault database settings: {0}")]
    DatabaseConfig(String),
    /// Reading or writing objects failed (an altered object is `InvalidData`).
    #[error("vault storage: {0}")]
    Io(#[from] std::io::Error),
    /// The DICOM header could not be read.
    #[error("reading the DICOM header: {0}")]
    Dicom(#[from] obscura_dicom::ReadError),
    /// No tenant has this id.
    #[error("no such tenant")]
    UnknownTenant,
    /// Another tenant has this name.
    #[error("a tenant with this name exists")]
    TenantExists,
    /// A tenant name must be 1 to 64 characters, none of them control characters.
    #[error("invalid tenant name (1 to 64 characters, no control characters)")]
    InvalidTenantName,
    /// The master key is not the one the vault was created with.
    #[error("the master key does not open this vault")]
    WrongMasterKey,
    /// Stored key material or an index record does not authenticate.
    #[error("{0} failed authentication (altered, moved or under another key)")]
    Tampered(&'static str),
    /// An instance lacks an attribute the index needs.
    #[error("the instance has no {0}")]
    MissingAttribute(Attr),
    /// A search key cannot be used as given.
    #[error("query key {0}: {1}")]
    InvalidQuery(Attr, &'static str),
    /// The tenant has no instance with this SOP Instance UID.
    #[error("no such instance")]
    NotFound,
}

/// A result with a [`VaultError`].
pub type Result<T> = std::result::Result<T, VaultError>;

/// A tenant's id: 32 lowercase hex digits, random.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TenantId(String);

impl TenantId {
    /// Parse an id; `None` unless it is 32 lowercase hex digits.
    pub fn parse(s: &str) -> Option<TenantId> {
        (s.len() == 32 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
            .then(|| TenantId(s.to_string()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for TenantId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A tenant as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    /// Its id.
    pub id: TenantId,
    /// Its name (kept in clear: an organisation's, not a patient's).
    pub name: String,
    /// When it was created, seconds since the epoch.
    pub created: i64,
}

/// What [`Vault::sweep_orphans`] deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    /// Unreferenced objects (including those of tenants that no longer exist).
    pub objects: u64,
    /// Tenants that no longer exist whose objects were deleted.
    pub tenants: u64,
    /// Writes never committed (temporary files).
    pub incomplete: u64,
}

/// What [`Vault::store`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// A new instance, of this many bytes.
    New {
        /// Its size in bytes (as given, before encryption).
        bytes: u64,
    },
    /// The tenant already had this SOP Instance UID; nothing changed.
    Duplicate,
}

/// A stored instance being read: its bytes exactly as given to
/// [`Vault::store`], decrypted and authenticated segment by segment.
///
/// It implements [`Seek`] for frames and byte ranges: a seek costs nothing,
/// and the next read opens the stored object at the segment that holds the
/// position (64 KiB of plaintext per segment), authenticating every segment
/// it reads. A read returns end of file only after the last segment has
/// authenticated, so a wrong size in the index is an error, not a short or
/// long instance.
pub struct InstanceReader {
    inner: SeekableReader,
}

impl InstanceReader {
    /// The instance's size in bytes.
    pub fn len(&self) -> u64 {
        self.inner.len()
    }

    /// Whether the instance is empty.
    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }

    /// The spare capacity a `read_to_end` from the current position uses
    /// in the caller's `Vec` (the rest of the instance and, while it is
    /// decrypted in place, its segments' tags): reserve it and the `Vec` is
    /// never reallocated (no copy of the bytes read).
    pub fn read_to_end_room(&self) -> u64 {
        self.inner.read_to_end_room()
    }
}

impl Read for InstanceReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.inner.read(buf)
    }

    fn read_to_end(&mut self, buf: &mut Vec<u8>) -> std::io::Result<usize> {
        self.inner.read_to_end(buf)
    }
}

impl Seek for InstanceReader {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        self.inner.seek(to)
    }
}

/// Where a vault keeps its index and objects. The default, embedded:
/// SQLite and a folder, both under `data_dir`.
#[derive(Debug, Clone)]
pub struct Storage {
    /// The data folder (the SQLite index and the object folder, unless
    /// `database` and `object_store` say otherwise).
    pub data_dir: PathBuf,
    /// The index in PostgreSQL instead of SQLite.
    pub database: Option<Database>,
    /// Objects in an S3 bucket instead of the data folder.
    pub object_store: Option<S3Config>,
}

impl Storage {
    /// SQLite and a folder under `data_dir`.
    pub fn embedded(data_dir: &Path) -> Storage {
        Storage {
            data_dir: data_dir.to_path_buf(),
            database: None,
            object_store: None,
        }
    }
}

/// Create `dir` (mode 0700) if it is missing.
fn private_folder(dir: &Path) -> Result<()> {
    if !dir.is_dir() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    Ok(())
}

/// The vault: tenants, their keys, the index and the objects.
pub struct Vault {
    /// The one connection that writes.
    index: Mutex<Box<dyn IndexBackend>>,
    /// Connections that only read (WAL: they never wait for the writer).
    readers: Vec<Mutex<Box<dyn IndexBackend>>>,
    next_reader: std::sync::atomic::AtomicUsize,
    objects: Arc<dyn ObjectStore>,
    /// Read-locked while a tenant key is wrapped or unwrapped and its row
    /// read or written; write-locked while the master key is rotated.
    master: std::sync::RwLock<MasterKey>,
    scopes: Mutex<HashMap<TenantId, Arc<Scope>>>,
    studies: Mutex<cache::Caches>,
}

/// How many objects of one batch ([`Vault::store_many`]) are written at once.
pub const WRITERS: usize = 8;

/// How many read connections the index has beside its writer.
const READERS: usize = 2;

/// The meta key of the master key's check value.
pub(crate) const MASTER_CHECK: &str = "master_check";

impl Vault {
    /// Open (creating) the vault in `data_dir` with objects in a folder
    /// under it. The first open records a check value of the master key;
    /// later opens with another key fail with [`VaultError::WrongMasterKey`].
    pub fn open(data_dir: &Path, master_key: MasterKey) -> Result<Vault> {
        Self::open_at(&Storage::embedded(data_dir), master_key)
    }

    /// [`open`](Self::open) with objects in another store.
    pub fn open_with_store(
        data_dir: &Path,
        master_key: MasterKey,
        objects: Box<dyn ObjectStore>,
    ) -> Result<Vault> {
        private_folder(data_dir)?;
        let path = data_dir.join("index.sqlite");
        let index = Index::open(&path)?;
        let readers = (0..READERS)
            .map(|_| Ok(Box::new(Index::open_reader(&path)?) as Box<dyn IndexBackend>))
            .collect::<Result<_>>()?;
        Self::assemble(Box::new(index), readers, objects, master_key)
    }

    /// Open (creating) the vault where `storage` says: the index in SQLite
    /// under its data folder or in PostgreSQL (tables created on open),
    /// objects in a folder under the data folder or in an S3 bucket.
    pub fn open_at(storage: &Storage, master_key: MasterKey) -> Result<Vault> {
        // Made even when nothing of the vault goes there: others keep
        // their files beside it (the grant store).
        private_folder(&storage.data_dir)?;
        let objects: Box<dyn ObjectStore> = match &storage.object_store {
            Some(s3) => Box::new(S3Store::open(s3)?),
            None => Box::new(FolderStore::open(&storage.data_dir.join("objects"))?),
        };
        let Some(db) = &storage.database else {
            return Self::open_with_store(&storage.data_dir, master_key, objects);
        };
        let index = PgIndex::connect(db, true)?;
        let readers = (0..READERS)
            .map(|_| Ok(Box::new(PgIndex::connect(db, false)?) as Box<dyn IndexBackend>))
            .collect::<Result<_>>()?;
        Self::assemble(Box::new(index), readers, objects, master_key)
    }

    fn assemble(
        mut index: Box<dyn IndexBackend>,
        readers: Vec<Box<dyn IndexBackend>>,
        objects: Box<dyn ObjectStore>,
        master_key: MasterKey,
    ) -> Result<Vault> {
        #[cfg(feature = "unencrypted-objects-bench-only")]
        plain::check_allowed()?;
        // The first process to open the vault records its key's check value.
        let check = index.init_meta(MASTER_CHECK, &master_key.check_value()?)?;
        if !master_key.check(&check) {
            return Err(VaultError::WrongMasterKey);
        }
        Ok(Vault {
            index: Mutex::new(index),
            readers: readers.into_iter().map(Mutex::new).collect(),
            next_reader: 0.into(),
            objects: Arc::from(objects),
            master: std::sync::RwLock::new(master_key),
            scopes: Mutex::new(HashMap::new()),
            studies: Mutex::new(cache::Caches::new(cache::DEFAULT_LIMIT)),
        })
    }

    fn master(&self) -> std::sync::RwLockReadGuard<'_, MasterKey> {
        self.master.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Rotate the master key: re-wrap every tenant's key under `new` and
    /// record `new`'s check value, in one index transaction (all tenants or
    /// none), then checkpoint the WAL so the old wrapped keys are gone from
    /// the database files. From then on only `new` opens the vault.
    ///
    /// Once the old master key is destroyed, copies of the index taken
    /// before (backups, snapshots, blocks not yet reused) are useless: in
    /// particular the wrapped key of a tenant shredded before the rotation
    /// opens under no key that still exists. Save `new` (a new key file)
    /// before calling this, and destroy the old key after it returns.
    /// Returns how many tenant keys were re-wrapped. Tenant keys, objects
    /// and records do not change.
    pub fn rotate_master_key(&self, new: MasterKey) -> Result<usize> {
        let mut master = self.master.write().unwrap_or_else(|p| p.into_inner());
        let check = new.check_value()?;
        let n = self.index().rewrap_tenant_keys(
            &|id, wrapped| {
                let key = master
                    .unwrap_tenant_key(id, wrapped)
                    .ok_or(VaultError::Tampered("tenant key"))?;
                Ok(new.wrap_tenant_key(id, &key)?.to_vec())
            },
            &check,
        )?;
        *master = new;
        Ok(n)
    }

    /// [`sweep_orphans_older_than`](Self::sweep_orphans_older_than) one hour.
    pub fn sweep_orphans(&self) -> Result<Swept> {
        self.sweep_orphans_older_than(std::time::Duration::from_secs(3600))
    }

    /// Delete what a crash left in the object store: objects no index row
    /// refers to (a crash between an object's commit and its index
    /// transaction), the objects of tenants that no longer exist (a crash
    /// during a shred, after its key was destroyed), and writes never
    /// committed. Unreferenced objects and uncommitted writes are deleted
    /// only once older than `grace`: a store in progress commits its object
    /// before its index row, so `grace` must exceed the longest store (or
    /// [`store_many`](Self::store_many) batch). A dead tenant's objects go
    /// whatever their age: its key is gone, and no store can add to it.
    /// Needs an object store that can list (the folder store can).
    pub fn sweep_orphans_older_than(&self, grace: std::time::Duration) -> Result<Swept> {
        let before = std::time::SystemTime::now()
            .checked_sub(grace)
            .unwrap_or(std::time::UNIX_EPOCH);
        let mut swept = Swept {
            incomplete: self.objects.sweep_incomplete(before)?,
            ..Swept::default()
        };
        // Folders first, rows second: a tenant's row exists before its
        // first object, so a tenant listed here and missing below is gone.
        let stored = self.objects.tenants()?;
        let live = self.reader().tenant_ids()?;
        for tenant in stored {
            if !live.contains(&tenant) {
                // Its key is gone: nothing of it can be read.
                let n = self.objects.list(&tenant)?.len() as u64;
                self.objects.delete_tenant(&tenant)?;
                swept.objects += n;
                swept.tenants += 1;
                continue;
            }
            // Listed first, referenced second: an object committed and
            // indexed in between is seen as referenced.
            let listed = self.objects.list(&tenant)?;
            let referenced = self.reader().object_names(&tenant)?;
            for obj in listed {
                if obj.modified < before && !referenced.contains(&obj.name) {
                    let key = ObjectKey::new(&tenant, &obj.name)
                        .ok_or(VaultError::Tampered("object name"))?;
                    self.objects.delete(&key)?;
                    swept.objects += 1;
                }
            }
        }
        Ok(swept)
    }

    /// The writing connection.
    fn index(&self) -> MutexGuard<'_, Box<dyn IndexBackend>> {
        self.index.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A reading connection: a free one if there is one, else the next in turn.
    fn reader(&self) -> MutexGuard<'_, Box<dyn IndexBackend>> {
        for r in &self.readers {
            if let Ok(guard) = r.try_lock() {
                return guard;
            }
        }
        let i = self
            .next_reader
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            % self.readers.len();
        self.readers[i].lock().unwrap_or_else(|p| p.into_inner())
    }

    fn caches(&self) -> MutexGuard<'_, cache::Caches> {
        self.studies.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Limit the memory of the study search cache (all tenants together;
    /// default 256 MiB, about a million studies); 0 turns it off. See
    /// `docs/archive.md` for what it costs and gives.
    pub fn set_search_cache_limit(&self, bytes: usize) {
        self.caches().set_limit(bytes);
    }

    /// Create a tenant with a fresh random key, stored wrapped by the master key.
    pub fn create_tenant(&self, name: &str) -> Result<TenantId> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
            return Err(VaultError::InvalidTenantName);
        }
        let mut raw = [0u8; 16];
        keys::random(&mut raw)?;
        let id = TenantId(hex(&raw));
        let key = KeyBytes::random()?;
        let master = self.master();
        let wrapped = master.wrap_tenant_key(id.as_str(), &key)?;
        let inserted = self
            .index()
            .insert_tenant(id.as_str(), name, &wrapped, now())?;
        drop(master);
        if !inserted {
            return Err(VaultError::TenantExists);
        }
        Ok(id)
    }

    /// Every tenant, oldest first.
    pub fn list_tenants(&self) -> Result<Vec<Tenant>> {
        Ok(self
            .index()
            .tenants()?
            .into_iter()
            .map(|t| Tenant {
                id: TenantId(t.id),
                name: t.name,
                created: t.created,
            })
            .collect())
    }

    /// Destroy a tenant: its wrapped key and index rows first (one
    /// transaction; deleted pages are zeroed and the WAL truncated), then its
    /// objects. Other tenants are untouched. Once the key row is gone the
    /// objects cannot be decrypted, even if deleting them is interrupted.
    pub fn shred_tenant(&self, tenant: &TenantId) -> Result<()> {
        if !self.index().delete_tenant(tenant.as_str())? {
            return Err(VaultError::UnknownTenant);
        }
        self.scopes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(tenant);
        self.caches().remove(tenant);
        self.objects.delete_tenant(tenant.as_str())?;
        Ok(())
    }

    /// A secret of `tenant` for a purpose outside the vault, named by
    /// `label` (the web layer's per-grant view keys): derived from the
    /// tenant's key, so it survives master key rotation and is shredded
    /// with the tenant.
    pub fn tenant_secret(&self, tenant: &TenantId, label: &str) -> Result<[u8; 32]> {
        Ok(self.scope(tenant)?.keys.outside_key(label))
    }

    /// The tenant's row and subkeys, its key unwrapped once and cached.
    fn scope(&self, tenant: &TenantId) -> Result<Arc<Scope>> {
        let cached = self
            .scopes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(tenant)
            .cloned();
        if let Some(scope) = cached {
            return Ok(scope);
        }
        let master = self.master();
        let (pk, wrapped) = self
            .reader()
            .wrapped_key(tenant.as_str())?
            .ok_or(VaultError::UnknownTenant)?;
        let key = master
            .unwrap_tenant_key(tenant.as_str(), &wrapped)
            .ok_or(VaultError::Tampered("tenant key"))?;
        drop(master);
        let scope = Arc::new(Scope {
            pk,
            id: tenant.as_str().to_string(),
            keys: TenantKeys::derive(&key),
        });
        self.scopes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(tenant.clone(), scope.clone());
        Ok(scope)
    }

    /// Store an instance: `data` (its Part 10 bytes, streamed, encrypted
    /// segment by segment) and `attrs` (its index attributes; the Study,
    /// Series and SOP Instance UIDs are required). Idempotent by SOP
    /// Instance UID per tenant: a UID the tenant has already is
    /// [`Stored::Duplicate`], and `data` is not read.
    ///
    /// Each store writes a new object under a random name and the index
    /// transaction decides: concurrent stores of one UID cannot overwrite
    /// each other's object, and the loser's object is deleted. A crash
    /// between the object's commit and the index's leaves an unreferenced
    /// object (encrypted; [`sweep_orphans`](Self::sweep_orphans) removes it).
    pub fn store(
        &self,
        tenant: &TenantId,
        attrs: &Attributes,
        data: impl Read + Send,
    ) -> Result<Stored> {
        Ok(self
            .store_many(tenant, std::iter::once((attrs.clone(), data)))?
            .pop()
            .expect("one result per instance"))
    }

    /// Store several instances with one index transaction (one fsync of the
    /// index instead of one each): as [`store`](Self::store) for each,
    /// results in the same order. The objects are written first, up to
    /// [`WRITERS`] at a time (each is durable, file and folder fsync'd,
    /// before the index transaction; the disk serves concurrent fsyncs
    /// together, so a batch costs little more than its slowest object);
    /// then the index rows of all of them are committed together or not at
    /// all (on error, the objects written are deleted). A SOP Instance UID
    /// given twice is stored once, the second [`Stored::Duplicate`].
    pub fn store_many<R: Read + Send>(
        &self,
        tenant: &TenantId,
        items: impl IntoIterator<Item = (Attributes, R)>,
    ) -> Result<Vec<Stored>> {
        let scope = self.scope(tenant)?;
        let mut fresh: Vec<(Attributes, R)> = Vec::new();
        let mut results: Vec<Option<Stored>> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (attrs, data) in items {
            for a in [
                Attr::StudyInstanceUID,
                Attr::SeriesInstanceUID,
                Attr::SOPInstanceUID,
            ] {
                if attrs.get(a).is_none() {
                    return Err(VaultError::MissingAttribute(a));
                }
            }
            let sop = attrs.get(Attr::SOPInstanceUID).unwrap_or_default();
            let sop_h = index::hash(&scope.keys, Attr::SOPInstanceUID, sop);
            if !seen.insert(sop_h) || self.reader().instance_object(&scope, &sop_h)?.is_some() {
                results.push(Some(Stored::Duplicate));
                continue;
            }
            fresh.push((attrs, data));
            results.push(None);
        }
        let (attrs, data): (Vec<Attributes>, Vec<R>) = fresh.into_iter().unzip();
        let mut written = Vec::with_capacity(data.len());
        let mut failure = None;
        for w in self.write_objects(&scope.keys, tenant, data) {
            match w {
                Ok(w) => written.push(w),
                Err(e) => failure = failure.or(Some(e)),
            }
        }
        let inserted = match failure {
            Some(e) => Err(e),
            None => {
                let rows: Vec<(&Attributes, &str, u64)> = attrs
                    .iter()
                    .zip(&written)
                    .map(|(a, (k, n))| (a, k.name(), *n))
                    .collect();
                self.index().insert_instances(&scope, &rows)
            }
        };
        let inserted = match inserted {
            Ok(i) => i,
            Err(e) => {
                for (key, _) in &written {
                    let _ = self.objects.delete(key);
                }
                return Err(e);
            }
        };
        let mut news = written.iter().zip(&inserted);
        let mut out = Vec::with_capacity(results.len());
        for r in results {
            out.push(match r {
                Some(s) => s,
                None => {
                    let ((key, bytes), ins) = news.next().expect("one row per object");
                    match ins {
                        Inserted::New => Stored::New { bytes: *bytes },
                        Inserted::Duplicate => {
                            self.objects.delete(key)?;
                            Stored::Duplicate
                        }
                    }
                }
            });
        }
        Ok(out)
    }

    /// Write each of `data` as a new object of `tenant` under a random
    /// name, up to [`WRITERS`] at a time; results in the same order. After
    /// a failure no further object is started (those not started are
    /// `Interrupted` errors).
    fn write_objects<R: Read + Send>(
        &self,
        keys: &TenantKeys,
        tenant: &TenantId,
        data: Vec<R>,
    ) -> Vec<Result<(ObjectKey, u64)>> {
        let n = data.len();
        let queue = Mutex::new(data.into_iter().enumerate());
        let failed = std::sync::atomic::AtomicBool::new(false);
        let work = || {
            let mut done = Vec::new();
            while !failed.load(std::sync::atomic::Ordering::Relaxed) {
                let next = queue.lock().unwrap_or_else(|p| p.into_inner()).next();
                let Some((i, r)) = next else { break };
                let w = self.new_object(keys, tenant, r);
                if w.is_err() {
                    failed.store(true, std::sync::atomic::Ordering::Relaxed);
                }
                done.push((i, w));
            }
            done
        };
        let mut out: Vec<Option<Result<(ObjectKey, u64)>>> = (0..n).map(|_| None).collect();
        std::thread::scope(|s| {
            let helpers: Vec<_> = (1..WRITERS.min(n)).map(|_| s.spawn(work)).collect();
            let mine = work();
            let theirs = helpers
                .into_iter()
                .flat_map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)));
            for (i, w) in mine.into_iter().chain(theirs) {
                out[i] = Some(w);
            }
        });
        out.into_iter()
            .map(|w| {
                w.unwrap_or_else(|| {
                    Err(std::io::Error::new(
                        std::io::ErrorKind::Interrupted,
                        "not written: another object of the batch failed",
                    )
                    .into())
                })
            })
            .collect()
    }

    /// Encrypt `data` into a new object of `tenant`, durable once this returns.
    fn new_object(
        &self,
        keys: &TenantKeys,
        tenant: &TenantId,
        data: impl Read,
    ) -> Result<(ObjectKey, u64)> {
        let mut raw = [0u8; 16];
        keys::random(&mut raw)?;
        let key = ObjectKey::new(tenant.as_str(), &hex(&raw)).expect("hex names");
        let bytes = self.write_object(keys, &key, data)?;
        Ok((key, bytes))
    }

    /// Encrypt `data` into the object `key`; returns the plaintext size.
    fn write_object(&self, keys: &TenantKeys, key: &ObjectKey, mut data: impl Read) -> Result<u64> {
        let out = self.objects.put(key)?;
        let mut w = object_cipher::encrypt(
            out,
            keys,
            &object_context(key),
            segment::DEFAULT_SEGMENT_LOG2,
        )?;
        let mut buf = vec![0u8; 1 << segment::DEFAULT_SEGMENT_LOG2];
        let mut total = 0u64;
        loop {
            let n = match data.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            };
            w.write_all(&buf[..n])?;
            total += n as u64;
        }
        w.finish()?.commit()?;
        Ok(total)
    }

    /// Store a DICOM file: its index attributes read from its header with
    /// obscura-dicom (bounded; pixel data stays on disk), then its bytes
    /// streamed.
    pub fn store_file(&self, tenant: &TenantId, path: &Path) -> Result<Stored> {
        let input = DicomInput::read(
            FileSource::new(std::fs::File::open(path)?)?,
            Limits::default(),
        )?;
        let attrs = Attributes::from_dicom(&input);
        drop(input);
        self.store(tenant, &attrs, std::fs::File::open(path)?)
    }

    /// Read a stored instance back, byte-exact, decrypting as it streams.
    pub fn open_instance(
        &self,
        tenant: &TenantId,
        sop_instance_uid: &str,
    ) -> Result<InstanceReader> {
        let scope = self.scope(tenant)?;
        let sop_h = index::hash(&scope.keys, Attr::SOPInstanceUID, sop_instance_uid);
        let (name, len) = self
            .reader()
            .instance_object(&scope, &sop_h)?
            .ok_or(VaultError::NotFound)?;
        let key =
            ObjectKey::new(tenant.as_str(), &name).ok_or(VaultError::Tampered("object name"))?;
        let context = object_context(&key);
        let objects = self.objects.clone();
        let open_at: segment::OpenAt = Box::new(move |offset| objects.get_from(&key, offset));
        let inner = object_cipher::decrypt_seekable(open_at, &scope.keys, &context, len)?;
        Ok(InstanceReader { inner })
    }

    /// Search a tenant's studies, series or instances; each result holds the
    /// decrypted attributes of its level and the levels above.
    ///
    /// Study searches that filter on decrypted values use the tenant's
    /// study cache (see [`set_search_cache_limit`](Self::set_search_cache_limit)):
    /// the first one decrypts every study record of the tenant, later ones
    /// filter in memory until a study record changes.
    pub fn search(&self, tenant: &TenantId, query: &Query) -> Result<Vec<Attributes>> {
        let scope = self.scope(tenant)?;
        let matchers = index::parse_query(query)?;
        if query.level == Level::Study
            && matchers.iter().any(index::Matcher::is_filter)
            && self.caches().limit() > 0
        {
            let cached = self.caches().get(tenant);
            let cache = match cached {
                Some(cache) => {
                    // Bring it up to date: the study rows written since its
                    // generation (usually none; a few while stores go on).
                    let mut c = cache.write().unwrap_or_else(|p| p.into_inner());
                    let (gen, changed) = self.reader().studies_since(&scope, Some(c.gen))?;
                    if gen > c.gen {
                        for (pk, rec) in &changed {
                            c.upsert(*pk, rec);
                        }
                        c.gen = gen;
                    }
                    drop(c);
                    self.caches().fit(Some(tenant));
                    cache
                }
                None => {
                    let (gen, records) = self.reader().studies_since(&scope, None)?;
                    let fresh = cache::StudyCache::new(gen, records);
                    self.caches().insert(tenant, fresh)
                }
            };
            let found = cache::read(&cache).search(&matchers, query.offset, query.limit);
            return Ok(found
                .into_iter()
                .map(Attributes::without_owner_only)
                .collect());
        }
        let found = self.reader().search(&scope, query, matchers)?;
        Ok(found
            .into_iter()
            .map(Attributes::without_owner_only)
            .collect())
    }

    /// Every study record of a tenant, with the owner-only attributes
    /// ([`Attr::is_owner_only`]): for the data owner's breach-impact report,
    /// never for an answer to a client.
    pub fn owner_studies(&self, tenant: &TenantId) -> Result<Vec<Attributes>> {
        let scope = self.scope(tenant)?;
        let (_, records) = self.reader().studies_since(&scope, None)?;
        Ok(records.into_iter().map(|(_, a)| a).collect())
    }
}

/// What an object's data key is bound to: its tenant and name.
fn object_context(key: &ObjectKey) -> Vec<u8> {
    format!("{}/{}", key.tenant(), key.name()).into_bytes()
}

/// Seconds since the epoch.
fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Lowercase hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
