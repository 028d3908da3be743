//! The dicom-rs traps of shared/notes/dicom-rs.md, designed around: hostile
//! lengths, deep nesting, UN sequences, ISO 2022 text, deflate, big endian.

mod build;

use build::*;
use dicom_core::{Tag, VR};
use obscura_dicom::{DicomInput, Limits, ReadError};

const EXPLICIT_LE: &str = "1.2.840.10008.1.2.1";

fn read(bytes: Vec<u8>) -> Result<DicomInput<Vec<u8>>, ReadError> {
    DicomInput::read(bytes, Limits::default())
}

fn text_of(input: &DicomInput<Vec<u8>>, tag: Tag) -> String {
    input
        .dataset
        .element(tag)
        .unwrap()
        .to_str()
        .unwrap()
        .to_string()
}

#[test]
fn a_4_gb_declared_length_fails_fast_without_allocating_it() {
    let ds = [
        minimal_top(),
        long_header(0x0010, 0x4000, b"UT", 0xFFFF_FFF0),
    ]
    .concat();
    let file = part10(EXPLICIT_LE, &ds, 0);
    assert!(file.len() < 400);
    match read(file) {
        Err(ReadError::Truncated { tag, needed, .. }) => {
            assert_eq!(tag, "(0010,4000)");
            assert_eq!(needed, 0xFFFF_FFF0);
        }
        other => panic!("expected a truncation error, got {:?}", other.err()),
    }
}

#[test]
fn a_2_gb_pixel_data_length_in_a_small_file_is_truncation() {
    let ds = [
        minimal_top(),
        long_header(0x7FE0, 0x0010, b"OW", 0x7FFF_FFF0),
        vec![0; 64],
    ]
    .concat();
    let err = read(part10(EXPLICIT_LE, &ds, 0)).err().expect("must fail");
    assert!(
        matches!(err, ReadError::Truncated { ref tag, .. } if tag == "(7FE0,0010)"),
        "{err}"
    );
}

#[test]
fn nesting_10000_deep_is_refused_not_a_stack_overflow() {
    let mut body = Vec::new();
    for _ in 0..10_000 {
        body = [
            long_header(0x0008, 0x1115, b"SQ", 0xFFFF_FFFF),
            item(&body),
            delim(0xE0DD, 0),
        ]
        .concat();
    }
    let ds = [minimal_top(), body].concat();
    let err = read(part10(EXPLICIT_LE, &ds, 0)).err().expect("must fail");
    assert!(matches!(err, ReadError::TooDeep { limit: 64 }), "{err}");
}

#[test]
fn undefined_length_un_private_sequence_is_read_as_a_sequence() {
    // CP-246: a private sequence written as UN of undefined length, its
    // content in implicit VR LE. dicom-rs alone cannot read this (#169).
    let inner = implicit(0x0009, 0x1001, &text("PRIVATE PHI"));
    let seq = [
        el(0x0009, 0x0010, b"LO", &text("ACME 1.1")),
        long_header(0x0009, 0x1002, b"UN", 0xFFFF_FFFF),
        item(&inner),
        delim(0xE0DD, 0),
    ]
    .concat();
    let ds = [minimal_top(), seq, el(0x0020, 0x0013, b"IS", &text("7"))].concat();
    let input = read(part10(EXPLICIT_LE, &ds, 0)).expect("reads");
    let sq = input.dataset.element(Tag(0x0009, 0x1002)).unwrap();
    assert_eq!(sq.vr(), VR::SQ);
    assert_eq!(sq.items().unwrap().len(), 1);
    assert_eq!(
        text_of(&input, Tag(0x0020, 0x0013)),
        "7",
        "elements after it still read"
    );
}

#[test]
fn standard_attributes_stored_as_un_get_their_dictionary_vr() {
    let referenced = [
        implicit(0x0008, 0x1150, &uid("1.2.840.10008.5.1.4.1.1.2")),
        implicit(0x0008, 0x1155, &uid("1.2.3.4.5.99")),
    ]
    .concat();
    let ds = [
        minimal_top(),
        el(
            0x0008,
            0x1140,
            b"UN",
            &[delim(0xE000, referenced.len() as u32), referenced].concat(),
        ),
        el(0x0010, 0x1040, b"UN", &text("12 ELM STREET")),
    ]
    .concat();
    let input = read(part10(EXPLICIT_LE, &ds, 0)).expect("reads");
    let seq = input.dataset.element(Tag(0x0008, 0x1140)).unwrap();
    assert_eq!(
        seq.vr(),
        VR::SQ,
        "UN sequence of a standard attribute becomes SQ"
    );
    let item = &seq.items().unwrap()[0];
    assert_eq!(item.element(Tag(0x0008, 0x1155)).unwrap().vr(), VR::UI);
    let address = input.dataset.element(Tag(0x0010, 0x1040)).unwrap();
    assert_eq!(
        address.vr(),
        VR::LO,
        "so the profile matches it by tag and VR"
    );
}

