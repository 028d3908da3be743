//! Each PS3.15 option on hand-built objects: every test fails if its option
//! is ignored. Real files are covered by the pytest suite.

use dicom_core::value::{PrimitiveValue, Value};
use dicom_core::{DataElement, Length, Tag, VR};
use dicom_dictionary_std::tags;
use dicom_object::mem::InMemElement;
use dicom_object::InMemDicomObject;
use obscura_deid::{DeidOption, Deidentifier, Profile, Pseudonymizer, SecretKey};

type Elem = DataElement<InMemDicomObject>;

fn s(tag: Tag, vr: VR, v: &str) -> Elem {
    DataElement::new(tag, vr, PrimitiveValue::from(v))
}

fn seq(tag: Tag, items: Vec<InMemDicomObject>) -> Elem {
    DataElement::new(tag, VR::SQ, Value::new_sequence(items, Length::UNDEFINED))
}

fn obj(elements: Vec<Elem>) -> InMemDicomObject {
    InMemDicomObject::from_element_iter(elements)
}

fn text(o: &InMemDicomObject, tag: Tag) -> Option<String> {
    o.get(tag)
        .map(|e| e.to_str().unwrap_or_default().to_string())
}

fn item(o: &InMemDicomObject, tag: Tag) -> InMemDicomObject {
    match o.get(tag).map(InMemElement::value) {
        Some(Value::Sequence(s)) => s.items()[0].clone(),
        _ => panic!("no sequence ({:04X},{:04X})", tag.0, tag.1),
    }
}

fn run(options: &[DeidOption], o: InMemDicomObject) -> InMemDicomObject {
    let profile = Profile::with_options(options.iter().copied()).unwrap();
    Deidentifier::new(profile, Pseudonymizer::new(SecretKey::from_bytes([9; 32])))
        .deidentify(o)
        .unwrap()
        .object
}

/// Run `o` without and with `option`: the two outputs.
fn both(option: DeidOption, o: InMemDicomObject) -> (InMemDicomObject, InMemDicomObject) {
    (run(&[], o.clone()), run(&[option], o))
}

const SOP: &str = "1.2.826.0.1.3680043.10.1234.1.1.1";

fn ct(patient_id: &str, extra: Vec<Elem>) -> InMemDicomObject {
    let mut v = vec![
        s(tags::SOP_CLASS_UID, VR::UI, "1.2.840.10008.5.1.4.1.1.2"),
        s(tags::SOP_INSTANCE_UID, VR::UI, SOP),
        s(tags::STUDY_DATE, VR::DA, "20240105"),
        s(tags::STUDY_TIME, VR::TM, "093000"),
        s(tags::ACCESSION_NUMBER, VR::SH, "ACC991"),
        s(tags::MODALITY, VR::CS, "CT"),
        s(tags::INSTITUTION_NAME, VR::LO, "General Hospital"),
        s(tags::REFERRING_PHYSICIAN_NAME, VR::PN, "ROE^RICHARD^^DR"),
        s(tags::STATION_NAME, VR::SH, "CT01"),
        s(tags::PATIENT_NAME, VR::PN, "DOE^JOHN"),
        s(tags::PATIENT_ID, VR::LO, patient_id),
        s(tags::PATIENT_BIRTH_DATE, VR::DA, "19610412"),
        s(tags::PATIENT_SEX, VR::CS, "M"),
        s(tags::PATIENT_AGE, VR::AS, "062Y"),
        s(tags::DEVICE_SERIAL_NUMBER, VR::LO, "SN-7781"),
        s(
            tags::STUDY_INSTANCE_UID,
            VR::UI,
            "1.2.826.0.1.3680043.10.1234.1",
        ),
    ];
    v.extend(extra);
    obj(v)
}

#[test]
fn retain_uids_keeps_instance_uids() {
    let (basic, with) = both(DeidOption::RetainUids, ct("MRN1", vec![]));
    assert_ne!(text(&basic, tags::SOP_INSTANCE_UID).unwrap(), SOP);
    assert_eq!(text(&with, tags::SOP_INSTANCE_UID).unwrap(), SOP);
}

#[test]
fn retain_device_identity_keeps_station_and_serial() {
    let (basic, with) = both(DeidOption::RetainDeviceIdentity, ct("MRN1", vec![]));
    assert_ne!(
        text(&basic, tags::DEVICE_SERIAL_NUMBER).as_deref(),
        Some("SN-7781")
    );
    assert_eq!(text(&with, tags::DEVICE_SERIAL_NUMBER).unwrap(), "SN-7781");
    assert_eq!(text(&with, tags::STATION_NAME).unwrap(), "CT01");
}

