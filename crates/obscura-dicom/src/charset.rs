//! The true text of DICOM string values, per Specific Character Set
//! (0008,0005), whatever dicom-rs 0.10 made of them.
//!
//! dicom-rs decodes text with the *first* term of (0008,0005) only, and
//! knows no ISO 2022 code extension: in a `\ISO 2022 IR 87` (Japanese) or
//! `\ISO 2022 IR 149` (Korean) data set it decodes with the default
//! repertoire (as ISO 8859-1), so its `String`s hold the raw escape
//! sequences and bytes (upstream #443). Its text decoder is also one state
//! for the whole stream: a sequence item's (0008,0005) stays in force after
//! the item ends, for the rest of the enclosing data set, and a term it
//! cannot name (`""`, `ISO_IR 148`, ...) leaves the previous codec in force.
//! Bytes that its codec rejects become `\ooo` octal escapes (lossy).
//!
//! This module undoes all that: from a dicom-rs `String` it recovers the
//! original bytes (re-encoding with the codec dicom-rs used, see
//! [`CharacterSets::item`] and [`CharacterSets::after_item`] for tracking
//! it), then decodes them per PS3.5 6.1 with `encoding_rs` tables and its
//! own ISO 2022 code extension (G0/G1 designations, reset at delimiters).
//! Whatever cannot be decoded exactly is [`Decoded::Undecodable`]: never a
//! lossy guess. [`encode_for_dicom_rs`] is the way back: the `String` that
//! dicom-rs will write as the correctly encoded bytes.

use dicom_encoding::text::{SpecificCharacterSet, TextCodec};
use encoding_rs::Encoding;

const ESC: u8 = 0x1B;

/// A graphic character set that can be designated to G0 or G1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Graphic {
    /// ISO 646 / ASCII (G0).
    Ascii,
    /// JIS X 0201 Romaji (G0), read as ASCII like dicom-rs and pydicom do.
    Romaji,
    /// JIS X 0201 Katakana (G1).
    Katakana,
    /// JIS X 0208 (G0, two bytes).
    Jis0208,
    /// JIS X 0212 (G0, two bytes).
    Jis0212,
    /// KS X 1001 (G1, two bytes).
    Ksx1001,
    /// GB 2312 (G1, two bytes).
    Gb2312,
    /// ISO 8859-1 right half (G1).
    Latin1,
    /// ISO 8859-9 right half (G1).
    Latin5,
    /// Another ISO 8859 right half or TIS 620 (G1), through `encoding_rs`.
    Table(&'static Encoding),
}

/// A defined term of Specific Character Set, as understood here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Term {
    /// A single-byte set: G0 and G1 (G1 `None` for the default repertoire).
    Single { g0: Graphic, g1: Option<Graphic> },
    /// A multi-byte set reached by ISO 2022 escapes only (IR 87, 159, 149, 58).
    Multi(Graphic),
    /// UTF-8, GB18030 or GBK: no code extension.
    Whole(&'static Encoding),
    /// A term not known here.
    Unknown,
}

fn term_of(code: &str) -> Term {
    use Graphic::*;
    let code = code.trim();
    let norm = code.replace('_', " ");
    let number = norm
        .strip_prefix("ISO 2022 IR ")
        .or_else(|| norm.strip_prefix("ISO IR "));
    let single = |g1| Term::Single { g0: Ascii, g1 };
    match (code, number) {
        ("", _) | (_, Some("6")) => single(None),
        (_, Some("100")) => single(Some(Latin1)),
        (_, Some("101")) => single(Some(Table(encoding_rs::ISO_8859_2))),
        (_, Some("109")) => single(Some(Table(encoding_rs::ISO_8859_3))),
        (_, Some("110")) => single(Some(Table(encoding_rs::ISO_8859_4))),
        (_, Some("144")) => single(Some(Table(encoding_rs::ISO_8859_5))),
        (_, Some("127")) => single(Some(Table(encoding_rs::ISO_8859_6))),
        (_, Some("126")) => single(Some(Table(encoding_rs::ISO_8859_7))),
        (_, Some("138")) => single(Some(Table(encoding_rs::ISO_8859_8))),
        (_, Some("148")) => single(Some(Latin5)),
        (_, Some("166")) => single(Some(Table(encoding_rs::WINDOWS_874))),
        (_, Some("13")) => Term::Single {
            g0: Romaji,
            g1: Some(Katakana),
        },
        (_, Some("87")) => Term::Multi(Jis0208),
        (_, Some("159")) => Term::Multi(Jis0212),
        (_, Some("149")) => Term::Multi(Ksx1001),
        (_, Some("58")) => Term::Multi(Gb2312),
        ("ISO_IR 192", _) | ("ISO_IR_192", _) => Term::Whole(encoding_rs::UTF_8),
        ("GB18030", _) => Term::Whole(encoding_rs::GB18030),
        ("GBK", _) | ("GB2312", _) => Term::Whole(encoding_rs::GBK),
        _ => Term::Unknown,
    }
}

