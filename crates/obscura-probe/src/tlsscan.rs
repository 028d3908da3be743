//! TLS versions and cipher suites a server accepts, by ClientHellos of our
//! own (rustls speaks only TLS 1.2/1.3, and only strong suites): each hello
//! offers one protocol version and a chosen list of suites; the answer is
//! read up to the server's Certificate message (in clear up to TLS 1.2),
//! then the connection is dropped. No key exchange, nothing sent after.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// TLS 1.0, 1.1, 1.2 as (wire version, name).
pub(crate) const TLS10: (u16, &str) = (0x0301, "TLSv1_0");
/// TLS 1.1.
pub(crate) const TLS11: (u16, &str) = (0x0302, "TLSv1_1");
/// TLS 1.2.
pub(crate) const TLS12: (u16, &str) = (0x0303, "TLSv1_2");

/// How a cipher suite fares against BCP 195 (RFC 9325 section 4.1-4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SuiteClass {
    /// ECDHE/DHE with an AEAD cipher: what RFC 9325 recommends.
    Recommended,
    /// Forward secret but CBC (no AEAD).
    NoAead,
    /// RSA key transport: no forward secrecy.
    NoForwardSecrecy,
    /// NULL, anonymous, export, DES, RC4 or 3DES: MUST NOT (RFC 9325 4.1).
    Broken,
}

/// (IANA id, name, class) of the suites the probe knows.
pub(crate) const SUITES: &[(u16, &str, SuiteClass)] = {
    use SuiteClass::*;
    &[
        (0xC02B, "ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", Recommended),
        (0xC02C, "ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", Recommended),
        (0xC02F, "ECDHE_RSA_WITH_AES_128_GCM_SHA256", Recommended),
        (0xC030, "ECDHE_RSA_WITH_AES_256_GCM_SHA384", Recommended),
        (
            0xCCA8,
            "ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
            Recommended,
        ),
        (
            0xCCA9,
            "ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
            Recommended,
        ),
        (0x009E, "DHE_RSA_WITH_AES_128_GCM_SHA256", Recommended),
        (0x009F, "DHE_RSA_WITH_AES_256_GCM_SHA384", Recommended),
        (0xC009, "ECDHE_ECDSA_WITH_AES_128_CBC_SHA", NoAead),
        (0xC00A, "ECDHE_ECDSA_WITH_AES_256_CBC_SHA", NoAead),
        (0xC013, "ECDHE_RSA_WITH_AES_128_CBC_SHA", NoAead),
        (0xC014, "ECDHE_RSA_WITH_AES_256_CBC_SHA", NoAead),
        (0xC023, "ECDHE_ECDSA_WITH_AES_128_CBC_SHA256", NoAead),
        (0xC027, "ECDHE_RSA_WITH_AES_128_CBC_SHA256", NoAead),
        (0x0033, "DHE_RSA_WITH_AES_128_CBC_SHA", NoAead),
        (0x0039, "DHE_RSA_WITH_AES_256_CBC_SHA", NoAead),
        (0x0067, "DHE_RSA_WITH_AES_128_CBC_SHA256", NoAead),
        (0x009C, "RSA_WITH_AES_128_GCM_SHA256", NoForwardSecrecy),
        (0x009D, "RSA_WITH_AES_256_GCM_SHA384", NoForwardSecrecy),
        (0x002F, "RSA_WITH_AES_128_CBC_SHA", NoForwardSecrecy),
        (0x0035, "RSA_WITH_AES_256_CBC_SHA", NoForwardSecrecy),
        (0x003C, "RSA_WITH_AES_128_CBC_SHA256", NoForwardSecrecy),
        (0x003D, "RSA_WITH_AES_256_CBC_SHA256", NoForwardSecrecy),
        (0x000A, "RSA_WITH_3DES_EDE_CBC_SHA", Broken),
        (0xC012, "ECDHE_RSA_WITH_3DES_EDE_CBC_SHA", Broken),
        (0x0016, "DHE_RSA_WITH_3DES_EDE_CBC_SHA", Broken),
        (0x0005, "RSA_WITH_RC4_128_SHA", Broken),
        (0x0004, "RSA_WITH_RC4_128_MD5", Broken),
        (0xC011, "ECDHE_RSA_WITH_RC4_128_SHA", Broken),
        (0x0009, "RSA_WITH_DES_CBC_SHA", Broken),
        (0x0003, "RSA_EXPORT_WITH_RC4_40_MD5", Broken),
        (0x0008, "RSA_EXPORT_WITH_DES40_CBC_SHA", Broken),
        (0x0014, "DHE_RSA_EXPORT_WITH_DES40_CBC_SHA", Broken),
        (0x0001, "RSA_WITH_NULL_MD5", Broken),
        (0x0002, "RSA_WITH_NULL_SHA", Broken),
        (0x003B, "RSA_WITH_NULL_SHA256", Broken),
        (0xC010, "ECDHE_RSA_WITH_NULL_SHA", Broken),
        (0x0018, "DH_anon_WITH_RC4_128_MD5", Broken),
        (0x0034, "DH_anon_WITH_AES_128_CBC_SHA", Broken),
        (0xC018, "ECDH_anon_WITH_AES_128_CBC_SHA", Broken),
    ]
};

