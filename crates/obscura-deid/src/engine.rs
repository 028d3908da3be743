//! The engine: applies the profile to every element at every nesting level.

use crate::action::{basic_action, Action};
use crate::dummy::{dummy_value, is_identifying_text_vr};
use crate::marking::mark;
use crate::profile::Profile;
use crate::pseudonym::{normalize, patient_identity, Pseudonymizer};
use crate::table::row_for;
use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry};
use dicom_core::header::Header;
use dicom_core::value::{PrimitiveValue, Value};
use dicom_core::{DataElement, Length, Tag, VR};
use dicom_dictionary_std::{tags, StandardDataDictionary};
use dicom_object::mem::InMemElement;
use dicom_object::InMemDicomObject;
use std::collections::BTreeMap;

/// A blank one-page PDF: the dummy value of an encapsulated PDF document.
const BLANK_PDF: &[u8] = include_bytes!("blank.pdf");

/// The result of de-identifying one data set.
#[derive(Debug)]
pub struct Deidentified {
    /// The de-identified data set.
    pub object: InMemDicomObject,
    /// Every UID replaced: original → replacement.
    pub uids: BTreeMap<String, String>,
    /// The patient's identity key and its pseudonymous Patient ID.
    pub patient: (String, String),
}

/// Applies a confidentiality profile with keyed pseudonyms. Knows nothing of
/// files or networks: it takes and returns dicom-rs objects.
#[derive(Debug, Clone)]
pub struct Deidentifier {
    profile: Profile,
    pseudonyms: Pseudonymizer,
}

/// How the walk treats elements that the table does not name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Apply the table; keep what it does not name.
    Table,
    /// Inside a sequence replaced by dummy content (D on a sequence): also
    /// replace every identifying text value the table does not name. Coded
    /// concepts are kept unless the sequence itself is an identifying code.
    Dummy {
        /// Whether code triples (CodeValue, CodingSchemeDesignator, CodeMeaning...) are kept.
        keep_codes: bool,
    },
}

/// State of one data set's walk.
struct Walk<'a> {
    pseudonyms: &'a Pseudonymizer,
    patient_id: String,
    uids: BTreeMap<String, String>,
    /// Sequence nesting level of the element being walked (0: top level).
    depth: usize,
}

impl Deidentifier {
    /// An engine applying `profile` with pseudonyms from `pseudonyms`.
    pub fn new(profile: Profile, pseudonyms: Pseudonymizer) -> Self {
        Deidentifier {
            profile,
            pseudonyms,
        }
    }

    /// The profile this engine applies.
    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    /// De-identify one data set (file meta excluded).
    pub fn deidentify(&self, object: InMemDicomObject) -> Deidentified {
        let text = |tag| {
            object
                .get(tag)
                .and_then(|e| e.to_str().ok().map(|s| s.to_string()))
                .unwrap_or_default()
        };
        let identity = patient_identity(
            &text(tags::PATIENT_ID),
            &text(tags::PATIENT_NAME),
            &text(tags::PATIENT_BIRTH_DATE),
        );
        let patient_id = self.pseudonyms.patient_id(&identity);
        let mut walk = Walk {
            pseudonyms: &self.pseudonyms,
            patient_id,
            uids: BTreeMap::new(),
            depth: 0,
        };
        let mut object = walk.object(object, Mode::Table);
        mark(&mut object, &self.profile);
        Deidentified {
            object,
            uids: walk.uids,
            patient: (identity, walk.patient_id),
        }
    }
}