/// The Specific Character Set of a data set, parsed from (0008,0005), with
/// the codec dicom-rs 0.10 decoded (and will encode) its text with.
#[derive(Debug, Clone, PartialEq)]
pub struct CharacterSets {
    terms: Vec<Term>,
    /// The first term, as written.
    first: String,
    /// Whether ISO 2022 code extension is in use (several terms, or `ISO 2022 IR ...`).
    extension: bool,
    /// dicom-rs's text codec for the elements at hand.
    dicom_rs: SpecificCharacterSet,
}

impl Default for CharacterSets {
    /// ISO_IR 6, the default repertoire (no (0008,0005)).
    fn default() -> Self {
        CharacterSets::from_value("")
    }
}

impl CharacterSets {
    /// From the value of Specific Character Set (backslash-separated terms,
    /// may be empty), for a top-level data set as dicom-rs parses it.
    pub fn from_value(value: &str) -> Self {
        let mut sets = Self::terms_only(value);
        sets.dicom_rs = dicom_rs_switch(&SpecificCharacterSet::default(), value);
        sets
    }

    fn terms_only(value: &str) -> Self {
        let value = value.trim_end_matches(['\0', ' ']);
        let raw: Vec<&str> = if value.is_empty() {
            vec![""]
        } else {
            value.split('\\').collect()
        };
        let terms: Vec<Term> = raw.iter().map(|t| term_of(t)).collect();
        let extension = terms.len() > 1 || raw.iter().any(|t| t.trim().starts_with("ISO 2022"));
        CharacterSets {
            terms,
            first: raw[0].trim().to_string(),
            extension,
            dicom_rs: SpecificCharacterSet::default(),
        }
    }

    /// The sets of a sequence item of a data set with these sets, entered at
    /// this point of a stream-order walk: `own` is the item's own (0008,0005)
    /// if it has one (else the sets are inherited, PS3.5 6.1.2.5.4); dicom-rs
    /// switches codec only if it can name `own`'s first term.
    pub fn item(&self, own: Option<&str>) -> Self {
        match own {
            None => self.clone(),
            Some(value) => {
                let mut sets = Self::terms_only(value);
                sets.dicom_rs = dicom_rs_switch(&self.dicom_rs, value);
                sets
            }
        }
    }

    /// These sets, for the elements that follow, in this data set, a
    /// sequence whose last item ended with `item` in force: dicom-rs never
    /// switches back when an item ends, so its codec is the item's.
    pub fn after_item(&self, item: &CharacterSets) -> Self {
        CharacterSets {
            dicom_rs: item.dicom_rs.clone(),
            ..self.clone()
        }
    }

    /// Whether dicom-rs decodes text in these sets correctly, so that its
    /// Strings are the true text (a single, non-ISO 2022 term that dicom-rs
    /// knows, and its codec in force is that term's).
    pub fn dicom_rs_decodes(&self) -> bool {
        if self.extension || self.terms.len() != 1 {
            return false;
        }
        let expected = match self.terms[0] {
            Term::Single { g1: None, .. } => SpecificCharacterSet::default(),
            Term::Single {
                g1: Some(Graphic::Latin5),
                ..
            }
            | Term::Multi(_)
            | Term::Unknown => return false,
            Term::Single { g1: Some(_), .. } | Term::Whole(_) => {
                // The term as dicom-rs knows it, if it does.
                match SpecificCharacterSet::from_code(&self.first) {
                    Some(cs) => cs,
                    None => return false,
                }
            }
        };
        self.dicom_rs == expected
    }

