//! The attributes the index keeps for each instance, and their extraction
//! from a DICOM header.

use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use obscura_dicom::charset::{decode_parsed, CharacterSets, Decoded};
use obscura_dicom::{DicomInput, Source};
use std::collections::BTreeMap;

/// The level of the DICOM information model an attribute or a search is at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Patient and study attributes (one record per study).
    Study,
    /// Series attributes.
    Series,
    /// Instance attributes.
    Instance,
}

/// How an attribute's values are matched in a search.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A UID: exact or a list of UIDs (`a\b`), by keyed hash only.
    Uid,
    /// A DA value: exact or a range `a-b`, `a-`, `-b`.
    Date,
    /// A TM value: exact or a range.
    Time,
    /// A person name: exact or wildcard, case-insensitive.
    Name,
    /// Any other string: exact or wildcard, case-sensitive.
    Text,
}

macro_rules! attrs {
    ($($name:ident = $id:literal, $level:ident, $kind:ident, $tag:expr;)*) => {
        /// An attribute the index keeps (and QIDO can match on).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[allow(clippy::upper_case_acronyms)]
        pub enum Attr {
            $(
                #[doc = concat!("(", stringify!($tag), ") ", stringify!($name), ".")]
                $name,
            )*
        }

        impl Attr {
            /// Every attribute, in id order.
            pub const ALL: &'static [Attr] = &[$(Attr::$name),*];

            /// Its stable one-byte id in encrypted records.
            pub fn id(self) -> u8 {
                match self { $(Attr::$name => $id),* }
            }

            /// The attribute with this id.
            pub fn from_id(id: u8) -> Option<Attr> {
                match id { $($id => Some(Attr::$name),)* _ => None }
            }

            /// Its DICOM keyword.
            pub fn keyword(self) -> &'static str {
                match self { $(Attr::$name => stringify!($name)),* }
            }

            /// The level whose record holds it.
            pub fn level(self) -> Level {
                match self { $(Attr::$name => Level::$level),* }
            }

            /// How it is matched.
            pub fn kind(self) -> Kind {
                match self { $(Attr::$name => Kind::$kind),* }
            }

            /// Its tag (group, element).
            pub fn tag(self) -> (u16, u16) {
                match self { $(Attr::$name => { let t = $tag; (t.0, t.1) }),* }
            }
        }
    };
}

attrs! {
    PatientName = 1, Study, Name, tags::PATIENT_NAME;
    PatientID = 2, Study, Text, tags::PATIENT_ID;
    PatientBirthDate = 3, Study, Date, tags::PATIENT_BIRTH_DATE;
    PatientSex = 4, Study, Text, tags::PATIENT_SEX;
    AccessionNumber = 5, Study, Text, tags::ACCESSION_NUMBER;
    StudyDate = 6, Study, Date, tags::STUDY_DATE;
    StudyTime = 7, Study, Time, tags::STUDY_TIME;
    ReferringPhysicianName = 8, Study, Name, tags::REFERRING_PHYSICIAN_NAME;
    StudyDescription = 9, Study, Text, tags::STUDY_DESCRIPTION;
    StudyID = 10, Study, Text, tags::STUDY_ID;
    StudyInstanceUID = 11, Study, Uid, tags::STUDY_INSTANCE_UID;
    ModalitiesInStudy = 12, Study, Text, tags::MODALITIES_IN_STUDY;
    ResidenceState = 13, Study, Text, tags::REGION_OF_RESIDENCE;
    Modality = 20, Series, Text, tags::MODALITY;
    SeriesInstanceUID = 21, Series, Uid, tags::SERIES_INSTANCE_UID;
    SeriesNumber = 22, Series, Text, tags::SERIES_NUMBER;
    SeriesDescription = 23, Series, Text, tags::SERIES_DESCRIPTION;
    SOPInstanceUID = 30, Instance, Uid, tags::SOP_INSTANCE_UID;
    SOPClassUID = 31, Instance, Uid, tags::SOP_CLASS_UID;
    InstanceNumber = 32, Instance, Text, tags::INSTANCE_NUMBER;
    TransferSyntaxUID = 33, Instance, Uid, tags::TRANSFER_SYNTAX_UID;
}

