//! Streaming segmented encryption of objects (the STREAM construction, as in
//! age and Tink's streaming AEAD).
//!
//! An object is a header followed by segments:
//!
//! ```text
//! header  "OBSVAULT" | version 1 | log2(segment size) | nonce prefix (7) | wrapped data key (60)
//! segment AES-256-GCM(data key, nonce = prefix (7) | counter (4, BE) | last (1), plaintext) | tag (16)
//! ```
//!
//! Every segment holds exactly `segment size` plaintext bytes except the last,
//! which holds 0 to `segment size` (0 only for an empty object). The counter
//! in the nonce detects reordering; the last-segment flag detects truncation
//! at a segment boundary and extension; the tag detects any changed byte. The
//! data key is random per object, wrapped by the tenant's object subkey and
//! bound to the tenant, the object's name and the rest of the header, so a
//! file moved to another name or tenant does not open. The writer holds one
//! segment in memory, the reader one segment plus one byte.

use crate::keys::{aead, Aead, KeyBytes, TenantKeys, TAG_LEN, WRAPPED_LEN};
use std::io::{self, IoSliceMut, Read, Seek, SeekFrom, Write};

/// The segment size objects are written with: 64 KiB (log2).
pub const DEFAULT_SEGMENT_LOG2: u8 = 16;
/// Smallest and largest segment sizes a header may declare (log2): the
/// reader's memory is bounded by the largest.
const SEGMENT_LOG2_RANGE: std::ops::RangeInclusive<u8> = 6..=24;
/// Length of the per-object random nonce prefix.
pub const PREFIX_LEN: usize = 7;
const MAGIC: &[u8; 8] = b"OBSVAULT";
const VERSION: u8 = 1;
/// Length of the object header.
pub const HEADER_LEN: usize = MAGIC.len() + 2 + PREFIX_LEN + WRAPPED_LEN;
const FIXED_LEN: usize = HEADER_LEN - WRAPPED_LEN;

/// The associated data that binds a data key to its object and header.
fn data_key_aad(context: &[u8], fixed: &[u8]) -> Vec<u8> {
    let mut aad = b"obscura-vault/v1/data-key\0".to_vec();
    aad.extend_from_slice(&(context.len() as u32).to_be_bytes());
    aad.extend_from_slice(context);
    aad.extend_from_slice(fixed);
    aad
}

/// Start an encrypted object on `out`: write its header (a fresh data key,
/// wrapped by `keys` and bound to `context`) and return the segment writer.
pub fn encrypt<W: Write>(
    mut out: W,
    keys: &TenantKeys,
    context: &[u8],
    segment_log2: u8,
) -> io::Result<SegmentWriter<W>> {
    if !SEGMENT_LOG2_RANGE.contains(&segment_log2) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "segment size out of range",
        ));
    }
    let data_key = KeyBytes::random()?;
    let mut header = [0u8; HEADER_LEN];
    header[..MAGIC.len()].copy_from_slice(MAGIC);
    header[MAGIC.len()] = VERSION;
    header[MAGIC.len() + 1] = segment_log2;
    let mut prefix = [0u8; PREFIX_LEN];
    crate::keys::random(&mut prefix)?;
    header[MAGIC.len() + 2..FIXED_LEN].copy_from_slice(&prefix);
    let wrapped = keys.wrap_data_key(&data_key_aad(context, &header[..FIXED_LEN]), &data_key)?;
    header[FIXED_LEN..].copy_from_slice(&wrapped);
    out.write_all(&header)?;
    Ok(SegmentWriter::new(
        out,
        &data_key,
        prefix,
        1 << segment_log2,
    ))
}

/// Open an encrypted object from `input`: read and check its header, unwrap
/// its data key with `keys` for `context`, and return the segment reader.
pub fn decrypt<R: Read>(
    mut input: R,
    keys: &TenantKeys,
    context: &[u8],
) -> io::Result<SegmentReader<R>> {
    let opened = read_header(&mut input, keys, context)?;
    Ok(SegmentReader::new(input, opened))
}

/// What an object's header gives: its segment cipher and size.
struct Opened {
    cipher: Aead,
    prefix: [u8; PREFIX_LEN],
    segment_len: usize,
}

