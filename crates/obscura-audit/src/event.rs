//! What an audit record says: the event model, subject references as keyed
//! hashes (no PHI in clear), RFC 3339 time and the canonical JSON line.

use crate::Error;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::Sha256;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EventKind {
    /// A DICOM association was accepted.
    AssociationAccepted,
    /// A DICOM association was rejected.
    AssociationRejected,
    /// An instance was received (before it is durable).
    InstanceReceived,
    /// An instance was stored durably.
    InstanceStored,
    /// An instance was forwarded to a destination.
    InstanceForwarded,
    /// An instance was quarantined.
    InstanceQuarantined,
    /// A DICOMweb (HTTP) request was answered.
    WebRequest,
    /// Authentication failed.
    AuthFailure,
    /// A grant was created, changed or revoked.
    GrantChange,
    /// A tenant was created, changed or shredded.
    TenantChange,
    /// A key was created, rotated or destroyed.
    KeyChange,
    /// A configuration was loaded or changed.
    ConfigChange,
    /// A de-identification run.
    DeidRun,
    /// A scan run.
    ScanRun,
    /// The log itself was recovered after a crash (torn tail set aside).
    LogRecovered,
}

impl EventKind {
    /// Every kind, in declaration order.
    pub const ALL: [EventKind; 15] = [
        EventKind::AssociationAccepted,
        EventKind::AssociationRejected,
        EventKind::InstanceReceived,
        EventKind::InstanceStored,
        EventKind::InstanceForwarded,
        EventKind::InstanceQuarantined,
        EventKind::WebRequest,
        EventKind::AuthFailure,
        EventKind::GrantChange,
        EventKind::TenantChange,
        EventKind::KeyChange,
        EventKind::ConfigChange,
        EventKind::DeidRun,
        EventKind::ScanRun,
        EventKind::LogRecovered,
    ];
}

impl EventKind {
    /// Grant, tenant, key and config changes, and the log's own recovery:
    /// what an administrator (or an attacker) does to the system itself.
    pub fn is_admin(self) -> bool {
        matches!(
            self,
            EventKind::GrantChange
                | EventKind::TenantChange
                | EventKind::KeyChange
                | EventKind::ConfigChange
                | EventKind::LogRecovered
        )
    }
}

/// How it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Done as asked.
    Success,
    /// Refused by policy (admission, grant, authentication).
    Denied,
    /// Failed (an error, a quarantine).
    Failure,
}

/// Who acted: a principal id (never a person's name), and where from.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Actor {
    /// The principal: an account, client certificate subject key id, or peer name.
    pub principal: String,
    /// The network address, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// The calling AE title, for DICOM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ae_title: Option<String>,
}

/// What kind of thing a subject reference points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SubjectKind {
    /// A patient (by Patient ID and issuer).
    Patient,
    /// A study (by Study Instance UID).
    Study,
    /// A series (by Series Instance UID).
    Series,
    /// An instance (by SOP Instance UID).
    Instance,
    /// A provider (referring or performing physician, institution).
    Provider,
}

impl SubjectKind {
    fn label(self) -> &'static str {
        match self {
            SubjectKind::Patient => "patient",
            SubjectKind::Study => "study",
            SubjectKind::Series => "series",
            SubjectKind::Instance => "instance",
            SubjectKind::Provider => "provider",
        }
    }
}

/// A patient, study... as a keyed hash: HMAC-SHA256 under the site audit key
/// of the kind and the identifier. Whoever holds the key (the data owner) can
/// test a candidate; the log alone names no one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SubjectRef {
    /// What it refers to.
    pub kind: SubjectKind,
    /// Lower-case hex HMAC-SHA256 (64 digits).
    pub hash: String,
}