#[test]
fn retain_institution_identity_keeps_the_institution() {
    let (basic, with) = both(DeidOption::RetainInstitutionIdentity, ct("MRN1", vec![]));
    assert_ne!(
        text(&basic, tags::INSTITUTION_NAME).as_deref(),
        Some("General Hospital")
    );
    assert_eq!(
        text(&with, tags::INSTITUTION_NAME).unwrap(),
        "General Hospital"
    );
}

#[test]
fn retain_patient_characteristics_keeps_sex_and_age() {
    let (basic, with) = both(DeidOption::RetainPatientCharacteristics, ct("MRN1", vec![]));
    assert_ne!(text(&basic, tags::PATIENT_AGE).as_deref(), Some("062Y"));
    assert_eq!(text(&with, tags::PATIENT_AGE).unwrap(), "062Y");
    assert_eq!(text(&with, tags::PATIENT_SEX).unwrap(), "M");
}

#[test]
fn retain_full_dates_keeps_dates_and_times() {
    let (basic, with) = both(DeidOption::RetainLongFullDates, ct("MRN1", vec![]));
    assert_ne!(text(&basic, tags::STUDY_DATE).as_deref(), Some("20240105"));
    assert_eq!(text(&with, tags::STUDY_DATE).unwrap(), "20240105");
    assert_eq!(text(&with, tags::STUDY_TIME).unwrap(), "093000");
    let temporal = tags::LONGITUDINAL_TEMPORAL_INFORMATION_MODIFIED;
    assert_eq!(text(&with, temporal).unwrap(), "UNMODIFIED");
    assert_eq!(text(&basic, temporal).unwrap(), "REMOVED");
}

#[test]
fn modified_dates_keep_a_patients_intervals_at_every_depth() {
    let nested = |date: &str| {
        seq(
            tags::SOURCE_IMAGE_SEQUENCE,
            vec![obj(vec![s(tags::STUDY_DATE, VR::DA, date)])],
        )
    };
    let opts = [DeidOption::RetainLongModifiedDates];
    let first = run(
        &opts,
        ct(
            "MRN1",
            vec![s(
                tags::ACQUISITION_DATE_TIME,
                VR::DT,
                "20240105093000.5+0100",
            )],
        ),
    );
    let mut later = ct("MRN1", vec![nested("20240301")]);
    later.put(s(tags::STUDY_DATE, VR::DA, "20240112"));
    let later = run(&opts, later);
    let other = run(&opts, ct("MRN2", vec![]));

    let day = |v: &str| {
        let n = |r: std::ops::Range<usize>| v[r].parse::<i64>().unwrap();
        // days since an epoch, good enough to compare intervals within a year
        let month_days = [0, 31, 60, 91, 121, 152, 182, 213, 244, 274, 305, 335];
        n(0..4) * 366 + month_days[(n(4..6) - 1) as usize] + n(6..8)
    };
    let d1 = text(&first, tags::STUDY_DATE).unwrap();
    let d2 = text(&later, tags::STUDY_DATE).unwrap();
    assert_ne!(d1, "20240105", "the date moved");
    assert_eq!(
        day(&d2) - day(&d1),
        7,
        "a week apart before, a week apart after"
    );
    assert_ne!(
        text(&other, tags::STUDY_DATE).unwrap(),
        d1,
        "another patient, another offset"
    );
    let dt = text(&first, tags::ACQUISITION_DATE_TIME).unwrap();
    assert!(dt.starts_with(&d1) && dt.ends_with("093000.5+0100"), "{dt}");
    let inner = text(&item(&later, tags::SOURCE_IMAGE_SEQUENCE), tags::STUDY_DATE).unwrap();
    assert_eq!(
        day(&inner) - day(&d2),
        49,
        "nested dates move by the same offset"
    );
    assert_eq!(
        text(&first, tags::LONGITUDINAL_TEMPORAL_INFORMATION_MODIFIED).unwrap(),
        "MODIFIED"
    );
}

#[test]
fn clean_descriptors_keep_the_clinical_words_only() {
    let desc = s(
        tags::STUDY_DESCRIPTION,
        VR::LO,
        "CT CHEST per Dr Roe 01/05/2024 for John Doe",
    );
    let comments = s(
        tags::IMAGE_COMMENTS,
        VR::LT,
        "Pt DOE moved; SSN 123-45-6789; call 555-201-3344",
    );
    let (basic, with) = both(
        DeidOption::CleanDescriptors,
        ct("MRN1", vec![desc, comments]),
    );
    assert!(text(&basic, tags::STUDY_DESCRIPTION).is_none());
    let cleaned = text(&with, tags::STUDY_DESCRIPTION).unwrap();
    assert!(cleaned.starts_with("CT CHEST"), "{cleaned}");
    for phi in ["Roe", "01/05/2024", "John", "Doe"] {
        assert!(!cleaned.contains(phi), "{phi} left in {cleaned}");
    }
    let comments = text(&with, tags::IMAGE_COMMENTS).unwrap();
    for phi in ["DOE", "123-45-6789", "555-201-3344"] {
        assert!(!comments.contains(phi), "{phi} left in {comments}");
    }
    assert!(comments.contains("moved"), "{comments}");
}

