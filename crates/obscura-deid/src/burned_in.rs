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
///
/// An encapsulated document (Encapsulated PDF, CDA, STL...: Encapsulated
/// Document (0042,0011) and no Pixel Data) has no pixels to carry burned-in
/// text, whatever its Burned In Annotation says: that flag speaks of the
/// document, and the document is the engine's to handle. The basic profile
/// replaces it (a blank PDF, or an empty value); a profile that keeps it has
/// its text checked against the header's identity, and the object is refused
/// (`Unsafe::Document`) if any remains.
pub fn burned_in_risk(obj: &InMemDicomObject, has_pixel_data: bool) -> Option<BurnedInRisk> {
    if !has_pixel_data && obj.get(tags::ENCAPSULATED_DOCUMENT).is_some() {
        return None;
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use dicom_core::value::PrimitiveValue;
    use dicom_core::{DataElement, VR};

    const ENCAPSULATED_PDF: &str = "1.2.840.10008.5.1.4.1.1.104.1";

    fn object(elements: &[(dicom_core::Tag, VR, &str)]) -> InMemDicomObject {
        InMemDicomObject::from_element_iter(
            elements
                .iter()
                .map(|&(tag, vr, v)| DataElement::new(tag, vr, PrimitiveValue::from(v))),
        )
    }

    fn pdf(burned_in: &str) -> InMemDicomObject {
        let mut obj = object(&[
            (tags::SOP_CLASS_UID, VR::UI, ENCAPSULATED_PDF),
            (tags::MODALITY, VR::CS, "OT"),
            (tags::BURNED_IN_ANNOTATION, VR::CS, burned_in),
            (
                tags::MIME_TYPE_OF_ENCAPSULATED_DOCUMENT,
                VR::LO,
                "application/pdf",
            ),
        ]);
        obj.put(DataElement::new(
            tags::ENCAPSULATED_DOCUMENT,
            VR::OB,
            PrimitiveValue::from(b"%PDF-1.4\n%%EOF\n".to_vec()),
        ));
        obj
    }

    #[test]
    fn an_encapsulated_document_has_no_pixels_to_burn_text_into() {
        assert_eq!(burned_in_risk(&pdf("YES"), false), None);
        assert_eq!(burned_in_risk(&pdf("NO"), false), None);
    }

    #[test]
    fn the_flag_still_counts_for_images_and_for_objects_without_a_document() {
        assert_eq!(
            burned_in_risk(&pdf("YES"), true),
            Some(BurnedInRisk::Declared)
        );
        let declared = object(&[
            (tags::MODALITY, VR::CS, "OT"),
            (tags::BURNED_IN_ANNOTATION, VR::CS, "YES"),
        ]);
        assert_eq!(
            burned_in_risk(&declared, false),
            Some(BurnedInRisk::Declared)
        );
    }
}
