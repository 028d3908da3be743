//! PS3.15 Table E.1-1 as data: which action the standard prescribes for each
//! attribute, under the basic profile and each option.

#[rustfmt::skip]
mod annex_e;
#[rustfmt::skip]
mod safe_private;

pub use annex_e::{EDITION, EXACT_ROW_COUNT, ROWS};
use dicom_core::Tag;
pub use safe_private::SAFE_PRIVATE;

/// The tag (or tag pattern) a row of the table applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagPattern {
    /// Exactly this tag, as `0xGGGGEEEE`.
    Exact(u32),
    /// Repeating groups such as `(50XX,XXXX)` or `(60XX,3000)`: tags with
    /// `tag & mask == value` in an even group.
    Masked {
        /// The tag with the `XX` digits zero.
        value: u32,
        /// Ones where the pattern's digits are fixed.
        mask: u32,
    },
    /// `(GGGG,EEEE) where GGGG is odd`: every private attribute.
    PrivateOddGroup,
}

impl TagPattern {
    /// Whether this pattern covers `tag`.
    pub fn matches(self, tag: Tag) -> bool {
        let t = (u32::from(tag.0) << 16) | u32::from(tag.1);
        match self {
            TagPattern::Exact(v) => t == v,
            TagPattern::Masked { value, mask } => tag.0.is_multiple_of(2) && t & mask == value,
            TagPattern::PrivateOddGroup => tag.0 % 2 == 1,
        }
    }
}

/// An action code of the basic profile column, combined codes included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BasicCode {
    /// D: replace with a non-zero length dummy value consistent with the VR.
    D,
    /// Z: replace with a zero length value, or a dummy where Type 1.
    Z,
    /// X: remove.
    X,
    /// U: replace with a non-zero length UID, consistently within the set.
    U,
    /// K: keep.
    K,
    /// C: clean (replace identifying information, keep the rest).
    C,
    /// Z/D: Z unless D is required to keep the IOD valid.
    ZD,
    /// X/Z: X unless Z is required to keep the IOD valid.
    XZ,
    /// X/D: X unless D is required to keep the IOD valid.
    XD,
    /// X/Z/D: X unless Z or D is required to keep the IOD valid.
    XZD,
    /// X/Z/U*: X unless Z or a replacement of contained UIDs is required.
    XZU,
}

impl BasicCode {
    /// The code as the standard writes it, e.g. `X/Z/D`.
    pub fn as_str(self) -> &'static str {
        match self {
            BasicCode::D => "D",
            BasicCode::Z => "Z",
            BasicCode::X => "X",
            BasicCode::U => "U",
            BasicCode::K => "K",
            BasicCode::C => "C",
            BasicCode::ZD => "Z/D",
            BasicCode::XZ => "X/Z",
            BasicCode::XD => "X/D",
            BasicCode::XZD => "X/Z/D",
            BasicCode::XZU => "X/Z/U*",
        }
    }
}

/// The action an option column gives, where it changes the basic one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptionCode {
    /// K: keep.
    K,
    /// C: clean.
    C,
}

impl OptionCode {
    /// The code as the standard writes it: `K` or `C`.
    pub fn as_str(self) -> &'static str {
        match self {
            OptionCode::K => "K",
            OptionCode::C => "C",
        }
    }
}

/// The option columns of one row (`None`: the option leaves the basic action).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptionCodes {
    /// Retain Safe Private Option.
    pub retain_safe_private: Option<OptionCode>,
    /// Retain UIDs Option.
    pub retain_uids: Option<OptionCode>,
    /// Retain Device Identity Option.
    pub retain_device_identity: Option<OptionCode>,
    /// Retain Institution Identity Option.
    pub retain_institution_identity: Option<OptionCode>,
    /// Retain Patient Characteristics Option.
    pub retain_patient_characteristics: Option<OptionCode>,
    /// Retain Longitudinal Temporal Information with Full Dates Option.
    pub retain_long_full_dates: Option<OptionCode>,
    /// Retain Longitudinal Temporal Information with Modified Dates Option.
    pub retain_long_modified_dates: Option<OptionCode>,
    /// Clean Descriptors Option.
    pub clean_descriptors: Option<OptionCode>,
    /// Clean Structured Content Option.
    pub clean_structured_content: Option<OptionCode>,
    /// Clean Graphics Option.
    pub clean_graphics: Option<OptionCode>,
}

/// One row of Table E.1-1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableRow {
    /// The attribute's tag or tag pattern.
    pub tag: TagPattern,
    /// The attribute's name as the standard spells it.
    pub name: &'static str,
    /// Whether the attribute is used in a standard composite IOD.
    pub in_standard_composite_iod: bool,
    /// The basic profile's action.
    pub basic: BasicCode,
    /// What each option changes.
    pub options: OptionCodes,
}

