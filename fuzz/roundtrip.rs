//! The pipeline the fuzz target drives, shared with the regression test
//! (crates/obscura-dicom/tests/fuzz_regressions.rs): any bytes → read →
//! de-identify → write Part 10 → read back. Read and write errors are fine;
//! a written output that does not read back, or lacks PatientIdentityRemoved
//! = YES, is a failure (and a panic anywhere is one too).

use dicom_object::InMemDicomObject;
use obscura_deid::{burned_in_risk, DeidOption, Deidentifier, Profile, Pseudonymizer, SecretKey};
use obscura_dicom::{DicomInput, Limits};

/// Limits small enough that a fuzz input cannot exhaust memory.
pub fn limits() -> Limits {
    Limits {
        max_header_bytes: 16 << 20,
        max_inflated_bytes: 64 << 20,
        ..Default::default()
    }
}

/// The engines every input goes through (a fixed key): the basic profile,
/// and every option that reads or rewrites values (cleaning, modified dates,
/// safe private, device and patient characteristics), where the text
/// detectors and character-set decoders run.
pub fn engines() -> [Deidentifier; 2] {
    let key = || Pseudonymizer::new(SecretKey::from_bytes([7; 32]));
    let everything = DeidOption::ALL
        .into_iter()
        .filter(|o| *o != DeidOption::RetainLongFullDates);
    let everything = Profile::with_options(everything).expect("no conflicting options");
    [
        Deidentifier::new(Profile::basic(), key()),
        Deidentifier::new(everything, key()),
    ]
}

/// Run one input through the pipeline with each engine.
pub fn roundtrip(engines: &[Deidentifier], data: &[u8]) -> Result<(), String> {
    engines.iter().try_for_each(|e| roundtrip_one(e, data))
}

fn roundtrip_one(engine: &Deidentifier, data: &[u8]) -> Result<(), String> {
    let Ok(mut input) = DicomInput::read(data.to_vec(), limits()) else {
        return Ok(());
    };
    let dataset = std::mem::replace(&mut input.dataset, InMemDicomObject::new_empty());
    let _ = burned_in_risk(&dataset, input.pixel.is_some());
    let deid = engine.deidentify(dataset).expect("de-identifiable");
    let mut out = Vec::new();
    if input.write_part10(&deid.object, &mut out).is_err() {
        return Ok(());
    }
    let back =
        DicomInput::read(out, limits()).map_err(|e| format!("output does not read back: {e}"))?;
    let marker = back
        .dataset
        .get(dicom_dictionary_std::tags::PATIENT_IDENTITY_REMOVED)
        .and_then(|e| e.to_str().ok().map(|s| s.trim().to_string()));
    match marker.as_deref() {
        Some("YES") => Ok(()),
        other => Err(format!(
            "output has PatientIdentityRemoved {other:?}, not YES"
        )),
    }
}
