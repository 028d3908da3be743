//! The preflight: a bounds-checked walk over a data set's bytes that rewrites
//! it into a form dicom-rs can parse safely, before dicom-rs sees it.
//!
//! dicom-rs trusts declared lengths (a 280-byte file declaring 4 GB makes it
//! allocate 4 GB), recurses without limit, and cannot read UN of undefined
//! length (CP-246). This walk checks every length against the bytes that
//! exist, caps nesting depth, and re-emits the data set with:
//! - sequences and items in undefined-length form (so dropping or converting
//!   nested content never invalidates an enclosing length),
//! - UN elements of standard attributes relabelled with their dictionary VR,
//!   and UN sequences (implicit VR LE inside) re-encoded as real sequences,
//! - group lengths, stray file meta elements and trailing padding dropped.
//!
//! It stops at the top-level pixel data element, whose value the reader
//! copies as raw bytes without ever decoding it.

use crate::encoding::{has_long_length, is_known_vr, Coding, Encoding};
use crate::error::ReadError;
use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry};
use dicom_core::{Tag, VR};
use dicom_dictionary_std::StandardDataDictionary;

const UNDEFINED: u32 = 0xFFFF_FFFF;
const ITEM: (u16, u16) = (0xFFFE, 0xE000);
const ITEM_END: (u16, u16) = (0xFFFE, 0xE00D);
const SEQUENCE_END: (u16, u16) = (0xFFFE, 0xE0DD);

/// Tags whose value is bulk sample data that the reader copies raw when they
/// occur at the top level: Float Pixel Data, Double Float Pixel Data, Pixel Data.
pub fn is_bulk_pixel_tag(group: u16, element: u16) -> bool {
    group == 0x7FE0 && matches!(element, 0x0008 | 0x0009 | 0x0010)
}

/// Where the top-level walk stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// The data set ended.
    End,
    /// A top-level pixel data element starts at the returned position.
    Bulk {
        /// Its tag.
        tag: (u16, u16),
        /// Length of its element header in bytes.
        header_len: usize,
        /// Its declared length (`None` when undefined: encapsulated fragments).
        value_len: Option<u32>,
        /// Its VR bytes as they will be written (explicit VR only).
        vr: [u8; 2],
    },
}

/// Outcome of walking a buffer that may hold only a prefix of the stream.
#[derive(Debug)]
pub enum Walk {
    /// The walk finished (at the end, or at bulk pixel data).
    Done {
        /// Position in the buffer where the walk stopped.
        pos: usize,
        /// Why it stopped.
        stop: Stop,
    },
    /// The buffer ends inside an element: give more bytes and walk again.
    NeedMore,
}

/// Limits that keep a hostile file from exhausting memory or stack.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Deepest allowed sequence nesting.
    pub max_depth: usize,
    /// Largest non-pixel part of a file, in bytes.
    pub max_header_bytes: u64,
    /// Largest inflated data set of a deflated file, in bytes.
    pub max_inflated_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_depth: 64,
            max_header_bytes: 64 << 20,
            max_inflated_bytes: 512 << 20,
        }
    }
}

enum Step<T> {
    Ok(T),
    NeedMore,
}

type StepResult<T> = Result<Step<T>, ReadError>;

macro_rules! step {
    ($e:expr) => {
        match $e? {
            Step::Ok(v) => v,
            Step::NeedMore => return Ok(Step::NeedMore),
        }
    };
}

/// The walker over one buffer, appending the normalized data set to `out`.
pub struct Preflight<'a> {
    buf: &'a [u8],
    /// Offset of `buf[0]` in the data set stream, for error messages.
    base: u64,
    /// Whether `buf` holds everything up to the end of the stream.
    complete: bool,
    coding: Coding,
    limits: Limits,
    out: &'a mut Vec<u8>,
}

impl<'a> Preflight<'a> {
    /// A walker over `buf`, which starts at `base` in the data set stream.
    pub fn new(
        buf: &'a [u8],
        base: u64,
        complete: bool,
        coding: Coding,
        limits: Limits,
        out: &'a mut Vec<u8>,
    ) -> Self {
        Preflight {
            buf,
            base,
            complete,
            coding,
            limits,
            out,
        }
    }

