//! Findings from the TLS checks against BCP 195 (RFC 9325, RFC 8996) and
//! the certificate (RFC 5280, RFC 9525): evidence is versions, suite
//! names, dates, sizes and algorithm names, never a name from the
//! certificate.

use crate::findings::{Finding, Severity};
use crate::{SuiteClass, TlsSummary};

const REF_BCP195: &str = "BCP 195 (RFC 9325 sections 3.1.1-3.1.2 and 4.1-4.2, RFC 8996); \
     DICOM PS3.15 Annex B (BCP 195 TLS secure transport profiles); HIPAA 45 CFR 164.312(e)(1) \
     transmission security";
const REF_CERT: &str = "RFC 5280 (validity), RFC 9525 (service identity), RFC 9325 section \
     4.3 (key sizes, SHA-1); DICOM PS3.15 Annex B; HIPAA 45 CFR 164.312(d), 164.312(e)(1)";
const FIX_VERSIONS: &str = "Disable TLS 1.0 and 1.1 (OpenSSL-based servers: MinProtocol = \
     TLSv1.2 or `-no_tls1 -no_tls1_1`; DCMTK: --tls-profile bcp195-nd or bcp195-ex), and enable \
     TLS 1.3.";
const FIX_SUITES: &str = "Offer only ECDHE (or DHE >= 2048 bits) suites with AES-GCM or \
     ChaCha20-Poly1305 for TLS 1.2 (DCMTK: --tls-profile bcp195-nd; OpenSSL: \
     CipherString ECDHE+AESGCM:ECDHE+CHACHA20), plus TLS 1.3.";
const FIX_CERT: &str = "Issue the server a certificate from the site's CA (or a public CA) \
     with the host name or address it is reached by in subjectAltName, an RSA key of 2048 bits \
     or more (or ECDSA P-256), a SHA-256 signature, and at most 398 days of validity; renew \
     before notAfter.";
/// CA/Browser Forum limit for a server certificate's validity.
const MAX_VALIDITY_DAYS: i64 = 398;

fn push(
    out: &mut Vec<Finding>,
    id: &'static str,
    severity: Severity,
    title: String,
    evidence: Vec<String>,
    reference: &'static str,
    fix: &'static str,
) {
    out.push(Finding {
        id,
        severity,
        title,
        evidence,
        reference,
        fix,
    });
}

/// `YYYY-MM-DD` of Unix seconds.
fn day(t: i64) -> String {
    let at =
        time::OffsetDateTime::from_unix_timestamp(t).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}",
        at.year(),
        u8::from(at.month()),
        at.day()
    )
}

