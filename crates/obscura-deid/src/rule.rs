//! Which rule decides an element's action: a profile override, the keep-list,
//! the patient's pseudonym, the private dictionary, or Table E.1-1 and its
//! options. `obscura deid --explain` prints these.

use crate::action::{table_action, Action};
use crate::options::DeidOption;
use crate::profile::Profile;
use crate::table::{is_safe_creator, row_for, safe_private, OptionCode, TableRow, TagPattern};
use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry};
use dicom_core::{Tag, VR};
use dicom_dictionary_std::tags;
use dicom_dictionary_std::StandardDataDictionary;
use std::fmt;

/// The rule that chose an action, for explanations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    /// The profile file's override at this index.
    Override(usize),
    /// Not in the profile's keep-list.
    NotInKeepList,
    /// Patient ID and Patient's Name: the patient's keyed pseudonym.
    PatientIdentity,
    /// An overlay whose data the profile removes: the whole group goes.
    OverlayGroup,
    /// A graphics overlay (type G), which can draw text: removed even when
    /// graphics are cleaned.
    GraphicsOverlay,
    /// A row of Table E.1-1, under the basic profile or an option.
    Table(&'static TableRow, Option<DeidOption>),
    /// A private attribute the safe-private dictionary lists as safe.
    SafePrivate,
    /// A private attribute the safe-private dictionary does not list as safe.
    UnsafePrivate,
    /// A private creator element, kept only with its safe attributes.
    PrivateCreator,
    /// Not in Table E.1-1: kept.
    NotInTable,
    /// Text inside a sequence replaced as D.
    InsideReplacedSequence,
    /// Text inside a sequence cleaned as C.
    InsideCleanedSequence,
    /// A date kept by the table, moved because dates are modified.
    KeptDateModified,
    /// A value kept outside the table (not named by it, or private and
    /// listed safe), checked for identifying values the profile removes.
    IdentityElsewhere {
        /// Whether it is a private attribute kept as listed safe.
        listed_safe: bool,
    },
}

impl Rule {
    /// A one-line description, e.g. `E.1-1 Study Date: Z; retain-long-modified-dates: C`.
    pub fn describe(&self, profile: &Profile) -> String {
        match self {
            Rule::Override(i) => match profile.overrides().get(*i) {
                Some(o) => format!("profile override #{}: {} {}", i + 1, o.selector, o.action),
                None => "profile override".to_string(),
            },
            Rule::Table(row, None) => format!("E.1-1 {}: {}", row.name, row.basic.as_str()),
            Rule::Table(row, Some(option)) => format!(
                "E.1-1 {}: {}; {option}: {}",
                row.name,
                row.basic.as_str(),
                option.column(row).map_or("", OptionCode::as_str)
            ),
            other => other.to_string(),
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Rule::Override(_) => "profile override",
            Rule::NotInKeepList => "not in the profile's keep-list",
            Rule::PatientIdentity => "patient pseudonym",
            Rule::OverlayGroup => "overlay group removed with its data",
            Rule::GraphicsOverlay => "graphics overlay (type G) can draw text",
            Rule::Table(row, _) => row.name,
            Rule::SafePrivate => "retain-safe-private: listed safe",
            Rule::UnsafePrivate => "retain-safe-private: not listed safe",
            Rule::PrivateCreator => "private creator",
            Rule::NotInTable => "not in E.1-1",
            Rule::InsideReplacedSequence => "identifying value inside a replaced sequence",
            Rule::InsideCleanedSequence => "text inside a cleaned sequence",
            Rule::KeptDateModified => "kept date, modified",
            Rule::IdentityElsewhere { listed_safe: false } => {
                "not in E.1-1: checked for identity removed elsewhere"
            }
            Rule::IdentityElsewhere { listed_safe: true } => {
                "retain-safe-private: listed safe; checked for identity removed elsewhere"
            }
        })
    }
}

/// An action with the rule that chose it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// What to do.
    pub action: Action,
    /// Why.
    pub rule: Rule,
}