impl Attr {
    /// Kept for the data owner only (the breach-impact report): never a
    /// search key, never in a search's results. The patient's state of
    /// residence (a US postal code derived from Region of Residence or
    /// Patient's Address; the address itself is not kept).
    pub fn is_owner_only(self) -> bool {
        self == Attr::ResidenceState
    }
}

impl std::fmt::Display for Attr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.keyword())
    }
}

/// Attribute values (decoded text, DICOM padding trimmed). Its `Debug`
/// prints keywords only: values may identify a patient.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Attributes(BTreeMap<Attr, String>);

impl std::fmt::Debug for Attributes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

impl Attributes {
    /// No attributes.
    pub fn new() -> Self {
        Self::default()
    }

    /// Set `attr` to `value` (trimmed of DICOM padding); an empty value removes it.
    pub fn set(&mut self, attr: Attr, value: &str) {
        let v = trim(value);
        if v.is_empty() {
            self.0.remove(&attr);
        } else {
            self.0.insert(attr, v.to_string());
        }
    }

    /// The value of `attr`, if present.
    pub fn get(&self, attr: Attr) -> Option<&str> {
        self.0.get(&attr).map(String::as_str)
    }

    /// Every (attribute, value), in id order.
    pub fn iter(&self) -> impl Iterator<Item = (Attr, &str)> {
        self.0.iter().map(|(a, v)| (*a, v.as_str()))
    }

    /// The attributes of one level only.
    pub fn at_level(&self, level: Level) -> Attributes {
        Attributes(
            self.0
                .iter()
                .filter(|(a, _)| a.level() == level)
                .map(|(a, v)| (*a, v.clone()))
                .collect(),
        )
    }

    /// Add every attribute of `other` (its values win).
    pub fn merge(&mut self, other: Attributes) {
        self.0.extend(other.0);
    }

    /// The index attributes of a data set read by obscura-dicom (only its
    /// header is in memory), with its transfer syntax.
    pub fn from_dicom<S: Source>(input: &DicomInput<S>) -> Self {
        let mut attrs = Self::from_dataset(&input.dataset);
        attrs.set(Attr::TransferSyntaxUID, &input.transfer_syntax_uid);
        attrs
    }

    /// The index attributes of a data set, text decoded per its Specific
    /// Character Set (text that cannot be decoded is kept as dicom-rs read it).
    pub fn from_dataset(ds: &InMemDicomObject) -> Self {
        let sets = ds
            .element(tags::SPECIFIC_CHARACTER_SET)
            .ok()
            .and_then(|e| e.to_str().ok().map(|s| CharacterSets::from_value(&s)))
            .unwrap_or_default();
        let mut attrs = Attributes::new();
        for &attr in Attr::ALL {
            if matches!(
                attr,
                Attr::TransferSyntaxUID | Attr::ModalitiesInStudy | Attr::ResidenceState
            ) {
                continue;
            }
            let (g, e) = attr.tag();
            let Ok(elem) = ds.element(dicom_core::Tag(g, e)) else {
                continue;
            };
            let Ok(parsed) = elem.to_str() else {
                continue;
            };
            let text = match decode_parsed(&parsed, &sets) {
                Decoded::Text(t) => t,
                Decoded::Undecodable => parsed.into_owned(),
            };
            attrs.set(attr, &text);
        }
        if let Some(m) = attrs.get(Attr::Modality).map(str::to_string) {
            attrs.set(Attr::ModalitiesInStudy, &m);
        }
        let text = |tag| ds.element(tag).ok().and_then(|e| e.to_str().ok());
        let state = text(tags::REGION_OF_RESIDENCE)
            .and_then(|r| crate::residence::from_region(&r))
            .or_else(|| {
                text(tags::PATIENT_ADDRESS).and_then(|a| crate::residence::from_address(&a))
            });
        if let Some(s) = state {
            attrs.set(Attr::ResidenceState, s);
        }
        attrs
    }

