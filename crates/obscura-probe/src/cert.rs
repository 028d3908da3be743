//! Facts about a server's certificate (public data): validity, issuer,
//! names, key size and signature hash, for the BCP 195 / RFC 9325 and
//! RFC 9525 checks. Names in the certificate are not copied to the report.

use std::path::Path;
use std::sync::Arc;

use obscura_dimse::rustls::{self, client::WebPkiServerVerifier, CertificateError, RootCertStore};
use rustls::pki_types::{pem::PemObject, CertificateDer, ServerName, UnixTime};
use serde::Serialize;
use x509_parser::extensions::GeneralName;
use x509_parser::public_key::PublicKey;

/// The certificates a server's chain is verified against: the system's
/// roots and the site's own CA(s).
#[derive(Debug, Clone)]
pub struct TrustStore {
    roots: Arc<RootCertStore>,
    /// What is in it, e.g. "system roots (146), --ca-file (1)".
    pub description: String,
}

impl TrustStore {
    /// The system's roots (none if they cannot be read).
    pub fn system() -> TrustStore {
        let mut roots = RootCertStore::empty();
        let (added, _) =
            roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        TrustStore {
            roots: Arc::new(roots),
            description: format!("system roots ({added})"),
        }
    }

    /// No certificate at all: nothing verifies.
    pub fn empty() -> TrustStore {
        TrustStore {
            roots: Arc::new(RootCertStore::empty()),
            description: "no system roots".into(),
        }
    }

    /// Adds the CA certificates of a PEM file (the site's CA).
    pub fn add_pem_file(&mut self, path: &Path) -> Result<(), String> {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
            .and_then(|i| i.collect())
            .map_err(|e| format!("{}: {e}", path.display()))?;
        if certs.is_empty() {
            return Err(format!("{}: no certificate", path.display()));
        }
        let n = certs.len();
        let roots = Arc::make_mut(&mut self.roots);
        for c in certs {
            roots
                .add(c)
                .map_err(|e| format!("{}: {e}", path.display()))?;
        }
        self.description += &format!(", {} ({n})", path.display());
        Ok(())
    }

    /// How the chain (end-entity first) verifies for `host` (RFC 5280 path
    /// validation by webpki; the name is judged apart, see [`CertFacts`]).
    fn verify(&self, chain: &[Vec<u8>], host: &str) -> &'static str {
        if self.roots.is_empty() {
            return "not checked (no trust anchor)";
        }
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let (Some((end, rest)), Ok(name)) = (chain.split_first(), ServerName::try_from(host))
        else {
            return "not checked";
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let Ok(verifier) =
            WebPkiServerVerifier::builder_with_provider(self.roots.clone(), provider).build()
        else {
            return "not checked";
        };
        let intermediates: Vec<CertificateDer<'_>> = rest
            .iter()
            .map(|c| CertificateDer::from(c.as_slice()))
            .collect();
        use rustls::client::danger::ServerCertVerifier;
        let verdict = verifier.verify_server_cert(
            &CertificateDer::from(end.as_slice()),
            &intermediates,
            &name,
            &[],
            UnixTime::now(),
        );
        match verdict {
            Ok(_) => TRUSTED,
            // the chain was built; only the name differs (judged apart)
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => TRUSTED,
            Err(rustls::Error::InvalidCertificate(e)) => match e {
                CertificateError::UnknownIssuer => "unknown issuer",
                CertificateError::BadSignature => "bad signature",
                CertificateError::Expired
                | CertificateError::ExpiredContext { .. }
                | CertificateError::NotValidYet
                | CertificateError::NotValidYetContext { .. } => "outside its validity",
                CertificateError::InvalidPurpose
                | CertificateError::InvalidPurposeContext { .. } => "not a server certificate",
                CertificateError::Revoked => "revoked",
                _ => "invalid certificate",
            },
            Err(_) => "not checked",
        }
    }
}

/// The verdict of a chain that verifies against the trust store.
pub(crate) const TRUSTED: &str = "trusted";