impl Decision {
    fn new(action: Action, rule: Rule) -> Self {
        Decision { action, rule }
    }
}

/// How the walk treats elements that the table does not name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Apply the table; keep what it does not name.
    Table,
    /// Inside a sequence replaced by dummy content (D on a sequence): also
    /// replace every identifying text value the table does not name. Coded
    /// concepts are kept unless the sequence itself is an identifying code.
    Dummy {
        /// Whether code triples (CodeValue, CodingSchemeDesignator, CodeMeaning...) are kept.
        keep_codes: bool,
    },
    /// Inside a cleaned sequence (C on a sequence: structured content,
    /// graphic annotations): text the table does not name is cleaned, codes kept.
    Clean,
}

/// Where an element sits, as far as the decision needs to know.
#[derive(Debug, Clone, Copy)]
pub struct Place<'a> {
    /// The element's tag.
    pub tag: Tag,
    /// Its VR.
    pub vr: VR,
    /// Sequence nesting level (0: top level).
    pub depth: usize,
    /// How the enclosing sequence is walked.
    pub mode: Mode,
    /// The private creator of its block (for a creator element: its own value).
    pub creator: Option<&'a str>,
    /// For overlay data: the overlay's type (60xx,0040), `G` or `R`.
    pub overlay_type: Option<&'a str>,
}

impl Place<'_> {
    /// A standard attribute at the top level of an object, outside any
    /// private block or overlay.
    pub fn top_level(tag: Tag, vr: VR) -> Self {
        Place {
            tag,
            vr,
            depth: 0,
            mode: Mode::Table,
            creator: None,
            overlay_type: None,
        }
    }
}

/// The attributes a keep-list always lets through: without them the object
/// is not a DICOM instance (or not a viewable image).
fn is_structural(tag: Tag) -> bool {
    matches!(
        tag,
        tags::SPECIFIC_CHARACTER_SET
            | tags::SOP_CLASS_UID
            | tags::SOP_INSTANCE_UID
            | tags::STUDY_INSTANCE_UID
            | tags::SERIES_INSTANCE_UID
            | tags::PATIENT_ID
            | tags::PATIENT_NAME
    ) || tag.0 == 0x0028
        || tag.0 == 0x7FE0
}

/// Decide what happens to the element at `place` under `profile`.
pub fn decide(place: Place, profile: &Profile) -> Decision {
    check_elsewhere(decide_by_rules(place, profile), place, profile)
}

/// A value kept although the table does not act on it (not named by it, or
/// private and listed safe) may still hold a value the profile removes
/// where the table does name it: it is checked, unless the profile turns
/// the check off.
fn check_elsewhere(decision: Decision, place: Place, profile: &Profile) -> Decision {
    if decision.action != Action::Keep
        || !profile.finds_identity_elsewhere()
        || !can_carry_identity(place.vr)
        || is_structural(place.tag)
    {
        return decision;
    }
    let listed_safe = match decision.rule {
        Rule::NotInTable => false,
        Rule::SafePrivate => true,
        _ => return decision,
    };
    Decision::new(Action::Check, Rule::IdentityElsewhere { listed_safe })
}

/// The table, the options, the private dictionary and the profile's own
/// rules, before the check for identity elsewhere.
fn decide_by_rules(place: Place, profile: &Profile) -> Decision {
    let Place { tag, vr, depth, .. } = place;
    if let Some(i) = profile
        .overrides()
        .iter()
        .position(|o| o.selector.matches(tag, place.creator))
    {
        return Decision::new(
            Action::from(&profile.overrides()[i].action),
            Rule::Override(i),
        );
    }
    if depth == 0 {
        if let Some(keep) = profile.keep_only() {
            if !is_structural(tag) && !keep.iter().any(|s| s.matches(tag, place.creator)) {
                return Decision::new(Action::Remove, Rule::NotInKeepList);
            }
        }
    }
    if tag == tags::PATIENT_ID || tag == tags::PATIENT_NAME {
        return Decision::new(Action::Pseudonymize, Rule::PatientIdentity);
    }
    if is_private(tag) {
        return private(place, profile);
    }
    if let Some(decision) = overlay(place, profile) {
        return decision;
    }
    let decision = match row_for(tag) {
        Some(row) => {
            let (action, option) = table_action(row, vr, profile);
            Decision::new(action, Rule::Table(row, option))
        }
        None => Decision::new(Action::Keep, Rule::NotInTable),
    };
    adjust_kept(decision, place, profile)
}

