//! What the header says that burned-in text is checked against: the
//! object's identity, and the diagnostic regions of an ultrasound image.

use crate::decide::Identity;
use crate::Rect;
use dicom_core::Tag;
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use obscura_deid::clean::TextCleaner;

/// Attributes whose words are matched with OCR's near misses allowed.
const NEAR_MISS_SOURCES: [Tag; 7] = [
    tags::PATIENT_NAME,
    tags::PATIENT_ID,
    tags::ACCESSION_NUMBER,
    tags::PATIENT_BIRTH_NAME,
    tags::PATIENT_MOTHER_BIRTH_NAME,
    tags::REFERRING_PHYSICIAN_NAME,
    tags::INSTITUTION_NAME,
];

/// The identity of `obj` (before de-identification): every identifying
/// value the engine learns, and the words of its names and IDs.
pub fn identity_of(obj: &InMemDicomObject) -> Identity {
    let known = TextCleaner::new(obj).known().clone();
    let values = NEAR_MISS_SOURCES
        .iter()
        .filter_map(|&t| obj.get(t).and_then(|e| e.to_str().ok()))
        .map(|s| s.into_owned());
    Identity::new(known, values.collect::<Vec<_>>())
}

/// The regions of the Sequence of Ultrasound Regions (0018,6011), as boxes.
pub fn regions_of(obj: &InMemDicomObject) -> Vec<Rect> {
    let Some(items) = obj
        .get(tags::SEQUENCE_OF_ULTRASOUND_REGIONS)
        .and_then(|e| e.items())
    else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|item| {
            let v = |t| item.get(t).and_then(|e| e.to_int::<u32>().ok());
            let (x0, y0) = (
                v(tags::REGION_LOCATION_MIN_X0)?,
                v(tags::REGION_LOCATION_MIN_Y0)?,
            );
            let (x1, y1) = (
                v(tags::REGION_LOCATION_MAX_X1)?,
                v(tags::REGION_LOCATION_MAX_Y1)?,
            );
            (x1 >= x0 && y1 >= y0).then_some(Rect {
                x0: x0 as usize,
                y0: y0 as usize,
                x1: x1 as usize + 1,
                y1: y1 as usize + 1,
            })
        })
        .collect()
}
