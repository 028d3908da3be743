//! The engine on hand-built objects: every action code, at every depth, with
//! consistent keyed pseudonyms.

use dicom_core::header::Header;
use dicom_core::value::{PrimitiveValue, Value};
use dicom_core::{DataElement, Length, Tag, VR};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use obscura_deid::{burned_in_risk, BurnedInRisk, Deidentifier, Profile, Pseudonymizer, SecretKey};

fn engine(key_byte: u8) -> Deidentifier {
    Deidentifier::new(
        Profile::basic(),
        Pseudonymizer::new(SecretKey::from_bytes([key_byte; 32])),
    )
}

fn s(tag: Tag, vr: VR, v: &str) -> DataElement<InMemDicomObject> {
    DataElement::new(tag, vr, PrimitiveValue::from(v))
}

fn seq(tag: Tag, items: Vec<InMemDicomObject>) -> DataElement<InMemDicomObject> {
    DataElement::new(tag, VR::SQ, Value::new_sequence(items, Length::UNDEFINED))
}

fn obj(elements: Vec<DataElement<InMemDicomObject>>) -> InMemDicomObject {
    InMemDicomObject::from_element_iter(elements)
}

fn text(o: &InMemDicomObject, tag: Tag) -> Option<String> {
    o.element_opt(tag)
        .ok()
        .flatten()
        .map(|e| e.to_str().unwrap_or_default().to_string())
}

const STUDY: &str = "1.2.826.0.1.3680043.10.1234.1";
const SOP: &str = "1.2.826.0.1.3680043.10.1234.1.1.1";
const CT_CLASS: &str = "1.2.840.10008.5.1.4.1.1.2";

fn ct(patient_id: &str, sop: &str, extra: Vec<DataElement<InMemDicomObject>>) -> InMemDicomObject {
    let mut v = vec![
        s(tags::SOP_CLASS_UID, VR::UI, CT_CLASS),
        s(tags::SOP_INSTANCE_UID, VR::UI, sop),
        s(tags::STUDY_DATE, VR::DA, "20240105"),
        s(tags::ACCESSION_NUMBER, VR::SH, "ACC991"),
        s(tags::MODALITY, VR::CS, "CT"),
        s(tags::INSTITUTION_NAME, VR::LO, "General Hospital"),
        s(tags::PATIENT_NAME, VR::PN, "DOE^JOHN"),
        s(tags::PATIENT_ID, VR::LO, patient_id),
        s(tags::PATIENT_BIRTH_DATE, VR::DA, "19610412"),
        s(tags::PATIENT_ADDRESS, VR::LO, "12 Elm Street"),
        s(tags::STUDY_INSTANCE_UID, VR::UI, STUDY),
        s(tags::ROWS, VR::US, "16"),
    ];
    v.extend(extra);
    obj(v)
}

#[test]
fn basic_profile_actions_at_the_top_level() {
    let out = engine(1)
        .deidentify(ct("MRN1", SOP, vec![]))
        .expect("de-identifiable")
        .object;
    assert_eq!(
        text(&out, tags::STUDY_DATE).as_deref(),
        Some(""),
        "Z: zero length"
    );
    assert_eq!(text(&out, tags::ACCESSION_NUMBER).as_deref(), Some(""), "Z");
    assert!(text(&out, tags::PATIENT_ADDRESS).is_none(), "X: removed");
    assert_eq!(
        text(&out, tags::INSTITUTION_NAME).as_deref(),
        Some("ANONYMIZED"),
        "X/Z/D: dummy"
    );
    assert_eq!(
        text(&out, tags::MODALITY).as_deref(),
        Some("CT"),
        "not in the table: kept"
    );
    assert_eq!(
        text(&out, tags::SOP_CLASS_UID).as_deref(),
        Some(CT_CLASS),
        "class UIDs kept"
    );
    let sop = text(&out, tags::SOP_INSTANCE_UID).unwrap();
    assert!(sop.starts_with("2.25.") && sop != SOP, "U: replaced");
}

