//! Byte sources for obscura-dicom's reader: a range of a spool file (a
//! STOW-RS part), and a stored instance read as a stream (the vault
//! decrypts segment by segment, front to back).

use obscura_dicom::Source;
use std::cell::RefCell;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::sync::Arc;

/// Bytes `start..start + len` of a file.
#[derive(Debug, Clone)]
pub struct FileRange {
    /// The file.
    pub file: Arc<File>,
    /// First byte.
    pub start: u64,
    /// Length.
    pub len: u64,
}

impl FileRange {
    /// A reader over the range.
    pub fn reader(&self) -> FileRangeReader {
        FileRangeReader {
            range: self.clone(),
            pos: 0,
        }
    }
}

impl Source for FileRange {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        if offset + buf.len() as u64 > self.len {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "source ends early",
            ));
        }
        self.file.read_exact_at(buf, self.start + offset)
    }

    fn copy_to(&self, offset: u64, len: u64, out: &mut dyn Write) -> io::Result<()> {
        let mut buf = vec![0u8; 256 * 1024];
        let mut done = 0;
        while done < len {
            let n = ((len - done) as usize).min(buf.len());
            self.read_at(offset + done, &mut buf[..n])?;
            out.write_all(&buf[..n])?;
            done += n as u64;
        }
        Ok(())
    }
}

/// [`Read`] over a [`FileRange`].
pub struct FileRangeReader {
    range: FileRange,
    pos: u64,
}

impl Read for FileRangeReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.range.len - self.pos;
        let n = (buf.len() as u64).min(left) as usize;
        if n == 0 {
            return Ok(0);
        }
        let got = self
            .range
            .file
            .read_at(&mut buf[..n], self.range.start + self.pos)?;
        self.pos += got as u64;
        Ok(got)
    }
}

/// A stream of known length read as a [`Source`]: bytes up to `keep` are
/// remembered (the header, which the reader re-reads as its window
/// grows); beyond that, reads must go forward, and what lies between is
/// read and dropped. Enough for obscura-dicom's reader, which reads the
/// header, then walks the pixel data's fragment headers and the tail
/// forward. A read behind the stream that was not kept is an error.
pub struct StreamSource<R: Read> {
    len: u64,
    keep: u64,
    state: RefCell<StreamState<R>>,
}

struct StreamState<R> {
    inner: R,
    /// Bytes `0..kept.len()` of the stream.
    kept: Vec<u8>,
    /// Position of `inner` (at least `kept.len()`).
    pos: u64,
}

impl<R: Read> StreamSource<R> {
    /// Wrap a stream of `len` bytes, remembering at most its first `keep` bytes.
    pub fn new(inner: R, len: u64, keep: u64) -> Self {
        StreamSource {
            len,
            keep,
            state: RefCell::new(StreamState {
                inner,
                kept: Vec::new(),
                pos: 0,
            }),
        }
    }
}

impl<R: Read> StreamState<R> {
    /// Read forward to `to`, remembering what falls below `keep`.
    fn advance(&mut self, to: u64, keep: u64) -> io::Result<()> {
        let mut scratch = [0u8; 64 * 1024];
        while self.pos < to {
            if self.pos < keep {
                let want = (to.min(keep) - self.pos) as usize;
                let start = self.kept.len();
                self.kept.resize(start + want, 0);
                self.inner.read_exact(&mut self.kept[start..])?;
                self.pos += want as u64;
            } else {
                let n = ((to - self.pos) as usize).min(scratch.len());
                self.inner.read_exact(&mut scratch[..n])?;
                self.pos += n as u64;
            }
        }
        Ok(())
    }
}

impl<R: Read> Source for StreamSource<R> {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let end = offset + buf.len() as u64;
        if end > self.len {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "source ends early",
            ));
        }
        let mut s = self.state.borrow_mut();
        // the part below `keep` comes from what is kept
        let k = end.min(self.keep);
        if offset < k {
            s.advance(k, self.keep)?;
            buf[..(k - offset) as usize].copy_from_slice(&s.kept[offset as usize..k as usize]);
        }
        // the rest is read from the stream, forward only
        let from = offset.max(k);
        if from < end {
            if from < s.pos {
                return Err(io::Error::other("a stored object is read front to back"));
            }
            s.advance(from, self.keep)?;
            s.inner.read_exact(&mut buf[(from - offset) as usize..])?;
            s.pos = end;
        }
        Ok(())
    }

    fn copy_to(&self, offset: u64, len: u64, out: &mut dyn Write) -> io::Result<()> {
        let mut buf = vec![0u8; 64 * 1024];
        let mut done = 0;
        while done < len {
            let n = ((len - done) as usize).min(buf.len());
            self.read_at(offset + done, &mut buf[..n])?;
            out.write_all(&buf[..n])?;
            done += n as u64;
        }
        Ok(())
    }
}

/// Read and drop `n` bytes of `r`.
pub fn skip(r: &mut impl Read, n: u64) -> io::Result<()> {
    let copied = io::copy(&mut r.take(n), &mut io::sink())?;
    if copied < n {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "object ends early",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_source_keeps_the_front_and_reads_forward() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let s = StreamSource::new(&data[..], data.len() as u64, 1000);
        let mut b = [0u8; 10];
        s.read_at(500, &mut b).unwrap();
        assert_eq!(&b, &data[500..510]);
        s.read_at(0, &mut b).unwrap();
        assert_eq!(&b, &data[..10]);
        s.read_at(90_000, &mut b).unwrap();
        assert_eq!(&b, &data[90_000..90_010]);
        s.read_at(995, &mut b).unwrap_err();
        s.read_at(990, &mut b).unwrap();
        assert_eq!(&b, &data[990..1000]);
        let s = StreamSource::new(&data[..], data.len() as u64, 1000);
        s.read_at(995, &mut b).unwrap();
        assert_eq!(&b, &data[995..1005]);
        s.read_at(990, &mut b).unwrap();
        assert_eq!(&b, &data[990..1000]);
        s.read_at(99_990, &mut b).unwrap();
        assert_eq!(&b, &data[99_990..]);
        s.read_at(99_995, &mut b).unwrap_err();
    }
}
