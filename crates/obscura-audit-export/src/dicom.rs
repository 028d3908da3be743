//! DICOM PS3.15 A.5 audit messages (XML, valid against the schema of
//! A.5.1, `standard/dicom-audit-message.rnc`) for audit records.
//!
//! One record gives one message, except per IHE BALP: a record that names
//! several patients gives one message per patient. Subjects are keyed
//! hashes (no PHI): a patient's ParticipantObjectID is the hash, never the
//! Patient ID, and its ParticipantObjectName says so instead of a name.

use obscura_audit::{EventKind, Outcome, Record, SubjectKind, SubjectRef, WebAction};

/// Who reports the events: AuditSourceIdentification, and the UserID of
/// Obscura as a participant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditSource {
    /// AuditSourceID (e.g. the log's origin or the gateway's AE title).
    pub id: String,
    /// AuditEnterpriseSiteID, if any.
    pub site: Option<String>,
}

/// A coded value: (csd-code, codeSystemName, originalText).
type Code = (&'static str, &'static str, &'static str);

const USER_AUTHENTICATION: Code = ("110114", "DCM", "User Authentication");
const SECURITY_ALERT: Code = ("110113", "DCM", "Security Alert");
const INSTANCES_TRANSFERRED: Code = ("110104", "DCM", "DICOM Instances Transferred");
const INSTANCES_ACCESSED: Code = ("110103", "DCM", "DICOM Instances Accessed");
const STUDY_DELETED: Code = ("110105", "DCM", "DICOM Study Deleted");
const QUERY: Code = ("110112", "DCM", "Query");
const EXPORT: Code = ("110106", "DCM", "Export");
const LOGIN: Code = ("110122", "DCM", "Login");
const NODE_AUTHENTICATION: Code = ("110126", "DCM", "Node Authentication");
const SECURITY_CONFIGURATION: Code = ("110129", "DCM", "Security Configuration");
const SOFTWARE_CONFIGURATION: Code = ("110131", "DCM", "Software Configuration");
const SECURITY_ROLES_CHANGED: Code = ("110136", "DCM", "Security Roles Changed");
const AUDIT_RECORDING_STOPPED: Code = ("110133", "DCM", "Audit Recording Stopped");
const ROLE_SOURCE: Code = ("110153", "DCM", "Source Role ID");
const ROLE_DESTINATION: Code = ("110152", "DCM", "Destination Role ID");
const ID_PATIENT_NUMBER: Code = ("2", "RFC-3881", "Patient Number");
const ID_SEARCH_CRITERIA: Code = ("10", "RFC-3881", "Search Criteria");
const ID_STUDY_UID: Code = ("110180", "DCM", "Study Instance UID");

/// What ParticipantObjectName says for a subject given as a keyed hash.
pub const KEYED_HASH_NAME: &str = "HMAC-SHA256 under the site audit key";

/// The DICOM shape of one record: event, action, who sends and who
/// receives (`None`: a single requestor).
struct Shape {
    event: Code,
    event_type: Option<Code>,
    action: &'static str,
    /// Data flows from Obscura to the actor (retrieve, forward), rather
    /// than from the actor to Obscura.
    outbound: bool,
    /// A query object (the route pattern, never the query's values).
    query: bool,
}

fn shape(r: &Record) -> Shape {
    let e = &r.event;
    let s = |event, event_type, action, outbound| Shape {
        event,
        event_type,
        action,
        outbound,
        query: false,
    };
    match e.kind {
        EventKind::AssociationAccepted => s(USER_AUTHENTICATION, Some(LOGIN), "E", false),
        EventKind::AuthFailure => s(USER_AUTHENTICATION, Some(LOGIN), "E", false),
        EventKind::AssociationRejected => s(SECURITY_ALERT, Some(NODE_AUTHENTICATION), "E", false),
        EventKind::InstanceReceived | EventKind::InstanceStored => {
            s(INSTANCES_TRANSFERRED, None, "C", false)
        }
        EventKind::InstanceForwarded | EventKind::InstanceQuarantined => {
            s(INSTANCES_TRANSFERRED, None, "R", true)
        }
        EventKind::GrantChange => s(SECURITY_ALERT, Some(SECURITY_ROLES_CHANGED), "U", false),
        EventKind::TenantChange | EventKind::KeyChange => {
            s(SECURITY_ALERT, Some(SECURITY_CONFIGURATION), "U", false)
        }
        EventKind::ConfigChange => s(SECURITY_ALERT, Some(SOFTWARE_CONFIGURATION), "U", false),
        EventKind::DeidRun => s(EXPORT, None, "R", true),
        EventKind::ScanRun => s(INSTANCES_ACCESSED, None, "R", false),
        EventKind::LogRecovered => s(SECURITY_ALERT, Some(AUDIT_RECORDING_STOPPED), "E", false),
        EventKind::WebRequest => match e.web_action() {
            Some(WebAction::Store) => s(INSTANCES_TRANSFERRED, None, "C", false),
            Some(WebAction::Delete) => s(STUDY_DELETED, None, "D", false),
            Some(WebAction::Search) => Shape {
                query: true,
                ..s(QUERY, None, "E", false)
            },
            Some(WebAction::Retrieve) | None => s(INSTANCES_TRANSFERRED, None, "R", true),
        },
    }
}

fn outcome_indicator(o: Outcome) -> &'static str {
    match o {
        Outcome::Success => "0",
        Outcome::Denied => "4",
        Outcome::Failure => "8",
    }
}

