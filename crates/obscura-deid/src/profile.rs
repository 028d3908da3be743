//! A confidentiality profile: the basic profile, the options chosen, and the
//! per-attribute overrides of a profile file (TOML).

use crate::options::{DeidOption, UnknownOption};
use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry};
use dicom_core::Tag;
use dicom_dictionary_std::StandardDataDictionary;
use serde::Deserialize;
use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

/// A CID 7050 code of a de-identification method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MethodCode {
    /// Code Value, for example `113100`.
    pub value: &'static str,
    /// Code Meaning.
    pub meaning: &'static str,
}

/// The Basic Application Level Confidentiality Profile (CID 7050, 113100).
pub const BASIC_PROFILE: MethodCode = MethodCode {
    value: "113100",
    meaning: "Basic Application Confidentiality Profile",
};

/// Why a profile cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// Two options that cannot apply together.
    #[error("options `{0}` and `{1}` conflict: choose one")]
    Conflict(DeidOption, DeidOption),
    /// An option name that is not one of PS3.15's.
    #[error(transparent)]
    UnknownOption(#[from] UnknownOption),
    /// The profile file is not valid TOML or has unknown fields.
    #[error("profile file: {0}")]
    Syntax(String),
    /// A base profile other than `basic`.
    #[error("profile file: unknown base profile `{0}` (only `basic` exists)")]
    UnknownBase(String),
    /// An attribute selector that names nothing.
    #[error("profile file: cannot read attribute `{0}`: use a keyword (PatientSex), a tag ((0010,0040)) or a private tag ((0019,xx0C)) with its creator")]
    BadSelector(String),
    /// An override without the fields its action needs, or with a wrong one.
    #[error("profile file: override of `{selector}`: {reason}")]
    BadOverride {
        /// The attribute as written.
        selector: String,
        /// What is wrong.
        reason: &'static str,
    },
}

/// The attributes an override or a keep-list entry applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    /// One standard (or fixed private) tag.
    Tag(Tag),
    /// A private attribute by creator: group, and the element's offset in the
    /// creator's block (any block), or the whole block when `None`.
    Private {
        /// The private creator, trimmed, in upper case.
        creator: String,
        /// The odd group.
        group: u16,
        /// The low byte of the element, or every element of the block.
        element: Option<u8>,
    },
}

impl Selector {
    /// Whether this selects `tag`, whose private creator (if private) is `creator`.
    pub fn matches(&self, tag: Tag, creator: Option<&str>) -> bool {
        match self {
            Selector::Tag(t) => *t == tag,
            Selector::Private {
                creator: c,
                group,
                element,
            } => {
                tag.0 == *group
                    && tag.1 >= 0x1000
                    && element.is_none_or(|e| e == (tag.1 & 0xFF) as u8)
                    && creator.is_some_and(|have| have.trim().eq_ignore_ascii_case(c))
            }
        }
    }

    /// Read `attribute` (keyword, `(gggg,eeee)`, or `(gggg,xxee)` with `creator`).
    fn parse(attribute: &str, creator: Option<&str>) -> Result<Self, ProfileError> {
        let bad = || ProfileError::BadSelector(attribute.to_string());
        let a = attribute.trim();
        let hex = a.trim_start_matches('(').trim_end_matches(')');
        if let Some((g, e)) = hex.split_once(',') {
            let group = u16::from_str_radix(g.trim(), 16).map_err(|_| bad())?;
            let e = e.trim().to_ascii_lowercase();
            if let Some(creator) = creator {
                if group % 2 == 0 || e.len() != 4 {
                    return Err(bad());
                }
                let element = match &e[2..] {
                    "xx" => None,
                    low => Some(u8::from_str_radix(low, 16).map_err(|_| bad())?),
                };
                return Ok(Selector::Private {
                    creator: creator.trim().to_ascii_uppercase(),
                    group,
                    element,
                });
            }
            let element = u16::from_str_radix(&e, 16).map_err(|_| bad())?;
            return Ok(Selector::Tag(Tag(group, element)));
        }
        if creator.is_some() {
            return Err(bad());
        }
        StandardDataDictionary
            .by_name(a)
            .map(|entry| Selector::Tag(entry.tag_range().inner()))
            .ok_or_else(bad)
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Selector::Tag(t) => write!(f, "({:04X},{:04X})", t.0, t.1),
            Selector::Private {
                creator,
                group,
                element,
            } => match element {
                Some(e) => write!(f, "({group:04X},xx{e:02X}) {creator}"),
                None => write!(f, "({group:04X},xxxx) {creator}"),
            },
        }
    }
}

/// What an override does to the attributes it selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OverrideAction {
    /// Keep the value as it is.
    Keep,
    /// Remove the attribute.
    Remove,
    /// Keep it with an empty value.
    Empty,
    /// Replace the value with this text.
    Replace(Arc<str>),
    /// Replace the value with a keyed pseudonym (the same value gives the same pseudonym).
    Pseudonymize,
    /// Move a date by the patient's date offset.
    ShiftDate,
    /// Clean free text: keep it with identifying spans replaced.
    Clean,
}

