//! Random-access byte sources: a file on disk, bytes in memory, or a seekable
//! reader (such as a stored instance in the vault).

use std::cell::RefCell;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;

/// A random-access source of the bytes of one DICOM file.
pub trait Source {
    /// Total length in bytes.
    fn len(&self) -> u64;
    /// Whether the source holds no bytes.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Fill `buf` from `offset`; fails if the source ends first.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()>;
    /// Copy `len` bytes from `offset` to `out`.
    fn copy_to(&self, offset: u64, len: u64, out: &mut dyn Write) -> io::Result<()>;
    /// Copy `len` bytes from `offset` to the end of the file `out`, in the
    /// kernel (copy_file_range) where both ends are files.
    fn copy_to_file(&self, offset: u64, len: u64, out: &File) -> io::Result<()> {
        let mut out = out;
        self.copy_to(offset, len, &mut out)
    }
}

impl Source for [u8] {
    fn len(&self) -> u64 {
        <[u8]>::len(self) as u64
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let start = usize::try_from(offset).map_err(|_| eof())?;
        let end = start.checked_add(buf.len()).ok_or_else(eof)?;
        let src = self.get(start..end).ok_or_else(eof)?;
        buf.copy_from_slice(src);
        Ok(())
    }

    fn copy_to(&self, offset: u64, len: u64, out: &mut dyn Write) -> io::Result<()> {
        let start = usize::try_from(offset).map_err(|_| eof())?;
        let len = usize::try_from(len).map_err(|_| eof())?;
        let end = start.checked_add(len).ok_or_else(eof)?;
        out.write_all(self.get(start..end).ok_or_else(eof)?)
    }
}

impl Source for Vec<u8> {
    fn len(&self) -> u64 {
        self.as_slice().len() as u64
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.as_slice().read_at(offset, buf)
    }

    fn copy_to(&self, offset: u64, len: u64, out: &mut dyn Write) -> io::Result<()> {
        self.as_slice().copy_to(offset, len, out)
    }
}

/// A file opened for reading, with its length taken once.
#[derive(Debug)]
pub struct FileSource {
    file: File,
    len: u64,
}

impl FileSource {
    /// Wrap an open file.
    pub fn new(file: File) -> io::Result<Self> {
        let len = file.metadata()?.len();
        Ok(Self { file, len })
    }
}

impl Source for FileSource {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.file.read_exact_at(buf, offset)
    }

    fn copy_to_file(&self, offset: u64, len: u64, out: &File) -> io::Result<()> {
        let mut from = &self.file;
        from.seek(SeekFrom::Start(offset))?;
        let mut out = out;
        let copied = io::copy(&mut from.take(len), &mut out)?;
        if copied != len {
            return Err(eof());
        }
        Ok(())
    }

    fn copy_to(&self, offset: u64, len: u64, out: &mut dyn Write) -> io::Result<()> {
        let mut remaining = len;
        let mut pos = offset;
        let mut buf = vec![0u8; (256 * 1024).min(len as usize).max(1)];
        while remaining > 0 {
            let n = (remaining as usize).min(buf.len());
            self.file.read_exact_at(&mut buf[..n], pos)?;
            out.write_all(&buf[..n])?;
            pos += n as u64;
            remaining -= n as u64;
        }
        Ok(())
    }
}

fn eof() -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, "source ends early")
}

/// `len` bytes of `src` from `offset` to `out`, `chunk` bytes at a time.
pub fn copy_chunks<S: Source + ?Sized>(
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