/// Signature algorithms over SHA-1 or MD5 (OIDs).
const WEAK_SIGNATURES: &[(&str, &str)] = &[
    ("1.2.840.113549.1.1.4", "md5WithRSAEncryption"),
    ("1.2.840.113549.1.1.5", "sha1WithRSAEncryption"),
    ("1.2.840.10045.4.1", "ecdsa-with-SHA1"),
    ("1.2.840.10040.4.3", "dsa-with-sha1"),
];

/// What the end-entity certificate says, reduced to what the checks need.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CertFacts {
    /// notBefore, seconds since the epoch.
    pub not_before: i64,
    /// notAfter, seconds since the epoch.
    pub not_after: i64,
    /// Issuer and subject are the same name.
    pub self_signed: bool,
    /// Certificates the server sent (end-entity included).
    pub chain_length: usize,
    /// Whether the name probed (host name or address) is among the
    /// certificate's names (subjectAltName, else the subject's CN).
    pub name_matches: bool,
    /// "RSA", "EC", "DSA" or "other".
    pub key_type: &'static str,
    /// Key size in bits.
    pub key_bits: usize,
    /// A SHA-1 or MD5 signature algorithm, by name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weak_signature: Option<&'static str>,
    /// The chain against the trust store: "trusted", "unknown issuer",
    /// "bad signature", "outside its validity", "not a server certificate",
    /// "revoked", "invalid certificate" or "not checked ...".
    pub chain_verdict: &'static str,
}

/// Reads the end-entity certificate (`chain[0]`) and verifies the chain
/// against `trust`; `None` when it does not parse.
pub fn facts(chain: &[Vec<u8>], host: &str, trust: &TrustStore) -> Option<CertFacts> {
    let (_, c) = x509_parser::parse_x509_certificate(chain.first()?).ok()?;
    let v = c.validity();
    let (key_type, key_bits) = match c.public_key().parsed() {
        Ok(PublicKey::RSA(k)) => ("RSA", k.key_size()),
        Ok(PublicKey::EC(k)) => ("EC", k.key_size()),
        Ok(PublicKey::DSA(k)) => ("DSA", k.len() * 8),
        _ => ("other", 0),
    };
    let oid = c.signature_algorithm.algorithm.to_id_string();
    Some(CertFacts {
        not_before: v.not_before.timestamp(),
        not_after: v.not_after.timestamp(),
        self_signed: c.issuer().as_raw() == c.subject().as_raw(),
        chain_length: chain.len(),
        name_matches: name_matches(&c, host),
        key_type,
        key_bits,
        weak_signature: WEAK_SIGNATURES.iter().find(|w| w.0 == oid).map(|w| w.1),
        chain_verdict: trust.verify(chain, host),
    })
}

/// RFC 9525: DNS names and addresses of subjectAltName; the subject's CN
/// only when there is no subjectAltName. One leftmost `*` label matches.
fn name_matches(c: &x509_parser::certificate::X509Certificate<'_>, host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let ip: Option<std::net::IpAddr> = host.parse().ok();
    let dns = |name: &str| match ip {
        Some(_) => false,
        None => dns_matches(name, host),
    };
    match c.subject_alternative_name() {
        Ok(Some(san)) => san.value.general_names.iter().any(|g| match g {
            GeneralName::DNSName(n) => dns(n),
            GeneralName::IPAddress(b) => ip.is_some_and(|ip| match ip {
                std::net::IpAddr::V4(a) => *b == a.octets().as_slice(),
                std::net::IpAddr::V6(a) => *b == a.octets().as_slice(),
            }),
            _ => false,
        }),
        _ => c.subject().iter_common_name().any(|cn| {
            cn.as_str()
                .is_ok_and(|n| dns(n) || ip.is_some_and(|ip| n == ip.to_string()))
        }),
    }
}