impl SubjectRef {
    /// A reference of any kind to `id`.
    pub fn new(key: &AuditKey, kind: SubjectKind, id: &str) -> Self {
        let mut mac = Hmac::<Sha256>::new_from_slice(&key.0).expect("HMAC takes any key length");
        // Domain separation: the same text as a patient and as a study hashes apart.
        mac.update(b"obscura-audit/v1/");
        mac.update(kind.label().as_bytes());
        mac.update(&[0]);
        mac.update(id.as_bytes());
        SubjectRef {
            kind,
            hash: hex(&mac.finalize().into_bytes()),
        }
    }

    /// A patient, by Patient ID (with its issuer if any, e.g. `"ID^^^ISSUER"`).
    pub fn patient(key: &AuditKey, patient_id: &str) -> Self {
        Self::new(key, SubjectKind::Patient, patient_id)
    }

    /// A study, by Study Instance UID.
    pub fn study(key: &AuditKey, study_uid: &str) -> Self {
        Self::new(key, SubjectKind::Study, study_uid)
    }

    /// A series, by Series Instance UID.
    pub fn series(key: &AuditKey, series_uid: &str) -> Self {
        Self::new(key, SubjectKind::Series, series_uid)
    }

    /// An instance, by SOP Instance UID.
    pub fn instance(key: &AuditKey, sop_uid: &str) -> Self {
        Self::new(key, SubjectKind::Instance, sop_uid)
    }

    /// A provider, by name or identifier.
    pub fn provider(key: &AuditKey, provider: &str) -> Self {
        Self::new(key, SubjectKind::Provider, provider)
    }
}

/// The site audit key: the HMAC key of subject references (32 bytes).
#[derive(Clone)]
pub struct AuditKey([u8; 32]);

impl std::fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuditKey(..)")
    }
}

impl AuditKey {
    /// A key from its bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        AuditKey(bytes)
    }

    /// A key from 64 hex digits (surrounding white space ignored): the format
    /// of `obscura keygen`.
    pub fn from_hex(text: &str) -> Result<Self, Error> {
        let t = text.trim();
        let bytes = unhex(t).filter(|b| b.len() == 32).ok_or(Error::KeyFormat)?;
        let mut k = [0u8; 32];
        k.copy_from_slice(&bytes);
        Ok(AuditKey(k))
    }

    /// Load a key file, refusing one that group or others can read.
    pub fn load(path: &Path) -> Result<Self, Error> {
        let text = crate::keyfile::read_private(path)?;
        Self::from_hex(&text)
    }
}

/// One audit event. Nothing here may hold PHI: subjects are keyed hashes,
/// and `reason` is a short machine code (`"unknown-ae"`), never a value from
/// a file or a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// When, RFC 3339 in UTC with milliseconds (`2025-01-31T09:08:07.123Z`).
    pub time: String,
    /// What happened.
    pub kind: EventKind,
    /// Who did it.
    pub actor: Actor,
    /// The route, destination or endpoint (`"stow:/studies"`, `"dest:pacs"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// How it ended.
    pub outcome: Outcome,
    /// A short machine-readable reason for a denial or failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// A count (instances in a run, results of a query), when meaningful.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    /// The patients, studies... the event touched, as keyed hashes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subjects: Vec<SubjectRef>,
    /// What the response showed of them, when not the originals
    /// ([`VIEW_DEIDENTIFIED`]: only through de-identified views).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub view: Option<String>,
    /// What an administrative change or a run was about: ids and settings
    /// (`grant`, `principal`, `tenant`, `profile`, `output`...), never PHI.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub detail: BTreeMap<String, String>,
}

/// The [`AuditEvent::view`] of a response given only through de-identified views.
pub const VIEW_DEIDENTIFIED: &str = "deidentified";

impl AuditEvent {
    /// The event as one JSON object, keys sorted: what a caller keeps (a
    /// database row) to append later.
    pub fn to_json(&self) -> String {
        canonical_json(&serde_json::to_value(self).expect("an event is always JSON"))
    }