/// The messages of one record: one, or one per patient it names.
pub fn messages(r: &Record, source: &AuditSource) -> Vec<String> {
    let patients: Vec<&SubjectRef> = r
        .event
        .subjects
        .iter()
        .filter(|s| s.kind == SubjectKind::Patient)
        .collect();
    if patients.len() <= 1 {
        return vec![message(r, source, &r.event.subjects)];
    }
    let others: Vec<SubjectRef> = r
        .event
        .subjects
        .iter()
        .filter(|s| s.kind != SubjectKind::Patient)
        .cloned()
        .collect();
    patients
        .into_iter()
        .map(|p| {
            let mut subjects = others.clone();
            subjects.push(p.clone());
            message(r, source, &subjects)
        })
        .collect()
}

/// One message naming `subjects` (a patient at most).
fn message(r: &Record, source: &AuditSource, subjects: &[SubjectRef]) -> String {
    let e = &r.event;
    let sh = shape(r);
    let mut x = String::with_capacity(1024);
    x.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?><AuditMessage>");
    x.push_str(&format!(
        "<EventIdentification EventActionCode=\"{}\" EventDateTime=\"{}\" EventOutcomeIndicator=\"{}\">",
        sh.action,
        attr(&e.time),
        outcome_indicator(e.outcome)
    ));
    code(&mut x, "EventID", sh.event);
    if let Some(t) = sh.event_type {
        code(&mut x, "EventTypeCode", t);
    }
    if let Some(reason) = &e.reason {
        x.push_str(&format!(
            "<EventOutcomeDescription>{}</EventOutcomeDescription>",
            text(reason)
        ));
    }
    x.push_str("</EventIdentification>");

    // The actor (the requestor) and Obscura.
    let actor = participant(
        &e.actor.principal,
        e.actor.ae_title.as_deref(),
        e.actor.address.as_deref(),
        true,
        transfer_role(&sh, false),
    );
    let obscura = participant(&source.id, None, None, false, transfer_role(&sh, true));
    x.push_str(&actor);
    x.push_str(&obscura);

    x.push_str("<AuditSourceIdentification");
    if let Some(site) = &source.site {
        x.push_str(&format!(" AuditEnterpriseSiteID=\"{}\"", attr(site)));
    }
    x.push_str(&format!(" AuditSourceID=\"{}\">", attr(&source.id)));
    x.push_str("<AuditSourceTypeCode csd-code=\"4\"/></AuditSourceIdentification>");

    if sh.query {
        let pattern = e.route.as_deref().unwrap_or("");
        object(&mut x, pattern, "2", "24", ID_SEARCH_CRITERIA, pattern);
    }
    for s in subjects {
        match s.kind {
            SubjectKind::Study => object(&mut x, &s.hash, "2", "3", ID_STUDY_UID, KEYED_HASH_NAME),
            SubjectKind::Patient => object(
                &mut x,
                &s.hash,
                "1",
                "1",
                ID_PATIENT_NUMBER,
                KEYED_HASH_NAME,
            ),
            // Series, instances and providers have no object of their own
            // in these messages; the study and the patient carry them.
            _ => {}
        }
    }
    x.push_str("</AuditMessage>");
    x
}

/// RoleIDCode of the actor (`obscura == false`) or of Obscura in a transfer.
fn transfer_role(sh: &Shape, obscura: bool) -> Option<Code> {
    let transfer = matches!(sh.event.0, "110104" | "110106");
    match (transfer, sh.outbound == obscura) {
        (false, _) => None,
        (true, true) => Some(ROLE_SOURCE),
        (true, false) => Some(ROLE_DESTINATION),
    }
}

