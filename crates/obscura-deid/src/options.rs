//! The options of PS3.15 Annex E (Table E.1-1's option columns), by name and
//! CID 7050 code.

use crate::table::{OptionCode, TableRow};
use std::fmt;
use std::str::FromStr;

/// One option of the Application Level Confidentiality Profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DeidOption {
    /// Retain Safe Private Option: keep private attributes known to be safe.
    RetainSafePrivate,
    /// Retain UIDs Option.
    RetainUids,
    /// Retain Device Identity Option.
    RetainDeviceIdentity,
    /// Retain Institution Identity Option.
    RetainInstitutionIdentity,
    /// Retain Patient Characteristics Option.
    RetainPatientCharacteristics,
    /// Retain Longitudinal Temporal Information with Full Dates Option.
    RetainLongFullDates,
    /// Retain Longitudinal Temporal Information with Modified Dates Option.
    RetainLongModifiedDates,
    /// Clean Descriptors Option.
    CleanDescriptors,
    /// Clean Structured Content Option.
    CleanStructuredContent,
    /// Clean Graphics Option.
    CleanGraphics,
    /// Clean Pixel Data Option: burned-in text found in the pixels and
    /// redacted (obscura-redact, run by the batch; no column of the table).
    CleanPixelData,
}

impl DeidOption {
    /// Every option, in the order of the table's columns (Clean Pixel Data,
    /// which has none, last).
    pub const ALL: [DeidOption; 11] = [
        DeidOption::RetainSafePrivate,
        DeidOption::RetainUids,
        DeidOption::RetainDeviceIdentity,
        DeidOption::RetainInstitutionIdentity,
        DeidOption::RetainPatientCharacteristics,
        DeidOption::RetainLongFullDates,
        DeidOption::RetainLongModifiedDates,
        DeidOption::CleanDescriptors,
        DeidOption::CleanStructuredContent,
        DeidOption::CleanGraphics,
        DeidOption::CleanPixelData,
    ];

    /// The name used on the command line and in profile files, e.g. `retain-uids`.
    pub fn name(self) -> &'static str {
        match self {
            DeidOption::RetainSafePrivate => "retain-safe-private",
            DeidOption::RetainUids => "retain-uids",
            DeidOption::RetainDeviceIdentity => "retain-device-identity",
            DeidOption::RetainInstitutionIdentity => "retain-institution-identity",
            DeidOption::RetainPatientCharacteristics => "retain-patient-characteristics",
            DeidOption::RetainLongFullDates => "retain-long-full-dates",
            DeidOption::RetainLongModifiedDates => "retain-long-modified-dates",
            DeidOption::CleanDescriptors => "clean-descriptors",
            DeidOption::CleanStructuredContent => "clean-structured-content",
            DeidOption::CleanGraphics => "clean-graphics",
            DeidOption::CleanPixelData => "clean-pixel-data",
        }
    }

    /// Its CID 7050 code value, written into DeidentificationMethodCodeSequence.
    pub fn code_value(self) -> &'static str {
        match self {
            DeidOption::RetainSafePrivate => "113111",
            DeidOption::RetainUids => "113110",
            DeidOption::RetainDeviceIdentity => "113109",
            DeidOption::RetainInstitutionIdentity => "113112",
            DeidOption::RetainPatientCharacteristics => "113108",
            DeidOption::RetainLongFullDates => "113106",
            DeidOption::RetainLongModifiedDates => "113107",
            DeidOption::CleanDescriptors => "113105",
            DeidOption::CleanStructuredContent => "113104",
            DeidOption::CleanGraphics => "113103",
            DeidOption::CleanPixelData => "113101",
        }
    }

    /// Its CID 7050 code meaning.
    pub fn code_meaning(self) -> &'static str {
        match self {
            DeidOption::RetainSafePrivate => "Retain Safe Private Option",
            DeidOption::RetainUids => "Retain UIDs Option",
            DeidOption::RetainDeviceIdentity => "Retain Device Identity Option",
            DeidOption::RetainInstitutionIdentity => "Retain Institution Identity Option",
            DeidOption::RetainPatientCharacteristics => "Retain Patient Characteristics Option",
            DeidOption::RetainLongFullDates => {
                "Retain Longitudinal Temporal Information Full Dates Option"
            }
            DeidOption::RetainLongModifiedDates => {
                "Retain Longitudinal Temporal Information Modified Dates Option"
            }
            DeidOption::CleanDescriptors => "Clean Descriptors Option",
            DeidOption::CleanStructuredContent => "Clean Structured Content Option",
            DeidOption::CleanGraphics => "Clean Graphics Option",
            DeidOption::CleanPixelData => "Clean Pixel Data Option",
        }
    }

    /// What this option's column of Table E.1-1 says for `row`, if anything.
    pub fn column(self, row: &TableRow) -> Option<OptionCode> {
        let o = &row.options;
        match self {
            DeidOption::RetainSafePrivate => o.retain_safe_private,
            DeidOption::RetainUids => o.retain_uids,
            DeidOption::RetainDeviceIdentity => o.retain_device_identity,
            DeidOption::RetainInstitutionIdentity => o.retain_institution_identity,
            DeidOption::RetainPatientCharacteristics => o.retain_patient_characteristics,
            DeidOption::RetainLongFullDates => o.retain_long_full_dates,
            DeidOption::RetainLongModifiedDates => o.retain_long_modified_dates,
            DeidOption::CleanDescriptors => o.clean_descriptors,
            DeidOption::CleanStructuredContent => o.clean_structured_content,
            DeidOption::CleanGraphics => o.clean_graphics,
            DeidOption::CleanPixelData => None,
        }
    }
}

impl fmt::Display for DeidOption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An option name that is not one of PS3.15's.
#[derive(Debug, thiserror::Error)]
#[error("unknown option `{0}`; the options are: {list}", list = option_names())]
pub struct UnknownOption(pub String);

fn option_names() -> String {
    DeidOption::ALL.map(DeidOption::name).join(", ")
}

impl FromStr for DeidOption {
    type Err = UnknownOption;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DeidOption::ALL
            .into_iter()
            .find(|o| o.name() == s)
            .ok_or_else(|| UnknownOption(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_codes_are_distinct() {
        for o in DeidOption::ALL {
            assert_eq!(o.name().parse::<DeidOption>().unwrap(), o);
        }
        let mut codes: Vec<_> = DeidOption::ALL.map(DeidOption::code_value).to_vec();
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), DeidOption::ALL.len());
        let err = "retain-everything".parse::<DeidOption>().unwrap_err();
        assert!(err.to_string().contains("retain-uids"));
    }
}
