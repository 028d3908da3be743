//! An issuer's signing keys (RFC 7517 JWKS) and where they come from: a
//! file, re-read when it changes, or an HTTPS URL (the provider's
//! `jwks_uri`), fetched at start (it must answer), then again every
//! refresh interval and soon after a token names an unknown `kid`, in a
//! thread of its own (never on a request's path). A new set without a
//! usable key never replaces the current one.

use jsonwebtoken::{Algorithm, DecodingKey};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, RwLock, Weak};
use std::time::{Duration, Instant, SystemTime};

/// Largest JWKS accepted, bytes.
const MAX_JWKS: usize = 1 << 20;
/// Least time between two fetches of a URL.
const MIN_GAP: Duration = Duration::from_secs(2);
/// Connect, read and write timeouts of a fetch.
const TIMEOUT: Duration = Duration::from_secs(10);

/// A verifying key of a JWKS and the algorithms it verifies.
pub(crate) struct Key {
    pub(crate) key: DecodingKey,
    pub(crate) algorithms: Vec<Algorithm>,
}

type Keys = HashMap<String, Arc<Key>>;

/// Where a JWKS comes from.
pub(crate) enum Source {
    /// A file, and the modification time last read.
    File {
        path: PathBuf,
        seen: Mutex<(Option<SystemTime>, Instant)>,
    },
    /// An HTTPS URL, fetched by a thread that this wakes.
    Url { wake: Arc<(Mutex<bool>, Condvar)> },
}

/// One issuer's keys.
pub(crate) struct KeySet {
    name: String,
    source: Source,
    keys: Arc<RwLock<Keys>>,
}

impl KeySet {
    /// The keys of `file`, read now.
    pub(crate) fn file(name: &str, path: &Path) -> Result<KeySet, String> {
        let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok();
        let text = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let keys = usable(parse(&text).map_err(|e| format!("{}: {e}", path.display()))?)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(KeySet {
            name: name.to_string(),
            source: Source::File {
                path: path.to_path_buf(),
                seen: Mutex::new((modified, Instant::now())),
            },
            keys: Arc::new(RwLock::new(keys)),
        })
    }

    /// The keys at `url` (https only), fetched now and then every `every`
    /// by a thread, its server verified against the CA certificates in `ca`.
    pub(crate) fn url(name: &str, url: &str, ca: &Path, every: Duration) -> Result<KeySet, String> {
        let target = Https::parse(url)?;
        let tls = client_config(ca)?;
        let keys = usable(parse(&target.get(&tls)?)?).map_err(|e| format!("{url}: {e}"))?;
        let keys = Arc::new(RwLock::new(keys));
        let wake = Arc::new((Mutex::new(false), Condvar::new()));
        let (weak, w, n) = (Arc::downgrade(&keys), Arc::clone(&wake), name.to_string());
        std::thread::Builder::new()
            .name(format!("jwks-{name}"))
            .spawn(move || fetcher(&n, &target, &tls, &weak, &w, every))
            .map_err(|e| format!("cannot start the JWKS fetcher: {e}"))?;
        Ok(KeySet {
            name: name.to_string(),
            source: Source::Url { wake },
            keys,
        })
    }

    /// The key `kid`.
    pub(crate) fn get(&self, kid: &str) -> Option<Arc<Key>> {
        self.keys
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(kid)
            .cloned()
    }

    /// Look again: a file is re-read if it changed (checked at most once a
    /// second unless a token named an unknown kid); a URL's fetcher is
    /// woken for an unknown kid (the token waiting is still refused).
    pub(crate) fn refresh(&self, unknown_kid: bool) {
        match &self.source {
            Source::Url { wake } => {
                if unknown_kid {
                    *wake.0.lock().unwrap_or_else(|p| p.into_inner()) = true;
                    wake.1.notify_one();
                }
            }
            Source::File { path, seen } => {
                let mut seen = seen.lock().unwrap_or_else(|p| p.into_inner());
                if !unknown_kid && seen.1.elapsed() < Duration::from_secs(1) {
                    return;
                }
                seen.1 = Instant::now();
                let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok();
                if modified == seen.0 {
                    return;
                }
                seen.0 = modified;
                let read = std::fs::read(path).map_err(|e| e.to_string());
                self.replace(read.and_then(|b| parse(&b)));
            }
        }
    }

    fn replace(&self, keys: Result<Keys, String>) {
        install(&self.name, &self.keys, keys)
    }
}

