//! One file through the pipeline: read, check, de-identify, write atomically.

use crate::outcome::{Outcome, QuarantineReason, SkipReason};
use crate::pixels::{mark_clean, read_pixels};
use dicom_core::value::PrimitiveValue;
use dicom_core::{DataElement, VR};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use obscura_deid::{burned_in_risk, DeidOption, Deidentifier};
use obscura_dicom::meta::{read_input_meta, InputMeta};
use obscura_dicom::NativePixels;
use obscura_dicom::{DicomInput, FileSource, Limits, ReadError};
use obscura_redact::Mode;
use std::collections::BTreeMap;
use std::fs::File;
use std::path::Path;

/// Media Storage SOP Class UID of a DICOMDIR.
const MEDIA_STORAGE_DIRECTORY: &str = "1.2.840.10008.1.3.10";

/// Per-file settings of a run.
#[derive(Debug, Clone, Copy)]
pub struct FileSettings {
    /// Write files whose pixels may carry burned-in identity anyway.
    pub allow_burned_in: bool,
    /// Parser limits.
    pub limits: Limits,
}

/// What processing one file produced, besides its outcome: the
/// pseudonym mappings, for `--mapping-out`.
#[derive(Debug, Default)]
pub struct Mappings {
    /// Original UID → replacement.
    pub uids: BTreeMap<String, String>,
    /// Original patient identity → pseudonymous Patient ID.
    pub patients: BTreeMap<String, String>,
}

/// A file read for de-identification: its parts and its data set, SOP
/// identity completed from the file meta.
pub struct ReadFile {
    /// The parsed file (meta, transfer syntax, pixel data location).
    pub input: DicomInput<FileSource>,
    /// Its data set, taken out of `input`.
    pub dataset: InMemDicomObject,
    /// The input file's size.
    pub bytes_in: u64,
}

/// Read `input` up to its pixel data, or say why it is skipped or quarantined.
pub fn read_file(input: &Path, limits: Limits) -> Result<ReadFile, Outcome> {
    let quarantine = |detail: String| Outcome::Quarantined {
        reason: QuarantineReason::Unparseable,
        detail,
    };
    let file = File::open(input).map_err(|e| quarantine(format!("cannot open: {e}")))?;
    let source = FileSource::new(file).map_err(|e| quarantine(format!("cannot read: {e}")))?;
    let bytes_in = obscura_dicom::Source::len(&source);
    let unreadable = |e: ReadError| match e {
        ReadError::NotDicom => Outcome::Skipped {
            reason: SkipReason::NotDicom,
        },
        ReadError::Empty => Outcome::Skipped {
            reason: SkipReason::Empty,
        },
        e => quarantine(e.to_string()),
    };
    let meta = read_input_meta(&source).map_err(unreadable)?;
    let is_dicomdir = meta.media_storage_sop_class_uid.as_deref() == Some(MEDIA_STORAGE_DIRECTORY)
        || input.file_name().is_some_and(|n| {
            n.to_string_lossy()
                .to_ascii_uppercase()
                .starts_with("DICOMDIR")
        });
    if is_dicomdir {
        return Err(Outcome::Skipped {
            reason: SkipReason::Dicomdir,
        });
    }
    let mut parsed = DicomInput::read_with_meta(source, meta, limits).map_err(unreadable)?;
    let mut dataset = std::mem::replace(&mut parsed.dataset, InMemDicomObject::new_empty());
    complete_sop_identity(&mut dataset, &parsed.meta);
    Ok(ReadFile {
        input: parsed,
        dataset,
        bytes_in,
    })
}

/// De-identify `input` into `output` (created atomically), or say why not.
pub fn process_file(
    engine: &Deidentifier,
    settings: FileSettings,
    input: &Path,
    output: &Path,
    mappings: &mut Mappings,
) -> Outcome {
    let quarantine = |reason, detail: String| Outcome::Quarantined { reason, detail };
    let read = match read_file(input, settings.limits) {
        Ok(r) => r,
        Err(outcome) => return outcome,
    };
    let has_pixels = read.input.pixel.is_some();
    let risk = burned_in_risk(&read.dataset, has_pixels).map(|r| r.reason());
    let cleans = has_pixels && engine.profile().has(DeidOption::CleanPixelData);
    let mode = if cleans {
        Some(Mode::Redact)
    } else {
        risk.filter(|_| !settings.allow_burned_in)
            .map(|_| Mode::Check)
    };
    let (bytes_in, source_ts) = (read.bytes_in, read.input.transfer_syntax_uid.clone());
    let (input, dataset, mut pixels) = match mode {
        Some(mode) => match read_pixels(read.input, read.dataset, mode, risk) {
            Ok(c) => (c.input, c.dataset, c.pixels),
            Err(outcome) => return outcome,
        },
        None => (read.input, read.dataset, None),
    };
    let mut result = match engine.deidentify(dataset) {
        Ok(r) => r,
        Err(e) => return quarantine(QuarantineReason::IdentityRemains, e.to_string()),
    };
    if cleans {
        mark_clean(&mut result.object, pixels.as_ref(), &source_ts);
    }
    match write_atomically(output, |w| {
        match &mut pixels {
            Some(p) => input.write_part10_native(
                &result.object,
                NativePixels {
                    vr: p.vr,
                    len: p.len,
                    samples: &mut p.file,
                },
                &mut &*w,
            ),
            None => input.write_part10_file(&result.object, w),
        }
        .map_err(|e| e.to_string())
    }) {
        Ok(bytes_out) => {
            mappings.uids.extend(result.uids);
            mappings.patients.insert(result.patient.0, result.patient.1);
            Outcome::Written {
                bytes_in,
                bytes_out,
            }
        }
        Err(e) => quarantine(QuarantineReason::Unwritable, e),
    }
}

/// Fill a missing SOP Class or Instance UID from the file meta, which
/// describes the same instance (older writers left them out of the data set);
/// the engine then replaces the instance UID like any other.
fn complete_sop_identity(dataset: &mut InMemDicomObject, meta: &InputMeta) {
    let pairs = [
        (tags::SOP_CLASS_UID, &meta.media_storage_sop_class_uid),
        (tags::SOP_INSTANCE_UID, &meta.media_storage_sop_instance_uid),
    ];
    for (tag, value) in pairs {
        let missing = dataset.get(tag).is_none();
        if let (true, Some(v)) = (missing, value.as_deref().filter(|v| !v.is_empty())) {
            dataset.put(DataElement::new(tag, VR::UI, PrimitiveValue::from(v)));
        }
    }
}

/// Write a file through a temporary file in the same folder, renamed into
/// place only when complete: no partial file is ever visible at `path`.
pub fn write_atomically<T>(
    path: &Path,
    write: impl FnOnce(&File) -> Result<T, String>,
) -> Result<T, String> {
    let dir = path.parent().ok_or("output has no parent folder")?;
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create output folder: {e}"))?;
    let tmp = tempfile::Builder::new()
        .prefix(".obscura-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|e| format!("cannot create temporary file: {e}"))?;
    let value = write(tmp.as_file())?;
    tmp.persist(path)
        .map_err(|e| format!("cannot move into place: {}", e.error))?;
    Ok(value)
}
