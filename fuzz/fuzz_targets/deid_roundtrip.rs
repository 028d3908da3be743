//! Any bytes → read → de-identify → write Part 10 → read back.
//!
//! Errors are fine; a panic, abort, timeout or OOM is a finding. A written
//! output that cannot be read back, or that lacks PatientIdentityRemoved, is
//! a bug too (asserted here, so it surfaces as a crash).

#![no_main]

use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use libfuzzer_sys::fuzz_target;
use obscura_deid::{burned_in_risk, Deidentifier, Profile, Pseudonymizer, SecretKey};
use obscura_dicom::{DicomInput, Limits};
use std::sync::OnceLock;

fn limits() -> Limits {
    Limits {
        max_header_bytes: 16 << 20,
        max_inflated_bytes: 64 << 20,
        ..Default::default()
    }
}

fn engine() -> &'static Deidentifier {
    static ENGINE: OnceLock<Deidentifier> = OnceLock::new();
    ENGINE.get_or_init(|| {
        Deidentifier::new(
            Profile::basic(),
            Pseudonymizer::new(SecretKey::from_bytes([7; 32])),
        )
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(mut input) = DicomInput::read(data.to_vec(), limits()) else {
        return;
    };
    let dataset = std::mem::replace(&mut input.dataset, InMemDicomObject::new_empty());
    let _ = burned_in_risk(&dataset, input.pixel.is_some());
    let deid = engine().deidentify(dataset);
    let mut out = Vec::new();
    if input.write_part10(&deid.object, &mut out).is_err() {
        return;
    }
    let back = match DicomInput::read(out, limits()) {
        Ok(back) => back,
        Err(e) => panic!("de-identified output does not read back: {e}"),
    };
    let marker = back
        .dataset
        .element_opt(tags::PATIENT_IDENTITY_REMOVED)
        .ok()
        .flatten()
        .and_then(|e| e.to_str().ok().map(|s| s.trim().to_string()));
    assert_eq!(
        marker.as_deref(),
        Some("YES"),
        "de-identified output lacks PatientIdentityRemoved = YES"
    );
});