    /// Without the owner-only attributes ([`Attr::is_owner_only`]).
    pub fn without_owner_only(mut self) -> Self {
        self.0.retain(|a, _| !a.is_owner_only());
        self
    }

    /// The binary form sealed into an index record: (id, u16 length, bytes)
    /// per attribute, then zero padding to a multiple of 64 bytes so that a
    /// record's length says little about its values.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = self.encode_compact();
        out.resize(out.len().div_ceil(64).max(1) * 64, 0);
        out
    }

    /// [`encode`](Self::encode) without the padding (the search cache's form;
    /// [`decode`](Self::decode) and [`record_get`] read it).
    pub(crate) fn encode_compact(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        for (attr, value) in &self.0 {
            let bytes = value.as_bytes();
            let len = floor_char_boundary(value, bytes.len().min(u16::MAX as usize));
            out.push(attr.id());
            out.extend_from_slice(&(len as u16).to_le_bytes());
            out.extend_from_slice(&bytes[..len]);
        }
        out
    }

    /// Read [`encode`](Self::encode)'s form back; `None` if malformed.
    pub(crate) fn decode(mut bytes: &[u8]) -> Option<Self> {
        let mut attrs = Attributes::new();
        while let Some((&id, rest)) = bytes.split_first() {
            if id == 0 {
                break;
            }
            let attr = Attr::from_id(id)?;
            if rest.len() < 2 {
                return None;
            }
            let len = u16::from_le_bytes([rest[0], rest[1]]) as usize;
            let value = rest.get(2..2 + len)?;
            attrs
                .0
                .insert(attr, String::from_utf8(value.to_vec()).ok()?);
            bytes = &rest[2 + len..];
        }
        Some(attrs)
    }
}

/// The value of `attr` in an encoded record (one that
/// [`Attributes::decode`] accepts), without decoding the rest.
pub(crate) fn record_get(mut rec: &[u8], attr: Attr) -> Option<&str> {
    let want = attr.id();
    while let [id, lo, hi, rest @ ..] = rec {
        if *id == 0 {
            return None;
        }
        let len = u16::from_le_bytes([*lo, *hi]) as usize;
        let value = rest.get(..len)?;
        if *id == want {
            return std::str::from_utf8(value).ok();
        }
        rec = &rest[len..];
    }
    None
}

/// The largest `i <= len` on a char boundary of `s`.
fn floor_char_boundary(s: &str, mut len: usize) -> usize {
    while !s.is_char_boundary(len) {
        len -= 1;
    }
    len
}

/// A value without DICOM padding (spaces, NULs) around it.
pub(crate) fn trim(value: &str) -> &str {
    value.trim_matches(|c: char| c == ' ' || c == '\0')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_round_trip() {
        let mut seen = std::collections::HashSet::new();
        for &a in Attr::ALL {
            assert!(seen.insert(a.id()));
            assert_eq!(Attr::from_id(a.id()), Some(a));
            assert_ne!(a.id(), 0);
        }
    }

    #[test]
    fn encode_pads_and_decodes() {
        let mut a = Attributes::new();
        a.set(Attr::PatientName, "Müller^Jürgen ");
        a.set(Attr::StudyDate, "20230314");
        a.set(Attr::PatientID, "");
        let bytes = a.encode();
        assert_eq!(bytes.len() % 64, 0);
        let back = Attributes::decode(&bytes).unwrap();
        assert_eq!(back, a);
        assert_eq!(back.get(Attr::PatientName), Some("Müller^Jürgen"));
        assert_eq!(back.get(Attr::PatientID), None);
        assert!(!format!("{back:?}").contains("Jürgen"));
    }
}
