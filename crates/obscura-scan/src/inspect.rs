//! One file: read its header, walk every element at every depth, classify.

use crate::classify::{category_of, detected_kind, is_placeholder, kind_of};
use crate::{Category, FileScan, FileStatus, Finding, Patient};
use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry};
use dicom_core::header::Header;
use dicom_core::value::{PrimitiveValue, Value};
use dicom_core::{Tag, VR};
use dicom_dictionary_std::{tags, StandardDataDictionary};
use dicom_object::InMemDicomObject;
use obscura_batch::Outcome;
use obscura_deid::clean::{item_charsets, TextCleaner};
use obscura_deid::rule::{is_code_attribute, is_text_vr};
use obscura_deid::table::{is_safe_creator, row_for, safe_private, BasicCode};
use obscura_deid::{burned_in_risk, BurnedInRisk};
use obscura_detect::{find, Detector, Kind, Known};
use obscura_dicom::charset::{decode_bytes, decode_parsed, CharacterSets, Decoded};
use obscura_dicom::Limits;
use std::path::Path;

/// Findings of one document at most (a long report repeats itself).
const MAX_DOCUMENT_FINDINGS: usize = 200;

/// Scan one file. Never fails: a file that cannot be read says why in its status.
pub fn inspect_file(path: &Path) -> FileScan {
    let bytes = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let mut out = FileScan::new(path, FileStatus::Scanned, bytes);
    let read = match obscura_batch::read_file(path, Limits::default()) {
        Ok(r) => r,
        Err(Outcome::Skipped { .. }) => {
            out.status = FileStatus::Skipped;
            return out;
        }
        Err(Outcome::Quarantined { detail, .. }) => {
            out.status = FileStatus::Unreadable(detail);
            return out;
        }
        Err(Outcome::Written { .. }) => {
            out.status = FileStatus::Unreadable("unexpected outcome".into());
            return out;
        }
    };
    let obj = &read.dataset;
    let cleaner = TextCleaner::new(obj);
    let sets = cleaner.charsets().clone();
    let text = |tag: Tag| -> Option<String> {
        let e = obj.get(tag)?;
        let s = e.value().to_str().ok()?;
        match decode_parsed(&s, &sets) {
            Decoded::Text(t) => Some(
                t.trim_matches(|c: char| c.is_whitespace() || c == '\0')
                    .to_string(),
            ),
            Decoded::Undecodable => None,
        }
    };
    out.modality = text(tags::MODALITY).filter(|s| !s.is_empty());
    out.sop_class = text(tags::SOP_CLASS_UID).filter(|s| !s.is_empty());
    out.study = text(tags::STUDY_INSTANCE_UID).filter(|s| !s.is_empty());
    out.marked_deidentified =
        text(tags::PATIENT_IDENTITY_REMOVED).is_some_and(|s| s.eq_ignore_ascii_case("YES"));
    let patient = Patient {
        name: text(tags::PATIENT_NAME).unwrap_or_default(),
        id: text(tags::PATIENT_ID).unwrap_or_default(),
        birth_date: text(tags::PATIENT_BIRTH_DATE).unwrap_or_default(),
    };
    if !(is_placeholder(&patient.name)
        && is_placeholder(&patient.id)
        && is_placeholder(&patient.birth_date))
    {
        out.patient = Some(patient);
    }

    let mut walker = Walker {
        known: cleaner.known(),
        findings: Vec::new(),
        creators: Vec::new(),
        has_document: false,
        is_sr: false,
    };
    walker.walk(obj, sets, "", Ctx::default());
    out.findings = walker.findings;
    out.has_document = walker.has_document;
    out.is_sr = walker.is_sr;
    out.creators = walker.creators;

    let has_pixels = read.input.pixel.is_some() || obj.get(tags::ROWS).is_some();
    if let Some(risk) = burned_in_risk(obj, has_pixels) {
        out.findings.push(Finding {
            path: "0028,0301".into(),
            keyword: "BurnedInAnnotation".into(),
            category: Category::BurnedIn,
            detector: match risk {
                BurnedInRisk::Declared => "burned-in-declared".into(),
                BurnedInRisk::LikelyForModality => "burned-in-modality".into(),
            },
            kind: None,
            value: String::new(),
        });
    }
    if out.marked_deidentified && out.has_identity() {
        out.findings.push(Finding {
            path: "0012,0062".into(),
            keyword: "PatientIdentityRemoved".into(),
            category: Category::ClaimsClean,
            detector: "markers".into(),
            kind: None,
            value: "YES".into(),
        });
    }
    out
}

