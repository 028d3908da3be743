//! What a value or an attribute is: identity of which category and kind,
//! or what de-identification leaves behind.

use crate::Category;
use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry};
use dicom_core::{Tag, VR};
use dicom_dictionary_std::tags;
use dicom_dictionary_std::StandardDataDictionary;
use obscura_deid::dummy::DUMMY_TEXT;
use obscura_detect::Kind;
use std::cell::RefCell;
use std::collections::HashMap;

/// Whether `v` is what de-identification leaves (blank, a dummy, a
/// pseudonym, bracketed placeholders only): not identity.
pub fn is_placeholder(v: &str) -> bool {
    let t = v.trim_matches(|c: char| c.is_whitespace() || c == '\0');
    if t.is_empty() {
        return true;
    }
    let starts_obs = t.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("OBS-"));
    if t.eq_ignore_ascii_case(DUMMY_TEXT) || starts_obs || t.eq_ignore_ascii_case("000D") {
        return true;
    }
    // dummy dates, date-times and times: 19000101..., all zeros
    if let Some(rest) = t.strip_prefix("19000101") {
        if rest
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | '+' | '-'))
        {
            return true;
        }
    }
    if t.chars().all(|c| matches!(c, '0' | '.' | ':' | '-' | '+')) {
        return true;
    }
    // only bracketed placeholders ([NAME], [REMOVED]...) and punctuation
    let mut in_bracket = false;
    let text_outside = t.chars().any(|c| {
        match c {
            '[' => in_bracket = true,
            ']' => in_bracket = false,
            _ => {}
        }
        !in_bracket && c.is_alphanumeric()
    });
    t.contains('[') && !text_outside
}

/// Attributes that describe the patient without naming them.
const QUASI: [&str; 17] = [
    "PatientBirthDate",
    "PatientBirthTime",
    "PatientSex",
    "PatientAge",
    "PatientSize",
    "PatientWeight",
    "EthnicGroup",
    "Occupation",
    "PatientSexNeutered",
    "SmokingStatus",
    "PregnancyStatus",
    "PatientReligiousPreference",
    "MilitaryRank",
    "BranchOfService",
    "CountryOfResidence",
    "RegionOfResidence",
    "PatientBirthDateInAlternativeCalendar",
];

/// Keyword parts of free-text attributes (read by the detectors, not
/// reported whole).
const TEXTUAL: [&str; 20] = [
    "Description",
    "Comment",
    "Remarks",
    "Note",
    "History",
    "Reason",
    "Text",
    "Diagnos",
    "Purpose",
    "Message",
    "Protocol",
    "Label",
    "Title",
    "Impression",
    "Finding",
    "Interpretation",
    "Indication",
    "Admitting",
    "Allerg",
    "Problem",
];

/// Keyword parts of institution, staff and device attributes.
const INSTITUTION: [&str; 24] = [
    "Institution",
    "Physician",
    "Operator",
    "Station",
    "Device",
    "Serial",
    "Department",
    "Performing",
    "Referring",
    "Requesting",
    "Observer",
    "Verifying",
    "Author",
    "Reviewer",
    "Person",
    "Responsible",
    "Contact",
    "Scheduled",
    "Location",
    "Recipient",
    "Technician",
    "Provider",
    "Manufacturer",
    "Curator",
];

/// The category of an attribute of Table E.1-1 whose whole value identifies;
/// `None` for free text (read by the detectors instead).
pub(crate) fn category_of(tag: Tag, keyword: &str, vr: VR) -> Option<Category> {
    if QUASI.contains(&keyword) {
        return Some(Category::QuasiIdentifier);
    }
    let textual = TEXTUAL.iter().any(|w| keyword.contains(w));
    if textual && !matches!(vr, VR::PN | VR::DA | VR::DT | VR::TM) {
        return None;
    }
    if matches!(vr, VR::DA | VR::DT | VR::TM) {
        return Some(Category::DateTime);
    }
    if tag.0 == 0x0010 || tag == tags::PERSON_NAME {
        return Some(Category::DirectIdentifier);
    }
    if vr == VR::AE || INSTITUTION.iter().any(|w| keyword.contains(w)) {
        return Some(Category::InstitutionDevice);
    }
    let id_like = keyword.ends_with("ID")
        || keyword.ends_with("IDs")
        || keyword.ends_with("Number")
        || keyword.ends_with("Numbers")
        || [
            "Identifier",
            "Identification",
            "Accession",
            "Address",
            "Telephone",
            "Telecom",
            "Mail",
        ]
        .iter()
        .any(|w| keyword.contains(w));
    if id_like || vr == VR::PN {
        return Some(Category::DirectIdentifier);
    }
    if vr == VR::AS {
        return Some(Category::QuasiIdentifier);
    }
    None
}

