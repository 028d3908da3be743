//! The file meta information (group 0002): reading what the input declares,
//! writing a new one that carries nothing from the source.

use crate::encoding::{has_long_length, is_known_vr, Encoding, EXPLICIT_VR_BE};
use crate::error::{ReadError, WriteError};
use crate::source::Source;

/// Obscura's implementation class UID (a 2.25 UUID-derived UID of its own).
pub const IMPLEMENTATION_CLASS_UID: &str = "2.25.191218398414384219530467498935271347329";
/// Obscura's implementation version name (at most 16 characters).
pub const IMPLEMENTATION_VERSION_NAME: &str = concat!("OBSCURA ", env!("CARGO_PKG_VERSION"));

/// What the input's file meta information declared, as far as Obscura uses it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InputMeta {
    /// Whether the file had the 128-byte preamble and `DICM` (a Part 10 file).
    pub part10: bool,
    /// (0002,0002) Media Storage SOP Class UID, if present.
    pub media_storage_sop_class_uid: Option<String>,
    /// (0002,0003) Media Storage SOP Instance UID, if present.
    pub media_storage_sop_instance_uid: Option<String>,
    /// (0002,0010) Transfer Syntax UID, if present.
    pub transfer_syntax_uid: Option<String>,
    /// Offset of the first data set byte in the file.
    pub dataset_offset: u64,
}

const MAX_META_BYTES: u64 = 64 * 1024;

/// Read the preamble and group 0002, or recognise a bare data set without
/// them. Fails with [`ReadError::NotDicom`] when neither fits.
pub fn read_input_meta(src: &dyn Source) -> Result<InputMeta, ReadError> {
    let len = src.len();
    if len == 0 {
        return Err(ReadError::Empty);
    }
    let mut head = vec![0u8; len.min(MAX_META_BYTES) as usize];
    src.read_at(0, &mut head)?;
    let start = if head.len() >= 132 && &head[128..132] == b"DICM" {
        132
    } else if head.len() >= 4 && &head[..4] == b"DICM" {
        4
    } else if looks_like_dataset(&head, Encoding::EXPLICIT_LE) {
        0
    } else if looks_like_dataset(&head, Encoding::EXPLICIT_BE) {
        return Ok(InputMeta {
            transfer_syntax_uid: Some(EXPLICIT_VR_BE.into()),
            ..Default::default()
        });
    } else {
        return Err(ReadError::NotDicom);
    };
    let mut meta = InputMeta {
        part10: start != 0,
        dataset_offset: start as u64,
        ..Default::default()
    };
    let mut pos = start;
    // group 0002 is explicit VR little endian by definition; some writers
    // used implicit VR anyway, which is tolerated.
    while pos + 8 <= head.len() {
        let le = Encoding::EXPLICIT_LE;
        if le.u16(&head[pos..]) != 0x0002 {
            break;
        }
        let element = le.u16(&head[pos + 2..]);
        let vr = [head[pos + 4], head[pos + 5]];
        let (value, vlen) = if is_known_vr(vr) {
            if has_long_length(vr) {
                if pos + 12 > head.len() {
                    break;
                }
                (pos + 12, le.u32(&head[pos + 8..]) as usize)
            } else {
                (pos + 8, le.u16(&head[pos + 6..]) as usize)
            }
        } else {
            (pos + 8, le.u32(&head[pos + 4..]) as usize)
        };
        let end =
            value
                .checked_add(vlen)
                .filter(|e| *e <= head.len())
                .ok_or(ReadError::Truncated {
                    tag: format!("(0002,{element:04X})"),
                    offset: pos as u64,
                    needed: vlen as u64,
                    available: (head.len() - value.min(head.len())) as u64,
                })?;
        let text = || trim_uid(&head[value..end]);
        match element {
            0x0002 => meta.media_storage_sop_class_uid = Some(text()),
            0x0003 => meta.media_storage_sop_instance_uid = Some(text()),
            0x0010 => meta.transfer_syntax_uid = Some(text()),
            _ => {}
        }
        pos = end;
    }
    meta.dataset_offset = pos as u64;
    if meta.transfer_syntax_uid.as_deref() == Some("") {
        meta.transfer_syntax_uid = None;
    }
    Ok(meta)
}

/// Guess the encoding of a data set that has no transfer syntax declared:
/// explicit VR LE if the first header carries a valid VR, else implicit VR LE.
pub fn guess_encoding(first_bytes: &[u8]) -> Encoding {
    if first_bytes.len() >= 6 && is_known_vr([first_bytes[4], first_bytes[5]]) {
        Encoding::EXPLICIT_LE
    } else {
        Encoding::IMPLICIT_LE
    }
}

/// Whether the bytes plausibly start a bare data set in byte order `enc`: a
/// low even group and either a valid VR or (little endian only) a plausible
/// implicit length.
fn looks_like_dataset(b: &[u8], enc: Encoding) -> bool {
    if b.len() < 8 {
        return false;
    }
    let group = enc.u16(b);
    let element = enc.u16(&b[2..]);
    if !group.is_multiple_of(2) || !(0x0002..=0x0010).contains(&group) || element > 0x1FFF {
        return false;
    }
    is_known_vr([b[4], b[5]]) || (enc.little_endian && (enc.u32(&b[4..]) as usize) < 1024)
}

fn trim_uid(b: &[u8]) -> String {
    String::from_utf8_lossy(b)
        .trim_end_matches(['\0', ' '])
        .trim()
        .to_string()
}

/// Append the 128-byte zero preamble, `DICM` and a new group 0002 to `out`.
/// Nothing of the source's meta survives: no source, sending or receiving AE
/// titles, no private meta elements.
pub fn write_part10_header(
    out: &mut Vec<u8>,
    sop_class_uid: &str,
    sop_instance_uid: &str,
    transfer_syntax_uid: &str,
) -> Result<(), WriteError> {
    if sop_class_uid.is_empty() {
        return Err(WriteError::MissingAttribute("SOPClassUID"));
    }
    if sop_instance_uid.is_empty() {
        return Err(WriteError::MissingAttribute("SOPInstanceUID"));
    }
    let mut group = Vec::with_capacity(256);
    put_meta(&mut group, 0x0001, b"OB", &[0x00, 0x01]);
    put_meta(&mut group, 0x0002, b"UI", &uid_bytes(sop_class_uid));
    put_meta(&mut group, 0x0003, b"UI", &uid_bytes(sop_instance_uid));
    put_meta(&mut group, 0x0010, b"UI", &uid_bytes(transfer_syntax_uid));
    put_meta(
        &mut group,
        0x0012,
        b"UI",
        &uid_bytes(IMPLEMENTATION_CLASS_UID),
    );
    put_meta(
        &mut group,
        0x0013,
        b"SH",
        &text_bytes(IMPLEMENTATION_VERSION_NAME),
    );
    out.extend_from_slice(&[0u8; 128]);
    out.extend_from_slice(b"DICM");
    put_meta(out, 0x0000, b"UL", &(group.len() as u32).to_le_bytes());
    out.extend_from_slice(&group);
    Ok(())
}

fn put_meta(out: &mut Vec<u8>, element: u16, vr: &[u8; 2], value: &[u8]) {
    Encoding::EXPLICIT_LE.put_header(out, (0x0002, element), *vr, value.len() as u32);
    out.extend_from_slice(value);
}

fn uid_bytes(uid: &str) -> Vec<u8> {
    let mut v = uid.as_bytes().to_vec();
    if v.len() % 2 == 1 {
        v.push(0);
    }
    v
}

fn text_bytes(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    if v.len() % 2 == 1 {
        v.push(b' ');
    }
    v
}