    /// The initial G0 and G1 (also in force again after each delimiter).
    fn initial(&self) -> (Graphic, Option<Graphic>) {
        match self.terms[0] {
            Term::Single { g0, g1 } => (g0, g1),
            _ => (Graphic::Ascii, None),
        }
    }

    /// Whether `g` may be invoked by escape under these sets.
    fn declares(&self, g: Graphic) -> bool {
        self.terms.iter().any(|t| match *t {
            Term::Single { g0, g1 } => g0 == g || g1 == Some(g),
            Term::Multi(m) => m == g,
            _ => false,
        })
    }
}

/// dicom-rs's codec after it reads a (0008,0005) of `value` with `current` in force.
fn dicom_rs_switch(current: &SpecificCharacterSet, value: &str) -> SpecificCharacterSet {
    let first = value.split('\\').next().unwrap_or("");
    SpecificCharacterSet::from_code(first.trim_matches(['\0', ' ']))
        .unwrap_or_else(|| current.clone())
}

/// The true text of a value: `Text` or `Undecodable` (what cannot be
/// decoded is treated as identifying by the caller).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    /// The value's text, exactly.
    Text(String),
    /// The bytes are not valid in the declared character sets, or could not
    /// be recovered from what dicom-rs made of them.
    Undecodable,
}

/// Whether `s` holds a `\ooo` escape, what dicom-rs writes for a byte its
/// codec rejects (indistinguishable from a value delimiter before digits).
fn has_octal_escape(s: &str) -> bool {
    let b = s.as_bytes();
    b.windows(4).any(|w| {
        w[0] == b'\\'
            && (b'0'..=b'3').contains(&w[1])
            && (b'0'..=b'7').contains(&w[2])
            && (b'0'..=b'7').contains(&w[3])
    })
}

/// The bytes dicom-rs decoded `parsed` from, if they can be known exactly.
fn original_bytes(parsed: &str, codec: &SpecificCharacterSet) -> Option<Vec<u8>> {
    let latin1 =
        *codec == SpecificCharacterSet::default() || *codec == SpecificCharacterSet::ISO_IR_100;
    if latin1 {
        // ISO 8859-1 maps all 256 bytes: the exact inverse.
        return parsed
            .chars()
            .map(|c| u8::try_from(u32::from(c)).ok())
            .collect();
    }
    if has_octal_escape(parsed) {
        return None;
    }
    let bytes = codec.encode(parsed).ok()?;
    // Only a bijective round trip proves these were the bytes.
    (codec.decode(&bytes).ok()? == parsed).then_some(bytes)
}

/// The true text of a string value as dicom-rs parsed it (`to_str()` of the
/// element: values joined with `\`), with `sets` those of its data set
/// including the codec dicom-rs had in force (see [`CharacterSets::item`]).
pub fn decode_parsed(parsed: &str, sets: &CharacterSets) -> Decoded {
    match original_bytes(parsed, &sets.dicom_rs) {
        Some(bytes) => decode_bytes(&bytes, sets),
        None => Decoded::Undecodable,
    }
}

/// The true text of raw value bytes (text carried in UN elements or
/// unknown-VR private elements), per PS3.5 6.1 and the ISO 2022 code
/// extension of 6.1.2.5.
pub fn decode_bytes(bytes: &[u8], sets: &CharacterSets) -> Decoded {
    match decode_inner(bytes, sets) {
        Some(s) => Decoded::Text(s),
        None => Decoded::Undecodable,
    }
}

fn strict(enc: &'static Encoding, bytes: &[u8]) -> Option<String> {
    enc.decode_without_bom_handling_and_without_replacement(bytes)
        .map(|c| c.into_owned())
}

fn is_delimiter(b: u8) -> bool {
    matches!(b, b'\\' | b'^' | b'=' | b'\r' | b'\n' | 0x0C | b'\t')
}