/// Read and check a header, and unwrap its data key.
fn read_header(input: &mut impl Read, keys: &TenantKeys, context: &[u8]) -> io::Result<Opened> {
    let mut header = [0u8; HEADER_LEN];
    input.read_exact(&mut header).map_err(|e| {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            invalid("vault object header is truncated")
        } else {
            e
        }
    })?;
    if &header[..MAGIC.len()] != MAGIC || header[MAGIC.len()] != VERSION {
        return Err(invalid("not a vault object (bad magic or version)"));
    }
    let segment_log2 = header[MAGIC.len() + 1];
    if !SEGMENT_LOG2_RANGE.contains(&segment_log2) {
        return Err(invalid("vault object declares an invalid segment size"));
    }
    let mut prefix = [0u8; PREFIX_LEN];
    prefix.copy_from_slice(&header[MAGIC.len() + 2..FIXED_LEN]);
    let data_key = keys
        .unwrap_data_key(
            &data_key_aad(context, &header[..FIXED_LEN]),
            &header[FIXED_LEN..],
        )
        .ok_or_else(|| {
            invalid("vault object's data key does not open (wrong tenant, name or altered header)")
        })?;
    Ok(Opened {
        cipher: aead(&data_key),
        prefix,
        segment_len: 1 << segment_log2,
    })
}

fn invalid(msg: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

fn nonce(prefix: &[u8; PREFIX_LEN], counter: u32, last: bool) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[..PREFIX_LEN].copy_from_slice(prefix);
    n[PREFIX_LEN..PREFIX_LEN + 4].copy_from_slice(&counter.to_be_bytes());
    n[11] = u8::from(last);
    n
}

/// Encrypts a stream segment by segment. Call [`finish`](Self::finish): an
/// object whose writer is dropped unfinished has no last segment and will
/// not decrypt.
pub struct SegmentWriter<W: Write> {
    inner: W,
    cipher: Aead,
    prefix: [u8; PREFIX_LEN],
    counter: u32,
    segment_len: usize,
    /// Plaintext of the current segment (room for its tag too).
    buf: Vec<u8>,
    /// Bytes written out so far (header excluded).
    written: u64,
}

impl<W: Write> SegmentWriter<W> {
    fn new(inner: W, key: &KeyBytes, prefix: [u8; PREFIX_LEN], segment_len: usize) -> Self {
        SegmentWriter {
            inner,
            cipher: aead(key),
            prefix,
            counter: 0,
            segment_len,
            buf: Vec::with_capacity(segment_len + TAG_LEN),
            written: 0,
        }
    }

    fn seal(&mut self, last: bool) -> io::Result<()> {
        let n = nonce(&self.prefix, self.counter, last);
        let tag = self.cipher.seal_in_place(n, b"", &mut self.buf)?;
        self.buf.extend_from_slice(&tag);
        self.inner.write_all(&self.buf)?;
        self.written += self.buf.len() as u64;
        self.buf.clear();
        self.counter = self
            .counter
            .checked_add(1)
            .ok_or_else(|| io::Error::other("object exceeds 2^32 segments"))?;
        Ok(())
    }

    /// Seal the last segment and return the inner writer (not flushed to
    /// disk: that is the object store's job).
    pub fn finish(mut self) -> io::Result<W> {
        self.seal(true)?;
        self.inner.flush()?;
        Ok(self.inner)
    }

    /// Ciphertext bytes written so far, header excluded.
    pub fn written(&self) -> u64 {
        self.written
    }
}

