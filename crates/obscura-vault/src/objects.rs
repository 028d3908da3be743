//! Object storage behind a small trait: put a stream (visible only once
//! complete and durable), get a stream, delete. Objects arrive here already
//! encrypted; a store sees only ciphertext and names that leak nothing.
//!
//! The folder backend lays objects out as
//! `<root>/<tenant id>/<first 2 hex digits>/<32 hex digits>`, the name being
//! random (never a UID). The S3 backend (`s3.rs`) fits the same trait:
//! `put` a PUT or a multipart upload completed by `commit` and aborted on
//! drop, `get_from` a ranged GET, `delete_tenant` a listing of the tenant's
//! prefix.

use std::fs::{self, File};
use std::io::{self, Read, Seek, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Where an object lives: its tenant's id and its name (both lowercase hex).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ObjectKey {
    tenant: String,
    name: String,
}

impl ObjectKey {
    /// A key from a tenant id and an object name; `None` unless both are
    /// non-empty lowercase hex (they become path components or key prefixes).
    pub fn new(tenant: &str, name: &str) -> Option<Self> {
        let hex = |s: &str| {
            !s.is_empty()
                && s.len() <= 64
                && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        };
        (hex(tenant) && hex(name) && name.len() >= 4).then(|| ObjectKey {
            tenant: tenant.to_string(),
            name: name.to_string(),
        })
    }

    /// The tenant's id.
    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// The object's name within its tenant.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// A backend that holds encrypted objects.
pub trait ObjectStore: Send + Sync {
    /// Start writing the object `key`; nothing is visible under `key` until
    /// [`ObjectWriter::commit`], which replaces any object already there.
    fn put(&self, key: &ObjectKey) -> io::Result<Box<dyn ObjectWriter>>;
    /// Stream the object `key` (`NotFound` if there is none).
    fn get(&self, key: &ObjectKey) -> io::Result<Box<dyn Read + Send>>;
    /// Stream the object `key` from byte `offset` on (a seek, a ranged GET).
    /// The default reads and discards the bytes before `offset`.
    fn get_from(&self, key: &ObjectKey, offset: u64) -> io::Result<Box<dyn Read + Send>> {
        let mut r = self.get(key)?;
        io::copy(&mut (&mut r).take(offset), &mut io::sink())?;
        Ok(r)
    }
    /// Remove the object `key` (no error if there is none).
    fn delete(&self, key: &ObjectKey) -> io::Result<()>;
    /// Remove every object of `tenant`.
    fn delete_tenant(&self, tenant: &str) -> io::Result<()>;
    /// The committed objects of `tenant`, with when each was written
    /// (for sweeping orphans). The default: not supported.
    fn list(&self, _tenant: &str) -> io::Result<Vec<ObjectInfo>> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "this object store cannot list objects",
        ))
    }
    /// The tenants that have objects (for sweeping orphans). The default:
    /// not supported.
    fn tenants(&self) -> io::Result<Vec<String>> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "this object store cannot list tenants",
        ))
    }
    /// Remove writes that were never committed nor aborted (a crash) and
    /// began before `before`; how many. The default: none.
    fn sweep_incomplete(&self, _before: SystemTime) -> io::Result<u64> {
        Ok(0)
    }
}

/// An object as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Its name within its tenant.
    pub name: String,
    /// When it was written.
    pub modified: SystemTime,
}

/// An object being written. Dropped without [`commit`](Self::commit), it
/// leaves nothing behind.
pub trait ObjectWriter: Write + Send {
    /// Make the object durable and visible under its key, atomically;
    /// returns its size in bytes.
    fn commit(self: Box<Self>) -> io::Result<u64>;
}

/// Objects in a local folder: temp file, fsync, rename, fsync of the folder.
#[derive(Debug, Clone)]
pub struct FolderStore {
    root: PathBuf,
}

impl FolderStore {
    /// A store rooted at `root` (created, mode 0700, if missing).
    pub fn open(root: &Path) -> io::Result<Self> {
        private_dir(root)?;
        Ok(FolderStore {
            root: root.to_path_buf(),
        })
    }

    fn shard(&self, key: &ObjectKey) -> PathBuf {
        self.root.join(&key.tenant).join(&key.name[..2])
    }

    fn path(&self, key: &ObjectKey) -> PathBuf {
        self.shard(key).join(&key.name)
    }
}

/// Create `dir` and its missing parents with mode 0700; fsync the parent of
/// each folder created, so the new entries survive a crash.
fn private_dir(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        private_dir(parent)?;
    }
    match fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(()),
        Err(e) => return Err(e),
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        sync_dir(parent)?;
    }
    Ok(())
}