/// The graphic set an escape sequence at the start of `rest` designates,
/// whether to G1, and its length.
fn escape(rest: &[u8]) -> Option<(Graphic, bool, usize)> {
    use Graphic::*;
    let r = |n: usize| rest.get(n).copied();
    match (r(1)?, r(2)?) {
        (b'(', b'B') => Some((Ascii, false, 3)),
        (b'(', b'J') => Some((Romaji, false, 3)),
        (b')', b'I') => Some((Katakana, true, 3)),
        (b'$', b'B') | (b'$', b'@') => Some((Jis0208, false, 3)),
        (b'$', b'(') => match r(3)? {
            b'D' => Some((Jis0212, false, 4)),
            b'B' | b'@' => Some((Jis0208, false, 4)),
            _ => None,
        },
        (b'$', b')') => match r(3)? {
            b'C' => Some((Ksx1001, true, 4)),
            b'A' => Some((Gb2312, true, 4)),
            _ => None,
        },
        (b'-', f) => {
            let g = match f {
                b'A' => Latin1,
                b'B' => Table(encoding_rs::ISO_8859_2),
                b'C' => Table(encoding_rs::ISO_8859_3),
                b'D' => Table(encoding_rs::ISO_8859_4),
                b'L' => Table(encoding_rs::ISO_8859_5),
                b'G' => Table(encoding_rs::ISO_8859_6),
                b'F' => Table(encoding_rs::ISO_8859_7),
                b'H' => Table(encoding_rs::ISO_8859_8),
                b'M' => Latin5,
                b'T' => Table(encoding_rs::WINDOWS_874),
                _ => return None,
            };
            Some((g, true, 3))
        }
        _ => None,
    }
}

fn latin5(b: u8) -> char {
    match b {
        0xD0 => '\u{011E}',
        0xDD => '\u{0130}',
        0xDE => '\u{015E}',
        0xF0 => '\u{011F}',
        0xFD => '\u{0131}',
        0xFE => '\u{015F}',
        _ => char::from(b),
    }
}

/// Decodes a run of bytes all in one graphic set.
fn flush(set: Graphic, run: &mut Vec<u8>, out: &mut String) -> Option<()> {
    if run.is_empty() {
        return Some(());
    }
    use Graphic::*;
    match set {
        Ascii | Romaji => out.extend(run.iter().map(|&b| char::from(b))),
        Latin1 => out.extend(run.iter().map(|&b| char::from(b))),
        Latin5 => out.extend(run.iter().map(|&b| latin5(b))),
        Katakana => {
            for &b in run.iter() {
                if !(0xA1..=0xDF).contains(&b) {
                    return None;
                }
                out.push(char::from_u32(0xFF61 + u32::from(b - 0xA1))?);
            }
        }
        Table(enc) => {
            if enc == encoding_rs::WINDOWS_874 && run.iter().any(|&b| (0x80..=0xA0).contains(&b)) {
                // TIS 620 proper: Windows-874's additions are not in it.
                return None;
            }
            out.push_str(&strict(enc, run)?);
        }
        Jis0208 | Jis0212 => {
            if run.len() & 1 != 0 {
                return None;
            }
            let mut euc = Vec::with_capacity(run.len() * 3 / 2);
            for pair in run.chunks(2) {
                if set == Jis0212 {
                    euc.push(0x8F);
                }
                euc.push(pair[0] | 0x80);
                euc.push(pair[1] | 0x80);
            }
            out.push_str(&strict(encoding_rs::EUC_JP, &euc)?);
        }
        Ksx1001 | Gb2312 => {
            if run.len() & 1 != 0 || run.iter().any(|&b| b < 0xA1 || b == 0xFF) {
                return None;
            }
            let enc = if set == Ksx1001 {
                encoding_rs::EUC_KR
            } else {
                encoding_rs::GBK
            };
            out.push_str(&strict(enc, run)?);
        }
    }
    run.clear();
    Some(())
}