impl fmt::Display for OverrideAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OverrideAction::Keep => "keep",
            OverrideAction::Remove => "remove",
            OverrideAction::Empty => "empty",
            OverrideAction::Replace(_) => "replace",
            OverrideAction::Pseudonymize => "pseudonymize",
            OverrideAction::ShiftDate => "shift-date",
            OverrideAction::Clean => "clean",
        })
    }
}

/// One per-attribute rule of a profile file; it takes precedence over the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Override {
    /// The attributes it applies to.
    pub selector: Selector,
    /// What it does.
    pub action: OverrideAction,
}

/// A profile: the basic profile, options, overrides and an optional keep-list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// Its name, for reports and DeidentificationMethod.
    pub name: String,
    options: BTreeSet<DeidOption>,
    overrides: Vec<Override>,
    keep_only: Option<Vec<Selector>>,
    finds_identity_elsewhere: bool,
}

/// The TOML form of a profile file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileFile {
    name: Option<String>,
    base: Option<String>,
    #[serde(default)]
    options: Vec<String>,
    keep_only: Option<Vec<String>>,
    #[serde(default, rename = "override")]
    overrides: Vec<OverrideFile>,
    find_identity_elsewhere: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OverrideFile {
    attribute: String,
    creator: Option<String>,
    action: String,
    value: Option<String>,
}

impl Profile {
    /// The basic profile with no options.
    pub fn basic() -> Self {
        Profile {
            name: "basic".to_string(),
            options: BTreeSet::new(),
            overrides: Vec::new(),
            keep_only: None,
            finds_identity_elsewhere: true,
        }
    }

    /// The basic profile with `options`; conflicting options are refused.
    pub fn with_options(
        options: impl IntoIterator<Item = DeidOption>,
    ) -> Result<Self, ProfileError> {
        Profile::basic().add_options(options)
    }

    /// This profile with `options` added; conflicting options are refused.
    pub fn add_options(
        mut self,
        options: impl IntoIterator<Item = DeidOption>,
    ) -> Result<Self, ProfileError> {
        self.options.extend(options);
        let (full, modified) = (
            DeidOption::RetainLongFullDates,
            DeidOption::RetainLongModifiedDates,
        );
        if self.has(full) && self.has(modified) {
            return Err(ProfileError::Conflict(full, modified));
        }
        Ok(self)
    }

