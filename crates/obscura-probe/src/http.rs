//! DICOMweb and HTTP checks: a minimal HTTP/1.1 client over tokio (and
//! rustls when the port speaks TLS), one request per connection
//! (`Connection: close`), bodies capped at 1 MiB.
//!
//! Unauthenticated: `GET /` (server header, auth realm), Orthanc's
//! `GET /system` and `GET /statistics` (version and name; counts only),
//! QIDO `GET {prefix}/studies?limit=1` under the common prefixes (count,
//! byte length and keyed hash of the answer, never a value), WADO of a
//! random study UID (is retrieval reachable without credentials?), STOW
//! with an empty multipart body (does the server accept a store request
//! without credentials?). Nothing is stored: an empty STOW holds no instance.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use obscura_dimse::rustls;
use serde::Serialize;
use sha2::Sha256;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The HTTP(S) ports tried when a target names no port: 80, 443, Orthanc's
/// 8042 and the common 8080.
pub const DEFAULT_HTTP_PORTS: &[u16] = &[80, 443, 8042, 8080];

/// The DICOMweb roots tried for QIDO: none, then those servers ship with.
pub const DICOMWEB_PREFIXES: &[&str] = &["", "/dicom-web", "/dicomweb", "/wado", "/rs"];

const MAX_RESPONSE: usize = 1 << 20;

/// One HTTP answer, headers lower-cased.
#[derive(Debug)]
pub(crate) struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub truncated: bool,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// How to reach the port: plain TCP or TLS with the probe's client config.
#[derive(Clone)]
pub(crate) struct Transport {
    pub addr: SocketAddr,
    pub host: String,
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

/// Printable ASCII only, at most 80 characters: what a peer sends may be
/// shown, never control characters or long text.
pub(crate) fn clean(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .take(80)
        .collect()
}

async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut s: S,
    request: &[u8],
) -> std::io::Result<(Vec<u8>, bool)> {
    s.write_all(request).await?;
    s.flush().await?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let n = match s.read(&mut chunk).await {
            Ok(n) => n,
            // a TLS peer that closes without close_notify: keep what came
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !buf.is_empty() => 0,
            Err(e) => return Err(e),
        };
        if n == 0 {
            return Ok((buf, false));
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > MAX_RESPONSE {
            buf.truncate(MAX_RESPONSE);
            return Ok((buf, true));
        }
    }
}

/// One request, one connection. `Err` holds an error kind, never peer text.
pub(crate) async fn request(
    t: &Transport,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    limit: Duration,
) -> Result<Response, String> {
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: obscura-probe/{}\r\nConnection: close\r\n",
        t.host,
        env!("CARGO_PKG_VERSION")
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(body);
    let work = async {
        let tcp = tokio::net::TcpStream::connect(t.addr)
            .await
            .map_err(|e| format!("TCP: {}", e.kind()))?;
        match &t.tls {
            None => exchange(tcp, &bytes)
                .await
                .map_err(|e| format!("I/O: {}", e.kind())),
            Some(config) => {
                let name = rustls::pki_types::ServerName::IpAddress(t.addr.ip().into());
                let tls = tokio_rustls::TlsConnector::from(config.clone())
                    .connect(name, tcp)
                    .await
                    .map_err(|e| format!("TLS: {}", e.kind()))?;
                exchange(tls, &bytes)
                    .await
                    .map_err(|e| format!("I/O: {}", e.kind()))
            }
        }
    };
    let (raw, truncated) = tokio::time::timeout(limit, work)
        .await
        .map_err(|_| "timed out".to_string())??;
    parse(&raw, truncated).ok_or_else(|| "not HTTP".to_string())
}

fn parse(raw: &[u8], truncated: bool) -> Option<Response> {
    if !raw.starts_with(b"HTTP/1.") {
        return None;
    }
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let rest = &raw[end + 4..];
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.to_ascii_lowercase().contains("chunked"));
    let body = if chunked {
        dechunk(rest)
    } else if let Some(n) = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
    {
        rest[..n.min(rest.len())].to_vec()
    } else {
        rest.to_vec()
    };
    Some(Response {
        status,
        headers,
        body,
        truncated,
    })
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = b.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size = std::str::from_utf8(&b[..eol])
            .ok()
            .and_then(|s| usize::from_str_radix(s.split(';').next()?.trim(), 16).ok());
        let Some(size) = size else { return out };
        b = &b[eol + 2..];
        if size == 0 || b.is_empty() {
            return out;
        }
        let n = size.min(b.len());
        out.extend_from_slice(&b[..n]);
        b = &b[n..];
        b = b.strip_prefix(b"\r\n").unwrap_or(b);
    }
}