/// A kept value inside a replaced or cleaned sequence, or a kept date when
/// dates are modified.
fn adjust_kept(decision: Decision, place: Place, profile: &Profile) -> Decision {
    let is_code = is_code_attribute(place.tag);
    let kept = matches!(
        decision.action,
        Action::Keep | Action::ShiftDate | Action::Clean
    );
    match place.mode {
        // D on a sequence replaces its content: what an option would keep or
        // clean elsewhere is replaced here too (only codes survive)
        Mode::Dummy { keep_codes }
            if kept
                && is_identifying_vr(place.vr)
                && !(keep_codes && is_code)
                && !matches!(decision.rule, Rule::SafePrivate) =>
        {
            return Decision::new(Action::Dummy, Rule::InsideReplacedSequence)
        }
        // C on a sequence cleans what no rule names; options hold inside
        Mode::Clean if decision.action == Action::Keep && decision.rule == Rule::NotInTable => {
            if place.vr == VR::PN {
                return Decision::new(Action::Dummy, Rule::InsideCleanedSequence);
            }
            if is_text_vr(place.vr) && !is_code {
                return Decision::new(Action::Clean, Rule::InsideCleanedSequence);
            }
        }
        _ => {}
    }
    adjust_kept_date(decision, place, profile)
}

/// A kept date when dates are modified: moved, unless full dates were chosen
/// for it or an override keeps it as it is.
fn adjust_kept_date(decision: Decision, place: Place, profile: &Profile) -> Decision {
    if decision.action != Action::Keep || matches!(decision.rule, Rule::Override(_)) {
        return decision;
    }
    let full_dates_kept = matches!(
        decision.rule,
        Rule::Table(_, Some(DeidOption::RetainLongFullDates))
    );
    if profile.has(DeidOption::RetainLongModifiedDates)
        && matches!(place.vr, VR::DA | VR::DT)
        && !full_dates_kept
    {
        return Decision::new(Action::ShiftDate, Rule::KeptDateModified);
    }
    decision
}

/// Private attributes: removed, unless the safe-private option keeps the
/// ones its dictionary lists (by creator, in whatever block).
fn private(place: Place, profile: &Profile) -> Decision {
    let Place { tag, .. } = place;
    let retain = profile.has(DeidOption::RetainSafePrivate);
    let row = row_for(tag).expect("the table has a row for every private attribute");
    if is_private_creator(tag) {
        let safe = retain && place.creator.is_some_and(|c| is_safe_creator(c, tag.0));
        let action = if safe { Action::Keep } else { Action::Remove };
        return Decision::new(action, Rule::PrivateCreator);
    }
    if !retain {
        return Decision::new(Action::Remove, Rule::Table(row, None));
    }
    let safe = tag.1 >= 0x1000
        && place
            .creator
            .and_then(|c| safe_private(c, tag.0, (tag.1 & 0xFF) as u8))
            .is_some();
    if safe {
        adjust_kept(
            Decision::new(Action::Keep, Rule::SafePrivate),
            place,
            profile,
        )
    } else {
        Decision::new(Action::Remove, Rule::UnsafePrivate)
    }
}