/// Where in the tree the walk is.
#[derive(Debug, Clone, Copy, Default)]
struct Ctx {
    /// Inside a Content Sequence (an SR content tree).
    in_sr: bool,
    /// Inside a private element of a creator not known safe.
    in_private: bool,
    /// Inside a sequence that the table removes or replaces: text values
    /// without rows of their own are read by the detectors.
    in_identifying: bool,
    /// Inside a sequence that identifies a person or device: its values
    /// without rows of their own take this category.
    inherited: Option<Category>,
}

struct Walker<'a> {
    known: &'a Known,
    findings: Vec<Finding>,
    creators: Vec<(String, u16, bool, u64)>,
    has_document: bool,
    is_sr: bool,
}

/// Where an element stands in the tree. Its path and keyword are formatted
/// only for a finding: most elements have none.
#[derive(Clone, Copy)]
struct At<'a> {
    /// The path of the item holding it, e.g. `0040,0275[0]/`.
    prefix: &'a str,
    tag: Tag,
    /// Its private creator, for a private element.
    creator: Option<&'a str>,
}

impl At<'_> {
    fn path(&self) -> String {
        let (prefix, Tag(group, element)) = (self.prefix, self.tag);
        match self.creator {
            Some(c) => format!("{prefix}{group:04X},{{{c}}}{:02X}", element & 0xFF),
            None => format!("{prefix}{group:04X},{element:04X}"),
        }
    }

    fn keyword(&self) -> String {
        match self.creator {
            Some(c) => format!("{c}:{:02X}", self.tag.1 & 0xFF),
            None => alias(self.tag).to_string(),
        }
    }
}

fn alias(tag: Tag) -> &'static str {
    StandardDataDictionary
        .by_tag(tag)
        .map(|e| e.alias())
        .unwrap_or("")
}

