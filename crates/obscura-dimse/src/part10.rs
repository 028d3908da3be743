//! Just enough of a Part 10 file (PS3.10 section 7.1) to send it: the SOP
//! class, SOP instance and transfer syntax from the file meta group, and
//! where the data set starts.

use std::io::Read;
use std::path::Path;

use crate::DimseError;

/// What a C-STORE needs from a DICOM Part 10 file's meta information.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part10Info {
    /// MediaStorageSOPClassUID (0002,0002).
    pub sop_class_uid: String,
    /// MediaStorageSOPInstanceUID (0002,0003).
    pub sop_instance_uid: String,
    /// TransferSyntaxUID (0002,0010).
    pub transfer_syntax_uid: String,
    /// Byte offset of the data set (just after the file meta group).
    pub dataset_offset: u64,
}

const MAX_META: usize = 64 * 1024;

/// Reads the file meta group of a Part 10 file (preamble, `DICM`, group
/// 0002 in explicit VR little endian), bounded to 64 KiB.
pub fn read_part10_meta(path: &Path) -> Result<Part10Info, DimseError> {
    let mut head = Vec::with_capacity(4096);
    std::fs::File::open(path)?
        .take(MAX_META as u64)
        .read_to_end(&mut head)?;
    parse(&head).ok_or_else(|| DimseError::NotPart10(path.display().to_string()))
}

pub(crate) fn parse(b: &[u8]) -> Option<Part10Info> {
    if b.len() < 132 || &b[128..132] != b"DICM" {
        return None;
    }
    let mut pos = 132;
    let (mut class, mut instance, mut ts) = (None, None, None);
    while pos + 8 <= b.len() {
        let group = u16::from_le_bytes([b[pos], b[pos + 1]]);
        if group != 2 {
            break;
        }
        let element = u16::from_le_bytes([b[pos + 2], b[pos + 3]]);
        let vr = &b[pos + 4..pos + 6];
        let (len, header) = if has_long_length(vr) {
            if pos + 12 > b.len() {
                return None;
            }
            (
                u32::from_le_bytes([b[pos + 8], b[pos + 9], b[pos + 10], b[pos + 11]]) as usize,
                12,
            )
        } else {
            (u16::from_le_bytes([b[pos + 6], b[pos + 7]]) as usize, 8)
        };
        let start = pos + header;
        let end = start.checked_add(len)?;
        if end > b.len() {
            return None;
        }
        let value = || {
            let s = std::str::from_utf8(&b[start..end]).ok()?;
            let s = s.trim_end_matches(['\0', ' ']).trim_start();
            (!s.is_empty() && s.len() <= 64 && s.bytes().all(|c| c.is_ascii_digit() || c == b'.'))
                .then(|| s.to_string())
        };
        match element {
            0x0002 => class = value(),
            0x0003 => instance = value(),
            0x0010 => ts = value(),
            _ => {}
        }
        pos = end;
    }
    Some(Part10Info {
        sop_class_uid: class?,
        sop_instance_uid: instance?,
        transfer_syntax_uid: ts?,
        dataset_offset: pos as u64,
    })
}

/// Whether an explicit-VR element of `vr` has the 4-byte length form
/// (2 reserved bytes, then a 32-bit length; PS3.5 7.1.2).
pub(crate) fn has_long_length(vr: &[u8]) -> bool {
    matches!(
        vr,
        b"OB"
            | b"OW"
            | b"OF"
            | b"SQ"
            | b"UT"
            | b"UN"
            | b"UC"
            | b"UR"
            | b"OD"
            | b"OL"
            | b"OV"
            | b"SV"
            | b"UV"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn el(out: &mut Vec<u8>, element: u16, vr: &[u8; 2], v: &[u8]) {
        out.extend_from_slice(&2u16.to_le_bytes());
        out.extend_from_slice(&element.to_le_bytes());
        out.extend_from_slice(vr);
        if vr == b"OB" {
            out.extend_from_slice(&[0, 0]);
            out.extend_from_slice(&(v.len() as u32).to_le_bytes());
        } else {
            out.extend_from_slice(&(v.len() as u16).to_le_bytes());
        }
        out.extend_from_slice(v);
    }

    #[test]
    fn reads_meta_and_offset() {
        let mut b = vec![0u8; 128];
        b.extend_from_slice(b"DICM");
        el(&mut b, 0x0001, b"OB", &[0, 1]);
        el(&mut b, 0x0002, b"UI", b"1.2.840.10008.5.1.4.1.1.7\0");
        el(&mut b, 0x0003, b"UI", b"1.2.3.4");
        el(&mut b, 0x0010, b"UI", b"1.2.840.10008.1.2.1\0");
        let off = b.len();
        b.extend_from_slice(&[8, 0, 0x16, 0, b'U', b'I', 0, 0]);
        let info = parse(&b).unwrap();
        assert_eq!(info.sop_class_uid, "1.2.840.10008.5.1.4.1.1.7");
        assert_eq!(info.sop_instance_uid, "1.2.3.4");
        assert_eq!(info.transfer_syntax_uid, "1.2.840.10008.1.2.1");
        assert_eq!(info.dataset_offset, off as u64);
        for cut in 0..b.len() {
            let _ = parse(&b[..cut]);
        }
        assert!(parse(&b[..140]).is_none());
    }
}
