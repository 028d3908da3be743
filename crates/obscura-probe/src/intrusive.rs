//! Intrusive checks, run only with `--intrusive` on targets of an
//! allow-list: a synthetic, clearly marked C-STORE, and the documented
//! default passwords of web consoles. They change the target (an object
//! stored) or try a login, so they are never run by default.

use serde::Serialize;

use crate::findings::{Finding, Severity, FIX_ACCESS, REF_ACCESS, REF_WEB};
use crate::Target;

/// The targets intrusive checks may touch: `HOST` (every port) or `HOST:PORT`.
#[derive(Debug, Clone, Default)]
pub struct AllowList(Vec<String>);

impl AllowList {
    /// From `--allow` entries; a bad entry is refused.
    pub fn new(entries: &[String]) -> Result<AllowList, crate::ProbeError> {
        let mut out = Vec::new();
        for e in entries {
            let e = e.trim();
            if e.is_empty() || e.contains('/') {
                return Err(crate::ProbeError::BadTarget(format!(
                    "{e:?} in --allow: HOST or HOST:PORT, no ranges"
                )));
            }
            out.push(e.trim_start_matches('[').replace("]:", ":").to_string());
        }
        Ok(AllowList(out))
    }

    /// Whether `t` is on the list (by host, or by host and port).
    pub fn allows(&self, t: &Target) -> bool {
        let with_port = format!("{}:{}", t.host, t.port);
        self.0.iter().any(|e| *e == t.host || *e == with_port)
    }
}

/// Documented default web-console credentials: (product, user, password, source).
pub(crate) const DEFAULT_CREDENTIALS: &[(&str, &str, &str, &str)] = &[
    (
        "Orthanc (the orthancteam/orthanc and jodogne/orthanc Docker images)",
        "orthanc",
        "orthanc",
        "Orthanc Book, Docker images",
    ),
    (
        "Orthanc (the sample configuration's RegisteredUsers)",
        "alice",
        "alicePassword",
        "orthanc.json shipped with Orthanc",
    ),
    (
        "dcm4chee / JBoss web console",
        "admin",
        "admin",
        "dcm4chee 2.x installation guide",
    ),
];

/// Secondary Capture Image Storage.
pub(crate) const SECONDARY_CAPTURE: &str = "1.2.840.10008.5.1.4.1.1.7";
/// The Patient ID of the synthetic object (public, ours, never a patient's).
pub const SYNTHETIC_PATIENT_ID: &str = "OBSCURA-PROBE";
/// The Patient's Name of the synthetic object.
pub const SYNTHETIC_PATIENT_NAME: &str = "OBSCURA^PROBE^SYNTHETIC TEST OBJECT";

/// What the intrusive checks did on one endpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct IntrusiveReport {
    /// The synthetic C-STORE, when Secondary Capture was offered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store: Option<SyntheticStore>,
    /// The C-MOVE to an AE title nobody configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub foreign_move: Option<ForeignMove>,
    /// Default credentials tried on `/system`: (user, HTTP status).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub default_credentials: Vec<(String, u16)>,
}

/// The synthetic object sent and the SCP's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SyntheticStore {
    /// SOP Instance UID of the object (ours: delete it by this UID).
    pub sop_instance_uid: String,
    /// Study Instance UID of the object.
    pub study_instance_uid: String,
    /// DIMSE status, hex; empty when the C-STORE failed.
    pub status: String,
    /// Why there is no status.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl SyntheticStore {
    /// Success or a warning (PS3.4 B.2.3): the object was kept.
    pub fn stored(&self) -> bool {
        matches!(
            self.status.as_str(),
            "0x0000" | "0xB000" | "0xB006" | "0xB007"
        )
    }
}

/// The C-MOVE to a foreign AE title and the SCP's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ForeignMove {
    /// The Move Destination sent (random, configured nowhere).
    pub destination: String,
    /// Which study was asked for (never its UID): the C-FIND's or a random one.
    pub study: &'static str,
    /// Whether the SCP refused the Study Root MOVE context.
    pub context_refused: bool,
    /// DIMSE status of the first C-MOVE-RSP, hex; empty when none.
    pub status: String,
    /// Sub-operations counted in that response.
    pub sub_operations: u32,
    /// Why there is no status.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl ForeignMove {
    /// The SCP refused as it should: the context, or 0xA801 (destination unknown).
    pub fn refused(&self) -> bool {
        self.context_refused || (self.status == "0xA801" && self.sub_operations == 0)
    }
}

/// A Secondary Capture data set in implicit VR little endian, marked as a
/// test object of the probe in every place a viewer shows (no pixel data).
pub(crate) fn synthetic_dataset(study: &str, series: &str, instance: &str) -> Vec<u8> {
    let elements: [(u16, u16, &str, u8); 13] = [
        (0x0008, 0x0016, SECONDARY_CAPTURE, 0),
        (0x0008, 0x0018, instance, 0),
        (0x0008, 0x0060, "OT", b' '),
        (0x0008, 0x0064, "SYN", b' '),
        (
            0x0008,
            0x103E,
            "OBSCURA PROBE SYNTHETIC TEST OBJECT - DELETE",
            b' ',
        ),
        (0x0010, 0x0010, SYNTHETIC_PATIENT_NAME, b' '),
        (0x0010, 0x0020, SYNTHETIC_PATIENT_ID, b' '),
        (0x0020, 0x000D, study, 0),
        (0x0020, 0x000E, series, 0),
        (0x0020, 0x0010, "PROBE", b' '),
        (0x0020, 0x0011, "1", b' '),
        (0x0020, 0x0013, "1", b' '),
        (0x0020, 0x4000, "Stored by obscura probe --intrusive", b' '),
    ];
    let mut out = Vec::with_capacity(512);
    for (group, element, value, pad) in elements {
        let mut v = value.as_bytes().to_vec();
        if v.len() % 2 == 1 {
            v.push(pad);
        }
        out.extend_from_slice(&group.to_le_bytes());
        out.extend_from_slice(&element.to_le_bytes());
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
        out.extend_from_slice(&v);
    }
    out
}

