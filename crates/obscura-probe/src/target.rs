//! Targets: `HOST[:PORT]`, host names or IP literals (`[v6]:port`), given
//! one by one. No ranges in this slice: only what the user names is probed.

use crate::ProbeError;

/// The DICOM ports tried when a target names no port (PS3.15 / common
/// deployments: 104, 11112, 2761 and 2762 for TLS, Orthanc's 4242).
pub const DEFAULT_DICOM_PORTS: &[u16] = &[104, 11112, 2761, 2762, 4242];

/// One host and port to probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Host name or IP address as given (brackets removed).
    pub host: String,
    /// TCP port.
    pub port: u16,
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// Parses `HOST[:PORT]`; a target without a port expands to the default
/// DICOM ports and the default HTTP(S) ports. Address ranges (CIDR) are refused.
pub fn parse_target(s: &str) -> Result<Vec<Target>, ProbeError> {
    let bad = |why: &str| ProbeError::BadTarget(format!("{s:?}: {why}"));
    let s = s.trim();
    if s.is_empty() {
        return Err(bad("empty"));
    }
    if s.contains('/') {
        return Err(bad("address ranges are not supported yet: name each host"));
    }
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (h, tail) = rest.split_once(']').ok_or_else(|| bad("unclosed ["))?;
        match tail.strip_prefix(':') {
            Some(p) => (h, Some(p)),
            None if tail.is_empty() => (h, None),
            None => return Err(bad("junk after ]")),
        }
    } else if s.matches(':').count() > 1 {
        (s, None) // a bare IPv6 address
    } else {
        match s.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    if host.is_empty()
        || !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-_:".contains(c))
    {
        return Err(bad("invalid host"));
    }
    let ports = match port {
        Some(p) => vec![p
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| bad("invalid port"))?],
        None => DEFAULT_DICOM_PORTS
            .iter()
            .chain(crate::DEFAULT_HTTP_PORTS)
            .copied()
            .collect(),
    };
    Ok(ports
        .into_iter()
        .map(|port| Target {
            host: host.to_string(),
            port,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        assert_eq!(parse_target("127.0.0.1:104").unwrap().len(), 1);
        assert_eq!(
            parse_target("localhost").unwrap().len(),
            DEFAULT_DICOM_PORTS.len() + crate::DEFAULT_HTTP_PORTS.len()
        );
        let v6 = parse_target("[::1]:11112").unwrap();
        assert_eq!(v6[0].host, "::1");
        assert_eq!(v6[0].to_string(), "[::1]:11112");
        assert_eq!(parse_target("::1").unwrap()[0].host, "::1");
        for bad in ["", "10.0.0.0/24", "h:0", "h:x", "[::1", "a b"] {
            assert!(parse_target(bad).is_err(), "{bad}");
        }
    }
}