/// Put a new set in place of the old, unless it has no usable key.
fn install(name: &str, into: &RwLock<Keys>, keys: Result<Keys, String>) {
    match keys.and_then(usable) {
        Ok(keys) => {
            log::info!("access: issuer {name}: JWKS reloaded ({} keys)", keys.len());
            *into.write().unwrap_or_else(|p| p.into_inner()) = keys;
        }
        Err(e) => log::warn!("access: issuer {name}: JWKS {e}; keeping the previous keys"),
    }
}

fn usable(keys: Keys) -> Result<Keys, String> {
    if keys.is_empty() {
        return Err("has no usable signing key (RSA, EC P-256 or Ed25519 with a kid)".into());
    }
    Ok(keys)
}

fn fetcher(
    name: &str,
    target: &Https,
    tls: &Arc<rustls::ClientConfig>,
    keys: &Weak<RwLock<Keys>>,
    wake: &(Mutex<bool>, Condvar),
    every: Duration,
) {
    let mut last = Instant::now();
    loop {
        {
            let mut woken = wake.0.lock().unwrap_or_else(|p| p.into_inner());
            while !*woken && last.elapsed() < every {
                let left = every.saturating_sub(last.elapsed());
                woken = wake
                    .1
                    .wait_timeout(woken, left)
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
            }
            *woken = false;
        }
        std::thread::sleep(MIN_GAP.saturating_sub(last.elapsed()));
        let Some(into) = keys.upgrade() else {
            return;
        };
        install(name, &into, target.get(tls).and_then(|b| parse(&b)));
        last = Instant::now();
    }
}

/// Read a JWKS: its keys with a `kid` that verify signatures with an
/// accepted algorithm; others are skipped (and `oct` keys always).
pub(crate) fn parse(bytes: &[u8]) -> Result<Keys, String> {
    let set: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| format!("is not JSON: {e}"))?;
    let list = set
        .get("keys")
        .and_then(|k| k.as_array())
        .ok_or("is not a JWKS (no `keys` list)")?;
    let mut keys = HashMap::new();
    for jwk in list {
        let s = |k: &str| jwk.get(k).and_then(|v| v.as_str());
        let Some(kid) = s("kid") else { continue };
        if s("use").is_some_and(|u| u != "sig") {
            continue;
        }
        let built = match (s("kty"), s("crv")) {
            (Some("RSA"), _) => s("n")
                .zip(s("e"))
                .and_then(|(n, e)| DecodingKey::from_rsa_components(n, e).ok())
                .map(|k| (k, vec![Algorithm::RS256, Algorithm::PS256])),
            (Some("EC"), Some("P-256")) => s("x")
                .zip(s("y"))
                .and_then(|(x, y)| DecodingKey::from_ec_components(x, y).ok())
                .map(|k| (k, vec![Algorithm::ES256])),
            (Some("OKP"), Some("Ed25519")) => s("x")
                .and_then(|x| DecodingKey::from_ed_components(x).ok())
                .map(|k| (k, vec![Algorithm::EdDSA])),
            _ => None,
        };
        let Some((key, mut algorithms)) = built else {
            continue;
        };
        if let Some(alg) = s("alg") {
            algorithms.retain(|a| format!("{a:?}") == alg);
        }
        if !algorithms.is_empty() {
            keys.insert(kid.to_string(), Arc::new(Key { key, algorithms }));
        }
    }
    Ok(keys)
}