const FIX_CREDENTIALS: &str = "Replace every documented default account (Orthanc: \
     RegisteredUsers with unique passwords held in a secrets store, or an authorization plugin / \
     OIDC proxy), and keep the console off untrusted networks.";

/// The findings of the intrusive checks; `called` is the AE title used.
pub(crate) fn findings(i: &IntrusiveReport, called: &str, out: &mut Vec<Finding>) {
    if let Some(s) = i.store.as_ref().filter(|s| s.stored()) {
        out.push(Finding {
            id: "dicom-store-accepted",
            severity: Severity::High,
            title: "an unknown caller stored an object (synthetic, marked)".into(),
            evidence: vec![
                format!("C-STORE of a Secondary Capture object at called AE {called}: status {}", s.status),
                format!(
                    "the object to delete: Patient ID {SYNTHETIC_PATIENT_ID}, Study Instance UID {}, \
                     SOP Instance UID {}",
                    s.study_instance_uid, s.sop_instance_uid
                ),
            ],
            reference: REF_ACCESS,
            fix: FIX_ACCESS,
        });
    }
    if let Some(m) = i.foreign_move.as_ref() {
        move_finding(m, called, out);
    }
    if let Some((user, status)) = i
        .default_credentials
        .iter()
        .find(|(_, status)| (200..300).contains(status))
    {
        let product = DEFAULT_CREDENTIALS
            .iter()
            .find(|c| c.1 == user)
            .map_or("", |c| c.0);
        out.push(Finding {
            id: "http-default-credentials",
            severity: Severity::Critical,
            title: "a documented default password opens the web console".into(),
            evidence: vec![
                format!("GET /system as user {user} with its documented default password: HTTP {status}"),
                format!("default of {product}"),
            ],
            reference: REF_WEB,
            fix: FIX_CREDENTIALS,
        });
    }
}

const FIX_MOVE: &str = "Let C-MOVE send only to the AE titles configured as move \
     destinations (with their host and port), answer 0xA801 to any other, and refuse retrieval \
     contexts to unknown callers (dcmqrscp: HostTable/AETable; Orthanc: DicomModalities only).";

fn move_finding(m: &ForeignMove, called: &str, out: &mut Vec<Finding>) {
    let answer = if m.context_refused {
        "the Study Root MOVE context was refused".to_string()
    } else if !m.status.is_empty() {
        format!("status {}, {} sub-operation(s)", m.status, m.sub_operations)
    } else {
        return;
    };
    let evidence = vec![format!(
        "C-MOVE at called AE {called} of {} to Move Destination {}: {answer}",
        m.study, m.destination
    )];
    out.push(if m.refused() {
        Finding {
            id: "dicom-move-foreign-refused",
            severity: Severity::Info,
            title: "a C-MOVE to an unknown destination was refused".into(),
            evidence,
            reference: REF_ACCESS,
            fix: "Nothing to change.",
        }
    } else {
        Finding {
            id: "dicom-move-foreign-accepted",
            severity: Severity::High,
            title: "C-MOVE to an unknown destination accepted".into(),
            evidence,
            reference: REF_ACCESS,
            fix: FIX_MOVE,
        }
    });
}

/// `Basic` credentials for an Authorization header.
pub(crate) fn basic(user: &str, password: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_list() {
        let a = AllowList::new(&["10.0.0.5".into(), "pacs.example:11112".into()]).unwrap();
        let t = |h: &str, p| Target {
            host: h.into(),
            port: p,
        };
        assert!(a.allows(&t("10.0.0.5", 104)) && a.allows(&t("pacs.example", 11112)));
        assert!(!a.allows(&t("pacs.example", 104)) && !a.allows(&t("10.0.0.6", 104)));
        assert!(AllowList::new(&["10.0.0.0/24".into()]).is_err());
        assert!(AllowList::new(&[" ".into()]).is_err());
        assert_eq!(basic("orthanc", "orthanc"), "Basic b3J0aGFuYzpvcnRoYW5j");
    }

    #[test]
    fn dataset_is_even_and_ordered() {
        let d = synthetic_dataset("2.25.1", "2.25.2", "2.25.3");
        let (mut at, mut last) = (0, 0u32);
        while at < d.len() {
            let tag = u32::from(u16::from_le_bytes([d[at], d[at + 1]])) << 16
                | u32::from(u16::from_le_bytes([d[at + 2], d[at + 3]]));
            let len = u32::from_le_bytes([d[at + 4], d[at + 5], d[at + 6], d[at + 7]]) as usize;
            assert!(tag > last && len.is_multiple_of(2));
            last = tag;
            at += 8 + len;
        }
        assert_eq!(at, d.len());
    }
}