impl Walk<'_> {
    fn object(&mut self, object: InMemDicomObject, mode: Mode) -> InMemDicomObject {
        InMemDicomObject::from_element_iter(
            object.into_iter().filter_map(|e| self.element(e, mode)),
        )
    }

    fn element(&mut self, elem: InMemElement, mode: Mode) -> Option<InMemElement> {
        let tag = elem.tag();
        let vr = elem.vr();
        if tag == tags::PATIENT_ID || tag == tags::PATIENT_NAME {
            // Replaced by the pseudonym wherever they occur, so the same
            // patient gets the same pseudonym in every file; a nested Patient
            // ID (another patient's) gets its own.
            let id = if tag == tags::PATIENT_ID && self.depth > 0 {
                self.pseudonyms
                    .patient_id(normalize(&elem.to_str().unwrap_or_default()))
            } else {
                self.patient_id.clone()
            };
            // written with the standard VR, whatever a broken input used
            let vr = if tag == tags::PATIENT_ID {
                VR::LO
            } else {
                VR::PN
            };
            return Some(DataElement::new(tag, vr, PrimitiveValue::from(id)));
        }
        let action = match row_for(tag) {
            _ if is_removed_overlay_group(tag) => Action::Remove,
            Some(row) => basic_action(row),
            None => Action::Keep,
        };
        match action {
            Action::Remove => None,
            // A sequence with no items is invalid where the sequence is Type 3
            // ("1-n items if present") and removal is invalid where it is
            // Type 2: its items are kept, with every identifying value in them
            // replaced as for D, which is conformant either way.
            Action::Empty | Action::Dummy if vr == VR::SQ => {
                let keep_codes = !is_identifying_code_sequence(tag);
                Some(self.sequence(elem, Mode::Dummy { keep_codes }))
            }
            Action::Empty => Some(DataElement::new(tag, vr, PrimitiveValue::Empty)),
            Action::Dummy if vr == VR::UI => Some(self.replace_uids(elem)),
            Action::Dummy => Some(dummy(elem)),
            Action::ReplaceUids if vr == VR::SQ => Some(self.sequence(elem, mode)),
            Action::ReplaceUids => Some(self.replace_uids(elem)),
            Action::Keep => Some(self.keep(elem, mode)),
        }
    }

    /// An element the table does not remove or replace.
    fn keep(&mut self, elem: InMemElement, mode: Mode) -> InMemElement {
        let (tag, vr) = (elem.tag(), elem.vr());
        match (vr, mode) {
            (VR::SQ, _) => self.sequence(elem, mode),
            (VR::UI, _) if !names_a_kind_of_thing(tag) => self.replace_uids(elem),
            (_, Mode::Dummy { keep_codes })
                if is_identifying_text_vr(vr) && !(keep_codes && is_code_attribute(tag)) =>
            {
                if elem
                    .value()
                    .primitive()
                    .is_some_and(|v| v.to_str().trim().is_empty())
                {
                    elem
                } else {
                    DataElement::new(tag, vr, dummy_value(vr))
                }
            }
            _ => elem,
        }
    }

    fn sequence(&mut self, elem: InMemElement, mode: Mode) -> InMemElement {
        let tag = elem.tag();
        let items: Vec<InMemDicomObject> = match elem.into_value() {
            Value::Sequence(seq) => {
                self.depth += 1;
                let items = seq
                    .into_items()
                    .into_iter()
                    .map(|item| self.object(item, mode))
                    .collect();
                self.depth -= 1;
                items
            }
            // encapsulated pixel data inside an item (an icon): not identity
            other => return DataElement::new(tag, VR::OB, other),
        };
        DataElement::new(tag, VR::SQ, Value::new_sequence(items, Length::UNDEFINED))
    }

    fn replace_uids(&mut self, elem: InMemElement) -> InMemElement {
        let (tag, vr) = (elem.tag(), elem.vr());
        let Some(old) = elem.value().primitive() else {
            return elem;
        };
        if vr != VR::UI {
            // U on a value that is not text UIDs (UN bytes, a wrong VR):
            // nothing to remap, so nothing of it is kept
            return DataElement::new(tag, vr, dummy_value(vr));
        }
        let new: Vec<String> = old
            .to_multi_str()
            .iter()
            .map(|u| {
                let before = normalize(u).to_string();
                let after = self.pseudonyms.uid(&before);
                if after != before {
                    self.uids.insert(before, after.clone());
                }
                after
            })
            .collect();
        let value = match new.len() {
            0 => PrimitiveValue::Empty,
            1 => PrimitiveValue::from(new.into_iter().next().unwrap_or_default()),
            _ => PrimitiveValue::Strs(new.into()),
        };
        DataElement::new(tag, VR::UI, value)
    }
}

/// The D replacement of an element: a dummy for its VR, except that an
/// encapsulated PDF becomes a blank PDF, a document that still opens.
fn dummy(elem: InMemElement) -> InMemElement {
    let (tag, vr) = (elem.tag(), elem.vr());
    let is_pdf = tag == tags::ENCAPSULATED_DOCUMENT
        && elem
            .value()
            .primitive()
            .is_some_and(|v| v.to_bytes().starts_with(b"%PDF"));
    let value = if is_pdf {
        PrimitiveValue::from(BLANK_PDF.to_vec())
    } else {
        dummy_value(vr)
    };
    DataElement::new(tag, vr, value)
}

/// Overlay Data (60xx,3000) is removed by the profile; the rest of its
/// repeating group (rows, columns, origin...) would then describe an overlay
/// that is not there, an invalid Overlay Plane module: the whole group goes.
fn is_removed_overlay_group(tag: Tag) -> bool {
    (0x6000..=0x601E).contains(&tag.0) && tag.0.is_multiple_of(2)
}

/// UI attributes that name a kind of thing (a SOP class, transfer syntax,
/// coding scheme, context group...) rather than an instance: never replaced.
fn names_a_kind_of_thing(tag: Tag) -> bool {
    let Some(entry) = StandardDataDictionary.by_tag(tag) else {
        return false;
    };
    let alias = entry.alias();
    [
        "ClassUID",
        "TransferSyntax",
        "CodingScheme",
        "ContextGroup",
        "MappingResource",
        "CreatorUID",
        "ContextUID",
    ]
    .iter()
    .any(|k| alias.contains(k))
}

/// The attributes of a coded entry (Code Sequence Macro, PS3.3 Table 8.8-1).
fn is_code_attribute(tag: Tag) -> bool {
    tag.0 == 0x0008 && matches!(tag.1, 0x0100..=0x010F | 0x0117..=0x0122)
}

/// Sequences coded D whose codes themselves identify (an institution, a person).
fn is_identifying_code_sequence(tag: Tag) -> bool {
    StandardDataDictionary.by_tag(tag).is_some_and(|e| {
        e.alias().ends_with("CodeSequence") || e.alias().ends_with("IdentificationSequence")
    })
}
