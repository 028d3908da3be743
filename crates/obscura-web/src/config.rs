//! The `[web]` section of `obscura serve`'s config: the listener, TLS, the
//! principals and their credentials, the JWT issuers, static grants,
//! limits. Secrets are never in it: TLS keys and bearer-token hashes live
//! in files readable by their owner only.

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A configuration problem (names config keys and principals, never data).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The section is invalid TOML for this schema.
    #[error("[web]: {0}")]
    Toml(String),
    /// The content is inconsistent.
    #[error("[web]: {0}")]
    Invalid(String),
    /// A file named by the section cannot be used.
    #[error("{0}: {1}")]
    File(PathBuf, String),
}

/// `[web]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// TLS (required unless `plain = true` on a loopback address).
    pub tls: Option<WebTls>,
    /// Serve plain HTTP (no TLS): only on a loopback address, and only when set.
    #[serde(default)]
    pub plain: bool,
    /// Bearer tokens: a file (mode 0600) of lines `<sha256 hex of the token> <principal>`.
    pub tokens_file: Option<PathBuf>,
    /// Where STOW-RS requests are spooled while they arrive (default: the system's temp folder).
    pub temp_dir: Option<PathBuf>,
    /// Largest instance (one part) a STOW-RS request may carry, bytes.
    #[serde(default = "default_max_part")]
    pub max_part_bytes: u64,
    /// Largest STOW-RS request body, bytes.
    #[serde(default = "default_max_request")]
    pub max_request_bytes: u64,
    /// Most parts in one STOW-RS request.
    #[serde(default = "default_max_parts")]
    pub max_parts: usize,
    /// A client silent this long (headers, or between body chunks) is dropped, seconds.
    #[serde(default = "default_idle")]
    pub idle_timeout_secs: u64,
    /// Concurrent connections.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Who may call by certificate or opaque token (default deny: nobody else).
    #[serde(default, rename = "principal")]
    pub principals: Vec<PrincipalConfig>,
    /// Identity providers whose bearer JWTs are accepted (`[[web.issuer]]`).
    #[serde(default, rename = "issuer")]
    pub issuers: Vec<obscura_access::IssuerConfig>,
    /// Grants fixed in the config (`[[web.grant]]`); others are in the
    /// archive's grant store (`obscura grant`).
    #[serde(default, rename = "grant")]
    pub grants: Vec<obscura_access::GrantConfig>,
    /// The URL clients reach this server at (`obscura share` prints links
    /// under it; default: the scheme and `listen`).
    pub public_url: Option<String>,
}

fn default_max_part() -> u64 {
    4 << 30
}
fn default_max_request() -> u64 {
    16 << 30
}
fn default_max_parts() -> usize {
    20_000
}
fn default_idle() -> u64 {
    60
}
fn default_max_connections() -> usize {
    256
}

/// `[web.tls]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebTls {
    /// Our certificate chain (PEM).
    pub cert: PathBuf,
    /// Our private key (PEM; mode 0600).
    pub key: PathBuf,
    /// Client certificates signed by this CA are verified and may
    /// authenticate a principal (mutual TLS); a client without one may still
    /// present a bearer token.
    pub client_ca: Option<PathBuf>,
}

/// `[[web.principal]]`: one caller by certificate or opaque token, and
/// either the tenant it owns or, without one, only what its grants allow.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrincipalConfig {
    /// Its name (in the tokens file and the logs).
    pub name: String,
    /// The tenant it owns, every study and action (name or id, `obscura
    /// tenant list`): the tenant's own systems. Leave out for a third party:
    /// then only its grants decide.
    pub tenant: Option<String>,
    /// SHA-256 fingerprints (DER, hex, `:` allowed) of client certificates that are this principal.
    #[serde(default)]
    pub client_cert_sha256: Vec<String>,
    /// Client certificate subjects (`CN=reader-1,O=Clinic`, RFC 4514 order as written
    /// in the certificate, most significant first) that are this principal.
    #[serde(default)]
    pub client_cert_subject: Vec<String>,
}