/// The suite ids of the given classes, in table order (strong first).
pub(crate) fn suites_of(classes: &[SuiteClass]) -> Vec<u16> {
    SUITES
        .iter()
        .filter(|s| classes.contains(&s.2))
        .map(|s| s.0)
        .collect()
}

/// Name and class of a suite id ("0xABCD" and `Broken` when unknown: the
/// server chose something not offered).
pub(crate) fn suite(id: u16) -> (String, SuiteClass) {
    SUITES
        .iter()
        .find(|s| s.0 == id)
        .map(|s| (s.1.to_string(), s.2))
        .unwrap_or((format!("0x{id:04X}"), SuiteClass::Broken))
}

/// What the ClientHellos of [`hello`] found (BCP 195 / RFC 9325).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TlsPolicy {
    /// TLS 1.0, 1.1, 1.2 offered alone: the versions the server accepted.
    pub accepted_versions: Vec<&'static str>,
    /// The suite the server chose when offered every known suite, at the
    /// highest of those versions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preferred_suite: Option<String>,
    /// Per class of weak suites offered alone at that version: the suite
    /// the server chose (absent: refused).
    pub weak_suites_accepted: Vec<(SuiteClass, String)>,
    /// The end-entity certificate, read from the TLS 1.0-1.2 handshake.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate: Option<crate::cert::CertFacts>,
    /// Answers that were neither a ServerHello nor an alert.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<String>,
}

/// A ClientHello offering exactly `version` and `suites`, with the
/// extensions servers expect (SNI for a host name, groups, point formats,
/// signature algorithms, extended master secret, renegotiation info).
pub(crate) fn client_hello(version: u16, suites: &[u16], sni: Option<&str>) -> Vec<u8> {
    let mut random = [0u8; 32];
    let _ = getrandom::getrandom(&mut random);
    let mut ext = Vec::new();
    let mut push_ext = |ty: u16, body: &[u8]| {
        ext.extend_from_slice(&ty.to_be_bytes());
        ext.extend_from_slice(&(body.len() as u16).to_be_bytes());
        ext.extend_from_slice(body);
    };
    let is_ip = |n: &str| {
        n.trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok()
    };
    if let Some(name) = sni.filter(|n| !is_ip(n)) {
        let n = name.as_bytes();
        let mut b = ((n.len() + 3) as u16).to_be_bytes().to_vec();
        b.push(0);
        b.extend_from_slice(&(n.len() as u16).to_be_bytes());
        b.extend_from_slice(n);
        push_ext(0x0000, &b);
    }
    // x25519, secp256r1, secp384r1, secp521r1, ffdhe2048
    push_ext(
        0x000A,
        &[
            0, 10, 0x00, 0x1D, 0x00, 0x17, 0x00, 0x18, 0x00, 0x19, 0x01, 0x00,
        ],
    );
    push_ext(0x000B, &[1, 0]);
    // ecdsa/rsa-pss/rsa-pkcs1 with SHA-256/384/512, then SHA-1 for old servers
    let schemes: [u16; 11] = [
        0x0403, 0x0503, 0x0603, 0x0804, 0x0805, 0x0806, 0x0401, 0x0501, 0x0601, 0x0201, 0x0203,
    ];
    let mut b = ((schemes.len() * 2) as u16).to_be_bytes().to_vec();
    schemes
        .iter()
        .for_each(|s| b.extend_from_slice(&s.to_be_bytes()));
    push_ext(0x000D, &b);
    push_ext(0x0017, &[]);
    push_ext(0xFF01, &[0]);

    let mut body = version.to_be_bytes().to_vec();
    body.extend_from_slice(&random);
    body.push(0); // no session id
    body.extend_from_slice(&((suites.len() * 2) as u16).to_be_bytes());
    suites
        .iter()
        .for_each(|s| body.extend_from_slice(&s.to_be_bytes()));
    body.extend_from_slice(&[1, 0]); // null compression only
    body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
    body.extend_from_slice(&ext);

    let mut hs = vec![1u8];
    hs.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    hs.extend_from_slice(&body);
    let mut record = vec![22u8, 0x03, 0x01];
    record.extend_from_slice(&(hs.len() as u16).to_be_bytes());
    record.extend_from_slice(&hs);
    record
}

