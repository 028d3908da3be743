//! What the vault's examples share: where their files go, peak RSS, and an
//! object store that discards, so that the index is measured alone.

use obscura_vault::{ObjectKey, ObjectStore, ObjectWriter};
use std::io::{self, Read, Write};

/// The folder for an example's files: `VAULT_BENCH_DIR`, or the system temp
/// folder.
pub fn bench_dir() -> std::path::PathBuf {
    std::env::var_os("VAULT_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir)
}

/// The command line's numbers, in order, each `defaults`' where not given.
pub fn numbers<const N: usize, T>(defaults: [T; N]) -> [T; N]
where
    T: std::str::FromStr + Copy,
    T::Err: std::fmt::Debug,
{
    let given: Vec<T> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("numbers"))
        .collect();
    std::array::from_fn(|i| given.get(i).copied().unwrap_or(defaults[i]))
}

/// The process's peak resident set (VmHWM), in MiB; 0 where unknown.
pub fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

/// Objects that go nowhere: the index is measured alone.
pub struct Discard;

struct DiscardWriter(u64);

impl Write for DiscardWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl ObjectWriter for DiscardWriter {
    fn commit(self: Box<Self>) -> io::Result<u64> {
        Ok(self.0)
    }
}

impl ObjectStore for Discard {
    fn put(&self, _: &ObjectKey) -> io::Result<Box<dyn ObjectWriter>> {
        Ok(Box::new(DiscardWriter(0)))
    }
    fn get(&self, _: &ObjectKey) -> io::Result<Box<dyn Read + Send>> {
        Err(io::ErrorKind::NotFound.into())
    }
    fn delete(&self, _: &ObjectKey) -> io::Result<()> {
        Ok(())
    }
    fn delete_tenant(&self, _: &str) -> io::Result<()> {
        Ok(())
    }
}
