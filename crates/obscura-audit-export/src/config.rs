//! `[[audit.syslog]]` of the `serve` config: where to send, in which format.

use crate::sender::Format;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// One syslog receiver, as written in the config (paths resolved).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyslogSection {
    /// `host:port` (RFC 5425's port is 6514).
    pub address: String,
    /// The name in the receiver's certificate (default: the host of `address`).
    pub server_name: Option<String>,
    /// The CA certificate(s) the receiver's certificate must chain to (PEM).
    pub ca: PathBuf,
    /// A client certificate to present (PEM), for receivers that ask.
    pub cert: Option<PathBuf>,
    /// Its private key (PEM, mode 0600).
    pub key: Option<PathBuf>,
    /// `dicom` (PS3.15 A.5 XML, the default) or `json`.
    #[serde(default = "default_format")]
    pub format: String,
    /// AuditSourceID (default: the audit log's origin).
    pub source_id: Option<String>,
    /// AuditEnterpriseSiteID.
    pub site_id: Option<String>,
    /// Records held while the receiver is unreachable.
    #[serde(default = "default_queue")]
    pub queue: usize,
    /// Send every signed checkpoint too (default true).
    #[serde(default = "default_true")]
    pub checkpoints: bool,
}

fn default_format() -> String {
    "dicom".into()
}

fn default_queue() -> usize {
    100_000
}

fn default_true() -> bool {
    true
}

impl SyslogSection {
    /// Parse one `[[audit.syslog]]` table; relative paths resolve against `base`.
    pub fn from_toml(table: toml::Table, base: &Path) -> Result<Self, crate::Error> {
        let mut s: SyslogSection = table
            .try_into()
            .map_err(|e| crate::Error::Config(format!("[[audit.syslog]]: {e}")))?;
        s.ca = base.join(&s.ca);
        s.cert = s.cert.map(|p| base.join(p));
        s.key = s.key.map(|p| base.join(p));
        if s.cert.is_some() != s.key.is_some() {
            return Err(crate::Error::Config(
                "[[audit.syslog]]: set both `cert` and `key`, or neither".into(),
            ));
        }
        s.format()?;
        if s.server_name.is_none() {
            let host = s
                .address
                .rsplit_once(':')
                .map(|(h, _)| h.trim_matches(['[', ']']))
                .ok_or_else(|| {
                    crate::Error::Config(format!(
                        "[[audit.syslog]] address {}: expected host:port",
                        s.address
                    ))
                })?;
            s.server_name = Some(host.to_string());
        }
        Ok(s)
    }

    /// The message format.
    pub fn format(&self) -> Result<Format, crate::Error> {
        match self.format.as_str() {
            "dicom" => Ok(Format::Dicom),
            "json" => Ok(Format::Json),
            f => Err(crate::Error::Config(format!(
                "[[audit.syslog]] format `{f}`: expected `dicom` or `json`"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_resolves() {
        let t: toml::Table =
            toml::from_str("address = \"siem.example:6514\"\nca = \"ca.pem\"\nformat = \"json\"")
                .unwrap();
        let s = SyslogSection::from_toml(t, Path::new("/etc/obscura")).unwrap();
        assert_eq!(s.ca, Path::new("/etc/obscura/ca.pem"));
        assert_eq!(s.server_name.as_deref(), Some("siem.example"));
        assert_eq!(s.format().unwrap(), Format::Json);
        assert_eq!(s.queue, 100_000);
        let bad: toml::Table =
            toml::from_str("address = \"x:1\"\nca = \"c\"\nformat = \"xml\"").unwrap();
        assert!(SyslogSection::from_toml(bad, Path::new("/")).is_err());
        let half: toml::Table =
            toml::from_str("address = \"x:1\"\nca = \"c\"\ncert = \"c\"").unwrap();
        assert!(SyslogSection::from_toml(half, Path::new("/")).is_err());
    }
}
