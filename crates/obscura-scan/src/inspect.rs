//! One file: read its header, walk every element at every depth, classify
//! what the table names, and read every value that can hold text with the
//! detectors, wherever it is.
//!
//! The table (PS3.15 Table E.1-1) only names the categories of the report:
//! it never decides where the gate looks. Person names (PN), dates (DA, DT)
//! and AE titles identify by their VR; every other text value (code
//! meanings, private and UN values, free text, values the table keeps) goes
//! through the pattern detectors and the contextual detector, which knows
//! the values the header holds, fake ones included, and the names the
//! patterns found in the file's other values.

use crate::classify::{category_of, class_of, is_placeholder};
use crate::detect::{detect, learnable, Reading};
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
use obscura_deid::table::{is_safe_creator, row_for, safe_private, BasicCode, TableRow};
use obscura_deid::{burned_in_risk, BurnedInRisk};
use obscura_detect::{Detector, Kind, Known};
use obscura_dicom::charset::{decode_bytes, decode_parsed, CharacterSets, Decoded};
use obscura_dicom::Limits;
use std::collections::{HashMap, HashSet};
use std::path::Path;

/// Findings of one document at most (a long report repeats itself).
const MAX_DOCUMENT_FINDINGS: usize = 200;

/// Texts longer than this are not remembered within a file (documents).
const MEMO_TEXT_LIMIT: usize = 1024;

/// Scan one file. Never fails: a file that cannot be read says why in its status.
pub fn inspect_file(path: &Path) -> FileScan {
    inspect_file_knowing(path, &[], false)
}