#[test]
fn clean_structured_content_cleans_text_replaces_names_and_remaps_uids() {
    let content_item = |vt: &str, value: Elem| obj(vec![s(tags::VALUE_TYPE, VR::CS, vt), value]);
    let sr = vec![seq(
        tags::CONTENT_SEQUENCE,
        vec![
            content_item(
                "TEXT",
                s(
                    tags::TEXT_VALUE,
                    VR::UT,
                    "Mild effusion. Discussed with John Doe.",
                ),
            ),
            content_item("PNAME", s(tags::PERSON_NAME, VR::PN, "ROE^RICHARD")),
            content_item("UIDREF", s(tags::UID, VR::UI, SOP)),
            obj(vec![
                s(tags::VALUE_TYPE, VR::CS, "CODE"),
                seq(
                    tags::CONCEPT_CODE_SEQUENCE,
                    vec![obj(vec![
                        s(tags::CODE_VALUE, VR::SH, "36113009"),
                        s(tags::CODING_SCHEME_DESIGNATOR, VR::SH, "SCT"),
                        s(tags::CODE_MEANING, VR::LO, "Effusion"),
                    ])],
                ),
            ]),
        ],
    )];
    let (basic, with) = both(DeidOption::CleanStructuredContent, ct("MRN1", sr));
    let items = |o: &InMemDicomObject| match o.get(tags::CONTENT_SEQUENCE).map(InMemElement::value)
    {
        Some(Value::Sequence(s)) => s.items().to_vec(),
        _ => panic!("no content"),
    };
    let text_value = text(&items(&with)[0], tags::TEXT_VALUE).unwrap();
    assert!(text_value.starts_with("Mild effusion."), "{text_value}");
    assert!(!text_value.contains("Doe"), "{text_value}");
    assert_ne!(
        text(&items(&basic)[0], tags::TEXT_VALUE).unwrap(),
        text_value,
        "without the option, the text is replaced whole"
    );
    assert!(!text(&items(&with)[1], tags::PERSON_NAME)
        .unwrap()
        .contains("ROE"));
    assert_eq!(
        text(&items(&with)[2], tags::UID).unwrap(),
        text(&with, tags::SOP_INSTANCE_UID).unwrap(),
        "UIDREF remapped like the instance it names"
    );
    let code = item(&items(&with)[3], tags::CONCEPT_CODE_SEQUENCE);
    assert_eq!(text(&code, tags::CODE_MEANING).unwrap(), "Effusion");
}

#[test]
fn clean_graphics_keeps_annotations_with_clean_text_and_region_overlays() {
    let annotation = seq(
        tags::GRAPHIC_ANNOTATION_SEQUENCE,
        vec![obj(vec![
            s(tags::GRAPHIC_LAYER, VR::CS, "LAYER1"),
            seq(
                tags::TEXT_OBJECT_SEQUENCE,
                vec![obj(vec![s(
                    tags::UNFORMATTED_TEXT_VALUE,
                    VR::ST,
                    "Nodule 4 mm, John Doe",
                )])],
            ),
        ])],
    );
    let overlay = |group: u16, kind: &str| {
        vec![
            s(Tag(group, 0x0010), VR::US, "2"),
            s(Tag(group, 0x0040), VR::CS, kind),
            DataElement::new(
                Tag(group, 0x3000),
                VR::OW,
                PrimitiveValue::from(vec![0u8; 4]),
            ),
        ]
    };
    let mut extra = vec![annotation];
    extra.extend(overlay(0x6000, "R"));
    extra.extend(overlay(0x6002, "G"));
    let (basic, with) = both(DeidOption::CleanGraphics, ct("MRN1", extra));
    assert!(basic.get(Tag(0x6000, 0x3000)).is_none());
    assert!(
        with.get(Tag(0x6000, 0x3000)).is_some(),
        "region overlay kept"
    );
    assert!(
        with.get(Tag(0x6002, 0x3000)).is_none(),
        "graphics overlay removed"
    );
    let text_object = item(
        &item(&with, tags::GRAPHIC_ANNOTATION_SEQUENCE),
        tags::TEXT_OBJECT_SEQUENCE,
    );
    let t = text(&text_object, tags::UNFORMATTED_TEXT_VALUE).unwrap();
    assert!(t.starts_with("Nodule 4 mm"), "{t}");
    assert!(!t.contains("Doe"), "{t}");
}