/// The row that governs `tag`: an exact row first, then the patterns.
pub fn row_for(tag: Tag) -> Option<&'static TableRow> {
    let t = (u32::from(tag.0) << 16) | u32::from(tag.1);
    let (exact, patterns) = ROWS.split_at(EXACT_ROW_COUNT);
    if let Ok(i) = exact.binary_search_by_key(&t, |r| match r.tag {
        TagPattern::Exact(v) => v,
        _ => unreachable!("exact rows come first"),
    }) {
        return Some(&exact[i]);
    }
    patterns.iter().find(|r| r.tag.matches(tag))
}

/// A private attribute known to be safe to keep (RSNA CTP dictionary, code K).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SafePrivate {
    /// Its private creator, trimmed and in upper case.
    pub creator: &'static str,
    /// Its (odd) group.
    pub group: u16,
    /// Its element offset within the creator's block (the low byte).
    pub element: u8,
    /// Its value representation.
    pub vr: &'static str,
    /// A descriptive name.
    pub name: &'static str,
}

/// The safe-private entry for element `element` (low byte) of `creator`'s
/// block in `group`, whichever block the creator was given.
pub fn safe_private(creator: &str, group: u16, element: u8) -> Option<&'static SafePrivate> {
    let creator = normalize_creator(creator);
    SAFE_PRIVATE
        .binary_search_by(|s| {
            (s.creator, s.group, s.element).cmp(&(creator.as_str(), group, element))
        })
        .ok()
        .map(|i| &SAFE_PRIVATE[i])
}

/// Whether any attribute of `creator` in `group` is known safe.
pub fn is_safe_creator(creator: &str, group: u16) -> bool {
    let creator = normalize_creator(creator);
    let key = (creator.as_str(), group);
    let first = SAFE_PRIVATE.partition_point(|s| (s.creator, s.group) < key);
    SAFE_PRIVATE
        .get(first)
        .is_some_and(|s| (s.creator, s.group) == key)
}

/// A private creator as the dictionary spells it: trimmed, upper case.
fn normalize_creator(creator: &str) -> String {
    creator
        .trim_matches(|c: char| c == ' ' || c == '\0')
        .to_ascii_uppercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_has_every_row_of_the_standard() {
        assert_eq!(ROWS.len(), 621);
        assert_eq!(EDITION, "2024b");
    }

    #[test]
    fn exact_rows_come_first_sorted_and_unique() {
        assert!(ROWS[..EXACT_ROW_COUNT]
            .iter()
            .all(|r| matches!(r.tag, TagPattern::Exact(_))));
        assert!(ROWS[EXACT_ROW_COUNT..]
            .iter()
            .all(|r| !matches!(r.tag, TagPattern::Exact(_))));
        let exact: Vec<u32> = ROWS
            .iter()
            .filter_map(|r| match r.tag {
                TagPattern::Exact(v) => Some(v),
                _ => None,
            })
            .collect();
        assert!(exact.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn lookup_finds_exact_rows_patterns_and_private_groups() {
        assert_eq!(row_for(Tag(0x0010, 0x0010)).unwrap().basic, BasicCode::Z);
        assert_eq!(row_for(Tag(0x0010, 0x0020)).unwrap().basic, BasicCode::ZD);
        assert_eq!(row_for(Tag(0x0008, 0x1140)).unwrap().basic, BasicCode::XZU);
        assert_eq!(row_for(Tag(0x5012, 0x3000)).unwrap().name, "Curve Data");
        assert_eq!(row_for(Tag(0x6002, 0x3000)).unwrap().name, "Overlay Data");
        assert_eq!(
            row_for(Tag(0x6002, 0x4000)).unwrap().name,
            "Overlay Comments"
        );
        assert_eq!(row_for(Tag(0x0009, 0x1001)).unwrap().basic, BasicCode::X);
        assert!(
            row_for(Tag(0x0028, 0x0010)).is_none(),
            "Rows is not in the table"
        );
        assert!(row_for(Tag(0x6001, 0x3000)).unwrap().tag == TagPattern::PrivateOddGroup);
    }

    #[test]
    fn option_columns_survive_generation() {
        let date = row_for(Tag(0x0008, 0x0020)).unwrap();
        assert_eq!(date.options.retain_long_full_dates, Some(OptionCode::K));
        assert_eq!(date.options.retain_long_modified_dates, Some(OptionCode::C));
        let private = row_for(Tag(0x0009, 0x0010)).unwrap();
        assert_eq!(private.options.retain_safe_private, Some(OptionCode::C));
    }

    #[test]
    fn safe_private_lookup_is_by_creator_group_and_offset() {
        assert!(SAFE_PRIVATE
            .windows(2)
            .all(|w| (w[0].creator, w[0].group, w[0].element)
                < (w[1].creator, w[1].group, w[1].element)));
        let first = &SAFE_PRIVATE[0];
        let found = safe_private(
            &first.creator.to_ascii_lowercase(),
            first.group,
            first.element,
        );
        assert_eq!(found, Some(first), "creators match case-insensitively");
        assert!(safe_private(first.creator, first.group ^ 0x0100, first.element).is_none());
        assert!(safe_private("NOT A VENDOR", first.group, first.element).is_none());
        assert!(is_safe_creator("GEMS_PARM_01 ", 0x0043));
        assert!(!is_safe_creator("SBMC RIS Bridge 2.1", 0x0033));
    }
}
