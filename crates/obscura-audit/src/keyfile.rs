//! Reading secret key files: readable by their owner only, or refused.

use crate::Error;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// The text of a secret key file, refused if group or others may read it.
pub fn read_private(path: &Path) -> Result<String, Error> {
    let io = |e| Error::Io(path.to_path_buf(), e);
    let mode = std::fs::metadata(path).map_err(io)?.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(Error::KeyExposed(path.to_path_buf()));
    }
    std::fs::read_to_string(path).map_err(io)
}