    /// An event from [`AuditEvent::to_json`]'s text.
    pub fn from_json(text: &str) -> Result<Self, RecordError> {
        serde_json::from_str(text).map_err(|_| RecordError::Unparsable)
    }

    /// Give an event that waited before its append (in the inbox, in the
    /// gateway's queue) the time it is appended, so the log's times stay
    /// in order, keeping its own time in `detail[kept_as]`.
    pub fn restamp(&mut self, now: SystemTime, kept_as: &str) {
        let own = std::mem::replace(&mut self.time, rfc3339(now));
        self.detail.insert(kept_as.into(), own);
    }

    /// An event at `time` with no route, reason, count or subject.
    pub fn new(time: SystemTime, kind: EventKind, actor: Actor, outcome: Outcome) -> Self {
        AuditEvent {
            time: rfc3339(time),
            kind,
            actor,
            route: None,
            outcome,
            reason: None,
            count: None,
            subjects: Vec::new(),
            view: None,
            detail: BTreeMap::new(),
        }
    }
}

/// What a DICOMweb request (`web:METHOD pattern` route) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebAction {
    /// QIDO-RS: a search (the pattern ends in a collection).
    Search,
    /// WADO-RS: a retrieve (instances, metadata, bulk data, frames).
    Retrieve,
    /// STOW-RS (POST, PUT).
    Store,
    /// DELETE.
    Delete,
}

impl AuditEvent {
    /// An administrative change (see [`EventKind::is_admin`]), leaving out
    /// what a log's first start records of the config and the signing key
    /// it starts with, which name no previous one (`previous_sha256` or
    /// `previous_key_id` is `none`): a baseline, not a change.
    pub fn is_admin_change(&self) -> bool {
        let baseline = matches!(self.kind, EventKind::ConfigChange | EventKind::KeyChange)
            && ["previous_sha256", "previous_key_id"]
                .iter()
                .any(|k| self.detail.get(*k).is_some_and(|p| p == "none"));
        self.kind.is_admin() && !baseline
    }

    /// Whether the response showed only de-identified data (a
    /// de-identified view).
    pub fn deidentified_view(&self) -> bool {
        self.view.as_deref() == Some(VIEW_DEIDENTIFIED)
    }

    /// For a `web-request`, what it did (from its route's method and pattern).
    pub fn web_action(&self) -> Option<WebAction> {
        if self.kind != EventKind::WebRequest {
            return None;
        }
        let route = self.route.as_deref()?;
        let (method, pattern) = route.strip_prefix("web:")?.split_once(' ')?;
        Some(match method {
            "POST" | "PUT" => WebAction::Store,
            "DELETE" => WebAction::Delete,
            _ if ["/studies", "/series", "/instances"]
                .iter()
                .any(|c| pattern.ends_with(c)) =>
            {
                WebAction::Search
            }
            _ => WebAction::Retrieve,
        })
    }
}

/// What the log stores for an event: its position and the event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The record's index in the log (0-based, the leaf index).
    pub seq: u64,
    /// The event.
    #[serde(flatten)]
    pub event: AuditEvent,
}

impl Record {
    /// The canonical line (no newline): JSON, keys sorted, no white space.
    pub fn to_line(&self) -> String {
        let v = serde_json::to_value(self).expect("a record is always JSON");
        canonical_json(&v)
    }

    /// Parse a line; `Ok` only if it is exactly the canonical form.
    pub fn from_line(line: &[u8]) -> Result<Self, RecordError> {
        let rec: Record = serde_json::from_slice(line).map_err(|_| RecordError::Unparsable)?;
        if rec.to_line().as_bytes() != line {
            return Err(RecordError::NotCanonical);
        }
        Ok(rec)
    }
}

/// Why a line is not a valid record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// Not JSON, or not a record.
    #[error("not a record")]
    Unparsable,
    /// A record, but not in canonical form.
    #[error("not in canonical form")]
    NotCanonical,
}

