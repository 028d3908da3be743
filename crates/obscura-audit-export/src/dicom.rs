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
const ID_USER: Code = ("11", "RFC-3881", "User Identifier");
// Obscura's own identifiers: a private coding scheme (PS3.16 8.2: a
// designator beginning with "99").
const ID_TENANT: Code = ("tenant", "99OBSCURA", "Tenant ID");
const ID_GRANT: Code = ("grant", "99OBSCURA", "Grant ID");
const ID_TOKEN: Code = ("token", "99OBSCURA", "Share link token ID");
const ID_KEY: Code = ("key", "99OBSCURA", "Key ID");

/// A participant object named by a record's `detail`: the field, its
/// ParticipantObjectTypeCode and TypeCodeRole, ID type, and its
/// ParticipantObjectName.
struct DetailObject {
    field: &'static str,
    type_code: &'static str,
    role: &'static str,
    id_type: Code,
    name: &'static str,
}

/// What a record's `detail` names as participant objects (RFC 3881 type
/// codes and roles): the principal a grant is for (system object 2,
/// Security User Entity 11, User Identifier), the tenant (organization 3,
/// Security Resource 13), a grant or share link (system object 2,
/// Security Granularity Definition 14), a key (system object 2, Security
/// Resource 13; its id, never the key). A `web-request`'s `grants` (the
/// grants it acted under, comma-separated) give one grant object each.
const DETAIL_OBJECTS: [DetailObject; 6] = [
    DetailObject {
        field: "principal",
        type_code: "2",
        role: "11",
        id_type: ID_USER,
        name: "principal",
    },
    DetailObject {
        field: "tenant",
        type_code: "3",
        role: "13",
        id_type: ID_TENANT,
        name: "tenant",
    },
    DetailObject {
        field: "grant",
        type_code: "2",
        role: "14",
        id_type: ID_GRANT,
        name: "access grant",
    },
    DetailObject {
        field: "grants",
        type_code: "2",
        role: "14",
        id_type: ID_GRANT,
        name: "access grant",
    },
    DetailObject {
        field: "token",
        type_code: "2",
        role: "14",
        id_type: ID_TOKEN,
        name: "share link",
    },
    DetailObject {
        field: "key_id",
        type_code: "2",
        role: "13",
        id_type: ID_KEY,
        name: "key",
    },
];

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
    for d in &DETAIL_OBJECTS {
        let Some(value) = e.detail.get(d.field) else {
            continue;
        };
        // a tenant's object is named by the organisation's name when the
        // record has it (`tenant-change`)
        let name = match (d.field, e.detail.get("name")) {
            ("tenant", Some(n)) if !n.trim().is_empty() => n.as_str(),
            _ => d.name,
        };
        let ids: Vec<&str> = match d.field {
            // `owner` names no grant (a principal bound to its tenant)
            "grants" => value
                .split(',')
                .map(str::trim)
                .filter(|g| *g != "owner")
                .collect(),
            _ => vec![value.as_str()],
        };
        for id in ids.into_iter().filter(|v| !v.trim().is_empty()) {
            object(&mut x, id, d.type_code, d.role, d.id_type, name);
        }
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
    fn detail_names_principal_tenant_grants_and_key() {
        let mut r = record(EventKind::GrantChange, "admin:grant-add", &[]);
        for (k, v) in [
            ("grant", "g-1"),
            ("principal", "vendor-x"),
            ("tenant", "t-9"),
            ("actions", "search"),
        ] {
            r.event.detail.insert(k.into(), v.into());
        }
        let x = &messages(&r, &source())[0];
        assert!(x.contains("<ParticipantObjectIdentification ParticipantObjectID=\"vendor-x\" ParticipantObjectTypeCode=\"2\" ParticipantObjectTypeCodeRole=\"11\"><ParticipantObjectIDTypeCode csd-code=\"11\" codeSystemName=\"RFC-3881\""), "{x}");
        assert!(x.contains("ParticipantObjectID=\"t-9\" ParticipantObjectTypeCode=\"3\" ParticipantObjectTypeCodeRole=\"13\""), "{x}");
        assert!(x.contains("ParticipantObjectID=\"g-1\" ParticipantObjectTypeCode=\"2\" ParticipantObjectTypeCodeRole=\"14\""), "{x}");
        assert!(!x.contains("search"), "only ids are objects: {x}");
        // a tenant-change names the tenant by the organisation's name
        let mut r = record(EventKind::TenantChange, "admin:tenant-create", &[]);
        r.event.detail.insert("tenant".into(), "t-2".into());
        r.event.detail.insert("name".into(), "Site <B>".into());
        let x = &messages(&r, &source())[0];
        assert!(x.contains("ParticipantObjectID=\"t-2\" ParticipantObjectTypeCode=\"3\" ParticipantObjectTypeCodeRole=\"13\"><ParticipantObjectIDTypeCode csd-code=\"tenant\" codeSystemName=\"99OBSCURA\" originalText=\"Tenant ID\"/><ParticipantObjectName>Site &lt;B&gt;</ParticipantObjectName>"), "{x}");
        // a web request: one object per grant, in every BALP message
        let mut r = record(EventKind::WebRequest, "web:GET /studies", &["P1", "P2"]);
        r.event.detail.insert("grants".into(), "g-1,g-2".into());
        for x in messages(&r, &source()) {
            for g in ["g-1", "g-2"] {
                assert_eq!(
                    x.matches(&format!("ParticipantObjectID=\"{g}\"")).count(),
                    1,
                    "{x}"
                );
            }
        }
        let mut r = record(EventKind::KeyChange, "admin:keygen", &[]);
        r.event.detail.insert("key_id".into(), "0123abcd".into());
        r.event.detail.insert("key_file".into(), "/etc/k".into());
        let x = &messages(&r, &source())[0];
        assert!(x.contains("ParticipantObjectID=\"0123abcd\""), "{x}");
        assert!(!x.contains("/etc/k"), "{x}");
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