#[test]
fn iso_2022_text_bytes_survive_a_round_trip() {
    // Japanese (ISO 2022 IR 87): dicom-rs decodes it to raw escapes (#443);
    // whatever it decodes, the bytes written back must be the original ones.
    let japanese = b"\x1b$B;3ED\x1b(B^\x1b$B\x42\x40\x4f\x3a\x1b(B ".to_vec();
    let ds = [
        el(0x0008, 0x0005, b"CS", &text("\\ISO 2022 IR 87")),
        minimal_top(),
        el(0x0008, 0x1030, b"LO", &japanese),
    ]
    .concat();
    let input = read(part10(EXPLICIT_LE, &ds, 0)).expect("reads");
    let mut out = Vec::new();
    input
        .write_part10(&input.dataset, &mut out)
        .expect("writes");
    assert!(
        out.windows(japanese.len() - 1)
            .any(|w| w == &japanese[..japanese.len() - 1]),
        "ISO 2022 bytes changed"
    );
}

#[test]
fn output_has_zero_preamble_and_rebuilt_meta() {
    let ds = minimal_top();
    let input = read(part10(EXPLICIT_LE, &ds, 0xAA)).expect("reads");
    let mut out = Vec::new();
    input.write_part10(&input.dataset, &mut out).unwrap();
    assert_eq!(
        &out[..128],
        &[0u8; 128][..],
        "preamble zeroed (CVE-2019-11687)"
    );
    assert_eq!(&out[128..132], b"DICM");
    let hay = String::from_utf8_lossy(&out);
    assert!(!hay.contains("SOURCE_AE_PHI"), "source AE title dropped");
    assert!(
        !hay.contains("1.2.3.99"),
        "source implementation UID dropped"
    );
    assert!(hay.contains("OBSCURA"));
}

#[test]
fn trailing_padding_and_group_lengths_are_dropped() {
    let ds = [
        el(0x0008, 0x0000, b"UL", &100u32.to_le_bytes()),
        minimal_top(),
        long_header(0x7FE0, 0x0010, b"OW", 4),
        vec![1, 2, 3, 4],
        long_header(0xFFFC, 0xFFFC, b"OB", 6),
        b"JUNK!!".to_vec(),
    ]
    .concat();
    let input = read(part10(EXPLICIT_LE, &ds, 0)).expect("reads");
    assert!(input.dataset.element(Tag(0x0008, 0x0000)).is_err());
    let mut out = Vec::new();
    input.write_part10(&input.dataset, &mut out).unwrap();
    assert!(
        out.ends_with(&[1, 2, 3, 4]),
        "pixel data copied, padding gone"
    );
}

#[test]
fn a_bare_data_set_without_part10_header_is_read_and_written_as_part10() {
    let ds = [
        implicit(0x0008, 0x0016, &uid("1.2.840.10008.5.1.4.1.1.7")),
        implicit(0x0008, 0x0018, &uid("1.2.3.4")),
        implicit(0x0010, 0x0010, &text("DOE^JOHN")),
    ]
    .concat();
    let input = read(ds).expect("reads");
    assert!(!input.meta.part10);
    assert_eq!(input.transfer_syntax_uid, "1.2.840.10008.1.2");
    let mut out = Vec::new();
    input.write_part10(&input.dataset, &mut out).unwrap();
    assert_eq!(&out[128..132], b"DICM");
    let again = read(out).expect("output reads back");
    assert!(again.meta.part10);
    assert_eq!(text_of(&again, Tag(0x0010, 0x0010)), "DOE^JOHN");
}

#[test]
fn deflated_files_round_trip() {
    use std::io::Write;
    let ds = [minimal_top(), el(0x0008, 0x1030, b"LO", &text("CT CHEST"))].concat();
    let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(&ds).unwrap();
    let file = part10("1.2.840.10008.1.2.1.99", &enc.finish().unwrap(), 0);
    let input = read(file).expect("reads");
    assert!(input.is_deflated());
    let mut out = Vec::new();
    input.write_part10(&input.dataset, &mut out).unwrap();
    let again = read(out).expect("output reads back");
    assert_eq!(text_of(&again, Tag(0x0008, 0x1030)), "CT CHEST");
}

#[test]
fn encapsulated_pixel_fragments_are_copied_byte_for_byte() {
    let frag = vec![0xFF, 0xD8, 0x01, 0x02, 0x03, 0x04, 0xFF, 0xD9];
    let pixel = [
        long_header(0x7FE0, 0x0010, b"OB", 0xFFFF_FFFF),
        delim(0xE000, 0),
        delim(0xE000, frag.len() as u32),
        frag.clone(),
        delim(0xE0DD, 0),
    ]
    .concat();
    let ds = [minimal_top(), pixel.clone()].concat();
    let input = read(part10("1.2.840.10008.1.2.4.50", &ds, 0)).expect("reads");
    let span = input.pixel.expect("pixel data located");
    assert_eq!(span.declared_len, None);
    let mut out = Vec::new();
    input.write_part10(&input.dataset, &mut out).unwrap();
    assert!(
        out.ends_with(&pixel),
        "fragments and delimiter copied unchanged"
    );
}