impl WebConfig {
    /// Parse the section's TOML (as the serve config holds it); relative
    /// paths resolve against `base_dir`.
    pub fn from_toml(value: toml::Table, base_dir: &Path) -> Result<WebConfig, ConfigError> {
        let mut c: WebConfig = toml::Value::Table(value)
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Toml(e.to_string()))?;
        let abs = |p: &Path| {
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                base_dir.join(p)
            }
        };
        if let Some(t) = &mut c.tls {
            t.cert = abs(&t.cert);
            t.key = abs(&t.key);
            t.client_ca = t.client_ca.as_deref().map(abs);
        }
        c.tokens_file = c.tokens_file.as_deref().map(abs);
        for i in &mut c.issuers {
            i.jwks_file = i.jwks_file.as_deref().map(abs);
            i.jwks_ca = i.jwks_ca.as_deref().map(abs);
        }
        c.temp_dir = c.temp_dir.as_deref().map(abs);
        c.check()?;
        Ok(c)
    }

    fn check(&self) -> Result<(), ConfigError> {
        let bad = |m: &str| Err(ConfigError::Invalid(m.to_string()));
        match (&self.tls, self.plain) {
            (Some(_), true) => return bad("set either [web.tls] or plain = true, not both"),
            (None, false) => return bad("set [web.tls], or plain = true for a loopback address"),
            (None, true) if !self.listen.ip().is_loopback() => {
                return bad("plain HTTP is allowed on a loopback address only: set [web.tls]")
            }
            _ => {}
        }
        if self.principals.is_empty() && self.issuers.is_empty() {
            return bad("no [[web.principal]] and no [[web.issuer]]: nobody could call");
        }
        let mut issuers = std::collections::BTreeSet::new();
        for i in &self.issuers {
            if !issuers.insert(i.name.as_str()) {
                return Err(ConfigError::Invalid(format!(
                    "issuer `{}` is defined twice",
                    i.name
                )));
            }
        }
        let mut names = std::collections::BTreeSet::new();
        for p in &self.principals {
            if p.name.is_empty()
                || !p
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'))
            {
                return bad("principal names are letters, digits, - _ . @");
            }
            if !names.insert(p.name.as_str()) {
                return Err(ConfigError::Invalid(format!(
                    "principal `{}` is defined twice",
                    p.name
                )));
            }
            for f in &p.client_cert_sha256 {
                if crate::auth::parse_fingerprint(f).is_none() {
                    return Err(ConfigError::Invalid(format!(
                        "principal `{}`: client_cert_sha256 is not 64 hex digits",
                        p.name
                    )));
                }
            }
            let has_certs = !p.client_cert_sha256.is_empty() || !p.client_cert_subject.is_empty();
            if has_certs && self.tls.as_ref().is_none_or(|t| t.client_ca.is_none()) {
                return Err(ConfigError::Invalid(format!(
                    "principal `{}` names client certificates but [web.tls] has no client_ca",
                    p.name
                )));
            }
        }
        if self.max_part_bytes == 0 || self.max_request_bytes == 0 || self.max_parts == 0 {
            return bad("limits must be positive");
        }
        Ok(())
    }

    /// The idle timeout.
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_timeout_secs.max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<WebConfig, ConfigError> {
        WebConfig::from_toml(toml::from_str(text).unwrap(), Path::new("/etc/obscura"))
    }

    #[test]
    fn plain_only_on_loopback_and_only_when_said() {
        let p = "[[principal]]\nname = \"a\"\ntenant = \"t\"\n";
        assert!(parse(&format!("listen = \"127.0.0.1:8080\"\nplain = true\n{p}")).is_ok());
        assert!(parse(&format!("listen = \"0.0.0.0:8080\"\nplain = true\n{p}")).is_err());
        assert!(parse(&format!("listen = \"127.0.0.1:8080\"\n{p}")).is_err());
        let tls = "[tls]\ncert = \"c.pem\"\nkey = \"k.pem\"\n";
        let c = parse(&format!("listen = \"0.0.0.0:8443\"\n{p}{tls}")).unwrap();
        assert_eq!(
            c.tls.unwrap().cert,
            PathBuf::from("/etc/obscura/c.pem"),
            "relative to the config"
        );
    }

    #[test]
    fn refuses_certificates_without_a_client_ca_and_unknown_keys() {
        let tls = "[tls]\ncert = \"c.pem\"\nkey = \"k.pem\"\n";
        let p = "[[principal]]\nname = \"a\"\ntenant = \"t\"\nclient_cert_sha256 = [\"00\"]\n";
        assert!(parse(&format!("listen = \"0.0.0.0:1\"\n{tls}{p}")).is_err());
        assert!(parse("listen = \"127.0.0.1:1\"\nplain = true\nfoo = 1\n").is_err());
        assert!(parse("listen = \"127.0.0.1:1\"\nplain = true\n").is_err());
    }
}