    /// Walk top-level elements from the start of the buffer until the end or
    /// top-level pixel data.
    pub fn walk_top_level(&mut self) -> Result<Walk, ReadError> {
        let mut pos = 0;
        while pos < self.buf.len() {
            if self.buf.len() - pos < 8 && self.complete && self.buf[pos..].iter().all(|b| *b == 0)
            {
                // a few zero bytes of padding after the last element
                return Ok(Walk::Done {
                    pos: self.buf.len(),
                    stop: Stop::End,
                });
            }
            let (group, element) = match self.tag_at(pos, self.coding.read)? {
                Step::Ok(t) => t,
                Step::NeedMore => return Ok(Walk::NeedMore),
            };
            if is_bulk_pixel_tag(group, element) {
                let head = match self.header_at(pos, self.coding.read)? {
                    Step::Ok(h) => h,
                    Step::NeedMore => return Ok(Walk::NeedMore),
                };
                let value_len = (head.len != UNDEFINED).then_some(head.len);
                // encapsulated fragments are always OB
                let vr = if head.vr == *b"UN" || value_len.is_none() {
                    *b"OB"
                } else {
                    head.vr
                };
                return Ok(Walk::Done {
                    pos,
                    stop: Stop::Bulk {
                        tag: (group, element),
                        header_len: head.size,
                        value_len,
                        vr,
                    },
                });
            }
            pos = match self.element(pos, 0, self.coding.read)? {
                Step::Ok(p) => p,
                Step::NeedMore => return Ok(Walk::NeedMore),
            };
        }
        Ok(if self.complete {
            Walk::Done {
                pos,
                stop: Stop::End,
            }
        } else {
            Walk::NeedMore
        })
    }

    fn err(&self, pos: usize, reason: impl Into<String>) -> ReadError {
        ReadError::Malformed {
            offset: self.base + pos as u64,
            reason: reason.into(),
        }
    }

    /// Check that `n` bytes exist at `pos`.
    fn need(&self, pos: usize, n: u64, tag: (u16, u16)) -> StepResult<()> {
        let available = (self.buf.len() - pos.min(self.buf.len())) as u64;
        if n <= available {
            Ok(Step::Ok(()))
        } else if self.complete {
            Err(ReadError::Truncated {
                tag: format!("({:04X},{:04X})", tag.0, tag.1),
                offset: self.base + pos as u64,
                needed: n,
                available,
            })
        } else {
            Ok(Step::NeedMore)
        }
    }

    fn tag_at(&self, pos: usize, enc: Encoding) -> StepResult<(u16, u16)> {
        step!(self.need(pos, 4, (0, 0)));
        let b = &self.buf[pos..];
        Ok(Step::Ok((enc.u16(b), enc.u16(&b[2..]))))
    }

    /// Parse the element header at `pos` read with `src` (in implicit VR, the
    /// VR comes from the dictionary).
    fn header_at(&self, pos: usize, src: Encoding) -> StepResult<Header> {
        let tag = step!(self.tag_at(pos, src));
        step!(self.need(pos, 8, tag));
        let b = &self.buf[pos..];
        if tag.0 == 0xFFFE {
            return Ok(Step::Ok(Header {
                tag,
                vr: *b"  ",
                len: src.u32(&b[4..]),
                size: 8,
            }));
        }
        if src.explicit_vr {
            let vr = [b[4], b[5]];
            if !is_known_vr(vr) {
                return Err(self.err(
                    pos,
                    format!("invalid VR in header of ({:04X},{:04X})", tag.0, tag.1),
                ));
            }
            if has_long_length(vr) {
                step!(self.need(pos, 12, tag));
                Ok(Step::Ok(Header {
                    tag,
                    vr,
                    len: src.u32(&b[8..]),
                    size: 12,
                }))
            } else {
                Ok(Step::Ok(Header {
                    tag,
                    vr,
                    len: u32::from(src.u16(&b[6..])),
                    size: 8,
                }))
            }
        } else {
            let len = src.u32(&b[4..]);
            let vr = dictionary_vr(tag, len == UNDEFINED);
            Ok(Step::Ok(Header {
                tag,
                vr,
                len,
                size: 8,
            }))
        }
    }

