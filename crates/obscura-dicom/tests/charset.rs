//! The true text of every string value of pydicom's character set test
//! files, read through `DicomInput` and `charset`, against pydicom's own
//! decoding; and the way back, through the Part 10 writer.

mod build;

use build::*;
use dicom_core::header::Header;
use dicom_core::{DataElement, PrimitiveValue, Tag, VR};
use dicom_object::InMemDicomObject;
use obscura_dicom::charset::{
    decode_bytes, decode_parsed, encode_for_dicom_rs, CharacterSets, Decoded,
};
use obscura_dicom::{DicomInput, Limits};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

const SCS: Tag = Tag(0x0008, 0x0005);
const PATIENT_NAME: Tag = Tag(0x0010, 0x0010);

/// Lists every text value (PN, LO, SH, ST, LT, UT, UC) at every depth of
/// each charset file, as pydicom decodes it: `file \t path \t hex(UTF-8)`.
const PYDICOM_DUMP: &str = r#"
import os, sys, pydicom, pydicom.data
d = os.path.join(os.path.dirname(pydicom.data.__file__), 'charset_files')
print(d)
def walk(f, ds, path):
    for e in ds:
        p = path + '%08X' % e.tag
        if e.VR == 'SQ':
            for i, it in enumerate(e.value):
                walk(f, it, p + '/%d/' % i)
        elif e.VR in ('PN', 'LO', 'SH', 'ST', 'LT', 'UT', 'UC'):
            v = e.value
            vs = list(v) if isinstance(v, pydicom.multival.MultiValue) else [v]
            s = '\\'.join('' if x is None else str(x) for x in vs)
            print(f + '\t' + p + '\t' + s.encode('utf-8').hex())
for f in sorted(os.listdir(d)):
    if f.endswith('.dcm'):
        walk(f, pydicom.dcmread(os.path.join(d, f)), '')
"#;

/// pydicom's text values by (file, path).
type Reference = BTreeMap<(String, String), String>;

/// pydicom's charset folder and its values, or `None` (with a notice) if
/// python3 or pydicom is not installed.
fn pydicom_reference() -> Option<(PathBuf, Reference)> {
    let out = match Command::new("python3").args(["-c", PYDICOM_DUMP]).output() {
        Ok(out) if out.status.success() => out,
        _ => {
            eprintln!("NOTICE: python3 with pydicom not found; charset files skipped");
            return None;
        }
    };
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines();
    let dir = PathBuf::from(lines.next()?);
    let mut values = BTreeMap::new();
    for line in lines {
        let mut parts = line.split('\t');
        let (file, path, hex) = (parts.next()?, parts.next()?, parts.next().unwrap_or(""));
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        values.insert(
            (file.to_string(), path.to_string()),
            String::from_utf8(bytes).unwrap(),
        );
    }
    Some((dir, values))
}

/// Every text value of `obj` decoded, by path, walking in stream order and
/// tracking the codec dicom-rs had in force.
fn decode_all(
    obj: &InMemDicomObject,
    sets: CharacterSets,
    path: &str,
    out: &mut BTreeMap<String, Decoded>,
) -> CharacterSets {
    let mut sets = sets;
    for e in obj.iter() {
        let p = format!("{path}{:04X}{:04X}", e.tag().group(), e.tag().element());
        if let Some(items) = e.items() {
            for (i, item) in items.iter().enumerate() {
                let own = item
                    .element(SCS)
                    .ok()
                    .map(|e| e.to_str().unwrap().to_string());
                let item_sets = sets.item(own.as_deref());
                let end = decode_all(item, item_sets, &format!("{p}/{i}/"), out);
                sets = sets.after_item(&end);
            }
        } else if matches!(
            e.vr(),
            VR::PN | VR::LO | VR::SH | VR::ST | VR::LT | VR::UT | VR::UC
        ) {
            out.insert(p, decode_parsed(&e.to_str().unwrap(), &sets));
        } else if e.vr() == VR::UN {
            // Text in a private element of unknown VR: its raw bytes.
            out.insert(p, decode_bytes(&e.to_bytes().unwrap(), &sets));
        }
    }
    sets
}

fn top_sets(obj: &InMemDicomObject) -> CharacterSets {
    match obj.element(SCS) {
        Ok(e) => CharacterSets::from_value(&e.to_str().unwrap()),
        Err(_) => CharacterSets::default(),
    }
}

/// PN as pydicom prints it drops trailing empty groups and padding.
fn normal(s: &str) -> &str {
    s.trim_end_matches([' ', '\0']).trim_end_matches('=')
}

