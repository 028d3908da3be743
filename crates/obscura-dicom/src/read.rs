//! Reading one DICOM file: file meta, bounds-checked preflight of the header,
//! and the location of the pixel data, which stays on disk.

use crate::encoding::{header_syntax, layout_of, Coding, Encoding, EXPLICIT_VR_LE, IMPLICIT_VR_LE};
use crate::error::{redact, ReadError};
use crate::meta::{guess_encoding, read_input_meta, InputMeta};
use crate::preflight::{Limits, Preflight, Stop, Walk};
use crate::source::Source;
use dicom_core::Tag;
use dicom_object::InMemDicomObject;
use std::io::Read;

const UNDEFINED: u32 = 0xFFFF_FFFF;
/// The first window read for the header: most headers fit in it, and less
/// pixel data is read for nothing.
const FIRST_READ: u64 = 16 * 1024;

/// The top-level pixel data element, left in the source and copied raw on write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PixelSpan {
    /// Its tag (Pixel Data, or Float / Double Float Pixel Data).
    pub tag: Tag,
    /// Its VR (explicit VR data sets).
    pub vr: [u8; 2],
    /// Its declared length, `None` for encapsulated (undefined length) data.
    pub declared_len: Option<u32>,
    /// Offset of its value in the data set stream.
    pub value_offset: u64,
    /// Bytes of its value, fragments and sequence delimiter included.
    pub value_bytes: u64,
}

/// A parsed input file: its data set in memory (all but the pixel data), and
/// where the pixel data lies.
pub struct DicomInput<S: Source> {
    /// What the input's file meta declared.
    pub meta: InputMeta,
    /// The transfer syntax UID of the data set (declared or guessed).
    pub transfer_syntax_uid: String,
    /// The data set without top-level pixel data, parsed by dicom-rs.
    pub dataset: InMemDicomObject,
    /// The top-level pixel data, if any.
    pub pixel: Option<PixelSpan>,
    /// The encoding the transfer syntax declares, used for the output.
    pub(crate) encoding: Encoding,
    pub(crate) deflated: bool,
    pub(crate) source: S,
    /// The inflated data set stream, for deflated transfer syntaxes.
    pub(crate) inflated: Option<Vec<u8>>,
}

impl<S: Source> DicomInput<S> {
    /// Read and preflight a DICOM file from `source` within `limits`.
    pub fn read(source: S, limits: Limits) -> Result<Self, ReadError> {
        let meta = read_input_meta(&source)?;
        Self::read_with_meta(source, meta, limits)
    }

    /// [`read`](Self::read), for a caller that has already read the file
    /// meta with [`read_input_meta`] (to decide whether to read at all).
    pub fn read_with_meta(source: S, meta: InputMeta, limits: Limits) -> Result<Self, ReadError> {
        let mut first = vec![0u8; (source.len() - meta.dataset_offset).min(8) as usize];
        source.read_at(meta.dataset_offset, &mut first)?;
        let (transfer_syntax_uid, layout) = match meta.transfer_syntax_uid.as_deref() {
            Some(uid) => {
                let layout = layout_of(uid)
                    .ok_or_else(|| ReadError::UnsupportedTransferSyntax(uid.to_string()))?;
                (uid.to_string(), layout)
            }
            None => {
                let enc = guess_encoding(&first);
                let uid = if enc.explicit_vr {
                    EXPLICIT_VR_LE
                } else {
                    IMPLICIT_VR_LE
                };
                (uid.to_string(), layout_of(uid).expect("standard syntax"))
            }
        };
        // Some writers declare explicit VR and write implicit: read what the
        // bytes are, write what the transfer syntax says.
        let mut read_encoding = layout.encoding;
        if read_encoding == Encoding::EXPLICIT_LE
            && !layout.deflated
            && first.len() >= 8
            && guess_encoding(&first) == Encoding::IMPLICIT_LE
        {
            read_encoding = Encoding::IMPLICIT_LE;
        }
        // Walked from what the bytes are into what the syntax declares, so
        // dicom-rs parses, and the output is, the declared encoding.
        let coding = Coding {
            read: read_encoding,
            write: layout.encoding,
        };
        let inflated = if layout.deflated {
            Some(inflate(
                &source,
                meta.dataset_offset,
                limits.max_inflated_bytes,
            )?)
        } else {
            None
        };
        let (normalized, mut pixel) = match &inflated {
            Some(stream) => preflight(stream.as_slice(), 0, coding, limits)?,
            None => preflight(&source, meta.dataset_offset, coding, limits)?,
        };
        let dataset = InMemDicomObject::read_dataset_with_ts(
            normalized.as_slice(),
            &header_syntax(coding.write),
        )
        .map_err(|e| ReadError::Decode(redact(&e.to_string())))?;
        if let Some(p) = pixel
            .as_mut()
            .filter(|p| !read_encoding.explicit_vr && p.declared_len.is_some())
        {
            p.vr = native_pixel_vr(&dataset, p.tag);
        }
        Ok(DicomInput {
            meta,
            transfer_syntax_uid,
            dataset,
            pixel,
            encoding: layout.encoding,
            deflated: layout.deflated,
            source,
            inflated,
        })
    }

    /// Whether the data set is deflated in the file.
    pub fn is_deflated(&self) -> bool {
        self.deflated
    }

    /// The bytes [`PixelSpan`] offsets point into: the file, or the
    /// inflated data set stream of a deflated transfer syntax.
    pub fn pixel_stream(&self) -> &dyn Source {
        match &self.inflated {
            Some(stream) => stream,
            None => &self.source,
        }
    }
}

