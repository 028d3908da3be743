//! Whether a file's pixels may carry burned-in identity, which header
//! de-identification cannot remove.

use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;

/// Why a file's pixels may show identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BurnedInRisk {
    /// Burned In Annotation (0028,0301) is YES.
    Declared,
    /// A modality that usually carries burned-in text (US, SC, OT, XC) or a
    /// Secondary Capture SOP class, without Burned In Annotation = NO.
    LikelyForModality,
}

impl BurnedInRisk {
    /// A short reason for reports and logs.
    pub fn reason(self) -> &'static str {
        match self {
            BurnedInRisk::Declared => "BurnedInAnnotation is YES",
            BurnedInRisk::LikelyForModality => {
                "modality or SOP class that often has burned-in text (US, SC, OT, XC, Secondary Capture) without BurnedInAnnotation NO"
            }
        }
    }
}

const RISKY_MODALITIES: [&str; 4] = ["US", "SC", "OT", "XC"];
const SECONDARY_CAPTURE_ROOT: &str = "1.2.840.10008.5.1.4.1.1.7";

/// The burned-in risk of a data set, if any. Only image objects (with Pixel
/// Data or at least Rows) are at risk; a data set without pixels has none.
pub fn burned_in_risk(obj: &InMemDicomObject, has_pixel_data: bool) -> Option<BurnedInRisk> {
    let text = |tag| {
        obj.get(tag)
            .and_then(|e| e.to_str().ok().map(|s| s.trim().to_ascii_uppercase()))
    };
    let declared = text(tags::BURNED_IN_ANNOTATION);
    match declared.as_deref() {
        Some("YES") => return Some(BurnedInRisk::Declared),
        Some("NO") => return None,
        _ => {}
    }
    if !has_pixel_data {
        return None;
    }
    let modality = text(tags::MODALITY).unwrap_or_default();
    let sop_class = text(tags::SOP_CLASS_UID).unwrap_or_default();
    let risky = RISKY_MODALITIES.contains(&modality.as_str())
        || sop_class == SECONDARY_CAPTURE_ROOT
        || sop_class.starts_with(&format!("{SECONDARY_CAPTURE_ROOT}."));
    risky.then_some(BurnedInRisk::LikelyForModality)
}