#[test]
fn nested_sequences_get_the_profile_at_every_depth() {
    let deep = obj(vec![
        s(tags::PERSON_NAME, VR::PN, "DR^WHO"),
        s(tags::REFERENCED_SOP_CLASS_UID, VR::UI, CT_CLASS),
        s(tags::REFERENCED_SOP_INSTANCE_UID, VR::UI, SOP),
        s(tags::PATIENT_ADDRESS, VR::LO, "12 Elm Street"),
        DataElement::new(Tag(0x0009, 0x1001), VR::LO, PrimitiveValue::from("PRIVATE")),
    ]);
    let mid = obj(vec![seq(tags::REFERENCED_IMAGE_SEQUENCE, vec![deep])]);
    let top = ct(
        "MRN1",
        "1.2.3.4.9",
        vec![seq(tags::SOURCE_IMAGE_SEQUENCE, vec![mid])],
    );
    let out = engine(1).deidentify(top).expect("de-identifiable").object;
    let mid = &out
        .element(tags::SOURCE_IMAGE_SEQUENCE)
        .unwrap()
        .items()
        .unwrap()[0];
    let deep = &mid
        .element(tags::REFERENCED_IMAGE_SEQUENCE)
        .unwrap()
        .items()
        .unwrap()[0];
    assert!(text(deep, tags::PATIENT_ADDRESS).is_none(), "X at depth 2");
    assert!(
        deep.element_opt(Tag(0x0009, 0x1001)).unwrap().is_none(),
        "private removed at depth 2"
    );
    assert_eq!(
        text(deep, tags::PERSON_NAME).as_deref(),
        Some("ANONYMIZED"),
        "D at depth 2"
    );
    assert_eq!(
        text(deep, tags::REFERENCED_SOP_CLASS_UID).as_deref(),
        Some(CT_CLASS)
    );
    let referenced = text(deep, tags::REFERENCED_SOP_INSTANCE_UID).unwrap();
    let target = engine(1)
        .deidentify(ct("MRN1", SOP, vec![]))
        .expect("de-identifiable")
        .object;
    assert_eq!(
        Some(referenced),
        text(&target, tags::SOP_INSTANCE_UID),
        "the reference follows the remapped instance"
    );
}

#[test]
fn private_attributes_and_creators_are_removed() {
    let out = engine(1)
        .deidentify(ct(
            "MRN1",
            SOP,
            vec![
                s(Tag(0x0029, 0x0010), VR::LO, "SIEMENS CSA HEADER"),
                DataElement::new(
                    Tag(0x0029, 0x1010),
                    VR::OB,
                    PrimitiveValue::from(vec![1u8, 2]),
                ),
            ],
        ))
        .expect("de-identifiable")
        .object;
    assert!(out.iter().all(|e| e.tag().0 % 2 == 0));
}

#[test]
fn patient_pseudonyms_are_consistent_per_patient_and_distinct_between() {
    let e = engine(1);
    let a1 = e
        .deidentify(ct("MRN1", "1.2.3.1", vec![]))
        .expect("de-identifiable")
        .object;
    let a2 = e
        .deidentify(ct("MRN1", "1.2.3.2", vec![]))
        .expect("de-identifiable")
        .object;
    let b = e
        .deidentify(ct("MRN2", "1.2.3.3", vec![]))
        .expect("de-identifiable")
        .object;
    let other_key = engine(2)
        .deidentify(ct("MRN1", "1.2.3.1", vec![]))
        .expect("de-identifiable")
        .object;
    let id = |o: &InMemDicomObject| text(o, tags::PATIENT_ID).unwrap();
    assert_eq!(id(&a1), id(&a2));
    assert_ne!(id(&a1), id(&b));
    assert_ne!(id(&a1), id(&other_key));
    assert_eq!(
        text(&a1, tags::PATIENT_NAME),
        text(&a1, tags::PATIENT_ID),
        "name follows the ID pseudonym"
    );
    assert_eq!(
        text(&a1, tags::STUDY_INSTANCE_UID),
        text(&a2, tags::STUDY_INSTANCE_UID),
        "one study, one UID"
    );
    assert_ne!(
        text(&a1, tags::STUDY_INSTANCE_UID),
        text(&other_key, tags::STUDY_INSTANCE_UID)
    );
}

