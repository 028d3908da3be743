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

use crate::keys::{aead, KeyBytes, TenantKeys, TAG_LEN, WRAPPED_LEN};
use aes_gcm::aead::AeadInPlace;
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use std::io::{self, Read, Write};

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
    Ok(SegmentReader::new(
        input,
        &data_key,
        prefix,
        1 << segment_log2,
    ))
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
    cipher: Aes256Gcm,
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
        let tag = self
            .cipher
            .encrypt_in_place_detached(Nonce::from_slice(&n), b"", &mut self.buf)
            .map_err(|_| io::Error::other("segment encryption failed"))?;
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
    cipher: Aes256Gcm,
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
    fn new(inner: R, key: &KeyBytes, prefix: [u8; PREFIX_LEN], segment_len: usize) -> Self {
        SegmentReader {
            inner,
            cipher: aead(key),
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
        let tag = Tag::clone_from_slice(&rest[..TAG_LEN]);
        self.cipher
            .decrypt_in_place_detached(Nonce::from_slice(&n), b"", text, &tag)
            .map_err(|_| {
                invalid("vault object failed authentication (altered, truncated or extended)")
            })?;
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
    }
}
