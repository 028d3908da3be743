//! Facts about a server's certificate (public data): validity, issuer,
//! names, key size and signature hash, for the BCP 195 / RFC 9325 and
//! RFC 9525 checks. Names in the certificate are not copied to the report.

use serde::Serialize;
use x509_parser::extensions::GeneralName;
use x509_parser::public_key::PublicKey;

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
}

/// Reads the end-entity certificate (`chain[0]`); `None` when it does not parse.
pub fn facts(chain: &[Vec<u8>], host: &str) -> Option<CertFacts> {
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
        let f = facts(&chain, "127.0.0.1").unwrap();
        assert!(f.self_signed && f.name_matches);
        assert_eq!((f.key_type, f.weak_signature), ("EC", None));
        assert!(f.not_after > f.not_before);
        assert!(facts(&chain, "pacs.example").unwrap().name_matches);
        assert!(!facts(&chain, "10.0.0.1").unwrap().name_matches);
        assert!(!facts(&chain, "other.example").unwrap().name_matches);
        assert_eq!(facts(&[b"junk".to_vec()], "x"), None);
    }
}