#[test]
fn every_text_value_of_the_pydicom_charset_files_is_what_pydicom_reads() {
    let Some((dir, reference)) = pydicom_reference() else {
        return;
    };
    let mut files = 0;
    let mut checked = 0;
    let mut by_file: BTreeMap<&str, Vec<(&str, &str)>> = BTreeMap::new();
    for ((file, path), value) in &reference {
        by_file
            .entry(file.as_str())
            .or_default()
            .push((path.as_str(), value.as_str()));
    }
    for (file, values) in by_file {
        let bytes = std::fs::read(dir.join(file)).unwrap();
        let input = DicomInput::read(bytes, Limits::default()).expect(file);
        let mut ours = BTreeMap::new();
        decode_all(&input.dataset, top_sets(&input.dataset), "", &mut ours);
        for (path, want) in values {
            match ours.get(path) {
                Some(Decoded::Text(got)) => {
                    assert_eq!(normal(got), normal(want), "{file} {path}");
                }
                other => panic!("{file} {path}: {other:?}, pydicom: {want:?}"),
            }
            checked += 1;
        }
        files += 1;
    }
    assert!(files >= 17, "only {files} charset files");
    eprintln!("{checked} values of {files} files match pydicom");
}

#[test]
fn patient_names_of_the_multi_byte_files() {
    let Some((dir, _)) = pydicom_reference() else {
        return;
    };
    for (file, want) in [
        ("chrH31.dcm", "Yamada^Tarou=山田^太郎=やまだ^たろう"),
        ("chrH32.dcm", "ﾔﾏﾀﾞ^ﾀﾛｳ=山田^太郎=やまだ^たろう"),
        ("chrI2.dcm", "Hong^Gildong=洪^吉洞=홍^길동"),
        ("chrKoreanMulti.dcm", "김희중"),
        ("chrJapMulti.dcm", "やまだ^たろう"),
        ("chrJapMultiExplicitIR6.dcm", "やまだ^たろう"),
        ("chrX1.dcm", "Wang^XiaoDong=王^小東="),
        ("chrX2.dcm", "Wang^XiaoDong=王^小东="),
        ("chrArab.dcm", "قباني^لنزار"),
        ("chrRuss.dcm", "Люкceмбypг"),
    ] {
        let input =
            DicomInput::read(std::fs::read(dir.join(file)).unwrap(), Limits::default()).unwrap();
        let sets = top_sets(&input.dataset);
        let parsed = input
            .dataset
            .element(PATIENT_NAME)
            .unwrap()
            .to_str()
            .unwrap();
        assert_eq!(
            decode_parsed(&parsed, &sets),
            Decoded::Text(want.to_string()),
            "{file}"
        );
    }
}

/// The value bytes of the last `(group,element)` with a 2-byte length in `out`.
fn value_in(out: &[u8], tag: Tag) -> Vec<u8> {
    let key = [tag.group().to_le_bytes(), tag.element().to_le_bytes()].concat();
    let at = (0..out.len() - 8)
        .rev()
        .find(|&i| out[i..i + 4] == key[..] && out[i + 4].is_ascii_uppercase())
        .expect("element written");
    let len = u16::from_le_bytes([out[at + 6], out[at + 7]]) as usize;
    out[at + 8..at + 8 + len].to_vec()
}

fn with_name(scs: &str, name: &[u8]) -> Vec<u8> {
    let mut name = name.to_vec();
    if name.len() % 2 == 1 {
        name.push(b' ');
    }
    let ds = [
        el(0x0008, 0x0005, b"CS", &text(scs)),
        el(0x0008, 0x0016, b"UI", &uid("1.2.840.10008.5.1.4.1.1.7")),
        el(0x0008, 0x0018, b"UI", &uid("1.2.3.4.5.6.7")),
        el(0x0010, 0x0010, b"PN", &name),
    ]
    .concat();
    part10("1.2.840.10008.1.2.1", &ds, 0)
}

