//! Alerts to a webhook: one HTTP/1.1 POST of the alert's JSON per alert.
//! HTTPS (rustls, the server verified against the configured CA), or plain
//! HTTP to a loopback address only.

use crate::Alert;
use rustls_pki_types::ServerName;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

/// A webhook endpoint.
pub struct Webhook {
    host: String,
    port: u16,
    path: String,
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl Webhook {
    /// `url` is `https://host[:port]/path` (then `tls` is required) or
    /// `http://` to a loopback address.
    pub fn new(url: &str, tls: Option<Arc<rustls::ClientConfig>>) -> Result<Self, String> {
        let (https, rest) = if let Some(r) = url.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = url.strip_prefix("http://") {
            (false, r)
        } else {
            return Err(format!(
                "webhook {url}: expected https:// (or http:// to loopback)"
            ));
        };
        let (authority, path) = rest
            .split_once('/')
            .map_or((rest, "/".to_string()), |(a, p)| (a, format!("/{p}")));
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || authority.starts_with('[') => (
                h.trim_matches(['[', ']']).to_string(),
                p.parse().map_err(|_| format!("webhook {url}: bad port"))?,
            ),
            _ => (
                authority.trim_matches(['[', ']']).to_string(),
                if https { 443 } else { 80 },
            ),
        };
        if https && tls.is_none() {
            return Err(format!("webhook {url}: https needs a CA (webhook_ca)"));
        }
        if !https {
            let loopback = (host.as_str(), port)
                .to_socket_addrs()
                .map_err(|e| format!("webhook {url}: {e}"))?
                .all(|a| a.ip().is_loopback());
            if !loopback {
                return Err(format!(
                    "webhook {url}: plain http only to a loopback address; use https"
                ));
            }
        }
        Ok(Webhook {
            host,
            port,
            path,
            tls: if https { tls } else { None },
        })
    }

    /// POST one alert; Err with the reason (never the alert's content).
    pub fn send(&self, alert: &Alert) -> Result<(), String> {
        let body = serde_json::to_string(alert).map_err(|e| e.to_string())?;
        let req = format!(
            "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.path,
            self.host,
            body.len()
        );
        let addr = (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map_err(|e| e.to_string())?
            .next()
            .ok_or("no address")?;
        let sock =
            TcpStream::connect_timeout(&addr, Duration::from_secs(5)).map_err(|e| e.to_string())?;
        sock.set_read_timeout(Some(Duration::from_secs(5)))
            .map_err(|e| e.to_string())?;
        sock.set_write_timeout(Some(Duration::from_secs(5)))
            .map_err(|e| e.to_string())?;
        let mut answer = Vec::new();
        match &self.tls {
            Some(cfg) => {
                let name = ServerName::try_from(self.host.clone()).map_err(|e| e.to_string())?;
                let conn = rustls::ClientConnection::new(Arc::clone(cfg), name)
                    .map_err(|e| e.to_string())?;
                let mut s = rustls::StreamOwned::new(conn, sock);
                s.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
                let _ = Read::by_ref(&mut s).take(4096).read_to_end(&mut answer);
            }
            None => {
                let mut s = sock;
                s.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
                let _ = Read::by_ref(&mut s).take(4096).read_to_end(&mut answer);
            }
        }
        let status = String::from_utf8_lossy(&answer);
        let code = status.split(' ').nth(1).unwrap_or("");
        if code.starts_with('2') {
            Ok(())
        } else {
            Err(format!(
                "answered {}",
                if code.is_empty() { "nothing" } else { code }
            ))
        }
    }
}
