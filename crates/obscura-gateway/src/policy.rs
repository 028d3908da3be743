//! Default deny: an association is admitted only when a configured peer
//! matches every one of calling AE, called AE, source address, transport
//! (plain only where configured) and, if set, client certificate.

use crate::config::{normalize_fingerprint, Cidr, Config};
use std::net::IpAddr;

/// Who is calling, as the protocol layer saw it.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Calling AE title (trimmed).
    pub calling_ae: String,
    /// Called AE title (trimmed).
    pub called_ae: String,
    /// Source address.
    pub address: IpAddr,
    /// SHA-256 of the client certificate (DER), if TLS gave one.
    pub client_cert_sha256: Option<String>,
    /// Whether the association runs over TLS.
    pub tls: bool,
}

struct Rule {
    name: String,
    calling_ae: String,
    called_ae: String,
    nets: Vec<Cidr>,
    cert: Option<String>,
    plain: bool,
}

/// The admission policy compiled from the config.
pub struct Policy {
    rules: Vec<Rule>,
}

impl Policy {
    /// Compile the config's peers.
    pub fn new(config: &Config) -> Policy {
        let rules = config
            .peers
            .iter()
            .map(|p| Rule {
                name: p.name.clone(),
                calling_ae: p.calling_ae.trim().to_string(),
                called_ae: p
                    .called_ae
                    .clone()
                    .unwrap_or_else(|| config.server.ae_title.clone())
                    .trim()
                    .to_string(),
                nets: p.addresses.iter().filter_map(|a| Cidr::parse(a)).collect(),
                cert: p
                    .client_cert_sha256
                    .as_deref()
                    .and_then(normalize_fingerprint),
                plain: p.plain,
            })
            .collect();
        Policy { rules }
    }

    /// The admitted peer's name, or why not (no PHI: AE titles and the
    /// address are not patient data).
    pub fn admit(&self, c: &Caller) -> Result<String, String> {
        let calling = c.calling_ae.trim();
        let called = c.called_ae.trim();
        let mut why = "unknown calling AE title";
        for r in &self.rules {
            if r.calling_ae != calling {
                continue;
            }
            if r.called_ae != called {
                why = "wrong called AE title";
                continue;
            }
            if !r.nets.iter().any(|n| n.contains(c.address)) {
                why = "source address not allowed";
                continue;
            }
            if !c.tls && !r.plain {
                why = "peer must use TLS";
                continue;
            }
            if let Some(want) = &r.cert {
                let got = c
                    .client_cert_sha256
                    .as_deref()
                    .and_then(normalize_fingerprint);
                if got.as_deref() != Some(want.as_str()) {
                    why = "client certificate does not match";
                    continue;
                }
            }
            return Ok(r.name.clone());
        }
        Err(why.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn policy() -> Policy {
        let text = r#"
[server]
ae_title = "GW"
listen = "127.0.0.1:0"
data_dir = "d"
[server.tls]
listen = "127.0.0.1:0"
cert = "c.pem"
key = "k.pem"
[[peer]]
name = "plainpeer"
calling_ae = "A"
addresses = ["127.0.0.1"]
plain = true
[[peer]]
name = "tlspeer"
calling_ae = "B"
called_ae = "OTHER"
addresses = ["10.0.0.0/8"]
client_cert_sha256 = "AB:CD:ef0123456789abcdef0123456789abcdef0123456789abcdef0123456789"
"#;
        Policy::new(&Config::parse(text, Path::new(".")).unwrap())
    }

    fn caller(calling: &str, called: &str, ip: &str, tls: bool, cert: Option<&str>) -> Caller {
        Caller {
            calling_ae: calling.into(),
            called_ae: called.into(),
            address: ip.parse().unwrap(),
            client_cert_sha256: cert.map(String::from),
            tls,
        }
    }

    #[test]
    fn default_deny() {
        let p = policy();
        assert_eq!(
            p.admit(&caller("A", "GW", "127.0.0.1", false, None)),
            Ok("plainpeer".into())
        );
        assert!(p
            .admit(&caller("Z", "GW", "127.0.0.1", false, None))
            .is_err());
        assert!(p
            .admit(&caller("A", "XX", "127.0.0.1", false, None))
            .is_err());
        assert!(p
            .admit(&caller("A", "GW", "127.0.0.2", false, None))
            .is_err());
        let fp = "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789";
        assert_eq!(
            p.admit(&caller("B", "OTHER", "10.2.3.4", true, Some(fp))),
            Ok("tlspeer".into())
        );
        // plain not allowed for this peer; wrong certificate; no certificate
        assert!(p
            .admit(&caller("B", "OTHER", "10.2.3.4", false, Some(fp)))
            .is_err());
        assert!(p
            .admit(&caller(
                "B",
                "OTHER",
                "10.2.3.4",
                true,
                Some(&fp.replace('a', "b"))
            ))
            .is_err());
        assert!(p
            .admit(&caller("B", "OTHER", "10.2.3.4", true, None))
            .is_err());
    }
}
