//! Turning a table code into the one concrete action applied to an element.

use crate::table::{BasicCode, TableRow, TagPattern};

/// Attributes coded X in Table E.1-1 that are nevertheless Type 2C in the
/// module that holds them (Patient module, for non-human patients): an empty
/// value removes the identity just as well and keeps the IOD valid.
const REMOVED_BUT_TYPE_2C: [u32; 2] = [
    0x0010_2297, // Responsible Person
    0x0010_2299, // Responsible Organization
];

/// What the engine does to one element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
}
