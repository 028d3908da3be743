//! The gateway with the audit log on: associations are recorded, a C-STORE
//! is acknowledged only once its `instance-received` record (with keyed
//! patient, study and instance references) is on disk, and a store whose
//! audit append fails is refused (0xA700) and leaves nothing queued.

use obscura_audit::{AuditKey, Auditor, EventKind, LogConfig, LogReader, Signer, SubjectRef};
use obscura_gateway::{
    Caller, Config, Delivery, Destination, Gateway, NoTransport, STATUS_OUT_OF_RESOURCES,
    STATUS_SUCCESS,
};
use std::io::{Seek, Write};
use std::sync::Arc;

const CT: &str = "1.2.840.10008.5.1.4.1.1.2";
const IMPLICIT: &str = "1.2.840.10008.1.2";

/// An implicit VR little endian data set with these (group, element, value).
fn dataset(elements: &[(u16, u16, &str)]) -> std::fs::File {
    let mut out = Vec::new();
    for (g, e, v) in elements {
        let mut v = v.as_bytes().to_vec();
        if v.len() % 2 == 1 {
            v.push(0);
        }
        out.extend_from_slice(&g.to_le_bytes());
        out.extend_from_slice(&e.to_le_bytes());
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
        out.extend_from_slice(&v);
    }
    let mut f = tempfile::tempfile().unwrap();
    f.write_all(&out).unwrap();
    f.rewind().unwrap();
    f
}

#[test]
fn stores_are_acknowledged_only_after_their_audit_record() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir(root.join("out")).unwrap();
    let config = Config::parse(
        r#"
[server]
ae_title = "OBSCURA"
listen = "127.0.0.1:0"
data_dir = "data"

[[peer]]
name = "pacs"
calling_ae = "PACS"
addresses = ["127.0.0.1"]
plain = true

[[destination]]
name = "out"
folder = "out"
key_file = "out.key"

[[route]]
from = ["pacs"]
to = ["out"]
"#,
        root,
    )
    .unwrap();
    let dest = Destination {
        name: "out".into(),
        delivery: Delivery::Folder(root.join("out")),
        engine: None,
        allow_burned_in: false,
        archive: None,
    };
    let gw = Gateway::open(config, vec![dest], Box::new(NoTransport)).unwrap();
    let key = AuditKey::from_bytes([9; 32]);
    let mut cfg = LogConfig::new(root.join("audit"));
    cfg.sync = obscura_audit::SyncPolicy::Batched(1000);
    let signer = Signer::generate("test/gateway").unwrap();
    let (auditor, _) = Auditor::open(cfg, signer, key.clone()).unwrap();
    let auditor = Arc::new(auditor);
    gw.set_audit(Arc::clone(&auditor));

    let caller = |ae: &str| Caller {
        calling_ae: ae.into(),
        called_ae: "OBSCURA".into(),
        address: "127.0.0.1".parse().unwrap(),
        client_cert_sha256: None,
        tls: false,
    };
    assert!(gw.admit(&caller("PACS")).is_ok());
    assert!(gw.admit(&caller("NOBODY")).is_err());

    let sop = "1.2.3.4.5.6.7";
    let mut ds = dataset(&[
        (0x0008, 0x0016, CT),
        (0x0008, 0x0018, sop),
        (0x0010, 0x0020, "PID-4711"),
        (0x0020, 0x000D, "1.2.3.4.5"),
    ]);
    assert_eq!(
        gw.receive("pacs", CT, sop, IMPLICIT, &mut ds),
        STATUS_SUCCESS
    );
    // durable although the policy batches: on disk before the answer
    let reader = LogReader::open(&root.join("audit")).unwrap();
    assert_eq!(reader.size(), 3);
    let kinds: Vec<EventKind> = (0..3)
        .map(|i| reader.record(i).unwrap().unwrap().event.kind)
        .collect();
    assert_eq!(
        kinds,
        [
            EventKind::AssociationAccepted,
            EventKind::AssociationRejected,
            EventKind::InstanceReceived
        ]
    );
    let received = reader.record(2).unwrap().unwrap().event;
    assert_eq!(
        received.subjects,
        vec![
            SubjectRef::patient(&key, "PID-4711"),
            SubjectRef::study(&key, "1.2.3.4.5"),
            SubjectRef::instance(&key, sop),
        ]
    );
    let line = reader.record(2).unwrap().unwrap().to_line();
    assert!(!line.contains("PID-4711") && !line.contains(sop));

    // the audit log fails: the store is refused and nothing is queued
    auditor.close().unwrap();
    let sop2 = "1.2.3.4.5.6.8";
    let mut ds = dataset(&[(0x0008, 0x0016, CT), (0x0008, 0x0018, sop2)]);
    assert_eq!(
        gw.receive("pacs", CT, sop2, IMPLICIT, &mut ds),
        STATUS_OUT_OF_RESOURCES
    );
    assert_eq!(std::fs::read_dir(gw.data().spool()).unwrap().count(), 1);
}