/// Scan one file, knowing `names` (DICOM person names) as its own besides
/// the values its header holds: names the patterns found in other files of
/// the same patient; with `pixels`, its frames are read for burned-in text.
pub(crate) fn inspect_file_knowing(path: &Path, names: &[String], pixels: bool) -> FileScan {
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
    let cleaner = TextCleaner::without_known_values(obj);
    let sets = cleaner.charsets().clone();
    let text = |tag: Tag| -> Option<String> {
        let e = obj.get(tag)?;
        let s = e.value().to_str().ok()?;
        match decode(&s, &sets) {
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
    out.patient_key = [&patient.id, &patient.name]
        .into_iter()
        .find(|v| !v.is_empty())
        .cloned();
    if !(is_placeholder(&patient.name)
        && is_placeholder(&patient.id)
        && is_placeholder(&patient.birth_date))
    {
        out.patient = Some(patient);
    }

    // The values the header holds (fake ones too), placeholders aside.
    let mut known = Known::default();
    let mut seen = HashSet::new();
    learn(obj, sets.clone(), &mut known, &mut seen);
    // the words of the names it holds, folded as learned names are
    let names_held: Vec<String> = seen
        .iter()
        .filter(|(kind, _)| *kind == Kind::Name)
        .filter_map(|(_, v)| obscura_detect::gate::learnable_name(&v.replace(['^', '='], " ")))
        .collect();
    let mut first = Walker::new(&known, None);
    first.walk(obj, sets.clone(), "", Ctx::default());
    // Names the patterns found, here or in the patient's other files, are
    // the file's names too: read again knowing them, unless the header
    // holds them already.
    let mut learned = Known::default();
    let mut any = false;
    for n in names.iter().chain(&first.learned) {
        if !holds(&known, n) {
            learned.add(Kind::Name, n);
            any = true;
        }
    }
    let walker = if any {
        let mut again = Walker::new(&known, Some(&learned));
        again.walk(obj, sets, "", Ctx::default());
        again.learned = first.learned;
        again
    } else {
        first
    };
    out.learned_names = walker.learned;
    out.learned_names.sort();
    out.learned_names.dedup();
    for n in out.learned_names.iter().chain(&names_held) {
        out.name_words.extend(n.split('^').map(str::to_string));
    }
    out.name_words.sort();
    out.name_words.dedup();
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
    if pixels && read.input.pixel.is_some() {
        out.findings.extend(pixel_findings(read));
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

/// The burned-in text found in a file's frames: where and why, never
/// what it says.
fn pixel_findings(read: obscura_batch::ReadFile) -> Vec<Finding> {
    let finding = |detector: &str, kind: Option<&'static str>, value: String| Finding {
        path: "7FE0,0010".into(),
        keyword: "PixelData".into(),
        category: Category::BurnedIn,
        detector: detector.into(),
        kind,
        value,
    };
    match obscura_batch::pixels::find_text(read.input, read.dataset) {
        Ok(found) => found
            .iter()
            .map(|f| {
                let r = f.rect;
                let kind = match f.reason {
                    obscura_redact::Reason::Identity(k) => Some(k.as_str()),
                    _ => None,
                };
                let value = format!(
                    "frame {}, {}x{} at ({}, {}): {}",
                    f.frame + 1,
                    r.width(),
                    r.height(),
                    r.x0,
                    r.y0,
                    f.reason.as_str()
                );
                finding("burned-in-text", kind, value)
            })
            .collect(),
        Err(detail) => vec![finding("pixels-unreadable", None, detail)],
    }
}

/// Whether every word of the person name `name` is a value `known` holds.
fn holds(known: &Known, name: &str) -> bool {
    let text = name.replace('^', " ");
    let covered: usize = detect(&text, known, None, Reading::KnownOnly)
        .iter()
        .map(|f| f.range.len())
        .sum();
    covered >= text.len() - name.matches('^').count()
}

/// The true text of a value as dicom-rs parsed it ([`decode_parsed`]),
/// without its work for plain ASCII (printable, no `\`, `~` or escape),
/// which every character set of DICOM reads as itself (only JIS X 0201
/// differs, at `\` and `~`): dates, codes and most text.
fn decode(s: &str, sets: &CharacterSets) -> Decoded {
    if s.bytes().all(|b| (b' '..=b'}').contains(&b) && b != b'\\') {
        Decoded::Text(s.to_string())
    } else {
        decode_parsed(s, sets)
    }
}

/// Whether the attribute is one of the markers de-identification writes
/// (or the character set): never identity.
fn is_marker(tag: Tag) -> bool {
    matches!(
        tag,
        tags::PATIENT_IDENTITY_REMOVED
            | tags::DEIDENTIFICATION_METHOD
            | tags::DEIDENTIFICATION_METHOD_CODE_SEQUENCE
            | tags::LONGITUDINAL_TEMPORAL_INFORMATION_MODIFIED
            | tags::SPECIFIC_CHARACTER_SET
    )
}

/// Adds to `known` the identifying values of `object` read with `sets`, at
/// any depth: every person name and date wherever it is, and the IDs,
/// addresses, phone numbers, institutions and devices of the attributes the
/// table removes or replaces; placeholders aside. `seen` holds what was
/// added already (a multi-frame object repeats its values frame by frame).
/// Returns the sets in force after it.
fn learn(
    object: &InMemDicomObject,
    mut sets: CharacterSets,
    known: &mut Known,
    seen: &mut HashSet<(Kind, String)>,
) -> CharacterSets {
    for elem in object.iter() {
        let (tag, vr) = (elem.tag(), elem.vr());
        match elem.value() {
            Value::Sequence(seq) => {
                for item in seq.items() {
                    let end = learn(item, item_charsets(&sets, item), known, seen);
                    sets = sets.after_item(&end);
                }
            }
            Value::Primitive(v) => {
                let kind = match vr {
                    VR::PN => Kind::Name,
                    VR::DA | VR::DT => Kind::Date,
                    VR::UI => continue,
                    _ if tag.0 % 2 == 1 || is_marker(tag) => continue,
                    _ => match row_for(tag) {
                        Some(r) if !matches!(r.basic, BasicCode::K | BasicCode::U) => {
                            match class_of(tag, vr).kind {
                                Some(k) => k,
                                None => continue,
                            }
                        }
                        _ => continue,
                    },
                };
                for s in v.to_multi_str().iter() {
                    if let Decoded::Text(t) = decode(s, &sets) {
                        // a date-time is learned to the minute
                        let t = match t.get(..12) {
                            Some(p)
                                if kind == Kind::Date && p.bytes().all(|b| b.is_ascii_digit()) =>
                            {
                                p
                            }
                            _ => &t,
                        };
                        if !is_placeholder(t) && seen.insert((kind, t.to_string())) {
                            known.add(kind, t);
                        }
                    }
                }
            }
            Value::PixelSequence(_) => {}
        }
    }
    sets
}

/// Where in the tree the walk is.
#[derive(Debug, Clone, Copy, Default)]
struct Ctx {
    /// Inside a Content Sequence (an SR content tree).
    in_sr: bool,
    /// Inside a private element of a creator not known safe.
    in_private: bool,
    /// Inside a sequence that identifies a person or device: its values
    /// without rows of their own take this category.
    inherited: Option<Category>,
}

struct Walker<'a> {
    known: &'a Known,
    /// Names the patterns found in other values, or other files of the
    /// patient (second reading only).
    learned_names: Option<&'a Known>,
    findings: Vec<Finding>,
    creators: Vec<(String, u16, bool, u64)>,
    has_document: bool,
    is_sr: bool,
    /// Names the patterns found (DICOM person names).
    learned: Vec<String>,
    /// What the detectors found in each text read so far (a multi-frame
    /// object repeats its values frame by frame).
    seen: HashMap<Reading, HashMap<Box<str>, Vec<obscura_detect::Finding>>>,
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
        match self.creator.filter(|c| !c.is_empty()) {
            Some(c) => format!("{prefix}{group:04X},{{{c}}}{:02X}", element & 0xFF),
            None => format!("{prefix}{group:04X},{element:04X}"),
        }
    }

    fn keyword(&self) -> String {
        match self.creator {
            Some("") => format!("(no creator):{:02X}", self.tag.1 & 0xFF),
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

/// Whether `v` holds a calendar date (`YYYYMMDD`, alone, in a range or at
/// the start of a date-time).
fn holds_date(v: &str) -> bool {
    v.split('-').any(|part| {
        let d = part.trim().as_bytes();
        if d.len() < 8 || !d[..8].iter().all(u8::is_ascii_digit) {
            return false;
        }
        let n =
            |r: std::ops::Range<usize>| d[r].iter().fold(0u32, |a, b| a * 10 + u32::from(b - b'0'));
        (1..=12).contains(&n(4..6)) && (1..=31).contains(&n(6..8))
    })
}

/// Whether the bytes of a UN or OB value read as text: nine in ten
/// printable (any byte from 0x80 up, for the character sets), NUL only as
/// padding or now and then (a table of binary numbers is mostly NULs).
fn looks_like_text(bytes: &[u8]) -> bool {
    let body = match bytes.iter().rposition(|b| !matches!(b, 0 | b' ')) {
        Some(last) => &bytes[..=last],
        None => return false,
    };
    let (mut printable, mut nul) = (0, 0);
    for b in body {
        match b {
            0 => nul += 1,
            b' ' | b'\r' | b'\n' | b'\t' | 0x1B | 0x80.. => printable += 1,
            _ if b.is_ascii_graphic() => printable += 1,
            _ => {}
        }
    }
    nul * 10 <= body.len() && printable * 10 >= body.len() * 9
}

/// The kind and category of a value that identifies by its VR, wherever it
/// is: person names, dates, AE titles.
fn by_vr(vr: VR, texts: &[String]) -> Option<(Kind, Category)> {
    match vr {
        VR::PN => Some((Kind::Name, Category::DirectIdentifier)),
        VR::AE => Some((Kind::Device, Category::InstitutionDevice)),
        VR::DA | VR::DT if texts.iter().any(|t| holds_date(t)) => {
            Some((Kind::Date, Category::DateTime))
        }
        _ => None,
    }
}

/// How the detectors read a value of `vr` at `tag` that does not identify
/// whole; `None` for numbers and binary values.
fn reading(tag: Tag, vr: VR, private: bool) -> Option<Reading> {
    if is_code_attribute(tag) && tag != tags::CODE_MEANING {
        return Some(Reading::KnownOnly);
    }
    if is_text_vr(vr) || vr == VR::UR || (private && !matches!(vr, VR::DS | VR::IS)) {
        return Some(Reading::Full);
    }
    match vr {
        VR::CS | VR::AS | VR::DA | VR::DT | VR::TM => Some(Reading::KnownOnly),
        _ => None,
    }
}

impl<'a> Walker<'a> {
    fn new(known: &'a Known, learned_names: Option<&'a Known>) -> Self {
        Walker {
            known,
            learned_names,
            findings: Vec::new(),
            creators: Vec::new(),
            has_document: false,
            is_sr: false,
            learned: Vec::new(),
            seen: HashMap::new(),
        }
    }

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
            if is_marker(tag) {
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
                // an attribute known safe is still read, not reported whole
                let known_safe = !creator.is_empty() && safe_private(creator, tag.0, low).is_some();
                ctx.in_private = !known_safe;
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
                    self.value(&at, vr, v, row, &sets, ctx);
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
                    .map(|s| match decode(s, sets) {
                        Decoded::Text(t) => t,
                        Decoded::Undecodable => "[undecodable text]".to_string(),
                    })
                    .collect(),
            ),
            PrimitiveValue::U8(bytes) if matches!(vr, VR::UN | VR::OB) => {
                if !looks_like_text(bytes) {
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

    /// The spans of `t` the detectors find, read as `reading` says; the
    /// names the patterns found among them are learned.
    fn detect(&mut self, t: &str, reading: Reading) -> Vec<obscura_detect::Finding> {
        if let Some(found) = self.seen.get(&reading).and_then(|m| m.get(t)) {
            return found.clone();
        }
        let found = detect(t, self.known, self.learned_names, reading);
        if self.learned_names.is_none() {
            self.learned.extend(learnable(t, &found));
        }
        if t.len() <= MEMO_TEXT_LIMIT {
            let memo = self.seen.entry(reading).or_default();
            memo.insert(t.into(), found.clone());
        }
        found
    }

    fn value(
        &mut self,
        at: &At,
        vr: VR,
        v: &PrimitiveValue,
        row: Option<&TableRow>,
        sets: &CharacterSets,
        ctx: Ctx,
    ) {
        let tag = at.tag;
        let Some(texts) = Self::texts(vr, v, sets) else {
            // binary: only an unknown private value is reported
            if ctx.in_private && !matches!(v, PrimitiveValue::Empty) && v.calculate_byte_len() > 0 {
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
        let class = class_of(tag, vr);
        // Whole values that identify by where they are: an attribute the
        // table removes or replaces, an item of a person's or device's
        // sequence, a private attribute not known safe, an SR name or date.
        let placed = match row {
            Some(r) if matches!(r.basic, BasicCode::K | BasicCode::U) => None,
            Some(_) if is_code_attribute(tag) && ctx.inherited.is_none() => None,
            Some(_) => class.category.map(|c| (c, class.kind, "attribute")),
            None if ctx.in_private => Some((Category::PrivateAttribute, None, "private-creator")),
            None => match ctx.inherited {
                Some(cat) => Some((cat, class.kind, "attribute")),
                // SR content items: PNAME, DATE, DATETIME, TIME
                None if ctx.in_sr && matches!(vr, VR::PN | VR::DA | VR::DT | VR::TM) => Some((
                    class.category.unwrap_or(Category::DirectIdentifier),
                    class.kind,
                    "attribute",
                )),
                None => None,
            },
        };
        // ... or by their VR, wherever they are.
        let whole = placed.or_else(|| {
            by_vr(vr, &texts)
                .map(|(kind, cat)| (class.category.unwrap_or(cat), Some(kind), "value-type"))
        });
        if let Some((cat, kind, detector)) = whole {
            let value = texts.join("\\");
            let kind = match kind {
                Some(k) => Some(k),
                // what the detectors see in it (and the names to learn)
                None => {
                    let found = self.detect(&value, Reading::Full);
                    found.iter().max_by_key(|x| x.range.len()).map(|x| x.kind)
                }
            };
            self.push(at, ctx, cat, detector, kind, value);
            return;
        }
        let Some(reading) = reading(tag, vr, creator_of(at)) else {
            return;
        };
        for t in &texts {
            for f in self.detect(t, reading) {
                let Some(span) = t.get(f.range.clone()) else {
                    continue;
                };
                if is_placeholder(span) {
                    continue;
                }
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
        for f in self
            .detect(&text, Reading::Full)
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

/// Whether `at` is a private attribute.
fn creator_of(at: &At) -> bool {
    at.creator.is_some()
}

fn detector_name(d: Detector) -> &'static str {
    match d {
        Detector::Contextual => "contextual",
        Detector::Pattern(p) => p,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_by_value() {
        for v in [
            "20200131",
            "19991231-20000101",
            "20200131120000.000+0100",
            "-20200131",
        ] {
            assert!(holds_date(v), "{v}");
        }
        for v in ["", "2020", "20201301", "ABCDEFGH", "20200100"] {
            assert!(!holds_date(v), "{v}");
        }
    }

    #[test]
    fn plain_ascii_reads_as_itself_in_every_character_set() {
        for sets in [
            "",
            "ISO_IR 100",
            "ISO_IR 192",
            "ISO 2022 IR 87",
            "GB18030",
            "ISO_IR 13",
        ] {
            let sets = CharacterSets::from_value(sets);
            for v in [
                "DOE^JOHN",
                "20200131120000.000+0100",
                "CT HEAD W/O (contrast) {x}",
                "",
            ] {
                let fast = decode(v, &sets);
                let full = decode_parsed(v, &sets);
                match (fast, full) {
                    (Decoded::Text(a), Decoded::Text(b)) => assert_eq!(a, b, "{v:?}"),
                    _ => panic!("{v:?} not text"),
                }
            }
        }
    }

    #[test]
    fn text_in_bytes() {
        assert!(looks_like_text(b"Harriet Quimby "));
        assert!(looks_like_text(b"DOE^JOHN\0"));
        assert!(looks_like_text("Müller".as_bytes()));
        let mut histogram = vec![0u8; 2068];
        histogram[..16]
            .copy_from_slice(b"\x00\x00\x00\x01C\xcfR\x14\x02\xd7\x00\x00\x08\xe6\x00\x01");
        assert!(!looks_like_text(&histogram));
        assert!(!looks_like_text(&[0, 0, 0, 0]));
        assert!(!looks_like_text(&[1, 2, 3, 4, 65, 66]));
    }

    #[test]
    fn readings_by_vr_and_attribute() {
        assert_eq!(
            reading(tags::CODE_MEANING, VR::LO, false),
            Some(Reading::Full)
        );
        assert_eq!(
            reading(tags::CODE_VALUE, VR::SH, false),
            Some(Reading::KnownOnly)
        );
        assert_eq!(
            reading(tags::IMAGE_TYPE, VR::CS, false),
            Some(Reading::KnownOnly)
        );
        assert_eq!(reading(tags::SLICE_THICKNESS, VR::DS, false), None);
        assert_eq!(
            reading(Tag(0x0029, 0x1010), VR::SH, true),
            Some(Reading::Full)
        );
        assert_eq!(reading(Tag(0x0029, 0x1010), VR::DS, true), None);
    }
}