/// A rustls client trusting the CA certificates of a PEM file.
fn client_config(ca: &Path) -> Result<Arc<rustls::ClientConfig>, String> {
    let err = |e: String| format!("{}: {e}", ca.display());
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca).map_err(|e| err(e.to_string()))? {
        let c = c.map_err(|e| err(e.to_string()))?;
        // a system bundle may hold certificates rustls cannot use: skip those
        let _ = roots.add(c);
    }
    if roots.is_empty() {
        return Err(err("no CA certificate".into()));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// An `https://host[:port]/path` URL.
struct Https {
    url: String,
    host: String,
    port: u16,
    path: String,
}

impl Https {
    fn parse(url: &str) -> Result<Https, String> {
        let bad = || format!("jwks_url `{url}` is not https://host[:port]/path");
        let rest = url.strip_prefix("https://").ok_or_else(bad)?;
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let (host, port) = match authority.strip_prefix('[') {
            Some(v6) => {
                let (h, after) = v6.split_once(']').ok_or_else(bad)?;
                let port = match after.strip_prefix(':') {
                    Some(p) => p.parse().map_err(|_| bad())?,
                    None if after.is_empty() => 443,
                    None => return Err(bad()),
                };
                (h, port)
            }
            None => match authority.rsplit_once(':') {
                Some((h, p)) => (h, p.parse().map_err(|_| bad())?),
                None => (authority, 443),
            },
        };
        let printable = |s: &str| s.bytes().all(|b| b.is_ascii_graphic());
        if host.is_empty() || !printable(host) || !printable(path) || url.contains('@') {
            return Err(bad());
        }
        Ok(Https {
            url: url.to_string(),
            host: host.to_string(),
            port,
            path: if path.is_empty() {
                "/".into()
            } else {
                path.to_string()
            },
        })
    }

    /// GET the body (200 only, at most [`MAX_JWKS`] bytes).
    fn get(&self, tls: &Arc<rustls::ClientConfig>) -> Result<Vec<u8>, String> {
        let err = |m: String| format!("{}: {m}", self.url);
        let addr = (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map_err(|e| err(e.to_string()))?
            .next()
            .ok_or_else(|| err("no address".into()))?;
        let tcp = TcpStream::connect_timeout(&addr, TIMEOUT).map_err(|e| err(e.to_string()))?;
        tcp.set_read_timeout(Some(TIMEOUT))
            .map_err(|e| err(e.to_string()))?;
        tcp.set_write_timeout(Some(TIMEOUT))
            .map_err(|e| err(e.to_string()))?;
        let name = ServerName::try_from(self.host.clone()).map_err(|e| err(e.to_string()))?;
        let conn =
            rustls::ClientConnection::new(Arc::clone(tls), name).map_err(|e| err(e.to_string()))?;
        let mut s = rustls::StreamOwned::new(conn, tcp);
        write!(
            s,
            "GET {} HTTP/1.1\r\nHost: {}\r\nAccept: application/json\r\nUser-Agent: obscura\r\nConnection: close\r\n\r\n",
            self.path, self.host
        )
        .map_err(|e| err(e.to_string()))?;
        let mut raw = Vec::new();
        let read = Read::by_ref(&mut s)
            .take(MAX_JWKS as u64 + 64 * 1024)
            .read_to_end(&mut raw);
        // a server that closes without close_notify: what arrived is judged below
        if let Err(e) = read {
            if e.kind() != std::io::ErrorKind::UnexpectedEof || raw.is_empty() {
                return Err(err(e.to_string()));
            }
        }
        http_body(&raw).map_err(err)
    }
}

/// The body of a raw HTTP/1.1 200 response (Content-Length, chunked, or to the end).
fn http_body(raw: &[u8]) -> Result<Vec<u8>, String> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no complete response header")?;
    let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
    let body = &raw[end + 4..];
    let status = head.split_whitespace().nth(1).unwrap_or("");
    if status != "200" {
        return Err(format!("HTTP status {status}"));
    }
    let header = |name: &str| {
        head.lines().skip(1).find_map(|l| {
            l.split_once(':')
                .filter(|(k, _)| k.trim() == name)
                .map(|(_, v)| v.trim().to_string())
        })
    };
    let out = if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        let mut out = Vec::new();
        let mut rest = body;
        loop {
            let line = rest
                .windows(2)
                .position(|w| w == b"\r\n")
                .ok_or("truncated chunk")?;
            let size = std::str::from_utf8(&rest[..line]).ok().and_then(|s| {
                usize::from_str_radix(s.split(';').next().unwrap_or("").trim(), 16).ok()
            });
            let size = size.ok_or("bad chunk size")?;
            rest = &rest[line + 2..];
            if size == 0 {
                break out;
            }
            let chunk = rest.get(..size).ok_or("truncated chunk")?;
            out.extend_from_slice(chunk);
            rest = rest.get(size + 2..).ok_or("truncated chunk")?;
            if out.len() > MAX_JWKS {
                return Err("JWKS too large".into());
            }
        }
    } else if let Some(n) = header("content-length") {
        let n: usize = n.parse().map_err(|_| "bad Content-Length")?;
        body.get(..n).ok_or("truncated body")?.to_vec()
    } else {
        body.to_vec()
    };
    if out.len() > MAX_JWKS {
        return Err("JWKS too large".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_responses() {
        let u = Https::parse("https://sso.example.org:8443/realms/x/certs").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("sso.example.org", 8443, "/realms/x/certs")
        );
        assert_eq!(Https::parse("https://[::1]/c").unwrap().host, "::1");
        assert_eq!(Https::parse("https://idp").unwrap().path, "/");
        for bad in [
            "http://idp/certs",
            "https:///x",
            "https://u:p@idp/x",
            "https://idp:x/",
        ] {
            assert!(Https::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            http_body(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}xx").unwrap(),
            b"{}"
        );
        assert_eq!(
            http_body(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n{\r\n1;x\r\n}\r\n0\r\n\r\n").unwrap(),
            b"{}"
        );
        assert!(http_body(b"HTTP/1.1 404 Not Found\r\n\r\n").is_err());
        assert!(http_body(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n{}").is_err());
    }
}