impl Walker<'_> {
    fn walk(
        &mut self,
        obj: &InMemDicomObject,
        mut sets: CharacterSets,
        prefix: &str,
        ctx: Ctx,
    ) -> CharacterSets {
        let mut blocks: Vec<((u16, u16), String)> = Vec::new();
        for elem in obj.iter() {
            let tag = elem.tag();
            let vr = elem.vr();
            if tag.0 == 0x0002 || tag.1 == 0 || tag == tags::PIXEL_DATA || tag.0 == 0xFFFE {
                continue;
            }
            if matches!(
                tag,
                tags::PATIENT_IDENTITY_REMOVED
                    | tags::DEIDENTIFICATION_METHOD
                    | tags::DEIDENTIFICATION_METHOD_CODE_SEQUENCE
                    | tags::SPECIFIC_CHARACTER_SET
            ) {
                continue;
            }
            let mut ctx = ctx;
            let (creator, row) = if tag.0 % 2 == 1 {
                if tag.1 < 0x1000 {
                    continue; // creators and reserved elements
                }
                let block = (tag.0, tag.1 >> 8);
                let i = match blocks.iter().position(|(b, _)| *b == block) {
                    Some(i) => i,
                    None => {
                        let c = obj
                            .get(Tag(block.0, block.1))
                            .and_then(|e| e.value().to_str().ok())
                            .map(|s| {
                                s.trim_matches(|c: char| c.is_whitespace() || c == '\0')
                                    .to_string()
                            })
                            .unwrap_or_default();
                        blocks.push((block, c));
                        blocks.len() - 1
                    }
                };
                let creator = blocks[i].1.as_str();
                match self
                    .creators
                    .iter_mut()
                    .find(|(c, g, _, _)| *g == tag.0 && *c == creator)
                {
                    Some(e) => e.3 += 1,
                    None => {
                        let safe = is_safe_creator(creator, tag.0);
                        self.creators.push((creator.to_string(), tag.0, safe, 1));
                    }
                }
                let low = (tag.1 & 0xFF) as u8;
                if !creator.is_empty() && safe_private(creator, tag.0, low).is_some() {
                    continue;
                }
                ctx.in_private = true;
                (Some(creator), None)
            } else {
                (None, row_for(tag))
            };
            let at = At {
                prefix,
                tag,
                creator,
            };
            match elem.value() {
                Value::PixelSequence(_) => {}
                Value::Sequence(seq) => {
                    let mut inner = ctx;
                    if tag == tags::CONTENT_SEQUENCE {
                        self.is_sr = true;
                        inner.in_sr = true;
                    }
                    if let Some(r) = row {
                        let identifying =
                            !matches!(r.basic, BasicCode::K | BasicCode::C | BasicCode::U);
                        inner.in_identifying |= identifying;
                        let keyword = alias(tag);
                        if identifying
                            && (keyword.contains("Identification") || keyword.contains("Person"))
                        {
                            inner.inherited = Some(
                                category_of(tag, keyword, VR::LO)
                                    .unwrap_or(Category::InstitutionDevice),
                            );
                        }
                    }
                    let path = at.path();
                    for (i, item) in seq.items().iter().enumerate() {
                        let end = self.walk(
                            item,
                            item_charsets(&sets, item),
                            &format!("{path}[{i}]/"),
                            inner,
                        );
                        sets = sets.after_item(&end);
                    }
                }
                Value::Primitive(v) => {
                    if tag == tags::ENCAPSULATED_DOCUMENT {
                        self.document(obj, v, &at);
                        continue;
                    }
                    if vr == VR::UI {
                        continue;
                    }
                    if let Some(r) = row {
                        if matches!(r.basic, BasicCode::K | BasicCode::U) {
                            continue;
                        }
                    } else if !(ctx.in_sr
                        || ctx.in_private
                        || ctx.in_identifying
                        || tag == tags::TEXT_VALUE)
                    {
                        continue;
                    }
                    self.value(&at, vr, v, row.is_some(), &sets, ctx);
                }
            }
        }
        sets
    }

    /// The text values of `v` (decoded), or `None` for binary values.
    fn texts(vr: VR, v: &PrimitiveValue, sets: &CharacterSets) -> Option<Vec<String>> {
        match v {
            PrimitiveValue::Str(_) | PrimitiveValue::Strs(_) => Some(
                v.to_multi_str()
                    .iter()
                    .map(|s| match decode_parsed(s, sets) {
                        Decoded::Text(t) => t,
                        Decoded::Undecodable => "[undecodable text]".to_string(),
                    })
                    .collect(),
            ),
            PrimitiveValue::U8(bytes) if matches!(vr, VR::UN | VR::OB) => {
                let printable = bytes
                    .iter()
                    .filter(|b| {
                        b.is_ascii_graphic()
                            || matches!(b, b' ' | b'\r' | b'\n' | b'\t' | 0 | 0x1B)
                            || **b >= 0x80
                    })
                    .count();
                if bytes.is_empty() || printable * 10 < bytes.len() * 9 {
                    return None;
                }
                match decode_bytes(bytes, sets) {
                    Decoded::Text(t) => Some(t.split('\\').map(str::to_string).collect()),
                    Decoded::Undecodable => None,
                }
            }
            _ => None,
        }
    }

    /// Record a finding at `at` (in an SR content tree, as such).
    fn push(
        &mut self,
        at: &At,
        ctx: Ctx,
        category: Category,
        detector: &str,
        kind: Option<Kind>,
        value: String,
    ) {
        self.findings.push(Finding {
            path: at.path(),
            keyword: at.keyword(),
            category: if ctx.in_sr {
                Category::StructuredReport
            } else {
                category
            },
            detector: detector.to_string(),
            kind: kind.map(Kind::as_str),
            value,
        });
    }

    fn value(
        &mut self,
        at: &At,
        vr: VR,
        v: &PrimitiveValue,
        has_row: bool,
        sets: &CharacterSets,
        ctx: Ctx,
    ) {
        let tag = at.tag;
        let Some(texts) = Self::texts(vr, v, sets) else {
            // binary: only an unknown private value is reported
            if ctx.in_private
                && !has_row
                && !matches!(v, PrimitiveValue::Empty)
                && v.calculate_byte_len() > 0
            {
                let value = format!("({} binary bytes)", v.calculate_byte_len());
                self.push(
                    at,
                    ctx,
                    Category::PrivateAttribute,
                    "private-creator",
                    None,
                    value,
                );
            }
            return;
        };
        let texts: Vec<String> = texts.into_iter().filter(|t| !is_placeholder(t)).collect();
        if texts.is_empty() {
            return;
        }
        // The standard keyword (empty for private attributes, never classified by it).
        let keyword = alias(tag);
        let whole = |cat: Category, kind: Option<Kind>, this: &mut Self| {
            let value = texts.join("\\");
            let kind = kind.or_else(|| detected_kind(&value, this.known));
            let detector = if cat == Category::PrivateAttribute {
                "private-creator"
            } else {
                "attribute"
            };
            this.push(at, ctx, cat, detector, kind, value);
        };
        if has_row {
            if is_code_attribute(tag) && ctx.inherited.is_none() {
                return;
            }
            if let Some(cat) = category_of(tag, keyword, vr) {
                whole(cat, kind_of(keyword, vr), self);
                return;
            }
        } else if let Some(cat) = ctx.inherited.filter(|_| !ctx.in_private) {
            whole(cat, kind_of(keyword, vr), self);
            return;
        } else if ctx.in_private {
            whole(Category::PrivateAttribute, None, self);
            return;
        } else if ctx.in_sr && matches!(vr, VR::PN | VR::DA | VR::DT | VR::TM) {
            // SR content items: PNAME, DATE, DATETIME, TIME
            whole(
                category_of(tag, keyword, vr).unwrap_or(Category::DirectIdentifier),
                kind_of(keyword, vr),
                self,
            );
            return;
        } else if is_code_attribute(tag) {
            return;
        }
        // free text (CS is coded, not text; URLs may carry identity)
        if !(is_text_vr(vr) || vr == VR::UR) {
            return;
        }
        for t in &texts {
            for f in find(t, self.known) {
                let Some(span) = t.get(f.range.clone()) else {
                    continue;
                };
                let detector = detector_name(f.detector);
                self.push(
                    at,
                    ctx,
                    Category::FreeText,
                    detector,
                    Some(f.kind),
                    span.to_string(),
                );
            }
        }
    }

    fn document(&mut self, obj: &InMemDicomObject, v: &PrimitiveValue, at: &At) {
        self.has_document = true;
        let bytes = v.to_bytes();
        if bytes.iter().all(|b| *b == 0 || *b == b' ') {
            return;
        }
        let mime = obj
            .get(tags::MIME_TYPE_OF_ENCAPSULATED_DOCUMENT)
            .and_then(|e| e.value().to_str().ok())
            .map(|s| s.to_string());
        // a document's findings keep their category, even inside an SR tree
        let ctx = Ctx::default();
        let Ok(text) = obscura_detect::document::document_text(&bytes, mime.as_deref()) else {
            let category = Category::EmbeddedDocument;
            self.push(
                at,
                ctx,
                category,
                "document-unreadable",
                None,
                String::new(),
            );
            return;
        };
        for f in find(&text, self.known)
            .into_iter()
            .take(MAX_DOCUMENT_FINDINGS)
        {
            let Some(span) = text.get(f.range.clone()) else {
                continue;
            };
            if is_placeholder(span) {
                continue;
            }
            let detector = detector_name(f.detector);
            let category = Category::EmbeddedDocument;
            self.push(at, ctx, category, detector, Some(f.kind), span.to_string());
        }
    }
}

fn detector_name(d: Detector) -> &'static str {
    match d {
        Detector::Contextual => "contextual",
        Detector::Pattern(p) => p,
    }
}
