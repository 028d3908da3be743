//! Cleaning free text (action C): every identifying span of a kept text value
//! is replaced by its kind (`[NAME]`, `[ID]`...), the clinical words around it
//! survive. The spans come from `obscura-detect`: the identifying values of
//! the same object, found again, and patterns no header held.

use crate::action::Action;
use crate::profile::Profile;
use crate::rule::{decide, Place};
use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry};
use dicom_core::header::Header;
use dicom_core::value::{PrimitiveValue, Value};
use dicom_core::{DataElement, Tag, VR};
use dicom_dictionary_std::{tags, StandardDataDictionary};
use dicom_object::mem::InMemElement;
use dicom_object::InMemDicomObject;
use obscura_detect::{find, find_known, redact, Detector, Kind, Known};
use obscura_dicom::charset::{
    decode_bytes, decode_parsed, encode_for_dicom_rs, CharacterSets, Decoded,
};

/// What replaces a value that cannot be decoded: it may hold anything.
const UNDECODABLE: &str = "[REMOVED]";

/// How a value is read, and what becomes of a value that cannot be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reading {
    /// Cleaning (C): every detector; an undecodable value is replaced whole.
    Clean,
    /// Free text kept outside the table: every detector; an undecodable
    /// value is kept (nothing readable in it matched).
    CheckText,
    /// Codes, labels and other values kept outside the table: only the
    /// object's own identifying values, found again.
    CheckKnown,
}

/// Cleans text values of one object.
#[derive(Debug)]
pub struct TextCleaner {
    known: Known,
    charsets: CharacterSets,
}

/// The Specific Character Set an object (or item) declares, if any.
pub fn declared_charsets(object: &InMemDicomObject) -> Option<String> {
    object
        .get(tags::SPECIFIC_CHARACTER_SET)
        .and_then(|e| e.value().primitive().map(|v| v.to_multi_str().join("\\")))
}

/// The character sets of `item`, entered from a data set whose sets are `outer`.
pub fn item_charsets(outer: &CharacterSets, item: &InMemDicomObject) -> CharacterSets {
    outer.item(declared_charsets(item).as_deref())
}

impl TextCleaner {
    /// A cleaner for `object`: learns the identifying values it holds (names,
    /// IDs, dates, addresses, phone numbers, institutions, devices, at any
    /// depth) and its Specific Character Set.
    pub fn new(object: &InMemDicomObject) -> Self {
        let mut cleaner = TextCleaner::without_known_values(object);
        cleaner.learn(object, cleaner.charsets.clone(), None);
        cleaner
    }

    /// A cleaner for `object` under `profile`: learns only the identifying
    /// values that the profile removes, replaces or cleans, so that a value
    /// an option retains (an institution, a station, a full date) is not
    /// cleaned where it is found again.
    pub fn for_profile(object: &InMemDicomObject, profile: &Profile) -> Self {
        let mut cleaner = TextCleaner::without_known_values(object);
        cleaner.learn(object, cleaner.charsets.clone(), Some(profile));
        cleaner
    }

    /// A cleaner that knows only the object's character sets: for profiles
    /// that read no text, which need not pay for learning its values.
    pub fn without_known_values(object: &InMemDicomObject) -> Self {
        TextCleaner {
            known: Known::default(),
            charsets: declared_charsets(object)
                .map(|v| CharacterSets::from_value(&v))
                .unwrap_or_default(),
        }
    }

    /// The character sets of the object's top level.
    pub fn charsets(&self) -> &CharacterSets {
        &self.charsets
    }

    /// The identifying values learned from the object.
    pub fn known(&self) -> &Known {
        &self.known
    }

    /// Learn the identifying values of `object`, read with `sets` (only
    /// those `profile` does not keep, when given); return the sets in force
    /// after it (see `CharacterSets::after_item`).
    fn learn(
        &mut self,
        object: &InMemDicomObject,
        mut sets: CharacterSets,
        profile: Option<&Profile>,
    ) -> CharacterSets {
        for elem in object.iter() {
            match elem.value() {
                Value::Sequence(seq) => {
                    for item in seq.items() {
                        let end = self.learn(item, item_charsets(&sets, item), profile);
                        sets = sets.after_item(&end);
                    }
                }
                Value::Primitive(v) => {
                    let kind = identifying_kind(elem.tag(), elem.vr())
                        .filter(|_| profile.is_none_or(|p| !keeps(p, elem.tag(), elem.vr())));
                    if let Some(kind) = kind {
                        for s in v.to_multi_str().iter() {
                            if let Decoded::Text(t) = decode_parsed(s, &sets) {
                                self.known.add(kind, &t);
                            }
                        }
                    }
                }
                Value::PixelSequence(_) => {}
            }
        }
        sets
    }

    /// `elem`, read with `sets`, with every identifying span of its text
    /// replaced; the number of spans replaced. Values that cannot be decoded
    /// are replaced whole.
    pub fn clean(&self, elem: InMemElement, sets: &CharacterSets) -> (InMemElement, usize) {
        self.scrub(elem, sets, Reading::Clean)
    }