#[test]
fn the_same_key_gives_the_same_output() {
    let a = engine(3)
        .deidentify(ct("MRN1", SOP, vec![]))
        .expect("de-identifiable");
    let b = engine(3)
        .deidentify(ct("MRN1", SOP, vec![]))
        .expect("de-identifiable");
    assert_eq!(format!("{:?}", a.object), format!("{:?}", b.object));
    assert_eq!(a.uids, b.uids);
    assert_eq!(
        a.uids.get(STUDY),
        text(&a.object, tags::STUDY_INSTANCE_UID).as_ref(),
        "mapping reports the replacement"
    );
}

#[test]
fn output_is_marked_with_the_profile_used() {
    let out = engine(1)
        .deidentify(ct("MRN1", SOP, vec![]))
        .expect("de-identifiable")
        .object;
    assert_eq!(
        text(&out, tags::PATIENT_IDENTITY_REMOVED).as_deref(),
        Some("YES")
    );
    assert_eq!(
        text(&out, tags::LONGITUDINAL_TEMPORAL_INFORMATION_MODIFIED).as_deref(),
        Some("REMOVED")
    );
    let codes = out
        .element(tags::DEIDENTIFICATION_METHOD_CODE_SEQUENCE)
        .unwrap()
        .items()
        .unwrap();
    assert_eq!(text(&codes[0], tags::CODE_VALUE).as_deref(), Some("113100"));
    assert_eq!(
        text(&codes[0], tags::CODING_SCHEME_DESIGNATOR).as_deref(),
        Some("DCM")
    );
    assert!(text(&out, tags::DEIDENTIFICATION_METHOD).unwrap().len() <= 64);
}

#[test]
fn a_dummied_sequence_keeps_structure_and_codes_but_not_text() {
    let content = obj(vec![
        s(tags::RELATIONSHIP_TYPE, VR::CS, "CONTAINS"),
        s(tags::VALUE_TYPE, VR::CS, "TEXT"),
        seq(
            tags::CONCEPT_NAME_CODE_SEQUENCE,
            vec![obj(vec![
                s(tags::CODE_VALUE, VR::SH, "121071"),
                s(tags::CODING_SCHEME_DESIGNATOR, VR::SH, "DCM"),
                s(tags::CODE_MEANING, VR::LO, "Finding"),
            ])],
        ),
        s(tags::TEXT_VALUE, VR::UT, "John Doe has a nodule"),
    ]);
    let out = engine(1)
        .deidentify(ct(
            "MRN1",
            SOP,
            vec![seq(tags::CONTENT_SEQUENCE, vec![content])],
        ))
        .expect("de-identifiable")
        .object;
    let item = &out
        .element(tags::CONTENT_SEQUENCE)
        .unwrap()
        .items()
        .unwrap()[0];
    assert_eq!(text(item, tags::TEXT_VALUE).as_deref(), Some("ANONYMIZED"));
    assert_eq!(text(item, tags::VALUE_TYPE).as_deref(), Some("TEXT"));
    let code = &item
        .element(tags::CONCEPT_NAME_CODE_SEQUENCE)
        .unwrap()
        .items()
        .unwrap()[0];
    assert_eq!(text(code, tags::CODE_MEANING).as_deref(), Some("Finding"));
}

#[test]
fn identifying_code_sequences_lose_their_codes() {
    let institution = obj(vec![
        s(tags::CODE_VALUE, VR::SH, "GH001"),
        s(tags::CODING_SCHEME_DESIGNATOR, VR::SH, "99LOCAL"),
        s(tags::CODE_MEANING, VR::LO, "General Hospital"),
    ]);
    let out = engine(1)
        .deidentify(ct(
            "MRN1",
            SOP,
            vec![seq(tags::INSTITUTION_CODE_SEQUENCE, vec![institution])],
        ))
        .expect("de-identifiable")
        .object;
    let item = &out
        .element(tags::INSTITUTION_CODE_SEQUENCE)
        .unwrap()
        .items()
        .unwrap()[0];
    assert_eq!(
        text(item, tags::CODE_MEANING).as_deref(),
        Some("ANONYMIZED")
    );
    assert_eq!(text(item, tags::CODE_VALUE).as_deref(), Some("ANONYMIZED"));
}