    /// Read a profile file (TOML). See `docs/profiles.md` for the format.
    pub fn from_toml(text: &str) -> Result<Self, ProfileError> {
        let file: ProfileFile =
            toml::from_str(text).map_err(|e| ProfileError::Syntax(e.message().to_string()))?;
        if let Some(base) = file.base.filter(|b| b != "basic") {
            return Err(ProfileError::UnknownBase(base));
        }
        let options = file
            .options
            .iter()
            .map(|o| o.parse::<DeidOption>())
            .collect::<Result<Vec<_>, _>>()?;
        let overrides = file
            .overrides
            .into_iter()
            .map(OverrideFile::into_override)
            .collect::<Result<Vec<_>, _>>()?;
        let keep_only = file
            .keep_only
            .map(|list| {
                list.iter()
                    .map(|a| match a.split_once(" @ ") {
                        Some((tag, creator)) => Selector::parse(tag, Some(creator)),
                        None => Selector::parse(a, None),
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?;
        let profile = Profile {
            name: file.name.unwrap_or_else(|| "custom".to_string()),
            options: BTreeSet::new(),
            overrides,
            keep_only,
            finds_identity_elsewhere: file.find_identity_elsewhere.unwrap_or(true),
        };
        profile.add_options(options)
    }

    /// Whether `option` is selected.
    pub fn has(&self, option: DeidOption) -> bool {
        self.options.contains(&option)
    }

    /// Whether every value kept outside Table E.1-1 (code meanings,
    /// comments, labels, safe private and UN values) is checked for the
    /// identifying values the profile removes, and cleaned where it holds
    /// one. On unless a profile file says `find_identity_elsewhere = false`.
    pub fn finds_identity_elsewhere(&self) -> bool {
        self.finds_identity_elsewhere
    }

    /// Whether anything this profile does reads free text (cleaning,
    /// checking a kept document or values outside the table), so the
    /// object's identifying values must be learned first.
    pub fn reads_text(&self) -> bool {
        if self.finds_identity_elsewhere {
            return true;
        }
        let cleaning_options = [
            DeidOption::RetainDeviceIdentity,
            DeidOption::RetainPatientCharacteristics,
            DeidOption::CleanDescriptors,
            DeidOption::CleanStructuredContent,
            DeidOption::CleanGraphics,
        ];
        cleaning_options.iter().any(|o| self.has(*o))
            || self
                .overrides
                .iter()
                .any(|o| matches!(o.action, OverrideAction::Clean | OverrideAction::Keep))
    }

    /// The selected options, in the table's column order.
    pub fn options(&self) -> impl Iterator<Item = DeidOption> + '_ {
        self.options.iter().copied()
    }

    /// The per-attribute overrides, in file order (the first match wins).
    pub fn overrides(&self) -> &[Override] {
        &self.overrides
    }

    /// The keep-list: when present, only these attributes (and what the
    /// object needs to stay valid) leave the engine.
    pub fn keep_only(&self) -> Option<&[Selector]> {
        self.keep_only.as_deref()
    }

    /// The codes written into DeidentificationMethodCodeSequence: the basic
    /// profile's, then each option's.
    pub fn codes(&self) -> Vec<MethodCode> {
        std::iter::once(BASIC_PROFILE)
            .chain(self.options.iter().map(|o| MethodCode {
                value: o.code_value(),
                meaning: o.code_meaning(),
            }))
            .collect()
    }

    /// A one-line name for reports and DeidentificationMethod (at most 64 characters).
    pub fn method_description(&self) -> String {
        let codes: Vec<&str> = self.codes().iter().map(|c| c.value).collect();
        let mut text = format!(
            "OBSCURA {} PS3.15 E.1-1 {}",
            env!("CARGO_PKG_VERSION"),
            codes.join(" ")
        );
        if !self.overrides.is_empty() || self.keep_only.is_some() || !self.finds_identity_elsewhere
        {
            text.push_str(" +profile");
        }
        text.truncate(64);
        text
    }
}

impl OverrideFile {
    fn into_override(self) -> Result<Override, ProfileError> {
        let selector = Selector::parse(&self.attribute, self.creator.as_deref())?;
        let bad = |reason| ProfileError::BadOverride {
            selector: self.attribute.clone(),
            reason,
        };
        let action = match (self.action.as_str(), self.value) {
            ("replace", Some(v)) => OverrideAction::Replace(v.into()),
            ("replace", None) => return Err(bad("`replace` needs a `value`")),
            (_, Some(_)) => return Err(bad("only `replace` takes a `value`")),
            ("keep", None) => OverrideAction::Keep,
            ("remove", None) => OverrideAction::Remove,
            ("empty", None) => OverrideAction::Empty,
            ("pseudonymize", None) => OverrideAction::Pseudonymize,
            ("shift-date", None) => OverrideAction::ShiftDate,
            ("clean", None) => OverrideAction::Clean,
            _ => return Err(bad(
                "action must be keep, remove, empty, replace, pseudonymize, shift-date or clean",
            )),
        };
        Ok(Override { selector, action })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_and_modified_dates_conflict() {
        let err = Profile::with_options([
            DeidOption::RetainLongFullDates,
            DeidOption::RetainLongModifiedDates,
        ])
        .unwrap_err();
        assert!(err.to_string().contains("conflict"), "{err}");
    }

    #[test]
    fn codes_follow_the_options() {
        let p =
            Profile::with_options([DeidOption::CleanDescriptors, DeidOption::RetainUids]).unwrap();
        let codes: Vec<_> = p.codes().iter().map(|c| c.value).collect();
        assert_eq!(codes, ["113100", "113110", "113105"]);
        assert!(p.method_description().len() <= 64);
    }

    #[test]
    fn a_profile_file_reads_options_overrides_and_keep_lists() {
        let p = Profile::from_toml(
            r#"
            name = "acme-ai"
            base = "basic"
            options = ["retain-device-identity", "clean-descriptors"]
            keep_only = ["Modality", "(0018,0050)", "(0043,xx39) @ GEMS_PARM_01"]

            [[override]]
            attribute = "PatientSex"
            action = "keep"

            [[override]]
            attribute = "(0019,xx0C)"
            creator = "SIEMENS MR HEADER"
            action = "remove"

            [[override]]
            attribute = "StudyDescription"
            action = "replace"
            value = "RESEARCH"
            "#,
        )
        .unwrap();
        assert_eq!(p.name, "acme-ai");
        assert!(p.has(DeidOption::CleanDescriptors));
        assert_eq!(p.overrides().len(), 3);
        assert_eq!(
            p.overrides()[0].selector,
            Selector::Tag(Tag(0x0010, 0x0040))
        );
        assert!(p.overrides()[1]
            .selector
            .matches(Tag(0x0019, 0x110C), Some("siemens mr header ")));
        assert!(!p.overrides()[1]
            .selector
            .matches(Tag(0x0019, 0x110C), Some("GEMS_PARM_01")));
        assert_eq!(p.keep_only().unwrap().len(), 3);
    }

    #[test]
    fn profile_file_errors_are_clear() {
        let err = |t: &str| Profile::from_toml(t).unwrap_err().to_string();
        assert!(err("options = [\"retain-all\"]").contains("unknown option"));
        assert!(err("base = \"strict\"").contains("base profile"));
        assert!(
            err("[[override]]\nattribute = \"NoSuchKeyword\"\naction = \"keep\"")
                .contains("NoSuchKeyword")
        );
        assert!(
            err("[[override]]\nattribute = \"PatientSex\"\naction = \"replace\"")
                .contains("needs a `value`")
        );
        assert!(err("colour = 1").contains("profile file"));
    }
}