/// Overlays (60xx, even groups). The basic profile removes Overlay Data, and
/// with it the whole group, which would otherwise describe a missing overlay.
/// Clean Graphics keeps region overlays (type R: a shape); graphics overlays
/// (type G) can draw text, which no one can clean from a bitmap without OCR.
fn overlay(place: Place, profile: &Profile) -> Option<Decision> {
    let Place { tag, .. } = place;
    if !((0x6000..=0x601E).contains(&tag.0) && tag.0.is_multiple_of(2)) {
        return None;
    }
    if !profile.has(DeidOption::CleanGraphics) {
        return Some(Decision::new(Action::Remove, Rule::OverlayGroup));
    }
    let is_region = place.overlay_type.is_some_and(|t| t.trim() == "R");
    if !is_region {
        // the whole group goes with the data, as under the basic profile
        return Some(Decision::new(Action::Remove, Rule::GraphicsOverlay));
    }
    None
}

/// Whether `tag` is a private attribute (an odd group).
pub fn is_private(tag: Tag) -> bool {
    tag.0 % 2 == 1
}

/// Whether `tag` is a private creator element, (gggg,0010)-(gggg,00FF) of an
/// odd group; its low byte is the block it reserves.
pub fn is_private_creator(tag: Tag) -> bool {
    is_private(tag) && (0x0010..=0x00FF).contains(&tag.1)
}

/// The attributes of a coded entry (Code Sequence Macro, PS3.3 Table 8.8-1).
pub fn is_code_attribute(tag: Tag) -> bool {
    tag.0 == 0x0008 && matches!(tag.1, 0x0100..=0x010F | 0x0117..=0x0122)
}

/// Whether values of `vr` are free text, names, dates or other values that
/// can carry identity when nothing else is known about the attribute.
pub fn is_identifying_vr(vr: VR) -> bool {
    use VR::*;
    matches!(
        vr,
        AE | AS | DA | DT | LO | LT | PN | SH | ST | TM | UC | UR | UT
    )
}

/// Whether values of `vr` can hold a name, an identifier or a date: text,
/// codes, dates and times, and UN bytes.
pub fn can_carry_identity(vr: VR) -> bool {
    is_identifying_vr(vr) || matches!(vr, VR::CS | VR::UN)
}

/// Whether values of `vr` are text that cleaning reads.
pub fn is_text_vr(vr: VR) -> bool {
    use VR::*;
    matches!(vr, AE | LO | LT | PN | SH | ST | UC | UT | UN)
}

/// One row of a profile's effective table (`obscura profile show`).
#[derive(Debug, Clone)]
pub struct EffectiveRow {
    /// The row's tag or pattern, e.g. `(0010,0010)` or `(60xx,3000)`.
    pub tag: String,
    /// The attribute's name in Table E.1-1.
    pub name: &'static str,
    /// What the profile does to it at the top level of an object.
    pub decision: Decision,
}

/// What `profile` does to every attribute of Table E.1-1, in table order.
/// Private attributes are shown without a creator (so: as unknown ones).
pub fn effective_table(profile: &Profile) -> Vec<EffectiveRow> {
    crate::table::ROWS
        .iter()
        .map(|row| {
            let (tag, text) = match row.tag {
                TagPattern::Exact(v) => {
                    let tag = Tag((v >> 16) as u16, v as u16);
                    (tag, format!("({:04X},{:04X})", tag.0, tag.1))
                }
                TagPattern::Masked { value, mask } => {
                    let hex = format!("{value:08X}");
                    let text: String = hex
                        .chars()
                        .enumerate()
                        .map(|(i, c)| {
                            if (mask >> (28 - 4 * i)) & 0xF == 0 {
                                'x'
                            } else {
                                c
                            }
                        })
                        .collect();
                    (
                        Tag((value >> 16) as u16, value as u16),
                        format!("({},{})", &text[..4], &text[4..]),
                    )
                }
                TagPattern::PrivateOddGroup => (Tag(0x0009, 0x1000), "(odd,xxxx)".to_string()),
            };
            let vr = StandardDataDictionary
                .by_tag(tag)
                .map(|e| e.vr().relaxed())
                .unwrap_or(VR::UN);
            let place = Place::top_level(tag, vr);
            EffectiveRow {
                tag: text,
                name: row.name,
                decision: decide(place, profile),
            }
        })
        .collect()
}