    /// Walk one element at `pos` (read with `src`, written in the walk's
    /// write encoding) and
    /// return the position after it.
    fn element(&mut self, pos: usize, depth: usize, src: Encoding) -> StepResult<usize> {
        let head = step!(self.header_at(pos, src));
        let (group, element) = head.tag;
        if group == 0xFFFE {
            return Err(self.err(
                pos,
                format!("unexpected delimiter ({:04X},{:04X})", group, element),
            ));
        }
        let value = pos + head.size;
        let drop = element == 0x0000
            || (depth == 0 && (group == 0x0002 || (group, element) == (0xFFFC, 0xFFFC)));
        if head.len == UNDEFINED {
            return self.undefined_length(pos, head, depth, src, drop);
        }
        step!(self.need(value, u64::from(head.len), head.tag));
        let end = value + head.len as usize;
        if drop {
            return Ok(Step::Ok(end));
        }
        let target_vr = self.target_vr(&head, src);
        if target_vr == *b"SQ" {
            let un_sequence = head.vr == *b"UN" && src.explicit_vr;
            let inner = if un_sequence {
                Encoding::IMPLICIT_LE
            } else {
                src
            };
            if un_sequence && !self.coding.write.little_endian {
                return Err(self.err(pos, "UN sequence in a big endian data set"));
            }
            self.put_header(head.tag, *b"SQ", UNDEFINED);
            step!(self.items(value, Some(end), depth, inner));
            self.put_delimiter(SEQUENCE_END);
            return Ok(Step::Ok(end));
        }
        if self.coding.write.explicit_vr && !has_long_length(target_vr) && head.len > 0xFFFF {
            // Too long for a 16-bit length (a UN relabelled, or implicit VR
            // read into explicit): keep it UN, whose length has 32 bits.
            // Writing it with a truncated length would let its value be
            // parsed as elements, smuggling text past the profile.
            self.put_header(head.tag, *b"UN", head.len);
        } else {
            self.put_header(head.tag, target_vr, head.len);
        }
        self.out.extend_from_slice(&self.buf[value..end]);
        Ok(Step::Ok(end))
    }

    /// The VR an element is written with: its own, or for UN (and implicit
    /// VR read into explicit), the dictionary's where that is safe.
    fn target_vr(&self, head: &Header, src: Encoding) -> [u8; 2] {
        if head.vr != *b"UN" || !src.explicit_vr {
            return head.vr;
        }
        let vr = dictionary_vr(head.tag, false);
        // In a big endian data set a UN value's byte order is not certain:
        // relabel only text, whose bytes do not depend on it.
        if !src.little_endian && !is_text_vr(vr) {
            return *b"UN";
        }
        vr
    }

    fn undefined_length(
        &mut self,
        pos: usize,
        head: Header,
        depth: usize,
        src: Encoding,
        drop: bool,
    ) -> StepResult<usize> {
        let value = pos + head.size;
        let is_pixel = is_bulk_pixel_tag(head.tag.0, head.tag.1);
        if is_pixel && matches!(&head.vr, b"OB" | b"OW" | b"UN") {
            let start = self.out.len();
            self.put_header(head.tag, *b"OB", UNDEFINED);
            let end = step!(self.fragments(value, src));
            if drop {
                self.out.truncate(start);
            }
            return Ok(Step::Ok(end));
        }
        let inner = match &head.vr {
            b"SQ" => src,
            // CP-246: a UN of undefined length is a sequence in implicit VR LE.
            b"UN" if src.explicit_vr => {
                if !self.coding.write.little_endian {
                    return Err(self.err(pos, "UN sequence in a big endian data set"));
                }
                Encoding::IMPLICIT_LE
            }
            b"UN" => src,
            _ => {
                return Err(self.err(
                    pos,
                    format!(
                        "undefined length on a non-sequence ({:04X},{:04X})",
                        head.tag.0, head.tag.1
                    ),
                ))
            }
        };
        let start = self.out.len();
        self.put_header(head.tag, *b"SQ", UNDEFINED);
        let end = step!(self.items(value, None, depth, inner));
        self.put_delimiter(SEQUENCE_END);
        if drop {
            self.out.truncate(start);
        }
        Ok(Step::Ok(end))
    }