/// What the server answered to one ClientHello.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HelloAnswer {
    /// A ServerHello: the version and suite chosen, and the certificate chain
    /// (DER, end-entity first) if it came before the answer was cut.
    Accepted {
        version: u16,
        suite: u16,
        chain: Vec<Vec<u8>>,
    },
    /// A TLS alert (its description code): nothing acceptable was offered.
    Alert(u8),
    /// The connection closed, timed out or answered something that is not TLS.
    Failed(&'static str),
}

const MAX_ANSWER: usize = 256 * 1024;

/// Parses handshake messages out of what the server sent so far: `None`
/// while more bytes are needed.
pub(crate) fn parse_answer(data: &[u8]) -> Option<HelloAnswer> {
    let mut hs = Vec::new();
    let mut rest = data;
    let mut complete_records = true;
    while !rest.is_empty() {
        if rest.len() < 5 {
            complete_records = false;
            break;
        }
        let (ty, len) = (rest[0], u16::from_be_bytes([rest[3], rest[4]]) as usize);
        if rest[1] != 3 || !matches!(ty, 20..=23) {
            return Some(HelloAnswer::Failed("not TLS (invalid record)"));
        }
        if rest.len() < 5 + len {
            complete_records = false;
            break;
        }
        let frag = &rest[5..5 + len];
        match ty {
            21 if hs.is_empty() => {
                return Some(match frag.get(1) {
                    Some(&code) => HelloAnswer::Alert(code),
                    None => HelloAnswer::Failed("not TLS (invalid record)"),
                })
            }
            22 => hs.extend_from_slice(frag),
            _ => break,
        }
        rest = &rest[5 + len..];
    }
    let mut server_hello = None;
    let mut chain = Vec::new();
    let mut msgs = hs.as_slice();
    while msgs.len() >= 4 {
        let len = u32::from_be_bytes([0, msgs[1], msgs[2], msgs[3]]) as usize;
        if msgs.len() < 4 + len {
            break;
        }
        let body = &msgs[4..4 + len];
        match msgs[0] {
            2 => match parse_server_hello(body) {
                Some(v) => server_hello = Some(v),
                None => return Some(HelloAnswer::Failed("not TLS (bad ServerHello)")),
            },
            11 => chain = parse_certificates(body),
            // ServerKeyExchange, CertificateRequest: keep reading
            12 | 13 => {}
            // ServerHelloDone: all there is
            14 => break,
            _ => break,
        }
        let done = msgs[0] == 11 || msgs[0] == 14;
        msgs = &msgs[4 + len..];
        if done {
            break;
        }
    }
    let (version, suite) = server_hello?;
    let finished = !chain.is_empty()
        || hs.windows(4).any(|w| w == [14, 0, 0, 0])
        || (complete_records && data.len() >= MAX_ANSWER);
    finished.then_some(HelloAnswer::Accepted {
        version,
        suite,
        chain,
    })
}

fn parse_server_hello(b: &[u8]) -> Option<(u16, u16)> {
    let version = u16::from_be_bytes([*b.first()?, *b.get(1)?]);
    let sid = *b.get(34)? as usize;
    let at = 35 + sid;
    let suite = u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]);
    Some((version, suite))
}

fn parse_certificates(b: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let Some(list) = b.get(3..) else { return out };
    let mut rest = list;
    while rest.len() >= 3 {
        let len = u32::from_be_bytes([0, rest[0], rest[1], rest[2]]) as usize;
        let Some(der) = rest.get(3..3 + len) else {
            break;
        };
        out.push(der.to_vec());
        rest = &rest[3 + len..];
    }
    out
}

