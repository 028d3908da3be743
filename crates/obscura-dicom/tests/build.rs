//! Hand-built DICOM bytes for tests: exact control over every length.

#![allow(dead_code)]

/// An explicit VR little endian element.
pub fn el(group: u16, element: u16, vr: &[u8; 2], value: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&group.to_le_bytes());
    v.extend_from_slice(&element.to_le_bytes());
    v.extend_from_slice(vr);
    if matches!(
        vr,
        b"OB"
            | b"OW"
            | b"SQ"
            | b"UN"
            | b"UT"
            | b"UC"
            | b"UR"
            | b"OD"
            | b"OF"
            | b"OL"
            | b"OV"
            | b"SV"
            | b"UV"
    ) {
        v.extend_from_slice(&[0, 0]);
        v.extend_from_slice(&(value.len() as u32).to_le_bytes());
    } else {
        v.extend_from_slice(&(value.len() as u16).to_le_bytes());
    }
    v.extend_from_slice(value);
    v
}

/// An explicit VR LE element header declaring `len` (any value, even a lie).
pub fn long_header(group: u16, element: u16, vr: &[u8; 2], len: u32) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&group.to_le_bytes());
    v.extend_from_slice(&element.to_le_bytes());
    v.extend_from_slice(vr);
    v.extend_from_slice(&[0, 0]);
    v.extend_from_slice(&len.to_le_bytes());
    v
}

/// An implicit VR little endian element.
pub fn implicit(group: u16, element: u16, value: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&group.to_le_bytes());
    v.extend_from_slice(&element.to_le_bytes());
    v.extend_from_slice(&(value.len() as u32).to_le_bytes());
    v.extend_from_slice(value);
    v
}

/// An item or delimiter tag with a length.
pub fn delim(element: u16, len: u32) -> Vec<u8> {
    let mut v = vec![0xFE, 0xFF];
    v.extend_from_slice(&element.to_le_bytes());
    v.extend_from_slice(&len.to_le_bytes());
    v
}

/// An undefined-length item holding `body`.
pub fn item(body: &[u8]) -> Vec<u8> {
    [delim(0xE000, 0xFFFF_FFFF), body.to_vec(), delim(0xE00D, 0)].concat()
}

/// Text padded to even length with a space.
pub fn text(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    if v.len() % 2 == 1 {
        v.push(b' ');
    }
    v
}

/// A UID padded to even length with NUL.
pub fn uid(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    if v.len() % 2 == 1 {
        v.push(0);
    }
    v
}

/// A Part 10 file: preamble (filled with `preamble_byte`), DICM, meta with
/// the given transfer syntax and a source AE title, then `dataset`.
pub fn part10(ts: &str, dataset: &[u8], preamble_byte: u8) -> Vec<u8> {
    let group = [
        el(0x0002, 0x0001, b"OB", &[0, 1]),
        el(0x0002, 0x0002, b"UI", &uid("1.2.840.10008.5.1.4.1.1.7")),
        el(0x0002, 0x0003, b"UI", &uid("1.2.3.4.5.6.7")),
        el(0x0002, 0x0010, b"UI", &uid(ts)),
        el(0x0002, 0x0012, b"UI", &uid("1.2.3.99")),
        el(0x0002, 0x0016, b"AE", &text("SOURCE_AE_PHI")),
    ]
    .concat();
    let mut v = vec![preamble_byte; 128];
    v.extend_from_slice(b"DICM");
    v.extend_from_slice(&el(
        0x0002,
        0x0000,
        b"UL",
        &(group.len() as u32).to_le_bytes(),
    ));
    v.extend_from_slice(&group);
    v.extend_from_slice(dataset);
    v
}

/// The identifying top of a minimal data set: SOP class and instance, patient.
pub fn minimal_top() -> Vec<u8> {
    [
        el(0x0008, 0x0016, b"UI", &uid("1.2.840.10008.5.1.4.1.1.7")),
        el(0x0008, 0x0018, b"UI", &uid("1.2.3.4.5.6.7")),
        el(0x0010, 0x0010, b"PN", &text("DOE^JOHN")),
        el(0x0010, 0x0020, b"LO", &text("MRN12345")),
    ]
    .concat()
}