    /// Walk the items of a sequence from `pos`, up to `end` (defined length)
    /// or the sequence delimiter; return the position after the sequence.
    fn items(
        &mut self,
        mut pos: usize,
        end: Option<usize>,
        depth: usize,
        src: Encoding,
    ) -> StepResult<usize> {
        if depth + 1 > self.limits.max_depth {
            return Err(ReadError::TooDeep {
                limit: self.limits.max_depth,
            });
        }
        loop {
            if end == Some(pos) {
                return Ok(Step::Ok(pos));
            }
            let tag = step!(self.tag_at(pos, src));
            step!(self.need(pos, 8, tag));
            let len = src.u32(&self.buf[pos + 4..]);
            match tag {
                SEQUENCE_END if end.is_none() => return Ok(Step::Ok(pos + 8)),
                ITEM => {}
                _ => {
                    return Err(self.err(
                        pos,
                        format!("expected an item, found ({:04X},{:04X})", tag.0, tag.1),
                    ))
                }
            }
            self.put_item_header(UNDEFINED);
            pos = if len == UNDEFINED {
                step!(self.item_body(pos + 8, None, depth + 1, src))
            } else {
                step!(self.need(pos + 8, u64::from(len), tag));
                step!(self.item_body(pos + 8, Some(pos + 8 + len as usize), depth + 1, src))
            };
            self.put_delimiter(ITEM_END);
            if let Some(e) = end {
                if pos > e {
                    return Err(self.err(pos, "item runs past the end of its sequence"));
                }
            }
        }
    }

    fn item_body(
        &mut self,
        mut pos: usize,
        end: Option<usize>,
        depth: usize,
        src: Encoding,
    ) -> StepResult<usize> {
        loop {
            if end == Some(pos) {
                return Ok(Step::Ok(pos));
            }
            if end.is_none() {
                let tag = step!(self.tag_at(pos, src));
                if tag == ITEM_END {
                    step!(self.need(pos, 8, tag));
                    return Ok(Step::Ok(pos + 8));
                }
            }
            pos = step!(self.element(pos, depth, src));
            if let Some(e) = end {
                if pos > e {
                    return Err(self.err(pos, "element runs past the end of its item"));
                }
            }
        }
    }

    /// Copy encapsulated pixel data fragments up to the sequence delimiter.
    fn fragments(&mut self, mut pos: usize, src: Encoding) -> StepResult<usize> {
        loop {
            let tag = step!(self.tag_at(pos, src));
            step!(self.need(pos, 8, tag));
            let len = src.u32(&self.buf[pos + 4..]);
            match tag {
                SEQUENCE_END => {
                    self.put_delimiter(SEQUENCE_END);
                    return Ok(Step::Ok(pos + 8));
                }
                ITEM if len != UNDEFINED => {
                    step!(self.need(pos + 8, u64::from(len), tag));
                    self.put_item_header(len);
                    self.out
                        .extend_from_slice(&self.buf[pos + 8..pos + 8 + len as usize]);
                    pos += 8 + len as usize;
                }
                _ => return Err(self.err(pos, "malformed encapsulated pixel data fragment")),
            }
        }
    }

    fn put_header(&mut self, tag: (u16, u16), vr: [u8; 2], len: u32) {
        self.coding.write.put_header(self.out, tag, vr, len);
    }

    fn put_delimiter(&mut self, tag: (u16, u16)) {
        self.put_item_tag(tag, 0);
    }

    fn put_item_header(&mut self, len: u32) {
        self.put_item_tag(ITEM, len);
    }

    fn put_item_tag(&mut self, tag: (u16, u16), len: u32) {
        let w = self.coding.write;
        w.put_u16(self.out, tag.0);
        w.put_u16(self.out, tag.1);
        w.put_u32(self.out, len);
    }
}

#[derive(Debug, Clone, Copy)]
struct Header {
    tag: (u16, u16),
    vr: [u8; 2],
    len: u32,
    size: usize,
}

/// The VR the standard dictionary gives a tag (`UN` when unknown; `SQ` for an
/// unknown element of undefined length, per CP-246).
fn dictionary_vr(tag: (u16, u16), undefined_length: bool) -> [u8; 2] {
    let vr = StandardDataDictionary
        .by_tag(Tag(tag.0, tag.1))
        .map(|e| e.vr().relaxed())
        .unwrap_or(VR::UN);
    if undefined_length && vr == VR::UN {
        return *b"SQ";
    }
    let s = vr.to_string();
    let b = s.as_bytes();
    [b[0], b[1]]
}

fn is_text_vr(vr: [u8; 2]) -> bool {
    matches!(
        &vr,
        b"AE"
            | b"AS"
            | b"CS"
            | b"DA"
            | b"DS"
            | b"DT"
            | b"IS"
            | b"LO"
            | b"LT"
            | b"PN"
            | b"SH"
            | b"ST"
            | b"TM"
            | b"UC"
            | b"UI"
            | b"UR"
            | b"UT"
    )
}