#[test]
fn encoded_names_are_written_in_the_data_set_s_character_sets() {
    for (scs, name) in [
        ("\\ISO 2022 IR 87", "Yamada^Tarou=山田^太郎=やまだ^たろう"),
        (
            "ISO 2022 IR 13\\ISO 2022 IR 87",
            "ﾔﾏﾀﾞ^ﾀﾛｳ=山田^太郎=やまだ^たろう",
        ),
        ("\\ISO 2022 IR 149", "Hong^Gildong=洪^吉洞=홍^길동"),
        ("\\ISO 2022 IR 58", "Wang^XiaoDong=王^小东"),
        ("ISO_IR 192", "Wang^XiaoDong=王^小東"),
        ("GB18030", "Wang^XiaoDong=王^小东"),
        ("ISO_IR 100", "Buc^Jérôme"),
        ("ISO_IR 144", "Люкceмбypг"),
        ("ISO_IR 148", "Öztürk^Şükrü"),
    ] {
        let mut input = DicomInput::read(with_name(scs, b"X"), Limits::default()).unwrap();
        let sets = top_sets(&input.dataset);
        let s = encode_for_dicom_rs(name, &sets).unwrap_or_else(|| panic!("{scs}"));
        input.dataset.put(DataElement::new(
            PATIENT_NAME,
            VR::PN,
            PrimitiveValue::from(s),
        ));
        let mut out = Vec::new();
        input.write_part10(&input.dataset, &mut out).expect(scs);
        // The written bytes are the name in the declared sets...
        let written = value_in(&out, PATIENT_NAME);
        assert_eq!(
            decode_bytes(&written, &sets).text_or_panic().trim_end(),
            name,
            "{scs}"
        );
        // ...and read back through dicom-rs, they decode to it.
        let back = DicomInput::read(out, Limits::default()).unwrap();
        let parsed = back
            .dataset
            .element(PATIENT_NAME)
            .unwrap()
            .to_str()
            .unwrap();
        assert_eq!(
            decode_parsed(&parsed, &top_sets(&back.dataset)),
            Decoded::Text(name.to_string()),
            "{scs}"
        );
    }
    // A name the sets cannot hold is refused, not written as `?`.
    let sets = CharacterSets::from_value("ISO_IR 100");
    assert_eq!(encode_for_dicom_rs("山田", &sets), None);
}

trait TextOrPanic {
    fn text_or_panic(self) -> String;
}
impl TextOrPanic for Decoded {
    fn text_or_panic(self) -> String {
        match self {
            Decoded::Text(s) => s,
            Decoded::Undecodable => panic!("undecodable"),
        }
    }
}

#[test]
fn an_item_s_character_set_stays_in_force_in_dicom_rs_after_the_item() {
    // Top level UTF-8; an item in Japanese; then a UTF-8 name, which dicom-rs
    // 0.10 decodes as Windows-31J (mojibake), and writes back unchanged.
    let item_body = [
        el(
            0x0008,
            0x0005,
            b"CS",
            &text("ISO 2022 IR 13\\ISO 2022 IR 87"),
        ),
        el(0x0008, 0x0100, b"SH", &text("X")),
    ]
    .concat();
    let name = "王^小東".as_bytes().to_vec();
    let ds = [
        el(0x0008, 0x0005, b"CS", &text("ISO_IR 192")),
        el(0x0008, 0x0016, b"UI", &uid("1.2.840.10008.5.1.4.1.1.7")),
        el(0x0008, 0x0018, b"UI", &uid("1.2.3.4.5.6.7")),
        el(0x0008, 0x1140, b"SQ", &item(&item_body)),
        el(0x0010, 0x0010, b"PN", &name),
    ]
    .concat();
    let input = DicomInput::read(part10("1.2.840.10008.1.2.1", &ds, 0), Limits::default()).unwrap();
    let parsed = input
        .dataset
        .element(PATIENT_NAME)
        .unwrap()
        .to_str()
        .unwrap();
    assert_ne!(
        parsed, "王^小東",
        "dicom-rs fixed its codec state: revisit charset.rs"
    );
    let mut ours = BTreeMap::new();
    decode_all(&input.dataset, top_sets(&input.dataset), "", &mut ours);
    assert_eq!(
        ours.get("00100010"),
        Some(&Decoded::Text("王^小東".to_string()))
    );
}

#[test]
fn korean_bytes_under_a_utf8_codec_are_undecodable_not_garbage() {
    // An item `\ISO 2022 IR 149` in a UTF-8 data set: dicom-rs keeps UTF-8
    // (it cannot name ""), so KS X 1001 bytes become `\ooo` escapes.
    let ko = b"\x1b$)C\xc8\xab^\x1b$)C\xb1\xe6\xb5\xbf".to_vec();
    let item_body = [
        el(0x0008, 0x0005, b"CS", &text("\\ISO 2022 IR 149")),
        el(0x0010, 0x0010, b"PN", &ko),
    ]
    .concat();
    let ds = [
        el(0x0008, 0x0005, b"CS", &text("ISO_IR 192")),
        el(0x0008, 0x0016, b"UI", &uid("1.2.840.10008.5.1.4.1.1.7")),
        el(0x0008, 0x0018, b"UI", &uid("1.2.3.4.5.6.7")),
        el(0x0008, 0x1140, b"SQ", &item(&item_body)),
    ]
    .concat();
    let input = DicomInput::read(part10("1.2.840.10008.1.2.1", &ds, 0), Limits::default()).unwrap();
    let mut ours = BTreeMap::new();
    decode_all(&input.dataset, top_sets(&input.dataset), "", &mut ours);
    assert_eq!(ours.get("00081140/0/00100010"), Some(&Decoded::Undecodable));
    // The same bytes in a UN element decode exactly.
    let sets = CharacterSets::from_value("\\ISO 2022 IR 149");
    assert_eq!(
        decode_bytes(&ko, &sets),
        Decoded::Text("홍^길동".to_string())
    );
}
