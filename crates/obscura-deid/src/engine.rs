//! The engine: applies the profile to every element at every nesting level.

use crate::action::Action;
use crate::clean::{item_charsets, strings_value, Reading, TextCleaner};
use crate::dates::{shift_da, shift_dt};
use crate::dummy::dummy_value;
use crate::marking::mark;
use crate::options::DeidOption;
use crate::profile::Profile;
use crate::pseudonym::{normalize, patient_identity, Pseudonymizer};
use crate::rule::{
    decide, is_code_attribute, is_private, is_private_creator, Decision, Mode, Place,
};
use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry};
use dicom_core::header::Header;
use dicom_core::value::{PrimitiveValue, Value};
use dicom_core::{DataElement, Length, Tag, VR};
use dicom_dictionary_std::{tags, StandardDataDictionary};
use dicom_object::mem::InMemElement;
use dicom_object::InMemDicomObject;
use obscura_dicom::charset::CharacterSets;
use std::collections::{BTreeMap, HashMap, HashSet};

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
    /// How many identifying spans of free text were cleaned.
    pub cleaned_spans: usize,
}

/// Why an object cannot be made safe: the caller quarantines it. Holds no PHI.
#[derive(Debug, thiserror::Error)]
pub enum Unsafe {
    /// An encapsulated document the profile keeps still holds identity, or
    /// its text cannot be read to check.
    #[error("encapsulated document kept by the profile: {0}")]
    Document(String),
}

/// One element's decision, for `obscura deid --explain`; holds no values.
#[derive(Debug, Clone)]
pub struct Explained {
    /// Where it is, e.g. `(0008,1110)[0]/(0008,1155)`.
    pub path: String,
    /// Its keyword, or `private (CREATOR)`.
    pub name: String,
    /// Its VR.
    pub vr: VR,
    /// The action applied.
    pub action: Action,
    /// The rule that chose it, described.
    pub rule: String,
}

/// Applies a confidentiality profile with keyed pseudonyms. Knows nothing of
/// files or networks: it takes and returns dicom-rs objects.
#[derive(Debug, Clone)]
pub struct Deidentifier {
    profile: Profile,
    pseudonyms: Pseudonymizer,
}

/// State of one data set's walk.
struct Walk<'a> {
    profile: &'a Profile,
    pseudonyms: &'a Pseudonymizer,
    cleaner: TextCleaner,
    /// The character sets in force, as dicom-rs read the element at hand.
    charsets: CharacterSets,
    patient_id: String,
    date_offset: i64,
    document_mime: Option<String>,
    /// Whether the object declares BurnedInAnnotation YES: a kept document
    /// may then carry identity in images its text does not show.
    declares_burned_in: bool,
    uids: BTreeMap<String, String>,
    cleaned_spans: usize,
    unsafe_reason: Option<Unsafe>,
    /// Sequence nesting level of the element being walked (0: top level).
    depth: usize,
    /// Where the element being walked is (formatted only when explaining).
    path: Vec<Step>,
    explained: Option<Vec<Explained>>,
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
    pub fn deidentify(&self, object: InMemDicomObject) -> Result<Deidentified, Unsafe> {
        self.run(object, false).map(|(d, _)| d)
    }

    /// De-identify one data set and say, for every element, what was done
    /// and which rule chose it.
    pub fn explain(
        &self,
        object: InMemDicomObject,
    ) -> Result<(Deidentified, Vec<Explained>), Unsafe> {
        self.run(object, true)
            .map(|(d, e)| (d, e.unwrap_or_default()))
    }

    fn run(
        &self,
        object: InMemDicomObject,
        explain: bool,
    ) -> Result<(Deidentified, Option<Vec<Explained>>), Unsafe> {
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
        let mime = text(tags::MIME_TYPE_OF_ENCAPSULATED_DOCUMENT);
        let cleaner = if self.profile.reads_text() {
            TextCleaner::for_profile(&object, &self.profile)
        } else {
            TextCleaner::without_known_values(&object)
        };
        let mut walk = Walk {
            profile: &self.profile,
            pseudonyms: &self.pseudonyms,
            charsets: cleaner.charsets().clone(),
            cleaner,
            patient_id: self.pseudonyms.patient_id(&identity),
            date_offset: self.pseudonyms.date_offset_days(&identity),
            document_mime: Some(mime).filter(|m| !m.is_empty()),
            declares_burned_in: text(tags::BURNED_IN_ANNOTATION).trim() == "YES",
            uids: BTreeMap::new(),
            cleaned_spans: 0,
            unsafe_reason: None,
            depth: 0,
            path: Vec::new(),
            explained: explain.then(Vec::new),
        };
        let mut object = walk.object(object, Mode::Table);
        if let Some(reason) = walk.unsafe_reason {
            return Err(reason);
        }
        mark(&mut object, &self.profile);
        let done = Deidentified {
            object,
            uids: walk.uids,
            patient: (identity, walk.patient_id),
            cleaned_spans: walk.cleaned_spans,
        };
        Ok((done, walk.explained))
    }
}