/// The VR of native pixel data read from an implicit VR data set: OB for
/// 8-bit samples, OW otherwise; the float pixel data tags have their own.
fn native_pixel_vr(dataset: &InMemDicomObject, tag: Tag) -> [u8; 2] {
    match tag.1 {
        0x0008 => *b"OF",
        0x0009 => *b"OD",
        _ => {
            let bits = dataset
                .get(dicom_dictionary_std::tags::BITS_ALLOCATED)
                .and_then(|e| e.to_int::<u16>().ok())
                .unwrap_or(16);
            if bits <= 8 {
                *b"OB"
            } else {
                *b"OW"
            }
        }
    }
}

/// Walk the data set stream of `src` from `start`, growing the window until
/// the header is complete; then locate the pixel data and walk what follows.
fn preflight<T: Source + ?Sized>(
    src: &T,
    start: u64,
    coding: Coding,
    limits: Limits,
) -> Result<(Vec<u8>, Option<PixelSpan>), ReadError> {
    let stream_len = src.len();
    let remaining = stream_len - start;
    let mut window = remaining.min(FIRST_READ);
    let mut out = Vec::new();
    let (pos, stop) = loop {
        if window > limits.max_header_bytes {
            return Err(ReadError::HeaderTooLarge {
                size: window,
                limit: limits.max_header_bytes,
            });
        }
        let mut buf = vec![0u8; window as usize];
        src.read_at(start, &mut buf)?;
        out.clear();
        let complete = window == remaining;
        match Preflight::new(&buf, start, complete, coding, limits, &mut out).walk_top_level()? {
            Walk::Done { pos, stop } => break (pos as u64, stop),
            Walk::NeedMore => window = remaining.min(window.saturating_mul(4)),
        }
    };
    let Stop::Bulk {
        tag,
        header_len,
        value_len,
        vr,
    } = stop
    else {
        return Ok((out, None));
    };
    let value_offset = start + pos + header_len as u64;
    let value_bytes = match value_len {
        Some(n) => {
            if value_offset + u64::from(n) > stream_len {
                return Err(ReadError::Truncated {
                    tag: format!("({:04X},{:04X})", tag.0, tag.1),
                    offset: start + pos,
                    needed: u64::from(n),
                    available: stream_len - value_offset.min(stream_len),
                });
            }
            u64::from(n)
        }
        None => fragments_len(src, value_offset, coding.read)?,
    };
    let pixel = PixelSpan {
        tag: Tag(tag.0, tag.1),
        vr,
        declared_len: value_len,
        value_offset,
        value_bytes,
    };
    // Whatever follows the pixel data (rarely more than padding or signatures).
    let after = value_offset + value_bytes;
    let tail_len = stream_len - after;
    if tail_len > limits.max_header_bytes {
        return Err(ReadError::HeaderTooLarge {
            size: tail_len,
            limit: limits.max_header_bytes,
        });
    }
    let mut tail = vec![0u8; tail_len as usize];
    src.read_at(after, &mut tail)?;
    match Preflight::new(&tail, after, true, coding, limits, &mut out).walk_top_level()? {
        Walk::Done {
            stop: Stop::End, ..
        } => Ok((out, Some(pixel))),
        _ => Err(ReadError::Malformed {
            offset: after,
            reason: "more than one pixel data element".into(),
        }),
    }
}

/// Length of encapsulated pixel data from `offset` through its sequence
/// delimiter, checking each fragment against the bytes that exist.
fn fragments_len<T: Source + ?Sized>(
    src: &T,
    offset: u64,
    enc: Encoding,
) -> Result<u64, ReadError> {
    let end = src.len();
    let mut pos = offset;
    let mut head = [0u8; 8];
    loop {
        if pos + 8 > end {
            return Err(ReadError::Truncated {
                tag: "(7FE0,0010)".into(),
                offset: pos,
                needed: 8,
                available: end - pos.min(end),
            });
        }
        src.read_at(pos, &mut head)?;
        let tag = (enc.u16(&head), enc.u16(&head[2..]));
        let len = enc.u32(&head[4..]);
        match tag {
            (0xFFFE, 0xE0DD) => return Ok(pos + 8 - offset),
            (0xFFFE, 0xE000) if len != UNDEFINED && pos + 8 + u64::from(len) <= end => {
                pos += 8 + u64::from(len);
            }
            (0xFFFE, 0xE000) => {
                return Err(ReadError::Truncated {
                    tag: "(7FE0,0010)".into(),
                    offset: pos,
                    needed: u64::from(len),
                    available: end - (pos + 8).min(end),
                })
            }
            _ => {
                return Err(ReadError::Malformed {
                    offset: pos,
                    reason: "malformed encapsulated pixel data fragment".into(),
                })
            }
        }
    }
}

/// Inflate a deflated data set stream, refusing to grow past `limit` bytes.
fn inflate<S: Source>(src: &S, offset: u64, limit: u64) -> Result<Vec<u8>, ReadError> {
    let mut compressed = vec![0u8; (src.len() - offset) as usize];
    src.read_at(offset, &mut compressed)?;
    let mut out = Vec::new();
    flate2::read::DeflateDecoder::new(compressed.as_slice())
        .take(limit + 1)
        .read_to_end(&mut out)
        .map_err(|e| ReadError::Inflate(e.to_string()))?;
    if out.len() as u64 > limit {
        return Err(ReadError::HeaderTooLarge {
            size: out.len() as u64,
            limit,
        });
    }
    Ok(out)
}
