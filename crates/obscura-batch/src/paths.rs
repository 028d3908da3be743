//! Input discovery and the rules that keep output away from input.

use crate::BatchError;
use std::path::{Path, PathBuf};
use walkdir::WalkDir;

/// Whether a secret file (a key, a TLS private key) can be read by anyone but
/// its owner, which Obscura refuses.
pub fn readable_by_others(path: &Path) -> std::io::Result<bool> {
    use std::os::unix::fs::PermissionsExt;
    Ok(std::fs::metadata(path)?.permissions().mode() & 0o077 != 0)
}

/// Every regular file under `input` (or `input` itself), as (absolute path,
/// path relative to the input root), in a stable order.
pub fn discover(input: &Path) -> Result<Vec<(PathBuf, PathBuf)>, BatchError> {
    let meta = std::fs::metadata(input).map_err(|e| BatchError::Input(input.to_path_buf(), e))?;
    if meta.is_file() {
        let name = input
            .file_name()
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("input.dcm"));
        return Ok(vec![(input.to_path_buf(), name)]);
    }
    let mut files = Vec::new();
    for entry in WalkDir::new(input).follow_links(false).sort_by_file_name() {
        let entry = entry.map_err(|e| {
            let path = e.path().unwrap_or(input).to_path_buf();
            BatchError::Input(path, e.into())
        })?;
        if entry.file_type().is_file() {
            let rel = entry
                .path()
                .strip_prefix(input)
                .unwrap_or(entry.path())
                .to_path_buf();
            files.push((entry.path().to_path_buf(), rel));
        }
    }
    Ok(files)
}

/// Refuse an output inside the input (it would be read back as input) or an
/// input inside the output (an output could overwrite an input).
pub fn check_separate(input: &Path, output: &Path) -> Result<(), BatchError> {
    let input =
        std::fs::canonicalize(input).map_err(|e| BatchError::Input(input.to_path_buf(), e))?;
    let input_root = if input.is_file() {
        input.parent().map(Path::to_path_buf).unwrap_or_default()
    } else {
        input
    };
    let output = absolute_lexical(output);
    if output.starts_with(&input_root) {
        return Err(BatchError::OutputInsideInput);
    }
    if input_root.starts_with(&output) {
        return Err(BatchError::InputInsideOutput);
    }
    Ok(())
}

/// The absolute form of a path that may not exist yet: the deepest existing
/// ancestor is canonicalized, the rest appended.
fn absolute_lexical(p: &Path) -> PathBuf {
    let mut existing = p.to_path_buf();
    let mut rest = Vec::new();
    loop {
        if let Ok(c) = std::fs::canonicalize(&existing) {
            let mut out = c;
            out.extend(rest.iter().rev());
            return out;
        }
        match (
            existing.file_name().map(|n| n.to_os_string()),
            existing.parent(),
        ) {
            (Some(name), Some(parent)) => {
                rest.push(name);
                existing = if parent.as_os_str().is_empty() {
                    PathBuf::from(".")
                } else {
                    parent.to_path_buf()
                };
            }
            _ => return p.to_path_buf(),
        }
    }
}