fn decode_inner(bytes: &[u8], sets: &CharacterSets) -> Option<String> {
    match sets.terms[0] {
        Term::Whole(enc) => {
            if bytes.contains(&ESC) {
                return None;
            }
            return strict(enc, bytes);
        }
        Term::Unknown => {
            // Unknown repertoire: only plain ASCII can be read with certainty.
            return (bytes.is_ascii() && !bytes.contains(&ESC))
                .then(|| bytes.iter().map(|&b| char::from(b)).collect());
        }
        Term::Multi(_) | Term::Single { .. } => {}
    }
    let (g0_init, mut g1_init) = sets.initial();
    if !sets.extension && g1_init.is_none() {
        // The default repertoire alone: bytes above 0x7F are read as
        // ISO 8859-1, as dicom-rs, pydicom and DCMTK all do.
        g1_init = Some(Graphic::Latin1);
    }
    let (mut g0, mut g1) = (g0_init, g1_init);
    let mut out = String::with_capacity(bytes.len());
    let mut run: Vec<u8> = Vec::new();
    let mut run_set = g0;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == ESC {
            let (set, to_g1, len) = escape(&bytes[i..])?;
            // An escape to a set the data set does not declare is not the
            // declared text: refuse rather than guess.
            if !sets.extension || !(sets.declares(set) || set == Graphic::Ascii) {
                return None;
            }
            if to_g1 {
                g1 = Some(set);
            } else {
                g0 = set;
            }
            i += len;
            continue;
        }
        let two_byte_g0 = matches!(g0, Graphic::Jis0208 | Graphic::Jis0212);
        let set = if b < 0x20 || b == 0x7F || (b == 0x20 && two_byte_g0) {
            // Controls and the space are the same in every set.
            flush(run_set, &mut run, &mut out)?;
            out.push(char::from(b));
            if matches!(b, b'\r' | b'\n' | 0x0C | b'\t') {
                (g0, g1) = (g0_init, g1_init);
            }
            i += 1;
            continue;
        } else if b < 0x80 {
            if two_byte_g0 {
                let second = *bytes.get(i + 1)?;
                if !(0x21..=0x7E).contains(&second) {
                    return None;
                }
                if run_set != g0 {
                    flush(run_set, &mut run, &mut out)?;
                }
                run_set = g0;
                run.extend_from_slice(&[b, second]);
                i += 2;
                continue;
            }
            if is_delimiter(b) {
                flush(run_set, &mut run, &mut out)?;
                out.push(char::from(b));
                (g0, g1) = (g0_init, g1_init);
                i += 1;
                continue;
            }
            g0
        } else {
            let g = g1?;
            if (0x80..0xA0).contains(&b)
                && !matches!(g, Graphic::Latin1 | Graphic::Latin5 | Graphic::Table(_))
            {
                return None;
            }
            if matches!(g, Graphic::Ksx1001 | Graphic::Gb2312) {
                let second = *bytes.get(i + 1)?;
                if run_set != g {
                    flush(run_set, &mut run, &mut out)?;
                }
                run_set = g;
                run.extend_from_slice(&[b, second]);
                i += 2;
                continue;
            }
            g
        };
        if run_set != set {
            flush(run_set, &mut run, &mut out)?;
            run_set = set;
        }
        run.push(b);
        i += 1;
    }
    flush(run_set, &mut run, &mut out)?;
    Some(out)
}

/// The bytes of `text` in `sets`, with ISO 2022 escapes where the sets use
/// code extension (back to the initial sets before every delimiter and at
/// the end); `None` if a character cannot be represented.
pub fn encode_bytes(text: &str, sets: &CharacterSets) -> Option<Vec<u8>> {
    use Graphic::*;
    match sets.terms[0] {
        Term::Whole(enc) => return encode_strict(enc, text),
        Term::Unknown => return text.is_ascii().then(|| text.as_bytes().to_vec()),
        _ => {}
    }
    let (g0_init, g1_init) = sets.initial();
    let (mut g0, mut g1) = (g0_init, g1_init);
    let mut out = Vec::with_capacity(text.len());
    let mut buf = [0u8; 4];
    for c in text.chars() {
        let b = c as u32;
        if b < 0x80 {
            let byte = b as u8;
            if g0 != g0_init {
                out.extend_from_slice(designation(g0_init, false));
                g0 = g0_init;
            }
            out.push(byte);
            if is_delimiter(byte) {
                g1 = g1_init;
            }
            continue;
        }
        // Candidate sets, in the order of the terms.
        let mut done = false;
        let mut candidates: Vec<(Graphic, bool)> = Vec::new();
        if let Some(g) = g1_init {
            candidates.push((g, true));
        }
        if sets.extension {
            for t in &sets.terms {
                match *t {
                    Term::Single { g1: Some(g), .. } => candidates.push((g, true)),
                    Term::Multi(m) => candidates.push((m, !matches!(m, Jis0208 | Jis0212))),
                    _ => {}
                }
            }
        }
        for (g, to_g1) in candidates {
            let Some(bytes) = encode_in(g, c, &mut buf) else {
                continue;
            };
            if to_g1 {
                if g1 != Some(g) {
                    out.extend_from_slice(designation(g, true));
                    g1 = Some(g);
                }
            } else if g0 != g {
                out.extend_from_slice(designation(g, false));
                g0 = g;
            }
            out.extend_from_slice(&bytes);
            done = true;
            break;
        }
        if !done {
            return None;
        }
    }
    if g0 != g0_init {
        out.extend_from_slice(designation(g0_init, false));
    }
    Some(out)
}