/// What the dictionary and Table E.1-1's keywords say of an attribute.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Class {
    /// Its category, when its whole value identifies ([`category_of`]).
    pub category: Option<Category>,
    /// The kind of identity its whole value is ([`kind_of`]).
    pub kind: Option<Kind>,
}

/// The [`Class`] of the attribute `tag` with values of `vr`, looked up once
/// per worker thread (a header names the same attributes file after file).
pub(crate) fn class_of(tag: Tag, vr: VR) -> Class {
    thread_local! {
        static CLASSES: RefCell<HashMap<(Tag, VR), Class>> = RefCell::new(HashMap::new());
    }
    CLASSES.with(|m| {
        *m.borrow_mut().entry((tag, vr)).or_insert_with(|| {
            let keyword = StandardDataDictionary
                .by_tag(tag)
                .map(|e| e.alias())
                .unwrap_or("");
            Class {
                category: category_of(tag, keyword, vr),
                kind: kind_of(keyword, vr),
            }
        })
    })
}

/// The kind of identity an attribute's whole value is.
pub(crate) fn kind_of(keyword: &str, vr: VR) -> Option<Kind> {
    Some(match vr {
        VR::PN => Kind::Name,
        VR::DA | VR::DT => Kind::Date,
        VR::TM => Kind::Time,
        VR::AE => Kind::Device,
        _ if keyword.contains("Address") => Kind::Address,
        _ if keyword.contains("Telephone") || keyword.contains("Telecom") => Kind::Phone,
        _ if keyword.contains("Mail") => Kind::Email,
        _ if keyword.contains("Institution") || keyword.contains("Department") => Kind::Institution,
        _ if keyword.contains("Station")
            || keyword.contains("Device")
            || keyword.contains("Serial") =>
        {
            Kind::Device
        }
        _ if keyword.ends_with("ID")
            || keyword.ends_with("IDs")
            || keyword.ends_with("Number")
            || keyword.contains("Identifier") =>
        {
            Kind::Id
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_not_identity() {
        for v in [
            "",
            "  ",
            "ANONYMIZED",
            "OBS-0123456789abcdef",
            "19000101",
            "19000101000000",
            "000000",
            "000D",
            "0",
            "[NAME]",
            "[NAME], [DATE]",
            "[REMOVED]",
        ] {
            assert!(is_placeholder(v), "{v:?}");
        }
        for v in ["DOE^JOHN", "20200101", "CT chest [NAME]", "12", "M"] {
            assert!(!is_placeholder(v), "{v:?}");
        }
    }

    #[test]
    fn categories_follow_the_keyword() {
        for (tag, keyword, vr, category) in [
            (
                tags::PATIENT_NAME,
                "PatientName",
                VR::PN,
                Some(Category::DirectIdentifier),
            ),
            (
                tags::PATIENT_BIRTH_DATE,
                "PatientBirthDate",
                VR::DA,
                Some(Category::QuasiIdentifier),
            ),
            (
                tags::STUDY_DATE,
                "StudyDate",
                VR::DA,
                Some(Category::DateTime),
            ),
            (
                tags::INSTITUTION_NAME,
                "InstitutionName",
                VR::LO,
                Some(Category::InstitutionDevice),
            ),
            (tags::STUDY_DESCRIPTION, "StudyDescription", VR::LO, None),
            (
                tags::ACCESSION_NUMBER,
                "AccessionNumber",
                VR::SH,
                Some(Category::DirectIdentifier),
            ),
        ] {
            assert_eq!(category_of(tag, keyword, vr), category, "{keyword}");
        }
    }
}