#[test]
fn burned_in_risk_follows_the_annotation_flag_and_modality() {
    let with = |m: &str, b: Option<&str>| {
        let mut v = vec![s(tags::MODALITY, VR::CS, m)];
        if let Some(b) = b {
            v.push(s(tags::BURNED_IN_ANNOTATION, VR::CS, b));
        }
        burned_in_risk(&obj(v), true)
    };
    assert_eq!(with("CT", Some("YES")), Some(BurnedInRisk::Declared));
    assert_eq!(with("US", None), Some(BurnedInRisk::LikelyForModality));
    assert_eq!(with("US", Some("NO")), None);
    assert_eq!(with("CT", None), None);
    assert_eq!(
        burned_in_risk(&obj(vec![s(tags::MODALITY, VR::CS, "SC")]), false),
        None,
        "no pixels, no risk"
    );
}

#[test]
fn an_encapsulated_pdf_becomes_a_blank_pdf() {
    let pdf = b"%PDF-1.4 John Doe MRN12345 %%EOF ".to_vec();
    let out = engine(1)
        .deidentify(ct(
            "MRN1",
            SOP,
            vec![
                DataElement::new(
                    tags::ENCAPSULATED_DOCUMENT,
                    VR::OB,
                    PrimitiveValue::from(pdf),
                ),
                s(
                    tags::MIME_TYPE_OF_ENCAPSULATED_DOCUMENT,
                    VR::LO,
                    "application/pdf",
                ),
            ],
        ))
        .expect("de-identifiable")
        .object;
    let doc = out
        .element(tags::ENCAPSULATED_DOCUMENT)
        .unwrap()
        .to_bytes()
        .unwrap()
        .to_vec();
    assert!(doc.starts_with(b"%PDF-1.4"));
    assert!(!String::from_utf8_lossy(&doc).contains("Doe"));
    assert_eq!(doc.len() % 2, 0);
}

#[test]
fn patient_identity_is_written_with_its_standard_vr_whatever_the_input_used() {
    let odd = seq(
        tags::PATIENT_NAME,
        vec![obj(vec![s(tags::CODE_MEANING, VR::LO, "DOE^JOHN")])],
    );
    let mut top = ct("MRN1", SOP, vec![]);
    top.put(odd);
    let out = engine(1).deidentify(top).expect("de-identifiable").object;
    let name = out.element(tags::PATIENT_NAME).unwrap();
    assert_eq!(name.vr(), VR::PN);
    assert!(name.to_str().unwrap().starts_with("OBS-"));
}

/// A code item: value, scheme, meaning.
fn code(meaning: &str) -> InMemDicomObject {
    obj(vec![
        s(tags::CODE_VALUE, VR::SH, "T-D0001"),
        s(tags::CODING_SCHEME_DESIGNATOR, VR::SH, "SRT"),
        s(tags::CODE_MEANING, VR::LO, meaning),
    ])
}

