//! The spool: received data sets made durable as Part 10 files before the
//! sender hears Success (written, fsync'd, renamed, folder fsync'd).

use obscura_batch::process::write_atomically;
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// The data folder's layout (the spool may be elsewhere: a folder shared
/// by the processes of a scale-out setup).
#[derive(Debug, Clone)]
pub struct DataDir {
    root: PathBuf,
    spool: PathBuf,
}

impl DataDir {
    /// Create (if needed) the folders under `root` and the spool folder,
    /// owner-only.
    pub fn open(root: &Path, spool: &Path) -> std::io::Result<DataDir> {
        use std::os::unix::fs::PermissionsExt;
        let d = DataDir {
            root: root.to_path_buf(),
            spool: spool.to_path_buf(),
        };
        for sub in [
            d.root.clone(),
            d.incoming(),
            d.spool(),
            d.quarantine(),
            d.outbox(),
        ] {
            std::fs::create_dir_all(&sub)?;
            std::fs::set_permissions(&sub, std::fs::Permissions::from_mode(0o700))?;
        }
        Ok(d)
    }

    /// The root.
    pub fn root(&self) -> &Path {
        &self.root
    }
    /// Where the protocol layer writes data sets as they arrive.
    pub fn incoming(&self) -> PathBuf {
        self.root.join("incoming")
    }
    /// Durable originals awaiting forwarding.
    pub fn spool(&self) -> PathBuf {
        self.spool.clone()
    }
    /// Originals a destination's profile quarantined.
    pub fn quarantine(&self) -> PathBuf {
        self.root.join("quarantine")
    }
    /// De-identified copies on their way to a remote SCP.
    pub fn outbox(&self) -> PathBuf {
        self.root.join("outbox")
    }
    /// The queue database.
    pub fn queue_db(&self) -> PathBuf {
        self.root.join("queue.sqlite")
    }

    /// Remove leftovers of a previous run: partial incoming data sets and
    /// outbox copies (never acknowledged / always re-made from the spool).
    pub fn clean_transient(&self) {
        for dir in [self.incoming(), self.outbox()] {
            if let Ok(entries) = std::fs::read_dir(&dir) {
                for e in entries.flatten() {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
    }
}

/// A short hash of a UID for logs (UIDs never appear in logs in clear).
pub fn uid_tag(uid: &str) -> String {
    let h = Sha256::digest(uid.trim_end_matches(['\0', ' ']).as_bytes());
    h[..6].iter().map(|b| format!("{b:02x}")).collect()
}

/// The full hash of a UID: the dedupe key in the queue.
pub fn uid_hash(uid: &str) -> String {
    let h = Sha256::digest(uid.trim_end_matches(['\0', ' ']).as_bytes());
    h.iter().map(|b| format!("{b:02x}")).collect()
}

/// fsync a folder, so a rename or a new entry in it survives a crash.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Write `path` durably: through the batch's atomic write (a temporary file
/// in the same folder, renamed into place), with the file fsync'd before the
/// rename and the folder after it. `what` names the file in errors.
fn write_durably<T>(
    path: &Path,
    what: &str,
    write: impl FnOnce(&mut &File) -> std::io::Result<T>,
) -> Result<T, String> {
    let dir = path.parent().ok_or("no parent folder")?;
    let value = write_atomically(path, |f| {
        let mut w = f;
        let value = write(&mut w).map_err(|e| format!("cannot write {what}: {e}"))?;
        f.sync_all()
            .map_err(|e| format!("cannot sync {what}: {e}"))?;
        Ok(value)
    })?;
    sync_dir(dir).map_err(|e| format!("cannot sync folder: {e}"))?;
    Ok(value)
}

/// Write a received data set (bytes without file meta, as in `dataset`) as a
/// Part 10 file named `name` in `spool`, durably. Returns its path and size.
pub fn persist_dataset(
    spool: &Path,
    name: &str,
    dataset: &mut File,
    sop_class_uid: &str,
    sop_instance_uid: &str,
    transfer_syntax_uid: &str,
) -> Result<(PathBuf, u64), String> {
    let mut head = Vec::with_capacity(300);
    obscura_dicom::meta::write_part10_header(
        &mut head,
        sop_class_uid.trim_end_matches(['\0', ' ']),
        sop_instance_uid.trim_end_matches(['\0', ' ']),
        transfer_syntax_uid.trim_end_matches(['\0', ' ']),
    )
    .map_err(|e| format!("cannot write file meta: {e}"))?;
    dataset
        .seek(SeekFrom::Start(0))
        .map_err(|e| format!("cannot read data set: {e}"))?;
    let path = spool.join(name);
    let copied = write_durably(&path, "spool file", |w| {
        w.write_all(&head)?;
        std::io::copy(dataset, w)
    })?;
    Ok((path, head.len() as u64 + copied))
}

/// Copy a file into `dir/name` atomically and durably (quarantine).
pub fn copy_durably(from: &Path, dir: &Path, name: &str) -> Result<PathBuf, String> {
    let mut src = File::open(from).map_err(|e| format!("cannot open spool file: {e}"))?;
    let path = dir.join(name);
    write_durably(&path, "file", |w| std::io::copy(&mut src, w))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn persisted_dataset_is_part10() {
        let dir = tempfile::tempdir().unwrap();
        let data = DataDir::open(dir.path(), &dir.path().join("spool")).unwrap();
        let mut ds = tempfile::tempfile().unwrap();
        // (0008,0060) CS "CT" explicit VR little endian
        ds.write_all(&[0x08, 0x00, 0x60, 0x00, b'C', b'S', 2, 0, b'C', b'T'])
            .unwrap();
        let (path, n) = persist_dataset(
            &data.spool(),
            "x.dcm",
            &mut ds,
            "1.2.840.10008.5.1.4.1.1.2",
            "1.2.3.4",
            "1.2.840.10008.1.2.1",
        )
        .unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len() as u64, n);
        assert_eq!(&bytes[128..132], b"DICM");
        assert!(bytes.ends_with(b"CT"));
        assert_eq!(uid_tag("1.2.3"), uid_tag("1.2.3\0"));
        assert_eq!(uid_hash("1.2.3").len(), 64);
    }
}