/// The entries of `dir`; none if it does not exist.
fn read_dir_or_empty(dir: &Path) -> io::Result<Box<dyn Iterator<Item = io::Result<fs::DirEntry>>>> {
    match fs::read_dir(dir) {
        Ok(it) => Ok(Box::new(it)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Box::new(std::iter::empty())),
        Err(e) => Err(e),
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

impl ObjectStore for FolderStore {
    fn put(&self, key: &ObjectKey) -> io::Result<Box<dyn ObjectWriter>> {
        let shard = self.shard(key);
        private_dir(&shard)?;
        let mut suffix = [0u8; 8];
        crate::keys::random(&mut suffix)?;
        let tmp = shard.join(format!(".tmp-{}", crate::hex(&suffix)));
        let file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        Ok(Box::new(FolderWriter {
            file,
            tmp,
            dest: self.path(key),
            bytes: 0,
            committed: false,
        }))
    }

    fn get(&self, key: &ObjectKey) -> io::Result<Box<dyn Read + Send>> {
        Ok(Box::new(File::open(self.path(key))?))
    }

    fn get_from(&self, key: &ObjectKey, offset: u64) -> io::Result<Box<dyn Read + Send>> {
        let mut f = File::open(self.path(key))?;
        f.seek(io::SeekFrom::Start(offset))?;
        Ok(Box::new(f))
    }

    fn delete(&self, key: &ObjectKey) -> io::Result<()> {
        match fs::remove_file(self.path(key)) {
            Ok(()) => sync_dir(&self.shard(key)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn list(&self, tenant: &str) -> io::Result<Vec<ObjectInfo>> {
        let mut out = Vec::new();
        if ObjectKey::new(tenant, "0000").is_none() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "tenant id is not hex",
            ));
        }
        for shard in read_dir_or_empty(&self.root.join(tenant))? {
            let shard = shard?;
            if !shard.file_type()?.is_dir() {
                continue;
            }
            for entry in read_dir_or_empty(&shard.path())? {
                let entry = entry?;
                let name = entry.file_name();
                let Some(name) = name.to_str() else { continue };
                if ObjectKey::new(tenant, name).is_none() || !entry.file_type()?.is_file() {
                    continue;
                }
                out.push(ObjectInfo {
                    name: name.to_string(),
                    modified: entry.metadata()?.modified()?,
                });
            }
        }
        Ok(out)
    }

    fn tenants(&self) -> io::Result<Vec<String>> {
        let mut out = Vec::new();
        for entry in read_dir_or_empty(&self.root)? {
            let entry = entry?;
            let name = entry.file_name();
            if let Some(name) = name.to_str() {
                if ObjectKey::new(name, "0000").is_some() && entry.file_type()?.is_dir() {
                    out.push(name.to_string());
                }
            }
        }
        Ok(out)
    }

    fn sweep_incomplete(&self, before: SystemTime) -> io::Result<u64> {
        let mut n = 0;
        for tenant in self.tenants()? {
            for shard in read_dir_or_empty(&self.root.join(&tenant))? {
                let shard = shard?;
                if !shard.file_type()?.is_dir() {
                    continue;
                }
                for entry in read_dir_or_empty(&shard.path())? {
                    let entry = entry?;
                    let stale = entry
                        .file_name()
                        .to_str()
                        .is_some_and(|n| n.starts_with(".tmp-"))
                        && entry.metadata()?.modified()? < before;
                    if stale {
                        match fs::remove_file(entry.path()) {
                            Ok(()) => n += 1,
                            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                            Err(e) => return Err(e),
                        }
                    }
                }
            }
        }
        Ok(n)
    }

    fn delete_tenant(&self, tenant: &str) -> io::Result<()> {
        if ObjectKey::new(tenant, "0000").is_none() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "tenant id is not hex",
            ));
        }
        match fs::remove_dir_all(self.root.join(tenant)) {
            Ok(()) => sync_dir(&self.root),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// A temp file in the object's own folder, renamed into place on commit.
struct FolderWriter {
    file: File,
    tmp: PathBuf,
    dest: PathBuf,
    bytes: u64,
    committed: bool,
}

impl Write for FolderWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl ObjectWriter for FolderWriter {
    fn commit(mut self: Box<Self>) -> io::Result<u64> {
        self.file.sync_all()?;
        fs::rename(&self.tmp, &self.dest)?;
        self.committed = true;
        if let Some(dir) = self.dest.parent() {
            sync_dir(dir)?;
        }
        Ok(self.bytes)
    }
}

impl Drop for FolderWriter {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_is_invisible_until_commit_and_drop_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = FolderStore::open(&dir.path().join("objects")).unwrap();
        let key = ObjectKey::new("ab12", "cdef0123").unwrap();
        let mut w = store.put(&key).unwrap();
        w.write_all(b"hello").unwrap();
        assert!(store.get(&key).is_err());
        assert_eq!(w.commit().unwrap(), 5);
        let mut back = Vec::new();
        store.get(&key).unwrap().read_to_end(&mut back).unwrap();
        assert_eq!(back, b"hello");

        let mut w = store.put(&key).unwrap();
        w.write_all(b"partial").unwrap();
        drop(w);
        let shard = dir.path().join("objects/ab12/cd");
        let names: Vec<_> = fs::read_dir(&shard)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("cdef0123")]);
        let mut back = Vec::new();
        store.get(&key).unwrap().read_to_end(&mut back).unwrap();
        assert_eq!(back, b"hello");

        store.delete(&key).unwrap();
        store.delete(&key).unwrap();
        assert!(store.get(&key).is_err());
        store.delete_tenant("ab12").unwrap();
        assert!(!dir.path().join("objects/ab12").exists());
    }

    #[test]
    fn keys_are_hex_only() {
        assert!(ObjectKey::new("ab", "../x").is_none());
        assert!(ObjectKey::new("", "abcd").is_none());
        assert!(ObjectKey::new("AB", "abcd").is_none());
        assert!(ObjectKey::new("ab", "abc").is_none());
    }
}