/// The realm of a `WWW-Authenticate` header, e.g. `Basic realm="Orthanc Secure Area"`.
pub(crate) fn realm(header: &str) -> Option<String> {
    let i = header.to_ascii_lowercase().find("realm=")?;
    let v = &header[i + 6..];
    let v = v.strip_prefix('"').map_or_else(
        || v.split([',', ' ']).next().unwrap_or(""),
        |q| q.split('"').next().unwrap_or(""),
    );
    Some(clean(v))
}

/// First 16 hex digits of HMAC-SHA256(key, bytes).
pub(crate) fn keyed_hash(key: &[u8], bytes: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(bytes);
    mac.finalize()
        .into_bytes()
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The answer to one unauthenticated request: its status, or why none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Answer {
    /// HTTP status; 0 when there was no HTTP answer.
    pub status: u16,
    /// Why there is no answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Answer {
    pub(crate) fn of(r: &Result<Response, String>) -> Answer {
        match r {
            Ok(r) => Answer {
                status: r.status,
                error: None,
            },
            Err(e) => Answer {
                status: 0,
                error: Some(e.clone()),
            },
        }
    }

    /// Answered, and not with 401/403.
    pub fn passed_auth(&self) -> bool {
        self.status != 0 && self.status != 401 && self.status != 403
    }

    /// A QIDO answer from a DICOMweb route, or a refusal: 2xx, 401, 403.
    pub fn looks_dicomweb(&self) -> bool {
        (200..300).contains(&self.status) && self.error.is_none() || self.refused()
    }

    /// 401 or 403.
    pub fn refused(&self) -> bool {
        self.status == 401 || self.status == 403
    }
}

/// DICOMweb under one prefix, without credentials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DicomWebCheck {
    /// The root tried, e.g. "/dicom-web" ("" for the server root).
    pub prefix: String,
    /// `GET {prefix}/studies?limit=1`.
    pub qido: Answer,
    /// Studies in the QIDO answer (0 or 1), when it was a JSON array.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qido_count: Option<u64>,
    /// Byte length of the QIDO answer body.
    pub qido_bytes: u64,
    /// HMAC-SHA256 (run key) of the QIDO answer body, first 16 hex digits, when it held a study.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qido_hmac: Option<String>,
    /// `GET {prefix}/studies/{random UID}/metadata` (only where QIDO answered 2xx, 401 or 403).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wado: Option<Answer>,
    /// `POST {prefix}/studies` with an empty multipart body (only where QIDO answered 2xx, 401 or 403).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stow: Option<Answer>,
}

/// Orthanc's `/system` (and `/statistics`) read without credentials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrthancSystem {
    /// "Version".
    pub version: String,
    /// "Name" (the server's configured name).
    pub name: String,
    /// "CountStudies" of `/statistics`, when readable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count_studies: Option<u64>,
}

/// Everything the HTTP checks saw on one port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HttpSummary {
    /// "https" or "http".
    pub scheme: &'static str,
    /// `GET /`.
    pub root: Answer,
    /// The `Server` header, printable ASCII, at most 80 characters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_header: Option<String>,
    /// The realm of a 401's `WWW-Authenticate`, if any was asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_realm: Option<String>,
    /// `GET /system` (Orthanc's REST API).
    pub system: Answer,
    /// What `/system` said, when it answered Orthanc's JSON without credentials.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub orthanc: Option<OrthancSystem>,
    /// QIDO, WADO and STOW per prefix.
    pub dicomweb: Vec<DicomWebCheck>,
}

impl HttpSummary {
    /// Prefixes whose QIDO route answered like DICOMweb (2xx) or asked for
    /// credentials (401/403). A 400 or 404 is another application's route.
    pub fn dicomweb_found(&self) -> impl Iterator<Item = &DicomWebCheck> {
        self.dicomweb.iter().filter(|c| c.qido.looks_dicomweb())
    }
}