fn participant(
    user: &str,
    alternative: Option<&str>,
    address: Option<&str>,
    requestor: bool,
    role: Option<Code>,
) -> String {
    let mut x = format!("<ActiveParticipant UserID=\"{}\"", attr(user));
    if let Some(a) = alternative {
        x.push_str(&format!(" AlternativeUserID=\"{}\"", attr(a)));
    }
    x.push_str(&format!(" UserIsRequestor=\"{requestor}\""));
    if let Some(a) = address {
        x.push_str(&format!(
            " NetworkAccessPointID=\"{}\" NetworkAccessPointTypeCode=\"2\"",
            attr(a)
        ));
    }
    match role {
        Some(r) => {
            x.push('>');
            code(&mut x, "RoleIDCode", r);
            x.push_str("</ActiveParticipant>");
        }
        None => x.push_str("/>"),
    }
    x
}

fn object(x: &mut String, id: &str, type_code: &str, role: &str, id_type: Code, name: &str) {
    x.push_str(&format!(
        "<ParticipantObjectIdentification ParticipantObjectID=\"{}\" ParticipantObjectTypeCode=\"{type_code}\" ParticipantObjectTypeCodeRole=\"{role}\">",
        attr(id)
    ));
    code(x, "ParticipantObjectIDTypeCode", id_type);
    x.push_str(&format!(
        "<ParticipantObjectName>{}</ParticipantObjectName></ParticipantObjectIdentification>",
        text(name)
    ));
}

fn code(x: &mut String, element: &str, (c, system, meaning): Code) {
    x.push_str(&format!(
        "<{element} csd-code=\"{c}\" codeSystemName=\"{system}\" originalText=\"{meaning}\"/>"
    ));
}

/// Text content: XML-escaped, characters XML 1.0 cannot carry replaced.
fn text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(' '),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// An attribute value (the same escaping; quotes included).
fn attr(s: &str) -> String {
    text(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use obscura_audit::{Actor, AuditEvent, AuditKey};
    use std::time::UNIX_EPOCH;

    fn source() -> AuditSource {
        AuditSource {
            id: "pacs.example/audit".into(),
            site: Some("site-1".into()),
        }
    }

    fn record(kind: EventKind, route: &str, patients: &[&str]) -> Record {
        let key = AuditKey::from_bytes([3; 32]);
        let actor = Actor {
            principal: "vendor<a>&\"b\"".into(),
            address: Some("10.0.0.7".into()),
            ae_title: Some("MOD\u{1}A".into()),
        };
        let mut e = AuditEvent::new(UNIX_EPOCH, kind, actor, Outcome::Success);
        e.route = Some(route.into());
        e.subjects.push(SubjectRef::study(&key, "1.2.3"));
        for p in patients {
            e.subjects.push(SubjectRef::patient(&key, p));
        }
        Record { seq: 7, event: e }
    }

    #[test]
    fn balp_one_message_per_patient() {
        let r = record(
            EventKind::WebRequest,
            "web:GET /studies",
            &["P1", "P2", "P3"],
        );
        let m = messages(&r, &source());
        assert_eq!(m.len(), 3);
        for (msg, s) in m.iter().zip(r.event.subjects.iter().skip(1)) {
            assert!(msg.contains(&s.hash));
            assert_eq!(
                msg.matches("ParticipantObjectTypeCodeRole=\"1\"").count(),
                1
            );
            assert!(msg.contains("csd-code=\"110112\""), "a query: {msg}");
            assert!(msg.contains("ParticipantObjectID=\"web:GET /studies\""));
            assert!(!msg.contains("P1") && !msg.contains("P2"));
        }
    }

    #[test]
    fn escapes_and_shapes() {
        let r = record(EventKind::InstanceForwarded, "dest:pacs", &["P1"]);
        let m = messages(&r, &source());
        assert_eq!(m.len(), 1);
        let x = &m[0];
        assert!(x.contains("UserID=\"vendor&lt;a&gt;&amp;&quot;b&quot;\""));
        assert!(x.contains("AlternativeUserID=\"MOD\u{FFFD}A\""));
        assert!(x.contains("EventActionCode=\"R\""));
        // Forwarding: Obscura is the source, the actor the destination.
        let obscura = x.find("UserID=\"pacs.example/audit\"").unwrap();
        assert!(x[obscura..].starts_with("UserID=\"pacs.example/audit\" UserIsRequestor=\"false\"><RoleIDCode csd-code=\"110153\""));
        assert!(x.contains("AuditEnterpriseSiteID=\"site-1\""));
        let r = record(EventKind::InstanceReceived, "dimse:c-store", &["P1"]);
        let x = &messages(&r, &source())[0];
        assert!(x.contains("EventActionCode=\"C\""));
        assert!(x.contains("UserIsRequestor=\"true\" NetworkAccessPointID=\"10.0.0.7\" NetworkAccessPointTypeCode=\"2\"><RoleIDCode csd-code=\"110153\""));
        let r = record(
            EventKind::WebRequest,
            "web:GET /studies/{study}/series/{series}/instances/{instance}",
            &[],
        );
        assert!(messages(&r, &source())[0].contains("csd-code=\"110104\""));
    }
}