/// The TLS findings of one endpoint, at time `now` (seconds since the epoch).
pub(crate) fn assess(t: &TlsSummary, now: i64, out: &mut Vec<Finding>) {
    if t.handshake && t.version.as_deref() == Some("TLSv1_2") {
        push(
            out,
            "tls-no-1.3",
            Severity::Info,
            "TLS 1.3 not offered (TLS 1.2 only)".into(),
            vec!["a client offering TLS 1.3 and 1.2 negotiated TLSv1_2".into()],
            REF_BCP195,
            "Enable TLS 1.3 (RFC 9325 3.1.1: SHOULD support TLS 1.3).",
        );
    }
    let Some(p) = &t.policy else { return };
    let legacy: Vec<&str> = p
        .accepted_versions
        .iter()
        .copied()
        .filter(|v| *v != "TLSv1_2")
        .collect();
    if !legacy.is_empty() {
        push(
            out,
            "tls-legacy-version",
            Severity::Medium,
            format!(
                "TLS versions deprecated by RFC 8996 accepted: {}",
                legacy.join(", ")
            ),
            vec![format!(
                "a ClientHello offering only {} was answered by a ServerHello of that version",
                legacy.join(", another only ")
            )],
            REF_BCP195,
            FIX_VERSIONS,
        );
    }
    for (class, suite) in &p.weak_suites_accepted {
        let (id, severity, title) = match class {
            SuiteClass::Broken => (
                "tls-suite-broken",
                Severity::High,
                "a NULL, anonymous, export, DES, RC4 or 3DES suite is accepted",
            ),
            SuiteClass::NoForwardSecrecy => (
                "tls-suite-no-forward-secrecy",
                Severity::Low,
                "a suite without forward secrecy (RSA key transport) is accepted",
            ),
            SuiteClass::NoAead => (
                "tls-suite-no-aead",
                Severity::Low,
                "a TLS 1.2 suite without AEAD (CBC) is accepted",
            ),
            SuiteClass::Recommended => continue,
        };
        push(
            out,
            id,
            severity,
            title.into(),
            vec![format!(
                "offered only such suites, the server chose {suite} ({})",
                p.accepted_versions.first().copied().unwrap_or("?")
            )],
            REF_BCP195,
            FIX_SUITES,
        );
    }
    if let Some(c) = &p.certificate {
        let dates = format!(
            "notBefore {}, notAfter {}",
            day(c.not_before),
            day(c.not_after)
        );
        if now > c.not_after || now < c.not_before {
            push(
                out,
                "tls-cert-invalid-date",
                Severity::Medium,
                if now > c.not_after {
                    "server certificate expired".into()
                } else {
                    "server certificate not yet valid".into()
                },
                vec![dates.clone(), format!("probed on {}", day(now))],
                REF_CERT,
                FIX_CERT,
            );
        }
        let days = (c.not_after - c.not_before) / 86_400;
        if days > MAX_VALIDITY_DAYS {
            push(
                out,
                "tls-cert-long-validity",
                Severity::Low,
                format!("server certificate valid for {days} days (more than {MAX_VALIDITY_DAYS})"),
                vec![dates],
                REF_CERT,
                FIX_CERT,
            );
        }
        if c.self_signed {
            push(
                out,
                "tls-cert-self-signed",
                Severity::Low,
                "self-signed server certificate (issuer = subject): clients cannot verify it without pinning".into(),
                vec![format!("chain of {} certificate(s), issuer equal to subject", c.chain_length)],
                REF_CERT,
                FIX_CERT,
            );
        }
        if !c.self_signed
            && c.chain_verdict != crate::cert::TRUSTED
            && !c.chain_verdict.starts_with("not checked")
            && c.chain_verdict != "outside its validity"
        {
            push(
                out,
                "tls-cert-untrusted",
                Severity::Medium,
                format!(
                    "server certificate chain does not verify: {}",
                    c.chain_verdict
                ),
                vec![
                    format!(
                        "chain of {} certificate(s) checked against the trust store (RFC 5280 path validation): {}",
                        c.chain_length, c.chain_verdict
                    ),
                    "the trust store is named in the report (trust_store); give the site's CA with --ca-file".into(),
                ],
                REF_CERT,
                FIX_CERT,
            );
        }
        if !c.name_matches {
            push(
                out,
                "tls-cert-name-mismatch",
                Severity::Medium,
                "the name probed is not in the server certificate".into(),
                vec!["neither a subjectAltName DNS name or address (nor, without subjectAltName, the CN) matches the target".into()],
                REF_CERT,
                FIX_CERT,
            );
        }
        if c.key_type == "RSA" && c.key_bits < 2048 || c.key_type == "DSA" {
            push(
                out,
                "tls-cert-weak-key",
                Severity::Medium,
                format!(
                    "server key {} {} bits (RSA below 2048, or DSA)",
                    c.key_type, c.key_bits
                ),
                vec![format!("{} public key of {} bits", c.key_type, c.key_bits)],
                REF_CERT,
                FIX_CERT,
            );
        }
        if let Some(alg) = c.weak_signature {
            push(
                out,
                "tls-cert-weak-signature",
                Severity::Medium,
                format!("server certificate signed with {alg}"),
                vec![format!("signature algorithm {alg}")],
                REF_CERT,
                FIX_CERT,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CertFacts, TlsPolicy};

    fn summary(policy: TlsPolicy, version: &str) -> TlsSummary {
        TlsSummary {
            handshake: true,
            version: Some(version.into()),
            cipher_suite: None,
            client_certificate_requested: false,
            server_certificate_sha256: None,
            failure: None,
            policy: Some(policy),
        }
    }

    fn ids(t: &TlsSummary, now: i64) -> Vec<(&'static str, Severity)> {
        let mut out = Vec::new();
        assess(t, now, &mut out);
        out.iter().map(|f| (f.id, f.severity)).collect()
    }

    #[test]
    fn weak_and_good() {
        let cert = CertFacts {
            not_before: 0,
            not_after: 100 * 86_400,
            self_signed: true,
            chain_length: 1,
            name_matches: false,
            key_type: "RSA",
            key_bits: 1024,
            weak_signature: Some("sha1WithRSAEncryption"),
            chain_verdict: "unknown issuer",
        };
        let weak = summary(
            TlsPolicy {
                accepted_versions: vec!["TLSv1_2", "TLSv1_0"],
                preferred_suite: None,
                weak_suites_accepted: vec![(
                    SuiteClass::Broken,
                    "RSA_WITH_3DES_EDE_CBC_SHA".into(),
                )],
                certificate: Some(cert.clone()),
                failures: vec![],
            },
            "TLSv1_2",
        );
        let f = ids(&weak, 200 * 86_400);
        for want in [
            ("tls-no-1.3", Severity::Info),
            ("tls-legacy-version", Severity::Medium),
            ("tls-suite-broken", Severity::High),
            ("tls-cert-invalid-date", Severity::Medium),
            ("tls-cert-self-signed", Severity::Low),
            ("tls-cert-name-mismatch", Severity::Medium),
            ("tls-cert-weak-key", Severity::Medium),
            ("tls-cert-weak-signature", Severity::Medium),
        ] {
            assert!(f.contains(&want), "{want:?} not in {f:?}");
        }
        assert!(!f.iter().any(|x| x.0 == "tls-cert-long-validity"));
        // self-signed: told by its own finding, not again as untrusted
        assert!(!f.iter().any(|x| x.0 == "tls-cert-untrusted"));
        let good = summary(
            TlsPolicy {
                accepted_versions: vec!["TLSv1_2"],
                certificate: Some(CertFacts {
                    self_signed: false,
                    name_matches: true,
                    key_bits: 2048,
                    weak_signature: None,
                    chain_verdict: crate::cert::TRUSTED,
                    ..cert.clone()
                }),
                ..TlsPolicy::default()
            },
            "TLSv1_3",
        );
        assert_eq!(ids(&good, 50 * 86_400), vec![]);
        let mut unknown = good.clone();
        if let Some(c) = unknown.policy.as_mut().and_then(|p| p.certificate.as_mut()) {
            c.chain_verdict = "unknown issuer";
        }
        assert_eq!(
            ids(&unknown, 50 * 86_400),
            vec![("tls-cert-untrusted", Severity::Medium)]
        );
        assert_eq!(day(0), "1970-01-01");
        assert_eq!(day(1_764_892_800), "2025-12-05");
    }
}