fn dns_matches(pattern: &str, host: &str) -> bool {
    let (p, h) = (pattern.to_ascii_lowercase(), host.to_ascii_lowercase());
    let (p, h) = (p.trim_end_matches('.'), h.trim_end_matches('.'));
    match p.strip_prefix("*.") {
        Some(rest) => h
            .split_once('.')
            .is_some_and(|(label, tail)| !label.is_empty() && tail == rest),
        None => p == h,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        assert!(dns_matches("*.example.org", "pacs.example.org"));
        assert!(!dns_matches("*.example.org", "a.pacs.example.org"));
        assert!(!dns_matches("*.example.org", "example.org"));
        assert!(dns_matches("PACS.example.org.", "pacs.example.org"));
        assert!(!dns_matches("pacs.example.org", "pacs.example.net"));
    }

    #[test]
    fn generated_certificate() {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["pacs.example".to_string()]).unwrap();
        params
            .subject_alt_names
            .push(rcgen::SanType::IpAddress("127.0.0.1".parse().unwrap()));
        let cert = params.self_signed(&key).unwrap();
        let chain = vec![cert.der().to_vec()];
        let none = TrustStore::empty();
        let f = facts(&chain, "127.0.0.1", &none).unwrap();
        assert!(f.self_signed && f.name_matches);
        assert_eq!((f.key_type, f.weak_signature), ("EC", None));
        assert!(f.not_after > f.not_before);
        assert!(facts(&chain, "pacs.example", &none).unwrap().name_matches);
        assert!(!facts(&chain, "10.0.0.1", &none).unwrap().name_matches);
        assert!(!facts(&chain, "other.example", &none).unwrap().name_matches);
        assert_eq!(facts(&[b"junk".to_vec()], "x", &none), None);
    }

    /// A server certificate issued by a CA: unknown issuer against the
    /// system roots, trusted once the CA's PEM is added; the name is judged
    /// apart; a certificate of another CA stays unknown.
    #[test]
    fn chain_against_the_trust_store() {
        let ca = |cn: &str| {
            let key = rcgen::KeyPair::generate().unwrap();
            let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
            p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
            p.distinguished_name.push(rcgen::DnType::CommonName, cn);
            let cert = p.self_signed(&key).unwrap();
            (rcgen::Issuer::new(p, key), cert)
        };
        let (issuer, ca_cert) = ca("Site CA");
        let (_, other_ca) = ca("Other CA");
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec!["pacs.example".to_string()]).unwrap();
        let leaf = params.signed_by(&key, &issuer).unwrap();
        let chain = vec![leaf.der().to_vec()];
        let dir = tempfile::tempdir().unwrap();
        let pem = |name: &str, c: &rcgen::Certificate| {
            let path = dir.path().join(name);
            std::fs::write(&path, c.pem()).unwrap();
            path
        };
        let mut site = TrustStore::system();
        assert_eq!(
            facts(&chain, "pacs.example", &site).unwrap().chain_verdict,
            "unknown issuer"
        );
        let mut other = TrustStore::empty();
        other.add_pem_file(&pem("other.pem", &other_ca)).unwrap();
        assert_eq!(
            facts(&chain, "pacs.example", &other).unwrap().chain_verdict,
            "unknown issuer"
        );
        site.add_pem_file(&pem("ca.pem", &ca_cert)).unwrap();
        let f = facts(&chain, "pacs.example", &site).unwrap();
        assert_eq!((f.chain_verdict, f.self_signed), (TRUSTED, false));
        let f = facts(&chain, "other.example", &site).unwrap();
        assert_eq!((f.chain_verdict, f.name_matches), (TRUSTED, false));
        assert!(
            site.description.contains("ca.pem (1)"),
            "{}",
            site.description
        );
        assert!(TrustStore::empty()
            .add_pem_file(&dir.path().join("missing.pem"))
            .is_err());
        assert_eq!(
            facts(&chain, "pacs.example", &TrustStore::empty())
                .unwrap()
                .chain_verdict,
            "not checked (no trust anchor)"
        );
    }
}
