//! The gateway's audit events (`obscura-audit`): associations, instances
//! received, forwarded and quarantined. Patients, studies and instances
//! appear only as keyed hashes under the site audit key; actors are peer
//! and destination names, AE titles and addresses, never values from a file.

use crate::policy::Caller;
use dicom_dictionary_std::tags;
use obscura_audit::{Actor, AuditEvent, Auditor, EventKind, Outcome, SubjectKind, SubjectRef};
use std::path::Path;
use std::time::SystemTime;

/// The actor of the gateway's own actions (forwarding, quarantine).
pub const SELF_PRINCIPAL: &str = "obscura-serve";

/// A short code for an admission refusal.
pub fn reject_code(why: &str) -> &'static str {
    match why {
        "unknown calling AE title" => "unknown-ae",
        "wrong called AE title" => "wrong-called-ae",
        w if w.contains("address") => "address-not-allowed",
        w if w.contains("plain") || w.contains("TLS") || w.contains("tls") => {
            "transport-not-allowed"
        }
        w if w.contains("certificate") => "certificate-not-allowed",
        _ => "not-admitted",
    }
}

/// `association-accepted` or `association-rejected`.
pub fn association(caller: &Caller, verdict: &Result<String, String>) -> AuditEvent {
    let (kind, outcome, principal) = match verdict {
        Ok(peer) => (
            EventKind::AssociationAccepted,
            Outcome::Success,
            peer.clone(),
        ),
        Err(_) => (
            EventKind::AssociationRejected,
            Outcome::Denied,
            "unknown".to_string(),
        ),
    };
    let actor = Actor {
        principal,
        address: Some(caller.address.to_string()),
        ae_title: Some(caller.calling_ae.clone()),
    };
    let mut e = AuditEvent::new(SystemTime::now(), kind, actor, outcome);
    e.route = Some(format!(
        "dimse:{}:{}",
        if caller.tls { "tls" } else { "plain" },
        caller.called_ae
    ));
    if let Err(why) = verdict {
        e.reason = Some(reject_code(why).to_string());
    }
    e
}

/// The keyed references of a data set: patient (Patient ID), study and
/// instance; what is absent is left out.
pub fn subjects_of(a: &Auditor, dataset: &dicom_object::InMemDicomObject) -> Vec<SubjectRef> {
    let text = |tag| {
        dataset
            .element(tag)
            .ok()
            .and_then(|e| e.to_str().ok())
            .map(|s| s.trim_end_matches(['\0', ' ']).to_string())
            .filter(|s| !s.is_empty())
    };
    let mut out = Vec::new();
    for (tag, kind) in [
        (tags::PATIENT_ID, SubjectKind::Patient),
        (tags::STUDY_INSTANCE_UID, SubjectKind::Study),
        (tags::SOP_INSTANCE_UID, SubjectKind::Instance),
    ] {
        if let Some(v) = text(tag) {
            out.push(a.subject(kind, &v));
        }
    }
    out
}

/// The keyed references of a spooled instance (read from its header); the
/// instance's alone if the header cannot be read.
pub fn subjects(a: &Auditor, sop_instance_uid: &str, spool: &Path) -> Vec<SubjectRef> {
    if let Ok(read) = obscura_batch::read_file(spool, Default::default()) {
        let out = subjects_of(a, &read.dataset);
        if !out.is_empty() {
            return out;
        }
    }
    let sop = sop_instance_uid.trim_end_matches(['\0', ' ']);
    if sop.is_empty() {
        Vec::new()
    } else {
        vec![a.subject(SubjectKind::Instance, sop)]
    }
}

/// The detail key of an `instance-received` record that keeps the time the
/// instance was received (the record's `time` is when it reached the log,
/// from the queue where it was committed with the instance).
pub const RECEIVED_TIME: &str = "received_time";

/// `instance-received`: stored in the spool, from peer `peer`.
pub fn received(a: &Auditor, peer: &str, sop_instance_uid: &str, spool: &Path) -> AuditEvent {
    let actor = Actor {
        principal: peer.to_string(),
        ..Actor::default()
    };
    let mut e = AuditEvent::new(
        SystemTime::now(),
        EventKind::InstanceReceived,
        actor,
        Outcome::Success,
    );
    e.route = Some(RECEIVED_ROUTE.into());
    e.subjects = subjects(a, sop_instance_uid, spool);
    e
}

/// The route of every `instance-received` record.
const RECEIVED_ROUTE: &str = "dimse:c-store";

/// Whether a pending row's event is one the gateway itself commits with a
/// queue row: an `instance-received` of a C-STORE. Anything else in the
/// pending table was not written by the gateway (someone with write
/// access to the queue database) and must not reach the log as if it had.
pub fn is_pending_kind(e: &AuditEvent) -> bool {
    e.kind == EventKind::InstanceReceived && e.route.as_deref() == Some(RECEIVED_ROUTE)
}

/// A record by the gateway itself (principal [`SELF_PRINCIPAL`]) of `kind`
/// on `route`, now.
pub fn own(kind: EventKind, outcome: Outcome, route: String) -> AuditEvent {
    let actor = Actor {
        principal: SELF_PRINCIPAL.into(),
        ..Actor::default()
    };
    let mut e = AuditEvent::new(SystemTime::now(), kind, actor, outcome);
    e.route = Some(route);
    e
}

/// `log-recovered` (always alerts): `count` pending rows were set aside,
/// unreadable or not an `instance-received` record, instead of appended.
pub fn pending_rejected(count: usize) -> AuditEvent {
    let mut e = own(
        EventKind::LogRecovered,
        Outcome::Failure,
        "gateway:audit-pending".into(),
    );
    e.reason = Some("pending-row-rejected".into());
    e.count = Some(count as u64);
    e
}

/// What became of an instance for a destination.
#[derive(Debug, Clone, Copy)]
pub enum Delivered<'a> {
    /// Sent to a folder or an SCP: `instance-forwarded`.
    Forwarded,
    /// Stored into the archive: `instance-stored`.
    Stored,
    /// Quarantined, with the reason code: `instance-quarantined`.
    Quarantined(&'a str),
}

/// The record of what became of an instance for `destination`.
pub fn forwarded(destination: &str, how: Delivered<'_>, subjects: Vec<SubjectRef>) -> AuditEvent {
    let (kind, outcome, quarantine) = match how {
        Delivered::Forwarded => (EventKind::InstanceForwarded, Outcome::Success, None),
        Delivered::Stored => (EventKind::InstanceStored, Outcome::Success, None),
        Delivered::Quarantined(r) => (EventKind::InstanceQuarantined, Outcome::Failure, Some(r)),
    };
    let mut e = own(kind, outcome, format!("dest:{destination}"));
    e.reason = quarantine.map(str::to_string);
    e.subjects = subjects;
    e
}
