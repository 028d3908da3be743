//! The gateway with the audit log on: associations are recorded; a C-STORE
//! is acknowledged only once its `instance-received` record (with keyed
//! patient, study and instance references) is committed in the queue's own
//! transaction, from where it moves into the log; a store whose record
//! cannot be kept, or that comes when the log takes nothing more, is
//! refused (0xA700) and leaves nothing queued.

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

/// The gateway of `root` (a peer routed to a folder), its queue as it is
/// on disk, and its audit log opened (or created) with the same key.
fn open(root: &std::path::Path) -> (Arc<Gateway>, Arc<Auditor>) {
    let _ = std::fs::create_dir(root.join("out"));
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
    let mut cfg = LogConfig::new(root.join("audit"));
    cfg.sync = obscura_audit::SyncPolicy::Batched(1000);
    let signer = Signer::from_seed("test/gateway", [3; 32]).unwrap();
    let (auditor, _) = Auditor::open(cfg, signer, AuditKey::from_bytes([9; 32])).unwrap();
    let auditor = Arc::new(auditor);
    gw.set_audit(Arc::clone(&auditor));
    (gw, auditor)
}

/// The pending audit records of the test's log in a queue database.
fn pending(db: &rusqlite::Connection) -> Vec<String> {
    let mut st = db
        .prepare("SELECT event FROM audit_pending WHERE log='test/gateway' ORDER BY id")
        .unwrap();
    let rows = st.query_map([], |r| r.get(0)).unwrap();
    rows.map(Result::unwrap).collect()
}

#[test]
fn stores_are_acknowledged_only_after_their_audit_record() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let (gw, auditor) = open(root);
    let key = AuditKey::from_bytes([9; 32]);

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
    // durable before the answer: committed with the queue row, not yet in
    // the log (no audit fsync on the C-STORE path)
    let queue_db = rusqlite::Connection::open(gw.data().queue_db()).unwrap();
    let rows = pending(&queue_db);
    assert_eq!(rows.len(), 1);
    let kept = obscura_audit::AuditEvent::from_json(&rows[0]).unwrap();
    assert_eq!(kept.kind, EventKind::InstanceReceived);
    assert!(!rows[0].contains("PID-4711") && !rows[0].contains(sop));
    assert_eq!(auditor.size(), 2, "only the associations so far");
    // moved into the log, durable although the policy batches; the row goes
    assert_eq!(gw.flush_audit().unwrap(), 1);
    assert!(pending(&queue_db).is_empty());
    assert_eq!(gw.flush_audit().unwrap(), 0);
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
    // the event kept is the event logged, stamped with the time it reached
    // the log, the time it was received kept in detail
    assert!(received.time >= kept.time);
    let mut restamped = kept.clone();
    restamped.restamp(std::time::SystemTime::now(), "received_time");
    restamped.time = received.time.clone();
    assert_eq!(received, restamped);
    let line = reader.record(2).unwrap().unwrap().to_line();
    assert!(!line.contains("PID-4711") && !line.contains(sop));

    // the record cannot be kept (its table refuses): no Success, nothing
    // queued, the spool file removed
    queue_db
        .execute_batch(
            "CREATE TRIGGER refuse BEFORE INSERT ON audit_pending \
             BEGIN SELECT RAISE(ABORT, 'refused'); END",
        )
        .unwrap();
    let sop2 = "1.2.3.4.5.6.8";
    let store = |sop: &str| {
        let mut ds = dataset(&[(0x0008, 0x0016, CT), (0x0008, 0x0018, sop)]);
        gw.receive("pacs", CT, sop, IMPLICIT, &mut ds)
    };
    assert_eq!(store(sop2), STATUS_OUT_OF_RESOURCES);
    let instances = |db: &rusqlite::Connection| -> i64 {
        db.query_row("SELECT COUNT(*) FROM instances", [], |r| r.get(0))
            .unwrap()
    };
    assert_eq!(instances(&queue_db), 1);
    assert_eq!(std::fs::read_dir(gw.data().spool()).unwrap().count(), 1);
    queue_db.execute_batch("DROP TRIGGER refuse").unwrap();

    // the audit log takes nothing more (closed, as after a failed fsync):
    // the store is refused and nothing is queued
    auditor.close().unwrap();
    assert_eq!(store(sop2), STATUS_OUT_OF_RESOURCES);
    assert_eq!(instances(&queue_db), 1);
    assert!(pending(&queue_db).is_empty());
    assert_eq!(std::fs::read_dir(gw.data().spool()).unwrap().count(), 1);
}

/// The gateway of `root` stores `sops` and "crashes": its records are
/// never moved into the log. Its queue database.
fn stored_then_crashed(root: &std::path::Path, sops: &[&str]) -> rusqlite::Connection {
    let (gw, auditor) = open(root);
    for sop in sops {
        let mut ds = dataset(&[(0x0008, 0x0016, CT), (0x0008, 0x0018, sop)]);
        assert_eq!(
            gw.receive("pacs", CT, sop, IMPLICIT, &mut ds),
            STATUS_SUCCESS
        );
    }
    auditor.close().unwrap();
    drop(gw);
    rusqlite::Connection::open(root.join("data/queue.sqlite")).unwrap()
}

/// The events in the audit log of `root`, in order.
fn logged(root: &std::path::Path) -> Vec<obscura_audit::AuditEvent> {
    let reader = LogReader::open(&root.join("audit")).unwrap();
    (0..reader.size())
        .map(|i| reader.record(i).unwrap().unwrap().event)
        .collect()
}

/// How many of `events` are of `kind`.
fn count(events: &[obscura_audit::AuditEvent], kind: EventKind) -> usize {
    events.iter().filter(|e| e.kind == kind).count()
}

#[test]
fn records_left_pending_by_a_crash_are_appended_at_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let queue_db = stored_then_crashed(root, &["1.2.3.9.1", "1.2.3.9.2"]);
    assert_eq!(pending(&queue_db).len(), 2);
    let (_gw, auditor) = open(root);
    assert!(pending(&queue_db).is_empty(), "appended at start");
    auditor.close().unwrap();
    assert_eq!(count(&logged(root), EventKind::InstanceReceived), 2);
}

#[test]
fn pending_rows_the_gateway_did_not_write_are_set_aside_not_appended() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    // someone with write access to the queue database: a forged admin
    // record, and a row that is no event at all, beside the real one
    let queue_db = stored_then_crashed(root, &["1.2.3.9.3"]);
    let real = pending(&queue_db).remove(0);
    let forged = real
        .replace("instance-received", "grant-change")
        .replace("dimse:c-store", "admin:grant");
    assert_ne!(forged, real);
    for event in [forged.as_str(), "not json"] {
        queue_db
            .execute(
                "INSERT INTO audit_pending(log, event) VALUES ('test/gateway', ?1)",
                [event],
            )
            .unwrap();
    }
    let (_gw, auditor) = open(root);
    assert!(
        pending(&queue_db).is_empty(),
        "every row moved or set aside"
    );
    auditor.close().unwrap();
    let events = logged(root);
    assert_eq!(count(&events, EventKind::InstanceReceived), 1);
    assert_eq!(count(&events, EventKind::GrantChange), 0);
    let set_aside: Vec<_> = events
        .iter()
        .filter(|e| e.kind == EventKind::LogRecovered)
        .collect();
    assert_eq!(set_aside.len(), 1);
    assert_eq!(set_aside[0].count, Some(2));
    assert_eq!(set_aside[0].reason.as_deref(), Some("pending-row-rejected"));
}