#[test]
fn retain_safe_private_keeps_listed_attributes_by_creator_in_any_block() {
    let private = vec![
        // GEMS_PARM_01 in block 0x20 instead of its usual 0x10
        s(Tag(0x0043, 0x0020), VR::LO, "GEMS_PARM_01"),
        s(Tag(0x0043, 0x2030), VR::SS, "1"), // VasCollapseFlag: safe (K)
        s(Tag(0x0043, 0x2011), VR::US, "7"), // TotalInputViews: KB, not safe
        s(Tag(0x0033, 0x0010), VR::LO, "SBMC RIS Bridge 2.1"),
        s(Tag(0x0033, 0x1010), VR::LO, "John Doe"),
    ];
    let (basic, with) = both(DeidOption::RetainSafePrivate, ct("MRN1", private));
    assert!(basic.get(Tag(0x0043, 0x2030)).is_none());
    assert!(with.get(Tag(0x0043, 0x2030)).is_some(), "listed safe: kept");
    assert!(with.get(Tag(0x0043, 0x0020)).is_some(), "its creator kept");
    assert!(with.get(Tag(0x0043, 0x2011)).is_none(), "listed, not safe");
    assert!(with.get(Tag(0x0033, 0x1010)).is_none(), "unknown creator");
    assert!(with.get(Tag(0x0033, 0x0010)).is_none());
}

#[test]
fn method_codes_are_the_options_applied() {
    let options = [DeidOption::CleanDescriptors, DeidOption::RetainUids];
    let out = run(&options, ct("MRN1", vec![]));
    let codes: Vec<String> = match out
        .get(tags::DEIDENTIFICATION_METHOD_CODE_SEQUENCE)
        .map(InMemElement::value)
    {
        Some(Value::Sequence(s)) => s
            .items()
            .iter()
            .map(|i| text(i, tags::CODE_VALUE).unwrap())
            .collect(),
        _ => panic!("no code sequence"),
    };
    assert_eq!(codes, ["113100", "113110", "113105"]);
}

#[test]
fn profile_overrides_and_keep_lists_take_precedence() {
    let profile = Profile::from_toml(
        r#"
        keep_only = ["Modality", "StudyDescription", "PatientSex"]
        [[override]]
        attribute = "PatientSex"
        action = "keep"
        [[override]]
        attribute = "StudyDescription"
        action = "replace"
        value = "RESEARCH"
        "#,
    )
    .unwrap();
    let out = Deidentifier::new(profile, Pseudonymizer::new(SecretKey::from_bytes([9; 32])))
        .deidentify(ct(
            "MRN1",
            vec![s(tags::STUDY_DESCRIPTION, VR::LO, "CT CHEST")],
        ))
        .unwrap()
        .object;
    assert_eq!(text(&out, tags::STUDY_DESCRIPTION).unwrap(), "RESEARCH");
    assert_eq!(text(&out, tags::PATIENT_SEX).unwrap(), "M");
    assert_eq!(text(&out, tags::MODALITY).unwrap(), "CT");
    assert!(out.get(tags::STUDY_DATE).is_none(), "not in the keep-list");
    assert!(out.get(tags::SOP_INSTANCE_UID).is_some(), "structural");
    assert!(text(&out, tags::PATIENT_ID).unwrap().starts_with("OBS-"));
}

#[test]
fn a_kept_document_holding_the_headers_values_is_refused() {
    let profile = Profile::from_toml(
        "[[override]]\nattribute = \"EncapsulatedDocument\"\naction = \"keep\"\n",
    )
    .unwrap();
    let engine = Deidentifier::new(profile, Pseudonymizer::new(SecretKey::from_bytes([9; 32])));
    let pdf = |text: &str| {
        let body = format!("BT /F1 12 Tf ({text}) Tj ET");
        let doc = format!(
            "%PDF-1.4\n1 0 obj\n<< /Length {} >>\nstream\n{body}\nendstream\nendobj\n%%EOF\n",
            body.len()
        );
        let elements = vec![
            s(
                tags::MIME_TYPE_OF_ENCAPSULATED_DOCUMENT,
                VR::LO,
                "application/pdf",
            ),
            DataElement::new(
                tags::ENCAPSULATED_DOCUMENT,
                VR::OB,
                PrimitiveValue::from(doc.into_bytes()),
            ),
        ];
        ct("MRN1", elements)
    };
    let refused = engine.deidentify(pdf("Report for John Doe, MRN1"));
    assert!(refused.is_err(), "the document names the patient");
    let kept = engine.deidentify(pdf("No acute findings.")).unwrap().object;
    assert!(kept.get(tags::ENCAPSULATED_DOCUMENT).is_some());
}
