//! From what was seen to findings: a severity, the evidence (counts,
//! hashes, AE titles and protocol codes; never a value from a data set),
//! the reference and the fix.

use serde::Serialize;

use crate::EndpointReport;

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing; nothing to fix.
    Info,
    /// Small exposure (presence, implementation).
    Low,
    /// A weakness that enables others (plain transport).
    Medium,
    /// An open door: unknown callers reach storage or query services.
    High,
    /// Patient data is reachable without authentication.
    Critical,
}

impl Severity {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

/// One finding about one endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Stable identifier, e.g. "dicom-query-open".
    pub id: &'static str,
    /// Severity.
    pub severity: Severity,
    /// One line.
    pub title: String,
    /// What was observed: counts, hashes, AE titles, protocol codes.
    pub evidence: Vec<String>,
    /// Standard and regulation.
    pub reference: &'static str,
    /// The configuration change that fixes it.
    pub fix: &'static str,
}

pub(crate) const REF_ACCESS: &str =
    "DICOM PS3.15 Annex B (TLS with peer authentication) and PS3.7 D.3.3.7 \
     (user identity negotiation); HIPAA 45 CFR 164.312(a)(1) access control, 164.312(d) \
     person or entity authentication";
const REF_TRANSPORT: &str =
    "DICOM PS3.15 Annex B (secure transport connection profiles, BCP 195); \
     HIPAA 45 CFR 164.312(e)(1) transmission security";
pub(crate) const FIX_ACCESS: &str =
    "Accept associations only from known calling AE titles at known \
     addresses (dcmqrscp: list peers in HostTable instead of ANY; Orthanc: DicomModalities \
     with DicomCheckModalityHost and DicomAlwaysAllowStore false), check the called AE title, \
     and require TLS with client certificates for anything beyond C-ECHO.";
const FIX_TRANSPORT: &str = "Offer DICOM over TLS 1.2/1.3 (port 2762) per BCP 195 and close \
     the plain port, or restrict it to a network segment that only trusted modalities reach.";

fn offered<'a>(r: &'a EndpointReport, prefix: &str) -> Vec<&'a str> {
    r.services
        .iter()
        .filter(|s| s.accepted && s.name.starts_with(prefix))
        .map(|s| s.name)
        .collect()
}

