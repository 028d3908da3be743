//! A byte source for obscura-dicom's reader: a range of a spool file (a
//! STOW-RS part). Stored instances are read through obscura-dicom's
//! `SeekSource` (the vault seeks for free and decrypts only the segments a
//! read touches).

use obscura_dicom::source::copy_chunks;
use obscura_dicom::Source;
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
