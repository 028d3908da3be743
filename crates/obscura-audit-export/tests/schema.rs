//! Every kind of event, every outcome and every DICOMweb route shape, as
//! A.5 messages validated against the standard's schema
//! (`standard/dicom-audit-message.rnc`) with jing. Skips, saying so, when
//! jing is not installed (`apt-get install jing`).

use obscura_audit::{Actor, AuditEvent, AuditKey, EventKind, Outcome, Record, SubjectRef};
use obscura_audit_export::{dicom, AuditSource};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, UNIX_EPOCH};

fn records() -> Vec<Record> {
    let key = AuditKey::from_bytes([9; 32]);
    let routes = [
        "web:GET /studies",
        "web:GET /studies/{study}/series/{series}/instances",
        "web:GET /studies/{study}/series/{series}/instances/{instance}/frames/{frames}",
        "web:POST /studies",
        "web:DELETE /studies/{study}",
        "dimse:tls:OBSCURA",
        "dest:pacs",
    ];
    let mut out = Vec::new();
    for kind in EventKind::ALL {
        for outcome in [Outcome::Success, Outcome::Denied, Outcome::Failure] {
            for (i, route) in routes.iter().enumerate() {
                let actor = Actor {
                    principal: format!("p{i}<&>\"'\u{7}"),
                    address: (i % 2 == 0).then(|| "10.0.0.7".to_string()),
                    ae_title: (i % 3 == 0).then(|| "MODALITY".to_string()),
                };
                let t = UNIX_EPOCH + Duration::from_millis(1_735_689_599_123);
                let mut e = AuditEvent::new(t, kind, actor, outcome);
                e.route = Some(route.to_string());
                e.reason = (outcome != Outcome::Success).then(|| "http-403".to_string());
                e.count = Some(i as u64);
                // what admin records and web requests name in their detail
                for (k, v) in [
                    ("principal", "vendor <x>"),
                    ("tenant", "t-0123"),
                    ("name", "Site \"A\" & B"),
                    ("grant", "g-1"),
                    ("grants", "g-1, g-2,owner"),
                    ("token", "jti-1"),
                    ("key_id", "0123abcd"),
                ]
                .iter()
                .skip(i % 3)
                {
                    e.detail.insert(k.to_string(), v.to_string());
                }
                for p in 0..i {
                    e.subjects.push(SubjectRef::patient(&key, &format!("P{p}")));
                }
                e.subjects.push(SubjectRef::study(&key, "1.2.3"));
                e.subjects.push(SubjectRef::instance(&key, "1.2.3.4"));
                e.subjects.push(SubjectRef::provider(&key, "Dr"));
                out.push(Record {
                    seq: out.len() as u64,
                    event: e,
                });
            }
        }
    }
    out
}

#[test]
fn every_message_is_valid_against_the_dicom_schema() {
    if Command::new("jing").arg("-h").output().is_err() {
        eprintln!("SKIPPED: jing not installed (apt-get install jing)");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let standard =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../standard/dicom-audit-message.rnc");
    // `##` documentation after the values it describes is not RELAX NG
    // Compact syntax; as `#` comments the patterns are the same.
    let schema = tmp.path().join("schema.rnc");
    std::fs::write(
        &schema,
        std::fs::read_to_string(standard)
            .unwrap()
            .replace("##", "#"),
    )
    .unwrap();
    let source = AuditSource {
        id: "pacs.example/audit".into(),
        site: Some("site".into()),
    };
    let mut files = Vec::new();
    for r in records() {
        let msgs = dicom::messages(&r, &source);
        let patients = r
            .event
            .subjects
            .iter()
            .filter(|s| s.kind == obscura_audit::SubjectKind::Patient)
            .count();
        assert_eq!(msgs.len(), patients.max(1));
        for m in msgs {
            let f = tmp.path().join(format!("{:05}.xml", files.len()));
            std::fs::write(&f, m).unwrap();
            files.push(f);
        }
    }
    // the detail's participants are among what is validated
    let with_grants = files
        .iter()
        .filter(|f| {
            std::fs::read_to_string(f)
                .unwrap()
                .contains("ParticipantObjectID=\"g-2\"")
        })
        .count();
    assert!(
        with_grants > files.len() / 2,
        "{with_grants} of {}",
        files.len()
    );
    let out = Command::new("jing")
        .arg("-c")
        .arg(&schema)
        .args(&files)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // and the schema is not vacuous: a message without its event time fails
    let broken = tmp.path().join("broken.xml");
    let first = std::fs::read_to_string(&files[0]).unwrap();
    let at = first.find(" EventDateTime=").unwrap();
    let end = at + first[at + 16..].find('"').unwrap() + 17;
    std::fs::write(&broken, format!("{}{}", &first[..at], &first[end..])).unwrap();
    let out = Command::new("jing")
        .arg("-c")
        .arg(&schema)
        .arg(&broken)
        .output()
        .unwrap();
    assert!(!out.status.success());
}