impl Walk<'_> {
    fn object(&mut self, object: InMemDicomObject, mode: Mode) -> InMemDicomObject {
        // private creators by (group, block) precede the elements they
        // govern in tag order; an overlay's type follows its rows and
        // columns, and matters only when graphics are cleaned
        let overlay_types: HashMap<u16, String> = if self.profile.has(DeidOption::CleanGraphics) {
            (0x6000..=0x601E)
                .step_by(2)
                .filter_map(|g| Some((g, object.get(Tag(g, 0x0040))?.to_str().ok()?.to_string())))
                .collect()
        } else {
            HashMap::new()
        };
        let mut creators: HashMap<(u16, u8), String> = HashMap::new();
        let mut out = Vec::new();
        for elem in object {
            let tag = elem.tag();
            let block = if is_private_creator(tag) {
                let value = elem.to_str().map(|s| s.to_string()).unwrap_or_default();
                creators.insert((tag.0, tag.1 as u8), value);
                Some(tag.1 as u8)
            } else if is_private(tag) {
                Some((tag.1 >> 8) as u8)
            } else {
                None
            };
            let creator = block.and_then(|b| creators.get(&(tag.0, b)));
            let place = Place {
                tag,
                vr: elem.vr(),
                depth: self.depth,
                mode,
                creator: creator.map(String::as_str),
                overlay_type: overlay_types.get(&tag.0).map(String::as_str),
            };
            let decision = decide(place, self.profile);
            self.path.push(Step::Element(tag));
            self.record(&decision, place);
            if let Some(e) = self.apply(elem, decision, mode) {
                out.push(e);
            }
            self.path.pop();
        }
        if !creators.is_empty() {
            out = without_empty_private_blocks(out);
        }
        InMemDicomObject::from_element_iter(out)
    }

    fn record(&mut self, decision: &Decision, place: Place) {
        if let Some(explained) = &mut self.explained {
            let path: Vec<String> = self.path.iter().map(Step::to_string).collect();
            explained.push(Explained {
                path: path.join("/"),
                name: display_name(place.tag, place.creator),
                vr: place.vr,
                action: decision.action.clone(),
                rule: decision.rule.describe(self.profile),
            });
        }
    }

    fn apply(
        &mut self,
        elem: InMemElement,
        decision: Decision,
        mode: Mode,
    ) -> Option<InMemElement> {
        let (tag, vr) = (elem.tag(), elem.vr());
        Some(match decision.action {
            Action::Remove => return None,
            // A sequence with no items is invalid where the sequence is Type 3
            // ("1-n items if present") and removal is invalid where it is
            // Type 2: its items are kept, with every identifying value in them
            // replaced as for D, which is conformant either way.
            Action::Empty | Action::Dummy | Action::Replace(_) if vr == VR::SQ => {
                let keep_codes = !is_identifying_code_sequence(tag);
                self.sequence(elem, Mode::Dummy { keep_codes })
            }
            Action::Empty => DataElement::new(tag, vr, PrimitiveValue::Empty),
            Action::Dummy if vr == VR::UI => self.replace_uids(elem),
            Action::Dummy => dummy(elem),
            Action::ReplaceUids | Action::Keep if vr == VR::SQ => self.sequence(elem, mode),
            Action::ReplaceUids => self.replace_uids(elem),
            // a document kept (or "cleaned") by a profile: checked, never edited
            Action::Keep | Action::Clean if tag == tags::ENCAPSULATED_DOCUMENT => {
                self.keep_document(elem)
            }
            Action::Keep => self.keep(elem),
            Action::Clean if vr == VR::SQ => self.sequence(elem, Mode::Clean),
            Action::Clean => {
                let (elem, spans) = self.cleaner.clean(elem, &self.charsets);
                self.cleaned_spans += spans;
                elem
            }
            Action::Check => self.check(elem),
            Action::ShiftDate => self.shift_date(elem),
            Action::Pseudonymize => self.pseudonymize(elem),
            Action::Replace(v) => DataElement::new(tag, vr, PrimitiveValue::from(&*v)),
        })
    }

    /// An element the profile keeps as it is, but for instance UIDs, which
    /// are replaced wherever they occur unless UIDs are retained.
    fn keep(&mut self, elem: InMemElement) -> InMemElement {
        let retain_uids = self.profile.has(DeidOption::RetainUids);
        if elem.vr() == VR::UI && !retain_uids && !names_a_kind_of_thing(elem.tag()) {
            return self.replace_uids(elem);
        }
        elem
    }

    /// A value kept outside the table: free text is cleaned of every
    /// identifying span; in codes, labels, names, dates and other values,
    /// each value that holds one of the object's identifying values is
    /// replaced by a dummy (so the multiplicity stays); UN bytes are cleaned
    /// as text.
    fn check(&mut self, elem: InMemElement) -> InMemElement {
        let (tag, vr) = (elem.tag(), elem.vr());
        let free_text = matches!(vr, VR::LO | VR::SH | VR::ST | VR::LT | VR::UT | VR::UC);
        if free_text || vr == VR::UN {
            let reading = if free_text && !is_code_attribute(tag) {
                Reading::CheckText
            } else {
                Reading::CheckKnown
            };
            let (checked, spans) = self.cleaner.scrub(elem, &self.charsets, reading);
            self.cleaned_spans += spans;
            return checked;
        }
        let Some(flags) = self.cleaner.known_values_in(&elem, &self.charsets) else {
            return elem;
        };
        self.cleaned_spans += flags.iter().filter(|f| **f).count();
        let dummy = dummy_value(vr).to_str().into_owned();
        let values = elem
            .value()
            .to_multi_str()
            .map(|values| {
                values
                    .iter()
                    .zip(&flags)
                    .map(|(v, hit)| if *hit { dummy.clone() } else { v.clone() })
                    .collect()
            })
            .unwrap_or_default();
        DataElement::new(tag, vr, strings_value(values))
    }

    /// An encapsulated document a profile keeps: its text must not hold the
    /// header's identifying values, and must be readable to tell; one that
    /// declares burned-in annotation may hold identity in its images, which
    /// no text check sees.
    fn keep_document(&mut self, elem: InMemElement) -> InMemElement {
        if self.declares_burned_in {
            let reason = "it declares burned-in annotation, which its text cannot show";
            self.unsafe_reason
                .get_or_insert(Unsafe::Document(reason.to_string()));
            return elem;
        }
        let bytes = elem
            .value()
            .primitive()
            .map(|v| v.to_bytes().into_owned())
            .unwrap_or_default();
        let verdict =
            match obscura_detect::document::document_text(&bytes, self.document_mime.as_deref()) {
                Err(e) => Some(format!("its text cannot be read ({e})")),
                Ok(text) if self.cleaner.holds_known_values(&text) => {
                    Some("its text holds identifying values of the header".to_string())
                }
                Ok(_) => None,
            };
        if let Some(reason) = verdict {
            self.unsafe_reason.get_or_insert(Unsafe::Document(reason));
        }
        elem
    }

    fn shift_date(&mut self, elem: InMemElement) -> InMemElement {
        let (tag, vr) = (elem.tag(), elem.vr());
        let text = elem.to_str().map(|s| s.to_string()).unwrap_or_default();
        let shifted = match vr {
            VR::DA => shift_da(&text, self.date_offset),
            VR::DT => shift_dt(&text, self.date_offset),
            _ => None,
        };
        match shifted {
            Some(v) if !v.is_empty() => DataElement::new(tag, vr, PrimitiveValue::from(v)),
            // not a valid date: never kept unshifted, never written invalid
            _ => DataElement::new(tag, vr, PrimitiveValue::Empty),
        }
    }

    /// Patient ID and name become the patient's pseudonym wherever they
    /// occur, so the same patient gets the same pseudonym in every file; a
    /// nested Patient ID (another patient's) gets its own; other attributes
    /// get a keyed pseudonym of their value.
    fn pseudonymize(&mut self, elem: InMemElement) -> InMemElement {
        let tag = elem.tag();
        let value = || normalize(&elem.to_str().unwrap_or_default()).to_string();
        let (vr, id) = match tag {
            tags::PATIENT_ID if self.depth > 0 => (VR::LO, self.pseudonyms.patient_id(&value())),
            // written with the standard VR, whatever a broken input used
            tags::PATIENT_ID => (VR::LO, self.patient_id.clone()),
            tags::PATIENT_NAME => (VR::PN, self.patient_id.clone()),
            _ => (elem.vr(), self.pseudonyms.value(&value())),
        };
        DataElement::new(tag, vr, PrimitiveValue::from(id))
    }

    fn sequence(&mut self, elem: InMemElement, mode: Mode) -> InMemElement {
        let tag = elem.tag();
        let items: Vec<InMemDicomObject> = match elem.into_value() {
            Value::Sequence(seq) => {
                self.depth += 1;
                let items = seq
                    .into_items()
                    .into_iter()
                    .enumerate()
                    .map(|(i, item)| {
                        self.path.push(Step::Item(i));
                        let inner = item_charsets(&self.charsets, &item);
                        let outer = std::mem::replace(&mut self.charsets, inner);
                        let item = self.object(item, mode);
                        let end = std::mem::replace(&mut self.charsets, outer);
                        self.charsets = self.charsets.after_item(&end);
                        self.path.pop();
                        item
                    })
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
        DataElement::new(tag, VR::UI, strings_value(new))
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

/// `elements` without the private creators whose blocks keep no element: a
/// creator alone says nothing useful and may name a site's own software.
fn without_empty_private_blocks(elements: Vec<InMemElement>) -> Vec<InMemElement> {
    let used: HashSet<(u16, u16)> = elements
        .iter()
        .map(InMemElement::tag)
        .filter(|t| is_private(*t) && t.1 >= 0x1000)
        .map(|t| (t.0, t.1 >> 8))
        .collect();
    elements
        .into_iter()
        .filter(|e| {
            let t = e.tag();
            !is_private_creator(t) || used.contains(&(t.0, t.1))
        })
        .collect()
}

/// One step of an element's path: a tag, or a sequence item's index.
#[derive(Debug, Clone, Copy)]
enum Step {
    Element(Tag),
    Item(usize),
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Step::Element(t) => write!(f, "({:04X},{:04X})", t.0, t.1),
            Step::Item(i) => write!(f, "[{i}]"),
        }
    }
}

/// An element's keyword, or for a private one its creator.
fn display_name(tag: Tag, creator: Option<&str>) -> String {
    if is_private(tag) {
        return match creator {
            Some(c) if is_private_creator(tag) => {
                format!("private creator {}", c.trim())
            }
            Some(c) => format!("private ({})", c.trim()),
            None => "private (no creator)".to_string(),
        };
    }
    StandardDataDictionary
        .by_tag(tag)
        .map(|e| e.alias().to_string())
        .unwrap_or_else(|| "unknown".to_string())
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

/// Sequences coded D whose codes themselves identify (an institution, a person).
fn is_identifying_code_sequence(tag: Tag) -> bool {
    StandardDataDictionary.by_tag(tag).is_some_and(|e| {
        e.alias().ends_with("CodeSequence") || e.alias().ends_with("IdentificationSequence")
    })
}
