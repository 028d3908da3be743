//! RFC 5424 syslog messages and their RFC 5425 / RFC 6587 octet-counting
//! frame (`MSG-LEN SP SYSLOG-MSG`).

/// Facility 10: security/authorization messages (IHE ITI-20).
const FACILITY_AUTHPRIV: u8 = 10;

/// Severity of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// 4: a failure or a denial.
    Warning = 4,
    /// 5: normal but significant (every other audit event).
    Notice = 5,
}

/// The header fields that do not change from one message to the next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// HOSTNAME.
    pub hostname: String,
    /// APP-NAME.
    pub app_name: String,
    /// PROCID.
    pub proc_id: String,
}

impl Header {
    /// This process: the host's name, `obscura`, the process id.
    pub fn this_process() -> Self {
        let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_default();
        Header {
            hostname,
            app_name: "obscura".into(),
            proc_id: std::process::id().to_string(),
        }
    }
}

/// RFC 5424 header fields are PRINTUSASCII (33..=126), bounded, and NILVALUE
/// (`-`) when empty.
fn field(s: &str, max: usize) -> String {
    let f: String = s
        .chars()
        .filter(|c| ('!'..='~').contains(c))
        .take(max)
        .collect();
    if f.is_empty() {
        "-".into()
    } else {
        f
    }
}

/// One syslog message: `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID - MSG`,
/// no structured data. `time` is RFC 3339; a UTF-8 `msg` that is not plain
/// ASCII is preceded by the BOM, as RFC 5424 6.4 asks.
pub fn message(h: &Header, severity: Severity, time: &str, msg_id: &str, msg: &str) -> Vec<u8> {
    let pri = FACILITY_AUTHPRIV * 8 + severity as u8;
    let mut out = format!(
        "<{pri}>1 {} {} {} {} {} - ",
        field(time, 64),
        field(&h.hostname, 255),
        field(&h.app_name, 48),
        field(&h.proc_id, 128),
        field(msg_id, 32),
    )
    .into_bytes();
    if msg.starts_with("<?xml") || !msg.is_ascii() {
        out.extend_from_slice("\u{FEFF}".as_bytes());
    }
    out.extend_from_slice(msg.as_bytes());
    out
}

/// The octet-counting frame of RFC 5425 / RFC 6587 3.4.1.
pub fn frame(message: &[u8]) -> Vec<u8> {
    let mut out = format!("{} ", message.len()).into_bytes();
    out.extend_from_slice(message);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_and_frame() {
        let h = Header {
            hostname: "pacs 01".into(),
            app_name: "obscura".into(),
            proc_id: String::new(),
        };
        let m = message(
            &h,
            Severity::Notice,
            "2025-01-31T09:08:07.123Z",
            "IHE+RFC-3881",
            "<?xml x",
        );
        let text = String::from_utf8(m.clone()).unwrap();
        assert_eq!(
            text,
            "<85>1 2025-01-31T09:08:07.123Z pacs01 obscura - IHE+RFC-3881 - \u{FEFF}<?xml x"
        );
        let f = frame(&m);
        assert!(f.starts_with(format!("{} <85>", m.len()).as_bytes()));
        assert_eq!(f.len(), m.len() + m.len().to_string().len() + 1);
        let w = message(&h, Severity::Warning, "t", "json", "{}");
        assert!(w.starts_with(b"<84>1 t pacs01 obscura - json - {}"));
    }
}