/// Does the port answer HTTP? One `GET /`.
pub(crate) async fn sniff(t: &Transport, limit: Duration) -> Option<Response> {
    request(t, "GET", "/", &[], &[], limit).await.ok()
}

/// Counts the top-level items of a JSON array without keeping them.
fn json_array_len(body: &[u8]) -> Option<u64> {
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        return Some(0);
    }
    serde_json::from_slice::<Vec<serde::de::IgnoredAny>>(body)
        .ok()
        .map(|v| v.len() as u64)
}

pub(crate) fn random_uid() -> String {
    let mut b = [0u8; 16];
    let _ = getrandom::getrandom(&mut b);
    format!("2.25.{}", u128::from_be_bytes(b))
}

/// `/system`'s JSON, if it is Orthanc's.
pub(crate) fn orthanc_system(body: &[u8]) -> Option<OrthancSystem> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let version = v.get("Version")?.as_str()?;
    // ApiVersion and DatabaseVersion are Orthanc's own keys
    v.get("ApiVersion")
        .or_else(|| v.get("DatabaseVersion"))
        .or_else(|| v.get("DicomAet"))?;
    Some(OrthancSystem {
        version: clean(version),
        name: clean(v.get("Name").and_then(|n| n.as_str()).unwrap_or("")),
        count_studies: None,
    })
}

pub(crate) fn statistics_count(body: &[u8]) -> Option<u64> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    v.get("CountStudies")?.as_u64()
}

/// QIDO's answer reduced to a count, a length and a keyed hash.
pub(crate) fn qido_check(prefix: &str, r: &Result<Response, String>, key: &[u8]) -> DicomWebCheck {
    let mut c = DicomWebCheck {
        prefix: prefix.to_string(),
        qido: Answer::of(r),
        qido_count: None,
        qido_bytes: 0,
        qido_hmac: None,
        wado: None,
        stow: None,
    };
    if let Ok(r) = r {
        c.qido_bytes = r.body.len() as u64;
        if r.status == 204 {
            c.qido_count = Some(0);
        } else if (200..300).contains(&r.status) && !r.truncated {
            c.qido_count = json_array_len(&r.body);
            if c.qido_count.is_none() {
                // a page served for any path (a status page, a SPA): not QIDO
                c.qido.error = Some("2xx without a JSON array: not DICOMweb".into());
            }
        }
        if c.qido_count.unwrap_or(0) > 0 || (r.truncated && (200..300).contains(&r.status)) {
            c.qido_hmac = Some(keyed_hash(key, &r.body));
        }
    }
    c
}

/// The empty multipart body of the STOW check: a closing boundary only.
pub(crate) const STOW_BOUNDARY: &str = "obscura-probe-empty";

#[cfg(test)]
mod tests {
    use super::*;

    /// A 200 page that is not a JSON array (any path answered alike) is
    /// not taken for QIDO; an empty array is.
    #[test]
    fn qido_needs_a_json_array() {
        let page = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\n<html>", false)
            .ok_or_else(String::new);
        assert!(!qido_check("", &page, b"k").qido.looks_dicomweb());
        let empty =
            parse(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n[]", false).ok_or_else(String::new);
        let c = qido_check("", &empty, b"k");
        assert!(c.qido.looks_dicomweb() && c.qido_count == Some(0));
    }

    #[test]
    fn parse_and_dechunk() {
        let raw = b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"Orthanc Secure Area\"\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        let r = parse(raw, false).unwrap();
        assert_eq!(r.status, 401);
        assert_eq!(r.body, b"abcde");
        assert_eq!(
            realm(r.header("www-authenticate").unwrap()).as_deref(),
            Some("Orthanc Secure Area")
        );
        assert!(parse(b"\x02\x00\x00\x00", false).is_none());
        assert_eq!(json_array_len(b"[{\"a\":1}]"), Some(1));
        assert_eq!(json_array_len(b""), Some(0));
        assert_eq!(keyed_hash(b"k", b"x").len(), 16);
        assert_eq!(clean("a\u{1b}[31mb"), "a[31mb");
    }
}