/// Sends one ClientHello and reads the answer, within `limit`.
pub(crate) async fn hello(
    addr: SocketAddr,
    version: u16,
    suites: &[u16],
    sni: Option<&str>,
    limit: Duration,
) -> HelloAnswer {
    let run = async {
        let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
        s.write_all(&client_hello(version, suites, sni))
            .await
            .ok()?;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 16384];
        loop {
            let n = s.read(&mut chunk).await.unwrap_or(0);
            if n == 0 {
                return Some(
                    parse_answer(&buf).unwrap_or(HelloAnswer::Failed("closed before an answer")),
                );
            }
            buf.extend_from_slice(&chunk[..n]);
            if let Some(a) = parse_answer(&buf) {
                return Some(a);
            }
            if buf.len() >= MAX_ANSWER {
                return Some(HelloAnswer::Failed("answer too long"));
            }
        }
    };
    match tokio::time::timeout(limit, run).await {
        Ok(Some(a)) => a,
        Ok(None) => HelloAnswer::Failed("connection failed"),
        Err(_) => HelloAnswer::Failed("no answer (timed out)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(ty: u8, body: &[u8]) -> Vec<u8> {
        let mut r = vec![ty, 3, 3];
        r.extend_from_slice(&(body.len() as u16).to_be_bytes());
        r.extend_from_slice(body);
        r
    }

    fn handshake(ty: u8, body: &[u8]) -> Vec<u8> {
        let mut h = vec![ty];
        h.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
        h.extend_from_slice(body);
        h
    }

    #[test]
    fn hello_is_well_formed() {
        let h = client_hello(0x0301, &[0x002F, 0x000A], Some("pacs.example"));
        assert_eq!(&h[..3], &[22, 3, 1]);
        assert_eq!(u16::from_be_bytes([h[3], h[4]]) as usize, h.len() - 5);
        assert_eq!(h[5], 1);
        assert_eq!(&h[9..11], &[3, 1]);
        // session id empty, then two suites
        assert_eq!(h[43], 0);
        assert_eq!(&h[44..50], &[0, 4, 0x00, 0x2F, 0x00, 0x0A]);
        assert!(h.windows(12).any(|w| w == b"pacs.example"));
        // an address is never sent as SNI
        let ip = client_hello(0x0303, &[0x002F], Some("127.0.0.1"));
        assert!(!ip.windows(9).any(|w| w == b"127.0.0.1"));
    }

    #[test]
    fn answers_parse() {
        let mut sh = vec![3, 1];
        sh.extend_from_slice(&[7; 32]);
        sh.push(2);
        sh.extend_from_slice(&[9, 9, 0x00, 0x0A, 0]);
        let mut certs = Vec::new();
        for der in [&b"leaf"[..], &b"ca"[..]] {
            certs.extend_from_slice(&(der.len() as u32).to_be_bytes()[1..]);
            certs.extend_from_slice(der);
        }
        let mut cert_msg = (certs.len() as u32).to_be_bytes()[1..].to_vec();
        cert_msg.extend_from_slice(&certs);
        let mut hs = handshake(2, &sh);
        hs.extend(handshake(11, &cert_msg));
        let wire = record(22, &hs);
        // cut anywhere before the end: more is needed
        for cut in [0, 3, 20, wire.len() - 1] {
            assert_eq!(parse_answer(&wire[..cut]), None, "cut {cut}");
        }
        assert_eq!(
            parse_answer(&wire),
            Some(HelloAnswer::Accepted {
                version: 0x0301,
                suite: 0x000A,
                chain: vec![b"leaf".to_vec(), b"ca".to_vec()],
            })
        );
        assert_eq!(
            parse_answer(&record(21, &[2, 70])),
            Some(HelloAnswer::Alert(70))
        );
        assert_eq!(
            parse_answer(b"\x02\x00\x00\x00\x00\x0a"),
            Some(HelloAnswer::Failed("not TLS (invalid record)"))
        );
        assert_eq!(suite(0x000A).1, SuiteClass::Broken);
        assert_eq!(suite(0xC02F).1, SuiteClass::Recommended);
        assert_eq!(suite(0x1234).0, "0x1234");
    }
}