/// The findings for an endpoint report, most severe first.
pub fn assess(r: &EndpointReport) -> Vec<Finding> {
    let mut out = Vec::new();
    let called = r.accepted_called_ae.clone().unwrap_or_default();
    let how = if r.any_called_ae_accepted {
        "any called AE title (a random one)".to_string()
    } else {
        format!("the guessable called AE title {called}")
    };
    if let Some(q) = &r.query {
        if q.matches_read > 0 {
            let mut evidence = vec![
                format!("unknown calling AE accepted at called AE {called}"),
                format!(
                    "study-level C-FIND: {} response read (status {}), identifier of {} bytes",
                    q.matches_read, q.status, q.identifier_bytes
                ),
            ];
            if let Some(h) = &q.identifier_hmac {
                evidence.push(format!("identifier HMAC-SHA256 (run key): {}", &h[..16]));
            }
            if q.cancelled {
                evidence
                    .push("query cancelled after the first response (C-CANCEL, A-ABORT)".into());
            }
            out.push(Finding {
                id: "dicom-query-open",
                severity: Severity::Critical,
                title: "unauthenticated query returns patient data".into(),
                evidence,
                reference: REF_ACCESS,
                fix: FIX_ACCESS,
            });
        }
    }
    if r.unknown_calling_ae_accepted {
        let sensitive: Vec<&str> = ["FIND", "MOVE", "GET", "STORE"]
            .iter()
            .flat_map(|p| offered(r, p))
            .collect();
        let mut evidence = vec![format!(
            "A-ASSOCIATE-AC for a random calling AE title at {how}"
        )];
        let rejected_guesses = r.guesses.iter().filter(|g| g.outcome == "rejected").count();
        if rejected_guesses > 0 {
            evidence.push(format!(
                "{rejected_guesses} other common title(s) refused first"
            ));
        }
        if sensitive.is_empty() {
            evidence.push("only Verification (C-ECHO) offered".into());
            out.push(Finding {
                id: "dicom-unknown-caller-echo",
                severity: Severity::Low,
                title: format!("unknown callers accepted at {how} (C-ECHO only)"),
                evidence,
                reference: REF_ACCESS,
                fix: FIX_ACCESS,
            });
        } else {
            evidence.push(format!("offered: {}", sensitive.join(", ")));
            out.push(Finding {
                id: "dicom-unknown-caller-services",
                severity: Severity::High,
                title: format!("unknown callers accepted at {how} with storage or query services"),
                evidence,
                reference: REF_ACCESS,
                fix: FIX_ACCESS,
            });
        }
    }
    if let Some(u) = &r.user_identity {
        user_identity_findings(u, &called, &mut out);
    }
    let tls = r.tls.as_ref().is_some_and(|t| t.handshake);
    if r.speaks_dicom && !tls {
        out.push(Finding {
            id: "dicom-plain",
            severity: Severity::Medium,
            title: "DICOM over plain TCP (no TLS)".into(),
            evidence: vec![
                "an A-ASSOCIATE-RQ was answered in clear".into(),
                format!(
                    "TLS ClientHello: {}",
                    r.tls
                        .as_ref()
                        .and_then(|t| t.failure.clone())
                        .unwrap_or_else(|| "not tried".into())
                ),
            ],
            reference: REF_TRANSPORT,
            fix: FIX_TRANSPORT,
        });
    }
    if let Some(t) = r.tls.as_ref().filter(|t| t.handshake) {
        out.push(Finding {
            id: "tls",
            severity: Severity::Info,
            title: format!(
                "TLS offered ({}, {}){}",
                t.version.as_deref().unwrap_or("?"),
                t.cipher_suite.as_deref().unwrap_or("?"),
                if t.client_certificate_requested {
                    ", client certificate requested"
                } else {
                    ""
                }
            ),
            evidence: vec![format!(
                "server certificate SHA-256 {}",
                t.server_certificate_sha256.as_deref().unwrap_or("-")
            )],
            reference: REF_TRANSPORT,
            fix: "Nothing to fix here; the tls-* findings judge versions, suites and certificate.",
        });
    }
    if let Some(t) = &r.tls {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        crate::tls_findings::assess(t, now, &mut out);
    }
    if !r.unknown_calling_ae_accepted {
        if let Some(a) = &r.random_titles {
            if a.outcome == "rejected" {
                out.push(Finding {
                    id: "dicom-ae-checked",
                    severity: Severity::Info,
                    title: "unknown callers refused".into(),
                    evidence: vec![
                        format!("random AE titles: A-ASSOCIATE-RJ ({})", a.detail),
                        format!("{} common called AE title(s) refused", r.guesses.len()),
                    ],
                    reference: REF_ACCESS,
                    fix: "Nothing to fix.",
                });
            }
        }
    }
    if let Some(h) = &r.http {
        http_findings(h, &mut out);
    }
    if let Some(i) = &r.intrusive {
        crate::intrusive::findings(i, &called, &mut out);
    }
    if let Some(f) = &r.fingerprint {
        if let Some(v) = &f.version {
            let m = crate::cve::matches(&f.product, v);
            if !m.is_empty() {
                let mut evidence = vec![format!(
                    "{} {} identified from {} (confidence {})",
                    f.product, v, f.source, f.confidence
                )];
                evidence.extend(
                    m.iter().map(|c| {
                        format!("{} ({}): {} [{}]", c.cve, c.affected, c.summary, c.source)
                    }),
                );
                out.push(Finding {
                    id: "cve-possible",
                    severity: Severity::Medium,
                    title: format!(
                        "{} version {} is in the range of {} known CVE(s) (possible: backported fixes keep the version)",
                        f.product,
                        v,
                        m.len()
                    ),
                    evidence,
                    reference: REF_CVE,
                    fix: FIX_CVE,
                });
            }
        }
    }
    out.sort_by_key(|f| std::cmp::Reverse(f.severity));
    out
}

const REF_USER_IDENTITY: &str = "DICOM PS3.7 D.3.3.7 (user identity negotiation), PS3.15 \
     Annex B; HIPAA 45 CFR 164.312(d) person or entity authentication";
const FIX_USER_IDENTITY: &str = "Authenticate callers: TLS with client certificates, or user \
     identity negotiation checked against a directory (username and passcode, Kerberos, SAML \
     or JWT), refusing associations without it; at least an allow-list of calling AE titles \
     and addresses.";

fn user_identity_findings(u: &crate::UserIdentityCheck, called: &str, out: &mut Vec<Finding>) {
    let evidence = vec![format!(
        "A-ASSOCIATE-RQ at called AE {called} with a User Identity sub-item (username and \
         passcode, both random; server response requested): {}{}",
        u.outcome,
        if u.server_response {
            ", with a server response"
        } else {
            ", no server response"
        }
    )];
    let (id, severity, title) = match (u.outcome, u.server_response) {
        ("accepted", true) => (
            "dicom-user-identity-any",
            Severity::High,
            "a random username and passcode are accepted, with a positive server response",
        ),
        ("accepted", false) => (
            "dicom-user-identity-ignored",
            Severity::Low,
            "user identity is not negotiated: a random username and passcode are ignored",
        ),
        ("rejected", _) => (
            "dicom-user-identity-checked",
            Severity::Info,
            "a random username and passcode are refused (user identity checked when given, \
             not required)",
        ),
        _ => return,
    };
    out.push(Finding {
        id,
        severity,
        title: title.into(),
        evidence,
        reference: REF_USER_IDENTITY,
        fix: FIX_USER_IDENTITY,
    });
}