#[test]
fn an_encapsulated_fragment_longer_than_the_file_is_truncation() {
    let pixel = [
        long_header(0x7FE0, 0x0010, b"OB", 0xFFFF_FFFF),
        delim(0xE000, 0),
        delim(0xE000, 1 << 30),
    ]
    .concat();
    let ds = [minimal_top(), pixel].concat();
    let err = read(part10("1.2.840.10008.1.2.4.50", &ds, 0))
        .err()
        .expect("must fail");
    assert!(matches!(err, ReadError::Truncated { .. }), "{err}");
}

#[test]
fn random_bytes_after_dicm_are_an_error_not_a_panic() {
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let noise: Vec<u8> = (0..4096)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect();
    let mut file = vec![0u8; 128];
    file.extend_from_slice(b"DICM");
    file.extend_from_slice(&noise);
    assert!(read(file).is_err());
}

#[test]
fn empty_and_non_dicom_inputs_are_told_apart() {
    assert!(matches!(read(Vec::new()), Err(ReadError::Empty)));
    assert!(matches!(
        read(b"just some text, not DICOM at all".to_vec()),
        Err(ReadError::NotDicom)
    ));
}

#[test]
fn an_implicit_value_too_long_for_its_explicit_vr_keeps_its_full_length() {
    // Found by fuzzing: an implicit VR LT of 64 KiB + 4 inside a UN sequence
    // was re-encoded with a 16-bit length, and its text parsed as elements.
    let text_bytes = vec![b'A'; 0x1_0004];
    let inner = implicit(0x0010, 0x4000, &text_bytes);
    let seq = [
        long_header(0x0008, 0x1115, b"UN", 0xFFFF_FFFF),
        item(&inner),
        delim(0xE0DD, 0),
    ]
    .concat();
    let input = read(part10(EXPLICIT_LE, &[minimal_top(), seq].concat(), 0)).expect("reads");
    let item = &input
        .dataset
        .element(Tag(0x0008, 0x1115))
        .unwrap()
        .items()
        .unwrap()[0];
    let comments = item
        .element(Tag(0x0010, 0x4000))
        .expect("one element, not many");
    assert_eq!(comments.vr(), VR::UN);
    assert_eq!(comments.to_bytes().unwrap().len(), 0x1_0004);
    assert_eq!(item.iter().count(), 1);
}

#[test]
fn implicit_bytes_under_an_explicit_syntax_are_written_explicit() {
    // Some writers declare explicit VR and write implicit. A value longer
    // than a 16-bit length must still be writable (as UN), not fail.
    let ds = [
        implicit(0x0008, 0x0016, &uid("1.2.840.10008.5.1.4.1.1.7")),
        implicit(0x0008, 0x0018, &uid("1.2.3.4")),
        implicit(0x0010, 0x0010, &text("DOE^JOHN")),
        implicit(0x0010, 0x4000, &vec![b'A'; 70_000]),
    ]
    .concat();
    let input = read(part10(EXPLICIT_LE, &ds, 0)).expect("reads");
    assert_eq!(
        input.dataset.element(Tag(0x0010, 0x0010)).unwrap().vr(),
        VR::PN
    );
    let mut out = Vec::new();
    input
        .write_part10(&input.dataset, &mut out)
        .expect("writes");
    let again = read(out).expect("output reads back");
    assert_eq!(text_of(&again, Tag(0x0010, 0x0010)), "DOE^JOHN");
    assert_eq!(
        again.dataset.element(Tag(0x0010, 0x4000)).unwrap().vr(),
        VR::UN
    );
}

#[test]
fn elements_after_the_pixel_data_are_written_after_it() {
    let ds = [
        minimal_top(),
        long_header(0x7FE0, 0x0010, b"OW", 4),
        vec![1, 2, 3, 4],
        el(0xFFFA, 0xFFFA, b"SQ", &[]),
    ]
    .concat();
    let input = read(part10(EXPLICIT_LE, &ds, 0)).expect("reads");
    let mut out = Vec::new();
    input.write_part10(&input.dataset, &mut out).unwrap();
    let pixel_at = out
        .windows(4)
        .position(|w| w == [1, 2, 3, 4])
        .expect("pixel bytes");
    let after_at = out
        .windows(4)
        .position(|w| w == [0xFA, 0xFF, 0xFA, 0xFF])
        .expect("trailing element");
    assert!(after_at > pixel_at);
    assert!(read(out).is_ok());
}