    /// `elem`, read with `sets` as `reading` says, with every identifying
    /// span of its text replaced; the number of spans replaced.
    pub fn scrub(
        &self,
        elem: InMemElement,
        sets: &CharacterSets,
        reading: Reading,
    ) -> (InMemElement, usize) {
        let (tag, vr) = (elem.tag(), elem.vr());
        let Some(value) = elem.value().primitive() else {
            return (elem, 0);
        };
        if let PrimitiveValue::U8(bytes) = value {
            // text carried as UN or OB bytes
            return match self.clean_text(decode_bytes(bytes, sets), reading) {
                None => (elem, 0),
                Some((t, n)) => {
                    let mut b = t.into_bytes();
                    if b.len() % 2 == 1 {
                        b.push(b' ');
                    }
                    (DataElement::new(tag, vr, PrimitiveValue::from(b)), n)
                }
            };
        }
        if !matches!(value, PrimitiveValue::Str(_) | PrimitiveValue::Strs(_)) {
            return (elem, 0);
        }
        let mut spans = 0;
        let values: Vec<String> = value
            .to_multi_str()
            .iter()
            .map(|s| match self.clean_text(decode_parsed(s, sets), reading) {
                None => s.to_string(),
                Some((t, n)) => {
                    spans += n;
                    let t = truncate_to_vr(t, vr);
                    encode_for_dicom_rs(&t, sets).unwrap_or_else(|| ascii_only(&t))
                }
            })
            .collect();
        if spans == 0 {
            return (elem, 0);
        }
        (DataElement::new(tag, vr, strings_value(values)), spans)
    }

    /// For each string value of `elem` (read with `sets`), whether it holds
    /// one of the object's identifying values; `None` when none does.
    pub fn known_values_in(&self, elem: &InMemElement, sets: &CharacterSets) -> Option<Vec<bool>> {
        let value = elem.value().primitive()?;
        if !matches!(value, PrimitiveValue::Str(_) | PrimitiveValue::Strs(_)) {
            return None;
        }
        let flags: Vec<bool> = value
            .to_multi_str()
            .iter()
            .map(|s| match decode_parsed(s, sets) {
                Decoded::Text(t) => !find_known(&t, &self.known).is_empty(),
                Decoded::Undecodable => false,
            })
            .collect();
        flags.contains(&true).then_some(flags)
    }

    /// The cleaned text and the number of spans replaced; `None` when
    /// nothing identifying was found (the value stays as it is).
    fn clean_text(&self, decoded: Decoded, reading: Reading) -> Option<(String, usize)> {
        match decoded {
            Decoded::Undecodable if reading == Reading::Clean => Some((UNDECODABLE.to_string(), 1)),
            Decoded::Undecodable => None,
            Decoded::Text(text) => {
                let findings = match reading {
                    Reading::CheckKnown => find_known(&text, &self.known),
                    Reading::Clean | Reading::CheckText => find(&text, &self.known),
                };
                (!findings.is_empty()).then(|| (redact(&text, &findings), findings.len()))
            }
        }
    }

    /// Whether `text` (of an encapsulated document) still holds a value of
    /// the object's header.
    pub fn holds_known_values(&self, text: &str) -> bool {
        find(text, &self.known)
            .iter()
            .any(|f| f.detector == Detector::Contextual)
    }
}

/// The kind of identifying value an attribute holds, for the contextual
/// detector: names, dates, IDs, addresses, phones, institutions and devices
/// that Table E.1-1 lists. Descriptions and comments are not learned: they
/// are what gets cleaned.
fn identifying_kind(tag: Tag, vr: VR) -> Option<Kind> {
    if crate::rule::is_private(tag) {
        return None;
    }
    crate::table::row_for(tag)?;
    match vr {
        VR::PN => return Some(Kind::Name),
        VR::DA | VR::DT => return Some(Kind::Date),
        VR::LO | VR::SH | VR::ST | VR::LT | VR::UT | VR::UC => {}
        _ => return None,
    }
    let entry = StandardDataDictionary.by_tag(tag)?;
    let k = entry.alias();
    let kind = if k.contains("Address") {
        Kind::Address
    } else if k.contains("Telephone") || k.contains("Telecom") {
        Kind::Phone
    } else if k.contains("Institution") || k.contains("Department") {
        Kind::Institution
    } else if k == "StationName" || k == "DeviceSerialNumber" {
        Kind::Device
    } else if k.ends_with("ID")
        || k.ends_with("IDs")
        || k.ends_with("Number")
        || k.ends_with("Numbers")
        || k.contains("Identification")
        || k.contains("Identifier")
        || k.contains("Locator")
    {
        Kind::Id
    } else {
        return None;
    };
    Some(kind)
}

/// Whether `profile` keeps the attribute `tag` as it is (the one decision
/// the engine makes for it), so its value is not identity to remove.
fn keeps(profile: &Profile, tag: Tag, vr: VR) -> bool {
    decide(Place::top_level(tag, vr), profile).action == Action::Keep
}

/// A string value of any multiplicity: empty, one string, or several.
pub(crate) fn strings_value(values: Vec<String>) -> PrimitiveValue {
    match values.len() {
        0 => PrimitiveValue::Empty,
        1 => PrimitiveValue::from(values.into_iter().next().unwrap_or_default()),
        _ => PrimitiveValue::Strs(values.into()),
    }
}

/// Shorten cleaned text to the VR's maximum length (placeholders can make
/// text longer than the value it replaces).
fn truncate_to_vr(mut text: String, vr: VR) -> String {
    let max = match vr {
        VR::AE | VR::SH | VR::CS => 16,
        VR::LO | VR::PN => 64,
        VR::ST => 1024,
        VR::LT => 10240,
        _ => return text,
    };
    if let Some((i, _)) = text.char_indices().nth(max) {
        text.truncate(i);
    }
    text
}

/// Text that cannot be encoded in the object's character sets: its ASCII
/// characters, others as `?` (the identifying spans are already replaced).
fn ascii_only(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_ascii() { c } else { '?' })
        .collect()
}
