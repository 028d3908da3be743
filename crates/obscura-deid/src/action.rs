//! Turning a table row, the options and a profile's overrides into the one
//! concrete action applied to an element.

use crate::options::DeidOption;
use crate::profile::{OverrideAction, Profile};
use crate::table::{BasicCode, OptionCode, TableRow, TagPattern};
use dicom_core::VR;
use std::fmt;
use std::sync::Arc;

/// Attributes coded X in Table E.1-1 that are nevertheless Type 2C in the
/// module that holds them (Patient module, for non-human patients): an empty
/// value removes the identity just as well and keeps the IOD valid.
const REMOVED_BUT_TYPE_2C: [u32; 2] = [
    0x0010_2297, // Responsible Person
    0x0010_2299, // Responsible Organization
];

/// What the engine does to one element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Remove the element (X).
    Remove,
    /// Keep it with a zero-length value (Z). For a sequence, see the engine:
    /// its items are kept with their identifying values replaced.
    Empty,
    /// Replace with a dummy valid for the VR (D); a sequence keeps its items
    /// with every identifying value in them replaced.
    Dummy,
    /// Replace every UID with its keyed replacement (U); in a sequence, the
    /// UIDs of its items (U*).
    ReplaceUids,
    /// Keep the element (K, or not in the table); sequences are still walked.
    Keep,
    /// Keep free text with its identifying spans replaced (C); in a sequence,
    /// every text value of its items is cleaned.
    Clean,
    /// Keep a value the table does not act on, unless it holds one of the
    /// object's identifying values that the profile removes: then text is
    /// cleaned and other values are replaced by a dummy.
    Check,
    /// Move a date or date-time by the patient's offset (C of the modified dates option).
    ShiftDate,
    /// Replace the value with a keyed pseudonym.
    Pseudonymize,
    /// Replace the value with this text (a profile override).
    Replace(Arc<str>),
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Action::Remove => "remove",
            Action::Empty => "empty",
            Action::Dummy => "dummy",
            Action::ReplaceUids => "replace-uids",
            Action::Keep => "keep",
            Action::Clean => "clean",
            Action::Check => "check",
            Action::ShiftDate => "shift-date",
            Action::Pseudonymize => "pseudonymize",
            Action::Replace(_) => "replace",
        })
    }
}

impl From<&OverrideAction> for Action {
    fn from(a: &OverrideAction) -> Self {
        match a {
            OverrideAction::Keep => Action::Keep,
            OverrideAction::Remove => Action::Remove,
            OverrideAction::Empty => Action::Empty,
            OverrideAction::Replace(v) => Action::Replace(v.clone()),
            OverrideAction::Pseudonymize => Action::Pseudonymize,
            OverrideAction::ShiftDate => Action::ShiftDate,
            OverrideAction::Clean => Action::Clean,
        }
    }
}

/// Resolve a row's basic profile code to one action.
///
/// Combined codes depend on the attribute's type in the IOD, which is not
/// known here, so the choice that is conformant whatever the type is taken:
/// Z/D, X/D and X/Z/D become D (a dummy is valid even where the attribute is
/// Type 1), X/Z becomes Z (a Type 2 attribute must be present, and an empty
/// Type 3 one is allowed), and X/Z/U* becomes U (UIDs replaced, structure kept).
pub fn basic_action(row: &TableRow) -> Action {
    if let TagPattern::Exact(tag) = row.tag {
        if REMOVED_BUT_TYPE_2C.contains(&tag) {
            return Action::Empty;
        }
    }
    match row.basic {
        BasicCode::X => Action::Remove,
        BasicCode::Z | BasicCode::XZ => Action::Empty,
        BasicCode::D | BasicCode::ZD | BasicCode::XD | BasicCode::XZD => Action::Dummy,
        BasicCode::U | BasicCode::XZU => Action::ReplaceUids,
        BasicCode::K => Action::Keep,
        // C appears only in option columns; without the option, it is not a
        // basic code. Treat it as the safest removal.
        BasicCode::C => Action::Remove,
    }
}

