//! Random-access byte sources: a file on disk or bytes in memory.

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
