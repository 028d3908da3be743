//! Burned-in text in one file's pixels: redacted under Clean Pixel Data,
//! or, without it, checked for files at risk (written only when no text
//! is found).

use crate::outcome::{Outcome, QuarantineReason};
use dicom_core::value::PrimitiveValue;
use dicom_core::{DataElement, VR};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use obscura_dicom::{DicomInput, FileSource};
use obscura_pixels::{DecodeLimits, Decoder, PixelError};
use obscura_redact::{identity_of, inspect, regions_of, Found, Identity, Mode, NativeFrames, Rect};

/// Lossy transfer syntaxes: JPEG baseline and extended, JPEG-LS
/// near-lossless, JPEG 2000 (lossy or not), HTJ2K: writing their decoded
/// frames natively must keep Lossy Image Compression 01.
const LOSSY: [&str; 6] = [
    "1.2.840.10008.1.2.4.50",
    "1.2.840.10008.1.2.4.51",
    "1.2.840.10008.1.2.4.81",
    "1.2.840.10008.1.2.4.91",
    "1.2.840.10008.1.2.4.203",
    "1.2.840.10008.1.2.4.93",
];

/// An object whose pixels were read: its parts back, and the redacted
/// frames if any.
pub struct Checked {
    /// The input, to write from.
    pub input: DicomInput<FileSource>,
    /// Its data set (still identified).
    pub dataset: InMemDicomObject,
    /// The redacted frames, when text was redacted.
    pub pixels: Option<NativeFrames>,
}

/// Read the pixels of `input` (whose data set is `dataset`): in
/// [`Mode::Redact`], redact the text that must go and verify; in
/// [`Mode::Check`], quarantine the file if any text is found. `risk`: the
/// burned-in reason the file is checked for, if any.
pub fn read_pixels(
    input: DicomInput<FileSource>,
    dataset: InMemDicomObject,
    mode: Mode,
    risk: Option<&str>,
) -> Result<Checked, Outcome> {
    let quarantine = |detail: String| Outcome::Quarantined {
        reason: QuarantineReason::BurnedIn,
        detail,
    };
    let (decoder, identity, regions) =
        decoder(input, dataset).map_err(|e| quarantine(format!("pixels not checked ({e})")))?;
    let outcome = inspect(&decoder, &identity, &regions, mode)
        .map_err(|e| quarantine(format!("pixels not cleaned: {e}")))?;
    if mode == Mode::Check {
        if let Some(found) = outcome.found.first() {
            return Err(quarantine(format!(
                "{}; text found in the pixels ({}, frame {})",
                risk.unwrap_or("pixels at risk"),
                found.reason.as_str(),
                found.frame + 1
            )));
        }
    }
    let mut input = decoder.into_input();
    let dataset = std::mem::replace(&mut input.dataset, InMemDicomObject::new_empty());
    Ok(Checked {
        input,
        dataset,
        pixels: outcome.pixels,
    })
}

/// The burned-in text of an object's pixels that Clean Pixel Data would
/// redact (found and decided, nothing redacted), or why its pixels could
/// not be read.
pub fn find_text(
    input: DicomInput<FileSource>,
    dataset: InMemDicomObject,
) -> Result<Vec<Found>, String> {
    let (decoder, identity, regions) = decoder(input, dataset).map_err(|e| e.to_string())?;
    inspect(&decoder, &identity, &regions, Mode::Find)
        .map(|o| o.found)
        .map_err(|e| e.to_string())
}

/// A decoder of `input`'s frames (its data set put back), and what its
/// header says the text is checked against.
fn decoder(
    mut input: DicomInput<FileSource>,
    dataset: InMemDicomObject,
) -> Result<(Decoder<FileSource>, Identity, Vec<Rect>), PixelError> {
    let identity = identity_of(&dataset);
    let regions = regions_of(&dataset);
    input.dataset = dataset;
    Ok((
        Decoder::new(input, DecodeLimits::default())?,
        identity,
        regions,
    ))
}

/// Mark a de-identified object whose pixels were cleaned: Burned In
/// Annotation NO, and, when frames were rewritten natively, the Image Pixel
/// attributes of what is written (Lossy Image Compression kept, and set
/// when the source was stored lossy).
pub fn mark_clean(obj: &mut InMemDicomObject, pixels: Option<&NativeFrames>, source_ts: &str) {
    let put = |obj: &mut InMemDicomObject, tag, vr, v: PrimitiveValue| {
        obj.put(DataElement::new(tag, vr, v));
    };
    put(obj, tags::BURNED_IN_ANNOTATION, VR::CS, "NO".into());
    let Some(p) = pixels else { return };
    put(
        obj,
        tags::PHOTOMETRIC_INTERPRETATION,
        VR::CS,
        p.photometric.as_str().into(),
    );
    put(
        obj,
        tags::BITS_STORED,
        VR::US,
        PrimitiveValue::from(p.bits_stored),
    );
    put(
        obj,
        tags::HIGH_BIT,
        VR::US,
        PrimitiveValue::from(p.bits_stored - 1),
    );
    let colour = obj
        .get(tags::SAMPLES_PER_PIXEL)
        .and_then(|e| e.to_int::<u16>().ok())
        .is_some_and(|s| s > 1);
    if colour {
        put(
            obj,
            tags::PLANAR_CONFIGURATION,
            VR::US,
            PrimitiveValue::from(0u16),
        );
    }
    let lossy_declared = obj
        .get(tags::LOSSY_IMAGE_COMPRESSION)
        .and_then(|e| e.to_str().ok())
        .is_some_and(|v| v.trim() == "01");
    if LOSSY.contains(&source_ts) && !lossy_declared {
        put(obj, tags::LOSSY_IMAGE_COMPRESSION, VR::CS, "01".into());
    }
}