/// The action for `row` under `profile`'s options, and the option that chose
/// it (`None`: the basic profile's). Where several selected options speak,
/// C (clean) wins over K (keep): cleaning keeps what is safe of the value.
pub fn table_action(row: &TableRow, vr: VR, profile: &Profile) -> (Action, Option<DeidOption>) {
    let mut keep = None;
    for option in profile.options() {
        match option.column(row) {
            Some(OptionCode::C) => return (clean_action(option, vr), Some(option)),
            Some(OptionCode::K) => keep = keep.or(Some(option)),
            None => {}
        }
    }
    match keep {
        Some(option) => (Action::Keep, Some(option)),
        None => (basic_action(row), None),
    }
}

/// What C means for an option: modified dates move dates (times and other
/// values stay as they are), every other option cleans text.
fn clean_action(option: DeidOption, vr: VR) -> Action {
    match (option, vr) {
        (DeidOption::RetainLongModifiedDates, VR::DA | VR::DT) => Action::ShiftDate,
        (DeidOption::RetainLongModifiedDates, _) => Action::Keep,
        _ => Action::Clean,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::row_for;
    use dicom_core::Tag;

    #[test]
    fn combined_codes_take_the_always_conformant_choice() {
        let act = |g, e| basic_action(row_for(Tag(g, e)).unwrap());
        assert_eq!(act(0x0010, 0x0020), Action::Dummy, "Patient ID is Z/D");
        assert_eq!(
            act(0x0008, 0x0022),
            Action::Empty,
            "Acquisition Date is X/Z"
        );
        assert_eq!(
            act(0x0018, 0x1000),
            Action::Dummy,
            "Device Serial Number is X/Z/D"
        );
        assert_eq!(
            act(0x0008, 0x1140),
            Action::ReplaceUids,
            "Referenced Image Sequence is X/Z/U*"
        );
        assert_eq!(
            act(0x0010, 0x1040),
            Action::Remove,
            "Patient's Address is X"
        );
        assert_eq!(act(0x0008, 0x0018), Action::ReplaceUids);
        assert_eq!(
            act(0x0010, 0x2297),
            Action::Empty,
            "Type 2C for animals: emptied, not removed"
        );
    }

    #[test]
    fn every_row_resolves() {
        for row in crate::table::ROWS.iter() {
            let _ = basic_action(row);
        }
        assert!(crate::table::ROWS
            .iter()
            .all(|r| r.basic != BasicCode::C && r.basic != BasicCode::K));
    }

    #[test]
    fn options_change_the_action_of_their_rows() {
        let row = |g, e| row_for(Tag(g, e)).unwrap();
        let with = |o: DeidOption| Profile::with_options([o]).unwrap();
        let study_date = row(0x0008, 0x0020);
        assert_eq!(
            table_action(study_date, VR::DA, &with(DeidOption::RetainLongFullDates)),
            (Action::Keep, Some(DeidOption::RetainLongFullDates))
        );
        assert_eq!(
            table_action(
                study_date,
                VR::DA,
                &with(DeidOption::RetainLongModifiedDates)
            )
            .0,
            Action::ShiftDate
        );
        assert_eq!(
            table_action(
                row(0x0008, 0x0030),
                VR::TM,
                &with(DeidOption::RetainLongModifiedDates)
            )
            .0,
            Action::Keep,
            "times of day stay"
        );
        assert_eq!(
            table_action(
                row(0x0008, 0x1030),
                VR::LO,
                &with(DeidOption::CleanDescriptors)
            )
            .0,
            Action::Clean
        );
        assert_eq!(
            table_action(row(0x0008, 0x1030), VR::LO, &Profile::basic()).0,
            Action::Remove
        );
        // Calibration Date: device identity keeps it, modified dates move it: C wins.
        let both = Profile::with_options([
            DeidOption::RetainDeviceIdentity,
            DeidOption::RetainLongModifiedDates,
        ])
        .unwrap();
        assert_eq!(
            table_action(row(0x0018, 0x1200), VR::DA, &both).0,
            Action::ShiftDate
        );
    }
}