const REF_CVE: &str = "CVE table of obscura-probe (data/cves.json, dated, with sources); \
     HIPAA 45 CFR 164.308(a)(1)(ii)(A) risk analysis";
const FIX_CVE: &str = "Check the installed package's changelog for the CVE ids (a distribution \
     may have backported the fix); otherwise upgrade to a fixed version, and keep the service \
     off untrusted networks meanwhile.";
pub(crate) const REF_WEB: &str =
    "DICOM PS3.18 (DICOMweb) with PS3.15 Annex B; HIPAA 45 CFR 164.312(a)(1) \
     access control, 164.312(d) person or entity authentication";
const FIX_WEB: &str = "Require authentication on every HTTP route (Orthanc: \
     AuthenticationEnabled true with RegisteredUsers, or an authorization plugin; a reverse \
     proxy with OAuth2/OIDC or client certificates), and bind the service to the networks that \
     need it (Orthanc: RemoteAccessAllowed false behind the proxy).";
const FIX_WEB_TLS: &str = "Serve HTTP over TLS 1.2/1.3 only (Orthanc: SslEnabled with \
     SslCertificate, or a TLS reverse proxy) and close or redirect the plain port.";

fn http_findings(h: &crate::HttpSummary, out: &mut Vec<Finding>) {
    let mut open_any = false;
    if let Some(o) = &h.orthanc {
        open_any = true;
        let mut evidence = vec![format!(
            "GET /system without credentials: HTTP {} with Orthanc's JSON (version {}, name {:?})",
            h.system.status, o.version, o.name
        )];
        if let Some(n) = o.count_studies {
            evidence.push(format!("GET /statistics: CountStudies {n}"));
        }
        out.push(Finding {
            id: "orthanc-rest-open",
            severity: if o.count_studies.unwrap_or(1) > 0 {
                Severity::Critical
            } else {
                Severity::High
            },
            title: "Orthanc's REST API answers without credentials (read, write, delete)".into(),
            evidence,
            reference: REF_WEB,
            fix: FIX_WEB,
        });
    }
    for c in h.dicomweb_found() {
        let root = if c.prefix.is_empty() { "/" } else { &c.prefix };
        if c.qido.passed_auth() && (200..300).contains(&c.qido.status) {
            open_any = true;
            let mut evidence = vec![format!(
                "GET {}/studies?limit=1 without credentials: HTTP {}, {} byte(s), {} study(ies)",
                c.prefix,
                c.qido.status,
                c.qido_bytes,
                c.qido_count.map_or("?".into(), |n| n.to_string())
            )];
            if let Some(hm) = &c.qido_hmac {
                evidence.push(format!("answer HMAC-SHA256 (run key): {hm}"));
            }
            let count = c.qido_count.unwrap_or(0);
            out.push(Finding {
                id: "dicomweb-qido-open",
                severity: if count > 0 || c.qido_hmac.is_some() {
                    Severity::Critical
                } else {
                    Severity::High
                },
                title: format!(
                    "DICOMweb QIDO at {root} answers without credentials{}",
                    if count > 0 {
                        " and returns studies"
                    } else {
                        ""
                    }
                ),
                evidence,
                reference: REF_WEB,
                fix: FIX_WEB,
            });
        }
        if let Some(w) = c.wado.as_ref().filter(|w| w.passed_auth()) {
            open_any = true;
            out.push(Finding {
                id: "dicomweb-wado-open",
                severity: Severity::High,
                title: format!("DICOMweb WADO at {root} is reachable without credentials"),
                evidence: vec![format!(
                    "GET {}/studies/<random UID>/metadata without credentials: HTTP {} (not 401/403)",
                    c.prefix, w.status
                )],
                reference: REF_WEB,
                fix: FIX_WEB,
            });
        }
        if let Some(st) = c
            .stow
            .as_ref()
            .filter(|st| st.passed_auth() && !matches!(st.status, 404 | 405 | 501))
        {
            open_any = true;
            out.push(Finding {
                id: "dicomweb-stow-open",
                severity: Severity::High,
                title: format!("DICOMweb STOW at {root} accepts requests without credentials"),
                evidence: vec![format!(
                    "POST {}/studies with an empty multipart body, no credentials: HTTP {} (not 401/403)",
                    c.prefix, st.status
                )],
                reference: REF_WEB,
                fix: FIX_WEB,
            });
        }
    }
    let refused: Vec<String> = std::iter::once(("/system", &h.system))
        .chain(h.dicomweb_found().map(|c| (c.prefix.as_str(), &c.qido)))
        .filter(|(_, a)| a.refused())
        .map(|(p, a)| format!("{} {}", if p.is_empty() { "/studies" } else { p }, a.status))
        .collect();
    let asks_credentials = h.auth_realm.is_some() || !refused.is_empty();
    if !open_any && asks_credentials {
        let mut evidence = vec![format!(
            "refused without credentials: {}",
            refused.join(", ")
        )];
        if let Some(realm) = &h.auth_realm {
            evidence.push(format!("401 realm {realm:?}"));
        }
        out.push(Finding {
            id: "http-auth-required",
            severity: Severity::Info,
            title: "HTTP routes ask for credentials".into(),
            evidence,
            reference: REF_WEB,
            fix: "Nothing to fix.",
        });
    }
    if h.scheme == "http" && (open_any || asks_credentials || h.dicomweb_found().next().is_some()) {
        out.push(Finding {
            id: "http-plain",
            severity: Severity::Medium,
            title: if asks_credentials {
                "DICOMweb/REST over plain HTTP: credentials and images cross the network in clear"
                    .into()
            } else {
                "DICOMweb/REST over plain HTTP (no TLS)".into()
            },
            evidence: vec![
                "HTTP answered on a port without TLS (TLS ClientHello refused)".into(),
                format!("GET / HTTP {}", h.root.status),
            ],
            reference: REF_TRANSPORT,
            fix: FIX_WEB_TLS,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Answer, DicomWebCheck, HttpSummary, OrthancSystem};

    fn answer(status: u16) -> Answer {
        Answer {
            status,
            error: None,
        }
    }

    fn summary(scheme: &'static str, qido: u16, other: u16) -> HttpSummary {
        HttpSummary {
            scheme,
            root: answer(qido),
            server_header: None,
            auth_realm: (qido == 401).then(|| "Orthanc Secure Area".to_string()),
            system: answer(if qido == 401 { 401 } else { 404 }),
            orthanc: None,
            dicomweb: vec![
                DicomWebCheck {
                    prefix: "/dicom-web".into(),
                    qido: answer(qido),
                    qido_count: (qido == 200).then_some(1),
                    qido_bytes: 10,
                    qido_hmac: (qido == 200).then(|| "00".repeat(8)),
                    wado: Some(answer(other)),
                    stow: Some(answer(other)),
                },
                DicomWebCheck {
                    prefix: "/rs".into(),
                    qido: answer(404),
                    qido_count: None,
                    qido_bytes: 0,
                    qido_hmac: None,
                    wado: None,
                    stow: None,
                },
            ],
        }
    }

    fn ids(h: &HttpSummary) -> Vec<(&'static str, Severity)> {
        let mut out = Vec::new();
        http_findings(h, &mut out);
        out.iter().map(|f| (f.id, f.severity)).collect()
    }

    #[test]
    fn open_dicomweb_and_rest() {
        let mut h = summary("http", 200, 404);
        h.orthanc = Some(OrthancSystem {
            version: "1.10.1".into(),
            name: "x".into(),
            count_studies: Some(0),
        });
        let f = ids(&h);
        assert!(f.contains(&("orthanc-rest-open", Severity::High)));
        assert!(f.contains(&("dicomweb-qido-open", Severity::Critical)));
        assert!(f.contains(&("dicomweb-wado-open", Severity::High)));
        // an empty STOW answered 404: the route is absent, not open
        assert!(!f.iter().any(|x| x.0 == "dicomweb-stow-open"));
        assert!(f.contains(&("http-plain", Severity::Medium)));
        let fp = crate::http_fingerprint(&h).unwrap();
        assert_eq!(
            (fp.identified.as_str(), fp.confidence),
            ("Orthanc 1.10.1", "high")
        );
    }

    #[test]
    fn authentication_is_not_high() {
        for scheme in ["http", "https"] {
            let h = summary(scheme, 401, 401);
            let f = ids(&h);
            assert!(f.iter().all(|x| x.1 < Severity::High), "{f:?}");
            assert!(f.contains(&("http-auth-required", Severity::Info)));
            assert_eq!(f.iter().any(|x| x.0 == "http-plain"), scheme == "http");
            let fp = crate::http_fingerprint(&h).unwrap();
            assert_eq!(
                (fp.identified.as_str(), fp.confidence),
                ("Orthanc", "medium")
            );
        }
        // STOW open while QIDO asks for credentials
        let f = ids(&summary("https", 403, 400));
        assert!(f.contains(&("dicomweb-stow-open", Severity::High)));
    }
}