fn designation(g: Graphic, to_g1: bool) -> &'static [u8] {
    use Graphic::*;
    match (g, to_g1) {
        (Ascii, _) => b"\x1b(B",
        (Romaji, _) => b"\x1b(J",
        (Katakana, _) => b"\x1b)I",
        (Jis0208, _) => b"\x1b$B",
        (Jis0212, _) => b"\x1b$(D",
        (Ksx1001, _) => b"\x1b$)C",
        (Gb2312, _) => b"\x1b$)A",
        (Latin1, _) => b"\x1b-A",
        (Latin5, _) => b"\x1b-M",
        (Table(e), _) if e == encoding_rs::ISO_8859_2 => b"\x1b-B",
        (Table(e), _) if e == encoding_rs::ISO_8859_3 => b"\x1b-C",
        (Table(e), _) if e == encoding_rs::ISO_8859_4 => b"\x1b-D",
        (Table(e), _) if e == encoding_rs::ISO_8859_5 => b"\x1b-L",
        (Table(e), _) if e == encoding_rs::ISO_8859_6 => b"\x1b-G",
        (Table(e), _) if e == encoding_rs::ISO_8859_7 => b"\x1b-F",
        (Table(e), _) if e == encoding_rs::ISO_8859_8 => b"\x1b-H",
        (Table(_), _) => b"\x1b-T",
    }
}

fn encode_strict(enc: &'static Encoding, text: &str) -> Option<Vec<u8>> {
    let (bytes, _, had_errors) = enc.encode(text);
    (!had_errors).then(|| bytes.into_owned())
}

/// The bytes of one non-ASCII character in graphic set `g` (high bit as
/// the set is invoked: set for G1, clear for G0 two-byte sets).
fn encode_in(g: Graphic, c: char, buf: &mut [u8; 4]) -> Option<Vec<u8>> {
    use Graphic::*;
    let s: &str = c.encode_utf8(buf);
    let bytes = match g {
        Ascii | Romaji => return None,
        Latin1 => vec![u8::try_from(c as u32).ok().filter(|b| *b >= 0x80)?],
        Latin5 => {
            let b = (0x80..=0xFFu8).find(|&b| latin5(b) == c)?;
            vec![b]
        }
        Katakana => {
            let v = c as u32;
            if !(0xFF61..=0xFF9F).contains(&v) {
                return None;
            }
            vec![(v - 0xFF61 + 0xA1) as u8]
        }
        Table(enc) => {
            let b = encode_strict(enc, s)?;
            if b.len() != 1 || b[0] < 0x80 {
                return None;
            }
            if enc == encoding_rs::WINDOWS_874 && b[0] <= 0xA0 {
                return None;
            }
            b
        }
        Jis0208 => {
            let b = encode_strict(encoding_rs::EUC_JP, s)?;
            if b.len() != 2 || b.iter().any(|&x| !(0xA1..=0xFE).contains(&x)) {
                return None;
            }
            vec![b[0] & 0x7F, b[1] & 0x7F]
        }
        // encoding_rs cannot encode JIS X 0212.
        Jis0212 => return None,
        Ksx1001 | Gb2312 => {
            let enc = if g == Ksx1001 {
                encoding_rs::EUC_KR
            } else {
                encoding_rs::GBK
            };
            let b = encode_strict(enc, s)?;
            if b.len() != 2 || b.iter().any(|&x| !(0xA1..=0xFE).contains(&x)) {
                return None;
            }
            b
        }
    };
    Some(bytes)
}

