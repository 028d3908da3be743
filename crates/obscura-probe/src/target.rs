//! Targets: `HOST[:PORT]`, host names or IP literals (`[v6]:port`), small
//! CIDR ranges (`10.0.0.0/28`, `[fd00::/124]:104`; at most
//! [`MAX_RANGE_ADDRESSES`] addresses each) and files of targets (one a line,
//! `#` comments).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::ProbeError;

/// A CIDR range holding more addresses than this is refused.
pub const MAX_RANGE_ADDRESSES: u128 = 4096;

/// Above this many addresses from ranges, the run needs a confirmation
/// (`--yes`, or an answer on a terminal).
pub const CONFIRM_ABOVE_ADDRESSES: u128 = 256;

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

/// The number of addresses a target names: the size of its CIDR range, 1
/// for a single host. Errors as [`parse_target`].
pub fn target_addresses(s: &str) -> Result<u128, ProbeError> {
    let (host, _) = split_host_port(s)?;
    match host.split_once('/') {
        Some(_) => Ok(cidr(s, host)?.1),
        None => Ok(1),
    }
}

/// The targets of a file: one `HOST[:PORT]` or range a line; blank lines
/// and everything after `#` are ignored.
pub fn parse_targets_file(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.split_once('#').map_or(l, |(a, _)| a).trim())
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// Splits `HOST[:PORT]` (brackets around IPv6 removed; a bare IPv6 address
/// or range has no port).
fn split_host_port(s: &str) -> Result<(&str, Option<&str>), ProbeError> {
    let bad = |why: &str| ProbeError::BadTarget(format!("{s:?}: {why}"));
    let s = s.trim();
    if s.is_empty() {
        return Err(bad("empty"));
    }
    Ok(if let Some(rest) = s.strip_prefix('[') {
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
    })
}

/// Parses `ADDRESS/PREFIX`: the first address (host bits cleared) and the
/// number of addresses; refuses host names and ranges above
/// [`MAX_RANGE_ADDRESSES`].
fn cidr(s: &str, host: &str) -> Result<(IpAddr, u128), ProbeError> {
    let bad = |why: String| ProbeError::BadTarget(format!("{s:?}: {why}"));
    let (addr, prefix) = host.split_once('/').unwrap_or((host, ""));
    let addr: IpAddr = addr
        .parse()
        .map_err(|_| bad("a range needs an IP address before /".into()))?;
    let bits: u32 = if addr.is_ipv4() { 32 } else { 128 };
    let prefix: u32 = prefix
        .parse()
        .ok()
        .filter(|p| *p <= bits)
        .ok_or_else(|| bad(format!("prefix length must be 0 to {bits}")))?;
    let host_bits = bits - prefix;
    if host_bits > 12 {
        return Err(bad(format!(
            "range of 2^{host_bits} addresses; at most {MAX_RANGE_ADDRESSES} (a /{} for IPv4, /{} for IPv6)",
            32 - 12,
            128 - 12
        )));
    }
    let count = 1u128 << host_bits;
    let first = match addr {
        IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from(
            u32::from(a) & !((1u64 << host_bits) as u32).wrapping_sub(1),
        )),
        IpAddr::V6(a) => IpAddr::V6(Ipv6Addr::from(u128::from(a) & !(count - 1))),
    };
    Ok((first, count))
}

/// Every address of a range, in order.
fn range_hosts(first: IpAddr, count: u128) -> Vec<String> {
    (0..count)
        .map(|i| match first {
            IpAddr::V4(a) => Ipv4Addr::from(u32::from(a) + i as u32).to_string(),
            IpAddr::V6(a) => Ipv6Addr::from(u128::from(a) + i).to_string(),
        })
        .collect()
}

/// Parses `HOST[:PORT]` or a CIDR range `ADDRESS/PREFIX[:PORT]`
/// (`[V6/PREFIX]:PORT`); a target without a port expands to the default
/// DICOM ports and the default HTTP(S) ports. Ranges above
/// [`MAX_RANGE_ADDRESSES`] addresses are refused.
pub fn parse_target(s: &str) -> Result<Vec<Target>, ProbeError> {
    let bad = |why: &str| ProbeError::BadTarget(format!("{s:?}: {why}"));
    let (host, port) = split_host_port(s)?;
    let s = s.trim();
    let hosts = if host.contains('/') {
        let (first, count) = cidr(s, host)?;
        range_hosts(first, count)
    } else {
        vec![host.to_string()]
    };
    if host.is_empty()
        || !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-_:/".contains(c))
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
    Ok(hosts
        .iter()
        .flat_map(|h| {
            ports.iter().map(|port| Target {
                host: h.clone(),
                port: *port,
            })
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
        for bad in ["", "h:0", "h:x", "[::1", "a b"] {
            assert!(parse_target(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ranges() {
        let r = parse_target("10.0.0.5/28:104").unwrap();
        assert_eq!(r.len(), 16);
        assert_eq!(r[0].to_string(), "10.0.0.0:104");
        assert_eq!(r[15].to_string(), "10.0.0.15:104");
        assert_eq!(parse_target("127.0.0.1/32:11112").unwrap().len(), 1);
        let v6 = parse_target("[fd00::1/126]:11112").unwrap();
        assert_eq!(
            v6.iter().map(|t| t.to_string()).collect::<Vec<_>>(),
            [
                "[fd00::]:11112",
                "[fd00::1]:11112",
                "[fd00::2]:11112",
                "[fd00::3]:11112"
            ]
        );
        assert_eq!(parse_target("::1/128").unwrap()[0].host, "::1");
        // no port: every default port of every address
        assert_eq!(
            parse_target("192.168.1.0/30").unwrap().len(),
            4 * (DEFAULT_DICOM_PORTS.len() + crate::DEFAULT_HTTP_PORTS.len())
        );
        assert_eq!(target_addresses("10.0.0.0/24").unwrap(), 256);
        assert_eq!(target_addresses("10.0.0.0/20").unwrap(), 4096);
        assert_eq!(target_addresses("[fd00::/116]:104").unwrap(), 4096);
        assert_eq!(target_addresses("pacs.example:104").unwrap(), 1);
        assert_eq!(parse_target("10.0.0.0/20:104").unwrap().len(), 4096);
        for bad in [
            "10.0.0.0/19",
            "10.0.0.0/0",
            "fd00::/115",
            "10.0.0.0/33",
            "10.0.0.0/",
            "10.0.0.0/x",
            "pacs.example/28",
            "[fd00::/129]:104",
        ] {
            assert!(parse_target(bad).is_err(), "{bad}");
            assert!(target_addresses(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn file() {
        let text = "# lab\n127.0.0.1:104  # storescp\n\n  [::1]:11112\n10.0.0.0/30:4242\n#x\n";
        assert_eq!(
            parse_targets_file(text),
            ["127.0.0.1:104", "[::1]:11112", "10.0.0.0/30:4242"]
        );
    }
}
