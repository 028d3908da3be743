//! Byte sources for obscura-dicom's reader: a range of a spool file (a
//! STOW-RS part), and a stored instance read where it is needed (the vault
//! seeks for free and decrypts only the segments a read touches).

use obscura_dicom::Source;
use std::cell::RefCell;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::sync::Arc;

/// `len` bytes of `src` from `offset` to `out`, `chunk` bytes at a time.
fn copy_chunks<S: Source + ?Sized>(
    src: &S,
    offset: u64,
    len: u64,
    out: &mut dyn Write,
    chunk: usize,
) -> io::Result<()> {
    let mut buf = vec![0u8; chunk];
    let mut done = 0;
    while done < len {
        let n = ((len - done) as usize).min(buf.len());
        src.read_at(offset + done, &mut buf[..n])?;
        out.write_all(&buf[..n])?;
        done += n as u64;
    }
    Ok(())
}

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
        copy_chunks(self, offset, len, out, 256 * 1024)
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

/// A seekable object of known length read as a [`Source`]: bytes up to
/// `keep` are remembered (the header, which the reader re-reads as its
/// window grows); anything beyond is read where it lies, by seeking (a
/// stored instance seeks for free and decrypts only the segments it reads).
pub struct SeekSource<R: Read + Seek> {
    len: u64,
    keep: u64,
    state: RefCell<SeekState<R>>,
}

struct SeekState<R> {
    inner: R,
    /// Bytes `0..kept.len()` of the object.
    kept: Vec<u8>,
}

impl<R: Read + Seek> SeekSource<R> {
    /// Wrap an object of `len` bytes, remembering at most its first `keep` bytes.
    pub fn new(inner: R, len: u64, keep: u64) -> Self {
        SeekSource {
            len,
            keep,
            state: RefCell::new(SeekState {
                inner,
                kept: Vec::new(),
            }),
        }
    }
}

impl<R: Read + Seek> Source for SeekSource<R> {
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
        let s = &mut *self.state.borrow_mut();
        // the part below `keep` comes from what is kept (grown as needed)
        let k = end.min(self.keep);
        if offset < k {
            let have = s.kept.len() as u64;
            if have < k {
                s.inner.seek(SeekFrom::Start(have))?;
                s.kept.resize(k as usize, 0);
                s.inner.read_exact(&mut s.kept[have as usize..])?;
            }
            buf[..(k - offset) as usize].copy_from_slice(&s.kept[offset as usize..k as usize]);
        }
        // the rest is read where it lies
        let from = offset.max(k);
        if from < end {
            s.inner.seek(SeekFrom::Start(from))?;
            s.inner.read_exact(&mut buf[(from - offset) as usize..])?;
        }
        Ok(())
    }

    fn copy_to(&self, offset: u64, len: u64, out: &mut dyn Write) -> io::Result<()> {
        copy_chunks(self, offset, len, out, 64 * 1024)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seek_source_keeps_the_front_and_reads_anywhere() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let s = SeekSource::new(io::Cursor::new(&data[..]), data.len() as u64, 1000);
        let mut b = [0u8; 10];
        s.read_at(500, &mut b).unwrap();
        assert_eq!(&b, &data[500..510]);
        s.read_at(0, &mut b).unwrap();
        assert_eq!(&b, &data[..10]);
        s.read_at(90_000, &mut b).unwrap();
        assert_eq!(&b, &data[90_000..90_010]);
        // behind the last read, beyond what is kept: read where it lies
        s.read_at(50_000, &mut b).unwrap();
        assert_eq!(&b, &data[50_000..50_010]);
        s.read_at(995, &mut b).unwrap();
        assert_eq!(&b, &data[995..1005]);
        s.read_at(990, &mut b).unwrap();
        assert_eq!(&b, &data[990..1000]);
        s.read_at(99_990, &mut b).unwrap();
        assert_eq!(&b, &data[99_990..]);
        s.read_at(99_995, &mut b).unwrap_err();
        let mut out = Vec::new();
        s.copy_to(900, 80_000, &mut out).unwrap();
        assert_eq!(out, &data[900..80_900]);
    }
}