/// The String to hand dicom-rs so that it writes `text` correctly encoded
/// in `sets` (with the codec dicom-rs has in force there, which must be the
/// same when the object is written as when it was read); `None` if `text`
/// cannot be represented in them.
pub fn encode_for_dicom_rs(text: &str, sets: &CharacterSets) -> Option<String> {
    let bytes = encode_bytes(text, sets)?;
    let codec = &sets.dicom_rs;
    let latin1 =
        *codec == SpecificCharacterSet::default() || *codec == SpecificCharacterSet::ISO_IR_100;
    let s: String = if latin1 {
        bytes.iter().map(|&b| char::from(b)).collect()
    } else {
        codec.decode(&bytes).ok()?
    };
    // dicom-rs must write back exactly these bytes.
    (codec.encode(&s).ok()? == bytes).then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(d: Decoded) -> String {
        match d {
            Decoded::Text(s) => s,
            Decoded::Undecodable => panic!("undecodable"),
        }
    }

    #[test]
    fn japanese_iso_2022_bytes() {
        let sets = CharacterSets::from_value("\\ISO 2022 IR 87");
        assert!(!sets.dicom_rs_decodes());
        let b =
            b"Yamada^Tarou=\x1b$B;3ED\x1b(B^\x1b$BB@O:\x1b(B=\x1b$B$d$^$@\x1b(B^\x1b$B$?$m$&\x1b(B";
        assert_eq!(
            text(decode_bytes(b, &sets)),
            "Yamada^Tarou=山田^太郎=やまだ^たろう"
        );
    }

    #[test]
    fn katakana_and_kanji_with_ir_13() {
        let sets = CharacterSets::from_value("ISO 2022 IR 13\\ISO 2022 IR 87");
        let b = b"\xd4\xcf\xc0\xde^\xc0\xdb\xb3=\x1b$B;3ED\x1b(J^\x1b$BB@O:\x1b(J";
        assert_eq!(text(decode_bytes(b, &sets)), "ﾔﾏﾀﾞ^ﾀﾛｳ=山田^太郎");
    }

    #[test]
    fn korean_and_chinese_g1() {
        let ko = CharacterSets::from_value("\\ISO 2022 IR 149");
        let b = b"Hong^Gildong=\x1b$)C\xfb\xf3^\x1b$)C\xd1\xce\xd4\xd7=\x1b$)C\xc8\xab^\x1b$)C\xb1\xe6\xb5\xbf";
        assert_eq!(text(decode_bytes(b, &ko)), "Hong^Gildong=洪^吉洞=홍^길동");
        // G1 is reset at a delimiter: high bytes after it without a new
        // designation are not Korean.
        assert_eq!(
            decode_bytes(b"\x1b$)C\xc8\xab^\xb1\xe6", &ko),
            Decoded::Undecodable
        );
        let zh = CharacterSets::from_value("\\ISO 2022 IR 58");
        let b = b"Wang^XiaoDong=\x1b$)A\xcd\xf5^\x1b$)A\xd0\xa1\xb6\xab";
        assert_eq!(text(decode_bytes(b, &zh)), "Wang^XiaoDong=王^小东");
    }

    #[test]
    fn jis_x_0212() {
        let sets = CharacterSets::from_value("\\ISO 2022 IR 87\\ISO 2022 IR 159");
        // JIS X 0212 0x3021 is U+4E02.
        assert_eq!(
            text(decode_bytes(b"\x1b$(D\x30\x21\x1b(B^A", &sets)),
            "\u{4E02}^A"
        );
    }

    #[test]
    fn errors_are_undecodable() {
        let jp = CharacterSets::from_value("\\ISO 2022 IR 87");
        for bad in [
            &b"\x1b$B;3E\x1b(B"[..], // odd two-byte run
            b"\x1b$Z",               // unknown escape
            b"\x1b$)C\xc8\xab",      // undeclared set
            b"A\xe9",                // high byte, no G1
            b"\x1b",
        ] {
            assert_eq!(decode_bytes(bad, &jp), Decoded::Undecodable, "{bad:x?}");
        }
        let utf8 = CharacterSets::from_value("ISO_IR 192");
        assert_eq!(decode_bytes(b"A\xe4B", &utf8), Decoded::Undecodable);
        let greek = CharacterSets::from_value("ISO_IR 126");
        assert_eq!(decode_bytes(b"\xae", &greek), Decoded::Undecodable);
        let unknown = CharacterSets::from_value("ISO_IR 999");
        assert_eq!(decode_bytes(b"A\xe9", &unknown), Decoded::Undecodable);
        assert_eq!(text(decode_bytes(b"AB", &unknown)), "AB");
    }

    #[test]
    fn single_byte_sets() {
        let cases: [(&str, &[u8], &str); 6] = [
            ("ISO_IR 100", b"Buc^J\xe9r\xf4me", "Buc^Jérôme"),
            ("ISO_IR 148", b"\xdd\xfe\xf0", "İşğ"),
            ("ISO_IR 144", b"\xbb\xee\xda", "Люк"),
            ("ISO_IR 13", b"\xd4\xcf", "ﾔﾏ"),
            ("", b"M\xfcller", "Müller"),
            ("GB18030", b"\xcd\xf5", "王"),
        ];
        for (cs, b, want) in cases {
            assert_eq!(text(decode_bytes(b, &CharacterSets::from_value(cs))), want);
        }
        assert!(CharacterSets::from_value("ISO_IR 100").dicom_rs_decodes());
        assert!(CharacterSets::from_value("ISO_IR 192").dicom_rs_decodes());
        assert!(CharacterSets::default().dicom_rs_decodes());
        assert!(!CharacterSets::from_value("ISO_IR 148").dicom_rs_decodes());
    }

    #[test]
    fn parsed_strings_as_dicom_rs_makes_them() {
        // \ISO 2022 IR 87: dicom-rs decodes as ISO 8859-1.
        let sets = CharacterSets::from_value("\\ISO 2022 IR 87");
        let parsed = "\u{1b}$B;3ED\u{1b}(B^\u{1b}$BB@O:\u{1b}(B";
        assert_eq!(text(decode_parsed(parsed, &sets)), "山田^太郎");
        // ISO 2022 IR 13 first: dicom-rs decodes as Windows-31J.
        let sets = CharacterSets::from_value("ISO 2022 IR 13\\ISO 2022 IR 87");
        let parsed = "ﾔﾏﾀ\u{ff9e}^ﾀﾛｳ=\u{1b}$B;3ED\u{1b}(J";
        assert_eq!(text(decode_parsed(parsed, &sets)), "ﾔﾏﾀﾞ^ﾀﾛｳ=山田");
        // A byte dicom-rs could not decode became `\ooo`: lost.
        let utf8 = CharacterSets::from_value("ISO_IR 192");
        assert_eq!(decode_parsed("A\\344B", &utf8), Decoded::Undecodable);
        assert_eq!(text(decode_parsed("王^小東", &utf8)), "王^小東");
    }

    #[test]
    fn item_codec_leaks_into_the_rest_of_the_data_set() {
        let top = CharacterSets::from_value("ISO_IR 192");
        let item = top.item(Some("ISO 2022 IR 13\\ISO 2022 IR 87"));
        let after = top.after_item(&item);
        assert!(!after.dicom_rs_decodes());
        // What dicom-rs 0.10 makes of UTF-8 "王^小東" read as Windows-31J.
        assert_eq!(text(decode_parsed("邇疑蟆乗擲", &after)), "王^小東");
        // An item whose first term dicom-rs cannot name keeps the codec.
        let ko = top.item(Some("\\ISO 2022 IR 149"));
        assert_eq!(ko.dicom_rs, SpecificCharacterSet::ISO_IR_192);
        assert_eq!(top.item(None), top);
    }

    #[test]
    fn encode_round_trips() {
        let cases = [
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
            ("ISO_IR 148", "İşğ"),
            ("ISO 2022 IR 100\\ISO 2022 IR 126", "Jérôme Διονυσιος\r\nx"),
        ];
        for (cs, t) in cases {
            let sets = CharacterSets::from_value(cs);
            let bytes = encode_bytes(t, &sets).unwrap_or_else(|| panic!("{cs}: {t}"));
            assert_eq!(text(decode_bytes(&bytes, &sets)), t, "{cs}");
            let s = encode_for_dicom_rs(t, &sets).unwrap();
            assert_eq!(sets.dicom_rs.encode(&s).unwrap(), bytes, "{cs}");
            assert_eq!(text(decode_parsed(&s, &sets)), t, "{cs}");
        }
        assert_eq!(
            encode_bytes("山田", &CharacterSets::from_value("\\ISO 2022 IR 87")).unwrap(),
            b"\x1b$B;3ED\x1b(B"
        );
        assert!(encode_for_dicom_rs("山田", &CharacterSets::from_value("ISO_IR 100")).is_none());
        assert!(
            encode_for_dicom_rs("홍", &CharacterSets::from_value("\\ISO 2022 IR 87")).is_none()
        );
    }
}