#[test]
fn identity_removed_by_the_table_does_not_survive_outside_it() {
    let anatomy = {
        let mut item = code("Chest of John Doe");
        item.put(seq(
            tags::ANATOMIC_REGION_MODIFIER_SEQUENCE,
            vec![code("side of patient MRN-77 born 04/12/1961")],
        ));
        item
    };
    let input = ct(
        "MRN-77",
        SOP,
        vec![
            seq(tags::ANATOMIC_REGION_SEQUENCE, vec![anatomy]),
            s(tags::CONTENT_LABEL, VR::CS, "DOE_JOHN"),
            s(
                tags::DOSE_COMMENT,
                VR::LO,
                "plan for Doe, John at Marlowe Memorial",
            ),
            DataElement::new(
                tags::IMAGE_TYPE,
                VR::CS,
                PrimitiveValue::Strs(["ORIGINAL", "PRIMARY", "DOE"].map(String::from)[..].into()),
            ),
            s(tags::EXPIRY_DATE, VR::DA, "19610412"),
        ],
    );
    let mut input = input;
    input.put(s(
        tags::INSTITUTION_NAME,
        VR::LO,
        "Marlowe Memorial Hospital",
    ));
    let out = engine(1).deidentify(input).expect("de-identifiable").object;
    let region = out.element(tags::ANATOMIC_REGION_SEQUENCE).unwrap();
    let item = &region.items().unwrap()[0];
    assert_eq!(
        text(item, tags::CODE_MEANING).as_deref(),
        Some("Chest of [NAME]")
    );
    assert_eq!(
        text(item, tags::CODE_VALUE).as_deref(),
        Some("T-D0001"),
        "codes stay"
    );
    let modifier = &item
        .element(tags::ANATOMIC_REGION_MODIFIER_SEQUENCE)
        .unwrap()
        .items()
        .unwrap()[0];
    assert_eq!(
        text(modifier, tags::CODE_MEANING).as_deref(),
        Some("side of patient [ID] born [DATE]")
    );
    assert_eq!(
        text(&out, tags::CONTENT_LABEL).as_deref(),
        Some("ANONYMIZED")
    );
    assert_eq!(
        text(&out, tags::DOSE_COMMENT).as_deref(),
        Some("plan for [NAME] at [INSTITUTION]")
    );
    assert_eq!(
        text(&out, tags::IMAGE_TYPE).as_deref(),
        Some("ORIGINAL\\PRIMARY\\ANONYMIZED"),
        "one value replaced, multiplicity kept"
    );
    assert_eq!(text(&out, tags::EXPIRY_DATE).as_deref(), Some("19000101"));
    assert_eq!(text(&out, tags::MODALITY).as_deref(), Some("CT"));
}

#[test]
fn a_name_that_is_a_word_of_the_standard_is_not_found_in_codes() {
    let input = ct(
        "PHANTOM01",
        SOP,
        vec![
            s(tags::BODY_PART_EXAMINED, VR::CS, "PANCREAS"),
            s(tags::IMAGE_TYPE, VR::CS, "PERFUSION"),
        ],
    );
    let mut input = input;
    input.put(s(tags::PATIENT_NAME, VR::PN, "Perfusion^Pancreas"));
    let out = engine(1).deidentify(input).expect("de-identifiable").object;
    assert_eq!(
        text(&out, tags::BODY_PART_EXAMINED).as_deref(),
        Some("PANCREAS")
    );
    assert_eq!(text(&out, tags::IMAGE_TYPE).as_deref(), Some("PERFUSION"));
}

#[test]
fn a_profile_may_turn_the_check_off_and_options_keep_what_they_retain() {
    let off = Profile::from_toml("find_identity_elsewhere = false").unwrap();
    let label = || vec![s(tags::CONTENT_LABEL, VR::CS, "DOE_JOHN")];
    let key = || Pseudonymizer::new(SecretKey::from_bytes([1; 32]));
    let out = Deidentifier::new(off, key())
        .deidentify(ct("MRN1", SOP, label()))
        .unwrap()
        .object;
    assert_eq!(text(&out, tags::CONTENT_LABEL).as_deref(), Some("DOE_JOHN"));

    // an institution the profile retains is not identity to remove elsewhere
    let retain =
        Profile::with_options([obscura_deid::DeidOption::RetainInstitutionIdentity]).unwrap();
    let mut input = ct(
        "MRN1",
        SOP,
        vec![s(tags::DOSE_COMMENT, VR::LO, "Dose at Marlowe Memorial")],
    );
    input.put(s(
        tags::INSTITUTION_NAME,
        VR::LO,
        "Marlowe Memorial Hospital",
    ));
    let out = Deidentifier::new(retain, key())
        .deidentify(input)
        .unwrap()
        .object;
    assert_eq!(
        text(&out, tags::INSTITUTION_NAME).as_deref(),
        Some("Marlowe Memorial Hospital")
    );
    assert_eq!(
        text(&out, tags::DOSE_COMMENT).as_deref(),
        Some("Dose at Marlowe Memorial")
    );
}