/// JSON with object keys sorted (by bytes) and no white space.
pub fn canonical_json(v: &Value) -> String {
    let mut out = String::new();
    write_canonical(v, &mut out);
    out
}

fn write_canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::to_string(k).expect("a string"));
                out.push(':');
                write_canonical(&m[*k], out);
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(x, out);
            }
            out.push(']');
        }
        other => out.push_str(&serde_json::to_string(other).expect("a scalar")),
    }
}

/// RFC 3339 UTC with milliseconds; times before 1970 are clamped to the epoch.
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let at = i64::try_from(d.as_secs())
        .ok()
        .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        d.subsec_millis()
    )
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Hex to bytes; `None` for odd length or a non-hex digit.
pub fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_first_start_baseline_is_not_an_admin_change() {
        let e = |kind, prev: &str, value: &str| {
            let mut e = AuditEvent::new(
                std::time::UNIX_EPOCH,
                kind,
                Actor::default(),
                Outcome::Success,
            );
            e.detail.insert(prev.into(), value.into());
            e
        };
        assert!(!e(EventKind::ConfigChange, "previous_sha256", "none").is_admin_change());
        assert!(!e(EventKind::KeyChange, "previous_key_id", "none").is_admin_change());
        assert!(e(EventKind::ConfigChange, "previous_sha256", "ab12").is_admin_change());
        assert!(e(EventKind::KeyChange, "previous_key_id", "0123abcd").is_admin_change());
        assert!(e(EventKind::KeyChange, "key_id", "none").is_admin_change());
        assert!(!e(EventKind::WebRequest, "previous_sha256", "ab12").is_admin_change());
    }

    use super::*;
    use std::time::Duration;

    #[test]
    fn rfc3339_known_instants() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(951_782_400_123); // 2000-02-29
        assert_eq!(rfc3339(t), "2000-02-29T00:00:00.123Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_735_689_599); // last second of 2024
        assert_eq!(rfc3339(t), "2024-12-31T23:59:59.000Z");
    }

    #[test]
    fn canonical_line_sorts_keys_and_round_trips() {
        let key = AuditKey::from_bytes([7; 32]);
        let mut e = AuditEvent::new(
            UNIX_EPOCH,
            EventKind::WebRequest,
            Actor {
                principal: "vendor-a".into(),
                address: Some("10.0.0.1".into()),
                ae_title: None,
            },
            Outcome::Success,
        );
        e.route = Some("qido:/studies".into());
        e.subjects.push(SubjectRef::patient(&key, "PAT-0001"));
        let r = Record { seq: 3, event: e };
        let line = r.to_line();
        assert!(line.starts_with("{\"actor\":{\"address\":\"10.0.0.1\",\"principal\":\"vendor-a\"},\"kind\":\"web-request\""));
        assert!(!line.contains("PAT-0001"));
        assert_eq!(Record::from_line(line.as_bytes()).unwrap(), r);
        let spaced = line.replacen(':', ": ", 1);
        assert_eq!(
            Record::from_line(spaced.as_bytes()),
            Err(RecordError::NotCanonical)
        );
    }

    #[test]
    fn subject_hashes_are_keyed_and_separated() {
        let k1 = AuditKey::from_bytes([1; 32]);
        let k2 = AuditKey::from_bytes([2; 32]);
        let a = SubjectRef::patient(&k1, "123");
        assert_eq!(a, SubjectRef::patient(&k1, "123"));
        assert_ne!(a.hash, SubjectRef::patient(&k2, "123").hash);
        assert_ne!(a.hash, SubjectRef::study(&k1, "123").hash);
        assert_eq!(a.hash.len(), 64);
        let k = AuditKey::from_hex(&format!("{}\n", "ab".repeat(32))).unwrap();
        assert_eq!(k.0, [0xab; 32]);
        assert!(AuditKey::from_hex("abc").is_err());
    }
}
