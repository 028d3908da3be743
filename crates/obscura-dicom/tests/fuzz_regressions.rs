//! Inputs that once made the `deid_roundtrip` fuzz target (fuzz/) fail, kept
//! in fuzz/regressions/*.bin and replayed here without libFuzzer: each goes
//! through the same read → de-identify → write → read back pipeline, which
//! must not panic, and whose written output must read back with
//! PatientIdentityRemoved = YES.

use dicom_core::header::Header as _;
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use obscura_deid::{burned_in_risk, Deidentifier, Profile, Pseudonymizer, SecretKey};
use obscura_dicom::{DicomInput, Limits};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

/// The fuzz target's limits.
fn limits() -> Limits {
    Limits {
        max_header_bytes: 16 << 20,
        max_inflated_bytes: 64 << 20,
        ..Default::default()
    }
}

/// The fuzz target's pipeline. Read and write errors are fine; a written
/// output that does not read back, or lacks the marker, is a failure.
fn roundtrip(data: &[u8]) -> Result<(), String> {
    let Ok(mut input) = DicomInput::read(data.to_vec(), limits()) else {
        return Ok(());
    };
    let engine = Deidentifier::new(
        Profile::basic(),
        Pseudonymizer::new(SecretKey::from_bytes([7; 32])),
    );
    let dataset = std::mem::replace(&mut input.dataset, InMemDicomObject::new_empty());
    let _ = burned_in_risk(&dataset, input.pixel.is_some());
    let deid = engine.deidentify(dataset);
    let mut out = Vec::new();
    if input.write_part10(&deid.object, &mut out).is_err() {
        return Ok(());
    }
    let back = DicomInput::read(out, limits())
        .map_err(|e| format!("de-identified output does not read back: {e}"))?;
    let marker = back
        .dataset
        .element_opt(tags::PATIENT_IDENTITY_REMOVED)
        .ok()
        .flatten()
        .and_then(|e| e.to_str().ok().map(|s| s.trim().to_string()));
    match marker.as_deref() {
        Some("YES") => Ok(()),
        other => Err(format!(
            "de-identified output has PatientIdentityRemoved {other:?}, not YES ({} elements)",
            back.dataset.iter().filter(|e| e.tag().0 != 0x7FE0).count()
        )),
    }
}

fn regression_inputs() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/regressions");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "bin"))
        .collect();
    files.sort();
    files
}

#[test]
fn fuzz_regressions_roundtrip_without_panic() {
    let files = regression_inputs();
    let mut failures = Vec::new();
    for path in &files {
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let data = std::fs::read(path).expect("regression input is readable");
        match catch_unwind(AssertUnwindSafe(|| roundtrip(&data))) {
            Ok(Ok(())) => {}
            Ok(Err(reason)) => failures.push(format!("{name}: {reason}")),
            Err(panic) => {
                let msg = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "non-string panic payload".into());
                failures.push(format!("{name}: panicked: {msg}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} fuzz regression inputs failed:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}