impl<W: Write> Write for SegmentWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if data.is_empty() {
            return Ok(0);
        }
        // A full segment is sealed only once more data arrives: until then
        // it may be the last one.
        if self.buf.len() == self.segment_len {
            self.seal(false)?;
        }
        let n = data.len().min(self.segment_len - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Decrypts a stream segment by segment. Any altered, reordered, missing or
/// added byte is an `InvalidData` error, never silently short output: bytes
/// are handed out only after their segment's tag was checked.
pub struct SegmentReader<R: Read> {
    inner: R,
    cipher: Aead,
    prefix: [u8; PREFIX_LEN],
    counter: u32,
    segment_len: usize,
    /// One segment's ciphertext and tag, plus one byte read ahead.
    buf: Vec<u8>,
    /// The byte read ahead that starts the next segment.
    ahead: Option<u8>,
    pos: usize,
    end: usize,
    done: bool,
    failed: bool,
}

impl<R: Read> SegmentReader<R> {
    fn new(inner: R, opened: Opened) -> Self {
        let Opened {
            cipher,
            prefix,
            segment_len,
        } = opened;
        SegmentReader {
            inner,
            cipher,
            prefix,
            counter: 0,
            segment_len,
            buf: vec![0u8; segment_len + TAG_LEN + 1],
            ahead: None,
            pos: 0,
            end: 0,
            done: false,
            failed: false,
        }
    }

    fn next_segment(&mut self) -> io::Result<()> {
        let want = self.buf.len();
        let mut filled = 0;
        if let Some(b) = self.ahead.take() {
            self.buf[0] = b;
            filled = 1;
        }
        while filled < want {
            match self.inner.read(&mut self.buf[filled..want]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        // A byte beyond a full segment means this one is not the last.
        let last = filled < want;
        let seg = if last {
            filled
        } else {
            self.ahead = Some(self.buf[want - 1]);
            want - 1
        };
        if seg < TAG_LEN {
            return Err(invalid("vault object is truncated"));
        }
        let body = seg - TAG_LEN;
        let n = nonce(&self.prefix, self.counter, last);
        let (text, rest) = self.buf.split_at_mut(body);
        let tag: [u8; TAG_LEN] = rest[..TAG_LEN].try_into().expect("16 bytes");
        if !self.cipher.open_in_place(n, b"", text, tag) {
            return Err(invalid(
                "vault object failed authentication (altered, truncated or extended)",
            ));
        }
        self.pos = 0;
        self.end = body;
        self.done = last;
        self.counter = self
            .counter
            .checked_add(1)
            .ok_or_else(|| invalid("vault object exceeds 2^32 segments"))?;
        Ok(())
    }

    /// The segment size of this object, in plaintext bytes.
    pub fn segment_len(&self) -> usize {
        self.segment_len
    }
}

impl<R: Read> Read for SegmentReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        if self.failed {
            return Err(invalid("vault object failed authentication"));
        }
        while self.pos == self.end {
            if self.done {
                return Ok(0);
            }
            if let Err(e) = self.next_segment() {
                self.failed = true;
                self.pos = 0;
                self.end = 0;
                return Err(e);
            }
        }
        let n = out.len().min(self.end - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Opens an object's stored bytes from a byte offset (a file seek, a ranged
/// GET).
pub type OpenAt = Box<dyn FnMut(u64) -> io::Result<Box<dyn Read + Send>> + Send>;

/// Open an encrypted object of `len` plaintext bytes for reading at any
/// position: read its header through `open_at(0)`, unwrap its data key, and
/// return a reader that implements [`Seek`].
///
/// `len` comes from the index, which is not trusted for it: segment `i` is
/// decrypted with the last-segment flag set exactly when `len` says it is the
/// last, so a wrong `len` fails authentication instead of truncating or
/// extending the object, and end of file is reported only once the last
/// segment has authenticated and nothing follows it.
pub fn decrypt_seekable(
    mut open_at: OpenAt,
    keys: &TenantKeys,
    context: &[u8],
    len: u64,
) -> io::Result<SeekableReader> {
    let mut stream = open_at(0)?;
    let opened = read_header(&mut stream, keys, context)?;
    let seg = opened.segment_len as u64;
    let segments = len.div_ceil(seg).max(1);
    if segments > u64::from(u32::MAX) + 1 {
        return Err(invalid("vault object exceeds 2^32 segments"));
    }
    Ok(SeekableReader {
        open_at,
        cipher: opened.cipher,
        prefix: opened.prefix,
        segment_len: seg,
        len,
        last: segments - 1,
        pos: 0,
        stream: Some(stream),
        stream_segment: 0,
        buf: Vec::new(),
        buf_segment: None,
        last_checked: false,
        failed: false,
    })
}

/// Decrypts an object at any position, one authenticated segment at a time
/// (see [`decrypt_seekable`]). Seeking is free; the next read reopens the
/// stored object at its segment's offset unless it is already there, so a
/// sequential read never reopens. Memory: one segment.
pub struct SeekableReader {
    open_at: OpenAt,
    cipher: Aead,
    prefix: [u8; PREFIX_LEN],
    segment_len: u64,
    /// Plaintext length.
    len: u64,
    /// Index of the last segment.
    last: u64,
    /// Plaintext position.
    pos: u64,
    /// The stored object, positioned at the start of `stream_segment`.
    stream: Option<Box<dyn Read + Send>>,
    stream_segment: u64,
    /// One segment: ciphertext and tag, then its authenticated plaintext
    /// (empty until a read needs it).
    buf: Vec<u8>,
    /// Which segment `buf` holds, authenticated.
    buf_segment: Option<u64>,
    /// The last segment authenticated and nothing after it: EOF is genuine.
    last_checked: bool,
    failed: bool,
}

impl SeekableReader {
    /// The plaintext length.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the plaintext is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The room a `read_to_end` from the current position uses in the
    /// caller's buffer: the rest of the plaintext, and the tags of the
    /// segments it reads there before decrypting them where they lie. A
    /// buffer with that much spare capacity is never reallocated.
    pub fn read_to_end_room(&self) -> u64 {
        // as `read_rest_into` decides: an empty object still has one
        // segment, its tag read
        if self.pos >= self.len.max(1) {
            return 0;
        }
        (self.len - self.pos) + self.tags_from(self.pos / self.segment_len)
    }

    /// The bytes of the tags of segments `first` to the last.
    fn tags_from(&self, first: u64) -> u64 {
        (self.last - first + 1) * TAG_LEN as u64
    }

    /// The plaintext length of segment `i`.
    fn plain_len(&self, i: u64) -> usize {
        if i < self.last {
            self.segment_len as usize
        } else {
            (self.len - self.last * self.segment_len) as usize
        }
    }

    /// The stored object positioned at segment `i` (reopened if elsewhere).
    fn stream_at(&mut self, i: u64) -> io::Result<&mut Box<dyn Read + Send>> {
        if self.stream.is_none() || self.stream_segment != i {
            self.stream = None;
            let offset = HEADER_LEN as u64 + i * (self.segment_len + TAG_LEN as u64);
            self.stream = Some((self.open_at)(offset)?);
            self.stream_segment = i;
        }
        Ok(self.stream.as_mut().expect("just opened"))
    }

    /// Read segment `i`'s ciphertext into `body` (its plaintext length) and
    /// `tag`, decrypt it in place, and check that nothing follows the last.
    /// On error nothing of `body` is left (ring zeroes it).
    fn load_into(&mut self, i: u64, body: &mut [u8]) -> io::Result<()> {
        let mut tag = [0u8; TAG_LEN];
        read_exact_2(self.stream_at(i)?, body, &mut tag)?;
        self.open_segment(i, body, 0, tag)
    }

    /// Segment `i`'s ciphertext `data[src..]` and `tag` having just been
    /// read from the stream: check that nothing follows the last segment,
    /// and decrypt it to the start of `data` (all of `data` zeroed if it
    /// does not authenticate).
    fn open_segment(
        &mut self,
        i: u64,
        data: &mut [u8],
        src: usize,
        tag: [u8; TAG_LEN],
    ) -> io::Result<()> {
        let last = i == self.last;
        if let (true, Some(stream)) = (last, self.stream.as_mut()) {
            let mut one = [0u8; 1];
            if read_some(stream, &mut one)? != 0 {
                return Err(invalid("vault object is extended past its last segment"));
            }
        }
        self.stream_segment = i + 1;
        let n = nonce(&self.prefix, i as u32, last);
        if !self.cipher.open_within(n, b"", data, src, tag) {
            return Err(invalid(
                "vault object failed authentication (altered, truncated, extended or wrong length)",
            ));
        }
        if last {
            self.last_checked = true;
        }
        Ok(())
    }

    /// Append the rest of the object to `out`: the stored segments are read
    /// straight into its spare capacity with one `read_to_end` (files fill
    /// it without zeroing it first, in a few large reads), then each is
    /// decrypted where it lies and moved down over the tags before it in
    /// the same pass: no copy, no buffer of its own.
    fn read_rest_into(&mut self, out: &mut Vec<u8>) -> io::Result<()> {
        if !self.pos.is_multiple_of(self.segment_len) && self.pos < self.len {
            // the rest of a segment started by earlier reads
            let rest = self.segment_len - self.pos % self.segment_len;
            let rest = rest.min(self.len - self.pos) as usize;
            let at = out.len();
            out.resize(at + rest, 0);
            io::Read::read_exact(self, &mut out[at..])?;
        }
        let first = self.pos / self.segment_len;
        if first <= self.last && self.pos < self.len.max(1) {
            let stored = (self.len - first * self.segment_len) + self.tags_from(first);
            let at = out.len();
            out.reserve(stored as usize);
            if self.stream_at(first)?.take(stored).read_to_end(out)? as u64 != stored {
                return Err(invalid("vault object is truncated"));
            }
            // segment i lies at `from` (ciphertext, tag); its plaintext goes to `to`
            let (mut from, mut to) = (at, at);
            for i in first..=self.last {
                let n = self.plain_len(i);
                let mut tag = [0u8; TAG_LEN];
                tag.copy_from_slice(&out[from + n..from + n + TAG_LEN]);
                self.open_segment(i, &mut out[to..from + n], from - to, tag)?;
                self.pos += n as u64;
                to += n;
                from += n + TAG_LEN;
            }
            out.truncate(to);
        }
        if !self.last_checked {
            self.load(self.last)?;
        }
        Ok(())
    }

    /// Load segment `i` into the buffer.
    fn load(&mut self, i: u64) -> io::Result<()> {
        self.buf_segment = None;
        let n = self.plain_len(i);
        let mut buf = std::mem::take(&mut self.buf);
        if buf.is_empty() {
            // allocated on first need: whole segments read into the
            // caller's buffer never use it
            buf = vec![0u8; self.segment_len as usize + TAG_LEN];
        }
        let r = self.load_into(i, &mut buf[..n]);
        self.buf = buf;
        r?;
        self.buf_segment = Some(i);
        Ok(())
    }

    /// After an error: every later read fails.
    fn fail(&mut self) {
        self.failed = true;
        self.buf_segment = None;
        self.stream = None;
    }

    fn read_inner(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.len {
            if !self.last_checked {
                self.load(self.last)?;
            }
            return Ok(0);
        }
        let i = self.pos / self.segment_len;
        let off = (self.pos % self.segment_len) as usize;
        let n = self.plain_len(i);
        if self.buf_segment != Some(i) {
            if off == 0 && out.len() >= n {
                // A whole segment into the caller's buffer: no copy.
                self.load_into(i, &mut out[..n])?;
                self.pos += n as u64;
                return Ok(n);
            }
            self.load(i)?;
        }
        let k = out.len().min(n - off);
        out[..k].copy_from_slice(&self.buf[off..off + k]);
        self.pos += k as u64;
        Ok(k)
    }
}

impl Read for SeekableReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        if self.failed {
            return Err(invalid("vault object failed authentication"));
        }
        self.read_inner(out).inspect_err(|_| self.fail())
    }

    fn read_to_end(&mut self, out: &mut Vec<u8>) -> io::Result<usize> {
        if self.failed {
            return Err(invalid("vault object failed authentication"));
        }
        let start = out.len();
        match self.read_rest_into(out) {
            Ok(()) => Ok(out.len() - start),
            Err(e) => {
                // no unauthenticated byte may survive
                out.truncate(start);
                self.fail();
                Err(e)
            }
        }
    }
}

impl Seek for SeekableReader {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = target.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek before the start of the object",
            )
        })?;
        Ok(self.pos)
    }
}

