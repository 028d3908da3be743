//! The attributes that say an object was de-identified, and how.

use crate::options::DeidOption;
use crate::profile::Profile;
use dicom_core::value::{PrimitiveValue, Value};
use dicom_core::{DataElement, Length, VR};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;

/// Write PatientIdentityRemoved, DeidentificationMethod, the method code
/// sequence (CID 7050) and LongitudinalTemporalInformationModified.
pub fn mark(obj: &mut InMemDicomObject, profile: &Profile) {
    obj.put(DataElement::new(
        tags::PATIENT_IDENTITY_REMOVED,
        VR::CS,
        PrimitiveValue::from("YES"),
    ));
    obj.put(DataElement::new(
        tags::DEIDENTIFICATION_METHOD,
        VR::LO,
        PrimitiveValue::from(profile.method_description()),
    ));
    let items: Vec<InMemDicomObject> = profile
        .codes()
        .iter()
        .map(|code| {
            InMemDicomObject::from_element_iter([
                DataElement::new(tags::CODE_VALUE, VR::SH, PrimitiveValue::from(code.value)),
                DataElement::new(
                    tags::CODING_SCHEME_DESIGNATOR,
                    VR::SH,
                    PrimitiveValue::from("DCM"),
                ),
                DataElement::new(
                    tags::CODE_MEANING,
                    VR::LO,
                    PrimitiveValue::from(code.meaning),
                ),
            ])
        })
        .collect();
    obj.put(DataElement::new(
        tags::DEIDENTIFICATION_METHOD_CODE_SEQUENCE,
        VR::SQ,
        Value::new_sequence(items, Length::UNDEFINED),
    ));
    let temporal = if profile.has(DeidOption::RetainLongFullDates) {
        "UNMODIFIED"
    } else if profile.has(DeidOption::RetainLongModifiedDates) {
        "MODIFIED"
    } else {
        "REMOVED"
    };
    obj.put(DataElement::new(
        tags::LONGITUDINAL_TEMPORAL_INFORMATION_MODIFIED,
        VR::CS,
        PrimitiveValue::from(temporal),
    ));
}
