//! Objects stored **unencrypted**: compiled only with the feature
//! `unencrypted-objects-bench-only`, for benchmarks that measure what
//! encryption costs (bench/web.sh builds a second binary with it). It has
//! the same shape as `segment` (an encrypting writer, a seekable reader),
//! minus the cipher; the index stays encrypted. A vault opened by such a
//! build refuses to start unless the environment variable
//! [`ALLOW_VAR`] is `1`, so a benchmark binary installed by mistake stores
//! nothing.

use crate::keys::TenantKeys;
use crate::segment::OpenAt;
use std::io::{self, Read, Seek, SeekFrom, Write};

/// The variable a benchmark sets to run this build.
pub const ALLOW_VAR: &str = "OBSCURA_UNENCRYPTED_OBJECTS_BENCH_ONLY";

/// Refuse to open a vault unless [`ALLOW_VAR`] is `1`; warn when it is.
pub(crate) fn check_allowed() -> io::Result<()> {
    if std::env::var(ALLOW_VAR).as_deref() != Ok("1") {
        return Err(io::Error::other(
            "this build stores objects unencrypted (a benchmark build): refusing to open a vault",
        ));
    }
    eprintln!("WARNING: objects are stored UNENCRYPTED (benchmark-only build)");
    Ok(())
}

/// A writer that stores `out` as given (the segment writer's stand-in).
pub struct SegmentWriter<W: Write>(W);

/// Start a plain object on `out`.
pub fn encrypt<W: Write>(
    out: W,
    _keys: &TenantKeys,
    _context: &[u8],
    _segment_log2: u8,
) -> io::Result<SegmentWriter<W>> {
    Ok(SegmentWriter(out))
}

impl<W: Write> SegmentWriter<W> {
    /// The inner writer, flushed.
    pub fn finish(mut self) -> io::Result<W> {
        self.0.flush()?;
        Ok(self.0)
    }
}

impl<W: Write> Write for SegmentWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.0.write(data)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

/// Open a plain object of `len` bytes for reading at any position.
pub fn decrypt_seekable(
    open_at: OpenAt,
    _keys: &TenantKeys,
    _context: &[u8],
    len: u64,
) -> io::Result<SeekableReader> {
    Ok(SeekableReader {
        open_at,
        len,
        pos: 0,
        stream: None,
    })
}

/// Reads a plain object anywhere (reopened where a seek moved it).
pub struct SeekableReader {
    open_at: OpenAt,
    len: u64,
    pos: u64,
    stream: Option<Box<dyn Read + Send>>,
}

impl SeekableReader {
    /// The object's length.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The room a `read_to_end` from the current position uses: the rest.
    pub fn read_to_end_room(&self) -> u64 {
        self.len.saturating_sub(self.pos)
    }
}

impl Read for SeekableReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let want = (out.len() as u64).min(self.len.saturating_sub(self.pos)) as usize;
        if want == 0 {
            return Ok(0);
        }
        if self.stream.is_none() {
            self.stream = Some((self.open_at)(self.pos)?);
        }
        let n = self
            .stream
            .as_mut()
            .expect("opened")
            .read(&mut out[..want])?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for SeekableReader {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        }
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before the start"))?;
        if target != self.pos {
            self.stream = None;
            self.pos = target;
        }
        Ok(target)
    }
}