/// `read`, retried on `Interrupted`.
fn read_some(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match r.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            other => return other,
        }
    }
}

/// Fill `a` then `b` from `r` (vectored: one system call per segment when
/// the source allows); a short source is a truncated object.
fn read_exact_2(r: &mut impl Read, a: &mut [u8], b: &mut [u8]) -> io::Result<()> {
    let mut bufs = [IoSliceMut::new(a), IoSliceMut::new(b)];
    let mut bufs = &mut bufs[..];
    IoSliceMut::advance_slices(&mut bufs, 0);
    while !bufs.is_empty() {
        match r.read_vectored(bufs) {
            Ok(0) => return Err(invalid("vault object is truncated")),
            Ok(n) => IoSliceMut::advance_slices(&mut bufs, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn keys() -> TenantKeys {
        TenantKeys::derive(&KeyBytes::random().unwrap())
    }

    fn seal_all(keys: &TenantKeys, data: &[u8], log2: u8) -> Vec<u8> {
        let mut w = encrypt(Vec::new(), keys, b"ctx", log2).unwrap();
        // Uneven write sizes, to cross segment boundaries mid-write.
        for chunk in data.chunks(37) {
            w.write_all(chunk).unwrap();
        }
        w.finish().unwrap()
    }

    fn open_all(keys: &TenantKeys, sealed: &[u8], ctx: &[u8]) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        decrypt(sealed, keys, ctx)?.read_to_end(&mut out)?;
        Ok(out)
    }

    fn data(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 + i / 251) as u8).collect()
    }

    #[test]
    fn round_trip_around_64k_boundaries() {
        let k = keys();
        let s = 1usize << DEFAULT_SEGMENT_LOG2;
        for len in [
            0,
            1,
            s - 1,
            s,
            s + 1,
            2 * s - 1,
            2 * s,
            2 * s + 1,
            3 * s + 17,
        ] {
            let plain = data(len);
            let sealed = seal_all(&k, &plain, DEFAULT_SEGMENT_LOG2);
            let segments = len.div_ceil(s).max(1);
            assert_eq!(
                sealed.len(),
                HEADER_LEN + len + segments * TAG_LEN,
                "len {len}"
            );
            assert_eq!(open_all(&k, &sealed, b"ctx").unwrap(), plain, "len {len}");
        }
    }

    #[test]
    fn wrong_context_or_key_is_refused() {
        let k = keys();
        let sealed = seal_all(&k, &data(100), 6);
        assert!(open_all(&k, &sealed, b"other").is_err());
        assert!(open_all(&keys(), &sealed, b"ctx").is_err());
    }

    #[test]
    fn swapped_segments_are_refused() {
        let k = keys();
        let seg = 64 + TAG_LEN;
        let mut sealed = seal_all(&k, &data(64 * 3), 6);
        let (a, b) = (HEADER_LEN, HEADER_LEN + seg);
        let first: Vec<u8> = sealed[a..a + seg].to_vec();
        sealed.copy_within(b..b + seg, a);
        sealed[b..b + seg].copy_from_slice(&first);
        assert!(open_all(&k, &sealed, b"ctx").is_err());
    }

    #[test]
    fn unfinished_writer_does_not_decrypt() {
        let k = keys();
        let mut w = encrypt(Vec::new(), &k, b"ctx", 6).unwrap();
        w.write_all(&data(200)).unwrap();
        // Simulate a crash: take what was written without finishing.
        let partial = std::mem::take(&mut w.inner);
        assert!(open_all(&k, &partial, b"ctx").is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn round_trip(len in 0usize..700, log2 in 6u8..9) {
            let k = keys();
            let plain = data(len);
            let sealed = seal_all(&k, &plain, log2);
            prop_assert_eq!(open_all(&k, &sealed, b"ctx").unwrap(), plain);
        }

        #[test]
        fn any_flipped_byte_is_an_error(len in 0usize..400, at in any::<prop::sample::Index>(), bit in 0u8..8) {
            let k = keys();
            let mut sealed = seal_all(&k, &data(len), 6);
            let i = at.index(sealed.len());
            sealed[i] ^= 1 << bit;
            prop_assert!(open_all(&k, &sealed, b"ctx").is_err());
        }

        #[test]
        fn any_truncation_is_an_error(len in 0usize..400, at in any::<prop::sample::Index>()) {
            let k = keys();
            let sealed = seal_all(&k, &data(len), 6);
            let cut = at.index(sealed.len());
            prop_assert!(open_all(&k, &sealed[..cut], b"ctx").is_err());
        }

        #[test]
        fn any_extension_is_an_error(len in 0usize..400, extra in prop::collection::vec(any::<u8>(), 1..100)) {
            let k = keys();
            let mut sealed = seal_all(&k, &data(len), 6);
            sealed.extend_from_slice(&extra);
            prop_assert!(open_all(&k, &sealed, b"ctx").is_err());
        }

        #[test]
        fn seekable_ranges_equal_the_plaintext(
            len in 0usize..2000,
            log2 in 6u8..9,
            ranges in prop::collection::vec((0usize..2100, 0usize..700, 1usize..300), 1..12),
        ) {
            let k = keys();
            let plain = data(len);
            let sealed = seal_all(&k, &plain, log2);
            let mut r = seekable(&k, sealed, len as u64);
            for (start, n, bufsize) in ranges {
                r.seek(SeekFrom::Start(start as u64)).unwrap();
                let got = read_n(&mut r, n, bufsize).unwrap();
                let end = (start + n).min(len);
                let want = if start >= len { &[][..] } else { &plain[start..end] };
                prop_assert_eq!(got, want);
            }
            // And the whole object from wherever the last range left off.
            r.seek(SeekFrom::Start(0)).unwrap();
            let mut all = Vec::new();
            r.read_to_end(&mut all).unwrap();
            prop_assert_eq!(all, plain);
        }

        #[test]
        fn read_to_end_fits_in_its_room(
            len in 0usize..3000,
            log2 in 6u8..9,
            from in 0usize..3100,
        ) {
            let k = keys();
            let plain = data(len);
            let mut r = seekable(&k, seal_all(&k, &plain, log2), len as u64);
            r.seek(SeekFrom::Start(from as u64)).unwrap();
            let mut out = b"head".to_vec();
            out.reserve_exact(r.read_to_end_room() as usize);
            let (ptr, cap) = (out.as_ptr(), out.capacity());
            r.read_to_end(&mut out).unwrap();
            // not reallocated: no copy of what was read
            prop_assert_eq!((out.as_ptr(), out.capacity()), (ptr, cap));
            prop_assert_eq!(&out[4..], &plain[from.min(len)..]);
        }

        #[test]
        fn read_to_end_appends_the_rest_from_any_position(
            len in 0usize..2000,
            log2 in 6u8..9,
            from in 0usize..2100,
            first in 0usize..300,
            kept in prop::collection::vec(any::<u8>(), 0..20),
        ) {
            let k = keys();
            let plain = data(len);
            let mut r = seekable(&k, seal_all(&k, &plain, log2), len as u64);
            r.seek(SeekFrom::Start(from as u64)).unwrap();
            // a read first, to leave a segment half read
            let head = read_n(&mut r, first, 7).unwrap();
            let mut out = kept.clone();
            r.read_to_end(&mut out).unwrap();
            let start = from.min(len);
            prop_assert_eq!(&head[..], &plain[start..(start + first).min(len)]);
            prop_assert_eq!(&out[..kept.len()], &kept[..]);
            prop_assert_eq!(&out[kept.len()..], &plain[(start + first).min(len)..]);
        }

        #[test]
        fn seekable_refuses_a_flipped_byte_in_a_segment_it_reads(
            len in 1usize..1000,
            at in any::<prop::sample::Index>(),
            bit in 0u8..8,
        ) {
            let k = keys();
            let mut sealed = seal_all(&k, &data(len), 6);
            let i = at.index(sealed.len());
            sealed[i] ^= 1 << bit;
            let Ok(mut r) = decrypt_seekable(opener(sealed), &k, b"ctx", len as u64) else {
                // The header was hit.
                prop_assert!(i < HEADER_LEN);
                return Ok(());
            };
            prop_assert!(i >= HEADER_LEN);
            // The plaintext position of the segment holding byte i.
            let segment = ((i - HEADER_LEN) / (64 + TAG_LEN)) as u64;
            r.seek(SeekFrom::Start(segment * 64)).unwrap();
            let mut one = [0u8; 1];
            prop_assert!(r.read(&mut one).is_err());
            // Sticky: the reader stays failed.
            r.seek(SeekFrom::Start(0)).unwrap();
            prop_assert!(r.read(&mut one).is_err());
        }

        #[test]
        fn seekable_refuses_a_wrong_length(len in 0usize..1000, claimed in 0usize..1100) {
            prop_assume!(claimed != len);
            let k = keys();
            let sealed = seal_all(&k, &data(len), 6);
            let mut r = seekable(&k, sealed, claimed as u64);
            let mut out = Vec::new();
            prop_assert!(r.read_to_end(&mut out).is_err());
        }

        #[test]
        fn seekable_refuses_truncation_and_extension(len in 0usize..400, at in any::<prop::sample::Index>(), extra in prop::collection::vec(any::<u8>(), 1..100)) {
            let k = keys();
            let sealed = seal_all(&k, &data(len), 6);
            let cut = at.index(sealed.len() - HEADER_LEN) + HEADER_LEN;
            let mut out = Vec::new();
            prop_assert!(seekable(&k, sealed[..cut].to_vec(), len as u64).read_to_end(&mut out).is_err());
            let mut longer = sealed.clone();
            longer.extend_from_slice(&extra);
            let mut out = Vec::new();
            prop_assert!(seekable(&k, longer, len as u64).read_to_end(&mut out).is_err());
        }
    }

    fn opener(sealed: Vec<u8>) -> OpenAt {
        let sealed = std::sync::Arc::new(sealed);
        Box::new(move |offset| {
            let mut c = io::Cursor::new(sealed.as_ref().clone());
            c.set_position(offset);
            Ok(Box::new(c) as Box<dyn Read + Send>)
        })
    }

    fn seekable(k: &TenantKeys, sealed: Vec<u8>, len: u64) -> SeekableReader {
        decrypt_seekable(opener(sealed), k, b"ctx", len).unwrap()
    }

    /// Up to `n` bytes, read `bufsize` at a time.
    fn read_n(r: &mut impl Read, n: usize, bufsize: usize) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; bufsize];
        while out.len() < n {
            let want = bufsize.min(n - out.len());
            let got = r.read(&mut buf[..want])?;
            if got == 0 {
                break;
            }
            out.extend_from_slice(&buf[..got]);
        }
        Ok(out)
    }

    #[test]
    fn an_empty_object_is_read_in_its_room() {
        // its one segment's tag is read too (the property test rarely
        // draws an empty object read from its start)
        let k = keys();
        let mut r = seekable(&k, seal_all(&k, b"", 6), 0);
        let mut out = Vec::with_capacity(r.read_to_end_room() as usize);
        let (ptr, cap) = (out.as_ptr(), out.capacity());
        r.read_to_end(&mut out).unwrap();
        assert!(out.is_empty());
        assert_eq!((out.as_ptr(), out.capacity()), (ptr, cap), "reallocated");
    }

    #[test]
    fn seekable_reads_whole_segments_into_large_buffers() {
        let k = keys();
        let plain = data(64 * 5 + 3);
        let mut r = seekable(&k, seal_all(&k, &plain, 6), plain.len() as u64);
        let mut buf = [0u8; 200];
        let mut out = Vec::new();
        loop {
            let n = r.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            // Direct reads hand out one whole segment each.
            assert!(n == 64 || n == 3, "{n}");
            out.extend_from_slice(&buf[..n]);
        }
        assert_eq!(out, plain);
        assert_eq!(r.seek(SeekFrom::End(-3)).unwrap(), 64 * 5);
        assert!(r.seek(SeekFrom::Current(-1000)).is_err());
    }

    /// The on-disk format is standard AES-256-GCM: another implementation
    /// (RustCrypto's) opens what ring sealed, and ring opens what it sealed.
    #[test]
    fn objects_are_standard_aes_gcm() {
        use aes_gcm::aead::{AeadInPlace, KeyInit};
        let k = keys();
        let plain = data(64 * 3 + 10);
        let sealed = seal_all(&k, &plain, 6);
        let header = &sealed[..HEADER_LEN];
        let data_key = k
            .unwrap_data_key(
                &data_key_aad(b"ctx", &header[..FIXED_LEN]),
                &header[FIXED_LEN..],
            )
            .unwrap();
        let other = aes_gcm::Aes256Gcm::new_from_slice(data_key.expose()).unwrap();
        let prefix: [u8; PREFIX_LEN] = header[MAGIC.len() + 2..FIXED_LEN].try_into().unwrap();
        let segments: Vec<&[u8]> = sealed[HEADER_LEN..].chunks(64 + TAG_LEN).collect();
        let mut back = Vec::new();
        let mut resealed = header.to_vec();
        for (i, seg) in segments.iter().enumerate() {
            let last = i + 1 == segments.len();
            let n = nonce(&prefix, i as u32, last);
            let (body, tag) = seg.split_at(seg.len() - TAG_LEN);
            let mut text = body.to_vec();
            other
                .decrypt_in_place_detached((&n).into(), b"", &mut text, tag.into())
                .unwrap();
            back.extend_from_slice(&text);
            let tag = other
                .encrypt_in_place_detached((&n).into(), b"", &mut text)
                .unwrap();
            resealed.extend_from_slice(&text);
            resealed.extend_from_slice(&tag);
        }
        assert_eq!(back, plain);
        assert_eq!(resealed, sealed);
        assert_eq!(open_all(&k, &resealed, b"ctx").unwrap(), plain);
    }
}
